"""Action templates ("neurons"): the data, the library, the built-ins and teaching.

A template is a small JSON file (``models/templates/<name>.json`` for the built-ins, a
user folder for taught ones)::

    {
      "format": "mirrorcam.template", "version": 1,
      "name": "wave_one_hand", "display_name": "Wave (one hand)",
      "kind": "dynamic",            # or "static" (a held pose)
      "side_specific": false,       # false: the mirrored body matches as well
      "threshold": 0.21,            # calibrated match distance (activation 0.5)
      "rate_hz": 15, "embedding_version": 1,
      "importance": {"torso": 0.5, "arms": 1.0, "legs": 0.2, "lift": 0.0},
      "frames": [[...], ...],       # (K, D) embeddings, one per tick
      "weights": [[...], ...],      # (K, D) trust of each feature (optional)
      "preview": [[[x, y, z], ...], ...],  # (K', 33, 3) world-like landmarks to draw
      "description": "...", "source": "...", "calibration": {...},
      "variants": [                 # optional: other styles of the same action
        {"style": "press", "threshold": 0.05, "frames": [...], "weights": [...], "calibration": {...}}
      ]
    }

A neuron is one template; its ``frames`` and each of its ``variants`` are *prototypes*
(people wave at the shoulder or above the head, clap with arms opening wide or not).
The matcher follows every prototype and the neuron takes the best of them, each
measured against its own threshold.

The built-ins are authored as joint-angle keyframes (:mod:`mirrorcam.performer`),
rendered by forward kinematics and embedded exactly as a camera's landmarks are; their
thresholds are calibrated against synthetic performers of every other action and of
everyday impostor movements (standing, walking, touching the face, ...).  Rebuild them
with ``python -m mirrorcam.templates``.

Example:
    >>> lib = builtin_library()
    >>> "squat" in lib.names
    True
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from mirrorcam.embedding import DIM, EMBEDDING_VERSION, FEATURES, GROUPS, BASE_WEIGHT, Embedder, Embedding, group_mask
from mirrorcam.errors import TemplateError
from mirrorcam.fileio import atomic_write_json
from mirrorcam.recording import Recording

log = logging.getLogger(__name__)

FORMAT_NAME = "mirrorcam.template"
FORMAT_VERSION = 1
KINDS = ("dynamic", "static")
BUILTIN_DIR = Path(__file__).resolve().parent.parent / "models" / "templates"
RATE_HZ = 15.0
MAX_VARIANTS = 15  # styles beside the main one: each is a DP row per side, and its false alarms add up
BUILTIN_NAMES: tuple[str, ...] = (
    "wave_one_hand", "wave_both_hands", "clap", "arms_up", "arm_circles", "punch",
    "jumping_jack", "squat", "lunge", "bend", "jump_in_place", "high_knees",
)


def user_template_dir() -> Path:
    """``$MIRRORCAM_TEMPLATES`` or ``~/.local/share/mirrorcam/templates`` (taught templates)."""
    env = os.environ.get("MIRRORCAM_TEMPLATES")
    return Path(env) if env else Path.home() / ".local" / "share" / "mirrorcam" / "templates"


def importance_vector(groups: dict[str, float]) -> np.ndarray:
    """``(DIM,)`` per-feature weight from group weights (missing groups weigh 1)."""
    vec = BASE_WEIGHT.copy()
    for group, weight in groups.items():
        vec[group_mask(group)] *= float(weight)
    return vec.astype(np.float32)


def _is_name(text: str) -> bool:
    """Whether ``text`` can name a template or a style: lowercase letters, digits and ``_``."""
    return bool(text) and all(c.isalnum() or c == "_" for c in text) and text == text.lower()


@dataclass(frozen=True)
class Variant:
    """Another style of a template's action: its own frames and threshold.

    Attributes:
        style: Short label, e.g. ``"press"``.
        frames: ``(K, DIM)`` float32 embeddings at the template's ``rate_hz``.
        threshold: Match distance at which this prototype's activation is 0.5.
        weights: ``(K, DIM)`` trust of each feature per frame (default all ones).
        calibration: Facts from the threshold's calibration (JSON-safe).
        velocity_weight: Weight of the matcher's velocity channel for this prototype.
        groups: Importance of the feature groups for this prototype; None (the
            default) takes the template's.  A prototype taught from its own example
            has its own (what moves in that example), and its threshold was
            calibrated with it, so it must also be matched with it.
    """

    style: str
    frames: np.ndarray
    threshold: float
    weights: np.ndarray | None = None
    calibration: dict = field(default_factory=dict, compare=False)
    velocity_weight: float = 0.0
    groups: dict | None = None

    def __post_init__(self) -> None:
        frames, weights = _checked_frames(self.frames, self.weights)
        object.__setattr__(self, "frames", frames)
        object.__setattr__(self, "weights", weights)
        _check_threshold(self.threshold)
        _check_velocity_weight(self.velocity_weight)
        if self.groups is not None:
            _check_groups(self.groups)

    def to_json(self) -> dict:
        return {"style": self.style, "threshold": round(float(self.threshold), 5),
                **({"velocity_weight": float(self.velocity_weight)} if self.velocity_weight else {}),
                **({"importance": {k: float(v) for k, v in self.groups.items()}} if self.groups is not None else {}),
                "calibration": self.calibration,
                "frames": np.round(self.frames, 4).tolist(), "weights": np.round(self.weights, 3).tolist()}

    @staticmethod
    def from_json(obj: object) -> Variant:
        if not isinstance(obj, dict) or not {"style", "threshold", "frames"} <= set(obj):
            raise ValueError("each variant needs style, threshold and frames")
        return Variant(
            style=str(obj["style"]),
            frames=np.asarray(obj["frames"], np.float32),
            threshold=float(obj["threshold"]),
            weights=np.asarray(obj["weights"], np.float32) if obj.get("weights") is not None else None,
            calibration=obj.get("calibration") if isinstance(obj.get("calibration"), dict) else {},
            velocity_weight=float(obj.get("velocity_weight", 0.0)),
            groups=_variant_groups(obj.get("importance")),
        )


def _variant_groups(value: object) -> dict | None:
    if value is None:
        return None  # the template's
    if not isinstance(value, dict):
        raise ValueError(f"a variant's importance must be an object of group weights, got {value!r}")
    return dict(value)


def _checked_frames(frames: object, weights: object) -> tuple[np.ndarray, np.ndarray]:
    frames = np.asarray(frames, np.float32)
    if frames.ndim != 2 or frames.shape[1] != DIM or not 1 <= len(frames) <= 600:
        raise ValueError(f"template frames must have shape (K, {DIM}) with 1 <= K <= 600, got {frames.shape}")
    if not np.all(np.isfinite(frames)):
        raise ValueError("template frames must be finite")
    weights = np.ones_like(frames) if weights is None else np.asarray(weights, np.float32)
    if weights.shape != frames.shape or not np.all(np.isfinite(weights)) or weights.min() < 0:
        raise ValueError(f"template weights must be finite, >= 0 and shaped like frames {frames.shape}")
    return frames, weights


def _check_velocity_weight(weight: object) -> None:
    if not isinstance(weight, (int, float)) or not 0.0 <= float(weight) <= 4.0:
        raise ValueError(f"velocity_weight must be a number between 0 and 4, got {weight!r}")


def _check_threshold(threshold: object) -> None:
    # (Distances between embeddings are of the order of 0.01-1; above 1e6 a threshold is a
    # mistake, and beyond float32's range it would overflow the matcher.)
    if not (isinstance(threshold, (int, float)) and math.isfinite(threshold) and 0 < threshold <= 1e6):
        raise ValueError(f"template threshold must be a positive number up to 1e6, got {threshold!r}")


def _check_groups(groups: dict) -> None:
    for group, weight in groups.items():
        if group not in GROUPS or not isinstance(weight, (int, float)) or weight < 0:
            raise ValueError(f"template importance {group!r}: {weight!r} is not a known group with a weight >= 0")


@dataclass(frozen=True)
class Template:
    """One action template (one neuron).

    Attributes:
        name: Identifier (``[a-z0-9_]``), e.g. ``"wave_one_hand"``.
        display_name: Human-readable name for the screen.
        kind: ``"dynamic"`` (a movement) or ``"static"`` (a held pose).
        side_specific: False when the mirrored body must match as well.
        frames: ``(K, DIM)`` float32 embeddings at ``rate_hz``.
        threshold: Match distance at which the activation is 0.5.
        version: Template file format version.
        preview: ``(K', 33, 3)`` float32 landmarks (MediaPipe world axes) of one cycle.
        weights: ``(K, DIM)`` trust of each feature per frame (default all ones).
        groups: Importance of the feature groups (see ``embedding.GROUPS``).
        rate_hz: Tick rate of ``frames``.
        description: One sentence on the movement.
        source: Where it came from ("built-in keyframes", "taught from clip.mp4@2-4").
        calibration: Facts from the threshold's calibration (JSON-safe).
        variants: Other styles of the action (see :class:`Variant`).
        velocity_weight: Weight of the matcher's velocity channel (which way each body
            part moves) beside the pose; 0 (the default) matches on the pose alone.
    """

    name: str
    display_name: str
    kind: str
    side_specific: bool
    frames: np.ndarray
    threshold: float
    version: int = FORMAT_VERSION
    preview: np.ndarray = field(default_factory=lambda: np.zeros((0, 33, 3), np.float32))
    weights: np.ndarray | None = None
    groups: dict = field(default_factory=dict)
    rate_hz: float = RATE_HZ
    description: str = ""
    source: str = ""
    calibration: dict = field(default_factory=dict, compare=False)
    variants: tuple[Variant, ...] = ()
    velocity_weight: float = 0.0

    def __post_init__(self) -> None:
        if not _is_name(self.name):
            raise ValueError(f"template name must be lowercase letters, digits and '_', got {self.name!r}")
        if self.kind not in KINDS:
            raise ValueError(f"template kind must be one of {KINDS}, got {self.kind!r}")
        frames, weights = _checked_frames(self.frames, self.weights)
        object.__setattr__(self, "frames", frames)
        object.__setattr__(self, "weights", weights)
        preview = np.asarray(self.preview, np.float32)
        if preview.ndim != 3 or preview.shape[1:] != (33, 3):
            raise ValueError(f"template preview must have shape (K, 33, 3), got {preview.shape}")
        object.__setattr__(self, "preview", preview)
        _check_threshold(self.threshold)
        _check_velocity_weight(self.velocity_weight)
        object.__setattr__(self, "variants", tuple(self.variants))
        if not all(isinstance(v, Variant) for v in self.variants) or len(self.variants) > MAX_VARIANTS:
            raise ValueError(f"template variants must be at most {MAX_VARIANTS} Variant objects")
        _check_groups(self.groups)
        if not 1.0 <= self.rate_hz <= 120.0:
            raise ValueError(f"template rate_hz must be between 1 and 120, got {self.rate_hz}")

    @property
    def importance(self) -> np.ndarray:
        """``(DIM,)`` per-feature weights from ``groups``."""
        return importance_vector(self.groups)

    @property
    def duration_s(self) -> float:
        return len(self.frames) / self.rate_hz

    def prototypes(self) -> tuple[Template, ...]:
        """This template and each of its variants as plain templates (same name, no variants).

        Example:
            >>> t = builtin_library().get("arms_up")
            >>> {p.name for p in t.prototypes()} == {"arms_up"}
            True
        """
        base = replace(self, variants=())
        return (base, *(replace(base, frames=v.frames, weights=v.weights, threshold=v.threshold,
                                calibration=v.calibration, velocity_weight=v.velocity_weight,
                                groups=dict(v.groups) if v.groups is not None else base.groups,
                                source=f"{self.source} [{v.style}]") for v in self.variants))

    def to_json(self) -> dict:
        """The JSON object stored in the template file."""
        return {
            "format": FORMAT_NAME,
            "version": self.version,
            "name": self.name,
            "display_name": self.display_name,
            "kind": self.kind,
            "side_specific": self.side_specific,
            "threshold": round(float(self.threshold), 5),
            **({"velocity_weight": float(self.velocity_weight)} if self.velocity_weight else {}),
            "rate_hz": self.rate_hz,
            "embedding_version": EMBEDDING_VERSION,
            "importance": {k: float(v) for k, v in self.groups.items()},
            "description": self.description,
            "source": self.source,
            "calibration": self.calibration,
            "frames": np.round(self.frames, 4).tolist(),
            "weights": np.round(self.weights, 3).tolist(),
            "preview": np.round(self.preview, 3).tolist(),
            **({"variants": [v.to_json() for v in self.variants]} if self.variants else {}),
        }

    @staticmethod
    def from_json(obj: object, origin: str = "template") -> Template:
        """Parse a template object; raises :class:`TemplateError` naming ``origin`` and the reason."""
        if not isinstance(obj, dict):
            raise TemplateError(f"{origin}: expected a JSON object")
        if obj.get("format") != FORMAT_NAME:
            raise TemplateError(f"{origin}: not a mirrorcam template (format is {obj.get('format')!r})")
        if obj.get("version") != FORMAT_VERSION:
            raise TemplateError(f"{origin}: template version {obj.get('version')!r}, this mirrorcam reads {FORMAT_VERSION}")
        obj = _brought_forward(obj)
        if obj.get("embedding_version", EMBEDDING_VERSION) != EMBEDDING_VERSION:
            raise TemplateError(f"{origin}: made for embedding version {obj.get('embedding_version')}; re-teach it")
        missing = [k for k in ("name", "kind", "side_specific", "threshold", "frames") if k not in obj]
        if missing:
            raise TemplateError(f"{origin}: missing {', '.join(missing)}")
        try:
            return Template(
                name=str(obj["name"]),
                display_name=str(obj.get("display_name") or obj["name"]),
                kind=str(obj["kind"]),
                side_specific=_bool(obj["side_specific"]),
                frames=np.asarray(obj["frames"], np.float32),
                threshold=float(obj["threshold"]),
                preview=np.asarray(obj["preview"], np.float32) if obj.get("preview") else np.zeros((0, 33, 3), np.float32),
                weights=np.asarray(obj["weights"], np.float32) if obj.get("weights") is not None else None,
                groups=dict(obj.get("importance") or {}),
                rate_hz=float(obj.get("rate_hz", RATE_HZ)),
                description=str(obj.get("description", "")),
                source=str(obj.get("source", "")),
                calibration=obj.get("calibration") if isinstance(obj.get("calibration"), dict) else {},
                variants=tuple(Variant.from_json(v) for v in _list(obj.get("variants", []), "variants")),
                velocity_weight=float(obj.get("velocity_weight", 0.0)),
            )
        except (ValueError, TypeError) as exc:
            raise TemplateError(f"{origin}: {exc}") from None


# The features each embedding version added (always appended after the last).
_ADDED_FEATURES = {2: "airborne", 3: "travel"}


def _brought_forward(obj: dict) -> dict:
    """A template taught with an older embedding, brought to the current one.

    Each later version only added features; they are added with weight 0, so the
    template matches exactly as it was calibrated (it neither uses nor is charged for
    them) and a user's taught templates survive the upgrade.  Re-teaching it lets it
    use them.  Anything unexpected is left for the normal checks to report.
    """
    version = obj.get("embedding_version", EMBEDDING_VERSION)
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version < EMBEDDING_VERSION:
        return obj
    old_dim = DIM - (EMBEDDING_VERSION - version)

    def widen(part: dict) -> dict:
        frames = part.get("frames")
        if not isinstance(frames, list) or not all(isinstance(f, list) and len(f) == old_dim for f in frames):
            return part
        weights = part.get("weights")
        if weights is None:
            weights = [[1.0] * old_dim for _ in frames]  # the default trust, as for a current file
        elif not (isinstance(weights, list) and len(weights) == len(frames)
                  and all(isinstance(w, list) and len(w) == old_dim for w in weights)):
            return part
        for v in range(version + 1, EMBEDDING_VERSION + 1):
            at = FEATURES.index(_ADDED_FEATURES[v])
            frames = [f[:at] + [0.0] + f[at:] for f in frames]
            weights = [w[:at] + [0.0] + w[at:] for w in weights]
        return {**part, "frames": frames, "weights": weights}

    variants = obj.get("variants")
    return {**widen(obj), "embedding_version": EMBEDDING_VERSION,
            **({"variants": [widen(v) if isinstance(v, dict) else v for v in variants]} if isinstance(variants, list) else {})}


def _list(value: object, what: str) -> list:
    if not isinstance(value, list):
        raise ValueError(f"{what} must be a list")
    return value


def _bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"side_specific must be true or false, got {value!r}")
    return value


def load_template(path: str | Path) -> Template:
    """Read one template file.

    Raises:
        TemplateError: Missing, not JSON, or not a valid template (the message names the file).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TemplateError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise TemplateError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as exc:  # (JSONDecodeError is a ValueError; so is a 5,000-digit number)
        raise TemplateError(f"{path}: not valid JSON ({str(exc)[:200]})") from None
    try:
        template = Template.from_json(obj, str(path))
    except (ValueError, OverflowError) as exc:  # a check below TemplateError's own (finite frames, ...)
        raise TemplateError(f"{path}: {exc}") from None
    if template.rate_hz != RATE_HZ:
        raise TemplateError(f"{path}: stored at {template.rate_hz} Hz, the matcher runs at {RATE_HZ} Hz")
    return template


def save_template(path: str | Path, template: Template, force: bool = False) -> Path:
    """Write ``template`` atomically; refuses to overwrite unless ``force``.

    Raises:
        TemplateError: The file exists and ``force`` is False.
    """
    path = Path(path)
    if path.exists() and not force:
        raise TemplateError(f"{path} already exists; use --force to replace it")
    atomic_write_json(path, template.to_json())
    return path


@dataclass(frozen=True)
class TemplateLibrary:
    """Templates loaded from folders, with the files that could not be read.

    Attributes:
        templates: Loaded templates, later folders replacing same-named earlier ones.
        errors: ``(path, reason)`` for every file that failed to load.
    """

    templates: tuple[Template, ...]
    errors: tuple[tuple[str, str], ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.templates)

    def get(self, name: str) -> Template:
        for t in self.templates:
            if t.name == name:
                return t
        raise KeyError(name)

    def __len__(self) -> int:
        return len(self.templates)

    @staticmethod
    def load(
        dirs: Iterable[str | Path] | None = None,
        extra_dirs: Iterable[str | Path] = (),
        include_user: bool = False,
    ) -> TemplateLibrary:
        """Load every ``*.json`` of ``dirs`` (default: the built-ins) and ``extra_dirs``.

        A malformed file is logged with its name and the reason and skipped; the rest
        load.  A missing extra folder is an error (the user named it).

        Raises:
            TemplateError: An extra folder does not exist.
        """
        folders = [Path(d) for d in (dirs if dirs is not None else [BUILTIN_DIR])]
        if include_user and user_template_dir().is_dir():
            folders.append(user_template_dir())
        for d in extra_dirs:
            d = Path(d)
            if not d.is_dir():
                raise TemplateError(f"template folder {d} does not exist")
            folders.append(d)
        by_name: dict[str, Template] = {}
        errors = []
        for folder in folders:
            if not folder.is_dir():
                continue
            for path in sorted(folder.glob("*.json")):
                try:
                    template = load_template(path)
                except TemplateError as exc:
                    log.warning("skipping template %s", exc)
                    errors.append((str(path), str(exc)))
                    continue
                by_name[template.name] = template
        # Built-ins first in their public order, then the rest alphabetically.
        order = {n: i for i, n in enumerate(BUILTIN_NAMES)}
        templates = sorted(by_name.values(), key=lambda t: (order.get(t.name, len(order)), t.name))
        return TemplateLibrary(tuple(templates), tuple(errors))


def builtin_library() -> TemplateLibrary:
    """The built-in library as shipped in ``models/templates``."""
    return TemplateLibrary.load([BUILTIN_DIR])


# ---------------------------------------------------------------------------------------
# Embedding streams.
# ---------------------------------------------------------------------------------------
def main_person_id(recording: Recording) -> int | None:
    """The id of the person present in most frames (ties: the larger body)."""
    counts: dict[int, list[float]] = {}
    for frame in recording.frames:
        for p in frame.persons:
            x0, y0, x1, y1 = p.bbox
            counts.setdefault(p.id, []).append((x1 - x0) * (y1 - y0))
    if not counts:
        return None
    return max(counts, key=lambda pid: (len(counts[pid]), float(np.mean(counts[pid]))))


def embed_recording(
    recording: Recording, person: int | None = None, start_s: float | None = None, end_s: float | None = None,
    speed: float = 1.0,
) -> list[tuple[float, Embedding]]:
    """``(t_ms, Embedding)`` of one person through a recording (or a segment of it).

    Args:
        recording: Landmark recording.
        person: Person id (default: :func:`main_person_id`).
        start_s: Segment start in seconds (of the original timeline).
        end_s: Segment end in seconds.
        speed: Replay speed: timestamps are divided by it (2.0 = twice as fast).
    """
    pid = main_person_id(recording) if person is None else person
    if pid is None:
        return []
    embedder = Embedder()
    out = []
    for frame in recording.frames:
        t = frame.timestamp_ms
        if start_s is not None and t < start_s * 1000.0:
            continue
        if end_s is not None and t > end_s * 1000.0:
            break
        p = frame.person(pid)
        if p is None:
            continue
        out.append((t / speed, embedder.update(p, t / speed, frame.image_size)))
    return out


# ---------------------------------------------------------------------------------------
# Built-in authoring and calibration.
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BuiltinSpec:
    display_name: str
    kind: str
    groups: dict
    description: str


_ARMS = {"torso": 0.5, "arms": 1.0, "legs": 0.2, "lift": 0.0}
BUILTIN_SPECS: dict[str, BuiltinSpec] = {
    "wave_one_hand": BuiltinSpec("Wave (one hand)", "dynamic", _ARMS, "One hand raised, the forearm swinging side to side."),
    "wave_both_hands": BuiltinSpec("Wave (both hands)", "dynamic", _ARMS, "Both hands raised, forearms swinging side to side."),
    "clap": BuiltinSpec("Clap", "dynamic", _ARMS, "Hands meeting in front of the chest, twice."),
    # Legs count fully: standing still is what tells arms_up from a jumping jack's arms
    # (with legs at 0.4 the jumping_jack neuron out-fired it on a textbook arms_up).
    "arms_up": BuiltinSpec("Arms up", "dynamic", {"torso": 0.5, "arms": 1.0, "legs": 1.0, "lift": 0.5}, "Both arms raised straight above the head, standing still, and lowered."),
    "arm_circles": BuiltinSpec("Arm circles", "dynamic", _ARMS, "Arms out to the sides, circling."),
    "punch": BuiltinSpec("Punch", "dynamic", _ARMS, "From a guard, one fist thrown straight ahead and pulled back."),
    "jumping_jack": BuiltinSpec("Jumping jack", "dynamic", {"torso": 0.5, "arms": 1.0, "legs": 1.0, "lift": 0.5}, "Jump feet apart with arms overhead, and back."),
    # The arms do not count in the actions of the legs and trunk: people hold them every
    # which way (forward, on the hips, behind the head, holding a weight, swinging), and
    # at 0.2-0.3 a goblet squat's raised forearms still made most of its distance
    # (builtin eval: arms 0.3 / 0.1 / 0.05 / 0: 54.0 / 56.8 / 59.5 / 62.2 %).
    "squat": BuiltinSpec("Squat", "dynamic", {"torso": 1.0, "arms": 0.0, "legs": 1.0, "lift": 1.0}, "Hips down and back, knees bent, and up again."),
    "lunge": BuiltinSpec("Lunge", "dynamic", {"torso": 1.0, "arms": 0.0, "legs": 1.0, "lift": 0.5}, "One leg forward, the back knee lowered, and back."),
    "bend": BuiltinSpec("Bend", "dynamic", {"torso": 1.5, "arms": 0.0, "legs": 0.5, "lift": 0.5}, "Bend forward at the hips, hands toward the floor, and up."),
    "jump_in_place": BuiltinSpec("Jump in place", "dynamic", {"torso": 0.5, "arms": 0.0, "legs": 1.0, "lift": 1.5}, "Crouch, jump straight up, land."),
    "high_knees": BuiltinSpec("High knees", "dynamic", {"torso": 0.5, "arms": 0.0, "legs": 1.0, "lift": 0.5}, "Running in place, knees to hip height."),
}
STATIC_TICKS = 4  # a static pose must be held ~0.25 s
VELOCITY_WEIGHT = 0.25
"""The velocity channel's weight for a built-in prototype that is better off with it."""


def template_frames_from_stream(
    stream: Sequence[tuple[float, Embedding]], start_ms: float, end_ms: float, rate_hz: float = RATE_HZ
) -> tuple[np.ndarray, np.ndarray]:
    """Tick-resampled ``(frames, weights)`` of a stream between two times."""
    from mirrorcam.matching import tick_stream

    times, x, w = tick_stream(stream, rate_hz)
    keep = (times >= start_ms - 1e-6) & (times <= end_ms + 1e-6)
    return x[keep], w[keep]


def _render_motion(motion, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """``(frames, weights)`` of one cycle of an authored motion, embedded as a camera's would be."""
    from mirrorcam.performer import PerformerOptions, perform

    lead = 1.5
    if kind == "static":
        rec = perform(motion, PerformerOptions(repeats=2, lead_in_s=lead))
        stream = embed_recording(rec)
        # The middle of the hold (the performer eases in and out around it).
        held = (lead + 0.4) * 1000.0
        frames, weights = template_frames_from_stream(stream, held, held + (2 * motion.duration - 0.6) * 1000.0)
        return np.repeat(frames.mean(axis=0, keepdims=True), STATIC_TICKS, 0), np.repeat(weights.min(axis=0, keepdims=True), STATIC_TICKS, 0)
    rec = perform(motion, PerformerOptions(repeats=3, lead_in_s=lead))
    stream = embed_recording(rec)
    # The second cycle: the first one starts from rest, the second from the cycle's end.
    start = (lead + motion.duration) * 1000.0
    return template_frames_from_stream(stream, start, start + motion.duration * 1000.0)


def author_builtin(name: str, threshold: float = 1.0) -> Template:
    """Render the built-in ``name`` (and its other styles) from keyframes into an uncalibrated template."""
    from mirrorcam.performer import ACTIONS, STYLE_ACTIONS, preview_landmarks

    spec = BUILTIN_SPECS[name]
    motion = ACTIONS[name]
    frames, weights = _render_motion(motion, spec.kind)
    variants = []
    for style_name in STYLE_ACTIONS.get(name, ()):
        f, w = _render_motion(ACTIONS[style_name], spec.kind)
        variants.append(Variant(style_name.split(":", 1)[1], f, threshold, weights=w))
    return Template(
        name=name,
        display_name=spec.display_name,
        kind=spec.kind,
        side_specific=False,
        frames=frames,
        threshold=threshold,
        preview=preview_landmarks(motion),
        weights=weights,
        groups=dict(spec.groups),
        description=spec.description,
        source="built-in: authored joint-angle keyframes (mirrorcam.performer), forward kinematics",
        variants=tuple(variants),
    )


def synthetic_variations(action: str, count: int, seed: int, side_free: bool = True) -> list[Recording]:
    """Performances of ``action`` by varied synthetic performers (for calibration and tests)."""
    from mirrorcam.performer import BodyShape, PerformerOptions, perform

    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        opts = PerformerOptions(
            fps=float(rng.choice([10.0, 25.0, 30.0])),
            speed=float(rng.uniform(0.7, 1.5)),
            repeats=2,
            lead_in_s=0.8,
            yaw_deg=float(rng.uniform(-40, 40)),
            mirror=bool(side_free and i % 2 == 1),
            translation=(float(rng.uniform(-0.5, 0.5)), float(rng.uniform(-0.5, 1.0))),
            scale=float(rng.uniform(0.8, 1.15)),
            shape=BodyShape.random(rng),
            noise_m=float(rng.uniform(0.01, 0.03)),
            seed=int(rng.integers(1 << 30)),
            style_deg=float(rng.uniform(5.0, 15.0)),
            amplitude=float(rng.uniform(0.75, 1.15)),
        )
        out.append(perform(action, opts))
    return out


# Generated performances per action that a taught template is calibrated against.
IMPOSTORS_PER_ACTION = 2


@functools.lru_cache(maxsize=1)
def synthetic_performances() -> tuple[tuple[str, list], ...]:
    """``(action, embedded stream)`` of generated performers of every performer action
    (styles such as ``wave_one_hand:overhead`` included): constant, so made once."""
    from mirrorcam.performer import ACTIONS

    return tuple(
        (action, embed_recording(rec))
        for k, action in enumerate(ACTIONS)
        for rec in synthetic_variations(action, IMPOSTORS_PER_ACTION, 1000 + 31 * k)
    )


def impostor_streams(exclude: str) -> list:
    """Embedded synthetic performances of every action except ``exclude`` (and its styles).

    Used by ``mirrorcam teach`` and by teaching from the live camera, so a taught
    template is calibrated the same way whichever way it was taught; the LOSO
    evaluation calibrates against the same performances, with the same exclusion.
    """
    return [stream for action, stream in synthetic_performances() if not is_style_of(action, exclude)]


def is_style_of(action: str, name: str) -> bool:
    """Whether performer action ``action`` is ``name`` or one of its styles (``name:style``)."""
    return action.split(":", 1)[0] == name


def choose_threshold(positive: np.ndarray, impostor: np.ndarray) -> tuple[float, dict]:
    """A threshold between the distances of true performances and of impostors.

    GRT's DTW classifier uses mean + k * std of the training distances alone; that
    ignores how close the impostors come.  Here the threshold is the geometric mean of
    the 90th percentile of the positives and the 5th percentile of the impostors, never
    above 85 % of the closest impostors' 5th percentile (rejection first), never below
    the positives' median (a template must still match its own action).  The positives'
    90th percentile counts as at least 1 % of the impostors' 5th: examples that match
    each other exactly (generated ones, or one performance cut twice) say nothing about
    how far a new performance may be, and the geometric mean with ~0 is ~0.
    """
    pos = np.asarray(positive, np.float64)
    neg = np.asarray(impostor, np.float64)
    pos = pos[np.isfinite(pos)]
    neg = neg[np.isfinite(neg)]
    p90 = float(np.quantile(pos, 0.9)) if len(pos) else None
    p50 = float(np.median(pos)) if len(pos) else None
    n05 = float(np.quantile(neg, 0.05)) if len(neg) else None
    if p90 is not None and n05 is not None:
        thr = math.sqrt(max(p90, 0.01 * n05, 1e-6) * max(n05, 1e-6))
        thr = min(thr, 0.85 * n05)
        thr = max(thr, p50)
    elif p90 is not None:
        thr = 1.5 * p90
    elif n05 is not None:
        thr = 0.6 * n05
    else:
        thr = 0.1
    facts = {
        "positive_p50": _r(p50), "positive_p90": _r(p90), "impostor_p05": _r(n05),
        "impostor_min": _r(float(neg.min()) if len(neg) else None),
        "positives": int(len(pos)), "impostors": int(len(neg)),
        "margin": _r(n05 / p90 if p90 and n05 else None),
    }
    return float(max(thr, 1e-4)), facts


def _r(v: float | None) -> float | None:
    return None if v is None else round(float(v), 5)


def calibrate(
    templates: Sequence[Template], labelled_streams: Sequence[tuple[str, list[tuple[float, Embedding]]]],
    dists: np.ndarray | None = None,
) -> list[Template]:
    """Calibrate every template's threshold on labelled embedded streams.

    A stream labelled with a template's name is a positive for it; every other stream
    (other actions, impostor movements) is an impostor.
    """
    from mirrorcam.matching import best_distances

    if dists is None:  # (S, N), given when the caller already has them
        dists = np.stack([best_distances(templates, stream) for _, stream in labelled_streams])
    labels = [label for label, _ in labelled_streams]
    out = []
    for i, t in enumerate(templates):
        pos = dists[[j for j, lab in enumerate(labels) if lab == t.name], i]
        neg = dists[[j for j, lab in enumerate(labels) if lab != t.name], i]
        thr, facts = choose_threshold(pos, neg)
        out.append(replace(t, threshold=thr, calibration=facts))
    return out


def build_builtins(
    out_dir: str | Path = BUILTIN_DIR,
    per_action: int = 8,
    seed: int = 7,
    real_impostors: Sequence[tuple[tuple[str, ...], list[tuple[float, Embedding]]]] = (),
    real_quantile: float = 0.02,
    real_factor: float = 0.9,
) -> list[Template]:
    """Author, calibrate and write the built-in templates (``python -m mirrorcam.templates``).

    Every prototype (a template's main style and each variant) is calibrated on its own,
    and uses the matcher's velocity channel (``VELOCITY_WEIGHT``) when that separates
    its synthetic performers from the synthetic impostors by a larger margin than the
    pose alone.  Thresholds come from synthetic performers.  With ``real_impostors`` (``(labels,
    stream)`` of real clips), each prototype's threshold is instead ``real_factor`` times
    the ``real_quantile`` of its distances to the real clips that are *not* labelled
    with its action (other actions, standing, walking; every person in a clip, not only
    the main one; a variant gets ``real_quantile / n`` of n prototypes, since a neuron's
    prototypes add their false alarms up), capped by the synthetic performers of the
    everyday movements and of the actions the real footage lacks: 85 % of their 2.5th
    percentile, and 90 % of the closest canonical (noise-free) performance.  No clip of
    the action itself is used.
    """
    from mirrorcam.matching import best_distances
    from mirrorcam.performer import ACTIONS, IMPOSTOR_ACTIONS, PerformerOptions, perform

    authored = [author_builtin(name) for name in BUILTIN_NAMES]
    protos = [p for t in authored for p in t.prototypes()]
    streams, canonical = [], []
    for k, action in enumerate(ACTIONS):
        # The canonical, noise-free performance too: varied performers are noisier, and
        # noise keeps them farther from a clean template than the plain movement is.
        canonical.append(len(streams))
        for rec in [perform(action, PerformerOptions(repeats=2)), *synthetic_variations(action, per_action, seed + 101 * k)]:
            streams.append((action.split(":", 1)[0], embed_recording(rec)))
    # Each prototype is calibrated on the pose alone and with the velocity channel, and
    # keeps whichever separates its own synthetic performers from the impostors better
    # (the margin: impostors' 5th percentile over positives' 90th).  Oscillations and
    # jumps gain from it (a still pose near them does not move); slow whole-body
    # movements lose (noise in their velocity costs them more than it tells).
    moving = [replace(p, velocity_weight=VELOCITY_WEIGHT) for p in protos]
    syn_pose = np.stack([best_distances(protos, s) for _, s in streams])  # (S, P)
    syn_moving = np.stack([best_distances(moving, s) for _, s in streams])
    by_pose, by_moving = calibrate(protos, streams, dists=syn_pose), calibrate(moving, streams, dists=syn_moving)
    use = np.zeros(len(protos), bool)
    protos = []
    for i, (pose, move) in enumerate(zip(by_pose, by_moving)):
        use[i] = (move.calibration["margin"] or 0.0) > (pose.calibration["margin"] or 0.0)
        chosen = move if use[i] else pose
        margins = {"margin_pose": pose.calibration["margin"], "margin_velocity": move.calibration["margin"]}
        protos.append(replace(chosen, calibration={**chosen.calibration, **margins}))
    syn = np.where(use[None, :], syn_moving, syn_pose)
    if real_impostors:
        dists = np.stack([best_distances(protos, s) for _, s in real_impostors])
        # Synthetic performers are rendered by the same performer as the templates, so
        # they come closer than real people do: where real footage of an action exists
        # it decides, and the synthetic performers bound a template only for the
        # actions the real footage lacks (arm circles) and for the everyday movements
        # that must never fire (one real clip of drinking is one way of drinking).
        covered = {lab.split(":", 1)[-1] for labels, _ in real_impostors for lab in labels}
        shares = [1 if k == 0 else 1 + len(t.variants) for t in authored for k in range(1 + len(t.variants))]
        for i, t in enumerate(protos):
            neg = dists[[j for j, (labels, _) in enumerate(real_impostors) if t.name not in labels], i]
            neg = neg[np.isfinite(neg)]
            if len(neg) == 0:
                continue
            rows = [j for j, (a, _) in enumerate(streams) if a != t.name and (a not in covered or a in IMPOSTOR_ACTIONS)]
            unc = syn[rows, i] if rows else np.zeros(0)
            unc = unc[np.isfinite(unc)]
            # A neuron with several prototypes adds their false alarms up: the main style
            # keeps the budget it had alone, the variants are held to a share of it.
            q = float(np.quantile(neg, real_quantile / shares[i]))
            facts = {**t.calibration, "real_impostors": int(len(neg)), "real_impostor_q": _r(q),
                     "synthetic_threshold": _r(t.threshold)}
            limit = 0.85 * float(np.quantile(unc, 0.025)) if len(unc) else np.inf
            # ... and none of their canonical performances may reach it (the quantile
            # above forgives the closest one or two of all the varied performers).
            plain = [syn[j, i] for j in canonical if j in rows and np.isfinite(syn[j, i])]
            if plain:
                limit = min(limit, 0.9 * float(min(plain)))
            facts["synthetic_uncovered_limit"] = _r(limit) if np.isfinite(limit) else None
            protos[i] = replace(t, threshold=float(min(real_factor * q, limit)), calibration=facts)
    calibrated = iter(protos)  # in the order of authored[*].prototypes()
    templates = []
    for t in authored:
        main = next(calibrated)
        variants = tuple(replace(v, threshold=p.threshold, calibration=p.calibration, velocity_weight=p.velocity_weight)
                         for v, p in zip(t.variants, calibrated))
        templates.append(replace(t, threshold=main.threshold, calibration=main.calibration,
                                 velocity_weight=main.velocity_weight, variants=variants))
    out_dir = Path(out_dir)
    for t in templates:
        save_template(out_dir / f"{t.name}.json", t, force=True)
    return templates


# ---------------------------------------------------------------------------------------
# Teaching.
# ---------------------------------------------------------------------------------------
def parse_clip_spec(spec: str) -> tuple[str, float | None, float | None]:
    """``"clip.mp4@2.5-4"`` -> ``("clip.mp4", 2.5, 4.0)``; no ``@`` means the whole clip.

    Raises:
        TemplateError: A malformed segment.
    """
    if "@" not in spec:
        return spec, None, None
    path, _, seg = spec.rpartition("@")
    try:
        a, b = seg.split("-", 1)
        start, end = float(a), float(b)
    except ValueError:
        raise TemplateError(f"segment {seg!r} of {spec!r} must look like START-END in seconds, e.g. @2.5-4") from None
    if not 0 <= start < end:
        raise TemplateError(f"segment {seg!r} of {spec!r} must have 0 <= START < END")
    return path, start, end


def teach_template(
    name: str,
    examples: Sequence[list[tuple[float, Embedding]]],
    impostors: Sequence[list[tuple[float, Embedding]]],
    display_name: str | None = None,
    kind: str = "dynamic",
    side_specific: bool = False,
    groups: dict | None = None,
    source: str = "",
    max_seconds: float = 4.0,
) -> Template:
    """Learn a template from one to five example performances.

    The most representative example (the one closest, by DTW, to all the others) becomes
    the template; its threshold is calibrated between the distances to the other
    examples and to the impostor streams (other templates' performances, everyday
    movements).

    Args:
        name: Template name.
        examples: Embedded streams, each one performance (1 to 5).
        impostors: Embedded streams that must not match.
        kind: ``"dynamic"`` or ``"static"`` (a static template is the examples' mean pose).
        max_seconds: Longer examples are cut to their most moving part of this length.

    Raises:
        TemplateError: No usable example, or more than five.
    """
    from mirrorcam.matching import best_distances

    if not 1 <= len(examples) <= 5:
        raise TemplateError(f"teaching needs one to five examples, got {len(examples)}")
    cands = []
    for stream in examples:
        if len(stream) < 2:
            continue
        frames, weights = template_frames_from_stream(stream, stream[0][0], stream[-1][0])
        frames, weights = _most_moving(frames, weights, int(max_seconds * RATE_HZ))
        if kind == "static":
            frames = np.repeat(frames.mean(axis=0, keepdims=True), STATIC_TICKS, 0)
            weights = np.repeat(weights.min(axis=0, keepdims=True), STATIC_TICKS, 0)
        if len(frames) >= 2 and float(weights.mean()) > 0.05:
            cands.append((frames, weights))
    if not cands:
        raise TemplateError(f"no usable example for {name!r}: too short, or no person seen in it")
    protos_groups = [dict(groups) if groups is not None else auto_groups(f, w) for f, w in cands]
    velocity = taught_velocity_weight(kind)
    protos = [
        Template(name, display_name or name, kind, side_specific, f, 1.0, weights=w, groups=g, velocity_weight=velocity)
        for (f, w), g in zip(cands, protos_groups)
    ]
    if len(protos) > 1:
        usable = [s for s in examples if len(s) >= 2]
        dist = np.stack([best_distances(protos, s) for s in usable])  # (examples, candidates)
        np.fill_diagonal(dist, np.nan)
        chosen = int(np.nanargmin(np.nanmean(dist, axis=0)))
        positives = dist[:, chosen]
    else:
        chosen, positives = 0, np.array([])
    proto = protos[chosen]
    neg = np.array([best_distances([proto], s)[0] for s in impostors if len(s) >= 2])
    thr, facts = choose_threshold(positives, neg)
    return replace(proto, threshold=thr, calibration=facts, source=source, description=f"Taught from {len(cands)} example(s).")


def add_style(template: Template, taught: Template, style: str) -> Template:
    """``template`` with ``taught`` as one more of its styles (a :class:`Variant`).

    How a user teaches an existing neuron, a built-in included, their own way of doing
    the action: the neuron keeps every prototype it had, with its threshold, and fires
    for the new one too.  The new style keeps the threshold, trust, velocity channel and
    feature-group importance it was calibrated with (``taught`` is what
    :func:`teach_template` returns).  Its false alarms add to the neuron's.

    Example:
        >>> wave = builtin_library().get("wave_one_hand")
        >>> mine = teach_template("wave_one_hand", [my_waves], impostor_streams("wave_one_hand"))  # doctest: +SKIP
        >>> add_style(wave, mine, "mine").variants[-1].style  # doctest: +SKIP
        'mine'

    Raises:
        TemplateError: A bad or taken style label, a template with all the styles it can
            take, another kind or side-specificity, or a different tick rate.
    """
    check_style(template, style)
    if (taught.kind, taught.side_specific) != (template.kind, template.side_specific):
        raise TemplateError(f"{template.name!r} is {'side-specific ' if template.side_specific else ''}{template.kind}; "
                            f"the new style must be too")
    if taught.rate_hz != template.rate_hz:
        raise TemplateError(f"{template.name!r} is stored at {template.rate_hz:g} Hz, the new style at {taught.rate_hz:g} Hz")
    variant = Variant(style, taught.frames, taught.threshold, weights=taught.weights, calibration=taught.calibration,
                      velocity_weight=taught.velocity_weight, groups=dict(taught.groups))
    return replace(template, variants=(*template.variants, variant),
                   source=f"{template.source}; style {style!r} {taught.source}".strip("; "))


def check_style(template: Template, style: str) -> None:
    """Raise :class:`TemplateError` unless ``style`` can label a new style of ``template``."""
    if not _is_name(style):
        raise TemplateError(f"style {style!r} must use lowercase letters, digits and _ only")
    if style in {v.style for v in template.variants}:
        raise TemplateError(f"{template.name!r} already has a style {style!r}; choose another --style")
    if len(template.variants) >= MAX_VARIANTS:
        raise TemplateError(f"{template.name!r} already has {len(template.variants) + 1} styles, the most a template takes")


def free_style(template: Template) -> str:
    """The first of ``mine``, ``mine2``, ``mine3``, ... that ``template`` has no style of."""
    taken = {v.style for v in template.variants}
    return next(s for s in ("mine", *(f"mine{k}" for k in range(2, MAX_VARIANTS + 2))) if s not in taken)


def taught_velocity_weight(kind: str) -> float:
    """Velocity-channel weight of a taught template: ``VELOCITY_WEIGHT`` for a movement, 0 for a pose.

    Why every taught movement, when the built-ins choose prototype by prototype: the
    built-ins choose on synthetic performers, a taught template has only its one to five
    examples.  With the channel the leave-one-subject-out eval improved on every figure
    (accuracy 56.8 -> 62.2 %, false fires 9.9 -> 8.4/min, flip 88.9 -> 93.7 %, 2x 46.0 ->
    51.3 %); choosing per example by its margin over the impostors did not (56.8 %).  A
    static pose is held still, which the pose alone already says.
    """
    return VELOCITY_WEIGHT if kind == "dynamic" else 0.0


def auto_groups(frames: np.ndarray, weights: np.ndarray) -> dict:
    """Importance of the feature groups from how much each moves in an example.

    The moving parts define an action; still parts count little: weight = 0.1 + 0.9 *
    (group movement / largest movement).  Why so little: people hold what the action
    does not use every which way (the built-ins' leg actions gained most from ignoring
    the arms), and the floor of 0.3 left the leave-one-subject-out eval at 62.2 % where
    0.1 gives 67.6 % (false fires 8.4 -> 7.7/min, 0.5x / 2x 51.3 / 51.3 -> 56.8 / 54.0 %,
    flip 93.7 -> 90.5 %).  Not 0: a pose, which does not move, would weigh nothing.
    (Within a group the still parts keep their full share: a wave keeps the other arm down.)
    """
    if len(frames) < 2:
        return {}
    step = np.abs(np.diff(frames, axis=0)) * np.minimum(weights[1:], weights[:-1])
    motion = {g: float(step[:, group_mask(g)].sum(axis=0).mean()) for g in GROUPS}
    top = max(motion.values()) or 1.0
    return {g: round(0.1 + 0.9 * m / top, 3) for g, m in motion.items()}


def _most_moving(frames: np.ndarray, weights: np.ndarray, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    if len(frames) <= max_len:
        return frames, weights
    step = np.r_[0.0, np.sqrt(((np.diff(frames, axis=0) ** 2) * weights[1:]).sum(axis=1))]
    window = np.convolve(step, np.ones(max_len), mode="valid")
    i = int(np.argmax(window))
    return frames[i : i + max_len], weights[i : i + max_len]


def _real_streams(manifest: Path) -> list[tuple[tuple[str, ...], list[tuple[float, Embedding]]]]:
    import csv

    from mirrorcam.pipeline import clip_landmarks

    rows = list(csv.DictReader(manifest.read_text(encoding="utf-8").splitlines(), delimiter="\t"))
    out = []
    for row in rows:
        rec = clip_landmarks(manifest.parent / row["path"], progress=False)
        labels = tuple(row["label"].split("|"))
        out.append((labels, embed_recording(rec)))
        # Everyone in the footage is an impostor, not only its main person: a bystander
        # raising an arm in a group clip must not fire either.
        main = main_person_id(rec)
        seen: dict[int, int] = {}
        for frame in rec.frames:
            for person in frame.persons:
                seen[person.id] = seen.get(person.id, 0) + 1
        for pid, n in sorted(seen.items()):
            if pid != main and n >= 15:
                out.append((labels, embed_recording(rec, person=pid)))
    return out


if __name__ == "__main__":  # pragma: no cover - authoring entry point
    import argparse

    parser = argparse.ArgumentParser(description="rebuild models/templates from the authored keyframes")
    parser.add_argument("--impostors", type=Path, help="manifest of real clips; clips not labelled with a template calibrate it")
    parser.add_argument("--quantile", type=float, default=0.02)
    parser.add_argument("--factor", type=float, default=0.9)
    parser.add_argument("--out", type=Path, default=BUILTIN_DIR)
    a = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    real = _real_streams(a.impostors) if a.impostors else ()
    for t in build_builtins(a.out, real_impostors=real, real_quantile=a.quantile, real_factor=a.factor):
        print(f"{t.name:16s} K={len(t.frames):3d} threshold={t.threshold:.4f} {t.calibration}")
