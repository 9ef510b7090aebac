"""The kiosk's configuration: one TOML file, checked before the exhibit opens.

A museum edits one file (see ``examples/kiosk.toml``): camera, playlist of actions and
clips, texts (any language, UTF-8), timings, thresholds, colours, where the log and the
counters go, and the privacy switches.  :func:`check_config` reports *every* problem
with its line and key; :func:`load_config` raises one :class:`ConfigError` summarising
them.

``tomllib`` gives no line numbers for keys, so :func:`key_lines` finds them by scanning
the file's text (tables, arrays of tables, dotted keys, multi-line strings and arrays).

Example:
    >>> problems = check_config("kiosk.toml")          # doctest: +SKIP
    >>> for p in problems:                              # doctest: +SKIP
    ...     print(p.format("kiosk.toml"))
    kiosk.toml:14: timing.greet_s: must be a number > 0, got "four"
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import string
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mirrorcam.errors import ConfigError, MirrorcamError
from mirrorcam.fileio import file_kind, folder_problem, read_data_file, require_readable

# --------------------------------------------------------------------------- sections


def _opt(default: Any, kind: str, doc: str, **limits: Any) -> Any:
    """A config field: its default, its kind (for checking) and a one-line doc."""
    return field(default=default, metadata={"kind": kind, "doc": doc, **limits})


@dataclass(frozen=True)
class CameraConfig:
    """``[camera]``: where the visitors' picture comes from."""

    source: str = _opt("0", "source", "camera index (\"0\"), stream URL (any `scheme://`), a video file or a landmark recording (.npz) played as a simulated camera")
    max_backoff_s: float = _opt(5.0, "float", "longest wait between two reconnection attempts", gt=0, le=600)
    lost_after_s: float = _opt(2.0, "float", "seconds without a frame before the calm 'camera unavailable' screen", gt=0, le=600)


@dataclass(frozen=True)
class PoseConfig:
    """``[pose]``: the pose stage."""

    model_variant: str = _opt("full", "choice", "pose model: lite, full or heavy", choices=("lite", "full", "heavy"))
    num_poses: int = _opt(3, "int", "most people tracked per frame (the kiosk picks one visitor among them)", ge=1, le=10)


@dataclass(frozen=True)
class TimingConfig:
    """``[timing]``: how long each phase lasts (seconds)."""

    engage_after_s: float = _opt(1.0, "float", "a visitor must stand in view this long before the kiosk greets them", gt=0, le=60)
    greet_s: float = _opt(4.0, "float", "the greeting and one-line explanation stay this long", gt=0, le=120)
    imitate_timeout_s: float = _opt(25.0, "float", "move on to the next action after this long without success", gt=0, le=600)
    mirror_s: float = _opt(6.0, "float", "the celebration of a mirror event lasts this long", gt=0, le=120)
    visitor_hold_s: float = _opt(1.5, "float", "a lost visitor keeps their place this long; someone else in view then takes over after engage_after_s more", gt=0, le=60)
    idle_timeout_s: float = _opt(4.0, "float", "with nobody in view this long the kiosk returns to attract", gt=0, le=3600)


@dataclass(frozen=True)
class MatchingConfig:
    """``[matching]``: when the visitor's neuron counts as having fired."""

    min_score: float = _opt(0.0, "float", "a firing of the target neuron needs at least this peak activation (0..1)", ge=0, le=1)
    templates: tuple[str, ...] = _opt((), "path_list", "extra template folders beside the built-in library")


@dataclass(frozen=True)
class VisitorConfig:
    """``[visitor]``: who counts as the visitor."""

    min_height: float = _opt(0.15, "float", "ignore people whose body spans less than this fraction of the picture's height (far behind)", ge=0, le=1)
    min_visible_landmarks: int = _opt(6, "int", "ignore detections with fewer visible landmarks (partial glimpses)", ge=1, le=33)
    centre_weight: float = _opt(1.0, "float", "how much being central counts against being large (0: largest wins)", ge=0, le=10)


@dataclass(frozen=True)
class DisplayConfig:
    """``[display]``: the window."""

    fullscreen: bool = _opt(True, "bool", "fullscreen, frameless window")
    width: int = _opt(1280, "int", "drawing width in pixels (the window scales it to the screen; fullscreen, the screen's aspect decides it)", ge=320, le=7680)
    height: int = _opt(720, "int", "drawing height in pixels", ge=240, le=4320)
    mirror: bool = _opt(True, "bool", "show the visitor mirrored, like a mirror")
    show_camera_image: bool = _opt(True, "bool", "draw the camera picture under the skeleton (false: skeleton only)")
    font: str = _opt("", "file", "TTF/OTF font for the texts (empty: built-in fonts with fallbacks); pick one covering your script")


@dataclass(frozen=True)
class ColorsConfig:
    """``[colors]``: ``"#rrggbb"`` strings, stored as BGR tuples."""

    background: tuple[int, int, int] = _opt((24, 20, 16), "color", "screen background")
    text: tuple[int, int, int] = _opt((240, 240, 240), "color", "main text")
    visitor: tuple[int, int, int] = _opt((80, 200, 255), "color", "the visitor's channel (YOU)")
    performer: tuple[int, int, int] = _opt((255, 170, 60), "color", "the performer's channel (OTHER)")
    accent: tuple[int, int, int] = _opt((90, 230, 120), "color", "mirror events and highlights")
    calm: tuple[int, int, int] = _opt((150, 140, 130), "color", "the 'camera unavailable' screen")


DEFAULT_TEXTS: dict[str, str] = {
    "title": "Mirror neurons",
    "invitation": "Step in front of the screen and copy the moves!",
    "greeting": "Hello! Let's find your mirror neurons.",
    "explanation": "Some brain cells fire both when you watch an action and when you do it.",
    "imitate": "Do what you see: {action}",
    "come_back": "Where did you go? Step back in view.",
    "mirror": "The same {action} neuron fired for seeing and for doing!",
    "next": "Next move coming up...",
    "camera_unavailable": "Camera unavailable. The exhibit will be back in a moment.",
    "privacy": "Nothing is recorded: no pictures, no video, no body data.",
    "privacy_recording": "Your body movements (never pictures) are saved for research.",
    "you": "YOU",
    "other": "OTHER",
    "seeing": "seeing",
    "doing": "doing",
}
"""Built-in English texts; ``[texts]`` overrides any of them."""

TEXT_PLACEHOLDERS: dict[str, frozenset[str]] = {
    "imitate": frozenset({"action"}),
    "mirror": frozenset({"action"}),
}
"""``{placeholders}`` a text may use; any other ``{name}`` is reported."""


@dataclass(frozen=True)
class OperatorConfig:
    """``[operator]``: the exit chord (Esc, then the sequence, within the window)."""

    exit_sequence: str = _opt("quit", "exit_sequence", "letters typed after Esc to quit (a-z, 0-9; at least 3)")
    exit_window_s: float = _opt(3.0, "float", "the whole chord must be typed within this many seconds", gt=0, le=30)


@dataclass(frozen=True)
class StorageConfig:
    """``[storage]``: the only files kiosk mode writes by default."""

    dir: str = _opt("~/.local/state/mirrorcam", "dir", "folder for the log and the counters file", nonempty=True)
    log_max_bytes: int = _opt(1_000_000, "int", "rotate the log at this size", ge=10_000, le=1_000_000_000)
    log_backups: int = _opt(3, "int", "rotated logs kept", ge=0, le=100)
    counters_flush_s: float = _opt(60.0, "float", "write the counters file at most this often (and at exit)", gt=0, le=86400)


@dataclass(frozen=True)
class PrivacyConfig:
    """``[privacy]``: nothing about visitors is stored unless switched on here."""

    record_landmarks: bool = _opt(False, "bool", "save each visitor's body landmarks (never pictures) to record_dir, for consented research")
    record_dir: str = _opt("", "dir", "where record_landmarks writes (required when it is true)")
    cache_clip_landmarks: bool = _opt(True, "bool", "keep the performer clips' landmarks in the landmark cache (performers, never visitors)")


@dataclass(frozen=True)
class PlaylistItem:
    """One ``[[playlist]]`` entry: an action the visitor is asked to imitate.

    Attributes:
        action: Template name (the neuron that must fire), e.g. ``"wave_one_hand"``.
        clip: A video of a performer doing it, or a landmark recording (``.npz``).
        label: What the screen calls the action (translatable); default: the template's name.
    """

    action: str
    clip: str
    label: str = ""


@dataclass(frozen=True)
class KioskConfig:
    """The whole configuration (defaults everywhere except the playlist)."""

    camera: CameraConfig = field(default_factory=CameraConfig)
    pose: PoseConfig = field(default_factory=PoseConfig)
    timing: TimingConfig = field(default_factory=TimingConfig)
    matching: MatchingConfig = field(default_factory=MatchingConfig)
    visitor: VisitorConfig = field(default_factory=VisitorConfig)
    display: DisplayConfig = field(default_factory=DisplayConfig)
    colors: ColorsConfig = field(default_factory=ColorsConfig)
    texts: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_TEXTS))
    operator: OperatorConfig = field(default_factory=OperatorConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    playlist: tuple[PlaylistItem, ...] = ()
    path: Path | None = None

    def text(self, key: str, **values: str) -> str:
        """The configured text ``key`` with its ``{placeholders}`` filled."""
        template = self.texts.get(key, DEFAULT_TEXTS.get(key, key))
        return template.format(**values) if values else template

    @property
    def storage_dir(self) -> Path:
        return Path(self.storage.dir).expanduser()

    @property
    def log_path(self) -> Path:
        return self.storage_dir / "kiosk.log"

    @property
    def counters_path(self) -> Path:
        return self.storage_dir / "counters.json"


SECTIONS: dict[str, type] = {
    "camera": CameraConfig,
    "pose": PoseConfig,
    "timing": TimingConfig,
    "matching": MatchingConfig,
    "visitor": VisitorConfig,
    "display": DisplayConfig,
    "colors": ColorsConfig,
    "operator": OperatorConfig,
    "storage": StorageConfig,
    "privacy": PrivacyConfig,
}
PLAYLIST_KEYS = ("action", "clip", "label")

# --------------------------------------------------------------------------- problems


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a config file.

    Attributes:
        line: 1-based line number (0 when the problem has no place, e.g. a missing key).
        key: Dotted key, e.g. ``"timing.greet_s"`` or ``"playlist[2].clip"`` ("" for syntax errors).
        message: What is wrong, one sentence.
    """

    line: int
    key: str
    message: str

    def format(self, filename: str | Path) -> str:
        where = f"{filename}:{self.line}" if self.line else str(filename)
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


# --------------------------------------------------------------------------- line finder

_TABLE_ARRAY = re.compile(r"^\s*\[\[\s*([^\]]+?)\s*\]\]")
_TABLE = re.compile(r"^\s*\[\s*([^\]]+?)\s*\]")
_KEY = re.compile(r"""^\s*((?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*'))*)\s*=""")
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'')
_KEY_PART = re.compile(r'"((?:[^"\\]|\\.)*)"|\'([^\']*)\'|([A-Za-z0-9_-]+)')


def _split_key(text: str) -> list[str]:
    return [m.group(1) if m.group(1) is not None else m.group(2) if m.group(2) is not None else m.group(3)
            for m in _KEY_PART.finditer(text)]


def _path(parts: list[str | int]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def key_lines(text: str) -> dict[str, int]:
    """Map every dotted key path of a TOML text to the line it is first defined on.

    Paths look like ``"camera"``, ``"camera.source"``, ``"playlist[1]"``,
    ``"playlist[1].clip"``.  Keys inside multi-line strings or arrays are not keys
    and are skipped; keys of inline tables map to their parent's line (via
    :func:`line_of`'s fallback).

    Example:
        >>> key_lines('[camera]\\nsource = "0"\\n[[playlist]]\\naction = "clap"\\n')["playlist[0].action"]
        4
    """
    lines: dict[str, int] = {}
    for number, path in _definitions(text):
        lines.setdefault(path, number)
    return lines


def _definitions(text: str) -> list[tuple[int, str]]:
    """Every (line, key path) a TOML text defines, in order (duplicates included)."""
    defs: list[tuple[int, str]] = []
    table: list[str | int] = []
    array_counts: dict[str, int] = {}
    in_multiline: str | None = None  # the closing delimiter of an open multi-line string
    depth = 0  # open brackets of a multi-line array or inline table
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw
        if in_multiline:
            if in_multiline in line:
                line = line.split(in_multiline, 1)[1]
                in_multiline = None
            else:
                continue
        if depth > 0:
            depth += _bracket_balance(line)
            continue
        if (m := _TABLE_ARRAY.match(line)) is not None:
            base = _path(_split_key(m.group(1)))
            index = array_counts.get(base, 0)
            array_counts[base] = index + 1
            table = [*_split_key(m.group(1)), index]
            # Arrays of tables nested in other arrays restart their counters.
            for key in [k for k in array_counts if k.startswith(base + "[")]:
                del array_counts[key]
            defs.append((number, _path(table)))
            continue
        if (m := _TABLE.match(line)) is not None:
            table = list(_split_key(m.group(1)))
            defs.append((number, _path(table)))
            continue
        if (m := _KEY.match(line)) is not None:
            parts = [*table, *_split_key(m.group(1))]
            for i in range(len(table) + 1, len(parts) + 1):
                defs.append((number, _path(parts[:i])))
            rest = line[m.end():]
            for delim in ('"""', "'''"):
                stripped = rest.strip()
                if stripped.startswith(delim) and stripped.count(delim) == 1:
                    in_multiline = delim
                    break
            else:
                depth = max(_bracket_balance(rest), 0)
    return defs


def _bracket_balance(text: str) -> int:
    code = _STRINGS.sub("", text).split("#", 1)[0]
    return code.count("[") + code.count("{") - code.count("]") - code.count("}")


def line_of(lines: Mapping[str, int], key: str) -> int:
    """The line of ``key``, or of its nearest parent that has one (0 if none)."""
    while key:
        if key in lines:
            return lines[key]
        cut = max(key.rfind("."), key.rfind("["))
        key = key[:cut] if cut > 0 else ""
    return 0


# --------------------------------------------------------------------------- checking

_COLOR = re.compile(r"^#([0-9a-fA-F]{6})$")
_EXIT_SEQUENCE = re.compile(r"^[a-z0-9]{3,16}$")


def _describe(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else f'"{value}"'
    return text if len(text) <= 40 else text[:37] + "..."


class _Checker:
    """Walks the parsed TOML, converts values, and collects problems."""

    def __init__(self, lines: Mapping[str, int], base_dir: Path, check_files: bool):
        self.lines = lines
        self.base_dir = base_dir
        self.check_files = check_files
        self.problems: list[Problem] = []
        self.action_refs: list[tuple[str, str]] = []  # (key, template name) to check against the library

    def problem(self, key: str, message: str) -> None:
        self.problems.append(Problem(line_of(self.lines, key), key, message))

    def resolve(self, value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    def value(self, key: str, value: Any, meta: Mapping[str, Any]) -> tuple[bool, Any]:
        """Check and convert one field; returns (ok, converted)."""
        kind = meta["kind"]
        if kind == "bool":
            if not isinstance(value, bool):
                self.problem(key, f"must be true or false, got {_describe(value)}")
                return False, None
            return True, value
        if kind in ("int", "float"):
            numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
            if kind == "int" and not (isinstance(value, int) and not isinstance(value, bool)):
                self.problem(key, f"must be a whole number, got {_describe(value)}")
                return False, None
            if not numeric:
                self.problem(key, f"must be a number, got {_describe(value)}")
                return False, None
            for bound, test, words in (("gt", lambda v, b: v > b, ">"), ("ge", lambda v, b: v >= b, ">="),
                                       ("lt", lambda v, b: v < b, "<"), ("le", lambda v, b: v <= b, "<=")):
                if bound in meta and not test(value, meta[bound]):
                    self.problem(key, f"must be {words} {meta[bound]}, got {_describe(value)}")
                    return False, None
            return True, float(value) if kind == "float" else int(value)
        if kind == "color":
            if not isinstance(value, str) or not _COLOR.match(value):
                self.problem(key, f'must be a colour like "#ff8800", got {_describe(value)}')
                return False, None
            r, g, b = (int(value[i:i + 2], 16) for i in (1, 3, 5))
            return True, (b, g, r)
        if not isinstance(value, str) and kind != "path_list":
            # TOML's bare 0 is a number; the camera index must be quoted.
            hint = f' (write it as "{value}")' if kind == "source" and isinstance(value, int) and not isinstance(value, bool) else ""
            self.problem(key, f"must be a string, got {_describe(value)}{hint}")
            return False, None
        if kind == "choice":
            if value not in meta["choices"]:
                self.problem(key, f"must be one of {', '.join(meta['choices'])}, got {_describe(value)}")
                return False, None
            return True, value
        if kind == "exit_sequence":
            if not _EXIT_SEQUENCE.match(value):
                self.problem(key, f"must be 3 to 16 lower-case letters or digits, got {_describe(value)}")
                return False, None
            return True, value
        if kind in ("file", "dir", "source") and "\x00" in value:
            self.problem(key, "contains a NUL character")
            return False, None
        if kind == "file":
            # Checked on every start, not only with --check-config: a font folder given as
            # the font would otherwise crash the exhibit's screen again and again.
            if value and not self.resolve(value).is_file():
                self.problem(key, f"no such file: {self.resolve(value)}")
                return False, None
            problem = value and _font_problem(self.resolve(value))
            if problem:  # (read as the screen reads it: a text file had passed, and the texts came out as "?")
                self.problem(key, f"{self.resolve(value)} {problem}")
                return False, None
            return True, str(self.resolve(value)) if value else ""
        if kind == "dir":
            if not value.strip():
                if meta.get("nonempty"):
                    # Path("") is the working folder: the log would land wherever the kiosk was started.
                    self.problem(key, "must not be empty (name a folder, e.g. \"~/.local/state/mirrorcam\")")
                    return False, None
                return True, ""
            # Checked on every start (it costs a few stat calls): the run creates the folder,
            # so a folder it cannot create must not pass --check-config.
            problem = folder_problem(self.resolve(value))
            if problem:
                self.problem(key, problem)
                return False, None
            return True, str(self.resolve(value))
        if kind == "source":
            if not value.strip():
                self.problem(key, "must not be empty (a camera index like \"0\", a URL or a file)")
                return False, None
            from mirrorcam.kiosk.camera import camera_file_problem
            from mirrorcam.sources import parse_source_spec

            looks_like_file = isinstance(parse_source_spec(value), Path)
            if looks_like_file:
                path = self.resolve(value)
                # On every start too (a stat): OpenCV's open of a FIFO never returned, and
                # the kiosk then ignored Ctrl+C and SIGTERM.
                problem = camera_file_problem(path)
                if problem:
                    self.problem(key, f"{path} {problem}; a camera file is a video, a recording (.npz) "
                                      "or a device such as /dev/video0")
                    return False, None
                if self.check_files and not path.is_char_device():
                    # Test-read as a playlist clip is: a landmark recording loaded whole (a
                    # broken one passed here and then stopped every start: a restart loop
                    # under systemd), a video opened and one frame decoded (a text file named
                    # text.mp4 passed here, and the run waited for it forever: "camera
                    # unavailable").  A camera index, a device (/dev/video0) or a URL is not
                    # probed: a kiosk that boots before its camera or stream is ready waits for it.
                    problem = f"no such camera or file: {value}" if not path.is_file() else clip_problem(path)
                    if problem:
                        self.problem(key, problem)
                        return False, None
                return True, str(path)
            return True, value
        if kind == "path_list":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                self.problem(key, f"must be a list of folder names, got {_describe(value)}")
                return False, None
            out = []
            for i, item in enumerate(value):
                if self.check_files and not self.resolve(item).is_dir():
                    self.problem(f"{key}[{i}]" if f"{key}[{i}]" in self.lines else key, f"no such folder: {self.resolve(item)}")
                    return False, None
                out.append(str(self.resolve(item)))
            return True, tuple(out)
        return True, value

    def section(self, name: str, cls: type, raw: Any) -> Any:
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            self.problem(name, f"must be a table ([{name}]), got {_describe(raw)}")
            return cls()
        kwargs = {}
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for key, value in raw.items():
            if key not in fields:
                self.problem(f"{name}.{key}", f"unknown key in [{name}]{_suggest(key, fields)}")
                continue
            ok, converted = self.value(f"{name}.{key}", value, fields[key].metadata)
            if ok:
                kwargs[key] = converted
        return cls(**kwargs)

    def texts(self, raw: Any) -> dict[str, str]:
        texts = dict(DEFAULT_TEXTS)
        if raw is None:
            return texts
        if not isinstance(raw, dict):
            self.problem("texts", f"must be a table ([texts]), got {_describe(raw)}")
            return texts
        for key, value in raw.items():
            full = f"texts.{key}"
            if key not in DEFAULT_TEXTS:
                self.problem(full, f"unknown text{_suggest(key, DEFAULT_TEXTS)}")
                continue
            if not isinstance(value, str):
                self.problem(full, f"must be a string, got {_describe(value)}")
                continue
            if not value.strip():
                self.problem(full, "must not be empty")
                continue
            bad = self.placeholders(full, value, TEXT_PLACEHOLDERS.get(key, frozenset()))
            if not bad:
                texts[key] = value
        return texts

    def placeholders(self, key: str, value: str, allowed: frozenset[str]) -> bool:
        try:
            fields = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(value) if name is not None]
        except ValueError as exc:
            self.problem(key, f"has a stray brace ({exc}); write {{{{ and }}}} for literal braces")
            return True
        names = {name for name, _, _ in fields}
        # A format spec or conversion ("{action:>999999999}", "{action!r}") is code, not
        # text: it can fail or exhaust memory only when the exhibit shows it.
        for name, spec, conv in fields:
            if spec or conv:
                self.problem(key, f"placeholder {{{name}{'!' + conv if conv else ''}{':' + spec if spec else ''}}} "
                                  f"has a format; write just {{{name}}}")
                return True
        unknown = sorted(n for n in names if n not in allowed)
        if unknown:
            hint = f"allowed: {{{'}, {'.join(sorted(allowed))}}}" if allowed else "this text takes no placeholders"
            self.problem(key, f"unknown placeholder {{{unknown[0]}}} ({hint})")
            return True
        return False

    def playlist(self, raw: Any) -> tuple[PlaylistItem, ...]:
        if raw is None:
            self.problem("playlist", "is missing: add at least one [[playlist]] entry with action and clip")
            return ()
        if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
            self.problem("playlist", "must be an array of tables ([[playlist]] entries)")
            return ()
        if not raw:
            self.problem("playlist", "is empty: add at least one [[playlist]] entry with action and clip")
        items = []
        for i, item in enumerate(raw):
            prefix = f"playlist[{i}]"
            ok = True
            for key in item:
                if key not in PLAYLIST_KEYS:
                    self.problem(f"{prefix}.{key}", f"unknown key in [[playlist]]{_suggest(key, PLAYLIST_KEYS)}")
            for key in ("action", "clip"):
                if key not in item:
                    self.problem(prefix, f"lacks '{key}'")
                    ok = False
                elif not isinstance(item[key], str) or not item[key].strip():
                    self.problem(f"{prefix}.{key}", f"must be a non-empty string, got {_describe(item[key])}")
                    ok = False
            if isinstance(item.get("action"), str) and item["action"].strip():
                self.action_refs.append((f"{prefix}.action", item["action"]))
            label = item.get("label", "")
            if not isinstance(label, str):
                self.problem(f"{prefix}.label", f"must be a string, got {_describe(label)}")
                label = ""
            if not ok:
                continue
            action, clip = item["action"], item["clip"]
            clip_path = self.resolve(clip)
            if self.check_files:
                problem = clip_problem(clip_path)
                if problem:
                    self.problem(f"{prefix}.clip", problem)
            items.append(PlaylistItem(action=action, clip=str(clip_path), label=label))
        return tuple(items)


def _suggest(word: str, choices: Any) -> str:
    choices = list(choices)
    close = difflib.get_close_matches(word, choices, n=1)
    if not close:
        # A short form of a longer name ("wave" for "wave_one_hand") is below difflib's
        # cutoff: offer the names it is a whole part of, closest first.
        parts = [c for c in choices if word.lower() in re.split(r"[_\-\s]+", c.lower())]
        close = sorted(parts, key=lambda c: (-difflib.SequenceMatcher(None, word, c).ratio(), c))[:2]
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def _font_problem(path: Path) -> str | None:
    from mirrorcam.text import font_problem  # (imports OpenCV: not for every config read)

    return font_problem(path)


def recording_problem(path: Path) -> str | None:
    """Why the landmark recording at ``path`` cannot be played, or None (loads it whole)."""
    from mirrorcam.errors import RecordingError
    from mirrorcam.recording import load_recording

    try:
        recording = load_recording(path)
    except RecordingError as exc:
        return str(exc)
    return None if recording.frames else f"{path} holds no frames"


def clip_problem(path: Path) -> str | None:
    """Why a playlist clip (or a camera that is a file) cannot be played, or None if it can
    (a recording is loaded whole; a video is opened and one frame read)."""
    if path.is_dir():
        return f"{path} is a folder, not a video or a landmark recording"
    if not path.exists():
        return f"no such clip: {path}"
    if not path.is_file():  # (a FIFO had been called missing; opening one blocks, so it is refused unopened)
        return f"{path} is not a regular file ({file_kind(path.stat().st_mode)})"
    try:
        require_readable(path)  # (OpenCV had called it "not a readable video", as if damaged)
    except MirrorcamError as exc:
        return str(exc)
    if path.suffix.lower() == ".npz":
        return recording_problem(path)
    import cv2

    from mirrorcam.errors import SourceError
    from mirrorcam.sources import opencv_path

    try:
        cap = cv2.VideoCapture(opencv_path(path))
    except SourceError as exc:
        return str(exc)
    try:
        ok, image = cap.read() if cap.isOpened() else (False, None)
    finally:
        cap.release()
    return None if ok and image is not None else f"{path} is not a readable video"


def _syntax_problem(exc: tomllib.TOMLDecodeError, definitions: list[tuple[int, str]]) -> Problem:
    message = str(exc)
    m = re.search(r"\(at line (\d+), column (\d+)\)", message)
    line = int(m.group(1)) if m else 0
    message = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", message)
    key = ""
    if line:
        # Name the key the broken line defines, when it defines one.
        candidates = [k for n, k in definitions if n == line]
        key = max(candidates, key=len) if candidates else ""
        column = f", column {m.group(2)}" if m else ""
        message = f"TOML syntax error{column}: {message[0].lower() + message[1:] if message else ''}"
    else:
        message = f"TOML syntax error: {message}"
    return Problem(line, key, message)


def _read_text(path: Path) -> tuple[str | None, list[Problem]]:
    try:
        data = read_data_file(path, "config file")  # (a FIFO or /dev/zero as the config is refused, not read)
    except FileNotFoundError:
        return None, [Problem(0, "", f"no such config file: {path}")]
    except OSError as exc:
        return None, [Problem(0, "", f"cannot read the config file: {exc.strerror}")]
    except MirrorcamError as exc:
        return None, [Problem(0, "", str(exc))]
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]  # a byte-order mark (Windows editors add one): harmless, drop it
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return None, [Problem(line, "", f"not UTF-8 text (byte 0x{data[exc.start]:02x}); save the file as UTF-8")]


def parse_config(
    text: str,
    base_dir: Path,
    check_files: bool = True,
    known_actions: Callable[[tuple[str, ...]], frozenset[str] | None] | None = None,
) -> tuple[KioskConfig | None, list[Problem]]:
    """Parse and check a config text; returns the config (None if unusable) and every problem.

    Args:
        text: TOML text.
        base_dir: Folder that relative paths in the file are relative to.
        check_files: Check that clips, fonts and folders exist (and that clips open).
        known_actions: Given the extra template folders, the template names the playlist
            may use (or None when unknown); None skips that check.
    """
    lines = key_lines(text)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return None, [_syntax_problem(exc, _definitions(text))]
    checker = _Checker(lines, base_dir, check_files)
    known = set(SECTIONS) | {"texts", "playlist"}
    for key in raw:
        if key not in known:
            checker.problem(key, f"unknown section or key{_suggest(key, known)}")
    sections = {name: checker.section(name, cls, raw.get(name)) for name, cls in SECTIONS.items()}
    texts = checker.texts(raw.get("texts"))
    playlist = checker.playlist(raw.get("playlist"))
    privacy: PrivacyConfig = sections["privacy"]
    # (A record_dir refused above has its own problem; "not set" would be false.)
    if privacy.record_landmarks and not privacy.record_dir and not any(p.key == "privacy.record_dir" for p in checker.problems):
        checker.problem("privacy.record_landmarks", "is true but privacy.record_dir is not set")
    names = known_actions(sections["matching"].templates) if known_actions is not None else None
    if names is not None:
        for key, action in checker.action_refs:
            if action not in names:
                checker.problem(key, f"no template named {_describe(action)}{_suggest(action, names)}")
    config = KioskConfig(**sections, texts=texts, playlist=playlist)
    problems = sorted(checker.problems, key=lambda p: (p.line or 10**9, p.key))
    return config, problems


def known_template_names(extra_dirs: tuple[str, ...] = ()) -> frozenset[str] | None:
    """Names in the template library (built-ins plus ``extra_dirs``), or None if it cannot be loaded."""
    try:
        from mirrorcam.templates import TemplateLibrary
    except ImportError:
        return None
    try:
        library = TemplateLibrary.load(extra_dirs=[Path(d) for d in extra_dirs])
    except Exception:  # a broken extra folder is reported by its own check
        return None
    return frozenset(t.name for t in library.templates)


def check_config(path: str | Path, check_files: bool = True, known_actions: Callable[[tuple[str, ...]], frozenset[str] | None] | None = known_template_names) -> list[Problem]:
    """Every problem of the config file at ``path`` (empty list: the file is good)."""
    return _load(Path(path), check_files, known_actions)[1]


def _load(path: Path, check_files: bool, known_actions) -> tuple[KioskConfig | None, list[Problem]]:
    text, problems = _read_text(path)
    if text is None:
        return None, problems
    config, problems = parse_config(text, path.resolve().parent, check_files, known_actions)
    if config is not None:
        config = dataclasses.replace(config, path=path)
    return config, problems


def load_config(path: str | Path, check_files: bool = False) -> KioskConfig:
    """Load the config for running; broken clips are left for the playlist to skip.

    Raises:
        ConfigError: The file is unusable (one sentence naming the first problem and how
            many there are; ``--check-config`` lists them all).
    """
    path = Path(path)
    config, problems = _load(path, check_files, None)
    fatal = [p for p in problems if not p.key.startswith("playlist[")]
    if config is None or fatal:
        first = (fatal or problems)[0]
        # A start opens no clip and loads no template, so --check-config may find more than
        # this count (session 20: "and 22 more", then 29 problems): say so.
        more = (f" (and {len(problems) - 1} more; run mirrorcam kiosk --check-config {path}, which also checks clips, files and actions)"
                if len(problems) > 1 else "")
        raise ConfigError(first.format(path) + more)
    return config


def config_reference() -> str:
    """A Markdown table of every key, its default and its meaning (for the README)."""
    rows = ["| key | default | meaning |", "|---|---|---|"]
    for name, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            default = f.default
            if f.metadata.get("kind") == "color":
                b, g, r = default
                default = f"#{r:02x}{g:02x}{b:02x}"
            shown = "true" if default is True else "false" if default is False else repr(default) if isinstance(default, str) else str(default)
            rows.append(f"| `{name}.{f.name}` | `{shown}` | {f.metadata['doc']} |")
    for key, value in DEFAULT_TEXTS.items():
        rows.append(f"| `texts.{key}` | {value!r} | on-screen text |")
    rows.append("| `playlist[].action` | required | template name (the neuron that must fire) |")
    rows.append("| `playlist[].clip` | required | performer video or landmark recording (.npz), relative to the config file |")
    rows.append("| `playlist[].label` | template's display name | what the screen calls the action |")
    return "\n".join(rows)
