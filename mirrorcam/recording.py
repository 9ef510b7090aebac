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

Limits a loaded file must keep (a crafted one could otherwise hang or exhaust the
machine): ``T x P`` at most :data:`MAX_PERSON_FRAMES`, checked on the arrays' ``.npy``
headers before any data is read; timestamps within +-:data:`MAX_TIMESTAMP_MS`, never going
backwards; ``fps`` a number from :data:`MIN_FPS` to :data:`MAX_FPS`; a ``frame_size`` of two
whole numbers within :data:`MAX_SIDE` and :data:`MAX_ASPECT`.  :func:`save_recording`
refuses the frame counts, frame rates, times and shapes loading would (a frame wider than
:data:`MAX_SIDE` is stored scaled down: only its shape matters), so that no file
mirrorcam writes is one it cannot read.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import math
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from mirrorcam.containers import NUM_LANDMARKS, Person, PoseFrame
from mirrorcam.errors import RecordingError
from mirrorcam.fileio import atomic_write, require_readable

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
    """Write ``recording`` to ``path`` atomically.

    Raises:
        RecordingError: A recording :func:`load_recording` would refuse (too many frames x
            people, a frame size, frame rate, time or landmark value out of bounds): nothing
            is written.  Both check with :func:`_content_problem`.
    """
    frames = recording.frames
    slots = max([len(f.persons) for f in frames] + [1])
    t = len(frames)
    width, height = (int(v) for v in recording.frame_size)
    if max(width, height) > MAX_SIDE:
        # A 20000 px panorama: landmarks are normalised, so only the frame's shape matters
        # (refused after a whole pose run, it had cost the work).
        scale = MAX_SIDE / max(width, height)
        width, height = max(1, round(width * scale)), max(1, round(height * scale))
    if t * slots > MAX_PERSON_FRAMES:  # (before the arrays are allocated)
        raise RecordingError(f"cannot write {path}: {t} frames x {slots} people are more than a recording holds ({MAX_PERSON_FRAMES})")
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
    timestamps = np.array([f.timestamp_ms for f in frames], np.float64)
    arrays = {"timestamps_ms": timestamps, "person_ids": ids, "landmarks": landmarks, "world": world,
              "visibility": visibility, "presence": presence}
    problem = _content_problem(arrays, float(recording.fps), width, height)
    if problem:
        raise RecordingError(f"cannot write {path}: {problem}")
    header = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "fps": float(recording.fps),
        "frame_size": [width, height],
        "source": recording.source,
        "model_variant": recording.model_variant,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "meta": recording.meta,
    }
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        header=np.frombuffer(json.dumps(header).encode("utf-8"), np.uint8),
        **arrays,
    )
    with atomic_write(path, "wb") as handle:
        handle.write(buffer.getvalue())


def load_recording(path: str | Path) -> Recording:
    """Read a recording written by :func:`save_recording`.

    Each array's ``.npy`` header (its dtype and shape) is checked before any of its data
    is read, so a crafted archive that declares, or a zip bomb that inflates to,
    gigabytes is refused without allocating them (see :func:`_check_layout`).

    Raises:
        RecordingError: Missing, truncated, foreign or oversized file, an unknown version,
            or values out of bounds (``fps``, ``frame_size``, times that go backwards, ...).
    """
    path = Path(path)
    if not path.is_file():
        raise RecordingError(f"no such recording: {path}")
    require_readable(path, RecordingError)  # (is_zipfile says False for a file it may not open)
    if not zipfile.is_zipfile(path):
        # Checked first: the message says what the file is not, where zipfile's own
        # ("File is not a zip file") would come wrapped in "truncated or corrupt".
        raise RecordingError(f"{path} is not a readable landmark recording (not an .npz archive: truncated, or another kind of file)")
    try:
        with zipfile.ZipFile(path) as archive:
            # Named as np.load names them: the member name without its ".npy".
            members = {name[:-4] if name.endswith(".npy") else name: name for name in archive.namelist()}
            if "header" not in members:
                raise RecordingError(f"{path} is not a mirrorcam landmark recording (no header)")
            layout = {name: _declared(archive, members[name]) for name in ("header", *_ARRAYS) if name in members}
            dtype, shape = layout["header"]
            if dtype.hasobject:
                raise RecordingError(_PICKLED.format(path=path))
            if math.prod(shape) * dtype.itemsize > _MAX_HEADER_BYTES:
                raise RecordingError(f"{path} is not a mirrorcam landmark recording (its header is over {_MAX_HEADER_BYTES} bytes)")
            header = json.loads(_read_member(archive, members["header"]).tobytes().decode("utf-8"))
            if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
                raise RecordingError(f"{path} is not a mirrorcam landmark recording")
            version = header.get("version")
            if isinstance(version, bool) or not isinstance(version, int):
                # (A string "1" had read "is a version 1 recording; this mirrorcam reads version 1".)
                raise RecordingError(f"{path} has version {version!r} in its header, not a version number; "
                                     f"this mirrorcam reads version {FORMAT_VERSION}")
            if version != FORMAT_VERSION:
                raise RecordingError(
                    f"{path} is a version {version} recording; this mirrorcam reads version {FORMAT_VERSION}"
                )
            missing = [name for name in _ARRAYS if name not in members]
            if missing:
                raise RecordingError(f"{path} is incomplete (missing {', '.join(missing)})")
            _check_layout(path, layout)
            arrays = {name: _read_member(archive, members[name]) for name in _ARRAYS}
    except RecordingError:
        raise
    except RecursionError as exc:  # json.loads on a header of "[[[[..."
        raise RecordingError(f"{path} is not a readable landmark recording (its header is nested too deeply)") from exc
    except MemoryError as exc:  # what the checks above let through still did not fit
        raise RecordingError(f"{path} is too large to load (out of memory)") from exc
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, UnicodeDecodeError, KeyError) as exc:
        # (Pickled arrays never reach read_array: their declared dtype is refused above.)
        raise RecordingError(f"{path} is not a readable landmark recording (truncated or corrupt: {exc})") from exc
    return _from_arrays(path, header, arrays)


_PICKLED = "{path} is not a readable landmark recording (it holds pickled objects, which are never loaded)"
# Real headers are a few hundred bytes (with ``meta``); a megabyte is no header.
_MAX_HEADER_BYTES = 1 << 20
# At most this many frames x people slots: 9 h of one person at 30 fps, about 1 GB of
# float32 arrays. A declared shape beyond it is refused before anything is decompressed.
MAX_PERSON_FRAMES = 1_000_000


def _declared(archive: zipfile.ZipFile, member: str) -> tuple[np.dtype, tuple[int, ...]]:
    """The dtype and shape a ``.npy`` member declares, from its header alone (no data read)."""
    with archive.open(member) as stream:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
        else:  # 3.0 only serves structured dtypes with non-ASCII field names: never a recording's
            raise ValueError(f"member {member} is a version {version[0]}.{version[1]} .npy array")
    return dtype, shape


def _read_member(archive: zipfile.ZipFile, member: str) -> np.ndarray:
    with archive.open(member) as stream:
        return np.lib.format.read_array(stream, allow_pickle=False)


def _check_layout(path: Path, layout: dict[str, tuple[np.dtype, tuple[int, ...]]]) -> None:
    """Refuse arrays of the wrong kind, shape or size from their declared dtype and shape."""
    for name in _ARRAYS:
        if layout[name][0].hasobject:
            raise RecordingError(_PICKLED.format(path=path))
    shape_of = {name: layout[name][1] for name in _ARRAYS}
    t = shape_of["timestamps_ms"][0] if len(shape_of["timestamps_ms"]) == 1 else -1
    p = shape_of["person_ids"][1] if len(shape_of["person_ids"]) == 2 else -1
    expected = {
        "person_ids": (t, p),
        "landmarks": (t, p, NUM_LANDMARKS, 3),
        "world": (t, p, NUM_LANDMARKS, 3),
        "visibility": (t, p, NUM_LANDMARKS),
        "presence": (t, p, NUM_LANDMARKS),
    }
    for name, shape in expected.items():
        if t < 0 or p < 0 or shape_of[name] != shape:
            raise RecordingError(f"{path}: array '{name}' has shape {shape_of[name]}, expected {shape}")
    if t * max(p, 1) > MAX_PERSON_FRAMES:
        raise RecordingError(f"{path} is too large: {t} frames x {p} people "
                             f"(at most {MAX_PERSON_FRAMES} frames x people are read)")
    # Numbers only (a string or complex array is not landmarks).
    for name in ("timestamps_ms", *expected):
        dtype = layout[name][0]
        allowed = "iu" if name == "person_ids" else "iuf"
        if dtype.kind not in allowed:
            raise RecordingError(f"{path}: array '{name}' holds {dtype} values, expected numbers")


# The rates a video can be written at (VideoSink's files are checked at 0.1-1000 fps): at
# 1e-300 fps, replay --out had failed with "OpenCV cannot write video".  Video sources
# give 1-1000 fps, the kiosk's recordings 1-120.
MIN_FPS = 0.1
MAX_FPS = 1000.0
MAX_TIMESTAMP_MS = 1e12  # ~31 years: a sanity bound (the matcher's tick loop has its own guard)
# Replay draws a recording on a canvas of its frame's shape, 480 px high at the least:
# 16384 x 1 had been a 7.8-million-pixel-wide canvas (11.6 GB).  The bounds hold every
# real video and photo (8K is 7680 x 4320; a 32:9 ultra-wide is 3.6:1; a panorama 8:1).
MAX_SIDE = 16384
MAX_ASPECT = 16.0


def _frame_size_problem(width: int, height: int) -> str | None:
    if 1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE and max(width / height, height / width) <= MAX_ASPECT:
        return None
    return f"frame_size must be 1 to {MAX_SIDE} pixels a side and at most {MAX_ASPECT:g}:1 either way, got {width}x{height}"

# Bounds far outside anything MediaPipe gives (image coordinates a little beyond 0..1 for
# guessed landmarks, world coordinates in metres, visibility and presence as probabilities).
_VALUE_RANGES = (("landmarks", -1e3, 1e3), ("world", -1e3, 1e3), ("visibility", 0.0, 1.0), ("presence", 0.0, 1.0))


def _content_problem(a: dict[str, np.ndarray], fps: float, width: int, height: int) -> str | None:
    """Why a recording's arrays, frame rate and frame size are not ones :func:`load_recording`
    accepts, or None.

    The one check of both sides: :func:`save_recording` asks it before writing, so that no
    file mirrorcam writes is one it cannot read (a NaN time had been written, then refused).
    """
    # Times that are times: 1e19 ms (where 1e19 + 66.7 == 1e19) had hung the matcher's
    # tick loop; no recording spans more than years.
    ts = a["timestamps_ms"].astype(np.float64)  # (abs of the smallest int64 is itself: negative)
    if not np.all(np.isfinite(ts)):
        return "timestamps must be finite numbers"
    if ts.size and np.abs(ts).max() > MAX_TIMESTAMP_MS:
        return f"timestamps must be within +-{MAX_TIMESTAMP_MS:g} ms (about 31 years), got {float(np.abs(ts).max()):g}"
    # Times that go forward.  Every source mirrorcam records from gives them so (a file's
    # frames count up, a camera's are read off a monotonic clock): times that go back are
    # a damaged file, which the matcher, holding its clock still until time catches up,
    # had replayed with no firing and no word.  Equal neighbours are kept (a stalled
    # clock, a stamp in whole milliseconds): the matcher and tick_stream take the later
    # frame in the earlier one's place.  But frames that are all at one instant are no
    # recording of a movement: the matcher gets one tick of them.
    steps = np.diff(ts)
    if steps.size and steps.min() < 0:
        i = int(np.argmax(steps < 0)) + 1
        return f"timestamps go backwards at frame {i} ({ts[i]:g} ms after {ts[i - 1]:g} ms)"
    if steps.size and steps.max() == 0:
        return f"timestamps never advance (all {ts.size} frames are at {ts[0]:g} ms)"
    # The people's values must be ones the pose stage can give: an infinite or absurd
    # coordinate would only surface later as numpy warnings and a meaningless match.
    present = a["person_ids"] >= 0
    for name, low, high in _VALUE_RANGES:
        values = a[name][present]
        if values.size and not (np.all(np.isfinite(values)) and values.min() >= low and values.max() <= high):
            return f"array '{name}' holds values outside {low:g}..{high:g} (or not finite)"
    if not MIN_FPS <= fps <= MAX_FPS:  # (NaN fails it too)
        return f"fps must be between {MIN_FPS:g} and {MAX_FPS:g}, got {fps:g}"
    return _frame_size_problem(width, height)


def _is_number(value: object) -> bool:
    """A JSON number: int or float, not true/false (which Python counts as ints)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _shown(header: dict, key: str) -> str:
    """A header value as the file has it (JSON: ``true``, ``"30"``), cut to a line's worth."""
    if key not in header:
        return "nothing (no such field)"
    text = json.dumps(header[key], ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _header_fps(path: Path, header: dict) -> float:
    """The header's ``fps`` as a float; its range is checked by :func:`_content_problem`.

    Raises:
        RecordingError: Missing, or not a JSON number (``float()`` had taken "30" and true).
    """
    fps = header.get("fps")
    if not _is_number(fps):
        raise RecordingError(f"{path}: header field 'fps' must be a number of frames a second, got {_shown(header, 'fps')}")
    try:
        return float(fps)
    except OverflowError:  # an integer of hundreds of digits: out of range, said as such
        return math.inf


def _header_frame_size(path: Path, header: dict) -> tuple[int, int]:
    """The header's ``frame_size`` as ``(width, height)``; the bounds are checked by
    :func:`_frame_size_problem`.

    Only JSON integers: :func:`save_recording` has always written them as such, and
    ``int()`` had taken [true, true] as 1 x 1 and [640.7, 480.2] as 640 x 480.

    Raises:
        RecordingError: Missing, or not two whole numbers.
    """
    size = header.get("frame_size")
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in size)):
        raise RecordingError(f"{path}: header field 'frame_size' must be [width, height] in whole pixels, "
                             f"got {_shown(header, 'frame_size')}")
    return size[0], size[1]


def _from_arrays(path: Path, header: dict, a: dict[str, np.ndarray]) -> Recording:
    # (Shapes and dtypes were checked on the arrays' headers, before loading: _check_layout.)
    t, p = a["person_ids"].shape
    fps, (width, height) = _header_fps(path, header), _header_frame_size(path, header)
    problem = _content_problem(a, fps, width, height)
    if problem:
        raise RecordingError(f"{path}: {problem}")
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
    stripped = tuple(replace(f, image=None) if f.image is not None else f for f in frames)
    return Recording(stripped, fps, frame_size, source, model_variant)


def mirrored_recording(recording: Recording) -> Recording:
    """``recording`` as the horizontally flipped video would give it (see :meth:`Person.mirrored`).

    Person ids are kept (a flipped video's tracker would number them left to right anew).
    """
    frames = tuple(replace(f, persons=tuple(p.mirrored() for p in f.persons)) for f in recording.frames)
    return replace(recording, frames=frames, meta={**recording.meta, "flip": "landmarks"})


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
