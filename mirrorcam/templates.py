"""Action templates ("neurons"): the data and the library.

A template is a small JSON file (``models/templates/<name>.json`` for the built-ins, a
user folder for taught ones)::

    {
      "format": "mirrorcam.template", "version": 1,
      "name": "wave_one_hand", "display_name": "Wave (one hand)",
      "kind": "dynamic",            # or "static" (a held pose)
      "side_specific": false,       # false: the mirrored body matches as well
      "threshold": 0.125,           # calibrated match distance (activation 0.5)
      "velocity_weight": 0.25,      # the velocity channel's share (0: the pose alone)
      "rate_hz": 15, "embedding_version": 3,
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

The built-ins are authored and calibrated by :mod:`mirrorcam.authoring` (rebuild them
with ``python -m mirrorcam.authoring``); :mod:`mirrorcam.teaching` learns templates from
example performances.  This module only reads, checks and writes them.

Example:
    >>> lib = builtin_library()
    >>> "squat" in lib.names
    True
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import reprlib
import stat
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from mirrorcam.embedding import DIM, EMBEDDING_VERSION, FEATURES, GROUPS, BASE_WEIGHT, Embedder, Embedding, group_mask
from mirrorcam.errors import TemplateError
from mirrorcam.fileio import atomic_write_bytes
from mirrorcam.recording import Recording

log = logging.getLogger(__name__)

FORMAT_NAME = "mirrorcam.template"
FORMAT_VERSION = 1
KINDS = ("dynamic", "static")
BUILTIN_DIR = Path(__file__).resolve().parent.parent / "models" / "templates"
RATE_HZ = 15.0
MAX_VARIANTS = 15  # styles beside the main one: each is a DP row per side, and its false alarms add up
# Bounds of a template's numbers, far beyond what authoring and teaching give (features:
# unit directions, angles in 0..1, positions in torso lengths, the built-ins' within
# -1.4..2.8; trust: an embedding's weight, in 0..1; importance: teaching's 0.1..1, the
# built-ins' 0..1.5).  Beyond them a value is a mistake, and a huge one overflowed the
# matcher's float32 sums (numpy warnings, and a NaN importance spoiled other neurons of
# the bank too).
MAX_FEATURE = 1e3
MAX_IMPORTANCE = 10.0
# The largest file a template can be (16 prototypes of the 600 frames a file may hold, a
# long preview) is about 15 MB of JSON; teaching makes 60-frame prototypes and the built-ins
# are under 200 kB.  A bigger file is not read at all.
MAX_FILE_BYTES = 32 << 20
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


def is_valid_name(text: object) -> bool:
    """Whether ``text`` can name a template or a style: a string of ASCII lowercase letters,
    digits and ``_`` (it is a file name too; the display name can be in any script)."""
    return isinstance(text, str) and re.fullmatch(r"[a-z0-9_]+", text) is not None


MAX_DISPLAY_NAME = 40
"""Characters of a display name: as many as the live screen lets a visitor type for an
action taught there, and about what a row of its neuron list shows before it shortens the
name with "..." (36 at 1280 x 720).  The built-ins' are at most 17."""
# Characters that are no part of one line of text: controls (a newline, a tab, an escape),
# line and paragraph separators, and lone surrogates (no UTF-8 text holds them).  Format
# characters (Cf) are kept: the zero-width joiners of emoji and of Indic scripts are some.
_NOT_ONE_LINE = ("Cc", "Cs", "Zl", "Zp")


def display_name_problem(text: str) -> str | None:
    """Why ``text`` cannot be a template's display name, or None.

    The screen draws it as one line of the neuron list: a newline had broken the name onto
    a second line, over the next row, a tab came out as "?", and of 100,000 characters only
    the first few dozen were shown.  The result reads after the field's name
    ("display_name ...", "--display-name ...").
    """
    for i, char in enumerate(text, start=1):
        if unicodedata.category(char) in _NOT_ONE_LINE:
            return (f"holds a control character (U+{ord(char):04X} at character {i}); "
                    "the screen shows a display name as one line of text")
    if len(text) > MAX_DISPLAY_NAME:
        return f"is {len(text)} characters long; at most {MAX_DISPLAY_NAME} fit a neuron's row on the screen"
    return None


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
        return {"style": self.style, "threshold": _threshold_json(self.threshold),
                **({"velocity_weight": float(self.velocity_weight)} if self.velocity_weight else {}),
                **({"importance": {k: float(v) for k, v in self.groups.items()}} if self.groups is not None else {}),
                "calibration": self.calibration,
                "frames": _rounded(self.frames, 4), "weights": _rounded(self.weights, 3)}

    @staticmethod
    def from_json(obj: object) -> Variant:
        if not isinstance(obj, dict) or not {"style", "threshold", "frames"} <= set(obj):
            raise ValueError("each variant needs style, threshold and frames")
        if not is_valid_name(obj["style"]):  # (the rule `teach --add --style` keeps; 5 had been the style "5")
            raise ValueError(f"variant style {reprlib.repr(obj['style'])} must be a string of lowercase letters, "
                             "digits and '_'")
        try:
            return Variant(
                style=obj["style"],
                frames=_numbers(obj["frames"], "frames"),
                threshold=_real(obj["threshold"], "threshold"),
                weights=_numbers(obj["weights"], "weights") if obj.get("weights") is not None else None,
                calibration=obj.get("calibration") if isinstance(obj.get("calibration"), dict) else {},
                velocity_weight=_real(obj.get("velocity_weight", 0.0), "velocity_weight"),
                groups=_variant_groups(obj.get("importance")),
            )
        except (ValueError, TypeError, OverflowError) as exc:  # (which style is wrong, in a file of several)
            raise ValueError(f"variant {obj['style']!r}: {exc}") from None


def _variant_groups(value: object) -> dict | None:
    return None if value is None else _groups(value, "a variant's")  # (None: the template's)


def _groups(value: object, whose: str = "template") -> dict:
    """A file's ``importance`` as group weights; missing or null gives none.

    Checked here: a list or a number had reached ``dict()``, whose own words ("cannot convert
    dictionary update sequence element #0 to a sequence") named nothing in the file.
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{whose} importance must be an object of group weights such as "
                         f"{{\"arms\": 1.0}}, got {reprlib.repr(value)}")
    return dict(value)


def _is_number(value: object) -> bool:
    """A JSON number: int or float, not true/false (which Python counts as ints)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _real(value: object, what: str) -> float:
    """A JSON number as a float; a string, true/false or null is refused (``float()`` had
    taken ``"0.2"``).  The range is checked where the value is used."""
    if not _is_number(value):
        raise ValueError(f"template {what} must be a number, got {value!r}")
    return float(value)


def _numbers(value: object, what: str) -> np.ndarray:
    """Nested JSON lists of numbers as an array (``np.asarray(..., float32)`` had turned
    strings into numbers); the shape and range are checked by :func:`_checked_frames`."""
    try:
        array = np.asarray(value)
    except ValueError:  # rows of different lengths (numpy's own words name no row)
        raise ValueError(f"template {what} must be rows of equal length{_uneven_row(value)}") from None
    if array.dtype.kind not in "iuf" or _holds_bool(value):  # ([true, 0.5] is a float array to numpy)
        raise ValueError(f"template {what} must be lists of numbers")
    return array


def _uneven_row(value: object) -> str:
    """``": row 4 has 41 numbers, row 1 has 42"`` for the first row unlike the first one."""
    if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
        for i, row in enumerate(value[1:], start=2):
            if len(row) != len(value[0]):
                return f": row {i} has {len(row)} numbers, row 1 has {len(value[0])}"
    return ""


def _holds_bool(value: object) -> bool:
    return isinstance(value, bool) or (isinstance(value, list) and any(_holds_bool(v) for v in value))


def _checked_frames(frames: object, weights: object) -> tuple[np.ndarray, np.ndarray]:
    # Checked in float64: a value beyond float32's range must be refused, not become inf with a warning.
    frames = np.asarray(frames, np.float64)
    if frames.ndim != 2 or frames.shape[1] != DIM or not 1 <= len(frames) <= 600:
        raise ValueError(f"template frames must have shape (K, {DIM}) with 1 <= K <= 600, got {frames.shape}")
    if not np.all(np.isfinite(frames)):
        raise ValueError("template frames must be finite")
    if np.abs(frames).max() > MAX_FEATURE:
        raise ValueError(f"template frames must be within +-{MAX_FEATURE:g}, got {np.abs(frames).max():g}")
    weights = np.ones_like(frames) if weights is None else np.asarray(weights, np.float64)
    if weights.shape != frames.shape or not np.all(np.isfinite(weights)) or weights.min() < 0 or weights.max() > 1:
        raise ValueError(f"template weights must be finite, within 0..1 and shaped like frames {frames.shape}")
    return frames.astype(np.float32), weights.astype(np.float32)


def _check_velocity_weight(weight: object) -> None:
    if not _is_number(weight) or not 0.0 <= float(weight) <= 4.0:
        raise ValueError(f"velocity_weight must be a number between 0 and 4, got {weight!r}")


def _threshold_json(threshold: float) -> float:
    """A threshold as saved: five decimals, and at least three significant digits.

    Five decimals alone had saved a threshold under 5e-6 as 0, which loading refuses.
    """
    return round(float(threshold), max(5, 2 - math.floor(math.log10(threshold))))


def _check_threshold(threshold: object) -> None:
    # (Distances between embeddings are of the order of 0.01-1; above 1e6 a threshold is a
    # mistake, and beyond float32's range it would overflow the matcher.)
    if not (_is_number(threshold) and math.isfinite(threshold) and 0 < threshold <= 1e6):
        raise ValueError(f"template threshold must be a positive number up to 1e6, got {threshold!r}")


def _check_groups(groups: dict) -> None:
    for group, weight in groups.items():
        # (NaN fails the range test: "weight < 0" had let it through.)
        if group not in GROUPS or not _is_number(weight) or not 0 <= weight <= MAX_IMPORTANCE:
            raise ValueError(f"template importance {group!r}: {weight!r} is not a known group with a weight "
                             f"from 0 to {MAX_IMPORTANCE:g}")


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
        if not is_valid_name(self.name):  # (5 had been taken as the name "5")
            raise ValueError(f"template name must be a string of lowercase letters, digits and '_', "
                             f"got {reprlib.repr(self.name)}")
        if self.kind not in KINDS:
            raise ValueError(f"template kind must be one of {KINDS}, got {self.kind!r}")
        frames, weights = _checked_frames(self.frames, self.weights)
        object.__setattr__(self, "frames", frames)
        object.__setattr__(self, "weights", weights)
        preview = np.asarray(self.preview, np.float64)  # (checked before float32 could make 1e300 inf)
        if preview.ndim != 3 or preview.shape[1:] != (33, 3):
            raise ValueError(f"template preview must have shape (K, 33, 3), got {preview.shape}")
        if not np.all(np.isfinite(preview)) or (preview.size and np.abs(preview).max() > MAX_FEATURE):
            # (the live screen draws it: a NaN or 1e30 landmark is no figure)
            raise ValueError(f"template preview must be finite and within +-{MAX_FEATURE:g} m")
        preview = preview.astype(np.float32)
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
            "threshold": _threshold_json(self.threshold),
            **({"velocity_weight": float(self.velocity_weight)} if self.velocity_weight else {}),
            "rate_hz": self.rate_hz,
            "embedding_version": EMBEDDING_VERSION,
            "importance": {k: float(v) for k, v in self.groups.items()},
            "description": self.description,
            "source": self.source,
            "calibration": self.calibration,
            "frames": _rounded(self.frames, 4),
            "weights": _rounded(self.weights, 3),
            "preview": _rounded(self.preview, 3),
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
        if obj.get("rate_hz", RATE_HZ) != RATE_HZ:  # (the matcher ticks at RATE_HZ: it would play at another speed)
            raise TemplateError(f"{origin}: stored at {obj.get('rate_hz')!r} Hz; mirrorcam's templates are at {RATE_HZ:g} Hz")
        display_name = _display_name(obj.get("display_name"), origin)
        try:
            template = Template(
                name=obj["name"],
                display_name=display_name or str(obj["name"]),  # (a blank one: the name)
                kind=str(obj["kind"]),
                side_specific=_bool(obj["side_specific"]),
                frames=_numbers(obj["frames"], "frames"),
                threshold=_real(obj["threshold"], "threshold"),
                preview=_numbers(obj["preview"], "preview") if obj.get("preview") else np.zeros((0, 33, 3), np.float32),
                weights=_numbers(obj["weights"], "weights") if obj.get("weights") is not None else None,
                groups=_groups(obj.get("importance")),
                rate_hz=float(obj.get("rate_hz", RATE_HZ)),
                description=str(obj.get("description", "")),
                source=str(obj.get("source", "")),
                calibration=obj.get("calibration") if isinstance(obj.get("calibration"), dict) else {},
                variants=tuple(Variant.from_json(v) for v in _list(obj.get("variants", []), "variants")),
                velocity_weight=_real(obj.get("velocity_weight", 0.0), "velocity_weight"),
            )
        except (ValueError, TypeError, OverflowError) as exc:
            raise TemplateError(f"{origin}: {exc}") from None
        # Each style by its own label: `teach --add` refuses a taken one, and two of a name
        # (a file edited by hand) could not be told apart.
        styles = [v.style for v in template.variants]
        twice = next((style for style in styles if styles.count(style) > 1), None)
        if twice is not None:
            raise TemplateError(f"{origin}: style {twice!r} is given twice; each style of a template needs its own label")
        return template


def _display_name(value: object, origin: str) -> str:
    """A file's ``display_name``, stripped ("" when missing, null or blank: the name is shown).

    Raises:
        TemplateError: Not a string, or one :func:`display_name_problem` refuses (a file
            edited by hand: the rule ``teach --display-name`` keeps).
    """
    if value is None:
        return ""
    if not isinstance(value, str):  # (7 had been shown as "7")
        raise TemplateError(f"{origin}: display_name must be a string, got {reprlib.repr(value)}")
    problem = display_name_problem(value.strip())
    if problem:
        raise TemplateError(f"{origin}: display_name {problem}")
    return value.strip()


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
        # Only a regular file (a symlink to one counts): a FIFO named x.json had hung the
        # load, and a link to /dev/zero had eaten all memory.
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise TemplateError(f"{path}: not a regular file (a folder, a device or a pipe), not read")
        if info.st_size > MAX_FILE_BYTES:
            raise TemplateError(f"{path}: {info.st_size} bytes, more than a template can be ({MAX_FILE_BYTES} bytes)")
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)  # (in case it grew since)
        if len(data) > MAX_FILE_BYTES:
            raise TemplateError(f"{path}: more than a template can be ({MAX_FILE_BYTES} bytes)")
        text = data.decode("utf-8")
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
    return template


def _rounded(values: np.ndarray, decimals: int) -> list:
    """Nested lists of ``values`` rounded in float64: rounded in float32 they had been
    written as ``0.17759999632835388``."""
    return np.round(np.asarray(values, np.float64), decimals).tolist()


def template_text(obj: dict) -> str:
    """A template's JSON as a person reads it: indented, each innermost list of numbers (a
    frame of features, a landmark) on one line, not one number per line.

    Strict JSON: a NaN or Infinity (say in the calibration facts) is refused (ValueError),
    as other programs reading the file would choke on it.
    """
    text = json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False)
    return _NUMBER_LIST.sub(lambda m: "[" + re.sub(r"\s+", " ", m.group(1).strip()) + "]", text) + "\n"


_NUMBER_LIST = re.compile(r"\[((?:\s*-?\d[\d.eE+-]*,)*\s*-?\d[\d.eE+-]*\s*)\]")


def save_template(path: str | Path, template: Template, force: bool = False) -> Path:
    """Write ``template`` atomically; refuses to overwrite unless ``force``.

    Raises:
        TemplateError: The file exists and ``force`` is False, or the template holds a
            number JSON cannot (NaN, Infinity).
    """
    path = Path(path)
    if path.exists() and not force:
        raise TemplateError(f"{path} already exists; use --force to replace it")
    try:
        text = template_text(template.to_json())
    except ValueError as exc:
        raise TemplateError(f"{path}: not written: {exc}") from None
    atomic_write_bytes(path, text.encode("utf-8"))
    return path


@dataclass(frozen=True)
class TemplateLibrary:
    """Templates loaded from folders, with the files that could not be read.

    Attributes:
        templates: Loaded templates, later folders replacing same-named earlier ones.
        errors: ``(path, reason)`` for every file that failed to load, and every folder
            that could not be read.
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
        load.  So is a folder that cannot be read (no permission).  A template that takes
        the place of a same-named one loaded before it (a built-in, or another file), or
        whose file is named otherwise, is loaded with a warning naming both files (but for
        a built-in's own file name: the user's style of it, as ``teach --add`` saves it).
        A missing extra folder is an error (the user named it).

        Raises:
            TemplateError: An extra folder does not exist.
        """
        folders = [Path(d) for d in (dirs if dirs is not None else [BUILTIN_DIR])]
        if include_user:
            folders.append(user_template_dir())  # (skipped below while it does not exist)
        for d in extra_dirs:
            d = Path(d)
            if not d.is_dir():
                raise TemplateError(f"template folder {d} {'is a file, not a folder' if d.exists() else 'does not exist'}")
            folders.append(d)
        by_name: dict[str, Template] = {}
        origin: dict[str, Path] = {}
        errors = []
        seen = set()
        for folder in folders:
            try:
                if not folder.is_dir() or folder.resolve() in seen:  # (the user folder given again as an extra)
                    continue
                seen.add(folder.resolve())
                # Listed here, not by glob: glob takes a folder it cannot list for an empty
                # one, and a folder of mode 000 had loaded nothing without a word.
                # (Hidden files left out, as glob("*.json") did.)
                names = sorted(name for name in os.listdir(folder) if name.endswith(".json") and not name.startswith("."))
            except OSError as exc:
                reason = f"template folder {folder} cannot be read ({exc.strerror or exc}); none of its templates are loaded"
                log.warning("%s", reason)
                errors.append((str(folder), reason))
                continue
            for path in (folder / name for name in names):
                try:
                    template = load_template(path)
                except TemplateError as exc:
                    log.warning("skipping template %s", exc)
                    errors.append((str(path), str(exc)))
                    continue
                # A template is known by the name inside it, not its file's: say so when they
                # differ, and when it takes the place of one loaded before (a user file
                # named not_squat.json had silently replaced the built-in squat).
                if template.name != path.stem:
                    log.warning("template file %s holds the template %r (its name inside counts, not the file's)",
                                path, template.name)
                if template.name in by_name:
                    # (A built-in replaced by a file of its own name is what `teach --add` and
                    # `--force` save, on purpose: said with -v only, not on every run.)
                    own = template.name == path.stem and origin[template.name].parent.resolve() == Path(BUILTIN_DIR).resolve()
                    (log.debug if own else log.warning)(
                        "template %r of %s replaces the one of %s (a template of the same name takes the place "
                        "of one loaded before it)", template.name, path, origin[template.name])
                by_name[template.name] = template
                origin[template.name] = path
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
def _segment_frames(recording: Recording, start_s: float | None, end_s: float | None):
    """The frames of ``recording`` from ``start_s`` to ``end_s`` (seconds; None: its start or end)."""
    for frame in recording.frames:
        t = frame.timestamp_ms
        if (start_s is None or t >= start_s * 1000.0) and (end_s is None or t <= end_s * 1000.0):
            yield frame


def people_seen(recording: Recording, start_s: float | None = None, end_s: float | None = None) -> dict[int, list[float]]:
    """Each person's box area in every frame they are in, from ``start_s`` to ``end_s``
    (seconds of the recording's timeline; None: its start or end)."""
    areas: dict[int, list[float]] = {}
    for frame in _segment_frames(recording, start_s, end_s):
        for p in frame.persons:
            x0, y0, x1, y1 = p.bbox
            areas.setdefault(p.id, []).append((x1 - x0) * (y1 - y0))
    return areas


def main_person_id(recording: Recording, start_s: float | None = None, end_s: float | None = None) -> int | None:
    """The id of the person present in most frames (ties: the larger body).

    Args:
        recording: Landmark recording.
        start_s: Count only frames from here (seconds of the recording's timeline)...
        end_s: ...to here: a segment's person, not the whole clip's (a clip of one
            person and then another had taught the first one's last moments).
    """
    areas = people_seen(recording, start_s, end_s)
    if not areas:
        return None
    return max(areas, key=lambda pid: (len(areas[pid]), float(np.mean(areas[pid]))))


def preview_of(recording: Recording, person: int | None = None, start_s: float | None = None,
               end_s: float | None = None) -> np.ndarray:
    """``(K', 33, 3)`` world landmarks of one person through a recording (or a segment of it),
    about 10 a second and at most 60: a taught template's little animated figure.

    Args:
        recording: Landmark recording.
        person: Person id (default: :func:`main_person_id` of the segment).
        start_s: Segment start in seconds.
        end_s: Segment end in seconds.
    """
    pid = main_person_id(recording, start_s, end_s) if person is None else person
    worlds = []
    for frame in _segment_frames(recording, start_s, end_s):
        p = frame.person(pid) if pid is not None else None
        if p is not None:
            worlds.append(p.world)
    if not worlds:
        return np.zeros((0, 33, 3), np.float32)
    step = max(1, int(round(recording.fps / 10.0)))
    return np.asarray(worlds[::step][:60], np.float32)


def embed_recording(
    recording: Recording, person: int | None = None, start_s: float | None = None, end_s: float | None = None,
    speed: float = 1.0,
) -> list[tuple[float, Embedding]]:
    """``(t_ms, Embedding)`` of one person through a recording (or a segment of it).

    Args:
        recording: Landmark recording.
        person: Person id (default: :func:`main_person_id` of the segment).
        start_s: Segment start in seconds (of the original timeline).
        end_s: Segment end in seconds.
        speed: Replay speed: timestamps are divided by it (2.0 = twice as fast).
    """
    pid = main_person_id(recording, start_s, end_s) if person is None else person
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


def template_frames_from_stream(
    stream: Sequence[tuple[float, Embedding]], start_ms: float, end_ms: float, rate_hz: float = RATE_HZ
) -> tuple[np.ndarray, np.ndarray]:
    """Tick-resampled ``(frames, weights)`` of a stream between two times."""
    from mirrorcam.matching import tick_stream

    times, x, w = tick_stream(stream, rate_hz)
    keep = (times >= start_ms - 1e-6) & (times <= end_ms + 1e-6)
    return x[keep], w[keep]
