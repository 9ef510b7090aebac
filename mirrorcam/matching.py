"""Streaming subsequence DTW across a bank of templates: the mirror neurons.

Every frame, for every tracked person, a :class:`NeuronBank` updates the match of every
template against the most recent movement, with no window and no knowledge of when an
action starts: the streaming form of subsequence dynamic time warping (SPRING, Sakurai,
Faloutsos and Yamamuro, ICDE 2007), vectorised over all templates with numpy.

How one frame is processed:

1. The person's pose is embedded (:class:`~mirrorcam.embedding.Embedder`) and the
   stream is resampled to a fixed tick rate (``rate_hz``, 15 Hz): a 60 fps camera and a
   6 fps clip both give the matcher the same time base, and templates are stored at it.
2. Per tick, the frame distance to every template frame of every template is one
   matrix product for the input and the mirrored input together
   (:class:`~mirrorcam.frame_distance.TemplateMatrices`: a weighted squared distance,
   expanded; the input's trust is one per body part; what the input does not show
   costs a prior, in full for what the template moves, see
   :func:`~mirrorcam.frame_distance.unseen_weights`), then one DP step:
   each template frame may be reached from the previous frame (normal speed), from the
   same frame (the performer is slower, at most ``max_stall`` ticks in a row) or by
   skipping up to ``max_skip - 1`` frames (the performer is faster; the tick is charged
   the skipped frames too, as in SPRING).  A match may start on any tick.  Where the
   stream itself begins or ends mid-action (a clip cut tightly, a person who walks in
   waving), a match may also begin or end up to ``open_share`` of the template inside
   it, charged only for what was seen.  Every moving template is also matched at half
   its pace, as a slowed copy with a frame between each two of its own (see
   ``BankOptions.slowed_copies``).  Steps never
   go back in time, so the DP step is vectorised over all templates *and* all template
   frames at once.  A template with a ``velocity_weight`` adds a velocity channel to
   its frame distance: which way each body part is moving (:func:`~mirrorcam.frame_distance.velocity_features`),
   against which way the template's moves.
3. The score of a template is the mean frame distance along the best path that ends on
   its last frame now.  A motion gate compares how much the input moved along the path
   with how much the template moves, so a still pose near the middle of a small movement
   (the "hub" problem) does not match it.
4. Non-side-specific templates have a mirrored twin row; a template with variants
   (other styles of the action) has a row per prototype; the neuron takes the best
   activation of its rows, each against its own threshold.
5. Activation ``1 / (1 + (d / threshold) ** 4)`` is 0.5 at the template's calibrated
   threshold.  A neuron turns active above ``on_level`` and fires once per performance:
   when its activation stays below ``off_level`` for ``DROP_TICKS`` ticks, when a new
   match that overlaps the last one by at most a quarter of the template supersedes the
   peak (SPRING's reporting rule, with fuzzy ends), or when its activation has not risen
   for ``hold_ms`` (someone standing still after the movement).  Once the activation
   is saturated the peak stays on its window (a later one is the next repetition).
   Each firing counts a repetition, and drops the neuron's paths that began too early
   to be the next one (SPRING's reset after a report).
6. Lateral inhibition: a firing is dropped when other neurons explained most of its span
   better (a higher peak over more than half of it, by one firing or several together;
   between two saturated neurons, the lower match distance), so a jumping jack does not
   also count as ``arms_up``, nor two quick squats as a jump.

Example:
    >>> from mirrorcam.templates import builtin_library
    >>> from mirrorcam.performer import PerformerOptions, perform
    >>> bank = NeuronBank(builtin_library().templates)
    >>> fired = [f.template for pf in perform("squat", PerformerOptions(repeats=3)).frames
    ...          for act in bank.update(pf).values() for f in act.firings]
    >>> fired += [f.template for fs in bank.finish().values() for f in fs]
    >>> fired.count("squat")
    3
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from mirrorcam.containers import Firing, NeuronActivity, PoseFrame
from mirrorcam.embedding import DIM, MIRROR_FEATURES, Embedder, Embedding, mirror_vector
from mirrorcam.frame_distance import Block, TemplateMatrices

BIG = 1e9
OVERLAP_SHARE = 0.25  # of a template's length
MAX_TICK_GAP = 10_000  # ticks (11 min at 15 Hz): a longer gap in one person's stream is no movement
# How long a released firing stays among the recent ones that a later firing over the
# same span is checked against (the same span is not fired twice, an overlapping one
# is inhibited).  Templates last up to 4 s (taught ones), and most matches as long or
# shorter; one followed at a quarter of its pace (stalls) can span more, and a later
# firing that overlaps only its first part is then not checked against it.
RECENT_MS = 4000.0
# Ticks in a row below off_level that end a performance.  One is a dip: a generated wave
# at 0.6x fell for one tick after its first second (0.76 -> 0.26 -> 0.44 -> 0.99) and had
# fired for that second alone; the whole wave (activation 1.0) overlapped that firing
# and never fired.
DROP_TICKS = 2
# Activation of a match under half its threshold's distance (1 / (1 + 0.48^4)): past it,
# a neuron's peak is not moved to a later window (see NeuronBank._fire).
SATURATED = 0.95
# How much better than the peak a later window (one that starts over a quarter of the
# peak's span after it) must be to take it over, when the peak is not saturated: with 1 cm
# of landmark noise, generated claps scored 0.75-0.84 window by window, a window across
# two claps took the peak by a few hundredths and one clap in five was lost at every
# speed (see NeuronBank._fire).
LATER_MARGIN = 0.1


@dataclass(frozen=True)
class BankOptions:
    """Tuning of the matcher (defaults are what the README's figures were measured with).

    Attributes:
        rate_hz: Tick rate the stream is resampled to (templates are stored at it).
        max_stall: Most consecutive ticks one template frame may absorb (slowest speed
            is ``1 / (max_stall + 1)`` of the template's pace, half that on its slowed
            copy).
        max_skip: Most template frames one tick may advance (fastest speed).
        on_level: Activation at which a neuron turns active.
        off_level: Activation below which (for ``DROP_TICKS`` ticks in a row) an active
            neuron fires and rests (hysteresis).
        motion_floor: Input movement along a match, as a fraction of the template's own
            movement, below which the match is penalised.
        inhibition: Drop firings out-explained by another neuron over the same span.
        person_timeout_ms: Forget a person unseen for this long.
        activation_power: Steepness of the activation curve.
        settle_ms: With inhibition, how long a completed firing waits for a neuron that
            explains the same span better before it is emitted.
        hold_ms: An active (moving) neuron whose activation has not risen by 0.02 for
            this long fires: the performance is over though the match goes on.  Why: a
            person standing still after a squat matches the template's standing end, and
            with the stalls (and the slowed copy's) the path could dwell there for over
            4 s at full activation, so the squat fired 4.4 s after it ended (in the
            embedded demo, after OTHER had moved on to the next action).
        unseen_cost: Squared distance charged per unit weight of template features the
            input does not show (low visibility).
        unseen_context: Share of ``unseen_cost`` charged for what a template does not
            move, such as the legs of a wave: feature groups when the input hides them
            inside the picture, body parts when they are outside it (relative to the
            template's most moving group or part; see :func:`~mirrorcam.frame_distance.unseen_weights`).
        velocity_scale: Change per tick at which a body part counts as clearly moving,
            in the velocity channel of templates that use it (``velocity_weight``).
        open_share: Share of a template that may lie outside the stream: on a person's
            first tick a match may enter the template up to this far in (the action was
            under way before they were seen), and at :meth:`NeuronBank.finish` one may
            end up to this far short of the template's end (the clip stops mid-action).
            The unseen frames are not charged; the motion gate still asks for the
            template's whole movement.  0 turns it off.
        slowed_copies: Also match every moving template at half its pace: a copy with
            a frame halfway between each two of its own (its distances follow from the
            template's, see :meth:`~mirrorcam.frame_distance.TemplateMatrices.frame_distance`), and a template's match
            is the better of the two.  Why: SPRING keeps, per cell, the path with the
            lowest *sum*, so on a half-speed performance a path that follows the last
            half of the movement at full pace (half the ticks, so about half the sum)
            beat the one that follows all of it, and the motion gate then charged it for
            covering half the movement (the HAR wave at 0.5x: 0.89 -> 1.40 of its
            threshold).  On the copy the whole slow movement is the cheap path.
        reset_on_fire: A firing drops its neuron's paths that began too early to be its
            next repetition (SPRING's reset after a report, see ``NeuronBank._forget_fired``).
            :func:`best_distances` turns it off: it asks for the lowest distance anywhere
            in a stream, repetitions or not (with it on, the built-ins' calibration moved).
        workers: Threads a tick's template products and DP step are split over, by
            rows (each row is independent, so the result is the same to the bit).  0:
            one per CPU core, up to ``frame_distance.MAX_WORKERS``, for a bank of ``PARALLEL_CELLS`` DP
            cells or more, and 1 below that (the built-ins' 4,280 cells take about a
            millisecond, less than handing work to a thread is worth).  Why threads:
            numpy and OpenBLAS release the GIL, and a large bank's tick is memory-bound
            products and element-wise passes that two cores each run at their own speed.
    """

    rate_hz: float = 15.0
    max_stall: int = 3
    max_skip: int = 2
    on_level: float = 0.5
    off_level: float = 0.35
    motion_floor: float = 0.5
    inhibition: bool = True
    person_timeout_ms: float = 2000.0
    activation_power: float = 4.0
    unseen_cost: float = 0.25
    unseen_context: float = 0.1
    settle_ms: float = 1000.0
    hold_ms: float = 1500.0
    velocity_scale: float = 0.03
    open_share: float = 0.3
    slowed_copies: bool = True
    reset_on_fire: bool = True
    workers: int = 0

    def __post_init__(self) -> None:
        if not 1.0 <= self.rate_hz <= 120.0:
            raise ValueError(f"rate_hz must be between 1 and 120, got {self.rate_hz}")
        if self.max_stall < 0 or self.max_skip < 1 or self.max_skip > 4:
            raise ValueError("max_stall must be >= 0 and max_skip between 1 and 4")
        if not 0.0 < self.off_level < self.on_level < 1.0:
            raise ValueError(f"need 0 < off_level < on_level < 1, got {self.off_level}, {self.on_level}")
        if self.motion_floor < 0:
            raise ValueError(f"motion_floor must be >= 0, got {self.motion_floor}")
        if self.person_timeout_ms <= 0:
            raise ValueError("person_timeout_ms must be > 0")
        if self.settle_ms < 0:
            raise ValueError(f"settle_ms must be >= 0, got {self.settle_ms}")
        if not self.hold_ms > 0:
            raise ValueError(f"hold_ms must be > 0, got {self.hold_ms}")
        if self.activation_power <= 0:
            raise ValueError("activation_power must be > 0")
        if not 0.0 <= self.unseen_context <= 1.0:
            raise ValueError(f"unseen_context must be between 0 and 1, got {self.unseen_context}")
        if not self.velocity_scale > 0:
            raise ValueError(f"velocity_scale must be > 0, got {self.velocity_scale}")
        if not 0.0 <= self.open_share < 1.0:
            raise ValueError(f"open_share must be in [0, 1), got {self.open_share}")
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 0:
            raise ValueError(f"workers must be a whole number >= 0, got {self.workers!r}")


def _prototypes(template) -> tuple:
    """A template's prototypes (itself and its variants); plain template-like objects are their own."""
    return template.prototypes() if hasattr(template, "prototypes") else (template,)


def activation_of(distance: np.ndarray, threshold: np.ndarray, power: float = 4.0) -> np.ndarray:
    """Activation in [0, 1]: 0.5 at the threshold, near 1 for a close match, 0 for none
    (an infinite distance: :func:`threshold_ratio` gives it back as ``inf``)."""
    ratio = np.maximum(distance, 0.0) / np.maximum(threshold, 1e-9)
    act = 1.0 / (1.0 + np.power(np.minimum(ratio, 1e3), power))
    return np.where(np.isfinite(ratio), act, 0.0).astype(np.float32)


def threshold_ratio(activation: np.ndarray, power: float = 4.0) -> np.ndarray:
    """The inverse of :func:`activation_of`: match distance over threshold (1.0 at 0.5 activation).

    ``inf`` where the activation is 0 (no match yet).  How near a miss came, or how near
    an impostor came to firing, in the units every template shares.
    """
    a = np.clip(np.asarray(activation, np.float64), 0.0, 1.0)
    with np.errstate(divide="ignore"):
        return np.power((1.0 - a) / a, 1.0 / power)


class _Paths:
    """Per cell of one block, the best path that ends there now (none yet, unless ``blank``)."""

    def __init__(self, shape: tuple[int, int], blank: bool = False) -> None:
        # (blank: every cell is about to be written, as the DP step's output is.)
        make = np.empty if blank else np.zeros
        self.cost = np.empty(shape, np.float32) if blank else np.full(shape, BIG, np.float32)
        self.start = make(shape, np.int32)  # tick number the path started on (2^31 ticks: 4.5 years)
        self.length = make(shape, np.int32)  # ticks on the path
        self.stall = make(shape, np.int16)
        self.moved = make(shape, np.float32)


class _Track:
    """DP state of one person (or channel)."""

    def __init__(self, m: TemplateMatrices, n_neurons: int) -> None:
        self.paths = [_Paths((len(b.rows), b.k)) for b in m.blocks]
        self.tick = 0
        self.embedder = Embedder()
        self.last_emb: Embedding | None = None
        self.last_ms: float | None = None
        self.next_tick: float | None = None
        self.prev_tick_x: np.ndarray | None = None
        self.prev_tick_v: np.ndarray | None = None
        n = n_neurons
        self.activation = np.zeros(n, np.float32)
        self.active = np.zeros(n, bool)
        self.reps = np.zeros(n, np.int64)
        self.peak = np.zeros(n, np.float64)
        self.rise_ms = np.zeros(n, np.float64)  # when the activation last rose by 0.02 ...
        self.rise_level = np.zeros(n, np.float64)  # ... and to what (hold_ms counts from there)
        self.peak_start = np.zeros(n, np.float64)
        self.peak_end = np.zeros(n, np.float64)
        self.peak_dist = np.full(n, np.inf)
        self.peak_tol = np.zeros(n)  # the overlap allowance (ms) of the prototype at the peak ...
        self.last_tol = np.zeros(n)  # ... and at the last firing's
        self.last_end = np.full(n, -BIG)
        self.recent: list[Firing] = []  # firings kept briefly for lateral inhibition
        self.pending: list[Firing] = []  # completed, waiting settle_ms for a better explanation
        self.distance = np.full(n, np.inf, np.float32)
        self.low_ticks = np.zeros(n, np.int32)  # ticks in a row below off_level
        self.recent_frames: list[tuple[float, Embedding]] = []  # the last tick's camera frames (velocity)


class NeuronBank:
    """A bank of template neurons matched continuously against every tracked person.

    Args:
        templates: :class:`~mirrorcam.templates.Template` objects (any object with
            ``name``, ``kind``, ``side_specific``, ``frames``, ``weights``,
            ``importance`` and ``threshold`` works).
        options: Matcher tuning.

    Raises:
        ValueError: No templates, or a template with the wrong feature size, a
            threshold that is not positive, or a rate other than the bank's.
    """

    def __init__(self, templates: Sequence, options: BankOptions | None = None) -> None:
        templates = tuple(templates)
        if not templates:
            raise ValueError("a NeuronBank needs at least one template")
        per_template = [_prototypes(t) for t in templates]
        for t, protos in zip(templates, per_template):
            for proto in protos:
                frames = np.asarray(proto.frames)
                if frames.ndim != 2 or frames.shape[1] != DIM or len(frames) < 1:
                    raise ValueError(f"template {t.name!r} has frames of shape {frames.shape}, expected (K, {DIM})")
                if not float(proto.threshold) > 0:
                    raise ValueError(f"template {t.name!r} has a non-positive threshold")
        self.options = options or BankOptions()
        for t in templates:
            # A template is a sequence of ticks: at another rate it would play at another speed.
            if getattr(t, "rate_hz", self.options.rate_hz) != self.options.rate_hz:
                raise ValueError(f"template {t.name!r} is stored at {t.rate_hz:g} Hz, the bank ticks at {self.options.rate_hz:g} Hz")
        self.templates = templates
        self.names: tuple[str, ...] = tuple(t.name for t in templates)
        # One DP row per prototype (a template and its variants), grouped by neuron.
        protos = [p for group in per_template for p in group]
        self._m = TemplateMatrices(protos, self.options)
        counts = np.array([len(group) for group in per_template])
        self._offsets = None if len(protos) == len(templates) else np.concatenate([[0], np.cumsum(counts)[:-1]])
        self._row_neuron = np.repeat(np.arange(len(templates)), counts)
        self._static = np.array([t.kind == "static" for t in templates], bool)
        # How far a new match may reach back into the last firing of the same neuron, per
        # prototype (the one matching speaks for the neuron: a style may be longer or
        # shorter than the main one).  A movement that starts and ends standing has fuzzy
        # ends: the last firing's path keeps the standing after it, the next one's the
        # standing before it.
        self._overlap_ms = np.array([max(2.0, OVERLAP_SHARE * len(p.frames)) * self.tick_ms for p in protos])
        # Per block, each DP row's neuron and overlap allowance (see _forget_fired).
        rows = self._m.row_template
        self._block_rows = tuple((self._row_neuron[rows][b.rows], self._overlap_ms[rows][b.rows]) for b in self._m.blocks)
        self._tracks: dict[int, _Track] = {}
        self._carried_reps: dict[int, np.ndarray] = {}  # see carry_counts

    @property
    def tick_ms(self) -> float:
        return 1000.0 / self.options.rate_hz

    def reset(self) -> None:
        """Forget every person's state (call between clips)."""
        self._tracks.clear()
        self._carried_reps.clear()

    def carry_counts(self, old: "NeuronBank") -> None:
        """Start everyone ``old`` follows with the repetitions it counted for them, for
        the neurons both banks have.

        A bank's templates are fixed, so a live screen that learns an action builds a new
        bank; with this its rows keep their counts (they had restarted at zero).  What
        else a person's stream held (a movement under way, the smoothing) starts afresh.

        Example:
            >>> from mirrorcam.templates import builtin_library
            >>> squat, clap = builtin_library().get("squat"), builtin_library().get("clap")
            >>> bank = NeuronBank([squat])  # the screen counts squats with it...
            >>> bigger = NeuronBank([squat, clap])  # ...until it learns an action
            >>> bigger.carry_counts(bank)  # the squats counted so far go on counting
        """
        index = {name: i for i, name in enumerate(self.names)}
        for key, tr in old._tracks.items():
            reps = np.zeros(len(self.names), np.int64)
            for name, n in zip(old.names, tr.reps):
                if name in index:
                    reps[index[name]] = n
            self._carried_reps[key] = reps

    def update(self, pose_frame: PoseFrame) -> dict[int, NeuronActivity]:
        """Advance every present person's neurons to this frame.

        A person unseen for ``person_timeout_ms`` has left: the firings their stream still
        holds are released (as :meth:`finish` does, but without its open end: the pose stage
        losing someone mid-movement is not a clip cut there; measured, it added 2 more false
        fires to the leave-one-subject-out eval's 28), in an activity of their own.  Why:
        someone who squats and walks out of the picture within the settle time would
        otherwise lose that squat.

        Returns:
            One :class:`NeuronActivity` per person present, keyed by person id, and one
            per person who has just left (their last firings; ``active`` all False).
        """
        now = float(pose_frame.timestamp_ms)
        timeout = self.options.person_timeout_ms
        gone = [pid for pid, tr in self._tracks.items() if tr.last_ms is not None and now - tr.last_ms > timeout]
        out: dict[int, NeuronActivity] = {pid: self._close(pid, now) for pid in gone}
        for person in pose_frame.persons:
            track = self._tracks.get(person.id)
            if track is None:
                track = self._new_track(person.id)
            emb = track.embedder.update(person, now, pose_frame.image_size)
            activity = self._advance(track, person.id, emb, now)
            if person.id in out:  # back after a long absence: the old stream's last firings come first
                activity = replace(activity, firings=out[person.id].firings + activity.firings)
            out[person.id] = activity
        return out

    def _close(self, pid: int, now: float) -> NeuronActivity:
        """End and forget the stream of a person who has left."""
        tr = self._tracks.pop(pid)
        firings = self._end_stream(tr, pid, open_end=False)
        return NeuronActivity(timestamp_ms=now, person=pid, names=self.names, activation=tr.activation.copy(),
                              active=np.zeros_like(tr.active), reps=tr.reps.copy(), firings=tuple(firings))

    def update_embedding(self, channel: int, embedding: Embedding, timestamp_ms: float) -> NeuronActivity:
        """Advance one channel with a ready-made embedding (teaching, evaluation, tests)."""
        track = self._tracks.get(channel)
        if track is None:
            track = self._new_track(channel)
        return self._advance(track, channel, embedding, float(timestamp_ms))

    # -- internals -------------------------------------------------------------------
    def _advance(self, track: _Track, pid: int, emb: Embedding, now: float) -> NeuronActivity:
        firings: list[Firing] = []
        if track.last_ms is not None and now < track.last_ms:
            now = track.last_ms  # timestamps never run backwards for the matcher
        if track.next_tick is None:
            track.next_tick = now
        prev_emb, prev_ms = track.last_emb, track.last_ms
        vel = self._velocity(track, emb, now) if self._m.uses_velocity else None
        # Guards against a tick loop without end (a crafted recording at 1e19 ms had hung
        # replay): a gap of more than MAX_TICK_GAP ticks jumps the grid to now, and where
        # float64 can no longer add a tick to the time (1e19 + 66.7 == 1e19) one tick is
        # all this frame gets.
        if now - track.next_tick > MAX_TICK_GAP * self.tick_ms:
            track.next_tick = now
        while track.next_tick <= now + 1e-6:
            t = track.next_tick
            if prev_emb is None or prev_ms is None or now - prev_ms < 1e-6:
                x, v, seen = emb.vector, emb.weight, emb.in_view
            else:
                # Linear interpolation to the tick: slow cameras fill the grid in.
                u = (t - prev_ms) / (now - prev_ms)
                u = min(max(u, 0.0), 1.0)
                x = prev_emb.vector + u * (emb.vector - prev_emb.vector)
                v = np.minimum(prev_emb.weight, emb.weight) if u < 1.0 else emb.weight
                seen = np.minimum(prev_emb.in_view, emb.in_view) if u < 1.0 else emb.in_view
            firings += self._tick(track, pid, x.astype(np.float32), v.astype(np.float32), t, vel, seen)
            track.next_tick = t + self.tick_ms
            if track.next_tick <= t:
                break
        track.last_emb, track.last_ms = emb, now
        return NeuronActivity(
            timestamp_ms=now,
            person=pid,
            names=self.names,
            activation=track.activation.copy(),
            active=track.active.copy(),
            reps=track.reps.copy(),
            firings=tuple(firings),
        )

    def _velocity(self, tr: _Track, emb: Embedding, now: float) -> tuple[np.ndarray, np.ndarray] | None:
        """The change per tick of the camera's own frames (and its trust), or None at the start.

        Measured from the newest frame back to the latest one at least a tick older: over
        a tick, not one frame (at 30 fps and more the landmarks' frame-to-frame jitter reads
        as movement: noisy generated bend and arms_up performers stopped firing), and at
        the newest frame rather than between interpolated ticks (measured: the ticks'
        differences gave 0.48 instead of 0.24 false fires/min, 40.5 instead of 43.2 % at
        half speed, the same accuracy).
        """
        recent = tr.recent_frames
        out = None
        if recent:
            base_ms, base = recent[0]
            for ms, e in recent:
                if now - ms >= self.tick_ms - 1e-6:
                    base_ms, base = ms, e
            if now - base_ms > 1e-6:
                change = (emb.vector - base.vector) * (self.tick_ms / (now - base_ms))
                out = change.astype(np.float32), np.minimum(base.weight, emb.weight).astype(np.float32)
        if recent and now - recent[-1][0] < 1e-6:
            # The same instant again (a stalled or repeated clock): the newer frame supersedes
            # it.  Appended, such frames would never age out and the list would grow forever.
            recent[-1] = (now, emb)
        else:
            recent.append((now, emb))
        while len(recent) > 1 and now - recent[1][0] >= self.tick_ms - 1e-6:
            recent.pop(0)
        return out

    def _tick(
        self, tr: _Track, pid: int, x: np.ndarray, v: np.ndarray, t: float, vel: tuple | None = None,
        in_view: np.ndarray | None = None,
    ) -> list[Firing]:
        m = self._m
        xs = np.stack([x, mirror_vector(x)])
        vs = np.stack([v, v[MIRROR_FEATURES]])
        ins = None if in_view is None else np.stack([in_view, in_view[MIRROR_FEATURES]]).astype(np.float32)
        if vel is not None:
            change, trust = vel
            d = m.frame_distance(xs, vs, np.stack([change, mirror_vector(change)]), np.stack([trust, trust[MIRROR_FEATURES]]), ins)
        else:
            d = m.frame_distance(xs, vs, ins=ins)
        # Movement of the input since the last tick, in each template's feature weighting.
        if tr.prev_tick_x is None:
            step = np.zeros(m.n_rows, np.float32)
        else:
            vv = np.minimum(vs, tr.prev_tick_v)
            step = m.steps((xs - tr.prev_tick_x) ** 2, vv).astype(np.float32)
        tr.prev_tick_x, tr.prev_tick_v = xs, vs
        tr.tick += 1
        for block, paths, block_d in zip(m.blocks, tr.paths, d):
            self._dp(paths, block, block_d, step[block.rows, None], tr.tick)
        return self._activate(tr, pid, t, *self._row_matches(tr))

    def _match_distance(self, paths: _Paths, block: Block, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per row of a block, the match distance of the best path ending on template frame
        ``cols[row]`` now (its mean frame distance over the motion gate; inf for no path),
        and its start tick."""
        o = self.options
        r_idx = np.arange(len(block.rows))
        total = paths.cost[r_idx, cols]
        mean = total / np.maximum(paths.length[r_idx, cols], 1)
        # Motion gate: a still pose must not match a movement by sitting in its middle.
        if o.motion_floor > 0:
            ratio = np.where(block.motion > 1e-6, paths.moved[r_idx, cols] / np.maximum(block.motion, 1e-6), 1.0)
            gate = np.clip(ratio / o.motion_floor, 0.05, 1.0)
        else:
            gate = np.ones(len(r_idx))
        return np.where(total < BIG / 2, mean / gate, np.inf), paths.start[r_idx, cols]

    def _row_matches(self, tr: _Track, stream_end: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Per row, the match distance and start tick of its best path ending now, on the
        template or its slowed copy: on the last frame, or at a stream's end on the best
        frame from ``open_end`` on (a movement still under way may end up to
        ``open_share`` of its template short)."""
        eff, start = np.full(self._m.n_rows, np.inf), np.zeros(self._m.n_rows, np.int64)
        for block, paths in zip(self._m.blocks, tr.paths):
            best, best_start = self._match_distance(paths, block, block.end_col)
            if stream_end:
                for c in range(int(block.open_end.min()), block.k):
                    dist, st = self._match_distance(paths, block, np.clip(c, block.open_end, block.end_col))
                    better = dist < best
                    best[better], best_start[better] = dist[better], st[better]
            better = best < eff[block.rows]
            eff[block.rows[better]], start[block.rows[better]] = best[better], best_start[better]
        return eff, start

    def _activate(self, tr: _Track, pid: int, t: float, eff: np.ndarray, start_tick: np.ndarray) -> list[Firing]:
        """Activations at tick time ``t`` from every row's match distance ``eff`` and start tick."""
        m, o = self._m, self.options
        starts = t - (tr.tick - start_tick) * self.tick_ms
        # A template takes the better of its own and its mirrored row.
        n, mi = m.n_prototypes, m.mirror_idx
        dist, st = eff[:n].copy(), starts[:n].copy()
        mirrored_better = eff[n:] < dist[mi]
        dist[mi[mirrored_better]] = eff[n:][mirrored_better]
        st[mi[mirrored_better]] = starts[n:][mirrored_better]
        act = activation_of(dist, m.thresholds, o.activation_power)
        if self._offsets is not None:
            # The neuron's best prototype (ties: the first) speaks for it.
            best = np.maximum.reduceat(act, self._offsets)
            rows_idx = np.arange(len(act))
            first = np.minimum.reduceat(np.where(act >= best[self._row_neuron], rows_idx, len(act)), self._offsets)
            act, st, dist, overlap = best, st[first], dist[first], self._overlap_ms[first]
        else:
            overlap = self._overlap_ms
        tr.distance = dist.astype(np.float32)
        tr.activation = act
        return self._fire(tr, pid, act, st, t, overlap)

    def _dp(self, paths: _Paths, block: Block, d: np.ndarray, step: np.ndarray, tick: int) -> None:
        """One SPRING step for all rows and template frames of a block at once (no dependency within a tick).

        Written for speed (it was half of a tick's cost for a large bank): every choice
        of predecessor is applied by arithmetic with the 0/1 mask of where it wins
        (``new += won * (candidate - new)``), not by masked assignment, which numpy runs
        element by element with a branch each (``np.copyto(..., where=)`` took 0.6-0.7 ms
        on a 2,000 x 60 array, a subtraction 0.02 ms); and shifts along the template run
        on the flat arrays, one contiguous operation instead of one per row.  Advancing
        ``s`` frames is then a shift by ``s`` of the flat array; the first ``s`` columns
        of each row, filled from the row above, are made unreachable (or entered fresh)
        before they are used.  1,000 templates x 60 frames, none side-specific: 4.0 ->
        1.6 ms a tick for this step, with the same result to the bit
        (``test_the_vectorised_dp_step_equals_the_cell_by_cell_reference``).  Rows
        never depend on each other, so a large bank's rows are split over threads
        (``BankOptions.workers``).
        """
        out = _Paths(paths.cost.shape, blank=True)
        self._m.split.run(lambda lo, hi: self._dp_rows(paths, block, d, step, tick, out, lo, hi), len(block.rows))
        paths.cost, paths.start, paths.length, paths.moved, paths.stall = out.cost, out.start, out.length, out.moved, out.stall

    def _dp_rows(
        self, paths: _Paths, block: Block, d: np.ndarray, step: np.ndarray, tick: int, out: _Paths, lo: int, hi: int,
    ) -> None:
        """:meth:`_dp` for rows ``lo..hi``: reads ``paths``, writes ``out`` (contiguous row
        slices, so the flat views below are views, not copies)."""
        o = self.options
        rows = slice(lo, hi)
        cost, start, length, stall, moved = paths.cost[rows], paths.start[rows], paths.length[rows], paths.stall[rows], paths.moved[rows]
        d, step = d[rows], step[rows]
        big = np.float32(BIG)
        # Stay on the same template frame (the performer is slower), a bounded number of times.
        best = out.cost[rows]
        np.maximum(cost, (stall >= o.max_stall) * big, out=best)
        n_start, n_len, n_moved, n_stall = out.start[rows], out.length[rows], out.moved[rows], out.stall[rows]
        n_start[...], n_len[...] = start, length
        moved_on = moved + step  # the path's movement, this tick's included
        n_moved[...] = moved_on
        np.add(stall, np.int16(1), out=n_stall)
        cost_f, start_f, length_f, moved_f = cost.ravel(), start.ravel(), length.ravel(), moved_on.ravel()
        n_start_f, n_len_f, n_moved_f = n_start.ravel(), n_len.ravel(), n_moved.ravel()
        # Skipping template frames is not free: this tick is also charged the frames it
        # skips (SPRING's own "template advances, input stays" steps).  Free skips let an
        # oscillating template (a wave) match a slow sweep by landing on every other
        # frame, between its extremes.
        d_f = d.ravel()
        csum = np.cumsum(d, axis=1).ravel() if o.max_skip > 2 else None
        c = np.empty_like(best)
        c_f = c.ravel()
        for s in range(1, o.max_skip + 1):
            # Advance s frames (s = 1 normal speed, s > 1 faster).  Frame 0 may also be
            # entered fresh on any tick at no cost: a match can start anywhere (SPRING).
            c_f[s:] = cost_f[:-s]
            if s == 2:
                c_f[2:] += d_f[1:-1]  # frame k-1
            elif s > 2:
                c_f[s:] += csum[s - 1 : -1] - csum[:-s]  # frames k-s+1 .. k-1
            c[:, :s] = big  # filled from the row above by the flat shift: unreachable
            if s == 1:
                c[:, 0] = 0.0
            won = c < best
            np.minimum(best, c, out=best)
            w = won.ravel()[s:]
            n_start_f[s:] += w * (start_f[:-s] - n_start_f[s:])
            n_len_f[s:] += w * (length_f[:-s] + np.int32(s - 1) - n_len_f[s:])
            # Floats are chosen by multiplying by 0 or 1 and adding, which is exact.
            n_moved_f[s:] = n_moved_f[s:] * ~w + moved_f[:-s] * w
            n_stall *= ~won
            if s == 1:
                # Entered fresh (the flat shift above gave these the row above's last frame).
                fresh = won[:, 0]
                n_start[fresh, 0] = tick
                n_len[fresh, 0] = 0
                n_moved[fresh, 0] = 0.0
        if tick == 1:
            # The stream's first tick for this person: an action already under way may be
            # entered part-way in (BankOptions.open_share); what came before is not charged.
            entry = block.open_entry[rows]
            best[entry] = 0.0
            n_start[entry] = tick
            n_len[entry] = 0
            n_moved[entry] = 0.0
            n_stall[entry] = 0
        best += d
        np.minimum(best, big, out=best)
        n_len += 1

    def _fire(self, tr: _Track, pid: int, act: np.ndarray, start: np.ndarray, t: float, tol: np.ndarray) -> list[Firing]:
        """Turn neurons on and off from their activations ``act``; ``tol`` is each neuron's
        overlap allowance (ms) for the prototype now speaking for it.

        The allowance between two matches is the mean of their prototypes' (each has its
        own fuzzy end): a short style's firing followed by a long prototype's match had
        been given the long one's whole allowance, most of the short firing.
        """
        o = self.options
        superseded = tr.active & ~self._static & (start > tr.peak_end - 0.5 * (tol + tr.peak_tol)) & (act >= o.on_level)
        tr.low_ticks = np.where(act < o.off_level, tr.low_ticks + 1, 0)
        dropped = tr.active & (tr.low_ticks >= DROP_TICKS)
        # (A held pose is over when it is released: it keeps to the other two.)
        held = tr.active & ~self._static & (t - tr.rise_ms >= o.hold_ms)
        fired = superseded | dropped | held
        for i in np.flatnonzero(fired):
            tr.pending.append(
                Firing(self.names[i], pid, float(tr.peak_start[i]), float(tr.peak_end[i]), float(tr.peak_end[i]), float(tr.peak[i]),
                       float(tr.peak_dist[i]))
            )
            tr.active[i] = False
            tr.last_end[i], tr.last_tol[i] = tr.peak_end[i], tr.peak_tol[i]
        if o.reset_on_fire and fired.any():
            self._forget_fired(tr, fired, t)
        # Turn on: above on_level with a match that does not overlap the last firing.
        on = ~tr.active & (act >= o.on_level) & (start >= tr.last_end - 0.5 * (tol + tr.last_tol))
        tr.active |= on
        tr.peak[on] = -1.0
        # (Measured from the level of the last rise, not from the peak, which follows every
        # small step: a slow steady rise had been "held" and fired half-way up.)
        risen = on | (tr.active & (act > tr.rise_level + 0.02))
        tr.rise_ms[risen] = t
        tr.rise_level[risen] = act[risen]
        # A peak stays on its window: a later one (starting over a quarter of the peak's
        # span after it) that is higher by a hair is the next repetition of a periodic
        # movement, not a better fit of this one.  It takes the peak only when clearly
        # better (LATER_MARGIN), never once the peak is saturated.  The peak had slid along
        # three waves at 1.8x (0.53-1.33 s, then 0.87-1.8, then 1.33-2.13) and the first
        # was lost; with landmark noise the same happened below saturation (claps).
        later = start > tr.peak_start + OVERLAP_SHARE * (tr.peak_end - tr.peak_start)
        slid = later & ((tr.peak >= SATURATED) | (act < tr.peak + LATER_MARGIN))
        up = tr.active & (act > tr.peak) & ~slid
        tr.peak[up] = act[up]
        tr.peak_dist[up] = tr.distance[up]
        tr.peak_tol[up] = tol[up]
        tr.peak_start[up] = start[up]
        tr.peak_end[up] = t  # (the peak's time: a match is scored on its last tick)
        return self._release(tr, t - (o.settle_ms if o.inhibition else 0.0))

    def _forget_fired(self, tr: _Track, fired: np.ndarray, t: float) -> None:
        """Drop the paths of the neurons that just ``fired`` that began too early for their
        next repetition (SPRING's reset after a report: the next match is disjoint).

        A path may begin at most half of the two prototypes' overlap allowances before the
        last firing's end (``_fire``'s turn-on rule); one that begins earlier can never
        fire, yet as a cell's best path it hid a later-starting one that could: waves
        back to back, whose first firing straddled two of them, then waited for the best
        paths' starts to move past the limit and lost a wave each time.
        """
        for paths, (neuron, tol) in zip(tr.paths, self._block_rows):
            rows = np.flatnonzero(fired[neuron])
            if not len(rows):
                continue
            n = neuron[rows]
            limit_ms = tr.last_end[n] - 0.5 * (tol[rows] + tr.last_tol[n])
            limit_tick = tr.tick - (t - limit_ms) / self.tick_ms - 1e-6
            early = paths.start[rows] < limit_tick[:, None]
            paths.cost[rows] = np.where(early, np.float32(BIG), paths.cost[rows])

    def _release(self, tr: _Track, until_ms: float) -> list[Firing]:
        """Emit pending firings that ended before ``until_ms`` unless another neuron out-explained them."""
        ready = [f for f in tr.pending if f.end_ms <= until_ms]
        if not ready:
            return []
        tr.pending = [f for f in tr.pending if f.end_ms > until_ms]
        out = []
        for f in ready:
            if self.options.inhibition and self._inhibited(tr, f, ready):
                continue
            tr.reps[self.names.index(f.template)] += 1
            out.append(f)
            tr.recent.append(f)
        horizon = until_ms - RECENT_MS
        tr.recent = [f for f in tr.recent if f.end_ms >= horizon]
        return out

    def _inhibited(self, tr: _Track, f: Firing, ready: list[Firing]) -> bool:
        """True when other neurons explain most of ``f``'s span with higher peaks.

        Most: more than half of it, by one firing or by several together (two quick
        squats must not leave a jump matched across both to fire, though each squat
        covers less than half of it).  A span the same neuron already fired for (its
        recent firings) is not fired again; its prototypes (styles, taught examples) are
        one neuron already, merged before firing (``reduceat`` in ``_tick``).
        """
        span = max(f.end_ms - f.start_ms, self.tick_ms)
        better: list[tuple[float, float]] = []  # spans explained better, as (start, end)
        for j in np.flatnonzero(tr.active):
            # (Not f's own neuron: its next repetition may begin a quarter of the template
            # before f ends, and that overlap must not help another neuron drop f.)
            if self.names[j] != f.template and _explains_better(tr.peak[j], tr.peak_dist[j], f):
                better.append((tr.peak_start[j], tr.peak_end[j]))
        for g in tr.recent:
            if g.template == f.template:
                if min(f.end_ms, g.end_ms) - max(f.start_ms, g.start_ms) > 0.5 * span:
                    return True
            elif _explains_better(g.score, g.distance, f):
                better.append((g.start_ms, g.end_ms))
        better += [(g.start_ms, g.end_ms) for g in [*tr.pending, *ready]
                   if g.template != f.template and _explains_better(g.score, g.distance, f)]
        return _covered(better, f.start_ms, f.end_ms) > 0.5 * span

    def finish(self) -> dict[int, tuple[Firing, ...]]:
        """Release every pending firing (call at the end of a clip, before :meth:`reset`).

        With inhibition on, a firing is held back ``settle_ms`` so that a neuron that
        explains the same movement better can still claim it; at the end of a stream
        nothing more can come, so the held firings are decided now.
        """
        out = {}
        for pid, tr in self._tracks.items():
            fired = self._end_stream(tr, pid)
            if fired:
                out[pid] = tuple(fired)
        return out

    def _end_stream(self, tr: _Track, pid: int, open_end: bool = True) -> list[Firing]:
        """The firings a person's stream still holds when it ends (a clip's end, or they left)."""
        ended = self._match_cut_off(tr, pid) if open_end else []
        # Active neurons' current peaks become firings too: the stream has ended.
        for i in np.flatnonzero(tr.active):
            tr.pending.append(Firing(self.names[i], pid, float(tr.peak_start[i]), float(tr.peak_end[i]),
                                     float(tr.peak_end[i]), float(tr.peak[i]), float(tr.peak_dist[i])))
            tr.active[i] = False
        return ended + self._release(tr, np.inf)

    def _match_cut_off(self, tr: _Track, pid: int) -> list[Firing]:
        """A last update as the stream ends: a movement still under way may end up to
        ``open_share`` of its template short (each row's best such end frame counts)."""
        if tr.tick == 0 or not any((b.open_end < b.end_col).any() for b in self._m.blocks):
            return []
        return self._activate(tr, pid, tr.next_tick - self.tick_ms, *self._row_matches(tr, stream_end=True))

    # -- introspection ---------------------------------------------------------------
    def distances(self, person: int) -> np.ndarray | None:
        """Latest per-template match distance of ``person`` (None if unknown)."""
        tr = self._tracks.get(person)
        return None if tr is None else tr.distance.copy()

    def _new_track(self, key: int) -> _Track:
        track = self._tracks[key] = _Track(self._m, len(self.templates))
        carried = self._carried_reps.pop(key, None)
        if carried is not None:
            track.reps[:] = carried
        return track

    def people(self) -> set[int]:
        """Ids of the persons the bank follows (present, or absent for less than ``person_timeout_ms``)."""
        return set(self._tracks)

    def activations(self) -> dict[int, np.ndarray]:
        """Latest per-template activation of every person (after :meth:`finish`: the stream end's)."""
        return {pid: tr.activation.copy() for pid, tr in self._tracks.items()}


def _covered(spans: list[tuple[float, float]], start: float, end: float) -> float:
    """How much of ``[start, end]`` the union of ``spans`` covers (ms).

    Example:
        >>> _covered([(0, 40), (30, 60), (90, 200)], 10, 100)
        60.0
    """
    covered, reach = 0.0, start
    for a, b in sorted(spans):
        a, b = max(float(a), reach), min(float(b), end)
        if b > a:
            covered += b - a
            reach = b
    return covered


def _explains_better(score: float, distance: float, f: Firing) -> bool:
    """Whether a firing with ``score`` and ``distance`` out-explains ``f``.

    The higher activation wins; when both are saturated (within 0.05 of each other above
    0.9), the lower match distance: a loose neuron must not out-fire a tight one on the
    tight one's own movement just because both are far below their thresholds.
    """
    if min(score, f.score) > 0.9 and abs(score - f.score) < 0.05:
        return distance < f.distance
    return score > f.score


def best_distances(templates: Sequence, embeddings: Sequence[tuple[float, Embedding]], options: BankOptions | None = None) -> np.ndarray:
    """Lowest match distance each template reaches anywhere in one embedded stream.

    Args:
        templates: Templates.  Pass plain prototypes (``t.prototypes()``) for raw
            distances: a template with variants reports the distance of whichever
            prototype is best placed against its own threshold, not the smallest one.
        embeddings: ``(timestamp_ms, Embedding)`` pairs of one person, in time order.
        options: Matcher tuning.

    Returns:
        ``(N,)`` float32 minimum distances (inf when the stream is empty).
    """
    bank = NeuronBank(templates, replace(options or BankOptions(), reset_on_fire=False))
    best = np.full(len(bank.templates), np.inf, np.float32)
    # A gap over person_timeout_ms ends the stream and starts another, as NeuronBank.update
    # does for a person who has left: no match runs on across it.
    for part in split_at_gaps(embeddings, bank.options.person_timeout_ms):
        bank.reset()
        for t, emb in part:
            bank.update_embedding(0, emb, t)
            best = np.minimum(best, bank.distances(0))
    if embeddings:
        bank.finish()  # the end of the stream may end a match short (open_share)
        best = np.minimum(best, bank.distances(0))
    return best


def split_at_gaps(embeddings: Sequence[tuple[float, Embedding]], gap_ms: float) -> list[list[tuple[float, Embedding]]]:
    """``(t_ms, Embedding)`` pairs cut where one is more than ``gap_ms`` after the last.

    The rule :meth:`NeuronBank.update` applies with ``person_timeout_ms``: a person
    unseen for longer has left, and their stream ends there.

    Example:
        >>> [[t for t, _ in part] for part in split_at_gaps([(0, None), (100, None), (2200, None)], 2000.0)]
        [[0, 100], [2200]]
    """
    parts: list[list[tuple[float, Embedding]]] = []
    last = None
    for t, emb in embeddings:
        if last is None or t - last > gap_ms:
            parts.append([])
        parts[-1].append((t, emb))
        last = t
    return parts


def tick_stream(embeddings: Sequence[tuple[float, Embedding]], rate_hz: float = 15.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Resample ``(t_ms, Embedding)`` pairs to the tick grid, as the bank does.

    Returns:
        ``(times_ms (T,), vectors (T, DIM), weights (T, DIM))``.
    """
    if not embeddings:
        return np.zeros(0), np.zeros((0, DIM), np.float32), np.zeros((0, DIM), np.float32)
    times = np.array([t for t, _ in embeddings], np.float64)
    vecs = np.stack([e.vector for _, e in embeddings])
    wts = np.stack([e.weight for _, e in embeddings])
    step = 1000.0 / rate_hz
    grid = np.arange(times[0], times[-1] + 1e-6, step)
    if len(times) == 1:
        return grid, np.repeat(vecs, len(grid), 0), np.repeat(wts, len(grid), 0)
    j = np.clip(np.searchsorted(times, grid, side="right"), 1, len(times) - 1)
    t0, t1 = times[j - 1], times[j]
    u = np.clip((grid - t0) / np.maximum(t1 - t0, 1e-9), 0.0, 1.0)[:, None]
    x = vecs[j - 1] + u * (vecs[j] - vecs[j - 1])
    # (A tick on a frame takes that frame's trust; between two, the lower: as the bank does.)
    w = np.where(u <= 0.0, wts[j - 1], np.where(u < 1.0, np.minimum(wts[j - 1], wts[j]), wts[j]))
    return grid, x.astype(np.float32), w.astype(np.float32)


__all__ = ["BankOptions", "NeuronBank", "activation_of", "best_distances", "split_at_gaps", "threshold_ratio", "tick_stream"]
