"""Video sources: one interface for cameras, files, network streams and image folders.

Every source is an iterable of :class:`~mirrorcam.containers.Frame` and a context
manager.  Files are decoded frame by frame (never loaded whole).  Live sources (a
camera, a URL, a simulated camera) run a reader thread that keeps only the newest
frame: slow processing drops frames instead of building lag, and a lost source is
reopened with backoff instead of ending the program.

Example:
    >>> with open_source("clip.mp4") as source:   # doctest: +SKIP
    ...     for frame in source:
    ...         ...
"""

from __future__ import annotations

import logging
import math
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from mirrorcam.containers import Frame
from mirrorcam.errors import SourceError
from mirrorcam.fileio import is_utf8, require_readable

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
DEFAULT_FPS = 30.0


class Source(Protocol):
    """What every frame source offers."""

    description: str
    fps: float
    is_live: bool

    def __iter__(self) -> Iterator[Frame]: ...

    def close(self) -> None: ...


class _ContextMixin:
    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def opencv_path(path: str | Path) -> str:
    """``path`` as OpenCV may be given it, or a :class:`SourceError`.

    Why: a file name that is not valid UTF-8 (a Latin-1 ``caf\\xe9.mp4`` from an old
    camera or archive; Python carries its bytes as surrogates) crashes OpenCV's
    ``VideoCapture``, ``VideoWriter`` and ``imread`` outright (a segmentation fault, no
    exception), taking the whole process with it.
    """
    text = str(path)
    if not is_utf8(text):
        shown = text.encode("utf-8", "backslashreplace").decode("utf-8")
        raise SourceError(f"{shown}: the name is not valid UTF-8, which OpenCV cannot open; rename the file")
    return text


def _valid_fps(value: float, fallback: float = DEFAULT_FPS) -> float:
    return float(value) if value and np.isfinite(value) and 1.0 <= value <= 1000.0 else fallback


class VideoFileSource(_ContextMixin):
    """Frames of a video file, decoded one at a time by a prefetch thread.

    The prefetch thread overlaps decoding with pose inference (two cores, two jobs)
    through a small bounded queue, so memory stays flat whatever the file's length.

    Args:
        path: Video file.
        prefetch: Frames decoded ahead of the consumer (0 decodes inline).

    Raises:
        SourceError: The file is missing or OpenCV cannot decode a single frame of it.
    """

    is_live = False

    def __init__(self, path: str | Path, prefetch: int = 4) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise SourceError(f"no such video file: {self.path}")
        require_readable(self.path, SourceError)
        if prefetch < 0:
            raise ValueError(f"prefetch must be >= 0, got {prefetch}")
        self.prefetch = prefetch
        cap = cv2.VideoCapture(opencv_path(self.path))
        try:
            ok, first = cap.read() if cap.isOpened() else (False, None)
            if not ok or first is None:
                if self.path.suffix.lower() == ".npz":  # (a landmark recording never reaches here)
                    raise SourceError(f"{self.path} is neither a video nor a mirrorcam landmark recording "
                                      "(an .npz archive without a recording's header)")
                raise SourceError(f"{self.path} is not a readable video (OpenCV could not decode a frame)")
            self.fps = _valid_fps(cap.get(cv2.CAP_PROP_FPS))
            count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            self.frame_count: int | None = count if count > 0 else None
            self.size = (first.shape[1], first.shape[0])
        finally:
            cap.release()
        self.description = str(self.path)
        self.frames_read = 0
        self._stop = threading.Event()
        self._prefetch_stop = threading.Event()

    def _frames(self) -> Iterator[Frame]:
        cap = cv2.VideoCapture(opencv_path(self.path))
        try:
            index = 0
            while not (self._stop.is_set() or self._prefetch_stop.is_set()):
                ok, image = cap.read()
                if not ok or image is None:
                    break
                yield Frame(image, index * 1000.0 / self.fps, index, time.perf_counter())
                index += 1
        finally:
            cap.release()

    def __iter__(self) -> Iterator[Frame]:
        self._stop.clear()
        self.frames_read = 0
        # The prefetcher gets its own stop flag: it raises it when done, while _stop
        # means only "closed by the user" (no truncation warning then).
        self._prefetch_stop = threading.Event()
        frames = self._frames() if self.prefetch == 0 else _prefetched(self._frames(), self.prefetch, self._prefetch_stop)
        for frame in frames:
            self.frames_read += 1
            yield frame
        if self.cut_short and not self._stop.is_set():
            warn_cut_short(self.path, self.frames_read, self.frame_count)

    @property
    def cut_short(self) -> bool:
        """The last pass read under 90 % of the frames the container says it holds."""
        return stopped_early(self.frames_read, self.frame_count)

    def close(self) -> None:
        self._stop.set()
        self._prefetch_stop.set()


def stopped_early(read: int, total: int | None) -> bool:
    """Whether a pass that read ``read`` frames ended short of the ``total`` the container
    declares (under 90 %: the declared count of a sound file is at times a frame or two off)."""
    return bool(total) and read < total * 0.9


def warn_cut_short(path: Path, read: int, total: int) -> None:
    """The one warning for a video whose decoding stopped early (also said again for its cached landmarks)."""
    log.warning("%s: decoding stopped after %d of %d frames (truncated or damaged file?)", path, read, total)


def _prefetched(frames: Iterator[Frame], depth: int, stop: threading.Event) -> Iterator[Frame]:
    """Run ``frames`` in a thread, ``depth`` items ahead of the consumer."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()

    def worker() -> None:
        try:
            for item in frames:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    break
        except Exception as exc:  # surfaced in the consumer's thread
            q.put(exc)
        finally:
            frames.close()
            q.put(done)

    thread = threading.Thread(target=worker, name="mirrorcam-decode", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                break
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        stop.set()
        # Drain so the worker can finish its put and exit.
        while thread.is_alive():
            try:
                q.get(timeout=0.05)
            except queue.Empty:
                pass
        thread.join()


SCENE_CHANGE = 32.0
"""Mean absolute difference (of 255) between two pictures' 32 x 32 grey thumbnails above
which the second is a new scene.  Measured: consecutive frames of the 63 shared clips
differ by at most 23.9 (a jumping jack filmed close; 44.4 once, at a cut in a gym clip),
consecutive photos of the 20 shared COCO pictures by 38.6 to 107.7."""


def _natural_key(path: Path) -> list:
    """Sort key that orders the numbers in a name by value (``frame_2`` < ``frame_10``)."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part.lower()) for part in re.split(r"(\d+)", path.name)]


def _thumbnail(image: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)


class ImageFolderSource(_ContextMixin):
    """Images of a folder, in name order, as frames at a nominal ``fps``; or one image file,
    as a clip of one frame (a photo teaches a held pose).

    Raises:
        SourceError: The folder is missing or holds no image, or ``fps`` is not a frame
            rate a video file could have (1 to 1000).
    """

    is_live = False

    def __init__(self, path: str | Path, fps: float = DEFAULT_FPS) -> None:
        self.path = Path(path)
        one_image = self.path.is_file() and self.path.suffix.lower() in IMAGE_SUFFIXES
        if not (self.path.is_dir() or one_image):
            raise SourceError(f"no such folder: {self.path}")
        # The bounds a video file's rate is held to (NaN had passed "fps <= 0").
        if _valid_fps(fps, fallback=math.nan) != fps:
            raise SourceError(f"cannot play {self.path} at {fps} fps: the rate must be between 1 and 1000")
        # In natural order: frame_2 before frame_10 (as text, 10 came first and scrambled the motion).
        self.files = [self.path] if one_image else sorted(
            (p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=_natural_key)
        if one_image:
            require_readable(self.path, SourceError)
        if one_image and cv2.imread(opencv_path(self.path), cv2.IMREAD_REDUCED_GRAYSCALE_8) is None:
            # (in a folder an unreadable image is skipped with a warning; alone it is the whole clip)
            raise SourceError(f"{self.path} is not a readable image")
        if not self.files:
            videos = sum(p.suffix.lower() in VIDEO_SUFFIXES for p in self.path.iterdir())
            what = f"; it holds {videos} video{'s' * (videos != 1)}: give one of them" if videos else ""
            raise SourceError(f"{self.path} contains no images ({', '.join(sorted(IMAGE_SUFFIXES))}){what}")
        self.fps = float(fps)
        self.frame_count: int | None = len(self.files)
        self.description = str(self.path)

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        previous = None
        for file in self.files:
            try:
                image = cv2.imread(opencv_path(file), cv2.IMREAD_COLOR)
            except SourceError:
                image = None
            if image is None:
                log.warning("skipping %s: not a readable image", file)
                continue
            thumb = _thumbnail(image)
            # A folder is a video's frames or a set of photos; each photo is a scene of its
            # own (people found in one must not be followed into the next).
            new_scene = previous is not None and (
                previous[0] != image.shape or float(np.abs(thumb - previous[1]).mean()) > SCENE_CHANGE)
            previous = (image.shape, thumb)
            yield Frame(image, index * 1000.0 / self.fps, index, time.perf_counter(), new_scene=new_scene)
            index += 1

    def close(self) -> None:
        pass


class Capture(Protocol):
    """The part of ``cv2.VideoCapture`` a live source uses."""

    def read(self) -> tuple[bool, np.ndarray | None]: ...

    def release(self) -> None: ...


class LiveSource(_ContextMixin):
    """A live source read by a background thread that keeps only the newest frame.

    Args:
        opener: Returns an opened capture, or None / raises when the device is absent.
        description: Human-readable name for messages.
        fps: Nominal frame rate (used by writers and the screen).
        require_initial: Raise :class:`SourceError` if the first open fails (a kiosk
            passes False to start anyway and wait for the camera).
        max_backoff_s: Longest wait between two reconnection attempts.

    While the source is lost, :attr:`connected` is False and the reader reopens it with
    exponential backoff (0.25 s doubling up to ``max_backoff_s``).
    """

    is_live = True

    def __init__(
        self,
        opener: Callable[[], Capture | None],
        description: str,
        fps: float = DEFAULT_FPS,
        require_initial: bool = True,
        max_backoff_s: float = 5.0,
    ) -> None:
        if max_backoff_s <= 0:
            raise ValueError(f"max_backoff_s must be > 0, got {max_backoff_s}")
        self._opener = opener
        self.description = description
        self.fps = _valid_fps(fps)
        self.frame_count: int | None = None
        self.max_backoff_s = max_backoff_s
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._latest_seq = 0
        self._stop = threading.Event()
        self.connected = False
        self.frames_captured = 0
        self.frames_dropped = 0
        self.reconnects = 0
        self._t0 = time.perf_counter()
        capture = self._try_open()
        if capture is None and require_initial:
            raise SourceError(f"cannot open {description}")
        self._thread = threading.Thread(target=self._run, args=(capture,), name="mirrorcam-capture", daemon=True)
        self._thread.start()

    def _try_open(self) -> Capture | None:
        try:
            capture = self._opener()
        except Exception as exc:  # a driver error is just "not available yet"
            log.debug("opening %s failed: %s", self.description, exc)
            return None
        if capture is None or (hasattr(capture, "isOpened") and not capture.isOpened()):
            if capture is not None:
                capture.release()
            return None
        return capture

    def _run(self, capture: Capture | None) -> None:
        backoff = 0.25
        index = 0
        while not self._stop.is_set():
            if capture is None:
                if self._stop.wait(backoff):
                    break
                backoff = min(backoff * 2, self.max_backoff_s)
                capture = self._try_open()
                if capture is None:
                    continue
                self.reconnects += 1
                log.info("%s is back", self.description)
            try:
                ok, image = capture.read()
            except Exception as exc:  # some backends raise instead of returning False
                log.debug("read from %s failed: %s", self.description, exc)
                ok, image = False, None
            if not ok or image is None:
                if self.connected or index == 0:
                    log.warning("lost %s; reconnecting", self.description)
                self._set_connected(False)
                capture.release()
                capture = None
                continue
            backoff = 0.25
            now = time.perf_counter()
            frame = Frame(image, (now - self._t0) * 1000.0, index, now)
            index += 1
            with self._cond:
                if self._latest is not None:
                    self.frames_dropped += 1  # the consumer never saw the previous one
                self._latest = frame
                self._latest_seq += 1
                self.connected = True
                self.frames_captured += 1
                self._cond.notify_all()
        if capture is not None:
            capture.release()
        self._set_connected(False)

    def _set_connected(self, value: bool) -> None:
        with self._cond:
            self.connected = value
            if not value:
                self._latest = None  # a frame from before the loss is no longer live
            self._cond.notify_all()

    def read(self, timeout: float | None = None) -> Frame | None:
        """The newest frame not yet returned, waiting up to ``timeout`` seconds; None if none came."""
        with self._cond:
            if self._latest is None:
                self._cond.wait_for(lambda: self._latest is not None or self._stop.is_set(), timeout)
            frame, self._latest = self._latest, None
            return frame

    def __iter__(self) -> Iterator[Frame]:
        while not self._stop.is_set():
            frame = self.read(timeout=0.5)
            if frame is not None:
                yield frame

    def close(self) -> None:
        """Stop the reader thread and release the device."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)


def _opencv_capture(target: int | str, api: int = cv2.CAP_ANY) -> Callable[[], Capture | None]:
    def opener() -> Capture | None:
        cap = cv2.VideoCapture(target, api)
        if not cap.isOpened():
            cap.release()
            return None
        # Keep the driver's queue at one frame so what we read is what is in front of the lens now.
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        return cap

    return opener


def camera_source(index: int = 0, require_initial: bool = True, max_backoff_s: float = 5.0) -> LiveSource:
    """The camera with OpenCV index ``index`` (see :class:`LiveSource` for the arguments)."""
    return LiveSource(_opencv_capture(index), f"camera {index}", require_initial=require_initial, max_backoff_s=max_backoff_s)


def url_source(url: str, require_initial: bool = True, max_backoff_s: float = 5.0) -> LiveSource:
    """A network stream (RTSP, HTTP MJPEG, ...) through OpenCV's FFmpeg backend.

    Raises:
        SourceError: A URL that is not valid UTF-8 (OpenCV would crash on it).
    """
    opener = _opencv_capture(opencv_path(url), cv2.CAP_FFMPEG)
    return LiveSource(opener, url, require_initial=require_initial, max_backoff_s=max_backoff_s)


class PacedFileCapture:
    """A video file that delivers frames no faster than ``fps``, like a camera would.

    Used as a simulated camera: :func:`simulated_camera` pushes it through the same
    reader thread as a real device.

    Args:
        path: Video file to play.
        fps: Delivery rate; defaults to the file's own.
        loop: Start again at the end instead of reporting a lost camera.
        realtime: Sleep to keep the rate (False delivers as fast as decoding allows).
    """

    def __init__(self, path: str | Path, fps: float | None = None, loop: bool = True, realtime: bool = True) -> None:
        self.path = opencv_path(path)
        require_readable(self.path, SourceError)
        self._cap = cv2.VideoCapture(self.path)
        if not self._cap.isOpened():
            raise SourceError(f"{path} is not a readable video")
        self.fps = _valid_fps(fps or self._cap.get(cv2.CAP_PROP_FPS))
        self.frame_count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.loop, self.realtime = loop, realtime
        self._next = time.perf_counter()
        self._read = 0  # frames of this pass
        self._said_short = False

    def isOpened(self) -> bool:  # noqa: N802 (cv2.VideoCapture's name)
        return self._cap is not None and self._cap.isOpened()

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self.realtime:
            delay = self._next - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            self._next = max(self._next + 1.0 / self.fps, time.perf_counter() - 1.0 / self.fps)
        ok, image = self._cap.read()
        if not ok:
            self._pass_ended()
            if self.loop:
                self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                ok, image = self._cap.read()
        self._read += bool(ok)
        return ok, image

    def _pass_ended(self) -> None:
        """Say once, as replay does, that decoding stopped well short of the file's end: a
        truncated file had looped its first seconds without a word."""
        if stopped_early(self._read, self.frame_count) and not self._said_short:
            warn_cut_short(Path(self.path), self._read, self.frame_count)
            self._said_short = True
        self._read = 0

    def release(self) -> None:
        if self._cap is not None:
            self._cap.release()


def simulated_camera(path: str | Path, fps: float | None = None, loop: bool = True, realtime: bool = True) -> LiveSource:
    """A file pushed in real time by a thread, behaving like a camera (latest frame only).

    Raises:
        SourceError: What replay refuses (:class:`VideoFileSource`): a file missing, unreadable,
            or not one frame of which decodes (opened, such a file had been "lost" and "back"
            over and over).
    """
    VideoFileSource(path, prefetch=0)  # (holds nothing open: a check)
    probe = PacedFileCapture(path, fps, loop, realtime)
    rate = probe.fps
    first = [probe]

    def opener() -> PacedFileCapture:
        # Reuse the probe for the first open, then reopen from the start.
        return first.pop() if first else PacedFileCapture(path, rate, loop, realtime)

    return LiveSource(opener, f"simulated camera ({Path(path).name} at {rate:g} fps)", fps=rate)


_URL = re.compile(r"[a-z][a-z0-9+.\-]*://", re.IGNORECASE)


def parse_source_spec(spec: str | Path) -> int | str | Path:
    """What a source spec names: a camera index (int), a stream URL (str) or a path.

    Only text is read so: a :class:`~pathlib.Path` is a path whatever its name.

    One reading for every command and the kiosk's config (each had its own): any
    ``scheme://`` is a URL, ``rtsp://`` and ``http://`` as well as FFmpeg's ``srt://``.

    Example:
        >>> parse_source_spec("0"), parse_source_spec("RTSP://cam/1"), parse_source_spec("clips/a.mp4")
        (0, 'RTSP://cam/1', PosixPath('clips/a.mp4'))
    """
    if isinstance(spec, Path):  # (a file or folder named "0" is not camera 0)
        return spec
    text = str(spec)
    if text.isdigit():
        return int(text)
    if _URL.match(text):
        return text
    return Path(text)


def require_clip_path(path: Path, hint: str = "", typed: str | None = None) -> None:
    """Refuse what no clip can be, with ``hint`` after the reason.

    ``typed`` is the path as the user wrote it, for the message (``Path`` makes
    ``rtsp://host`` into ``rtsp:/host``).

    Raises:
        SourceError: ``path`` is missing, or neither a file nor a folder (a pipe or a
            device would block the decoder).
    """
    shown = typed if typed is not None else path
    if not path.exists():
        raise SourceError(f"no such file or folder: {shown}{hint}")
    if not (path.is_file() or path.is_dir()):
        raise SourceError(f"{shown} is neither a file nor a folder{hint}")
    if path.is_file():  # (before the clip's hash is read for the cache: "Permission denied" alone)
        require_readable(path, SourceError)


def open_source(spec: str | Path) -> Source:
    """Open a frame source from a command-line style spec.

    Args:
        spec: A camera index (``"0"``), a stream URL (``rtsp://``, ``http://``...), a
            folder of images, or a video file.  (Landmark recordings are not frame
            sources; see :func:`mirrorcam.pipeline.iter_pose_frames`.)  An image folder
            plays at ``DEFAULT_FPS``.

    Raises:
        SourceError: The spec names nothing that can be opened.
    """
    what = parse_source_spec(spec)
    if isinstance(what, int):
        return camera_source(what)
    if isinstance(what, str):
        return url_source(what)
    path = what
    require_clip_path(path)
    if path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES:  # (one image: a clip of one frame)
        return ImageFolderSource(path, DEFAULT_FPS)
    return VideoFileSource(path)
