"""Teaching: a template learnt from one to five example performances, or a style added to one.

``mirrorcam teach NAME --from CLIP[@START-END]`` and the live screen's teaching both come
here: an example that repeats a movement is cut to one performance of it, the most
representative example becomes the template, calibrated the way the built-ins are
(:mod:`mirrorcam.authoring`) between the other examples and generated impostors.
"""

from __future__ import annotations

import math

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from mirrorcam.authoring import VELOCITY_WEIGHT, choose_threshold, static_frames
from mirrorcam.embedding import GROUPS, Embedding, group_mask
from mirrorcam.errors import TemplateError
from mirrorcam.recording import Recording
from mirrorcam.templates import MAX_VARIANTS, RATE_HZ, Template, Variant, is_valid_name, preview_of, template_frames_from_stream


MAX_EXAMPLE_S = 4.0
"""Longer examples without a repetition are cut to their most moving part of this length
(a held pose: to its stillest part)."""
MIN_MOVEMENT_TICKS = 7
"""Frames of the shortest movement a template may be (0.4 s; the built-in punch is 0.6 s): a few
frames match a moment of almost anything, and fire on every one."""


def parse_clip_spec(spec: str) -> tuple[str, float | None, float | None]:
    """``"clip.mp4@2.5-4"`` -> ``("clip.mp4", 2.5, 4.0)``; no ``@`` means the whole clip.

    Raises:
        TemplateError: A malformed segment.
    """
    if "@" not in spec or Path(spec).exists():  # a file whose name has an @ in it
        path, seg = spec, None
    else:
        path, _, seg = spec.rpartition("@")
    if not path:  # (Path("") is ".": the working folder had been taken for the clip)
        raise TemplateError(f"--from {spec!r} names no clip: an empty path names nothing")
    if seg is None:
        return path, None, None
    try:
        a, b = seg.split("-", 1)
        start, end = float(a), float(b)
    except ValueError:
        hint = ("; a point for decimals, not a comma" if "," in seg else
                "; START is 0 or more" if seg.startswith("-") else "")
        raise TemplateError(f"segment {seg!r} of {spec!r} must look like START-END in seconds, e.g. @2.5-4{hint}") from None
    if not (math.isfinite(start) and math.isfinite(end)):  # (1e309 is inf to float: it had been echoed as "0-inf")
        raise TemplateError(f"segment {seg!r} of {spec!r} must be finite seconds, e.g. @2.5-4")
    if not 0 <= start < end:
        raise TemplateError(f"segment {seg!r} of {spec!r} must have 0 <= START < END")
    return path, start, end


@dataclass(frozen=True)
class Taught:
    """A taught template and where in its examples it was cut from.

    Attributes:
        template: The calibrated template.
        example: Index of the example it was made from.
        start_ms: Time of its first frame in that example's stream.
        end_ms: Time of its last frame (the little figure shows this span, not the whole clip).
    """

    template: Template
    example: int
    start_ms: float
    end_ms: float

    def preview(self, recording: Recording, person: int | None = None) -> np.ndarray:
        """The template's little animated figure: the example's performer (``recording``,
        ``person``) through the span the template was cut from (see :func:`preview_of`)."""
        half_tick_s = 0.5 / RATE_HZ  # (the span's ends are ticks; frames lie up to half a tick from them)
        return preview_of(recording, person, self.start_ms / 1000.0 - half_tick_s, self.end_ms / 1000.0 + half_tick_s)


def teach(
    name: str,
    examples: Sequence[list[tuple[float, Embedding]]],
    impostors: Sequence[list[tuple[float, Embedding]]],
    display_name: str | None = None,
    kind: str = "dynamic",
    side_specific: bool = False,
    groups: dict | None = None,
    source: str = "",
    max_seconds: float = MAX_EXAMPLE_S,
) -> Taught:
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
        max_seconds: Longer examples are cut to their most moving part of this length
            (a static example: to its stillest part, the hold rather than getting into it).

    Raises:
        TemplateError: No usable example, or more than five.
    """
    from mirrorcam.matching import BankOptions, best_distances, split_at_gaps

    if not 1 <= len(examples) <= 5:
        raise TemplateError(f"teaching needs one to five examples, got {len(examples)}")
    cands, origin = [], []  # origin: the example each candidate was cut from
    short = unseen = 0  # examples left out, by reason (for the error if none is left)
    for k, stream in enumerate(examples):
        if len(stream) < (1 if kind == "static" else 2):  # (a held pose may come from one photo)
            short += 1
            continue
        # Where the person was gone longer than the bank's timeout, their stream ends there:
        # a template must not be made of frames interpolated across the absence.
        stream = max(split_at_gaps(stream, BankOptions().person_timeout_ms), key=lambda part: part[-1][0] - part[0][0])
        frames, weights = template_frames_from_stream(stream, stream[0][0], stream[-1][0])
        if kind == "static":
            # A pose is what is held: its stillest part, not the getting into it.
            cut = _stillest(frames, weights, int(max_seconds * RATE_HZ))
            frames, weights = static_frames(frames[cut], weights[cut])
        else:
            cut = performance_window(frames, weights)
            cut = _shift(_most_moving(frames[cut], weights[cut], int(max_seconds * RATE_HZ)), cut.start)
            frames, weights = frames[cut], weights[cut]
        if len(frames) < (2 if kind == "static" else MIN_MOVEMENT_TICKS):
            short += 1
        elif float(weights.mean()) <= 0.05:
            unseen += 1
        else:
            cands.append((frames, weights))
            tick_ms = 1000.0 / RATE_HZ  # (tick i of the example is at its first frame's time + i ticks)
            origin.append((k, stream[0][0] + cut.start * tick_ms, stream[0][0] + (cut.stop - 1) * tick_ms))
    if not cands:
        too_short = (f"a movement needs at least {(MIN_MOVEMENT_TICKS - 1) / RATE_HZ:.1f} s with a person seen in it"
                     if kind == "dynamic" else "a pose needs at least one frame with a person seen in it")
        hidden = "the person is hardly visible in it (most landmarks hidden or outside the picture)"
        if not unseen:
            reason = too_short
        elif not short:
            reason = hidden
        else:
            reason = f"{short} too short ({too_short}), {unseen} where {hidden.replace(' in it', '')}"
        raise TemplateError(f"no usable example for {name!r}: {reason}")
    protos_groups = [dict(groups) if groups is not None else auto_groups(f, w) for f, w in cands]
    velocity = taught_velocity_weight(kind)
    protos = [
        Template(name, display_name or name, kind, side_specific, f, 1.0, weights=w, groups=g, velocity_weight=velocity)
        for (f, w), g in zip(cands, protos_groups)
    ]
    if len(protos) > 1:
        # Each candidate against every other candidate's example (not against its own:
        # that would always be the best match).
        dist = np.stack([best_distances(protos, examples[k]) for k, *_ in origin])  # (examples, candidates)
        np.fill_diagonal(dist, np.nan)
        chosen = int(np.nanargmin(np.nanmean(dist, axis=0)))
        positives = dist[:, chosen]
    else:
        chosen, positives = 0, np.array([])
    proto = protos[chosen]
    neg = np.array([best_distances([proto], s)[0] for s in impostors if len(s) >= 2])
    thr, facts = choose_threshold(positives, neg)
    template = replace(proto, threshold=thr, calibration=facts, source=source, description=f"Taught from {len(cands)} example(s).")
    return Taught(template, *origin[chosen])


def add_style(template: Template, taught: Template, style: str) -> Template:
    """``template`` with ``taught`` as one more of its styles (a :class:`Variant`).

    How a user teaches an existing neuron, a built-in included, their own way of doing
    the action: the neuron keeps every prototype it had, with its threshold, and fires
    for the new one too.  The new style keeps the threshold, trust, velocity channel and
    feature-group importance it was calibrated with (``taught`` is what
    :func:`teach` returns as ``.template``).  Its false alarms add to the neuron's.

    Example:
        >>> from mirrorcam.authoring import impostor_streams
        >>> from mirrorcam.templates import builtin_library
        >>> wave = builtin_library().get("wave_one_hand")
        >>> mine = teach("wave_one_hand", [my_waves], impostor_streams("wave_one_hand")).template  # doctest: +SKIP
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
    if not is_valid_name(style):
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


REPEAT_MAX_SELF_DISTANCE = 0.5
"""A lag is a repetition's period when frames that far apart differ by at most this share
of what two frames of the example typically (the median) differ."""
MIN_PERFORMANCE_S = 0.8
"""A template is as many whole repetitions as last at least this long (one squat or
jumping jack; two claps or two swings of a wave)."""


def repetition_period(frames: np.ndarray, weights: np.ndarray, rate_hz: float = RATE_HZ) -> int | None:
    """Ticks of one repetition when an example repeats a movement, else ``None``.

    The self-distance ``d(L)``, the median weighted squared distance between frames ``L``
    ticks apart over the median between any two frames up to half the example apart (0
    for a frame and itself, about 1 for unrelated frames), dips at a repetition's period.
    The period is the first lag where it dips below ``REPEAT_MAX_SELF_DISTANCE`` and below
    half the most it reached before; at least two repetitions must be in the example,
    each at least a quarter second.  Why medians (means until session 24): the pairs of
    frames across standing still and getting into the action and out of it are few but
    far apart, and their share grows with the lag.  With means, none of four generated
    claps, waves, punches, squats or lunges after two seconds of standing had a period
    (the template was the most moving 4 s), nor had four clips of the shared ones (the
    darebee punches and backfists, the gym lunges, the overhead press); with medians all
    of them, and every period found before is found within a tick.

    Example:
        >>> t = np.arange(60) / 15.0
        >>> x = np.stack([np.sin(2 * np.pi * t / 1.2), np.cos(2 * np.pi * t / 1.2)], 1)
        >>> repetition_period(x, np.ones_like(x))
        18
    """
    x = np.asarray(frames, np.float64)
    w = np.asarray(weights, np.float64)
    lo, hi = max(int(0.25 * rate_hz), 2), len(x) // 2
    if hi <= lo + 1:
        return None

    # apart[k - 1]: the distances between the frames k ticks apart (hi + 1 < len(x): see above)
    apart = [((x[:-k] - x[k:]) ** 2 * np.minimum(w[:-k], w[k:])).sum(axis=1) for k in range(1, hi + 2)]
    spread = float(np.median(np.concatenate(apart[:hi])))
    if spread <= 1e-9:
        return None
    lags = np.arange(lo - 1, hi + 2)
    d = np.array([float(np.median(apart[k - 1])) / spread for k in lags])
    for i in range(1, len(lags) - 1):
        if d[i] <= d[i - 1] and d[i] <= d[i + 1] and d[i] < REPEAT_MAX_SELF_DISTANCE and d[i] < 0.5 * d[: i + 1].max():
            return int(lags[i])
    return None


def performance_window(frames: np.ndarray, weights: np.ndarray, rate_hz: float = RATE_HZ) -> slice:
    """The ticks of one performance in an example that repeats a movement; all of any other.

    Why: a template is one performance, so that a neuron fires and counts once per
    repetition; taught from a clip of five squats, it had been up to four seconds of them
    and fired once for every two.  The performance is as many whole repetitions as last
    ``MIN_PERFORMANCE_S``, among the windows that move at least 80 % as much as the most
    moving one, the one that starts and ends nearest the example's first pose (people
    start from rest, and a repetition of a squat or a jumping jack starts and ends
    standing).
    """
    period = repetition_period(frames, weights, rate_hz)
    if period is None:
        return slice(0, len(frames))
    n = max(1, int(np.ceil(MIN_PERFORMANCE_S * rate_hz / period)))
    k = n * period
    if k + 1 > len(frames):
        return slice(0, len(frames))
    motion = _window_motion(frames, weights, k + 1)  # window [s, s + k]: steps s+1 .. s+k
    ends = ((frames - frames[0]) ** 2 * weights).sum(axis=1)  # how far each frame is from the first pose
    score = ends[: len(frames) - k] + ends[k:]
    score[motion < 0.8 * motion.max()] = np.inf
    s = int(np.argmin(score))
    return slice(s, s + k + 1)


def _steps(frames: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``(K,)`` how far each frame moved from the one before (0 for the first)."""
    return np.r_[0.0, np.sqrt(((np.diff(frames, axis=0) ** 2) * weights[1:]).sum(axis=1))]


def _window_motion(frames: np.ndarray, weights: np.ndarray, length: int) -> np.ndarray:
    """``(K - length + 1,)`` how much ``frames[s : s + length]`` moves, for each start ``s``.

    Only the steps between the window's own frames count (s+1 .. s+length-1): the step
    leading into the window is not part of it.
    """
    steps = _steps(frames, weights)[1:]
    if length <= 1:
        return np.zeros(len(frames) - length + 1)
    return np.convolve(steps, np.ones(length - 1), mode="valid")


def _most_moving(frames: np.ndarray, weights: np.ndarray, max_len: int) -> slice:
    """The ticks of the ``max_len`` frames that move most (all of them when fewer)."""
    if len(frames) <= max_len:
        return slice(0, len(frames))
    i = int(np.argmax(_window_motion(frames, weights, max_len)))
    return slice(i, i + max_len)


def _shift(cut: slice, by: int) -> slice:
    return slice(cut.start + by, cut.stop + by)


def _stillest(frames: np.ndarray, weights: np.ndarray, max_len: int) -> slice:
    """The ticks of the ``max_len`` frames of a held pose that move least, among the well-seen ones.

    Only windows seen at least 80 % as well as the best-seen one compete: a stretch where
    the person is hidden moves "least" because nothing of them is weighed.
    """
    if len(frames) <= max_len:
        return slice(0, len(frames))
    motion = _window_motion(frames, weights, max_len)
    seen = np.convolve(weights.mean(axis=1), np.ones(max_len), mode="valid")
    motion[seen < 0.8 * seen.max()] = np.inf
    i = int(np.argmin(motion))
    return slice(i, i + max_len)
