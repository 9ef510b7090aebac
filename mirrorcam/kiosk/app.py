"""The kiosk loop: camera -> visitor -> neurons -> state machine -> screen -> window.

:class:`Kiosk` does one frame's work in :meth:`Kiosk.step` and keeps no clock of its
own (it is given one), so tests drive it through a simulated camera at full speed.
:func:`run_kiosk` is the loop around it: poll the camera, step, show, read the keys,
ping the watchdog, until the operator's exit chord, a signal, or (in tests) a frame
budget ends it.

What it stores: the log and the aggregate counters file; visitors' landmarks only if
``privacy.record_landmarks`` is switched on; never a picture.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from mirrorcam.containers import NeuronActivity, PoseFrame
from mirrorcam.errors import ConfigError, MirrorcamError
from mirrorcam.kiosk.camera import CameraReading, PoseCamera
from mirrorcam.kiosk.config import KioskConfig
from mirrorcam.kiosk.playlist import PlaylistClip, load_playlist, stand_in_clips
from mirrorcam.kiosk.render import RASTER_SECONDS, KioskRenderer, KioskView
from mirrorcam.kiosk.service import Counters, SystemdNotifier
from mirrorcam.kiosk.state import KioskEvent, KioskStateMachine, Phase, VisitorSelector
from mirrorcam.modes.common import MAX_KEYS_PER_FRAME, X11Window, open_window, x11_screen_size

log = logging.getLogger(__name__)

ATTRACT_CLIP_S = 12.0
"""In attract mode each performer clip loops this long before the next one."""

MAX_RECORDED_FRAMES = 30 * 600
"""With ``privacy.record_landmarks`` on, one session keeps at most 10 minutes at 30 fps."""


class Kiosk:
    """One kiosk: state machine, visitor selection, neurons, playlist and screen.

    Args:
        config: The configuration.
        clips: Playable performer clips (at least one).
        bank: The visitor's neuron bank (``update(pose_frame) -> {id: NeuronActivity}``, ``reset()``, ``names``).
        clock: Monotonic seconds.
        renderer: Draws the screens (default: one from ``config``).
        counters: Aggregate counters (None: count nothing).
        notifier: systemd notifier (None: no heartbeat).
        wallclock: Local time, for naming landmark recordings when those are allowed.
    """

    def __init__(
        self,
        config: KioskConfig,
        clips: Sequence[PlaylistClip],
        bank,
        clock: Callable[[], float],
        renderer: KioskRenderer | None = None,
        counters: Counters | None = None,
        notifier: SystemdNotifier | None = None,
        wallclock: Callable[[], _dt.datetime] = _dt.datetime.now,
    ) -> None:
        if not clips:
            raise ValueError("clips must hold at least one playable clip")
        missing = [c.action for c in clips if c.action not in bank.names]
        if missing:
            raise ValueError(f"the neuron bank has no neuron for {', '.join(missing)}")
        self.config = config
        self.clips = list(clips)
        self.bank = bank
        self.names = list(bank.names)
        self.clock = clock
        self.renderer = renderer or KioskRenderer(config)
        self.counters = counters
        self.notifier = notifier
        self.wallclock = wallclock
        self.machine = KioskStateMachine(config.timing, [c.action for c in self.clips], config.matching.min_score)
        self.selector = VisitorSelector(config.visitor, config.timing.visitor_hold_s)
        self.frames = 0
        self.events_seen: dict[str, int] = {}
        self._last_frame_at: float | None = None
        self._last_image: np.ndarray | None = None
        self._frame_size = (640, 480)
        self._clip: PlaylistClip = self.clips[0]
        self._clip_started = clock()
        self._attract_index = 0
        self._last_clip_index = -1
        self._spikes: deque[tuple[float, int]] = deque(maxlen=128)  # (time, 0=OTHER 1=YOU)
        # (time, performer's, visitor's target activation): the raster's curves; bounded.
        self._history: deque[tuple[float, float, float]] = deque(maxlen=1200)
        self._activation = 0.0
        self._visitor = None
        self._others: tuple = ()
        self._recorded: list[PoseFrame] = []
        self._recordings_saved = 0

    # ----------------------------------------------------------------- one frame
    def step(self, reading: CameraReading) -> np.ndarray:
        """Process one camera poll and return the picture to show."""
        now = self.clock()
        self.frames += 1
        events: list[KioskEvent] = []
        frame = reading.pose_frame
        if frame is not None:
            self._last_frame_at = now
            offered = self.selector.select(now, frame)
            activity = self._match(frame, self._engaged(offered))
            events += self.machine.update(now, offered, activity, anyone_in_view=bool(frame.persons))
            # Asked again after the update: a takeover has just made the offered person the visitor.
            visitor = self._engaged(offered)
            # The picture and the people drawn over it are taken together, once the frame's
            # work is done: the picture had been taken before it, so a frame whose neurons
            # raised (skipped, logged) left its picture under the last frame's skeleton
            # until the next frame came (tests/test_kiosk_app.py).
            self._last_image, self._frame_size = frame.image, frame.image_size
            self._visitor = visitor
            self._others = tuple(p for p in frame.persons if visitor is None or p.id != visitor.id)
            if activity is not None:
                self._note_visitor_firings(now, activity)
        else:
            since = now - (self._last_frame_at if self._last_frame_at is not None else self._clip_started)
            if since >= self.config.camera.lost_after_s:
                events += self.machine.camera_lost(now)
                self._visitor, self._others, self._last_image = None, (), None
                self.selector.reset()
        for event in events:
            self._react(event)
        # Recorded only now: a session_started above opens a new recording, so a new
        # visitor's first frame goes into their own file, not the previous visitor's.
        if frame is not None and self.config.privacy.record_landmarks and self._visitor is not None and self.machine.visitor_id is not None:
            self._record(frame, self._visitor)
        self._advance_clip(now)
        if self.machine.phase in (Phase.IMITATE, Phase.MIRROR):
            index = self._clip.index_at(now - self._clip_started)
            other = float(self._clip.trace.activation[index]) if len(self._clip.trace.activation) else 0.0
            self._history.append((now, other, self._activation))
        canvas = self.renderer.render(self._view(now))
        if self.notifier is not None:
            self.notifier.ping()
        if self.counters is not None:
            self.counters.maybe_flush()
        return canvas

    def _engaged(self, person):
        """``person`` if they are (or may become, from attract) the visitor, else None.

        During a session the selector may offer someone else once the visitor has been
        gone ``visitor_hold_s``; until the state machine hands them the session they are
        only a candidate: not matched, drawn or recorded as the visitor.
        """
        if person is None or self.machine.visitor_id not in (None, person.id):
            return None
        return person

    def _match(self, frame: PoseFrame, visitor) -> NeuronActivity | None:
        """The visitor's neuron activity; the neurons only run while someone is engaged."""
        if visitor is None or self.machine.phase not in (Phase.ENGAGE, Phase.IMITATE, Phase.MIRROR):
            self._activation = 0.0
            return None
        # Only the visitor goes through the bank: bystanders cost nothing.
        activities = self.bank.update(replace(frame, persons=(visitor,), image=None))
        activity = activities.get(visitor.id)
        target = self.machine.action
        if activity is not None and target is not None:
            self._activation = float(activity.activation[self.names.index(target)])
        return activity

    def _note_visitor_firings(self, now: float, activity: NeuronActivity) -> None:
        target = self.machine.action
        if target is not None and any(f.template == target for f in activity.firings):
            self._spikes.append((now, 1))

    def _react(self, event: KioskEvent) -> None:
        self.events_seen[event.kind] = self.events_seen.get(event.kind, 0) + 1
        kind = event.kind
        if kind == "session_started":
            log.info("visitor session started")
            self.bank.reset()
            self._spikes.clear()
            self._recorded = []
            if self.counters is not None:
                self.counters.session_started()
        elif kind == "session_ended":
            log.info("visitor session ended (%s)", event.reason)
            self.bank.reset()
            self._spikes.clear()
            self._save_recording()
            self._play(self.clips[self._attract_index % len(self.clips)])
        elif kind == "action_started":
            self.bank.reset()
            self._spikes.clear()
            self._history.clear()
            self._play(self.clips[self.machine.action_index])
            log.info("asking for %s", event.action)
        elif kind == "mirror":
            log.info("mirror event: %s", event.action)
            if self.counters is not None:
                self.counters.mirror_event(event.action)
        elif kind == "action_skipped":
            log.info("%s not imitated within %.0f s; next action", event.action, self.config.timing.imitate_timeout_s)
        elif kind == "camera_lost":
            log.warning("camera unavailable; waiting for it to come back")
            if self.notifier is not None:
                self.notifier.status("camera unavailable")
        elif kind == "camera_back":
            log.info("camera is back")
            if self.notifier is not None:
                self.notifier.status("running")

    def _play(self, clip: PlaylistClip) -> None:
        if clip is not self._clip:
            self._clip.release()  # one open video at a time
        self._clip = clip
        self._clip_started = self.clock()
        self._last_clip_index = -1

    def _advance_clip(self, now: float) -> None:
        phase = self.machine.phase
        if phase is Phase.ATTRACT and now - self._clip_started >= max(ATTRACT_CLIP_S, self._clip.duration_s):
            self._attract_index = (self._attract_index + 1) % len(self.clips)
            self._play(self.clips[self._attract_index])
        if phase in (Phase.IMITATE, Phase.MIRROR):
            index = self._clip.index_at(now - self._clip_started)
            previous = self._last_clip_index
            if previous >= 0 and index != previous:
                fired = self._clip.trace.fired
                passed = [i for i in fired if previous < i <= index] if index > previous else [i for i in fired if i > previous or i <= index]
                if passed:
                    self._spikes.append((now, 0))
            self._last_clip_index = index

    def _view(self, now: float) -> KioskView:
        phase = self.machine.phase
        clip_index = self._clip.index_at(now - self._clip_started)
        spikes = [(now - t, ch) for t, ch in self._spikes if now - t <= RASTER_SECONDS]
        label = self._clip.label if phase in (Phase.IMITATE, Phase.MIRROR) else ""
        other_trace = you_trace = None
        if phase is Phase.MIRROR and len(self._history) > 1:
            h = np.asarray(self._history, np.float32)
            grid = np.linspace(now - RASTER_SECONDS, now, 160)
            inside = grid >= h[0, 0]
            other_trace = np.where(inside, np.interp(grid, h[:, 0], h[:, 1]), 0.0)
            you_trace = np.where(inside, np.interp(grid, h[:, 0], h[:, 2]), 0.0)
        return KioskView(
            phase=phase,
            now=now,
            phase_time=self.machine.seconds_in_phase(now),
            seconds_left=self.machine.seconds_left(now),
            camera_image=self._last_image,
            visitor=self._visitor,
            others=self._others,
            clip=self._clip,
            clip_index=clip_index,
            action_label=label,
            visitor_activation=self._activation,
            other_spikes=tuple(a for a, ch in spikes if ch == 0),
            you_spikes=tuple(a for a, ch in spikes if ch == 1),
            visitor_missing=self.machine.visitor_missing(now),
            frame_size=self._frame_size,
            other_trace=other_trace,
            you_trace=you_trace,
        )

    # ----------------------------------------------------------------- opt-in recording
    def _record(self, frame: PoseFrame, visitor) -> None:
        if len(self._recorded) < MAX_RECORDED_FRAMES:
            self._recorded.append(PoseFrame(frame.timestamp_ms, frame.index, (visitor,), frame.image_size))

    def _save_recording(self) -> None:
        if not self._recorded or not self.config.privacy.record_landmarks:
            self._recorded = []
            return
        from mirrorcam.recording import Recording, fps_of, save_recording

        frames = tuple(self._recorded)
        self._recorded = []
        fps = fps_of(frames)
        # Named by the hour only, like the counters; a number keeps names apart.
        self._recordings_saved += 1
        name = f"visitor-{self.wallclock().strftime('%Y-%m-%dT%H')}-{os.getpid()}-{self._recordings_saved}.npz"
        path = Path(self.config.privacy.record_dir) / name
        try:
            save_recording(path, Recording(frames, fps, frames[0].image_size, source="kiosk visitor", model_variant=self.config.pose.model_variant))
            log.info("saved a visitor's landmarks (record_landmarks is on) to %s", path)
        except (OSError, MirrorcamError) as exc:  # (a full disk, a folder gone: never the end of the exhibit)
            log.error("cannot save landmarks to %s: %s", path, exc)

    def close(self) -> None:
        """Release the open clip and write what is pending."""
        self._save_recording()
        for clip in self.clips:
            clip.release()
        if self.counters is not None:
            self.counters.flush()


# --------------------------------------------------------------------------- keys and window

ESC = 27


class ExitChord:
    """The operator's exit: Esc, then ``sequence`` typed within ``window_s`` seconds.

    A visitor mashing a keyboard, or a cat on it, will not produce it; an operator who
    knows it quits in two seconds.  Any wrong key starts over.

    Example:
        >>> chord = ExitChord("quit", 3.0)
        >>> [chord.feed(k, 0.1 * i) for i, k in enumerate([27, *map(ord, "quit")])]
        [False, False, False, False, True]
    """

    def __init__(self, sequence: str, window_s: float) -> None:
        if len(sequence) < 3:
            raise ValueError(f"sequence must have at least 3 characters, got {sequence!r}")
        if window_s <= 0:
            raise ValueError(f"window_s must be > 0, got {window_s}")
        self.sequence = sequence.lower()
        self.window_s = window_s
        self._typed = ""
        self._started: float | None = None

    def feed(self, key: int, now: float) -> bool:
        """Feed one key code (-1 for none); True when the chord is complete."""
        if key is None or key < 0:
            return False
        key &= 0xFFFF
        if self._started is not None and now - self._started > self.window_s:
            self._started, self._typed = None, ""
        if key == ESC:
            self._started, self._typed = now, ""
            return False
        if self._started is None:
            return False
        ch = chr(key).lower() if 32 <= key < 127 else ""
        expected = self.sequence[len(self._typed)]
        if ch != expected:
            self._started, self._typed = None, ""
            return False
        self._typed += ch
        if self._typed == self.sequence:
            self._started, self._typed = None, ""
            return True
        return False


class Display:
    """Where frames go: a window, or nowhere (tests, headless soak)."""

    reads_keys = False  # True: the loop calls pump() while it waits for the camera

    def show(self, image: np.ndarray) -> tuple[int, ...]:
        """Show ``image``; return the key codes pressed since the last frame (oldest first)."""
        return ()

    def pump(self) -> None:
        """Read the keyboard once while the loop waits (the keys come with the next :meth:`show`)."""

    def close(self) -> None:
        pass


class NullDisplay(Display):
    """Draws nothing, reads no keys: the loop runs headless."""

    def __init__(self) -> None:
        self.frames = 0

    def show(self, image: np.ndarray) -> tuple[int, ...]:
        self.frames += 1
        return ()


def fit_to_screen(config: KioskConfig, screen: tuple[int, int] | None) -> KioskConfig:
    """``config`` drawn at the screen's shape: its height kept, its width to the screen's aspect.

    Why: a 16:9 drawing on a 16:10, 4:3 or 5:4 screen was letterboxed with light grey bars,
    and the picture then did not cover the screen, which the bare-X fallback in
    :meth:`WindowDisplay.show` took for a window that had not gone fullscreen: it resized
    the window and knocked it out of fullscreen.  The layout follows any aspect (drawn in
    units of the height).

    Example:
        >>> fit_to_screen(KioskConfig(), (1280, 1024)).display.width  # 720 lines at 5:4
        900
    """
    if not screen or screen[0] <= 0 or screen[1] <= 0:
        return config
    height = config.display.height
    width = max(320, min(7680, round(height * screen[0] / screen[1] / 2) * 2))  # (even: video codecs)
    if width != config.display.width:
        log.info("drawing at %dx%d for a %dx%d screen", width, height, *screen)
    return replace(config, display=replace(config.display, width=width))


COVER_CHECK_FRAMES = 60  # how often (in frames) the kiosk window checks that it covers the screen


class WindowDisplay(Display):
    """A fullscreen, frameless OpenCV window without toolbar or pointer.

    A window closed by a window manager shortcut is simply opened again: only the
    operator's chord (or a signal) ends the kiosk.
    """

    reads_keys = True

    def __init__(self, title: str = "mirrorcam kiosk", fullscreen: bool = True, size: tuple[int, int] | None = None) -> None:
        self.title = title
        self.fullscreen = fullscreen
        self.size = size  # the drawing's: a window (not fullscreen) opens at it, or at 90 % of a smaller screen
        self.screen = x11_screen_size() if fullscreen else None
        self._shown = 0
        self._pending: list[int] = []  # keys read by pump() for the next show()
        self._open()
        self._x_window = X11Window(title)
        if fullscreen and not self._x_window.hide_pointer():
            log.info("could not hide the mouse pointer (no XFixes); run 'unclutter' beside the kiosk")

    def _open(self, afresh: bool = False) -> None:
        # The picture keeps its proportions; sized to the drawing (Qt's default 400 x 300 had
        # grey bars around it), or to 90 % of a smaller screen, before going fullscreen.
        open_window(self.title, self.size, fullscreen=self.fullscreen, afresh=afresh)

    def show(self, image: np.ndarray) -> tuple[int, ...]:
        try:
            if cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
                log.warning("the kiosk window was closed; opening it again")
                self._open()
        except cv2.error:
            self._open()
        cv2.imshow(self.title, image)
        # Every key pressed since the last frame, not one per frame: on a slow frame (a
        # loaded PC) the operator's chord would otherwise trickle in one key per frame
        # and outlast its time window.  The keys come from the X server's queue (see
        # X11Window: OpenCV alone keeps only the last key between two reads), and the
        # loop also reads them while the camera waits (pump), for the window's events.
        keys = self._pending + self._x_window.read_keys()
        self._pending = []
        keys = keys[:MAX_KEYS_PER_FRAME]
        self._shown += 1
        if self._shown % COVER_CHECK_FRAMES == 3 and self.screen is not None:
            # Without a window manager (a bare X session, Xvfb) Qt cannot go fullscreen
            # by itself: cover the screen explicitly.  With one, this is already true.
            # Checked again every COVER_CHECK_FRAMES: on a loaded machine the first look can
            # come before the window has its size (a CI run once left it at 400 x 300), and
            # an unattended exhibit must recover from whatever shrank it.
            _x, _y, w, h = cv2.getWindowImageRect(self.title)
            # (A picture of another shape than the screen fills it one way only.)
            if w < self.screen[0] and h < self.screen[1]:
                cv2.moveWindow(self.title, 0, 0)
                cv2.resizeWindow(self.title, *self.screen)
        if self._x_window.gone_blank(image):
            # (Qt can miss its window's mapping under load and then never paints it; a
            # window unmapped behind the kiosk's back looks the same.  See X11Window.)
            log.warning("the kiosk window shows nothing of its pictures; opening it again")
            self._open(afresh=True)
        return tuple(keys)

    def pump(self) -> None:
        if len(self._pending) < MAX_KEYS_PER_FRAME:
            self._pending += self._x_window.read_keys()

    def close(self) -> None:
        self._x_window.close()  # (the pointer shows again)
        try:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
        except cv2.error:
            pass


# --------------------------------------------------------------------------- loop

MAX_FAILURES_IN_A_ROW = 50


def run_kiosk(
    kiosk: Kiosk,
    camera: PoseCamera,
    display: Display,
    max_frames: int | None = None,
    stop: threading.Event | None = None,
    on_frame: Callable[[Kiosk, np.ndarray], None] | None = None,
) -> int:
    """Run until the exit chord, ``stop``, the camera's end (tests) or ``max_frames``.

    Returns the number of frames shown.
    """
    chord = ExitChord(kiosk.config.operator.exit_sequence, kiosk.config.operator.exit_window_s)
    stop = stop or threading.Event()
    shown = 0
    failures = 0
    ready = False
    while not stop.is_set() and (max_frames is None or shown < max_frames):
        # (Headless, the camera sleeps while it waits: nothing to read.)
        reading = camera.poll(idle=display.pump if display.reads_keys else None)
        if getattr(camera, "finished", False):
            break
        try:
            canvas = kiosk.step(reading)
        except Exception:
            # An unattended exhibit keeps going past a bad frame; a persistent fault
            # ends the process so the supervisor (systemd Restart=always) starts afresh.
            failures += 1
            log.exception("kiosk frame failed (%d in a row)", failures)
            if failures >= MAX_FAILURES_IN_A_ROW:
                raise
            continue
        failures = 0
        keys = display.show(canvas)
        shown += 1
        if on_frame is not None:
            on_frame(kiosk, canvas)
        if not ready and kiosk.notifier is not None:
            kiosk.notifier.ready("running")
            ready = True
        now = kiosk.clock()
        if any(chord.feed(key, now) for key in keys):
            log.info("operator exit")
            break
    return shown


# --------------------------------------------------------------------------- assembly


def load_library_and_bank(config: KioskConfig):
    """The template library (built-ins plus ``matching.templates``) and a factory of neuron banks."""
    from mirrorcam.matching import NeuronBank
    from mirrorcam.templates import TemplateLibrary

    library = TemplateLibrary.load(extra_dirs=[Path(d) for d in config.matching.templates])
    templates = list(library.templates)
    if not templates:
        raise ConfigError("the template library is empty; the kiosk has no neurons to show")
    return templates, lambda: NeuronBank(templates)


def clip_landmark_loader(config: KioskConfig) -> Callable[[Path], object]:
    """How a playlist video gets its performer's landmarks (cache allowed or not)."""
    from mirrorcam.pose import PoseEstimatorOptions

    # The pose stage's defaults apart from the model, so clips extracted by other modes
    # (and by `mirrorcam extract`) are found in the landmark cache.
    options = PoseEstimatorOptions(model_variant=config.pose.model_variant)

    def cached(path: Path):
        from mirrorcam.pipeline import clip_landmarks

        return clip_landmarks(path, options, progress=False)

    def in_memory(path: Path):
        from mirrorcam.pipeline import iter_pose_frames
        from mirrorcam.recording import recording_from_frames
        from mirrorcam.sources import VideoFileSource

        source = VideoFileSource(path)
        with source:
            frames = [replace(f, image=None) for f in iter_pose_frames(source, options=options)]
        return recording_from_frames(frames, source.fps, source.size, str(path), options.model_variant)

    return cached if config.privacy.cache_clip_landmarks else in_memory


def playable_clips(config: KioskConfig, templates, bank_factory, landmarks=None,
                   stop: threading.Event | None = None) -> list[PlaylistClip]:
    """The playlist's playable clips; template previews stand in when none is playable.

    With ``stop`` set while loading (the service stopped during start-up: uncached clips
    take minutes), the clips loaded so far, and no stand-ins.

    Raises:
        ConfigError: No clip is playable and no template has a stick figure to stand in.
    """
    clips = load_playlist(config.playlist, templates, bank_factory, landmarks or clip_landmark_loader(config), stop=stop)
    if clips or (stop is not None and stop.is_set()):
        return clips
    stand_ins = stand_in_clips(config.playlist, templates)
    if not stand_ins:
        raise ConfigError("no playlist clip can be played and the templates have no previews to show instead")
    log.error("no playlist clip is playable; showing the templates' stick figures instead (%s)", ", ".join(c.action for c in stand_ins))
    return stand_ins
