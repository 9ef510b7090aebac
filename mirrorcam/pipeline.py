"""Source to pose frames: the shared front half of every mode.

:func:`iter_pose_frames` yields :class:`~mirrorcam.containers.PoseFrame` from any
spec (camera, URL, video file, image folder or landmark recording); recordings are
replayed without MediaPipe.  :func:`clip_landmarks` runs a clip through the pose model
once and caches the result, so a clip is never run through the model twice.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path

import cv2

from mirrorcam.containers import PoseFrame
from mirrorcam.errors import MirrorcamError, RecordingError
from mirrorcam.fileio import sha256_file
from mirrorcam.modelstore import recorded_sha256
from mirrorcam.pose import POSE_STAGE_VERSION, PoseEstimator, PoseEstimatorOptions
from mirrorcam.progress import Progress
from mirrorcam.recording import (
    FORMAT_VERSION,
    Recording,
    is_recording_path,
    load_recording,
    mirrored_recording,
    recording_from_frames,
    save_recording,
)
from mirrorcam.sources import Source, open_source, require_clip_path, warn_cut_short

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """``$MIRRORCAM_CACHE`` or ``~/.cache/mirrorcam/landmarks``."""
    env = os.environ.get("MIRRORCAM_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "mirrorcam" / "landmarks"


def model_digest(options: PoseEstimatorOptions) -> str:
    """Which pose model ``options`` run: the sha256 of the explicit ``model_path``, else the
    one the manifest records for ``model_variant`` (``"unprovisioned"`` before it is fetched)."""
    if options.model_path:
        path = Path(options.model_path)
        try:
            st = path.stat()
        except OSError:
            return "missing:" + str(path)
        return _file_digest(str(path.resolve()), st.st_size, st.st_mtime_ns)
    return recorded_sha256(options.model_variant) or "unprovisioned"


@functools.lru_cache(maxsize=8)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    """sha256 of a model file, hashed once per (path, size, mtime): a bundle is 5-30 MB."""
    return sha256_file(Path(path))


def cache_key(path: Path, options: PoseEstimatorOptions, flip: bool = False, clip_sha256: str | None = None) -> str:
    """Content hash of the clip plus everything that changes its landmarks, the model's bytes included.

    Why the model's hash and not its name: a ``full`` bundle replaced by another one
    (``models fetch --force --from ...``) gives other landmarks for the same clip.  The
    pose stage's version is in it too, so that an older mirrorcam's cache is not taken
    for today's landmarks, and MediaPipe's, whose graph around the same model (detection,
    tracking, filtering) changes between releases.
    """
    settings = asdict(options)
    settings.pop("model_path", None)
    settings.update(flip=flip, format=FORMAT_VERSION, model=model_digest(options), pose_stage=POSE_STAGE_VERSION,
                    mediapipe=mediapipe_version())
    blob = json.dumps(settings, sort_keys=True).encode()
    return hashlib.sha256((clip_sha256 or sha256_file(path)).encode() + blob).hexdigest()[:32]


def mediapipe_version() -> str:
    """The installed MediaPipe's version, from its package metadata: importing MediaPipe
    itself (half a second) must not be the price of a cache hit."""
    try:
        return importlib.metadata.version("mediapipe")
    except importlib.metadata.PackageNotFoundError:
        return "missing"


def is_cached(path: str | Path, options: PoseEstimatorOptions, flip: bool = False, cache_dir: Path | None = None) -> bool:
    """Whether :func:`clip_landmarks` would read ``path``'s landmarks from the cache."""
    path = Path(path)
    if not path.is_file():
        return False
    return ((cache_dir or default_cache_dir()) / f"{cache_key(path, options, flip)}.npz").exists()


def clip_landmarks(
    path: str | Path,
    options: PoseEstimatorOptions | None = None,
    flip: bool = False,
    cache_dir: Path | None = None,
    progress: bool | None = None,
) -> Recording:
    """Pose landmarks of every frame of a video clip, from the cache when possible.

    Args:
        path: Video file, image folder or landmark recording (read as it is).
        options: Pose stage options (part of the cache key).
        flip: Mirror every frame horizontally before inference (for flip tests); a
            recording's landmarks are mirrored instead.
        cache_dir: Where cached recordings live (default :func:`default_cache_dir`).
        progress: Show a progress bar (default: when stderr is a terminal).

    Raises:
        SourceError: The clip is not an existing file or folder (a camera index or a
            stream URL is no clip), or cannot be read.
    """
    path = Path(path)
    options = options or PoseEstimatorOptions()
    if is_recording_path(path):
        # Mirrored here: a recording has no frames to flip, and had come back as it was
        # (eval's flip variant of a manifest of recordings was the original again).
        recording = load_recording(path)
        return mirrored_recording(recording) if flip else recording
    require_clip_path(path, " (a clip is a video file or a folder of images)")
    cache_dir = cache_dir or default_cache_dir()
    clip_sha = sha256_file(path) if path.is_file() else None
    cached = cache_dir / f"{cache_key(path, options, flip, clip_sha)}.npz" if clip_sha else None
    if cached is not None and cached.exists():
        try:
            recording = load_recording(cached)
        except RecordingError as exc:
            log.warning("ignoring a damaged cache entry %s (%s)", cached, exc)
        else:
            # An entry names the clip it was made from (entries of earlier versions do not):
            # one copied or restored under another clip's key must not stand in for it.
            if recording.meta.get("clip_sha256", clip_sha) == clip_sha:
                cut = recording.meta.get("cut_short")
                if isinstance(cut, list) and len(cut) == 2 and all(type(n) is int for n in cut):  # (said on the first run only, before)
                    warn_cut_short(path, *cut)
                return recording
            log.warning("ignoring cache entry %s: it holds the landmarks of another clip", cached)
    # Opened only on a cache miss: a hit must not cost a decoder start-up.
    source = open_source(path)
    estimator = PoseEstimator.create_from_options(options)
    try:
        estimator.reset_tracking()
        frames = []
        with source, Progress(getattr(source, "frame_count", None), f"pose {path.name}", enabled=progress) as bar:
            for frame in source:
                if flip:
                    frame = replace(frame, image=cv2.flip(frame.image, 1))
                frames.append(replace(estimator.process(frame), image=None))
                bar.update()
    finally:
        estimator.close()
    size = getattr(source, "size", None) or (frames[0].image_size if frames else (0, 0))
    recording = recording_from_frames(frames, source.fps, size, str(path), options.model_variant)
    meta = {"flip": flip, "clip_sha256": clip_sha}
    if getattr(source, "cut_short", False):  # (decoding stopped early: each use of the cache says so again)
        meta["cut_short"] = [source.frames_read, source.frame_count]
    recording = replace(recording, meta=meta)
    if clip_sha is not None:
        # Keyed again: a model provisioned by this very run now has its hash.  The cache
        # only saves time: one that cannot be written (read-only, full, a file in the way)
        # must not cost the landmarks just computed, nor the command's own output.
        entry = cache_dir / f"{cache_key(path, options, flip, clip_sha)}.npz"
        try:
            save_recording(entry, recording)
        except (MirrorcamError, OSError) as exc:
            log.warning("could not cache the landmarks of %s (%s); they will be computed again next time", path.name, exc)
    return recording


def iter_pose_frames(
    spec: str | Path | Source,
    estimator: PoseEstimator | None = None,
    options: PoseEstimatorOptions | None = None,
) -> Iterator[PoseFrame]:
    """Pose frames of any source; a recording is replayed without MediaPipe.

    The caller owns ``estimator`` if it passes one; otherwise one is created for the
    duration of the iteration.
    """
    if not isinstance(spec, (str, Path)):
        yield from _estimated(spec, estimator, options)
        return
    if is_recording_path(spec):
        yield from load_recording(spec).frames
        return
    with open_source(spec) as source:
        yield from _estimated(source, estimator, options)


def _estimated(source: Source, estimator: PoseEstimator | None, options: PoseEstimatorOptions | None) -> Iterator[PoseFrame]:
    own = estimator is None
    estimator = estimator or PoseEstimator.create_from_options(options)
    try:
        for frame in source:
            yield estimator.process(frame)
    finally:
        if own:
            estimator.close()


class PoseWorker:
    """Runs the pose stage on the newest camera frame in a thread; keeps only the newest result.

    Used by ``mirrorcam live`` and the kiosk's camera: inference (30-80 ms a frame on two
    cores) runs beside the window, which goes on reading the keyboard meanwhile.

    Args:
        source: A live source (``read(timeout)`` -> the newest frame or None).
        estimator: The pose stage; only this thread uses it until :meth:`close`.

    An exception in the pose stage ends the thread; :meth:`get` raises it, then and on
    every later call (the caller ends, as it would have with inference on its own thread).
    """

    def __init__(self, source, estimator) -> None:
        self.source = source
        self.estimator = estimator
        self._cond = threading.Condition()
        self._latest: PoseFrame | None = None
        self._stop = threading.Event()
        self.error: BaseException | None = None
        self.processed = 0
        self._thread = threading.Thread(target=self._run, name="mirrorcam-pose", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                frame = self.source.read(timeout=0.2)
                if frame is None:
                    continue
                result = self.estimator.process(frame)
                with self._cond:
                    self._latest = result
                    self.processed += 1
                    self._cond.notify_all()
        except BaseException as exc:  # surfaced in the main thread
            self.error = exc
            with self._cond:
                self._cond.notify_all()

    def get(self, timeout: float) -> PoseFrame | None:
        """The newest pose frame not yet taken, waiting up to ``timeout`` s; None if none came."""
        with self._cond:
            if self._latest is None:
                self._cond.wait_for(lambda: self._latest is not None or self.error is not None, timeout)
            if self.error is not None:
                raise self.error
            frame, self._latest = self._latest, None
            return frame

    def close(self, timeout: float = 5.0) -> bool:
        """Stop the thread; True if it ended within ``timeout`` seconds.

        False means it is still inside the pose stage (a slow model on a loaded machine):
        the caller must not close the estimator under it (a native crash).
        """
        self._stop.set()
        self._thread.join(timeout=timeout)
        return not self._thread.is_alive()


__all__ = ["PoseWorker", "clip_landmarks", "is_cached", "iter_pose_frames", "default_cache_dir", "cache_key", "model_digest"]
