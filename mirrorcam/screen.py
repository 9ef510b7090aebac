"""The mirror screen: everything a visitor sees, drawn with OpenCV.

The screen is pure drawing.  The mode that shows it (live) keeps whatever state it
needs, freezes it into a :class:`~mirrorcam.screen_state.ScreenState` once per frame and
asks a :class:`Screen` for the picture::

    YOU (camera, doing) ──┐                       ┌── OTHER (clip or 2nd person, seeing)
                          ▼                       ▼
       ┌─────────────┬───────────────────────┬─────────────┐
       │  YOU video  │ neuron column: one row │ OTHER video │
       │  + skeleton │ per template, a glow   │ + skeleton  │
       │             │ dot per channel, reps, │             │
       │             │ animated stick figure  │             │
       ├─────────────┴───────────────────────┴─────────────┤
       │ spike raster of the last 10 s, one row per neuron  │
       └─────────────────────────────────────────────────────┘

When the same neuron fires for both channels within a few seconds (a *mirror event*)
the neuron's row turns green, lines join it to both videos and a caption explains it.

What is cached, as pixels only: the static layer (background, titles, frames, neuron
names, raster labels) per canvas size; every template's animated stick figure as small
images; each neuron row's last picture with what it showed (activations in 64ths,
firing, reps, the mirror highlight), so a row is redrawn only when that changes; the
channels' tags and the caption banner likewise.  A 1280x720 frame of the demo then
costs 2-3 ms instead of 4-5.5 (``benchmarks/live.py --screen-only``).

Text goes through :class:`mirrorcam.text.TextRenderer` (UTF-8 in any script the
system's fonts cover).  Besides :class:`Screen`, this module offers building blocks other
modes reuse: :func:`draw_skeleton`, :func:`draw_neuron_bars` and :func:`person_color`.
What a frame shows (:class:`~mirrorcam.screen_state.ScreenState` and its parts) and the
raster's and mirror events' bookkeeping (:class:`~mirrorcam.screen_state.SpikeHistory`,
owned by a mode) are plain data in :mod:`mirrorcam.screen_state`.

Example:
    >>> screen = Screen([NeuronInfo("wave_one_hand", "wave")], size=(1280, 720))  # doctest: +SKIP
    >>> image = screen.render(ScreenState(channels=(you, other), now_ms=t))        # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np

from mirrorcam.containers import NeuronActivity, Person
from mirrorcam.screen_state import BGR, ChannelView, DebugInfo, MirrorEvent, NeuronInfo, RasterView, ScreenState
from mirrorcam.skeleton import CONNECTIONS
from mirrorcam.text import TextRenderer, size_for_hershey_scale, to_ascii

# Orange for the visitor, sky blue for the observed performer: distinct for the common
# colour-vision deficiencies; green (a third hue) is kept for "they match".
YOU_COLOR: BGR = (0, 150, 255)
OTHER_COLOR: BGR = (255, 185, 30)
MIRROR_COLOR: BGR = (90, 235, 60)
BACKGROUND: BGR = (26, 22, 20)
PANEL: BGR = (44, 38, 34)
TEXT: BGR = (235, 235, 235)
DIM_TEXT: BGR = (150, 150, 150)

_PALETTE: tuple[BGR, ...] = (YOU_COLOR, OTHER_COLOR, (200, 110, 255), (80, 220, 220), (120, 120, 255), (255, 120, 160))

# Body edges only: the face is drawn as one head circle, which reads better at a distance.
_BODY_EDGES = tuple((a, b) for a, b in CONNECTIONS if a > 10 and b > 10)
_FACE = (0, 2, 5, 7, 8)


def person_color(person_id: int) -> BGR:
    """A stable, distinct colour per person id (id 0 orange, 1 sky blue, ...)."""
    return _PALETTE[int(person_id) % len(_PALETTE)] if person_id >= 0 else DIM_TEXT


def _scale(color: Sequence[int], factor: float) -> BGR:
    return tuple(int(max(0, min(255, c * factor))) for c in color)  # type: ignore[return-value]


def _mix(a: Sequence[int], b: Sequence[int], t: float) -> BGR:
    t = max(0.0, min(1.0, t))
    return tuple(int(x * (1 - t) + y * t) for x, y in zip(a, b))  # type: ignore[return-value]


def _tint(roi: np.ndarray, color: Sequence[int], strength: float) -> None:
    """Blend ``roi`` towards a flat ``color`` in place (no full-size temporary image)."""
    strength = max(0.0, min(1.0, float(strength)))
    # (Views of a larger canvas are not contiguous, so results are copied back rather
    # than passed as OpenCV's dst.)
    scaled = cv2.convertScaleAbs(roi, alpha=1.0 - strength)
    roi[:] = cv2.add(scaled, (*(float(c) * strength for c in color[:3]), 0.0))


def _darken(roi: np.ndarray, factor: float) -> None:
    roi[:] = cv2.convertScaleAbs(roi, alpha=factor)


# --------------------------------------------------------------------------- skeletons


def _to_canvas(
    landmarks: np.ndarray, rect: tuple[int, int, int, int], mirrored: bool
) -> np.ndarray:
    x0, y0, w, h = rect
    if mirrored:  # x0 + (1 - x) w
        return landmarks[:, :2] * (-w, h) + (x0 + w, y0)
    return landmarks[:, :2] * (w, h) + (x0, y0)


def draw_skeleton(
    image: np.ndarray,
    person: Person,
    color: Sequence[int],
    mirrored: bool = False,
    label: str | None = None,
    rect: tuple[int, int, int, int] | None = None,
    thickness: int | None = None,
    min_visibility: float = 0.5,
    text: TextRenderer | None = None,
) -> None:
    """Draw ``person`` as a stick figure, in place.

    Args:
        image: BGR canvas.
        person: Landmarks normalised to the frame the person was found in.
        color: BGR colour; joints below ``min_visibility`` are drawn faded.
        mirrored: Flip left/right (for a mirror-like display of an unmirrored frame).
        label: Text above the head (e.g. ``"#0"``).
        rect: ``(x, y, w, h)`` of the canvas region showing that frame (default: all of it).
        thickness: Line width in pixels (default: scaled to the region).
        min_visibility: A joint whose visibility (or presence, the lower) is below this
            is drawn faded and thin, with the bones that reach it.
        text: Renderer for ``label`` (Hershey when None).
    """
    height, width = image.shape[:2]
    rect = rect or (0, 0, width, height)
    thickness = thickness or max(2, int(round(min(rect[2], rect[3]) / 120)))
    pts = _to_canvas(person.landmarks, rect, mirrored)
    if not np.all(np.isfinite(pts)):
        pts = np.nan_to_num(pts, nan=-1e4, posinf=-1e4, neginf=-1e4)
    pts = np.clip(pts, -1e4, 1e4).astype(np.int32)
    vis = np.minimum(person.visibility, person.presence) if person.presence.any() else person.visibility
    # Plain Python tuples and bools: OpenCV takes them without per-call numpy conversions.
    xy = [tuple(p) for p in pts.tolist()]
    seen = (vis >= min_visibility).tolist()
    faded = _scale(color, 0.4)
    color = tuple(int(c) for c in color)
    thin = max(1, thickness // 2)
    for a, b in _BODY_EDGES:
        good = seen[a] and seen[b]
        cv2.line(image, xy[a], xy[b], color if good else faded, thickness if good else thin, cv2.LINE_AA)
    for i in (11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28):
        cv2.circle(image, xy[i], thickness + 1, color if seen[i] else faded, -1, cv2.LINE_AA)
    # Head: a circle around the face landmarks, sized by the shoulders.
    shoulder = math.hypot(xy[11][0] - xy[12][0], xy[11][1] - xy[12][1])
    radius = int(max(thickness * 3, min(shoulder * 0.33, 0.12 * rect[3])))
    head = (int(sum(xy[i][0] for i in _FACE) / len(_FACE)), int(sum(xy[i][1] for i in _FACE) / len(_FACE)))
    head_ok = seen[0]
    cv2.circle(image, head, radius, color if head_ok else faded, thickness, cv2.LINE_AA)
    if label:
        org = (head[0], head[1] - radius - 6)
        if text is not None:
            text.draw(image, label, org, max(12, thickness * 6), color, bold=True, align="center")
        else:
            cv2.putText(image, to_ascii(label), (org[0] - 8, org[1]), cv2.FONT_HERSHEY_SIMPLEX, 0.5, color, 1, cv2.LINE_AA)


def draw_neuron_bars(
    image: np.ndarray,
    activity: NeuronActivity | None,
    origin: tuple[int, int] = (8, 8),
    width: int = 220,
    color: Sequence[int] = YOU_COLOR,
    row_height: int = 16,
    display_names: Mapping[str, str] | None = None,
    text: TextRenderer | None = None,
    columns: int = 1,
) -> int:
    """Compact horizontal activation bars, one per neuron, in place (for annotated videos).

    Each row: the neuron's name on a bar filled to its activation, outlined brightly
    while the neuron fires, and its repetition count.  A name too long for the room
    left of its count is drawn smaller, then shortened with an ellipsis
    (:meth:`TextRenderer.fit`), so it never runs into the count or past its bar.
    With ``columns`` > 1 the rows fill ``columns`` side-by-side columns of ``width``
    (one panel, top to bottom, then the next column: a short band for narrow frames).
    Returns the y just below the last row, so several people's bars can be stacked.
    """
    x, y = int(origin[0]), int(origin[1])
    if activity is None or not len(activity.names):
        return y
    color = tuple(int(c) for c in color)
    h, w = image.shape[:2]
    columns = max(1, int(columns))
    per_column = -(-len(activity.names) // columns)
    gap = 8
    col_width = (width - gap * (columns - 1)) // columns if columns > 1 else width
    for i, name in enumerate(activity.names):
        col, row = divmod(i, per_column)
        cx = x + col * (col_width + gap)
        top = y + row * (row_height + 2)
        if top + row_height > h:
            continue
        value = float(np.clip(activity.activation[i], 0.0, 1.0))
        roi = image[top:top + row_height, cx:min(cx + col_width, w)]
        _darken(roi, 0.35)  # behind the bar, so names stay readable
        cv2.rectangle(image, (cx, top), (cx + int(value * (col_width - 1)), top + row_height - 1), _scale(color, 0.45 + 0.4 * value), -1)
        firing = bool(activity.active[i])
        if firing:
            cv2.rectangle(image, (cx, top), (cx + col_width - 1, top + row_height - 1), color, 2)
        label = (display_names or {}).get(name, name)
        reps = int(activity.reps[i])
        size = max(10, row_height - 4)
        baseline = top + row_height - 4
        if text is not None:
            count = f"×{reps}"
            # (a count wider than the usual 40 px reserve takes more of the name's room)
            shown, fitted = text.fit(label, size, col_width - max(40, text.measure(count, size)[0] + 12), bold=firing)
            text.draw(image, shown, (cx + 4, baseline), fitted, TEXT, bold=firing)
            text.draw(image, count, (cx + col_width - 4, baseline), size, TEXT, align="right")  # (every row's alike)
        else:
            scale = row_height / 32
            count = f"x{reps}"
            count_x = cx + col_width - 4 - max(30, cv2.getTextSize(count, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0])
            room = count_x - 4 - (cx + 4)  # the name ends a few pixels before its count
            ascii_label = to_ascii(label)[:28]
            if cv2.getTextSize(ascii_label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] <= room:
                cv2.putText(image, ascii_label, (cx + 4, baseline), cv2.FONT_HERSHEY_SIMPLEX, scale, TEXT, 1, cv2.LINE_AA)
            else:  # too long (a narrow frame, a long name): smaller, then "..."
                start = size_for_hershey_scale(scale)
                shown, fitted = _HERSHEY.fit(label, start, room, min_size=max(9, round(start * 0.8)))
                _HERSHEY.draw(image, shown, (cx + 4, baseline), fitted, TEXT)
            cv2.putText(image, count, (count_x, baseline), cv2.FONT_HERSHEY_SIMPLEX, scale, TEXT, 1, cv2.LINE_AA)
    return y + per_column * (row_height + 2)


_HERSHEY = TextRenderer(backend="hershey")
"""Fits and draws :func:`draw_neuron_bars`' names when no renderer is given (ASCII, ``putText``)."""


PREVIEW_YAW_DEG = 30.0
"""How far the template figures are turned from facing the viewer."""


def render_preview_frames(preview: np.ndarray | None, size: int, color: Sequence[int] = TEXT) -> list[np.ndarray]:
    """A template's animated stick figure as ``size`` x ``size`` grayscale-alpha images.

    Args:
        preview: ``(K, 33, 3)`` world-like landmarks (metres, y down) of the template.
        size: Icon side in pixels.

    Returns:
        K ``(size, size)`` uint8 masks (255 = line), one per preview frame; one blank
        mask when there is no preview.
    """
    if preview is None or len(preview) == 0 or preview.ndim != 3 or preview.shape[1:] != (33, 3):
        return [np.zeros((size, size), np.uint8)]
    # Seen from a three-quarter view: straight from the front, what moves toward the camera
    # (a punch, a lunge's step, a knee raised) hardly moved in the little figure.
    yaw = math.radians(PREVIEW_YAW_DEG)
    p = np.nan_to_num(preview.astype(np.float32))
    xy = np.stack([p[:, :, 0] * math.cos(yaw) + p[:, :, 2] * math.sin(yaw), p[:, :, 1]], axis=-1)
    # One box over all frames so the figure moves inside the icon rather than rescaling.
    lo = xy.reshape(-1, 2).min(axis=0)
    hi = xy.reshape(-1, 2).max(axis=0)
    span = float(max(hi[0] - lo[0], hi[1] - lo[1], 1e-3))
    margin = size * 0.1
    scale = (size - 2 * margin) / span
    center = (lo + hi) / 2
    thickness = max(1, size // 22)
    frames = []
    for k in range(len(xy)):
        mask = np.zeros((size, size), np.uint8)
        pts = ((xy[k] - center) * scale + size / 2).astype(np.int32)
        for a, b in _BODY_EDGES:
            cv2.line(mask, tuple(pts[a]), tuple(pts[b]), 255, thickness, cv2.LINE_AA)
        shoulder = float(np.linalg.norm(pts[11] - pts[12]))
        head = tuple(int(v) for v in pts[list(_FACE)].mean(axis=0))
        cv2.circle(mask, head, max(2, int(shoulder * 0.3)), 255, thickness, cv2.LINE_AA)
        frames.append(mask)
    return frames


# --------------------------------------------------------------------------- raster axis


RASTER_TICK_STEPS_S = (0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0)
"""Spacings the raster's time axis may use, in seconds; it takes the smallest that gives
at most five marks (a 10 s window: every 2 s)."""


def raster_ticks(window_ms: float) -> tuple[float, ...]:
    """Seconds before now where the raster's axis has a mark, from 0 ("now") up to but
    not including the window's far edge (its label would stand half outside the plot).

    Example:
        >>> raster_ticks(10_000)
        (0.0, 2.0, 4.0, 6.0, 8.0)
        >>> raster_ticks(30_000)
        (0.0, 10.0, 20.0)
    """
    window_s = window_ms / 1000.0
    step = next((s for s in RASTER_TICK_STEPS_S if window_s / s <= 5), math.ceil(window_s / 5))
    count = math.ceil(window_s / step - 1e-9)  # (a mark at exactly the far edge is left out)
    return tuple(k * step for k in range(count))


# --------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class Layout:
    """Pixel rectangles ``(x, y, w, h)`` of the screen's parts for one canvas size."""

    width: int
    height: int
    unit: float
    title: tuple[int, int, int, int]
    you: tuple[int, int, int, int]
    other: tuple[int, int, int, int]
    column: tuple[int, int, int, int]
    rows: tuple[tuple[int, int, int, int], ...]
    raster: tuple[int, int, int, int]
    raster_rows: tuple[tuple[int, int], ...]
    raster_plot: tuple[int, int, int, int]
    caption: tuple[int, int, int, int]

    @classmethod
    def compute(cls, width: int, height: int, neurons: int) -> Layout:
        u = min(width / 1280.0, height / 720.0)
        title_h = int(46 * u)
        caption_h = int(52 * u)
        # Rows of at least ~10 px so the names beside them stay legible on small canvases.
        raster_h = int(max(90 * u, min(0.34 * height, max((20 + 14 * max(neurons, 1)) * u, 22 * u + 10 * max(neurons, 1)))))
        main_y = title_h
        main_h = height - title_h - raster_h - caption_h
        column_w = int(max(0.28 * width, min(360 * u, 0.34 * width)))
        side_w = (width - column_w) // 2
        pad = max(4, int(8 * u))
        you = (pad, main_y + pad, side_w - 2 * pad, main_h - 2 * pad)
        column = (side_w, main_y + pad, width - 2 * side_w, main_h - 2 * pad)
        other = (side_w + column[2] + pad, main_y + pad, side_w - 2 * pad, main_h - 2 * pad)
        header = int(22 * u)
        n = max(neurons, 1)
        row_h = (column[3] - header) / n
        rows = tuple(
            (column[0], int(column[1] + header + i * row_h), column[2], max(1, int(row_h) - 1)) for i in range(neurons)
        )
        caption = (0, main_y + main_h, width, caption_h)
        raster = (0, height - raster_h, width, raster_h)
        label_w = int(min(200 * u, 0.2 * width))
        plot = (label_w + pad, raster[1] + int(4 * u), width - label_w - 3 * pad, raster_h - int(22 * u))
        rr = plot[3] / n
        raster_rows = tuple((int(plot[1] + i * rr), max(2, int(rr) - 1)) for i in range(neurons))
        return cls(width, height, u, (0, 0, width, title_h), you, other, column, rows, raster, raster_rows, plot, caption)


def _picture_rect(ch: ChannelView, panel: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """The rectangle of ``panel`` a channel's picture fills (its aspect kept)."""
    size = (ch.image.shape[1], ch.image.shape[0]) if ch.image is not None else ch.image_size
    return _fit_rect(size, panel)


def _fit_rect(image_size: tuple[int, int], rect: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """The largest ``image_size``-shaped rectangle centred in ``rect``."""
    iw, ih = max(1, image_size[0]), max(1, image_size[1])
    x, y, w, h = rect
    scale = min(w / iw, h / ih)
    dw, dh = max(1, int(iw * scale)), max(1, int(ih * scale))
    return x + (w - dw) // 2, y + (h - dh) // 2, dw, dh


# --------------------------------------------------------------------------- screen


class Screen:
    """Draws :class:`ScreenState` into a BGR image; caches only pixels, never pipeline state.

    The raster's time axis is marked for the state's ``raster.window_ms`` (10 s without a
    raster); the static layer holding it is drawn again when that changes.

    Args:
        neurons: The neurons in screen order (one row each).
        size: Canvas ``(width, height)``.
        text: Text renderer (one is created when None; share it, it caches fonts).
        caption_ms: How long a mirror event's caption stays up.
        icon_period_ms: Duration of one loop of a template's animated figure.

    Example:
        >>> screen = Screen([NeuronInfo("clap")], size=(640, 480))
        >>> you = ChannelView("YOU", YOU_COLOR)
        >>> screen.render(ScreenState(channels=(you, None))).shape
        (480, 640, 3)
    """

    def __init__(
        self,
        neurons: Sequence[NeuronInfo],
        size: tuple[int, int] = (1280, 720),
        text: TextRenderer | None = None,
        caption_ms: float = 5_000.0,
        icon_period_ms: float = 2_000.0,
    ) -> None:
        width, height = int(size[0]), int(size[1])
        if width < 320 or height < 240:
            raise ValueError(f"size must be at least 320x240, got {width}x{height}")
        if caption_ms <= 0 or icon_period_ms <= 0:
            raise ValueError("caption_ms and icon_period_ms must be > 0")
        self.neurons = tuple(neurons)
        self.size = (width, height)
        self.text = text or TextRenderer()
        self.caption_ms = float(caption_ms)
        self.icon_period_ms = float(icon_period_ms)
        self.layout = Layout.compute(width, height, len(self.neurons))
        self._static: tuple[float, np.ndarray] | None = None  # (raster window it is drawn for, pixels)
        self._icons: list[list[np.ndarray]] | None = None
        self._icon_bgr: dict[tuple[int, int, int], np.ndarray] = {}
        self._row_labels: list[tuple[str, int, tuple[int, int]]] = []
        # Per row: (what it shows, its pixels) from the last frame that drew it.
        self._row_cache: list[tuple[tuple, np.ndarray] | None] = []
        self._tags: dict[tuple, np.ndarray] = {}
        self._row_geometry: list[tuple[slice, slice, int, int, int]] = []
        self._bank_index: dict[tuple[str, ...], list[int | None]] = {}
        self._units: dict[float, int] = {}
        self._banner: tuple[tuple, np.ndarray] | None = None

    # -- cached layers
    def _u(self, v: float) -> int:
        """``v`` pixels of the 1280x720 design at this canvas's scale (memoised: ~60 a frame)."""
        px = self._units.get(v)
        if px is None:
            px = self._units[v] = max(1, int(round(v * self.layout.unit)))
        return px

    def _build_static(self, window_ms: float) -> np.ndarray:
        L, T = self.layout, self.text
        img = np.full((L.height, L.width, 3), BACKGROUND, np.uint8)
        # Title
        title_size = self._u(24)
        x = T.draw(img, "MIRROR NEURONS", (self._u(16), L.title[3] - self._u(14)), title_size, TEXT, bold=True)
        sub, sub_size = T.fit(
            "the same neuron fires when you DO an action and when you SEE someone do it",
            self._u(17), L.width - x - self._u(120),
        )
        T.draw(img, sub, (x + self._u(16), L.title[3] - self._u(15)), sub_size, DIM_TEXT)
        T.draw(img, "h: help", (L.width - self._u(14), L.title[3] - self._u(15)), self._u(15), DIM_TEXT, align="right")
        # Panels
        for x0, y0, w, h in (L.you, L.other):
            cv2.rectangle(img, (x0, y0), (x0 + w, y0 + h), PANEL, -1)
        self._draw_column_static(img)
        # Raster labels and axis
        if self.neurons:
            px, py, pw, ph = L.raster_plot
            cv2.rectangle(img, (px, py), (px + pw, py + ph), (34, 30, 28), -1)
            label_w = px - self._u(14)
            row_h = L.raster_rows[0][1]
            size = max(8, min(self._u(14), int(row_h * 1.05)))
            # Rows lower than the smallest legible text (a small window, many neurons):
            # every other label, or every third, instead of labels drawn over each other.
            every = max(1, math.ceil(size / (row_h * 1.05 + 1)))
            for i, n in enumerate(self.neurons):
                y, h = L.raster_rows[i]
                if i % every == 0:
                    shown, s = T.fit(n.label, size, label_w, min_size=max(8, int(size * 0.8)))
                    T.draw(img, shown, (px - self._u(8), y + h // 2 + s // 3), s, DIM_TEXT, align="right")
                if i:
                    cv2.line(img, (px, y), (px + pw, y), (48, 42, 40), 1)
            axis_y = py + ph + self._u(13)
            for sec in raster_ticks(window_ms):
                tx = px + pw - int(pw * sec * 1000.0 / window_ms)
                # (Inside the plot's edge: below it, the mark had run into the label's top, "-6' s".)
                cv2.line(img, (tx, py + ph - self._u(4)), (tx, py + ph - 1), DIM_TEXT, 1)
                label = "now" if sec == 0 else f"-{sec:g} s"
                T.draw(img, label, (tx, axis_y), self._u(12), DIM_TEXT, align="right" if sec == 0 else "center")
            lx = self._u(10)
            for name, color in (("YOU", YOU_COLOR), ("OTHER", OTHER_COLOR), ("both", MIRROR_COLOR)):
                cv2.rectangle(img, (lx, axis_y - self._u(10)), (lx + self._u(5), axis_y), color, -1)
                lx = T.draw(img, name, (lx + self._u(9), axis_y), self._u(12), color) + self._u(12)
        return img

    def _draw_column_static(self, img: np.ndarray) -> None:
        L, T = self.layout, self.text
        cx, cy, cw, ch = L.column
        header = cy + self._u(16)
        T.draw(img, "YOU", (cx + self._u(22), header), self._u(14), YOU_COLOR, bold=True, align="center")
        T.draw(img, "OTHER", (cx + cw - self._u(22), header), self._u(14), OTHER_COLOR, bold=True, align="center")
        T.draw(img, "neurons", (cx + cw // 2, header), self._u(14), DIM_TEXT, align="center")
        self._row_labels = []
        for i, n in enumerate(self.neurons):
            x, y, w, h = L.rows[i]
            cv2.rectangle(img, (x, y), (x + w, y + h), (38, 33, 30), -1)
            # Half the row's height, at least 9 px, but never taller than the row: with many
            # neurons in a small window 9 px names had run into each other.
            floor = min(9, h + 1)
            size = max(floor, min(self._u(17), int(h * 0.5)))
            name_x = x + self._dot_r(h) * 2 + self._u(14) + h
            max_w = x + w - self._dot_r(h) * 2 - self._u(14) - name_x
            shown, s = T.fit(n.label, size, max_w, min_size=max(floor, int(size * 0.75)))
            T.draw(img, shown, (name_x, y + h // 2 + s // 3), s, TEXT)
            self._row_labels.append((shown, s, (name_x, y + h // 2 + s // 3)))

    def _dot_r(self, row_h: int) -> int:
        return max(min(4, row_h // 2), min(self._u(15), int(row_h * 0.4)))

    def _icon_frames(self) -> list[list[np.ndarray]]:
        if self._icons is None:
            side = max(8, (self.layout.rows[0][3] - 2) if self.layout.rows else 8)
            self._icons = [render_preview_frames(n.preview, side) for n in self.neurons]
        return self._icons

    # -- per frame
    def render(self, state: ScreenState, out: np.ndarray | None = None) -> np.ndarray:
        """The screen for ``state`` as a ``(height, width, 3)`` BGR image.

        Args:
            state: What to show.
            out: Optional preallocated canvas of the right shape to draw into.
        """
        you, other = state.channels
        if other is None:
            other = ChannelView("OTHER", OTHER_COLOR, status="nobody to watch")
            state = replace(state, channels=(you, other))
        window_ms = state.raster.window_ms if state.raster is not None else RasterView.window_ms
        if self._static is None or self._static[0] != window_ms:
            self._static = (window_ms, self._build_static(window_ms))
        static = self._static[1]
        if out is None or out.shape != static.shape:
            out = static.copy()
        else:
            np.copyto(out, static)
        L = self.layout
        mirror = state.mirror if state.mirror is not None and 0 <= state.now_ms - state.mirror.t_ms < self.caption_ms else None
        anchors = (self._draw_channel(out, you, L.you), self._draw_channel(out, other, L.other))
        if state.notice:
            # The notice covers YOU's panel: a mirror event's line starts at its edge instead
            # of crossing the count-down from YOU's chest.
            anchors = (None, anchors[1])
        self._draw_column(out, state, mirror, anchors)
        if state.raster is not None and self.neurons:
            self._draw_raster(out, state.raster)
        if mirror is not None:
            self._draw_caption(out, state, mirror)
        elif state.toast:
            self._draw_banner(out, state.toast, TEXT, (60, 52, 48))
        if state.notice:
            self._draw_notice(out, state.notice, L.you)
        if state.paused:
            self._draw_tag(out, "PAUSED", (L.you[0] + L.you[2] - self._u(70), L.you[1] + self._u(34)), (60, 60, 200))
        if state.debug is not None:
            self._draw_debug(out, state.debug, _picture_rect(other, L.other))
        if state.help is not None:
            self._draw_help(out, state.help)
        return out

    def _draw_channel(
        self, img: np.ndarray, ch: ChannelView, panel: tuple[int, int, int, int]
    ) -> tuple[int, int] | None:
        """Draw one channel; returns where its focus person's chest is on the canvas."""
        T = self.text
        rect = _picture_rect(ch, panel)
        x, y, w, h = rect
        view = img[y:y + h, x:x + w]  # drawing into the view clips skeletons to the panel
        if ch.image is not None:
            # INTER_LINEAR: INTER_AREA looks a little better when shrinking but costs ~2 ms.
            frame = cv2.resize(ch.image, (w, h), interpolation=cv2.INTER_LINEAR)
            if ch.mirrored:
                frame = cv2.flip(frame, 1)
            view[:] = frame
        else:
            cv2.rectangle(img, (x, y), (x + w, y + h), (52, 46, 42), -1)
        anchor = None
        for person in sorted(ch.persons, key=lambda p: ch.focus is None or p.id == ch.focus):
            focus = ch.focus is None or person.id == ch.focus
            draw_skeleton(view, person, ch.color if focus else (140, 140, 140), ch.mirrored,
                          thickness=max(2, int(min(w, h) / (100 if focus else 200))))
            if focus and anchor is None:
                chest = _to_canvas(person.landmarks[[11, 12]], (x, y, w, h), ch.mirrored).mean(axis=0)
                if np.all(np.isfinite(chest)):
                    anchor = (int(np.clip(chest[0], x, x + w)), int(np.clip(chest[1], y, y + h)))
        firing = ch.activity is not None and bool(np.any(ch.activity.active))
        cv2.rectangle(img, (x, y), (x + w, y + h), ch.color, self._u(6) if firing else self._u(2))
        tag = self._tag(ch.label, ch.subtitle, tuple(int(c) for c in ch.color), w)
        th, tw = min(tag.shape[0], img.shape[0] - y), min(tag.shape[1], img.shape[1] - x)
        img[y:y + th, x:x + tw] = tag[:th, :tw]
        if ch.status:
            pad = self._u(8)
            status, s = T.fit(ch.status, self._u(20), w - 2 * pad)
            T.draw(img, status, (x + w // 2, y + h // 2), s, TEXT, align="center")
        return anchor

    def _tag(self, label: str, subtitle: str, color: BGR, width: int) -> np.ndarray:
        """A channel's tag (a box in its colour with its label, then the subtitle) as pixels.

        Both boxes are filled, so the tag does not depend on what is under it and is
        drawn once per text rather than once per frame.
        """
        key = (label, subtitle, color, width)
        tag = self._tags.get(key)
        if tag is not None:
            return tag
        T = self.text
        tag_size, pad = self._u(22), self._u(8)
        tw = T.measure(label, tag_size, True)[0]
        x1 = tw + 2 * pad
        sub, s, sw = "", 0, -2 * pad - 1
        if subtitle:
            sub, s = T.fit(subtitle, self._u(15), width - tw - 4 * pad)
            sw = T.measure(sub, s)[0]
        tag = np.zeros((tag_size + pad + 1, max(x1, x1 + sw + 2 * pad) + 1, 3), np.uint8)
        cv2.rectangle(tag, (0, 0), (x1, tag_size + pad), color, -1)
        T.draw(tag, label, (pad, tag_size), tag_size, (20, 20, 20), bold=True)
        if sub:
            cv2.rectangle(tag, (x1, 0), (x1 + sw + 2 * pad, tag_size + pad), (30, 26, 24), -1)
            T.draw(tag, sub, (x1 + pad, tag_size), s, TEXT)
        if len(self._tags) > 64:  # subtitles change with the clip: keep the cache small
            self._tags.clear()
        self._tags[key] = tag
        return tag

    def _draw_column(
        self, img: np.ndarray, state: ScreenState, mirror: MirrorEvent | None, anchors: tuple
    ) -> None:
        L = self.layout
        icons = self._icon_frames()
        you, other = state.channels
        acts = (you.activity, other.activity if other is not None else None)
        colors = (tuple(you.color), tuple(other.color) if other is not None else OTHER_COLOR)
        phase = (state.now_ms % self.icon_period_ms) / self.icon_period_ms
        # Per channel, each row's (activation in 64ths, active, reps); activations are
        # quantised (a step of at most 4 of 255 in a dot's fill) so that most rows look
        # exactly as in the previous frame and are copied, not drawn.
        shown = [self._row_values(act) for act in acts]
        if not self._row_geometry:
            for x, y, w, h in L.rows:
                r = self._dot_r(h)
                self._row_geometry.append((slice(y, y + h + 1), slice(x, x + w + 1), x + 2 * r + self._u(12), y, h))
            self._row_cache = [None] * len(L.rows)
        mirror_row = mirror.neuron if mirror is not None else -1
        for i, (rows, cols, fx, y, h) in enumerate(self._row_geometry):
            key = (colors, shown[0][i], shown[1][i], i == mirror_row)
            view = img[rows, cols]
            cached = self._row_cache[i]
            if cached is not None and cached[0] == key:
                view[:] = cached[1]
            else:
                self._draw_row(view, i, colors, (shown[0][i], shown[1][i]), i == mirror_row)
                self._row_cache[i] = (key, view.copy())
            # Animated figure of the template, brighter while the neuron is active.
            frames = icons[i]
            active = shown[0][i][1] or shown[1][i][1]
            frame = self._icon(i, int(phase * len(frames)) % len(frames), 2 if i == mirror_row else 1 if active else 0)
            fy = y + (h - frame.shape[0]) // 2
            fw = min(frame.shape[1], img.shape[1] - fx)
            fh = min(frame.shape[0], img.shape[0] - fy)
            if fw > 0 and fh > 0:
                # A light figure on a dark row: "lighten" blending is one cheap cv2.max.
                region = img[fy:fy + fh, fx:fx + fw]
                region[:] = cv2.max(region, frame[:fh, :fw])
        if 0 <= mirror_row < len(L.rows):
            # Lines from both performers converge on the neuron that fired for both; its
            # dots are drawn again on top of the lines' ends.
            x, y, w, h = L.rows[mirror_row]
            dots, cy = self._dot_centers(L.rows[mirror_row]), y + h // 2
            for c, fallback in enumerate(((L.you[0] + L.you[2], L.you[1] + L.you[3] // 2), (L.other[0], L.other[1] + L.other[3] // 2))):
                start = anchors[c] or fallback
                cv2.line(img, start, (dots[c], cy), MIRROR_COLOR, self._u(4), cv2.LINE_AA)
                cv2.circle(img, start, self._u(7), MIRROR_COLOR, -1, cv2.LINE_AA)
            for c, cx in enumerate(dots):
                self._draw_dot(img, (cx, cy), self._dot_r(h), colors[c], shown[c][mirror_row])

    def _row_values(self, act: NeuronActivity | None) -> list[tuple[int, bool, int | None]]:
        """Per screen row: (activation in 64ths, active, reps) of ``act``; reps None = not in its bank."""
        off = (0, False, None)
        if act is None:
            return [off] * len(self.neurons)
        index = self._bank_index.get(act.names)
        if index is None:
            where = {n: j for j, n in enumerate(act.names)}
            if len(self._bank_index) > 16:  # a bank's names change only when it is rebuilt
                self._bank_index.clear()
            index = self._bank_index[act.names] = [where.get(n.name) for n in self.neurons]
        q = np.rint(np.clip(act.activation, 0.0, 1.0) * 64).astype(int).tolist()
        on, reps = act.active.tolist(), act.reps.tolist()
        return [off if j is None else (q[j], bool(on[j]), int(reps[j])) for j in index]

    def _dot_centers(self, row: tuple[int, int, int, int]) -> tuple[int, int]:
        x, _, w, h = row
        r = self._dot_r(h)
        return x + self._u(6) + r, x + w - self._u(6) - r

    def _draw_row(self, view: np.ndarray, i: int, colors, shown, is_mirror: bool) -> None:
        """Neuron ``i``'s row (highlight, name, the two channels' dots) into ``view``, its own pixels."""
        x, y, w, h = self.layout.rows[i]
        active = (shown[0][1], shown[1][1])
        if is_mirror or any(active):
            # Green is for a mirror event only: both channels active before one has fired
            # for both is their two colours mixed (it had looked like a mirror event).
            tint = (MIRROR_COLOR if is_mirror else colors[0] if active[0] and not active[1]
                    else colors[1] if active[1] and not active[0] else _mix(colors[0], colors[1], 0.5))
            # A solid fill (not a blend) so the static name underneath cannot ghost
            # through the bold one drawn over it.
            cv2.rectangle(view, (0, 0), (w, h), _mix((38, 33, 30), _scale(tint, 0.5), 0.55), -1)
            label, size, org = self._row_labels[i]
            self.text.draw(view, label, (org[0] - x, org[1] - y), size, (255, 255, 255), bold=True)
        if is_mirror:
            t = self._u(3)  # inset, so the outline stays inside this row
            cv2.rectangle(view, (t // 2 + 1, t // 2 + 1), (w - t // 2 - 2, h - t // 2 - 2), MIRROR_COLOR, t)
        for c, cx in enumerate(self._dot_centers((0, 0, w, h))):
            self._draw_dot(view, (cx, h // 2), self._dot_r(h), colors[c], shown[c])

    def _icon(self, neuron: int, k: int, tone: int) -> np.ndarray:
        key = (neuron, k, tone)
        icon = self._icon_bgr.get(key)
        if icon is None:
            mask = self._icon_frames()[neuron][k]
            color = ((150, 150, 150), TEXT, MIRROR_COLOR)[tone]
            icon = (mask[:, :, None].astype(np.float32) * (np.array(color, np.float32) / 255)).astype(np.uint8)
            self._icon_bgr[key] = icon
        return icon

    def _draw_dot(self, img, center, r, color, shown: tuple[int, bool, int | None]) -> None:
        """A channel's dot: filled by its activation (in 64ths), a halo while active, the reps inside."""
        q, active, reps = shown
        if reps is None:
            cv2.circle(img, center, r, (70, 64, 60), 1, cv2.LINE_AA)
            return
        value = q / 64
        if active:
            cv2.circle(img, center, int(r * 1.45), _scale(color, 0.55), -1, cv2.LINE_AA)
        cv2.circle(img, center, r, _mix((58, 52, 48), color, 0.15 + 0.85 * value), -1, cv2.LINE_AA)
        cv2.circle(img, center, r, color, 1 if not active else 2, cv2.LINE_AA)
        if reps:
            size = max(9, int(r * 1.2))
            self.text.draw(img, str(reps), (center[0], center[1] + size // 3), size,
                           (20, 20, 20) if value > 0.5 else TEXT, bold=True, align="center")

    def _draw_raster(self, img: np.ndarray, raster: RasterView) -> None:
        L = self.layout
        px, py, pw, ph = L.raster_plot
        colors = (YOU_COLOR, OTHER_COLOR)
        t0 = raster.now_ms - raster.window_ms
        tick = max(3, self._u(5))
        for s in raster.spikes:
            if s.neuron >= len(L.raster_rows) or s.t_ms < t0:
                continue
            y, h = L.raster_rows[s.neuron]
            # YOU in the upper half of the row, OTHER in the lower: one row, both channels.
            tx = px + int((s.t_ms - t0) / raster.window_ms * pw)
            x0 = max(px, min(tx - tick, px + int((s.t_ms - s.duration_ms - t0) / raster.window_ms * pw)))
            half = max(1, h // 2)
            top = y if s.channel == 0 else y + half
            cv2.rectangle(img, (x0, top + 1), (tx, top + half - 1), _scale(colors[s.channel], 0.55), -1)
            cv2.rectangle(img, (tx - tick, top), (tx, top + half), colors[s.channel], -1)
        for m in raster.mirrors:  # on top of the ticks: a green bar joining the two halves
            if m.neuron < len(L.raster_rows) and m.t_ms >= t0:
                y, h = L.raster_rows[m.neuron]
                tx = px + int((m.t_ms - t0) / raster.window_ms * pw)
                cv2.rectangle(img, (tx - self._u(2), y - 1), (tx + self._u(2), y + h + 1), MIRROR_COLOR, -1)

    def _draw_caption(self, img: np.ndarray, state: ScreenState, mirror: MirrorEvent) -> None:
        age = state.now_ms - mirror.t_ms
        # A short flash when it happens, then a steady banner that fades at the end.
        flash = max(0.0, 1.0 - age / 400.0)
        fade = min(1.0, (self.caption_ms - age) / 800.0)
        self._draw_banner(img, mirror.caption, (20, 20, 20), _mix(MIRROR_COLOR, (255, 255, 255), flash * 0.6), strength=fade, bold=True)

    def _draw_banner(self, img, message, color, fill, strength: float = 1.0, bold: bool = False) -> None:
        x, y, w, h = self.layout.caption
        roi = img[y:y + h, x:x + w]
        # The caption strip is static background underneath, so the banner is a function
        # of its arguments: a caption stays up for seconds, drawn once (strength in 64ths).
        strength = round(max(0.0, min(1.0, strength)) * 64) / 64
        key = (message, tuple(color), tuple(fill), strength, bold)
        if self._banner is not None and self._banner[0] == key:
            roi[:] = self._banner[1]
            return
        # Banner and text are drawn whole and fade together into the strip: fading the text
        # towards light grey on a still-green banner had left it unreadable half-way.
        base = roi.copy() if strength < 1.0 else None
        _tint(roi, fill, 1.0)
        text, size = self.text.fit(message, self._u(24), w - self._u(30), bold=bold, min_size=self._u(13))
        self.text.draw(roi, text, (w // 2, h // 2 + size // 3), size, color, bold=bold, align="center")
        if base is not None:
            roi[:] = cv2.addWeighted(roi, strength, base, 1.0 - strength, 0.0)
        self._banner = (key, roi.copy())

    def _draw_notice(self, img, lines: Sequence[str], rect) -> None:
        x, y, w, h = rect
        roi = img[y:y + h, x:x + w]
        _darken(roi, 0.6)
        big = self._u(110) if len(lines[0]) <= 3 else self._u(34)
        first, big = self.text.fit(lines[0], big, w - self._u(20), bold=True)
        cy = y + h // 2 - (len(lines) - 1) * self._u(14)
        self.text.draw(img, first, (x + w // 2, cy + big // 3), big, TEXT, bold=True, align="center")
        for k, line in enumerate(lines[1:], 1):
            s_line, s = self.text.fit(line, self._u(20), w - self._u(20))
            self.text.draw(img, s_line, (x + w // 2, cy + big // 3 + k * self._u(32)), s, TEXT, align="center")

    def _draw_tag(self, img, label, center, fill) -> None:
        size = self._u(22)
        tw = self.text.measure(label, size, True)[0]
        pad = self._u(10)
        x0 = center[0] - tw // 2 - pad
        cv2.rectangle(img, (x0, center[1] - size - pad // 2), (x0 + tw + 2 * pad, center[1] + pad), fill, -1)
        self.text.draw(img, label, (center[0], center[1]), size, TEXT, bold=True, align="center")

    def _draw_debug(self, img, d: DebugInfo, picture: tuple[int, int, int, int]) -> None:
        """The debug lines in the bottom right of OTHER's ``picture`` (the rectangle its image
        fills), or of its panel where the picture (a portrait clip's) is narrower than they are."""
        people = "1 person" if d.persons == 1 else f"{d.persons} people"
        lines = [f"{d.fps:5.1f} fps   {people}   model {d.model_variant or '-'}"]
        if d.latency_ms is not None:
            lines.append(f"capture to display {d.latency_ms:5.1f} ms")
        if d.timings_ms:
            lines.append("  ".join(f"{k} {v:.1f}" for k, v in d.timings_ms.items()) + " ms")
        size = self._u(14)
        line_h = int(size * 1.35)
        width = max(self.text.measure(s, size)[0] for s in lines) + self._u(16)
        box_h = line_h * len(lines) + self._u(10)
        # Inside OTHER's picture, clear of its border (it had sat across the border and below it).
        ox, oy, ow, oh = picture
        x0 = ox + ow - width - self._u(8)
        if x0 < ox:
            x0 = max(self.layout.other[0], ox + ow - width)
        y0 = max(0, oy + oh - box_h - self._u(8))
        roi = img[y0:y0 + box_h, x0:x0 + width]
        _darken(roi, 0.3)
        for k, s in enumerate(lines):
            self.text.draw(img, s, (x0 + self._u(8), y0 + self._u(4) + (k + 1) * line_h - self._u(4)), size, (140, 255, 140))

    def _draw_help(self, img, keys: Sequence[tuple[str, str]]) -> None:
        L = self.layout
        size = self._u(19)
        line_h = int(size * 1.5)
        w = min(L.width - self._u(40), self._u(560))
        h = line_h * (len(keys) + 2)
        x0, y0 = (L.width - w) // 2, max(0, (L.height - h) // 2)
        roi = img[y0:y0 + h, x0:x0 + w]
        # (Opaque: darkened, the neuron rows behind had shown through between the lines.)
        roi[:] = (18, 16, 15)
        cv2.rectangle(img, (x0, y0), (x0 + w, y0 + h), TEXT, 1)
        self.text.draw(img, "Keys", (x0 + self._u(20), y0 + line_h), size, TEXT, bold=True)
        key_w = max((self.text.measure(key, size, True)[0] for key, _ in keys), default=0) + self._u(52)
        for k, (key, what) in enumerate(keys):
            by = y0 + line_h * (k + 2)
            self.text.draw(img, key, (x0 + self._u(20), by), size, (120, 220, 255), bold=True)
            shown, s = self.text.fit(what, size, w - key_w - self._u(30))
            self.text.draw(img, shown, (x0 + key_w, by), s, TEXT)



__all__ = [
    "YOU_COLOR", "OTHER_COLOR", "MIRROR_COLOR",
    "person_color", "draw_skeleton", "draw_neuron_bars", "render_preview_frames", "Layout", "raster_ticks", "Screen",
]
