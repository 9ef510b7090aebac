"""The kiosk's screens: large type for 3 m, one idea per screen, no state of its own.

The app freezes what is to be shown into a :class:`KioskView` once per frame; the
:class:`KioskRenderer` draws it into one reused canvas (no per-frame allocation of the
full picture, so memory stays flat).  Every screen carries the line that nothing is
recorded.  Text goes through :class:`mirrorcam.text.TextRenderer` (any script the
system's fonts cover); skeletons through :func:`mirrorcam.screen.draw_skeleton`.

Screens::

    attract     performer clip | title + invitation
    engage      YOU (mirror)   | greeting + one-line explanation
    imitate     "Do what you see: WAVE"; OTHER clip | YOU; both channels' neuron bars
    mirror      celebration; OTHER and YOU raster rows of the same neuron, aligned in time
    no_camera   a calm, dim screen: "camera unavailable", back on its own
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from mirrorcam.containers import Person
from mirrorcam.kiosk.config import KioskConfig
from mirrorcam.kiosk.playlist import PlaylistClip
from mirrorcam.kiosk.state import Phase
from mirrorcam.matching import BankOptions
from mirrorcam.screen import draw_skeleton
from mirrorcam.text import TextRenderer

ON_LEVEL = BankOptions.on_level  # the activation at which a neuron turns active (fires)

BGR = tuple[int, int, int]


@dataclass(frozen=True)
class KioskView:
    """Everything one kiosk frame shows.

    Attributes:
        phase: The state machine's phase.
        now: Kiosk time in seconds.
        phase_time: Seconds since the phase began.
        seconds_left: Until the phase ends on its own, or None.
        camera_image: The camera's BGR picture (unmirrored), or None.
        visitor: The selected visitor, or None.
        others: Other people in view (drawn faintly).
        clip: The performer clip on show, or None.
        clip_index: Frame of ``clip`` to show.
        action_label: Display name of the target action (imitate/mirror).
        visitor_activation: The visitor's activation of the target neuron (0..1).
        other_spikes: Seconds ago at which the performer's target neuron fired (raster OTHER row).
        you_spikes: Seconds ago at which the visitor's target neuron fired (raster YOU row).
        visitor_missing: The engaged visitor is out of view ("come back").
        frame_size: ``(w, h)`` of the camera frames the landmarks refer to.
        other_trace: The performer's target activation over the raster's time span, oldest first.
        you_trace: The visitor's target activation over the same span.
    """

    phase: Phase
    now: float
    phase_time: float = 0.0
    seconds_left: float | None = None
    camera_image: np.ndarray | None = None
    visitor: Person | None = None
    others: tuple[Person, ...] = ()
    clip: PlaylistClip | None = None
    clip_index: int = 0
    action_label: str = ""
    visitor_activation: float = 0.0
    other_spikes: tuple[float, ...] = ()
    you_spikes: tuple[float, ...] = ()
    visitor_missing: bool = False
    frame_size: tuple[int, int] = (640, 480)
    other_trace: np.ndarray | None = None
    you_trace: np.ndarray | None = None


RASTER_SECONDS = 10.0


def _dim(color: Sequence[int], factor: float) -> BGR:
    return tuple(int(max(0, min(255, c * factor))) for c in color)  # type: ignore[return-value]


def _fit(size: tuple[int, int], rect: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """The largest rect of aspect ``size`` (w, h) centred in ``rect`` (x, y, w, h)."""
    w, h = size
    x, y, rw, rh = rect
    if w <= 0 or h <= 0:
        return rect
    scale = min(rw / w, rh / h)
    fw, fh = max(1, int(w * scale)), max(1, int(h * scale))
    return x + (rw - fw) // 2, y + (rh - fh) // 2, fw, fh


class KioskRenderer:
    """Draws :class:`KioskView` values with the config's texts, colours and size.

    Args:
        config: Texts, colours, display size, mirroring.
        text: A text renderer (default: one using ``display.font`` or the system's fonts).
    """

    def __init__(self, config: KioskConfig, text: TextRenderer | None = None) -> None:
        self.config = config
        self.colors = config.colors
        self.width, self.height = config.display.width, config.display.height
        fonts = [config.display.font] if config.display.font else None
        self.text = text or TextRenderer(fonts)
        self.u = self.height / 720.0  # every size below is given for 720 lines
        self.canvas = np.zeros((self.height, self.width, 3), np.uint8)
        self._wrap_cache: dict[tuple[str, int, int, bool], list[str]] = {}
        # The static layer, drawn once: background and the line that nothing is recorded.
        self._background = np.empty_like(self.canvas)
        self._background[:] = np.array(self.colors.background, np.uint8)
        self.privacy_line(self._background)

    def px(self, value: float) -> int:
        return int(round(value * self.u))

    # ----------------------------------------------------------------- text helpers
    def wrap(self, text: str, size: int, max_width: int, bold: bool = False) -> list[str]:
        """Greedy word wrap (per character for scripts written without spaces)."""
        key = (text, size, max_width, bold)
        cached = self._wrap_cache.get(key)
        if cached is not None:
            return cached
        words = text.split(" ")
        lines: list[str] = []
        current = ""
        for word in words:
            candidate = f"{current} {word}" if current else word
            if self.text.measure(candidate, size, bold)[0] <= max_width:
                current = candidate
                continue
            if current:
                lines.append(current)
            current = ""
            for ch in word:  # a word (or a CJK sentence) too long for one line
                if self.text.measure(current + ch, size, bold)[0] > max_width and current:
                    lines.append(current)
                    current = ""
                current += ch
        if current:
            lines.append(current)
        if len(self._wrap_cache) > 512:
            self._wrap_cache.clear()
        self._wrap_cache[key] = lines
        return lines

    def fit_lines(self, text: str, size: int, width: int, max_lines: int, min_size: int, bold: bool = False) -> tuple[list[str], int]:
        """Wrap ``text`` into at most ``max_lines`` lines of ``width``, shrinking from ``size``.

        Only when even ``min_size`` needs more lines is the last line cut with "…".

        Returns:
            The lines and their font size.
        """
        lines = self.wrap(text, size, width, bold)
        while len(lines) > max_lines and size > min_size:
            size = max(min_size, int(size * 0.9))
            lines = self.wrap(text, size, width, bold)
        if len(lines) > max_lines:
            rest = " ".join(lines[max_lines - 1:])
            lines = lines[: max_lines - 1] + [self.text.fit(rest, size, width, bold, min_size=size)[0]]
        return lines, size

    def paragraph(self, img, text: str, x: int, y: int, width: int, size: int, color, bold=False, align="left", max_lines=3) -> int:
        """Draw wrapped text from baseline ``y``; returns the y below it."""
        lines, size = self.fit_lines(text, size, width, max_lines, max(12, int(size * 0.55)), bold)
        for line in lines:
            ax = x + width // 2 if align == "center" else x
            self.text.draw(img, line, (ax, y), size, color, bold=bold, align=align)
            y += int(size * 1.3)
        return y

    # ----------------------------------------------------------------- building blocks
    def panel(self, img, rect, image: np.ndarray | None, persons: Sequence[tuple[Person, BGR]], frame_size, mirrored: bool, label: str = "", color: BGR = (200, 200, 200)) -> None:
        """A framed view: a picture (fitted, optionally mirrored) with skeletons over it."""
        x, y, w, h = rect
        cv2.rectangle(img, (x, y), (x + w - 1, y + h - 1), _dim(self.colors.background, 1.6), -1)
        size = (image.shape[1], image.shape[0]) if image is not None else frame_size
        fx, fy, fw, fh = _fit(size, rect)
        if image is not None and fw > 0 and fh > 0:
            # Linear even when shrinking: INTER_AREA looks a little smoother but costs
            # several milliseconds on a 720p picture, every frame.
            small = cv2.resize(image, (fw, fh), interpolation=cv2.INTER_LINEAR)
            if mirrored:
                small = cv2.flip(small, 1)
            img[fy:fy + fh, fx:fx + fw] = small
            # Darken the picture a little so the skeleton and the text stand out.
            roi = img[fy:fy + fh, fx:fx + fw]
            cv2.convertScaleAbs(roi, roi, 0.75, 0)
        # Skeletons are drawn into a view of the panel, so a limb beyond the picture's
        # edge (someone very close to the lens) is cut at the frame, not drawn across the screen.
        inner = img[y:y + h, x:x + w]
        for person, pcolor in persons:
            draw_skeleton(inner, person, pcolor, mirrored=mirrored, rect=(fx - x, fy - y, fw, fh), thickness=max(2, self.px(4)))
        cv2.rectangle(img, (x, y), (x + w - 1, y + h - 1), color, max(2, self.px(3)))
        if label:
            # Within the panel: a long tag ("DIE ANDERE PERSON · beim Zuschauen") ran into the next one.
            label, size = self.text.fit(label, self.px(26), w - self.px(24), bold=True, min_size=self.px(18))
            tw = self.text.measure(label, size, bold=True)[0]
            cv2.rectangle(img, (x, y), (x + tw + self.px(24), y + self.px(40)), color, -1)
            self.text.draw(img, label, (x + self.px(12), y + self.px(30)), size, self.colors.background, bold=True)

    def privacy_line(self, img) -> None:
        bar_h = self.px(46)
        cv2.rectangle(img, (0, self.height - bar_h), (self.width, self.height), _dim(self.colors.background, 0.6), -1)
        # The line must stay true: when landmarks are saved (an explicit opt-in) it says so.
        key = "privacy_recording" if self.config.privacy.record_landmarks else "privacy"
        text = self.config.text(key)
        width = self.width - 2 * self.px(16)
        color = _dim(self.colors.text, 0.8)
        # (No dot before it: a dot by "recorded" reads as a camera's recording light.)
        line, size = self.text.fit(text, self.px(22), width, min_size=self.px(18))
        if line == text:
            self.text.draw(img, text, (self.width // 2, self.height - self.px(16)), size, color, align="center")
            return
        # Too long for one readable line: two smaller ones, so the promise is read whole
        # (cut at both screen edges it said "...wird nichts aufgezeichnet...").
        lines, size = self.fit_lines(text, self.px(18), width, 2, min_size=max(9, self.px(12)))
        pitch = int(size * 1.15)
        baseline = self.height - bar_h + (bar_h - pitch - size) // 2 + int(size * 0.78)
        for line in lines:
            self.text.draw(img, line, (self.width // 2, baseline), size, color, align="center")
            baseline += pitch

    def bar(self, img, x, y, w, h, value: float, color: BGR) -> None:
        cv2.rectangle(img, (x, y), (x + w, y + h), _dim(color, 0.3), -1)
        cv2.rectangle(img, (x, y), (x + int(w * float(np.clip(value, 0, 1))), y + h), color, -1)

    def raster_label_width(self, labels: Sequence[str]) -> int:
        """The label column of the raster rows: wide enough for the widest label, at most a third."""
        widest = max((self.text.measure(label, self.px(28), bold=True)[0] for label in labels), default=0)
        return min(max(self.px(190), widest + self.px(20)), (self.width - 2 * self.px(30)) // 3)

    def raster_row(self, img, x, y, w, h, spikes: Sequence[float], color: BGR, label: str, trace: np.ndarray | None = None,
                   label_w: int | None = None) -> None:
        """One neuron's last :data:`RASTER_SECONDS`, newest on the right: its activation as
        a shaded curve and each firing as a bold tick.

        ``label_w`` is the label column (default 190 px at 720 lines); rows shown together
        need the same one, or their time axes no longer line up.
        """
        label_w = self.px(190) if label_w is None else label_w
        text, size = self.text.fit(label, self.px(28), label_w - self.px(16), bold=True, min_size=self.px(18))
        self.text.draw(img, text, (x, y + h // 2 + size // 3), size, color, bold=True)
        lx = x + label_w
        lw = w - label_w
        cv2.rectangle(img, (lx, y), (lx + lw, y + h), _dim(self.colors.background, 1.8), -1)
        if trace is not None and len(trace) > 1:
            xs = lx + np.linspace(0, lw, len(trace)).astype(np.int32)
            ys = (y + h - 2 - np.clip(trace, 0, 1) * (h - 4)).astype(np.int32)
            poly = np.concatenate([np.stack([xs, ys], 1), [[xs[-1], y + h], [xs[0], y + h]]]).astype(np.int32)
            cv2.fillPoly(img, [poly], _dim(color, 0.35))
            cv2.polylines(img, [np.stack([xs, ys], 1).astype(np.int32)], False, _dim(color, 0.8), max(1, self.px(2)), cv2.LINE_AA)
        for ago in spikes:
            if 0 <= ago <= RASTER_SECONDS:
                sx = lx + int(lw * (1.0 - ago / RASTER_SECONDS))
                cv2.line(img, (sx, y + self.px(4)), (sx, y + h - self.px(4)), color, max(3, self.px(7)), cv2.LINE_AA)

    # ----------------------------------------------------------------- screens
    def render(self, view: KioskView) -> np.ndarray:
        img = self.canvas
        np.copyto(img, self._background)
        draw = {
            Phase.ATTRACT: self._attract,
            Phase.ENGAGE: self._engage,
            Phase.IMITATE: self._imitate,
            Phase.MIRROR: self._mirror,
            Phase.NO_CAMERA: self._no_camera,
        }[view.phase]
        draw(img, view)
        return img

    def _performer(self, img, rect, view: KioskView, label: str = "") -> None:
        clip = view.clip
        if clip is None:
            return
        image = clip.image(view.clip_index)
        performer = clip.performer(view.clip_index)
        persons = [(performer, self.colors.performer)] if performer is not None else []
        # Clips are shown as filmed: the performer is someone else, not a mirror.
        self.panel(img, rect, image, persons, clip.recording.frame_size, mirrored=False, label=label, color=self.colors.performer)

    def _you(self, img, rect, view: KioskView, label: str = "") -> None:
        persons = [(p, _dim(self.colors.text, 0.45)) for p in view.others]
        if view.visitor is not None:
            persons.append((view.visitor, self.colors.visitor))
        image = view.camera_image if self.config.display.show_camera_image else None
        self.panel(img, rect, image, persons, view.frame_size, mirrored=self.config.display.mirror, label=label, color=self.colors.visitor)

    def _attract(self, img, view: KioskView) -> None:
        m = self.px(30)
        panel_w = int(self.width * 0.55)
        self._performer(img, (m, m, panel_w - m, self.height - self.px(46) - 2 * m), view)
        x = panel_w + m
        w = self.width - x - m
        y = self.px(150)
        y = self.paragraph(img, self.config.text("title"), x, y, w, self.px(64), self.colors.text, bold=True, max_lines=2)
        y += self.px(30)
        # The invitation breathes slowly so the screen looks alive from across the room.
        pulse = 0.75 + 0.25 * np.sin(view.now * 2.0)
        self.paragraph(img, self.config.text("invitation"), x, y, w, self.px(44), _dim(self.colors.accent, pulse), max_lines=4)

    def _engage(self, img, view: KioskView) -> None:
        m = self.px(30)
        panel_w = int(self.width * 0.5)
        self._you(img, (m, m, panel_w - m, self.height - self.px(46) - 2 * m), view, self.config.text("you"))
        x = panel_w + m
        w = self.width - x - m
        y = self.px(180)
        y = self.paragraph(img, self.config.text("greeting"), x, y, w, self.px(54), self.colors.accent, bold=True, max_lines=3)
        y += self.px(30)
        self.paragraph(img, self.config.text("explanation"), x, y, w, self.px(38), self.colors.text, max_lines=4)

    def _two_panels(self, img, view: KioskView, top: int, bottom: int) -> tuple[tuple[int, int, int, int], tuple[int, int, int, int]]:
        m = self.px(30)
        w = (self.width - 3 * m) // 2
        h = bottom - top
        other = (m, top, w, h)
        you = (2 * m + w, top, w, h)
        seeing = f"{self.config.text('other')} \u00b7 {self.config.text('seeing')}"
        doing = f"{self.config.text('you')} \u00b7 {self.config.text('doing')}"
        self._performer(img, other, view, seeing)
        self._you(img, you, view, doing)
        return other, you

    def _imitate(self, img, view: KioskView) -> None:
        prompt = self.config.text("imitate", action=view.action_label.upper())
        width = self.width - self.px(60)
        text, size = self.text.fit(prompt, self.px(54), width, bold=True, min_size=self.px(40))
        if text == prompt:
            self.text.draw(img, text, (self.width // 2, self.px(70)), size, self.colors.text, bold=True, align="center")
            top = self.px(100)
        else:
            # Two lines before anything is cut (the action's name, at the end, is the point);
            # three when even small ones cannot hold it (a long label on a narrow 5:4 screen).
            max_lines = 2 if len(self.wrap(prompt, self.px(28), width, bold=True)) <= 2 else 3
            lines, size = self.fit_lines(prompt, self.px(44), width, max_lines, min_size=self.px(28), bold=True)
            baseline = self.px(24) + int(size * 0.75)
            for line in lines:
                self.text.draw(img, line, (self.width // 2, baseline), size, self.colors.text, bold=True, align="center")
                baseline += int(size * 1.2)
            top = baseline - int(size * 1.2) + int(size * 0.25) + self.px(20)
        bars_y = self.height - self.px(46) - self.px(70)
        other, you = self._two_panels(img, view, top, bars_y - self.px(20))
        # The neuron's glow for each channel, under each view.
        clip_act = float(view.clip.trace.activation[view.clip_index]) if view.clip is not None and len(view.clip.trace.activation) else 0.0
        for rect, value, color in ((other, clip_act, self.colors.performer), (you, view.visitor_activation, self.colors.visitor)):
            x, _, w, _ = rect
            # Each copy within its own bar's width: long labels drew OTHER's over YOU's.
            label, size = self.text.fit(view.action_label, self.px(26), w, bold=True, min_size=self.px(18))
            self.text.draw(img, label, (x, bars_y + self.px(26)), size, color, bold=True)
            self.bar(img, x, bars_y + self.px(38), w, self.px(22), value, color)
            # Where the neuron fires (activation 0.5, or the config's min_score if higher):
            # how near the visitor is, at a glance.
            mark = x + int(w * max(ON_LEVEL, self.config.matching.min_score))
            cv2.line(img, (mark, bars_y + self.px(32)), (mark, bars_y + self.px(66)), self.colors.text, max(2, self.px(3)))
        if view.seconds_left is not None:
            # A thin line along the top that shrinks as the time for this action runs out.
            frac = view.seconds_left / max(self.config.timing.imitate_timeout_s, 1e-6)
            cv2.line(img, (0, 2), (int(self.width * frac), 2), _dim(self.colors.text, 0.5), max(3, self.px(5)))
        if view.visitor_missing:
            x, y, w, h = you
            text, size = self.config.text("come_back"), self.px(34)
            # The box holds every line ("Where did you go? / Step back in view." is two).
            lines = min(len(self.wrap(text, size, w - self.px(20))), 2)
            bottom = y + h // 2 + int(size * 1.3) * (lines - 1) + int(size * 0.45) + self.px(14)
            cv2.rectangle(img, (x, y + h // 2 - self.px(50)), (x + w, bottom), self.colors.background, -1)
            self.paragraph(img, text, x + self.px(10), y + h // 2, w - self.px(20), size, self.colors.accent, align="center", max_lines=2)

    def _mirror(self, img, view: KioskView) -> None:
        accent = self.colors.accent
        cv2.rectangle(img, (0, 0), (self.width, self.px(130)), _dim(accent, 0.35), -1)
        self.paragraph(img, self.config.text("mirror", action=view.action_label.upper()), self.px(30), self.px(60),
                       self.width - self.px(60), self.px(46), self.colors.text, bold=True, align="center", max_lines=2)
        raster_h = self.px(70)
        raster_top = self.height - self.px(46) - 2 * raster_h - self.px(40)
        self._two_panels(img, view, self.px(150), raster_top - self.px(20))
        m = self.px(30)
        w = self.width - 2 * m
        other_label = self.config.text("other")
        you_label = self.config.text("you")
        label_w = self.raster_label_width((other_label, you_label))
        self.raster_row(img, m, raster_top, w, raster_h - self.px(8), view.other_spikes, self.colors.performer, other_label,
                        view.other_trace, label_w)
        self.raster_row(img, m, raster_top + raster_h, w, raster_h - self.px(8), view.you_spikes, self.colors.visitor, you_label,
                        view.you_trace, label_w)
        if view.seconds_left is not None and view.seconds_left < 1.5:
            # In the gap between the raster and the privacy line (above the raster it sat on
            # the panels' border).
            text, size = self.text.fit(self.config.text("next"), self.px(26), w)
            self.text.draw(img, text, (self.width - m, self.height - self.px(46) - self.px(14)), size,
                           _dim(self.colors.text, 0.7), align="right")
        # A celebratory frame that fades over the first second.
        strength = max(0.0, 1.0 - view.phase_time)
        if strength > 0:
            cv2.rectangle(img, (0, 0), (self.width - 1, self.height - 1), accent, max(4, int(self.px(24) * strength)))

    def _no_camera(self, img, view: KioskView) -> None:
        calm = self.colors.calm
        cx, cy = self.width // 2, int(self.height * 0.38)
        # A slowly breathing ring: the exhibit is alive and waiting, not broken.
        r = self.px(60) + int(self.px(8) * np.sin(view.now * 1.2))
        cv2.circle(img, (cx, cy), r, _dim(calm, 0.7), max(3, self.px(6)), cv2.LINE_AA)
        self.paragraph(img, self.config.text("camera_unavailable"), self.px(80), int(self.height * 0.62), self.width - self.px(160),
                       self.px(44), calm, align="center", max_lines=3)
