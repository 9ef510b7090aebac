"""Landmark recordings: pose frames on disk, readable without MediaPipe.

Format (version 1), one ``.npz`` archive (numpy's zip of ``.npy`` arrays, loaded with
``allow_pickle=False``: data, never code):

============== ================ ============================================
array          shape, dtype     meaning
============== ================ ============================================
header         (B,) uint8       UTF-8 JSON: ``format`` ("mirrorcam.landmarks"),
                                ``version`` (1), ``fps``, ``frame_size`` [w, h],
                                ``source``, ``model_variant``, ``created``
timestamps_ms  (T,) float64     presentation time of each frame
person_ids     (T, P) int32     tracked id per slot, -1 for an empty slot
landmarks      (T, P, 33, 3) f4 normalised image landmarks (x, y, z)
world          (T, P, 33, 3) f4 world landmarks in metres, hip-centred
visibility     (T, P, 33) f4    per-landmark visibility
presence       (T, P, 33) f4    per-landmark presence
============== ================ ============================================

``P`` is the largest number of people in any frame (at least 1).
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mirrorcam.containers import NUM_LANDMARKS, Person, PoseFrame
from mirrorcam.errors import RecordingError
from mirrorcam.fileio import atomic_write

FORMAT_NAME = "mirrorcam.landmarks"
FORMAT_VERSION = 1
_ARRAYS = ("timestamps_ms", "person_ids", "landmarks", "world", "visibility", "presence")


@dataclass(frozen=True)
class Recording:
    """A sequence of pose frames with the facts needed to replay them.

    Attributes:
        frames: Pose frames in time order (``image`` is None).
        fps: Frame rate of the source.
        frame_size: ``(width, height)`` of the source frames.
        source: Where the landmarks came from (a path, "camera 0", "generated: ...").
        model_variant: Pose model variant used, or "generated".
        meta: Extra JSON-safe facts (kept as they are on save and load).
    """

    frames: tuple[PoseFrame, ...]
    fps: float
    frame_size: tuple[int, int]
    source: str = ""
    model_variant: str = ""
    meta: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if not self.fps > 0:
            raise ValueError(f"fps must be > 0, got {self.fps}")

    def __len__(self) -> int:
        return len(self.frames)

    def __iter__(self) -> Iterator[PoseFrame]:
        return iter(self.frames)

    @property
    def duration_s(self) -> float:
        return len(self.frames) / self.fps

    def person_ratio(self) -> float:
        """Fraction of frames with at least one person."""
        return sum(1 for f in self.frames if f.persons) / max(len(self.frames), 1)


def save_recording(path: str | Path, recording: Recording) -> None:
    """Write ``recording`` to ``path`` atomically."""
    frames = recording.frames
    slots = max([len(f.persons) for f in frames] + [1])
    t = len(frames)
    ids = np.full((t, slots), -1, np.int32)
    landmarks = np.zeros((t, slots, NUM_LANDMARKS, 3), np.float32)
    world = np.zeros_like(landmarks)
    visibility = np.zeros((t, slots, NUM_LANDMARKS), np.float32)
    presence = np.zeros_like(visibility)
    for i, frame in enumerate(frames):
        for j, person in enumerate(frame.persons):
            ids[i, j] = person.id
            landmarks[i, j], world[i, j] = person.landmarks, person.world
            visibility[i, j], presence[i, j] = person.visibility, person.presence
    header = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "fps": float(recording.fps),
        "frame_size": [int(recording.frame_size[0]), int(recording.frame_size[1])],
        "source": recording.source,
        "model_variant": recording.model_variant,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "meta": recording.meta,
    }
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        header=np.frombuffer(json.dumps(header).encode("utf-8"), np.uint8),
        timestamps_ms=np.array([f.timestamp_ms for f in frames], np.float64),
        person_ids=ids,
        landmarks=landmarks,
        world=world,
        visibility=visibility,
        presence=presence,
    )
    with atomic_write(path, "wb") as handle:
        handle.write(buffer.getvalue())


def load_recording(path: str | Path) -> Recording:
    """Read a recording written by :func:`save_recording`.

    Raises:
        RecordingError: Missing, truncated or foreign file, or an unknown version.
    """
    path = Path(path)
    if not path.is_file():
        raise RecordingError(f"no such recording: {path}")
    if not zipfile.is_zipfile(path):
        # Checked first: on a file that is no archive, np.load falls back to pickle and
        # its refusal suggests loading the file unsafely, which is not the advice to give.
        raise RecordingError(f"{path} is not a readable landmark recording (not an .npz archive: truncated, or another kind of file)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "header" not in archive.files:
                raise RecordingError(f"{path} is not a mirrorcam landmark recording (no header)")
            header = json.loads(archive["header"].tobytes().decode("utf-8"))
            if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
                raise RecordingError(f"{path} is not a mirrorcam landmark recording")
            version = header.get("version")
            if version != FORMAT_VERSION:
                raise RecordingError(
                    f"{path} is a version {version} recording; this mirrorcam reads version {FORMAT_VERSION}"
                )
            missing = [name for name in _ARRAYS if name not in archive.files]
            if missing:
                raise RecordingError(f"{path} is incomplete (missing {', '.join(missing)})")
            arrays = {name: archive[name] for name in _ARRAYS}
    except RecordingError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, UnicodeDecodeError, KeyError) as exc:
        if "pickle" in str(exc):  # numpy's own words would name the unsafe way to load it
            raise RecordingError(f"{path} is not a readable landmark recording (it holds pickled objects, which are never loaded)") from exc
        raise RecordingError(f"{path} is not a readable landmark recording (truncated or corrupt: {exc})") from exc
    return _from_arrays(path, header, arrays)


# Bounds far outside anything MediaPipe gives (image coordinates a little beyond 0..1 for
# guessed landmarks, world coordinates in metres, visibility and presence as probabilities).
_VALUE_RANGES = (("landmarks", -1e3, 1e3), ("world", -1e3, 1e3), ("visibility", 0.0, 1.0), ("presence", 0.0, 1.0))


def _from_arrays(path: Path, header: dict, a: dict[str, np.ndarray]) -> Recording:
    t = a["timestamps_ms"].shape[0] if a["timestamps_ms"].ndim == 1 else -1
    p = a["person_ids"].shape[1] if a["person_ids"].ndim == 2 else -1
    expected = {
        "person_ids": (t, p),
        "landmarks": (t, p, NUM_LANDMARKS, 3),
        "world": (t, p, NUM_LANDMARKS, 3),
        "visibility": (t, p, NUM_LANDMARKS),
        "presence": (t, p, NUM_LANDMARKS),
    }
    for name, shape in expected.items():
        if t < 0 or p < 0 or a[name].shape != shape:
            raise RecordingError(f"{path}: array '{name}' has shape {a[name].shape}, expected {shape}")
    # Numbers only (a string or complex array is not landmarks), and times that are times.
    for name in ("timestamps_ms", *expected):
        allowed = "iu" if name == "person_ids" else "iuf"
        if a[name].dtype.kind not in allowed:
            raise RecordingError(f"{path}: array '{name}' holds {a[name].dtype} values, expected numbers")
    if not np.all(np.isfinite(a["timestamps_ms"])):
        raise RecordingError(f"{path}: timestamps must be finite numbers")
    # The people's values must be ones the pose stage can give: an infinite or absurd
    # coordinate would only surface later as numpy warnings and a meaningless match.
    present = a["person_ids"] >= 0
    for name, low, high in _VALUE_RANGES:
        values = a[name][present]
        if values.size and not (np.all(np.isfinite(values)) and values.min() >= low and values.max() <= high):
            raise RecordingError(f"{path}: array '{name}' holds values outside {low:g}..{high:g} (or not finite)")
    try:
        fps = float(header["fps"])
        width, height = (int(v) for v in header["frame_size"])
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise RecordingError(f"{path}: header lacks a valid fps or frame_size") from exc
    if not 0 < fps <= 1000:
        raise RecordingError(f"{path}: fps must be between 0 and 1000, got {fps}")
    if not (1 <= width <= 16384 and 1 <= height <= 16384):
        raise RecordingError(f"{path}: frame_size must be between 1 and 16384 pixels a side, got {width}x{height}")
    frames = []
    for i in range(t):
        persons = tuple(
            Person(
                id=int(a["person_ids"][i, j]),
                landmarks=a["landmarks"][i, j],
                world=a["world"][i, j],
                visibility=a["visibility"][i, j],
                presence=a["presence"][i, j],
            )
            for j in range(p)
            if a["person_ids"][i, j] >= 0
        )
        frames.append(PoseFrame(float(a["timestamps_ms"][i]), i, persons, (width, height)))
    return Recording(
        frames=tuple(frames),
        fps=fps,
        frame_size=(width, height),
        source=str(header.get("source", "")),
        model_variant=str(header.get("model_variant", "")),
        meta=header.get("meta") if isinstance(header.get("meta"), dict) else {},
    )


def recording_from_frames(
    frames: Sequence[PoseFrame], fps: float, frame_size: tuple[int, int], source: str = "", model_variant: str = ""
) -> Recording:
    """Build a :class:`Recording` from pose frames, dropping their images."""
    from dataclasses import replace

    stripped = tuple(replace(f, image=None) if f.image is not None else f for f in frames)
    return Recording(stripped, fps, frame_size, source, model_variant)


def fps_of(frames: Sequence[PoseFrame], default: float = 30.0) -> float:
    """The frame rate of timestamped ``frames`` (1-120 fps), or ``default`` for fewer than two."""
    if len(frames) < 2:
        return default
    span = (frames[-1].timestamp_ms - frames[0].timestamp_ms) / 1000.0
    return float(min(max((len(frames) - 1) / span, 1.0), 120.0)) if span > 0 else default


def is_recording_path(path: str | Path) -> bool:
    """True if ``path`` looks like a landmark recording (by its zip contents, not just its name)."""
    path = Path(path)
    if path.suffix.lower() != ".npz" or not path.is_file():
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            return "header.npy" in archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return True  # a damaged .npz: let load_recording explain what is wrong
