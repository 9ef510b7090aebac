"""Sinks: where annotated frames and events go (video file, JSON-lines file).

Both write to a temporary file beside the destination and rename it into place when
closed cleanly, so an interrupted run never leaves half a file under the user's name.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from mirrorcam.errors import SourceError
from mirrorcam.fileio import publish, writable_destination
from mirrorcam.sources import opencv_path

_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}


class _AtomicFile:
    def __init__(self, path: str | Path) -> None:
        self.path = writable_destination(path)
        # Same folder (one filesystem for the rename) and same suffix (codec choice by name).
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=f".tmp{self.path.suffix}", dir=self.path.parent)
        except OSError as exc:
            raise SourceError(f"cannot write to {self.path}: {exc.strerror or exc}") from None
        os.close(fd)
        self.tmp = Path(tmp)

    def _commit(self) -> None:
        """Rename the temporary file into place.

        Raises:
            SourceError: The rename failed (the folder removed or made read-only meanwhile):
                the temporary file is removed too, and the user's earlier file is untouched.
        """
        try:
            publish(self.tmp, self.path)
        except OSError as exc:
            raise SourceError(f"cannot write {self.path}: {exc.strerror or exc}; nothing written under that name") from None

    def _discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.tmp.unlink()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *rest) -> None:
        self.close(commit=exc_type is None)

    def close(self, commit: bool = True) -> None:
        raise NotImplementedError


def letterbox(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` scaled to fit ``size`` (width, height) with its aspect ratio kept, centred on black.

    Example:
        >>> letterbox(np.zeros((100, 400, 3), np.uint8), (200, 200)).shape
        (200, 200, 3)
    """
    width, height = size
    scale = min(width / image.shape[1], height / image.shape[0])
    w, h = max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale))
    out = np.zeros((height, width, 3), np.uint8)
    x, y = (width - w) // 2, (height - h) // 2
    out[y:y + h, x:x + w] = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    return out


class VideoSink(_AtomicFile):
    """Writes BGR frames to a video file; the file appears only when closed cleanly.

    The frame size is taken from the first frame; later frames of another size are
    scaled to fit it, their shape kept (black bars; a folder's photos differ).
    """

    def __init__(self, path: str | Path, fps: float) -> None:
        path = Path(path)
        if path.is_dir():
            raise SourceError(f"cannot write video {path}: it is a folder; give a file name such as {path / 'out.mp4'}")
        if path.suffix.lower() not in _FOURCC:
            raise SourceError(f"cannot write video {path}: use one of {', '.join(sorted(_FOURCC))}")
        if not 0 < fps <= 1000:  # (an infinite rate hangs OpenCV's writer)
            raise SourceError(f"cannot write video {path} at {fps} fps: the rate must be between 0 and 1000")
        opencv_path(path)  # (before the temporary file, whose name carries the stem)
        super().__init__(path)
        self.fps = fps
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None
        self.frames_written = 0

    def write(self, image: np.ndarray) -> None:
        if self._writer is None:
            self._size = (image.shape[1], image.shape[0])
            fourcc = cv2.VideoWriter_fourcc(*_FOURCC[self.path.suffix.lower()])
            self._writer = cv2.VideoWriter(str(self.tmp), fourcc, self.fps, self._size)
            if not self._writer.isOpened():
                raise SourceError(f"OpenCV cannot write video to {self.path}")
        if (image.shape[1], image.shape[0]) != self._size:
            image = letterbox(image, self._size)
        # Counted before the write: Ctrl+C is raised right after OpenCV returns, and a frame
        # written but not counted made the finished file "hold 51 of the 50 frames written".
        self.frames_written += 1
        try:
            self._writer.write(image)
        except Exception:
            self.frames_written -= 1
            raise

    def close(self, commit: bool = True) -> None:
        """Finish the file and rename it into place (``commit``) or throw it away.

        Raises:
            SourceError: The finished file is not the video written (a full disk: OpenCV's
                writer reports no error, and a truncated mp4 had replaced the user's file).
        """
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if not (commit and self.frames_written):
            self._discard()
            return
        problem = self._write_problem()
        if problem:
            self._discard()
            raise SourceError(f"could not write video {self.path}: {problem}; nothing written under that name")
        self._commit()

    def _write_problem(self) -> str | None:
        """Why the temporary file is not the video written, or None: on disk (fsynced),
        opens, and holds every frame written.

        Every container mirrorcam writes reports its exact frame count when complete (mp4,
        m4v, mov, avi, mkv, at 0.1-1000 fps, checked); a truncated avi reports 0 and a
        truncated mkv a negative count, so anything but the count written is a failure.
        """
        try:
            with open(self.tmp, "rb+") as handle:
                os.fsync(handle.fileno())
        except OSError as exc:
            return exc.strerror or str(exc)
        check = cv2.VideoCapture(str(self.tmp))
        try:
            if not check.isOpened() or not check.grab():
                return "the file came out unreadable (is the disk full?)"
            count = int(check.get(cv2.CAP_PROP_FRAME_COUNT))
            if count != self.frames_written:
                return f"the file holds {max(count, 0)} of the {self.frames_written} frames written (is the disk full?)"
        finally:
            check.release()
        return None


class JsonLinesSink(_AtomicFile):
    """Writes one JSON object per line; the file appears only when closed cleanly."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        try:
            self._handle = open(self.tmp, "w", encoding="utf-8", newline="\n")
        except OSError as exc:  # (out of file descriptors: the empty temporary file must not stay)
            self._discard()
            raise SourceError(f"cannot write events to {self.path}: {exc.strerror or exc}") from None
        self.lines_written = 0

    def write(self, obj: dict) -> None:
        try:
            self._handle.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")
        except OSError as exc:  # (a full disk: the message names the file)
            raise SourceError(f"cannot write events to {self.path}: {exc.strerror or exc}") from None
        self.lines_written += 1

    def close(self, commit: bool = True) -> None:
        if self._handle.closed:
            return
        asked = commit
        try:
            self._handle.flush()
            os.fsync(self._handle.fileno())
        except OSError as exc:
            commit, problem = False, exc
        else:
            problem = None
        finally:
            with contextlib.suppress(OSError):
                self._handle.close()
        if commit:
            self._commit()
        else:
            self._discard()
        if problem is not None and asked:  # (a discarded file has nothing to report: the first error stands)
            raise SourceError(f"cannot write events to {self.path}: {problem.strerror or problem}; nothing written under that name")


class BackgroundWorker:
    """Runs ``work(item)`` for each submitted item on one background thread, in order.

    Used to draw and encode annotated frames while the main thread runs the next pose
    inference: on two cores the two stages overlap instead of adding up.  The queue is
    bounded, so a slow writer slows the producer down rather than filling memory.
    An exception in ``work`` is re-raised in the caller at the next ``submit`` or at ``close``.
    """

    def __init__(self, work, depth: int = 4, name: str = "mirrorcam-writer") -> None:
        import queue
        import threading

        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self._work = work
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    _STOP = object()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is self._STOP:
                return
            if self._error is None:
                try:
                    self._work(item)
                except BaseException as exc:  # handed to the producer thread
                    self._error = exc

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def submit(self, item) -> None:
        self._raise()
        self._queue.put(item)

    def close(self) -> None:
        """Finish the queued items, stop the thread, re-raise a worker error."""
        if self._thread.is_alive():
            self._queue.put(self._STOP)
            self._thread.join()
        self._raise()

    def abort(self) -> None:
        """Drop the queued items and stop the thread after the item in hand; errors are
        dropped too (an interrupted run's outputs are thrown away: nothing to finish)."""
        import queue

        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        if self._thread.is_alive():
            self._queue.put(self._STOP)
            self._thread.join()
        self._error = None
