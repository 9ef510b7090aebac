"""What an unattended exhibit needs around its loop: a heartbeat, counters, a log.

* :class:`SystemdNotifier` speaks systemd's ``sd_notify`` protocol (one datagram per
  message on the AF_UNIX socket named by ``NOTIFY_SOCKET``): ``READY=1`` once the first
  frame is on screen, ``WATCHDOG=1`` from the main loop at half the ``WatchdogSec``
  interval, ``STOPPING=1`` on exit.  Pinging from the loop itself (not a thread) means
  a hung loop is restarted by systemd.  No dependency: a few lines of socket code.
* :class:`Counters` keeps the only statistics kiosk mode stores: sessions started and
  mirror events per action, per hour (never finer), written atomically.
* :func:`setup_kiosk_log` sends log lines to a size-capped rotating file.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import logging.handlers
import os
import socket
from collections.abc import Callable, Mapping
from pathlib import Path

from mirrorcam.errors import MirrorcamError
from mirrorcam.fileio import atomic_write_json, file_kind, read_data_file

log = logging.getLogger(__name__)


class SystemdNotifier:
    """Send ``sd_notify`` messages when run under systemd; do nothing otherwise.

    Args:
        environ: Where ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID`` are read
            (default ``os.environ``).
        clock: Monotonic seconds, for spacing the watchdog pings.

    Example:
        >>> notifier = SystemdNotifier({})   # not under systemd: every call is a no-op
        >>> notifier.enabled
        False
        >>> notifier.ready()
        False
    """

    def __init__(self, environ: Mapping[str, str] | None = None, clock: Callable[[], float] | None = None) -> None:
        import time

        env = os.environ if environ is None else environ
        self.clock = clock or time.monotonic
        address = env.get("NOTIFY_SOCKET", "")
        # An abstract socket is written "@name" and addressed with a leading NUL byte.
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self.enabled = bool(address) and (address.startswith("@") or address.startswith("/"))
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        watchdog = usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid()))
        # Ping at half the interval, as sd_watchdog_enabled(3) recommends.
        self.interval_s: float | None = int(usec) / 2e6 if watchdog else None
        self._last_ping: float | None = None
        self._socket: socket.socket | None = None
        self.sent = 0

    def _send(self, message: str) -> bool:
        if not self.enabled:
            return False
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            # Non-blocking: a supervisor that stopped reading must never stall the exhibit.
            self._socket.sendto(message.encode("utf-8"), socket.MSG_DONTWAIT, self.address)
        except OSError as exc:
            # A supervisor that went away must not take the exhibit down with it.
            log.debug("sd_notify %r failed: %s", message, exc)
            return False
        self.sent += 1
        return True

    def ready(self, status: str = "") -> bool:
        """Tell systemd the service is up (``Type=notify`` units wait for this)."""
        return self._send("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def status(self, text: str) -> bool:
        """A one-line status shown by ``systemctl status``."""
        return self._send(f"STATUS={text}")

    def ping(self) -> bool:
        """``WATCHDOG=1`` if half the watchdog interval has passed since the last ping."""
        if self.interval_s is None:
            return False
        now = self.clock()
        if self._last_ping is not None and now - self._last_ping < self.interval_s:
            return False
        self._last_ping = now
        return self._send("WATCHDOG=1")

    def stopping(self) -> bool:
        return self._send("STOPPING=1")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __enter__(self) -> SystemdNotifier:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


COUNTERS_FORMAT = "mirrorcam.kiosk-counters"


def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _valid_counts(counts) -> bool:
    """Whether ``counts`` is ``{"sessions": n, "mirror_events": {action: n}}`` (extra keys allowed)."""
    if not isinstance(counts, dict) or not _count(counts.get("sessions")):
        return False
    events = counts.get("mirror_events")
    return isinstance(events, dict) and all(isinstance(k, str) and _count(v) for k, v in events.items())


def hour_key(when: _dt.datetime) -> str:
    """The bucket a moment counts in: local date and hour, nothing finer (``2025-05-01T14``)."""
    return when.strftime("%Y-%m-%dT%H")


class Counters:
    """Aggregate, anonymous counters: sessions started and mirror events per action, per hour.

    Nothing in the file can tell one visitor from another or say when within the hour
    something happened.  Writes are atomic and at most every ``flush_s`` seconds (an SD
    card in a museum PC should not be written on every event); :meth:`flush` at exit.

    Args:
        path: The JSON file (existing counts are kept and added to; a corrupt one is
            renamed ``<name>.corrupt``, or ``.corrupt.1``, ... when taken, and counting
            starts afresh; a FIFO or a device there is left alone, and the counts unsaved).
        flush_s: Shortest time between two writes.
        clock: Monotonic seconds, for spacing the writes.
        wallclock: Local time now, for the hour buckets.
        max_hours: Oldest hour buckets beyond this many are dropped (the totals keep them).
    """

    def __init__(
        self,
        path: str | Path,
        flush_s: float = 60.0,
        clock: Callable[[], float] | None = None,
        wallclock: Callable[[], _dt.datetime] | None = None,
        max_hours: int = 24 * 400,
    ) -> None:
        import time

        if flush_s <= 0:
            raise ValueError(f"flush_s must be > 0, got {flush_s}")
        self.path = Path(path)
        self.flush_s = flush_s
        self.clock = clock or time.monotonic
        self.wallclock = wallclock or _dt.datetime.now
        self.max_hours = max_hours
        self._foreign: str | None = None  # what stands in the file's place ("a FIFO"), once said
        self.data = self._read()
        self._dirty = False
        self._last_try: float | None = None

    def _read(self) -> dict:
        empty = {"format": COUNTERS_FORMAT, "version": 1, "totals": {"sessions": 0, "mirror_events": {}}, "hours": {}}
        try:
            # Bounded and never opened unless regular: a plain read of a FIFO had hung the
            # kiosk at start, deaf to SIGTERM.
            data = json.loads(read_data_file(self.path, "counters file").decode("utf-8"))
        except FileNotFoundError:
            return empty
        except OSError as exc:
            log.warning("counters file %s unreadable (%s); starting new counts", self.path, exc)
            return empty
        except MirrorcamError:  # not a regular file, or too large to be counters
            if self._kind() == "a regular file":
                self._set_aside("is too large to be a counters file")
            else:  # a FIFO or a device is not ours to rename, nor to write over
                self._writable_place()
            return empty
        except ValueError as exc:
            self._set_aside(f"is not valid JSON ({exc})")
            return empty
        if not isinstance(data, dict) or data.get("format") != COUNTERS_FORMAT:
            self._set_aside("is not a kiosk counters file")
            return empty
        data.setdefault("totals", {"sessions": 0, "mirror_events": {}})
        data.setdefault("hours", {})
        # Checked here, once: a wrong shape would otherwise raise inside Kiosk.step at
        # every session and lose the counts.
        hours = data["hours"]
        if not (_valid_counts(data["totals"]) and isinstance(hours, dict) and all(isinstance(k, str) and _valid_counts(v) for k, v in hours.items())):
            self._set_aside("has counts of the wrong shape")
            return empty
        return data

    def _kind(self) -> str:
        """What is at :attr:`path` (``"a FIFO"``, ``"a regular file"``), without opening it."""
        try:
            return file_kind(os.stat(self.path).st_mode)
        except OSError:
            return "missing"

    def _writable_place(self) -> bool:
        """False while a FIFO, a device or a folder stands where the file goes: the rename
        would replace the operator's, and opening a FIFO blocks. Said once, not at each try."""
        kind = self._kind()
        if kind in ("a regular file", "missing"):
            self._foreign = None
            return True
        if kind != self._foreign:
            log.warning("counters file %s is %s, not a file; the counts are not saved while it is there", self.path, kind)
            self._foreign = kind
        return False

    def _set_aside(self, problem: str) -> None:
        """Rename a bad counters file so that starting afresh does not overwrite it unseen.

        Every such file is kept (``counters.json.corrupt``, then ``.corrupt.1``, ...): a newer
        one had replaced the first, and with it the counts someone may still recover.
        """
        aside = self.path.with_name(self.path.name + ".corrupt")
        n = 0
        while aside.exists() or aside.is_symlink():
            n += 1
            aside = self.path.with_name(f"{self.path.name}.corrupt.{n}")
        try:
            os.replace(self.path, aside)
        except OSError as exc:
            log.warning("counters file %s %s; starting new counts (cannot keep it as %s: %s)", self.path, problem, aside.name, exc)
            return
        log.warning("counters file %s %s; kept as %s, starting new counts", self.path, problem, aside.name)

    def _bucket(self) -> dict:
        key = hour_key(self.wallclock())
        hours = self.data["hours"]
        if key not in hours:
            hours[key] = {"sessions": 0, "mirror_events": {}}
            while len(hours) > self.max_hours:
                del hours[min(hours)]
        return hours[key]

    def session_started(self) -> None:
        self._bucket()["sessions"] += 1
        self.data["totals"]["sessions"] += 1
        self._dirty = True

    def mirror_event(self, action: str) -> None:
        for counts in (self._bucket()["mirror_events"], self.data["totals"]["mirror_events"]):
            counts[action] = counts.get(action, 0) + 1
        self._dirty = True

    def maybe_flush(self) -> bool:
        """Write if something changed and ``flush_s`` passed since the last write (or try)."""
        if not self._dirty:
            return False
        now = self.clock()
        if self._last_try is not None and now - self._last_try < self.flush_s:
            return False
        return self.flush()

    def flush(self) -> bool:
        """Write now if anything changed; a failing disk is logged, never fatal.

        A failed try waits ``flush_s`` for the next, as a write does: retried at every
        frame, a full disk (or a device in the file's place) had written its line into the
        log 30 times a second.
        """
        if not self._dirty:
            return False
        self._last_try = self.clock()
        if not self._writable_place():
            return False
        try:
            atomic_write_json(self.path, self.data)
        except (OSError, MirrorcamError) as exc:  # (a full disk is a MirrorcamError naming the file)
            log.error("cannot write counters file %s: %s", self.path, exc)
            return False
        self._dirty = False
        return True


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_kiosk_log(path: str | Path, max_bytes: int, backups: int, level: int = logging.INFO) -> logging.Handler:
    """Send mirrorcam's log to a size-capped rotating file (at most ``(backups+1) * max_bytes``).

    Returns the handler; pass it to :func:`remove_kiosk_log` to detach and close it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.setLevel(level)
    logger = logging.getLogger("mirrorcam")
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > level:
        logger.setLevel(level)
    return handler


def remove_kiosk_log(handler: logging.Handler) -> None:
    logging.getLogger("mirrorcam").removeHandler(handler)
    handler.close()
