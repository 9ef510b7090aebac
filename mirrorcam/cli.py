"""Command line entry point: ``mirrorcam SUBCOMMAND ...``.

Each mode lives in ``mirrorcam/modes/<name>.py`` and exposes two functions:

* ``add_parser(subparsers)`` adds its subcommand and arguments;
* ``run(args) -> int`` runs it and returns the exit code.

User errors are raised as :class:`~mirrorcam.errors.MirrorcamError` and printed here
as one line on stderr with a non-zero exit.  Everything else is one line too: an
interrupt ("interrupted", 130), SIGTERM ("terminated"), a file system refusal (its
``OSError``, 2) and any other exception ("unexpected ...", 1; its traceback with ``-v``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import signal
import sys
import threading

from mirrorcam import __version__
from mirrorcam.errors import MirrorcamError

# Subcommand modules under mirrorcam.modes, in the order --help lists them.
MODES = ("live", "replay", "extract", "teach", "eval", "kiosk", "models")


class OneLineErrors(argparse.ArgumentParser):
    """argparse whose errors are one line, like every other user error here: the message
    and where to read more, not a usage block (subcommands' parsers are of this class too)."""

    def error(self, message: str):
        self.exit(2, f"mirrorcam: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrors(
        prog="mirrorcam",
        description="Mirror neurons made visible: the same action template fires for doing and for seeing.",
    )
    parser.add_argument("--version", action="version", version=f"mirrorcam {__version__}")
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    verbosity.add_argument("-q", "--quiet", action="store_true", help="log errors only")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in MODES:
        try:
            module = importlib.import_module(f"mirrorcam.modes.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"mirrorcam.modes.{name}":
                raise
            continue  # a mode not built into this checkout
        module.add_parser(subparsers)
    _add_verbosity(subparsers)  # -v / -q after the command too (`mirrorcam replay CLIP -q`)
    return parser


def _add_verbosity(subparsers: argparse._SubParsersAction) -> None:
    """``-v`` / ``-q`` on every (sub)command's parser, down to ``models list``."""
    for sub in subparsers.choices.values():
        nested = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
        for action in nested:
            _add_verbosity(action)
        if nested:
            continue  # (given after the nested command, they reach its parser)
        group = sub.add_mutually_exclusive_group()
        group.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log debug detail")
        group.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="log errors only")


def _command_parser(parser: argparse.ArgumentParser, command: str | None) -> argparse.ArgumentParser:
    """The parser of subcommand ``command`` (the top one without a command)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            return action.choices[command]
    return parser


def configure_logging(verbose: bool = False, quiet: bool = False) -> None:
    level = logging.DEBUG if verbose else logging.ERROR if quiet else logging.INFO
    if not verbose:
        # FFmpeg and OpenCV print their own warnings (reconnect attempts, stream ends) on
        # stderr; mirrorcam already reports those events in one line of its own.
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
        os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
        import cv2

        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    handler = _StderrCopyHandler()
    handler.setFormatter(logging.Formatter("mirrorcam: %(message)s"))
    # Other libraries' notes (matplotlib's "generated new fontManager", imported by
    # MediaPipe) had come out at INFO with mirrorcam's prefix: theirs from WARNING up.
    logging.basicConfig(level=level if verbose else max(level, logging.WARNING), handlers=[handler], force=True)
    logging.getLogger("mirrorcam").setLevel(level)


class _StderrCopyHandler(logging.StreamHandler):
    """Log lines to a copy of file descriptor 2 taken when logging is set up.

    Why a copy: while MediaPipe runs in a pose thread, :func:`mirrorcam.pose.quiet_native_stderr`
    points descriptor 2 at /dev/null for the whole process (its C++ log lines), and lines
    logged meanwhile from another thread (the kiosk's "camera is back", a frame's
    traceback) had been lost from the journal.  The copy is closed with the handler.
    """

    def __init__(self) -> None:
        try:
            encoding = getattr(sys.stderr, "encoding", None) or "utf-8"  # (as the lines printed beside them)
            stream = os.fdopen(os.dup(sys.stderr.fileno()), "w", buffering=1, encoding=encoding, errors="backslashreplace")
            self._own = True
        except (OSError, ValueError, AttributeError):  # (no real descriptor: a test's captured stderr)
            stream, self._own = sys.stderr, False
        super().__init__(stream)

    def close(self) -> None:
        try:
            if self._own:
                self.stream.close()
        finally:
            super().close()


def _final_line(text: str) -> None:
    """The command's last line (its error, "interrupted"): through the log's copy of
    descriptor 2 when there is one, so that a pose thread still silencing MediaPipe cannot
    swallow it, and in order after the log's lines."""
    handler = next((h for h in logging.getLogger().handlers if isinstance(h, _StderrCopyHandler)), None)
    stream = handler.stream if handler is not None else sys.stderr
    try:
        stream.write(text + "\n")
        stream.flush()
    except (OSError, ValueError):  # (a closed stream: the exit code still says it)
        pass


class Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, ``kill``, systemd, docker stop), raised where the program is so
    that it unwinds as for Ctrl+C: every output's ``finally`` removes its temporary file."""


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _stop(signum, frame) -> None:
    """The first Ctrl+C or SIGTERM unwinds the program; later ones wait for it (:func:`_again`)."""
    for sig in _STOP_SIGNALS:
        if signal.getsignal(sig) is _stop:  # (one left ignored, as a background job's SIGINT, stays so)
            signal.signal(sig, _again)
    raise KeyboardInterrupt() if signum == signal.SIGINT else Terminated()


def _again(signum, frame) -> None:
    """A Ctrl+C or SIGTERM after the first: ignored while the first one unwinds the
    program, raised again if it was lost.

    A second signal during the clean-up (a user pressing Ctrl+C twice, or ``timeout``,
    which signals the process and then its group) would interrupt a ``finally`` block
    half-way, or a generator's or MediaPipe's clean-up, where Python prints it as a
    traceback ("Exception ignored in ...") and a temporary file or the model could be
    left behind.  The clean-up is short: closing outputs and renaming or removing files.
    While it runs, the first signal's exception is the one being handled.  But Python
    may run a handler inside a callback whose exceptions it only prints: a Ctrl+C at
    the import of the pose stage had been lost in an import lock's clean-up ("Exception
    ignored in: <function _get_module_lock.<locals>.cb ...>"), and the replay had gone
    on to its end with every later Ctrl+C ignored.
    """
    if isinstance(sys.exc_info()[1], KeyboardInterrupt):
        return
    raise KeyboardInterrupt() if signum == signal.SIGINT else Terminated()


def _stopped() -> None:
    """Ignore further stop signals: the program has unwound, what is left is its exit."""
    for sig in _STOP_SIGNALS:
        if signal.getsignal(sig) in (_stop, _again):
            signal.signal(sig, signal.SIG_IGN)


def main(argv: list[str] | None = None, *, restore_signals: bool = True) -> int:
    """Run a ``mirrorcam`` command line; returns the exit code (errors are one line on stderr).

    Args:
        argv: The arguments after ``mirrorcam`` (None: ``sys.argv[1:]``).
        restore_signals: Give the caller its SIGINT and SIGTERM handlers back even after a
            stop.  The console script (:func:`run`) leaves them ignored instead, so that a
            second Ctrl+C cannot break into the interpreter's exit (MediaPipe's clean-up).
    """
    # The handlers come first: the modes' imports below take seconds on a busy machine, and
    # a Ctrl+C during them is one "interrupted" line like any other.  (The kiosk installs
    # handlers of its own while it runs: a clean shutdown, not an error.)
    in_main_thread = threading.current_thread() is threading.main_thread()  # (tests may call main elsewhere)
    previous = {}
    for sig in _STOP_SIGNALS if in_main_thread else ():
        if signal.getsignal(sig) is not signal.SIG_IGN:  # (nohup, a shell's background job: left ignored)
            previous[sig] = signal.signal(sig, _stop)
    try:
        parser = build_parser()
        args, extra = parser.parse_known_args(argv)
        if extra:  # said by the command's own parser, whose --help lists what it takes
            _command_parser(parser, args.command).error(f"unrecognized arguments: {' '.join(extra)}")
        configure_logging(args.verbose, args.quiet)
        if not args.command:
            parser.print_help()
            return 2
        return int(args.run(args) or 0)
    except MirrorcamError as exc:
        _final_line(f"mirrorcam: error: {exc}")
        return exc.exit_code
    except Terminated:
        _stopped()
        _final_line("mirrorcam: terminated")
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        _stopped()
        _final_line("mirrorcam: interrupted")
        return 130
    except BrokenPipeError:
        return 1
    except OSError as exc:  # the file system said no (a path under a file, a full disk, ...)
        where = f" ({exc.filename})" if exc.filename else ""
        _final_line(f"mirrorcam: error: {exc.strerror or exc}{where}")
        return 2
    except Exception as exc:  # a case no check foresaw: still one line for the user, the details with -v
        logging.getLogger("mirrorcam").debug("unexpected error", exc_info=True)
        _final_line(f"mirrorcam: error: unexpected {type(exc).__name__}: {str(exc)[:300]} (run with -v for the details)")
        return 1
    finally:
        for sig, handler in previous.items():
            if restore_signals or signal.getsignal(sig) not in (signal.SIG_IGN, _again):
                signal.signal(sig, handler)
            else:  # (stopped: left ignored through the exit)
                signal.signal(sig, signal.SIG_IGN)


def run() -> int:
    """The ``mirrorcam`` console script and ``python -m mirrorcam``: :func:`main` on
    ``sys.argv``, a stopped program's signals left ignored through the exit.

    Without ``-v``, descriptor 2 is then pointed at /dev/null for the interpreter's exit:
    MediaPipe's native threads and destructors print there after the command's last line
    (a Ctrl+C while the pose model was being built had been followed by 4-48 INFO and
    WARNING lines).  The log's own copy of descriptor 2 stays open.
    """
    code = main(restore_signals=False)
    if not logging.getLogger("mirrorcam").isEnabledFor(logging.DEBUG):
        _silence_native_stderr()
    return code


def _silence_native_stderr() -> None:
    """Point descriptor 2 at /dev/null (what Python buffered for it written first)."""
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
        sys.stderr.flush()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
