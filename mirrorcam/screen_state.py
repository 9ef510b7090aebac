"""What the screen shows: the frozen state a mode hands to the screen each frame, and the
spike history a mode keeps for it.

The mode that shows the screen (``live``, :mod:`mirrorcam.modes.live`) owns a
:class:`SpikeHistory` of its channels' firings and freezes whatever it shows into a
:class:`ScreenState` once a frame; a :class:`mirrorcam.screen.Screen` draws that and keeps
no state of its own.  Kept apart from the drawing so that the boundary between the two is
plain data: the mode builds these without touching OpenCV, and a test can check them
without a picture.

Example:
    >>> history = SpikeHistory(["wave_one_hand"])
    >>> you = ChannelView("YOU", (0, 150, 255))
    >>> state = ScreenState(channels=(you, None), now_ms=0.0, raster=history.snapshot(0.0))
    >>> state.raster.spikes
    ()
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from mirrorcam.containers import Firing, NeuronActivity, Person

BGR = tuple[int, int, int]


@dataclass(frozen=True)
class NeuronInfo:
    """What the screen shows of one neuron (one action template).

    Attributes:
        name: Template name as it appears in :class:`~mirrorcam.containers.NeuronActivity`'s ``names``.
        display_name: Name shown to visitors (any script, any length).
        preview: ``(K, 33, 3)`` landmarks of the template for its animated figure, or None.
    """

    name: str
    display_name: str = ""
    preview: np.ndarray | None = field(default=None, compare=False)

    @property
    def label(self) -> str:
        return self.display_name or self.name.replace("_", " ")

    @classmethod
    def from_template(cls, template) -> NeuronInfo:
        """From a :class:`mirrorcam.templates.Template` (or anything with those attributes)."""
        return cls(template.name, getattr(template, "display_name", "") or "", getattr(template, "preview", None))


@dataclass(frozen=True)
class ChannelView:
    """One side of the screen (YOU or OTHER) for one frame.

    Attributes:
        label: Big tag over the video ("YOU", "OTHER").
        subtitle: Small text after the tag ("doing", "seeing: clip wave_2").
        color: The channel's colour (glows, ticks, skeleton).
        image: BGR frame as captured (unmirrored), or None to draw skeletons on a dark panel.
        image_size: ``(width, height)`` the landmarks are normalised to.
        persons: People to draw.
        focus: Id of the person whose neurons this channel shows (drawn in colour;
            others grey), or None.
        activity: That person's neuron activity, or None.
        mirrored: Display flipped like a mirror.
        status: A message in the middle of the panel ("waiting for the camera...").
    """

    label: str
    color: BGR
    image: np.ndarray | None = field(default=None, compare=False)
    image_size: tuple[int, int] = (640, 480)
    persons: tuple[Person, ...] = ()
    focus: int | None = None
    activity: NeuronActivity | None = field(default=None, compare=False)
    mirrored: bool = False
    subtitle: str = ""
    status: str = ""


@dataclass(frozen=True)
class Spike:
    """One neuron firing on the raster.

    Attributes:
        t_ms: When it fired (screen clock; the end of the matched movement).
        neuron: Neuron index.
        channel: 0 for YOU, 1 for OTHER.
        score: Peak activation.
        duration_ms: How long the matched movement took (drawn as the tick's length).
    """

    t_ms: float
    neuron: int
    channel: int
    score: float = 1.0
    duration_ms: float = 0.0


@dataclass(frozen=True)
class MirrorEvent:
    """The same neuron fired for both channels within a few seconds.

    Attributes:
        neuron: Neuron index.
        t_ms: Time of the second firing (screen clock).
        first_channel: Channel that fired first (0 YOU, 1 OTHER).
        caption: One line explaining it to a visitor.
    """

    neuron: int
    t_ms: float
    first_channel: int
    caption: str


@dataclass(frozen=True)
class RasterView:
    """The spike raster's content: spikes and mirror events of the last ``window_ms``."""

    now_ms: float
    window_ms: float = 10_000.0
    spikes: tuple[Spike, ...] = ()
    mirrors: tuple[MirrorEvent, ...] = ()


@dataclass(frozen=True)
class DebugInfo:
    """Numbers for the debug overlay."""

    fps: float = 0.0
    timings_ms: Mapping[str, float] = field(default_factory=dict)
    latency_ms: float | None = None
    persons: int = 0
    model_variant: str = ""


@dataclass(frozen=True)
class ScreenState:
    """Everything one frame of the screen shows; built by a mode, drawn by :class:`~mirrorcam.screen.Screen`.

    Attributes:
        channels: ``(you, other)`` views; ``other`` may be None ("nobody to watch").
        now_ms: Screen clock, animates the template figures and the caption fade.
        raster: Spike raster content, or None to hide the raster.
        mirror: The latest mirror event (shown while younger than the screen's ``caption_ms``).
        paused: Show a PAUSED tag.
        help: Keys to list in the help overlay as ``(key, what)`` pairs, or None to hide it.
        debug: Debug overlay numbers, or None to hide it.
        notice: Big centred lines over the YOU panel (count-down while teaching), or ().
        toast: A short message at the bottom ("saved template 'bow'"), or "".
    """

    channels: tuple[ChannelView, ChannelView | None]
    now_ms: float = 0.0
    raster: RasterView | None = None
    mirror: MirrorEvent | None = None
    paused: bool = False
    help: tuple[tuple[str, str], ...] | None = None
    debug: DebugInfo | None = None
    notice: tuple[str, ...] = ()
    toast: str = ""


SPIKE_BAR_MAX_MS = 4000.0
"""A spike's bar on the raster is as long as its matched movement, up to this.  Actions
take 0.6-2.6 s; a match that dwelt (stalled frames, a half-pace copy) can span more, and
its bar would run back over the row's earlier spikes and read as one long firing."""


def mirror_caption(label: str, first_channel: int) -> str:
    """The mirror event's caption, e.g. "You did ARMS UP like them: ...".

    ``first_channel`` is the channel that fired first: if OTHER fired first the visitor
    copied the performer, else the performer did what the visitor did.
    """
    name = label.upper()
    if first_channel == 1:
        return f"You did {name} like them: the same {name} neuron fired for seeing and for doing"
    return f"They did {name} like you: the same {name} neuron fired for doing and for seeing"


class SpikeHistory:
    """Recent firings per channel and the mirror events they make (owned by a mode).

    Times are the mode's screen clock in milliseconds, so a camera and a clip with
    unrelated timestamps share one time axis.

    Args:
        names: Neuron names in screen order.
        labels: Display names (for captions), same order; defaults to the names.
        window_ms: How much history the raster shows.
        mirror_window_ms: Two channels firing the same neuron this close make a mirror event.

    Example:
        >>> h = SpikeHistory(["clap"], mirror_window_ms=3000)
        >>> h.add(1, [Firing("clap", 0, 0, 900, 800, 0.9)], now_ms=1000) is None
        True
        >>> h.add(0, [Firing("clap", 0, 0, 900, 800, 0.8)], now_ms=2500).neuron
        0
    """

    def __init__(
        self,
        names: Sequence[str],
        labels: Sequence[str] | None = None,
        window_ms: float = 10_000.0,
        mirror_window_ms: float = 4_000.0,
    ) -> None:
        if window_ms <= 0 or mirror_window_ms <= 0:
            raise ValueError("window_ms and mirror_window_ms must be > 0")
        if labels is not None and len(labels) != len(names):
            raise ValueError("labels must have one entry per name")
        self.names = tuple(names)
        self.labels = tuple(labels) if labels is not None else tuple(n.replace("_", " ") for n in names)
        self._index = {n: i for i, n in enumerate(self.names)}
        self.window_ms = float(window_ms)
        self.mirror_window_ms = float(mirror_window_ms)
        self._spikes: deque[Spike] = deque()
        self._mirrors: deque[MirrorEvent] = deque()
        self._used: set[int] = set()  # ids of spikes already paired into a mirror event
        self.latest_mirror: MirrorEvent | None = None

    def retire(self, channel: int) -> None:
        """``channel``'s spikes so far stay on the raster but make no more mirror events
        (OTHER moved on to another clip: its last action must not pair with YOU doing it
        after the clip has gone)."""
        self._used.update(id(s) for s in self._spikes if s.channel == channel)

    def with_neurons(self, names: Sequence[str], labels: Sequence[str]) -> SpikeHistory:
        """This history over a neuron list that keeps the current neurons in their rows and
        adds some after them (a newly taught action): its spikes and mirror events stay.
        Any other list gets an empty history."""
        out = SpikeHistory(names, labels, self.window_ms, self.mirror_window_ms)
        if tuple(names[: len(self.names)]) == self.names:
            out._spikes, out._mirrors, out._used = self._spikes, self._mirrors, self._used
            out.latest_mirror = self.latest_mirror
        return out

    def add(self, channel: int, firings: Iterable[Firing], now_ms: float, lag_ms: float = 0.0) -> MirrorEvent | None:
        """Record ``channel``'s firings; returns the mirror event they complete, if any.

        Args:
            channel: 0 for YOU, 1 for OTHER.
            firings: Firings completed this frame (unknown template names are ignored).
            now_ms: Screen clock now.
            lag_ms: How long ago (screen clock) the matched movement ended, if known.
        """
        if channel not in (0, 1):
            raise ValueError(f"channel must be 0 or 1, got {channel}")
        event = None
        for firing in firings:
            neuron = self._index.get(firing.template)
            if neuron is None:
                continue
            duration = float(np.clip(firing.end_ms - firing.start_ms, 0.0, SPIKE_BAR_MAX_MS))
            spike = Spike(now_ms - max(0.0, lag_ms), neuron, channel, float(firing.score), duration)
            partner = next(
                (
                    s for s in reversed(self._spikes)
                    if s.neuron == neuron and s.channel != channel and id(s) not in self._used
                    and spike.t_ms - s.t_ms <= self.mirror_window_ms
                ),
                None,
            )
            self._spikes.append(spike)
            if partner is not None:
                self._used.update((id(partner), id(spike)))
                event = MirrorEvent(neuron, spike.t_ms, partner.channel, mirror_caption(self.labels[neuron], partner.channel))
                self._mirrors.append(event)
                self.latest_mirror = event
        self._trim(now_ms)
        return event

    def _trim(self, now_ms: float) -> None:
        horizon = now_ms - max(self.window_ms, self.mirror_window_ms)
        while self._spikes and self._spikes[0].t_ms < horizon:
            self._used.discard(id(self._spikes.popleft()))
        while self._mirrors and self._mirrors[0].t_ms < now_ms - self.window_ms:
            self._mirrors.popleft()

    def snapshot(self, now_ms: float) -> RasterView:
        """The frozen raster content at ``now_ms``."""
        self._trim(now_ms)
        return RasterView(now_ms, self.window_ms, tuple(self._spikes), tuple(self._mirrors))


__all__ = ["BGR", "NeuronInfo", "ChannelView", "Spike", "MirrorEvent", "RasterView", "DebugInfo", "ScreenState",
           "SPIKE_BAR_MAX_MS", "mirror_caption", "SpikeHistory"]
