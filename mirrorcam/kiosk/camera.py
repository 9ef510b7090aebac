"""Cameras as the kiosk sees them: something polled for the newest pose frame.

* :class:`LivePoseCamera`: a real camera, stream or video file (via
  :mod:`mirrorcam.sources`, which reconnects with backoff in its reader thread) plus the
  MediaPipe pose stage.
* :class:`RecordingCamera`: a landmark recording played like a camera (demos,
  exhibits without MediaPipe), in real time or on an injected clock.
* :class:`ScriptedCamera`: a simulated camera for tests: scenes of generated or
  recorded performers, empty rooms and unplugged cables, on a :class:`ManualClock` so
  hours of kiosk life run in seconds without sleeping.

Every camera's :meth:`poll` returns a :class:`CameraReading`; ``connected`` False means
the device is gone (the kiosk shows the calm screen after ``camera.lost_after_s``).
"""

from __future__ import annotations

import logging
import stat
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from mirrorcam.containers import NUM_LANDMARKS, Person, PoseFrame
from mirrorcam.errors import SourceError
from mirrorcam.fileio import file_kind
from mirrorcam.recording import Recording

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CameraReading:
    """One poll of a camera.

    Attributes:
        pose_frame: The newest frame's poses (and picture), or None if no new frame came.
        connected: False while the device is unplugged or failing.
    """

    pose_frame: PoseFrame | None
    connected: bool = True


class PoseCamera(Protocol):
    """What the kiosk loop needs from a camera."""

    description: str
    finished: bool  # True when a finite (test) camera has nothing more to give

    def poll(self, idle: Callable[[], None] | None = None) -> CameraReading:
        """The next reading; while it waits for one, ``idle()`` is called over and over
        (the window's keyboard is read there: keys pressed during a long wait were lost)."""
        ...

    def close(self) -> None: ...


class ManualClock:
    """A clock that only moves when told to: ``clock()`` returns seconds.

    Example:
        >>> clock = ManualClock()
        >>> clock.advance(1.5)
        >>> clock()
        1.5
    """

    def __init__(self, start: float = 0.0) -> None:
        self.now = float(start)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"a clock cannot go back ({seconds} s)")
        self.now += seconds


# --------------------------------------------------------------------------- live


def camera_file_problem(path: Path) -> str | None:
    """Why a camera that is a file path cannot be one (``"is not a regular file (a FIFO)"``),
    or None: a regular file, a character device (``/dev/video0``) or a path not there yet.

    OpenCV's open of a FIFO waits for a writer inside C, deaf to Ctrl+C and SIGTERM (only
    ``kill -9`` ended the kiosk); a socket or a folder plays nothing either.
    """
    try:
        mode = path.stat().st_mode
    except OSError:  # (missing: a file source may appear later, as a camera may be plugged in)
        return None
    if stat.S_ISREG(mode) or stat.S_ISCHR(mode):
        return None
    return f"is not a regular file ({file_kind(mode)})"


def _refuse_camera_file(path: Path) -> None:
    """Raise :class:`SourceError` for a camera file :func:`camera_file_problem` refuses."""
    problem = camera_file_problem(path)
    if problem:
        raise SourceError(f"camera {path} {problem}")


def _file_capture(path: Path):
    """A video file opened as a simulated camera, checked at every (re)open: a FIFO put in
    its place later would block the reader thread for good (this error is retried instead)."""
    from mirrorcam.sources import PacedFileCapture

    _refuse_camera_file(path)
    return PacedFileCapture(path, loop=True, realtime=True)


class LivePoseCamera:
    """A camera, stream or video file through the pose stage.

    Args:
        spec: Camera index (``"0"``), stream URL, or a video file played as a simulated
            camera (looping, at its own frame rate).
        options: Pose stage options.
        max_backoff_s: Longest wait between two reconnection attempts.
        poll_timeout_s: How long :meth:`poll` waits for a frame (keeps the window responsive).
        source: Use this running :class:`~mirrorcam.sources.LiveSource` instead of opening ``spec``.

    The source starts even when the camera is absent at launch: a kiosk that boots
    before its USB camera is ready must wait for it, not exit.

    Raises:
        SourceError: ``spec`` is a FIFO, a socket or a folder (:func:`camera_file_problem`).
    """

    finished = False

    def __init__(self, spec: str, options, max_backoff_s: float = 5.0, poll_timeout_s: float = 0.1, source=None) -> None:
        from mirrorcam import sources
        from mirrorcam.pipeline import PoseWorker
        from mirrorcam.pose import PoseEstimator

        self.poll_timeout_s = poll_timeout_s
        if source is not None:
            self.source = source  # an already running LiveSource (tests: a flaky device)
        elif isinstance(what := sources.parse_source_spec(spec), int):
            self.source = sources.camera_source(what, require_initial=False, max_backoff_s=max_backoff_s)
        elif isinstance(what, str):
            self.source = sources.url_source(what, require_initial=False, max_backoff_s=max_backoff_s)
        else:
            path = what
            _refuse_camera_file(path)  # (at start too, not only in the config's check: other callers)
            self.source = sources.LiveSource(
                lambda: _file_capture(path),
                f"simulated camera ({path.name})",
                require_initial=False,
                max_backoff_s=max_backoff_s,
            )
        self.description = self.source.description
        try:
            self.estimator = PoseEstimator.create_from_options(options)
        except BaseException:
            self.source.close()
            raise
        # Pose inference (30-80 ms a frame on a 2-core PC) runs in a thread, as in
        # ``mirrorcam live``: on the main thread it kept the window from reading the
        # keyboard, and OpenCV reports only the last key pressed between two reads, so
        # the operator's exit chord typed at 30-80 ms a key lost keys and failed.
        self.worker = PoseWorker(self.source, self.estimator)

    def poll(self, idle: Callable[[], None] | None = None) -> CameraReading:
        if idle is None:
            pose_frame = self.worker.get(timeout=self.poll_timeout_s)
        else:
            deadline = time.monotonic() + self.poll_timeout_s
            pose_frame = self.worker.get(timeout=0.0)
            while pose_frame is None and time.monotonic() < deadline:
                idle()
                pose_frame = self.worker.get(timeout=0.002)
        if pose_frame is None:
            return CameraReading(None, self.source.connected)
        return CameraReading(pose_frame, True)

    def close(self) -> None:
        ended = self.worker.close()  # first: it reads the source and runs the estimator
        self.source.close()
        if ended:
            self.estimator.close()
        else:  # (still inside MediaPipe: freed with the process, which is ending)
            log.warning("the pose thread did not stop in time; leaving the pose model open")


# --------------------------------------------------------------------------- recordings


def _wait(seconds: float, idle: Callable[[], None] | None) -> None:
    """Sleep ``seconds``, or call ``idle()`` until they have passed."""
    if idle is None:
        time.sleep(seconds)
        return
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        idle()


class RecordingCamera:
    """A landmark recording replayed as a camera, looping, with continuous timestamps.

    Args:
        recording: The performance (frames without pictures).
        clock: Seconds; with ``realtime`` the camera waits for the clock like a device.
        realtime: Sleep until each frame is due (False: one frame per poll, no waiting).
        loop: Start over at the end (else :attr:`finished` becomes True).
    """

    def __init__(self, recording: Recording, clock: Callable[[], float] | None = None, realtime: bool = True, loop: bool = True, description: str = "") -> None:
        if not recording.frames:
            raise ValueError("recording has no frames")
        self.recording = recording
        self.clock = clock or time.monotonic
        self.realtime = realtime
        self.loop = loop
        self.description = description or f"recording ({recording.source or 'landmarks'})"
        self.finished = False
        self._i = 0
        self._start: float | None = None
        self._period = 1.0 / recording.fps

    def poll(self, idle: Callable[[], None] | None = None) -> CameraReading:
        if self.finished:
            return CameraReading(None, False)
        n = len(self.recording.frames)
        if self._start is None:
            self._start = self.clock()
        due = self._start + self._i * self._period
        if self.realtime:
            delay = due - self.clock()
            if delay > 0.1:
                _wait(0.1, idle)  # stay responsive; the frame comes on a later poll
                return CameraReading(None, True)
            if delay > 0:
                _wait(delay, idle)
        frame = self.recording.frames[self._i % n]
        pose_frame = replace(frame, timestamp_ms=self._i * self._period * 1000.0, index=self._i, captured_at=time.perf_counter())
        self._i += 1
        if self._i >= n and not self.loop:
            self.finished = True
        return CameraReading(pose_frame, True)

    def close(self) -> None:
        pass


# --------------------------------------------------------------------------- generated performers

# A standing person in world coordinates (metres, hip-centred, y down, x to the
# person's left as MediaPipe reports it), with arms hanging.
_STANDING = {
    0: (0.0, -0.62, -0.05), 1: (0.02, -0.66, -0.06), 2: (0.03, -0.66, -0.06), 3: (0.04, -0.66, -0.06),
    4: (-0.02, -0.66, -0.06), 5: (-0.03, -0.66, -0.06), 6: (-0.04, -0.66, -0.06), 7: (0.07, -0.64, 0.0),
    8: (-0.07, -0.64, 0.0), 9: (0.02, -0.58, -0.05), 10: (-0.02, -0.58, -0.05),
    11: (0.18, -0.45, 0.0), 12: (-0.18, -0.45, 0.0), 13: (0.22, -0.20, 0.0), 14: (-0.22, -0.20, 0.0),
    15: (0.24, 0.05, 0.0), 16: (-0.24, 0.05, 0.0), 17: (0.25, 0.10, 0.0), 18: (-0.25, 0.10, 0.0),
    19: (0.24, 0.11, 0.0), 20: (-0.24, 0.11, 0.0), 21: (0.22, 0.09, 0.0), 22: (-0.22, 0.09, 0.0),
    23: (0.10, 0.0, 0.0), 24: (-0.10, 0.0, 0.0), 25: (0.11, 0.42, 0.0), 26: (-0.11, 0.42, 0.0),
    27: (0.12, 0.82, 0.05), 28: (-0.12, 0.82, 0.05), 29: (0.12, 0.86, 0.08), 30: (-0.12, 0.86, 0.08),
    31: (0.12, 0.88, -0.05), 32: (-0.12, 0.88, -0.05),
}
STANDING_WORLD = np.array([_STANDING[i] for i in range(NUM_LANDMARKS)], np.float32)


def generated_person(
    person_id: int,
    cx: float = 0.5,
    height: float = 0.7,
    t: float = 0.0,
    wave_hz: float = 0.0,
    visible: float = 0.95,
) -> Person:
    """A synthetic standing person, optionally waving the right hand above the head.

    Args:
        person_id: Tracker id.
        cx: Horizontal centre in the picture (0..1).
        height: Body height as a fraction of the picture (beyond 1: too close to the lens).
        t: Time in seconds (animates the wave).
        wave_hz: Waves per second; 0 stands still.
        visible: Visibility and presence of every landmark.
    """
    world = STANDING_WORLD.copy()
    if wave_hz > 0:
        swing = 0.18 * np.sin(2 * np.pi * wave_hz * t)
        world[14] = (-0.32, -0.62, 0.0)  # right elbow out and up
        world[[16, 18, 20, 22]] = np.array([(-0.30 + swing, -0.95, 0.0)] * 4, np.float32)
    scale = height / 1.55  # world span nose..feet is about 1.55 m
    image = np.empty_like(world)
    # The camera faces the person: their left (world +x) is on the picture's right.
    image[:, 0] = cx + world[:, 0] * scale * (9.0 / 16.0) * 1.0
    image[:, 1] = 0.5 + (world[:, 1] - 0.13) * scale
    image[:, 2] = world[:, 2] * scale
    vis = np.full(NUM_LANDMARKS, visible, np.float32)
    return Person(person_id, image.astype(np.float32), world, vis, vis.copy())


# --------------------------------------------------------------------------- scripted camera

PersonsFn = Callable[[float], Sequence[Person]]


@dataclass(frozen=True)
class Scene:
    """A stretch of simulated camera time.

    Attributes:
        seconds: Duration.
        persons: ``t -> people in view`` (t in seconds since the scene began); None: empty room.
        recording: A recorded performer played instead (its people, ids offset by ``id_offset``).
        connected: False simulates an unplugged camera for the whole scene.
        id_offset: Added to recorded person ids (a new visitor gets new ids, as the tracker would).
    """

    seconds: float
    persons: PersonsFn | None = None
    recording: Recording | None = None
    connected: bool = True
    id_offset: int = 0


def empty(seconds: float) -> Scene:
    return Scene(seconds)


def unplugged(seconds: float) -> Scene:
    return Scene(seconds, connected=False)


def standing(seconds: float, person_id: int = 0, **kwargs) -> Scene:
    return Scene(seconds, persons=lambda t: (generated_person(person_id, t=t, **kwargs),))


def performing(recording: Recording, seconds: float | None = None, id_offset: int = 0) -> Scene:
    """A recorded performer, looped to ``seconds`` (default: once through)."""
    return Scene(seconds if seconds is not None else len(recording) / recording.fps, recording=recording, id_offset=id_offset)


class ScriptedCamera:
    """A simulated camera playing :class:`Scene` values on a :class:`ManualClock`.

    Each :meth:`poll` advances the clock by one frame period and returns that frame:
    no sleeping, so a soak of 100,000 frames costs only the kiosk's own work.

    Args:
        scenes: What the camera sees, in order.
        fps: Frame rate.
        clock: Advanced by the camera (share it with the kiosk).
        loop: Start the script over at the end (else :attr:`finished` turns True).
        frame_size: ``(w, h)`` reported in the pose frames.
        image: An optional picture carried by every frame (to exercise drawing the camera view).

    Raises:
        ValueError: No scenes, a scene that lasts no time (or NaN), or ``fps <= 0``.
    """

    def __init__(
        self,
        scenes: Sequence[Scene],
        fps: float = 30.0,
        clock: ManualClock | None = None,
        loop: bool = False,
        frame_size: tuple[int, int] = (640, 480),
        image: np.ndarray | None = None,
    ) -> None:
        if not scenes:
            raise ValueError("scenes must not be empty")
        if fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        # A looped script whose scenes last no time would skip scenes forever inside
        # poll(); a NaN length would never end its scene.
        bad = next(((i, s.seconds) for i, s in enumerate(scenes) if not s.seconds > 0), None)
        if bad is not None:
            raise ValueError(f"scene {bad[0]} lasts {bad[1]} s; every scene must last more than 0 s")
        self.scenes = tuple(scenes)
        self.fps = fps
        self.clock = clock or ManualClock()
        self.loop = loop
        self.frame_size = frame_size
        self.image = image
        self.description = f"scripted camera ({len(self.scenes)} scenes)"
        self.finished = False
        self.frames = 0
        self._scene = 0
        self._scene_start = 0.0
        self._index = 0

    def poll(self, idle: Callable[[], None] | None = None) -> CameraReading:
        if self.finished:
            return CameraReading(None, False)
        self.clock.advance(1.0 / self.fps)
        now = self.clock()
        scene = self.scenes[self._scene]
        while now - self._scene_start >= scene.seconds:
            self._scene_start += scene.seconds
            self._scene += 1
            if self._scene >= len(self.scenes):
                if not self.loop:
                    self.finished = True
                    return CameraReading(None, False)
                self._scene = 0
            scene = self.scenes[self._scene]
        t = now - self._scene_start
        if not scene.connected:
            return CameraReading(None, False)
        if scene.recording is not None:
            rec = scene.recording
            source = rec.frames[int(t * rec.fps) % len(rec.frames)]
            persons = tuple(replace(p, id=p.id + scene.id_offset) for p in source.persons)
        else:
            persons = tuple(scene.persons(t)) if scene.persons else ()
        self._index += 1
        self.frames += 1
        frame = PoseFrame(now * 1000.0, self._index, persons, self.frame_size, self.image, time.perf_counter())
        return CameraReading(frame, True)

    def close(self) -> None:
        pass
