"""``mirrorcam kiosk``: the unattended museum exhibit.

Usage::

    mirrorcam kiosk --config kiosk.toml            # fullscreen, all day
    mirrorcam kiosk --check-config kiosk.toml      # every problem, with line and key
    mirrorcam kiosk --config-reference             # every key, default and meaning

Operator exit: press Esc, then type the ``operator.exit_sequence`` (default ``quit``)
within ``operator.exit_window_s`` seconds.  SIGTERM (``systemctl stop``) and Ctrl+C in a
terminal also end it cleanly.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from pathlib import Path

from mirrorcam.errors import ConfigError
from mirrorcam.modes.common import path_arg

log = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "kiosk",
        help="unattended museum exhibit (fullscreen, recovers from anything, stores nothing)",
        description="Run the kiosk: attract -> engage -> imitate -> mirror, configured by one TOML file. "
        "Operator exit: Esc, then type the exit sequence (default 'quit') within 3 seconds.",
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--config", type=path_arg, metavar="FILE", help="run the kiosk with this configuration")
    what.add_argument("--check-config", type=path_arg, metavar="FILE", help="check FILE, list every problem with its line and key, exit 2 if any")
    what.add_argument("--config-reference", action="store_true", help="print every config key with its default and meaning (Markdown)")
    parser.add_argument("--no-window", action="store_true", help="run headless (no window; for tests and soak runs)")
    parser.add_argument("--windowed", action="store_true", help="a normal window instead of fullscreen (setting up)")
    parser.add_argument("--frames", type=int, metavar="N", help="stop after N frames (tests, demos)")
    parser.set_defaults(run=run)


def check(path: Path) -> int:
    from mirrorcam.kiosk.config import check_config, load_config

    problems = check_config(path)
    for problem in problems:
        print(problem.format(path))
    if problems:
        print(f"{path}: {len(problems)} problem{'s' if len(problems) != 1 else ''}")
        return 2
    config = load_config(path)
    print(f"{path}: OK ({len(config.playlist)} playlist action{'s' if len(config.playlist) != 1 else ''}, camera {config.camera.source})")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.config_reference:
        from mirrorcam.kiosk.config import config_reference

        print(config_reference())
        return 0
    if args.check_config is not None:
        return check(args.check_config)
    if args.frames is not None and args.frames < 1:
        raise ConfigError(f"--frames must be at least 1, got {args.frames}")
    return run_config(args.config, window=not args.no_window, fullscreen=not args.windowed, max_frames=args.frames)


def run_config(path: Path, window: bool = True, fullscreen: bool = True, max_frames: int | None = None) -> int:
    """Load the config and run the kiosk until the operator exits or a signal arrives."""
    import time

    from mirrorcam.kiosk.app import Kiosk, NullDisplay, WindowDisplay, fit_to_screen, load_library_and_bank, playable_clips, run_kiosk
    from mirrorcam.kiosk.config import load_config
    from mirrorcam.kiosk.service import Counters, SystemdNotifier, remove_kiosk_log, setup_kiosk_log
    from mirrorcam.modes.common import display_available, x11_screen_size

    config = load_config(path)
    try:
        handler = setup_kiosk_log(config.log_path, config.storage.log_max_bytes, config.storage.log_backups)
    except OSError as exc:
        raise ConfigError(f"cannot write the kiosk log in {config.storage_dir}: {exc.strerror}") from None
    stop = threading.Event()
    previous = _install_signals(stop)
    notifier = SystemdNotifier(clock=time.monotonic)
    camera = display = kiosk = None
    try:
        log.info("kiosk starting with %s", path)
        templates, bank_factory = load_library_and_bank(config)
        clips = playable_clips(config, templates, bank_factory, stop=stop)
        if stop.is_set():
            log.info("kiosk stopped while starting")
            return 0
        counters = Counters(config.counters_path, config.storage.counters_flush_s, clock=time.monotonic)
        if window and not display_available():
            if not os.environ.get("DISPLAY"):  # (one that cannot be reached display_available has reported)
                log.warning("no display found; running without a window")
            window = False
        fullscreen = window and fullscreen and config.display.fullscreen
        if fullscreen:
            config = fit_to_screen(config, x11_screen_size())
        kiosk = Kiosk(config, clips, bank_factory(), time.monotonic, counters=counters, notifier=notifier)
        camera = open_camera(config)
        display = WindowDisplay(fullscreen=fullscreen, size=(config.display.width, config.display.height)) if window else NullDisplay()
        frames = run_kiosk(kiosk, camera, display, max_frames=max_frames, stop=stop)
        log.info("kiosk stopped after %d frames", frames)
        return 0
    finally:
        notifier.stopping()
        for part in (kiosk, camera, display):
            if part is not None:
                try:
                    part.close()
                except Exception:  # closing must not hide the reason we are leaving
                    log.exception("while closing %s", type(part).__name__)
        notifier.close()
        _restore_signals(previous)
        remove_kiosk_log(handler)


def open_camera(config):
    """The configured camera: a device, a stream, a video file or a landmark recording."""
    from mirrorcam.kiosk.camera import LivePoseCamera, RecordingCamera
    from mirrorcam.pose import CAMERA_FAR_SEARCH_MS, PoseEstimatorOptions
    from mirrorcam.recording import is_recording_path, load_recording

    spec = config.camera.source
    if is_recording_path(spec):
        recording = load_recording(spec)
        if not recording.frames:
            raise ConfigError(f"camera.source {spec} is a recording with no frames")
        return RecordingCamera(recording, description=f"recording {Path(spec).name}")
    options = PoseEstimatorOptions(
        model_variant=config.pose.model_variant, num_poses=config.pose.num_poses, far_search_ms=CAMERA_FAR_SEARCH_MS
    )
    return LivePoseCamera(spec, options, max_backoff_s=config.camera.max_backoff_s)


def _install_signals(stop: threading.Event):
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, _frame):
        log.info("signal %d: stopping", signum)
        stop.set()

    return {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}


def _restore_signals(previous) -> None:
    if previous:
        for sig, old in previous.items():
            signal.signal(sig, old)
