"""Text on OpenCV images in any script the system's fonts cover.

The screen's names, captions and notices are user data (template display names, a
kiosk's configured texts in the visitors' languages), so they cannot be limited to
the ASCII that ``cv2.putText`` draws.  :class:`TextRenderer` finds font files on the
system, picks per character the first font that has it, and draws through OpenCV's own
TrueType support (``cv2.FontFace`` in OpenCV 5, ``cv2.freetype`` in opencv-contrib 4.x);
with neither, Hershey ``putText`` draws ASCII and shows other characters as ``?``.

Example:
    >>> text = TextRenderer()
    >>> img = np.zeros((60, 400, 3), np.uint8)
    >>> x_end = text.draw(img, "Привет, 手を振る", (10, 40), 24, (255, 255, 255))
"""

from __future__ import annotations

import bisect
import functools
import os
import struct
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

_FONT_DIRS = (
    "/usr/share/fonts",
    "/usr/local/share/fonts",
    "~/.local/share/fonts",
    "~/.fonts",
    "/Library/Fonts",
    "/System/Library/Fonts",
    "~/Library/Fonts",
    "C:/Windows/Fonts",
)
# Preferred files first (by name, wherever they are); any other font found is a
# fallback consulted only for characters the preferred ones lack.
_REGULAR = ("DejaVuSans.ttf", "NotoSans-Regular.ttf", "LiberationSans-Regular.ttf", "Arial.ttf", "arial.ttf")
_BOLD = ("DejaVuSans-Bold.ttf", "NotoSans-Bold.ttf", "LiberationSans-Bold.ttf", "Arial Bold.ttf", "arialbd.ttf")
_FALLBACK = ("DroidSansFallbackFull.ttf", "DroidSansFallback.ttf", "NotoSansCJK-Regular.ttf", "NotoSansCJKjp-Regular.otf",
             "wqy-microhei.ttf", "NotoSansArabic-Regular.ttf", "NotoSansDevanagari-Regular.ttf", "NotoSansHebrew-Regular.ttf",
             "NotoSansThai-Regular.ttf")


def find_fonts() -> list[Path]:
    """TrueType/OpenType font files installed on this system (``.ttf``/``.otf``), unordered."""
    found: list[Path] = []
    for folder in _FONT_DIRS:
        root = Path(os.path.expanduser(folder))
        if root.is_dir():
            for dirpath, _dirs, files in os.walk(root):
                found.extend(Path(dirpath) / f for f in files if f.lower().endswith((".ttf", ".otf")))
    return found


def font_coverage(path: str | Path) -> list[tuple[int, int]]:
    """Sorted ``(first, last)`` code point ranges a font maps, read from its ``cmap`` table.

    Only what is needed to choose a font per character: formats 4 and 12, Unicode
    subtables.  Returns ``[]`` for anything unreadable.
    """
    try:
        data = Path(path).read_bytes()
        num_tables = struct.unpack_from(">H", data, 4)[0]
        cmap = None
        for i in range(num_tables):
            tag, _sum, offset, _length = struct.unpack_from(">4sIII", data, 12 + 16 * i)
            if tag == b"cmap":
                cmap = offset
        if cmap is None:
            return []
        count = struct.unpack_from(">H", data, cmap + 2)[0]
        subtables = {}
        for i in range(count):
            platform, encoding, offset = struct.unpack_from(">HHI", data, cmap + 4 + 8 * i)
            subtables[(platform, encoding)] = cmap + offset
        for key in ((3, 10), (0, 6), (0, 4), (3, 1), (0, 3), (0, 1), (0, 0)):
            if key not in subtables:
                continue
            at = subtables[key]
            fmt = struct.unpack_from(">H", data, at)[0]
            if fmt == 12:
                groups = struct.unpack_from(">I", data, at + 12)[0]
                return sorted(struct.unpack_from(">II", data, at + 16 + 12 * g) for g in range(groups))
            if fmt == 4:
                segs = struct.unpack_from(">H", data, at + 6)[0] // 2
                ends = struct.unpack_from(f">{segs}H", data, at + 14)
                starts = struct.unpack_from(f">{segs}H", data, at + 16 + 2 * segs)
                return sorted((s, e) for s, e in zip(starts, ends) if s <= e and s != 0xFFFF)
    except (OSError, struct.error):
        return []
    return []


class _Font:
    """One font file and the code points it covers."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ranges = font_coverage(path)
        self._starts = [r[0] for r in self.ranges]
        self._face = None
        self._ft = None

    def covers(self, ch: str) -> bool:
        cp = ord(ch)
        i = bisect.bisect_right(self._starts, cp) - 1
        return i >= 0 and self.ranges[i][0] <= cp <= self.ranges[i][1]

    def face(self):
        if self._face is None:
            self._face = cv2.FontFace(str(self.path))
        return self._face

    def ft(self):
        if self._ft is None:
            self._ft = cv2.freetype.createFreeType2()
            self._ft.loadFontData(str(self.path), 0)
        return self._ft


def font_problem(path: str | Path) -> str | None:
    """Why :class:`TextRenderer` would not draw with the font file ``path``, or None.

    Read as the renderer reads each font (its ``cmap``, :func:`font_coverage`), which drops a
    file without one: given alone (a kiosk's ``display.font``), a file that is no font had
    left the screen in Hershey's ASCII, every other character a "?", without a word.
    (``cv2.FontFace`` takes any file, so opening it tells nothing.)
    """
    if not _Font(Path(path)).ranges:
        return "is not a TrueType or OpenType font (no character map read from it)"
    return None


def _backend() -> str:
    if hasattr(cv2, "FontFace"):
        return "fontface"  # OpenCV >= 5: TrueType through stb_truetype + HarfBuzz shaping
    if hasattr(cv2, "freetype"):
        return "freetype"  # opencv-contrib 4.x
    return "hershey"


class TextRenderer:
    """Anti-aliased UTF-8 text in any script the system's fonts cover.

    Each character is drawn with the first font that has it: a Latin/Greek/Cyrillic/
    Arabic/Hebrew font first (DejaVu Sans on Debian), then fallbacks such as Droid Sans
    Fallback (CJK) found on the system.  OpenCV's own TrueType support does the
    drawing (``cv2.FontFace`` in OpenCV 5, ``cv2.freetype`` in opencv-contrib 4.x);
    with neither, or without any font file, Hershey ``putText`` draws ASCII and shows
    other characters as ``?``.

    Args:
        fonts: Font files to use, in preference order (default: search the system).
        backend: ``"fontface"``, ``"freetype"`` or ``"hershey"`` (default: the best available).

    Example:
        >>> text = TextRenderer()
        >>> img = np.zeros((60, 400, 3), np.uint8)
        >>> x_end = text.draw(img, "Привет, 手を振る", (10, 40), 24, (255, 255, 255))
    """

    def __init__(self, fonts: Sequence[str | Path] | None = None, backend: str | None = None) -> None:
        backend = backend or _backend()
        if backend not in ("fontface", "freetype", "hershey"):
            raise ValueError(f"backend must be 'fontface', 'freetype' or 'hershey', got {backend!r}")
        if backend == "fontface" and not hasattr(cv2, "FontFace"):
            raise ValueError("this OpenCV has no cv2.FontFace (OpenCV 5 needed)")
        if backend == "freetype" and not hasattr(cv2, "freetype"):
            raise ValueError("this OpenCV has no cv2.freetype module")
        if fonts is not None:
            for f in fonts:
                if not Path(f).is_file():
                    raise ValueError(f"font file {f} does not exist")
        self._explicit = [Path(f) for f in fonts] if fonts is not None else None
        self._system: list[Path] | None = None
        self._chains: dict[bool, list[_Font]] = {}
        self._extra: list[Path] | None = None  # system fonts outside the chains, for rare characters
        self._coverage: dict[Path, _Font] = {}  # those read so far (a cmap is read once, not per character)
        self._char_font: dict[tuple[bool, str], _Font | None] = {}
        self._runs: dict[tuple[str, bool], list[tuple[_Font | None, str]]] = {}
        # Per-frame text repeats (captions, names): measuring it once is enough.
        self._measured: dict[tuple[str, int, bool], tuple[int, int, int]] = {}
        self._fitted: dict[tuple[str, int, int, bool, int], tuple[str, int]] = {}
        self.backend = backend
        if backend != "hershey" and not self._chain(False):
            self.backend = "hershey"

    # -- font choice
    def _system_fonts(self) -> list[Path]:
        if self._system is None:
            self._system = find_fonts()
        return self._system

    def _chain(self, bold: bool) -> list[_Font]:
        if bold not in self._chains:
            if self._explicit is not None:
                paths = list(self._explicit)
            else:
                by_name: dict[str, Path] = {}
                for p in self._system_fonts():
                    by_name.setdefault(p.name, p)
                names = (_BOLD + _REGULAR if bold else _REGULAR) + _FALLBACK
                paths = [by_name[n] for n in names if n in by_name]
            self._chains[bold] = [f for f in (_Font(p) for p in dict.fromkeys(paths)) if f.ranges]
        return self._chains[bold]

    def _font_for(self, ch: str, bold: bool) -> _Font | None:
        key = (bold, ch)
        if key in self._char_font:
            return self._char_font[key]
        chain = self._chain(bold)
        font = next((f for f in chain if f.covers(ch)), None)
        if font is None and self._explicit is None and not ch.isspace():
            # A rare script: look through the other installed fonts once, keep the hit.
            if self._extra is None:
                used = {f.path for f in chain}
                self._extra = [p for p in self._system_fonts() if p not in used]
            # (Both weights look here: a font the bold chain took stays for the regular one.)
            for path in self._extra:
                candidate = self._coverage.get(path)
                if candidate is None:
                    candidate = self._coverage[path] = _Font(path)
                if candidate.ranges and candidate.covers(ch):
                    chain.append(candidate)
                    font = candidate
                    break
        if font is None and chain and ch.isspace():
            font = chain[0]
        if len(self._char_font) > 4096:
            self._char_font.clear()
        self._char_font[key] = font
        return font

    def _split(self, text: str, bold: bool) -> list[tuple[_Font | None, str]]:
        key = (text, bold)
        runs = self._runs.get(key)
        if runs is None:
            runs = []
            for ch in text:
                font = self._font_for(ch, bold)
                # Spaces and punctuation the current font has stay in the current run.
                if runs and (runs[-1][0] is font or (runs[-1][0] is not None and runs[-1][0].covers(ch))):
                    runs[-1] = (runs[-1][0], runs[-1][1] + ch)
                else:
                    runs.append((font, ch))
            if len(self._runs) > 2048:
                self._runs.clear()
            self._runs[key] = runs
        return runs

    # -- public API
    def measure(self, text: str, size: int, bold: bool = False) -> tuple[int, int, int]:
        """``(width, ascent, descent)`` in pixels of ``text`` at font height ``size``."""
        key = (text, int(size), bool(bold))
        hit = self._measured.get(key)
        if hit is None:
            hit = self._measure(text, int(size), bool(bold))
            if len(self._measured) > 4096:
                self._measured.clear()
            self._measured[key] = hit
        return hit

    def _measure(self, text: str, size: int, bold: bool) -> tuple[int, int, int]:
        if not text:
            return 0, int(size * 0.75), int(size * 0.25)
        if self.backend == "hershey":
            scale, thick = _hershey(size, bold)
            (w, h), base = cv2.getTextSize(to_ascii(text), cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
            return w, h, base
        width, ascent, descent = 0, int(size * 0.75), int(size * 0.25)
        for font, run in self._split(text, bold):
            if font is None:
                font = self._chain(bold)[0]
                run = "?" * len(run)
            if self.backend == "fontface":
                x, y, w, h = cv2.getTextSize((0, 0), run, (0, 0), font.face(), int(size))
                width += w
            else:
                (w, h), base = font.ft().getTextSize(run, int(size), -1)
                width += w
        return width, ascent, descent

    def draw(
        self,
        image: np.ndarray,
        text: str,
        org: tuple[int, int],
        size: int,
        color: Sequence[int],
        bold: bool = False,
        align: str = "left",
    ) -> int:
        """Draw ``text`` with its baseline at ``org[1]``; returns the x where text would continue.

        Args:
            org: ``(x, baseline_y)``; ``x`` is the left end, centre or right end per ``align``.
            size: Font height in pixels.
            align: ``"left"``, ``"center"`` or ``"right"``.
        """
        if not text:
            return int(org[0])
        x, y = int(org[0]), int(org[1])
        if align != "left":
            width = self.measure(text, size, bold)[0]
            x -= width // 2 if align == "center" else width
        color = tuple(int(c) for c in color)
        if self.backend == "hershey":
            scale, thick = _hershey(size, bold)
            cv2.putText(image, to_ascii(text), (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, color, thick, cv2.LINE_AA)
            return x + cv2.getTextSize(to_ascii(text), cv2.FONT_HERSHEY_SIMPLEX, scale, thick)[0][0]
        for font, run in self._split(text, bold):
            if font is None:
                font = self._chain(bold)[0]
                run = "?" * len(run)
            if self.backend == "fontface":
                # Bold comes from a bold font file; a synthetic second pass would blur.
                (x, _y), _ = cv2.putText(image, run, (x, y), color, font.face(), int(size))
            else:
                ft = font.ft()
                ft.putText(image, run, (x, y), int(size), color, -1, cv2.LINE_AA, False)
                x += ft.getTextSize(run, int(size), -1)[0][0]
        return int(x)

    def fit(self, text: str, size: int, max_width: int, bold: bool = False, min_size: int = 9) -> tuple[str, int]:
        """Shrink (down to ``min_size``) then shorten with "…" until ``text`` fits ``max_width``.

        Returns the text to draw and its font size.
        """
        key = (text, int(size), int(max_width), bool(bold), int(min_size))
        hit = self._fitted.get(key)
        if hit is None:
            hit = self._fit(text, int(size), int(max_width), bool(bold), int(min_size))
            if len(self._fitted) > 2048:
                self._fitted.clear()
            self._fitted[key] = hit
        return hit

    def _fit(self, text: str, size: int, max_width: int, bold: bool, min_size: int) -> tuple[str, int]:
        if max_width <= 0:
            return "", size
        while size > min_size and self.measure(text, size, bold)[0] > max_width:
            size -= 1
        if self.measure(text, size, bold)[0] <= max_width:
            return text, size
        ellipsis = "…" if self.backend != "hershey" else "..."
        lo, hi = 0, len(text)
        while lo < hi:  # longest prefix that fits with the ellipsis
            mid = (lo + hi + 1) // 2
            if self.measure(text[:mid].rstrip() + ellipsis, size, bold)[0] <= max_width:
                lo = mid
            else:
                hi = mid - 1
        return (text[:lo].rstrip() + ellipsis) if lo else "", size


def to_ascii(text: str) -> str:
    """``text`` with every character outside printable ASCII as ``?`` (what Hershey fonts can draw)."""
    return "".join(c if 32 <= ord(c) < 127 else "?" for c in text)


def _hershey(size: int, bold: bool) -> tuple[float, int]:
    scale = cv2.getFontScaleFromHeight(cv2.FONT_HERSHEY_SIMPLEX, max(int(size * 0.72), 4), 1)
    return scale, 2 if bold or size >= 28 else 1


@functools.lru_cache(maxsize=64)
def size_for_hershey_scale(scale: float) -> int:
    """The largest ``size`` the Hershey backend draws no bigger than ``putText``'s ``scale``.

    For code that lays text out with ``cv2.putText`` and falls back on a Hershey
    :class:`TextRenderer` (same font) when a line must shrink.

    Example:
        >>> size_for_hershey_scale(0.5) <= size_for_hershey_scale(1.0)
        True
    """
    return max([s for s in range(4, 200) if _hershey(s, False)[0] <= scale + 1e-9], default=4)


__all__ = ["TextRenderer", "find_fonts", "font_coverage", "size_for_hershey_scale", "to_ascii"]
