"""The neuron bank: streaming SPRING matching, firing, reps, rejection (generated and real)."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import numpy as np
import pytest

from conftest import fires, firings
from mirrorcam.containers import PoseFrame
from mirrorcam.matching import BIG, BankOptions, NeuronBank, activation_of, best_distances, threshold_ratio, tick_stream
from mirrorcam.performer import STYLE_ACTIONS, Motion, PerformerOptions, perform
from mirrorcam.templates import builtin_library, embed_recording


@pytest.fixture(scope="module")
def bank() -> NeuronBank:
    return NeuronBank(builtin_library().templates)


def top(counter: Counter) -> str:
    return counter.most_common(1)[0][0] if counter else "none"


@pytest.mark.parametrize("action", ["squat", "jumping_jack", "wave_one_hand", "bend", "lunge", "arms_up"])
@pytest.mark.parametrize(
    "change",
    [
        {},
        {"yaw_deg": 35.0},
        {"mirror": True},
        {"speed": 0.6},
        {"speed": 1.8},
        {"fps": 10.0},
        {"translation": (0.6, 1.0), "scale": 0.85, "noise_m": 0.01},
    ],
    ids=["plain", "yaw35", "mirror", "slow", "fast", "10fps", "moved_small_noisy"],
)
def test_generated_performer_fires_its_neuron(bank, action, change):
    # Three continuous one-hand waves had fired the neuron twice (strict xfails from session
    # 22 to 27): a firing kept paths that began too early for the next wave, and a saturated
    # peak slid to a window straddling two waves.  Three squats at 1.8x had fired
    # jump_in_place once besides, matched across two of them, until lateral inhibition
    # counted the squats' spans together.
    rec = perform(action, PerformerOptions(repeats=3, seed=4, **change))
    got = fires(bank, rec.frames)
    # Its own neuron, once per repetition, and no other neuron at all.
    assert got == Counter({action: 3}), got


@pytest.mark.parametrize("repeats", [1, 2, 4, 6])
@pytest.mark.parametrize("speed", [0.6, 1.0, 1.8])
def test_waves_back_to_back_count_one_firing_each(bank, repeats, speed):
    """The next wave may begin where the last firing ended: its path is not hidden behind
    one that began too early to fire, and a saturated peak stays on the first wave it fits
    (at 1x, 2 waves had counted 1, 4 had counted 3 and 6 had counted 4)."""
    rec = perform("wave_one_hand", PerformerOptions(repeats=repeats, seed=4, speed=speed))
    fired = firings(bank, rec.frames)
    assert [f.template for f in fired] == ["wave_one_hand"] * repeats, fired


@pytest.mark.parametrize("action", ["clap", "high_knees", "wave_one_hand", "jumping_jack"])
def test_noisy_repetitions_count_one_firing_each(bank, action):
    """Five repetitions with 1 cm of landmark noise fire five times: a later window across
    two repetitions, a few hundredths higher than the peak below saturation, no longer
    takes the peak over (``LATER_MARGIN``; claps had counted 4 of 5 at every speed, high
    knees 3)."""
    rec = perform(action, PerformerOptions(repeats=5, seed=7, noise_m=0.01))
    assert fires(bank, rec.frames)[action] == 5


def test_a_one_tick_dip_does_not_split_a_slow_wave(bank):
    """A single tick below ``off_level`` does not end a performance: a wave at 0.6x dipped
    for one tick after its first second and fired for that second alone (0.74 s at 0.76),
    the whole wave (2.5 s) never."""
    rec = perform("wave_one_hand", PerformerOptions(repeats=1, seed=4, speed=0.6))
    (fired,) = firings(bank, rec.frames)
    assert fired.end_ms - fired.start_ms > 2000.0 and fired.score > 0.9, fired


@pytest.mark.parametrize("style", [s for styles in STYLE_ACTIONS.values() for s in styles])
@pytest.mark.parametrize(
    "change", [{}, {"yaw_deg": 35.0}, {"mirror": True}, {"speed": 0.6}, {"speed": 1.8}], ids=["plain", "yaw35", "mirror", "slow", "fast"]
)
def test_generated_style_fires_its_builtin_neuron(bank, style, change):
    """Every authored style (``jump_in_place:high``) is a way of doing its built-in."""
    rec = perform(style, PerformerOptions(repeats=3, seed=4, **change))
    got = fires(bank, rec.frames)
    assert top(got) == style.split(":")[0], got


def test_a_bank_carries_another_banks_counts_for_the_neurons_both_have():
    """A live screen that learns an action builds a bigger bank: its rows keep their counts."""
    squat, jack, wave = (builtin_library().get(n) for n in ("squat", "jumping_jack", "wave_one_hand"))
    old = NeuronBank([squat, jack])
    frames = perform("squat", PerformerOptions(repeats=2, lead_in_s=0.5)).frames
    for f in frames:
        old.update(f)
    old.finish()
    pid = frames[0].persons[0].id
    new = NeuronBank([wave, squat])  # jumping_jack is gone, wave_one_hand is new
    new.carry_counts(old)
    later = [replace(f, timestamp_ms=f.timestamp_ms + 60_000.0) for f in frames[:3]]
    assert new.update(later[0])[pid].reps.tolist() == [0, 2]
    someone_else = replace(later[1], persons=(replace(later[1].persons[0], id=pid + 1),))
    assert new.update(someone_else)[pid + 1].reps.tolist() == [0, 0]
    new.reset()
    assert new.update(later[2])[pid].reps.tolist() == [0, 0]


def test_upper_body_only_wave_fires_wave(bank):
    rec = perform("wave_one_hand", PerformerOptions(repeats=3, occlude_lower=True))
    assert top(fires(bank, rec.frames)) == "wave_one_hand"


def test_hidden_legs_cost_a_wave_only_their_context_share():
    """A laptop camera sees no legs: a wave pays a tenth of the unseen cost for them
    (``unseen_context``), not all of it, and a fully seen wave pays nothing."""
    wave = builtin_library().get("wave_one_hand")
    seen = embed_recording(perform("wave_one_hand", PerformerOptions(repeats=2)))
    no_legs = embed_recording(perform("wave_one_hand", PerformerOptions(repeats=2, occlude_lower=True)))
    context = best_distances([wave], no_legs)[0]
    full = best_distances([wave], no_legs, BankOptions(unseen_context=1.0))[0]
    assert best_distances([wave], seen)[0] < 0.05 * wave.threshold
    assert context < 0.5 * full
    assert context < 0.25 * wave.threshold


def _arm_hidden(rec, landmarks, outside):
    """``rec`` with ``landmarks`` barely visible, and below the picture when ``outside``."""
    frames = []
    for f in rec.frames:
        persons = []
        for p in f.persons:
            vis, image = p.visibility.copy(), p.landmarks.copy()
            vis[landmarks] = 0.05
            if outside:
                image[landmarks, 1] = 1.05
            persons.append(replace(p, visibility=vis, landmarks=image))
        frames.append(replace(f, persons=tuple(persons)))
    return replace(rec, frames=tuple(frames))


def test_a_still_arm_out_of_the_picture_costs_a_wave_little_a_hidden_one_more():
    """Below a laptop camera's frame, the arm a one-hand wave holds still costs only its
    context share; hidden inside the picture (a side view) it costs in full, and so does
    the waving arm out of the picture, more than the still one."""
    wave = builtin_library().get("wave_one_hand")
    rec = perform("wave_one_hand", PerformerOptions(repeats=2))  # the right arm waves
    still, waving = [13, 15, 17, 19, 21], [14, 16, 18, 20, 22]

    def ratio(landmarks, outside):
        return best_distances([wave], embed_recording(_arm_hidden(rec, landmarks, outside)))[0] / wave.threshold

    still_out = ratio(still, True)
    assert still_out < 0.5 * ratio(still, False)
    assert ratio(waving, True) > 2.0 * still_out


@pytest.mark.parametrize(
    "moving, context, expected",
    [
        # Only the arms move: the arms in full, every other group at the context share.
        ("arms", 0.1, {"arms": 1.0, "legs": 0.1, "torso": 0.1, "lift": 0.1}),
        ("arms", 0.0, {"arms": 1.0, "legs": 0.0, "torso": 0.0, "lift": 0.0}),
        ("legs", 0.25, {"arms": 0.25, "legs": 1.0, "torso": 0.25, "lift": 0.25}),
        # A held pose moves nothing: everything in full.
        (None, 0.1, {"arms": 1.0, "legs": 1.0, "torso": 1.0, "lift": 1.0}),
    ],
)
def test_unseen_weights_charge_the_moving_groups_in_full(moving, context, expected):
    from mirrorcam.embedding import DIM, group_mask
    from mirrorcam.frame_distance import unseen_weights

    frames = np.zeros((10, DIM), np.float32)
    if moving:
        # One part of the group moves: the whole group counts as moving (a wave's
        # other arm stays in full too).
        first = np.flatnonzero(group_mask(moving))[0]
        frames[:, first] = np.sin(np.linspace(0, 6, 10))
    weight = np.linspace(0.5, 1.5, DIM).astype(np.float32)
    got, _ = unseen_weights(frames, weight, context)
    for group, share in expected.items():
        mask = group_mask(group)
        np.testing.assert_allclose(got[mask], share * weight[mask], rtol=1e-6)


def test_unseen_weights_per_part_charge_only_the_moving_part_in_full():
    from mirrorcam.embedding import DIM, FEATURES
    from mirrorcam.frame_distance import unseen_weights

    frames = np.zeros((10, DIM), np.float32)
    forearm = np.array([n.startswith("r_forearm") for n in FEATURES])
    upper = np.array([n.startswith("r_upper_arm") for n in FEATURES])
    other = np.array([n.startswith("l_forearm") for n in FEATURES])
    frames[:, np.flatnonzero(forearm)[0]] = np.sin(np.linspace(0, 6, 10))
    frames[:, np.flatnonzero(upper)[0]] = 0.5 * np.sin(np.linspace(0, 6, 10))
    weight = np.ones(DIM, np.float32)
    by_group, got = unseen_weights(frames, weight, 0.1)
    np.testing.assert_allclose(got[forearm], 1.0, rtol=1e-6)
    np.testing.assert_allclose(got[upper], 0.1 + 0.9 * 0.5, rtol=1e-5)
    np.testing.assert_allclose(got[other], 0.1, rtol=1e-6)
    # Hidden in the picture (per group) the whole arms group goes in full.
    np.testing.assert_allclose(by_group[other], 1.0, rtol=1e-6)


def test_unseen_weights_ignore_movement_in_parts_the_template_does_not_weigh():
    from mirrorcam.embedding import DIM, group_mask
    from mirrorcam.frame_distance import unseen_weights

    frames = np.zeros((10, DIM), np.float32)
    legs, arms = group_mask("legs"), group_mask("arms")
    frames[:, np.flatnonzero(legs)[0]] = np.linspace(0, 2, 10)  # large, but weight 0
    frames[:, np.flatnonzero(arms)[0]] = np.linspace(0, 0.1, 10)  # small, weighed
    weight = np.where(legs, 0.0, 1.0).astype(np.float32)
    got, _ = unseen_weights(frames, weight, 0.1)
    np.testing.assert_allclose(got[arms], 1.0)
    np.testing.assert_allclose(got[group_mask("torso")], 0.1)


@pytest.mark.parametrize(
    "impostor, most",
    # Walking in place bends the hips like a shallow bend: at most one stray fire in three steps.
    [("stand", 0), ("touch_face", 0), ("drink", 0), ("reach_forward", 0), ("lateral_raise", 0), ("walk_in_place", 1)],
)
def test_everyday_movements_fire_nothing(bank, impostor, most):
    rec = perform(impostor, PerformerOptions(repeats=3, seed=2))
    assert sum(fires(bank, rec.frames).values()) <= most


# Seated on a chair: thighs forward, shins down, hands on the lap.
SEATED = {"l_thigh": (6.0, 85.0), "r_thigh": (6.0, 85.0), "l_shin": (3.0, 0.0), "r_shin": (3.0, 0.0), "pitch": 15.0,
          "l_arm": (8.0, 25.0), "r_arm": (8.0, 25.0), "l_fore": (6.0, 75.0), "r_fore": (6.0, 75.0)}


@pytest.mark.parametrize("sits_down", [False, True], ids=["first-seen-seated", "sits-down"])
@pytest.mark.parametrize("noise_m", [0.001, 0.003])
def test_a_person_sitting_still_fires_nothing_after_sitting_down(bank, sits_down, noise_m):
    # A known limitation (README): sitting down, or being first seen seated, fires `squat`
    # once, for a seated body is a squat's lowest point.  Sitting still for 17 s more
    # after that must fire nothing (session 17's README: `squat` about once in 9 s;
    # with today's `squat` threshold 1.2 times as loose it fires again at the stream's
    # end, 1.5 times every 1.5-3 s).
    keys = ((0.0, {}), (2.0, {}), (3.2, SEATED), (20.0, SEATED)) if sits_down else ((0.0, SEATED), (20.0, SEATED))
    rec = perform(Motion("sit", keys, cyclic=False), PerformerOptions(lead_in_s=0.0, noise_m=noise_m, seed=1, yaw_deg=15))
    fired = firings(bank, rec.frames)
    assert len(fired) <= 1 and all(f.end_ms < 7000 for f in fired), fired


def test_varied_everyday_performers_with_a_cameras_noise_rarely_fire(bank):
    # The built-ins' thresholds are bounded by such performers (authoring.CAMERA_NOISE_M):
    # at 0.85 of the 2.5th percentile of their distances, so a few in a hundred of the
    # generator's tail may reach one.  These are others (seeds the calibration never
    # saw), of every body shape, tempo, yaw and amplitude the generator varies: 21 of
    # them, one firing at most.  Measured: none (session 14's thresholds: a drinker fired
    # wave_one_hand); of other seeds, one lateral raise of 3 reached 0.999 of
    # arm_circles' threshold, the nearest of 40 more 1.01.
    from mirrorcam.authoring import CAMERA_NOISE_M, synthetic_variations
    from mirrorcam.performer import IMPOSTOR_ACTIONS

    fired = Counter()
    for k, action in enumerate(IMPOSTOR_ACTIONS):
        for rec in synthetic_variations(action, 3, seed=500 + 13 * k, noise_m=CAMERA_NOISE_M):
            fired.update(f"{action} -> {name}" for name in fires(bank, rec.frames).elements())
    assert sum(fired.values()) <= 1, fired


def test_one_performance_fires_once_and_reps_count(bank):
    once = perform("squat", PerformerOptions(repeats=1, lead_in_s=1.5))
    assert fires(bank, once.frames)["squat"] == 1
    many = perform("squat", PerformerOptions(repeats=5, lead_in_s=1.0))
    bank.reset()
    reps = None
    for f in many.frames:
        reps = bank.update(f)[0].reps
    assert 4 <= reps[bank.names.index("squat")] <= 5  # the last may still wait to settle
    bank.finish()
    reps = bank._tracks[0].reps
    assert reps[bank.names.index("squat")] == 5


def _squats_then_nobody(seconds: float = 3.0) -> list:
    """Two generated squats, the person gone 0.3 s after the second, then empty frames."""
    rec = perform("squat", PerformerOptions(repeats=2, lead_in_s=0.3, seed=2))
    last = rec.frames[-1]
    empty = [replace(last, persons=(), timestamp_ms=last.timestamp_ms + (i + 1) * 1000.0 / 30, index=last.index + i + 1)
             for i in range(int(seconds * 30))]
    return [*rec.frames, *empty]


def test_a_person_who_leaves_right_after_a_movement_keeps_its_firing(bank):
    """The second squat is still held (settle time) when the person leaves; once they have been
    gone person_timeout_ms their stream ends and hands it over, without finish()."""
    bank.reset()
    frames = _squats_then_nobody()
    seen = []
    for f in frames:
        for pid, act in bank.update(f).items():
            seen += [(f.timestamp_ms, pid, g.template, bool(act.active.any()), pid in {p.id for p in f.persons}) for g in act.firings]
    assert [s[2] for s in seen] == ["squat", "squat"]
    t_left = max(f.timestamp_ms for f in frames if f.persons)
    when, pid, _, active, present = seen[-1]
    assert not present and not active and when - t_left > bank.options.person_timeout_ms
    assert pid not in bank.people()


def test_a_person_back_after_a_long_absence_gets_the_old_streams_firings_first(bank):
    frames = _squats_then_nobody()
    back = replace(frames[0], timestamp_ms=frames[-1].timestamp_ms + 1000.0 / 30, index=frames[-1].index + 1)
    bank.reset()
    fired = [g.template for f in frames[:-1] + [back] for a in bank.update(f).values() for g in a.firings]
    assert fired == ["squat", "squat"]


def test_firing_carries_times_and_score(bank):
    rec = perform("jumping_jack", PerformerOptions(repeats=2, lead_in_s=1.0))
    fired = firings(bank, rec.frames)
    assert fired
    for g in fired:
        assert g.start_ms <= g.peak_ms <= g.end_ms <= rec.frames[-1].timestamp_ms
        assert 0.5 <= g.score <= 1.0
        line = g.to_json()
        assert set(line) == {"t", "person", "template", "score", "start", "end"}


def test_people_are_matched_separately(bank):
    squat = perform("squat", PerformerOptions(repeats=2))
    stand = perform("stand", PerformerOptions(repeats=2))
    n = min(len(squat.frames), len(stand.frames))
    frames = []
    for a, b in zip(squat.frames[:n], stand.frames[:n]):
        other = replace(b.persons[0], id=7)
        frames.append(PoseFrame(a.timestamp_ms, a.index, (a.persons[0], other), a.image_size))
    bank.reset()
    per_person: dict[int, Counter] = {0: Counter(), 7: Counter()}
    for f in frames:
        for pid, act in bank.update(f).items():
            per_person[pid].update(g.template for g in act.firings)
    for pid, fs in bank.finish().items():
        per_person[pid].update(g.template for g in fs)
    assert top(per_person[0]) == "squat"
    assert sum(per_person[7].values()) == 0


@pytest.mark.parametrize("clock", ["stalled", "backwards"])
def test_a_stalled_or_backward_clock_holds_no_growing_state_and_matching_resumes(bank, clock):
    # A camera whose timestamps stop (or jump back) for a while, then run on: the frames of
    # that stretch must not pile up in the matcher (an all-day kiosk), and the squats
    # performed after it still fire.
    squats = perform("squat", PerformerOptions(repeats=2, lead_in_s=1.0))
    first = squats.frames[0]
    stuck_ms = first.timestamp_ms if clock == "stalled" else first.timestamp_ms - 5000.0
    stuck = [replace(first, timestamp_ms=stuck_ms, index=i) for i in range(3000)]
    later = [replace(f, timestamp_ms=f.timestamp_ms + 1.0) for f in squats.frames]
    bank.reset()
    bank.update(first)
    for f in stuck:
        bank.update(f)
    assert len(bank._tracks[0].recent_frames) <= 2
    assert fires(bank, [first, *stuck[:10], *later]).get("squat", 0) == 2


def test_activation_curve():
    a = activation_of(np.array([0.0, 0.1, 0.2, 10.0]), np.array([0.1, 0.1, 0.1, 0.1]))
    assert a[0] == pytest.approx(1.0) and a[1] == pytest.approx(0.5) and a[2] < 0.1 and a[3] < 1e-3


def test_tick_stream_resamples_to_the_grid():
    rec = perform("clap", PerformerOptions(fps=30.0))
    times, x, w = tick_stream(embed_recording(rec), 15.0)
    assert np.allclose(np.diff(times), 1000.0 / 15.0)
    assert x.shape == w.shape and len(times) == len(x)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rate_hz": 0.0},
        {"max_skip": 0},
        {"on_level": 0.3, "off_level": 0.5},
        {"motion_floor": -1.0},
        {"velocity_scale": 0.0},
        {"open_share": -0.1},
        {"open_share": 1.0},
        {"workers": -1},
        {"workers": 1.5},
        {"workers": True},
    ],
)
def test_bank_options_validated(kwargs):
    with pytest.raises(ValueError):
        BankOptions(**kwargs)


def test_bank_rejects_empty_or_wrong_templates():
    with pytest.raises(ValueError):
        NeuronBank([])
    with pytest.raises(ValueError, match="30 Hz"):  # it would play at the bank's 15 Hz: at half speed
        NeuronBank([replace(builtin_library().get("clap"), rate_hz=30.0)])
    bad = replace(builtin_library().get("clap"), threshold=1.0)
    object.__setattr__(bad, "frames", np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match="frames"):
        NeuronBank([bad])


# --- real footage ------------------------------------------------------------------------
def _real(clip):
    from mirrorcam.pipeline import clip_landmarks

    return clip_landmarks(clip, progress=False)


@pytest.mark.slow
@pytest.mark.parametrize("speed", [1.0, 0.5])
@pytest.mark.parametrize("relative", ["omkarnagarkar55_HAR/wave.mp4", "weizmann_frames/weizmann_clean_wave2_p09.mp4"])
def test_real_wave_fires_a_wave_neuron(bank, clip, relative, speed):
    """At half speed too (the HAR wave at 0.5x fired nothing before the slowed copies:
    1.40 of the threshold, the best path covering half a swing)."""
    from mirrorcam.modes.eval import retimed_frames

    got = fires(bank, retimed_frames(_real(clip(relative)).frames, speed))
    assert got["wave_one_hand"] + got["wave_both_hands"] >= 1, got


@pytest.mark.slow
def test_real_upper_body_webcam_wave_fires_wave_one_hand(bank, clip):
    """The laptop case: close to the camera, hips and legs below the frame, the still
    arm leaving it at times (before the unseen cost knew the picture's edge: no fire)."""
    from mirrorcam.embedding import group_mask

    rec = _real(clip("hanle_robotvision/wave_test2.mp4"))
    in_view = np.stack([e.in_view for _, e in embed_recording(rec)])
    assert in_view[:, group_mask("legs")].mean() < 0.2  # the premise: no legs in the picture
    got = fires(bank, rec.frames)
    assert got["wave_one_hand"] >= 1, got


@pytest.mark.slow
def test_real_squats_are_counted_within_one(bank, clip):
    # 13 squats: counted by looking at the clip (and at its hip-height trace).
    rec = _real(clip("RJ-song_MediapipePy/squat.mp4"))
    got = fires(bank, rec.frames)
    assert abs(got["squat"] - 13) <= 1, got


@pytest.mark.slow
def test_real_standing_fires_nothing(bank, clip):
    got = fires(bank, _real(clip("omkarnagarkar55_HAR/stand.mp4")).frames)
    assert sum(got.values()) == 0, got


@pytest.mark.parametrize("repeats", [1, 3])
def test_prototypes_sharing_a_name_act_as_one_neuron(repeats):
    """Several prototypes of one action (a taught neuron) fire once per performance, not once each."""
    squat = next(t for t in builtin_library().templates if t.name == "squat")
    # A second, different prototype: the same movement 1.4 x slower (resampled in time:
    # (`np.repeat(f, 2)[::2]` had given back the very same frames).
    k = len(squat.frames)
    at = np.linspace(0.0, k - 1.0, round(1.4 * k))
    lo = np.floor(at).astype(int)
    hi = np.minimum(lo + 1, k - 1)
    frac = (at - lo)[:, None].astype(np.float32)

    def resampled(a):
        return None if a is None else ((1 - frac) * a[lo] + frac * a[hi]).astype(np.float32)

    slower = replace(squat, frames=resampled(squat.frames), weights=resampled(squat.weights), variants=())
    assert len(slower.frames) > len(squat.frames) and slower.duration_s > 1.3 * squat.duration_s
    rec = perform("squat", PerformerOptions(repeats=repeats, lead_in_s=1.0))
    single = fires(NeuronBank([squat]), rec.frames)["squat"]
    assert fires(NeuronBank([slower]), rec.frames)["squat"] == repeats  # on its own it fires too
    both = fires(NeuronBank([squat, slower]), rec.frames)["squat"]
    assert single == repeats
    assert both == single


def test_a_variant_fires_its_neuron_under_the_template_name():
    """A style only a variant covers (a press from the shoulders) fires the one neuron, once per rep."""
    arms_up = builtin_library().get("arms_up")
    rec = perform("arms_up:press", PerformerOptions(repeats=2, lead_in_s=1.0))
    with_variant = NeuronBank([arms_up])
    without = NeuronBank([replace(arms_up, variants=())])
    assert with_variant.names == ("arms_up",)
    assert fires(with_variant, rec.frames)["arms_up"] == 2
    assert fires(without, rec.frames)["arms_up"] < 2


@pytest.mark.parametrize(
    "main, action",
    [
        ("squat", "punch"),         # 32 template frames against 9
        ("lunge", "high_knees"),    # 32 against 12
        ("arm_circles", "clap"),    # 30 against 15
    ],
)
def test_a_short_style_in_a_long_neuron_counts_as_it_does_alone(main: str, action: str):
    """A neuron's overlap allowance is the matching prototype's: with the main prototype's
    (a quarter of 32 ticks), the next repetition of a 9-tick style had cut the last one
    short, and five generated punches had fired the neuron 7 times."""
    from mirrorcam.templates import Variant

    lib = builtin_library()
    short = replace(lib.get(action), variants=())
    style = Variant("short", short.frames, short.threshold, short.weights, velocity_weight=short.velocity_weight, groups=short.groups)
    long_with_style = replace(lib.get(main), name=action, variants=(style,))
    rec = perform(action, PerformerOptions(repeats=5, seed=1, lead_in_s=0.3))
    alone = fires(NeuronBank([short]), rec.frames)[action]
    assert alone >= 3
    assert fires(NeuronBank([long_with_style]), rec.frames)[action] == alone


@pytest.mark.parametrize("mirror, expected", [(False, {"right_wave", "either_wave", "right_wave_2"}), (True, {"either_wave"})])
def test_side_specific_templates_do_not_fire_for_the_other_side(mirror, expected):
    """Side-specific templates (no mirrored row) mixed with one that is not, in any order."""
    wave = replace(builtin_library().get("wave_one_hand"), variants=())
    squat = builtin_library().get("squat")
    templates = [replace(wave, name="right_wave", side_specific=True), squat,
                 replace(wave, name="either_wave"), replace(wave, name="right_wave_2", side_specific=True)]
    bank = NeuronBank(templates, BankOptions(inhibition=False))
    rec = perform("wave_one_hand", PerformerOptions(repeats=3, seed=4, mirror=mirror))
    got = fires(bank, rec.frames)
    assert set(got) == expected, got
    assert got["either_wave"] >= 2


@pytest.mark.parametrize("max_skip", [2, 3, 4])
def test_skipping_template_frames_is_charged_for_them(max_skip):
    """A fast path pays for the frames it skips: landing on every other frame of an
    oscillating template must not hide the frames in between (the aliasing that let a slow
    jumping jack match a two-hand wave)."""
    from mirrorcam.embedding import DIM, Embedding
    from mirrorcam.templates import Template

    p, q = np.zeros(DIM, np.float32), np.full(DIM, 0.5, np.float32)
    template = Template("zigzag", "zigzag", "dynamic", False, np.stack([p, q] * 6), 0.1)
    ones = np.ones(DIM, np.float32)
    still_p = [(i * 1000.0 / 15, Embedding(p, ones)) for i in range(12)]
    # open_share 0: the stream's edges may not cut the zigzag short (tested on their own).
    d = best_distances([template], still_p, BankOptions(motion_floor=0.0, max_skip=max_skip, open_share=0.0))[0]
    # Every other frame is q, at squared distance 0.25 per feature: a path that skips
    # them for free would score 0; charging them gives about half of 0.25.
    assert d > 0.08, d


def _ramp(k: int = 20):
    """A template that moves every feature steadily from 0 to 1 over ``k`` frames, and its frames."""
    from mirrorcam.embedding import DIM
    from mirrorcam.templates import Template

    frames = np.linspace(0.0, 1.0, k, dtype=np.float32)[:, None] * np.ones(DIM, np.float32)
    return Template("ramp", "ramp", "dynamic", True, frames, 0.01), frames


def _stream(frames: np.ndarray, first_ms: float = 0.0) -> list:
    """Embedded frames at the matcher's tick rate (15 Hz)."""
    from mirrorcam.embedding import Embedding

    ones = np.ones(frames.shape[1], np.float32)
    return [(first_ms + i * 1000.0 / 15, Embedding(f, ones)) for i, f in enumerate(frames)]


@pytest.mark.parametrize(
    "cut, open_share, matches",
    [
        # (frames missing at the start, at the end), the bank's open_share, whether it matches
        ((0, 0), 0.0, True),
        ((5, 0), 0.3, True),  # a quarter of the movement happened before the stream began
        ((0, 5), 0.3, True),  # the stream stopped a quarter short of the movement's end
        ((4, 4), 0.3, True),
        ((5, 0), 0.0, False),
        ((0, 5), 0.0, False),
        ((10, 0), 0.3, False),  # half of it unseen is more than open_share allows
        ((0, 10), 0.3, False),
    ],
)
def test_a_movement_cut_off_by_the_streams_start_or_end_matches_on_what_was_seen(cut, open_share, matches):
    template, frames = _ramp()
    seen = frames[cut[0] : len(frames) - cut[1]]
    d = best_distances([template], _stream(seen), BankOptions(open_share=open_share))[0]
    assert (d < 1e-4) == matches, d


def test_a_movement_entered_part_way_is_free_only_where_the_stream_begins():
    """A person first seen mid-action may enter the template part-way in; one who stood
    still first and then starts mid-way is charged for the frames they never showed."""
    template, frames = _ramp()
    standing = np.repeat(frames[5:6], 15, axis=0)  # a second, still, at the ramp's 6th frame
    d = best_distances([template], _stream(np.concatenate([standing, frames[5:]])))[0]
    assert d > 3e-4, d  # (2.3e-3 without the slowed copy, where a stall may last 3 ticks, not 7)
    assert best_distances([template], _stream(frames[5:]))[0] < 1e-6


def test_a_movement_cut_off_by_the_streams_end_fires_at_finish():
    template, frames = _ramp()
    template = replace(template, threshold=0.002)  # the closed end's 0.006 is then well over it
    bank = NeuronBank([template], BankOptions(motion_floor=0.0))
    fired = [f for t, emb in _stream(frames[:16]) for f in bank.update_embedding(0, emb, t).firings]
    assert fired == []  # not before the stream is known to have ended
    fired = [f for fs in bank.finish().values() for f in fs]
    assert [f.template for f in fired] == ["ramp"]
    assert fired[0].end_ms == pytest.approx(15 * 1000.0 / 15)
    assert bank.activations()[0][0] > 0.99
    closed = NeuronBank([template], BankOptions(motion_floor=0.0, open_share=0.0))
    for t, emb in _stream(frames[:16]):
        closed.update_embedding(0, emb, t)
    assert closed.finish() == {}


def _reference_dp_step(state: dict, d: np.ndarray, step: np.ndarray, tick: int, max_stall: int, max_skip: int,
                       open_share: float) -> dict:
    """One SPRING step written cell by cell, as the algorithm reads (the matcher's is vectorised)."""
    cost, start, length, stall, moved = (state[k] for k in ("cost", "start", "length", "stall", "moved"))
    rows, k = cost.shape
    out = {key: np.empty_like(value) for key, value in state.items()}
    for r in range(rows):
        for j in range(k):
            # Candidates in the matcher's order; a later one wins only if strictly cheaper.
            best, src = (cost[r, j], "stay") if stall[r, j] < max_stall else (BIG, "stay")
            for s in range(1, max_skip + 1):
                if s == 1 and (j == 0 or (tick == 1 and j <= open_share * k)):
                    c, origin = 0.0, "fresh"
                elif j >= s:
                    c, origin = cost[r, j - s] + d[r, j - s + 1 : j].sum(), j - s
                else:
                    continue
                if c < best:
                    best, src, skip = c, origin, s
            out["cost"][r, j] = min(best + d[r, j], BIG)
            if src == "stay":
                out["start"][r, j], out["length"][r, j] = start[r, j], length[r, j] + 1
                out["moved"][r, j], out["stall"][r, j] = moved[r, j] + step[r], stall[r, j] + 1
            elif src == "fresh":
                out["start"][r, j], out["length"][r, j], out["moved"][r, j], out["stall"][r, j] = tick, 1, 0.0, 0
            else:
                out["start"][r, j], out["length"][r, j] = start[r, src], length[r, src] + skip
                out["moved"][r, j], out["stall"][r, j] = moved[r, src] + step[r], 0
    return out


@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize("open_share", [0.0, 0.3, 0.5])
@pytest.mark.parametrize("max_stall, max_skip, k", [(3, 2, 7), (0, 1, 5), (3, 3, 6), (1, 4, 9), (2, 2, 1), (3, 4, 2)])
def test_the_vectorised_dp_step_equals_the_cell_by_cell_reference(max_stall, max_skip, k, open_share, workers):
    """Every cell's cost, start, length, movement and stall count after 25 ticks, exactly
    (the first tick's open entry included), in one thread and with the rows split over
    two or three (``BankOptions.workers``; 5 rows, so the ranges are uneven).

    Costs are multiples of 1/8, so every sum is exact in float32 whatever its order."""
    from mirrorcam.embedding import DIM
    from mirrorcam.matching import _Track
    from mirrorcam.templates import Template

    rng = np.random.default_rng(k * 10 + max_skip)
    templates = [Template(f"t{i}", f"t{i}", "dynamic", i % 2 == 0, rng.normal(0, 1, (k, DIM)).astype(np.float32), 1.0)
                 for i in range(3)]
    options = BankOptions(max_stall=max_stall, max_skip=max_skip, open_share=open_share, workers=workers)
    bank = NeuronBank(templates, options)
    assert bank._m.split.workers == workers
    track = _Track(bank._m, len(templates))
    assert len(track.paths) == (2 if k > 1 else 1)  # the templates and their slowed copies
    for block, paths in zip(bank._m.blocks, track.paths):
        rows, width = paths.cost.shape
        state = {key: getattr(paths, key).copy() for key in ("cost", "start", "length", "stall", "moved")}
        for tick in range(1, 26):
            d = (rng.integers(0, 16, (rows, width)) / 8).astype(np.float32)
            step = (rng.integers(0, 8, rows) / 8).astype(np.float32)
            bank._dp(paths, block, d, step[:, None], tick)
            state = _reference_dp_step(state, d, step, tick, max_stall, max_skip, open_share)
            for key, want in state.items():
                np.testing.assert_array_equal(getattr(paths, key), want, err_msg=f"{key} at tick {tick}")


@pytest.mark.parametrize("workers", [2, 3])
def test_a_bank_split_over_threads_matches_and_fires_as_in_one(workers):
    """The built-ins and 80 random templates of 60 frames (about 5,000 rows in each
    template product, over two of its chunks), the velocity channel on, half of them
    side-specific: every tick's activations, match distances, repetitions and firings are
    the same to the bit whether the tick runs in one thread or is split over several."""
    from mirrorcam.authoring import VELOCITY_WEIGHT
    from mirrorcam.embedding import DIM
    from mirrorcam.frame_distance import BLAS_ROWS

    rng = np.random.default_rng(5)
    builtins = builtin_library().templates
    noise = [
        replace(builtins[0], name=f"random_{i}", frames=rng.normal(0, 0.5, (60, DIM)).astype(np.float32),
                weights=np.ones((60, DIM), np.float32), side_specific=bool(i % 2), variants=(), velocity_weight=VELOCITY_WEIGHT)
        for i in range(80)
    ]
    one, split = (NeuronBank(builtins + tuple(noise), BankOptions(workers=n)) for n in (1, workers))
    assert split._m.split.workers == workers and len(split._m.a) > 2 * BLAS_ROWS
    frames = perform("jumping_jack", PerformerOptions(repeats=3, seed=2, noise_m=0.01)).frames
    fired = []
    for frame in frames:
        a, b = one.update(frame), split.update(frame)
        assert a.keys() == b.keys()
        for pid in a:
            np.testing.assert_array_equal(a[pid].activation, b[pid].activation)
            np.testing.assert_array_equal(a[pid].reps, b[pid].reps)
            np.testing.assert_array_equal(one._tracks[pid].distance, split._tracks[pid].distance)
            assert a[pid].firings == b[pid].firings
            fired += [f.template for f in a[pid].firings]
    assert one.finish() == split.finish()
    assert "jumping_jack" in fired  # (the stream is matched, not only compared)


def test_only_a_large_bank_is_split_over_threads_by_default():
    """``workers`` 0: one thread for the built-ins (4,280 DP cells); a bank of at least
    ``PARALLEL_CELLS`` cells on every core this process may use, up to ``MAX_WORKERS``."""
    from mirrorcam.embedding import DIM
    from mirrorcam.frame_distance import MAX_WORKERS, PARALLEL_CELLS, cores

    builtins = builtin_library().templates
    assert NeuronBank(builtins)._m.split.workers == 1
    rng = np.random.default_rng(1)
    many = [replace(builtins[0], name=f"random_{i}", frames=rng.normal(0, 0.5, (60, DIM)).astype(np.float32),
                    weights=np.ones((60, DIM), np.float32), variants=())
            for i in range(PARALLEL_CELLS // (60 + 119) + 1)]
    bank = NeuronBank(many, BankOptions(workers=0))
    assert sum(len(b.rows) * b.k for b in bank._m.blocks) >= PARALLEL_CELLS
    assert bank._m.split.workers == min(cores(), MAX_WORKERS)


@pytest.mark.parametrize("velocity_weight", [0.0, 0.25])
@pytest.mark.parametrize("speed", [0.35, 0.5, 1.0])
def test_a_slowed_copy_matches_as_the_template_stretched_to_half_its_pace(speed, velocity_weight):
    """A template's match is the better of its own and that of the same movement at half
    its pace, written out as a template of its own (a frame between each two)."""
    from mirrorcam.embedding import DIM, Embedding
    from mirrorcam.templates import Template

    rng = np.random.default_rng(3)
    k = 15
    keys = rng.normal(0, 0.5, (4, DIM)).astype(np.float32)
    frames = np.stack([np.interp(np.linspace(0, 3, k), np.arange(4), keys[:, f]) for f in range(DIM)], 1).astype(np.float32)
    template = Template("move", "move", "dynamic", False, frames, 0.1, velocity_weight=velocity_weight)
    stretched = np.empty((2 * k - 1, DIM), np.float32)
    stretched[0::2], stretched[1::2] = frames, (frames[:-1] + frames[1:]) / 2
    # The movement performed at ``speed``, with a little noise, between two still seconds.
    n = int(round((k - 1) / speed)) + 1
    moving = np.stack([np.interp(np.linspace(0, k - 1, n), np.arange(k), frames[:, f]) for f in range(DIM)], 1)
    xs = np.concatenate([np.repeat(frames[:1], 15, 0), moving, np.repeat(frames[-1:], 15, 0)])
    xs = (xs + rng.normal(0, 0.02, xs.shape)).astype(np.float32)
    ones = np.ones(DIM, np.float32)
    stream = [(i * 1000.0 / 15, Embedding(x, ones)) for i, x in enumerate(xs)]
    plain = BankOptions(slowed_copies=False)
    own = best_distances([template], stream, plain)[0]
    slow = best_distances([replace(template, frames=stretched, weights=np.ones_like(stretched))], stream, plain)[0]
    both = best_distances([template], stream)[0]
    assert both == pytest.approx(min(own, slow), rel=1e-4)
    if speed < 1.0:  # the slowed copy is the better match of a slower performance
        assert slow < own


def test_held_poses_and_one_frame_templates_have_no_slowed_copy():
    from mirrorcam.embedding import DIM
    from mirrorcam.templates import Template

    frames = np.zeros((6, DIM), np.float32)
    templates = [Template("held", "held", "static", True, frames, 0.1), Template("one", "one", "dynamic", True, frames[:1], 0.1),
                 Template("move", "move", "dynamic", True, np.linspace(0, 1, 6, dtype=np.float32)[:, None] * np.ones(DIM), 0.1)]
    blocks = NeuronBank(templates)._m.blocks
    assert [list(b.rows) for b in blocks] == [[0, 1, 2], [2]]
    assert list(blocks[1].lengths) == [11]
    assert len(NeuronBank(templates, BankOptions(slowed_copies=False))._m.blocks) == 1


@pytest.mark.parametrize("factor", [0.5, 1.0, 2.0, 4.0])
def test_velocity_features_keep_the_direction_whatever_the_speed(factor):
    from mirrorcam.embedding import DIM, FEATURES
    from mirrorcam.frame_distance import velocity_features

    change = np.zeros(DIM, np.float32)
    forearm = [FEATURES.index(f"r_forearm.{c}") for c in "xyz"]
    change[forearm] = (0.12, -0.06, 0.04)
    got = velocity_features(change * factor, 0.03)
    unit = change[forearm] / np.linalg.norm(change[forearm])
    # A body part moving well above the scale is reduced to its direction (the forearm's
    # three components share one norm); a still part stays 0.
    assert np.allclose(got[forearm], unit, atol=0.12 / factor)
    assert np.count_nonzero(got) == 3
    assert np.abs(velocity_features(np.full(DIM, 0.002, np.float32), 0.03)).max() < 0.1


def _sway(n_ticks: int, speed: float = 1.0) -> list:
    """A small back-and-forth of two features while the rest of the pose holds still
    (a wave-like oscillation), as ``(t_ms, Embedding)`` at 15 Hz."""
    from mirrorcam.embedding import DIM, Embedding

    ones = np.ones(DIM, np.float32)
    out = []
    for i in range(n_ticks):
        x = np.full(DIM, 0.3, np.float32)
        x[:2] = 0.3 + 0.25 * np.sin(2 * np.pi * speed * i / 10.0)  # one swing per 10 ticks
        out.append((i * 1000.0 / 15, Embedding(x, ones)))
    return out


def _still(n_ticks: int) -> list:
    """The sway's middle pose, held."""
    from mirrorcam.embedding import DIM, Embedding

    return [(i * 1000.0 / 15, Embedding(np.full(DIM, 0.3, np.float32), np.ones(DIM, np.float32))) for i in range(n_ticks)]


def _sway_template(velocity_weight: float = 0.25):
    from mirrorcam.templates import Template

    frames = np.stack([e.vector for _, e in _sway(20)])
    return Template("sway", "sway", "dynamic", False, frames, 0.1, velocity_weight=velocity_weight)


def test_velocity_channel_charges_a_still_pose_for_not_moving():
    """The 'hub' problem: a pose held in the middle of a small oscillation is, frame by
    frame, close to all of it.  The velocity channel charges it for not moving the way
    the template moves, however small the swing."""

    opts = BankOptions(motion_floor=0.0)
    still = {w: best_distances([_sway_template(w)], _still(40), opts)[0] for w in (0.0, 0.25)}
    assert still[0.25] > 3.0 * still[0.0], still


@pytest.mark.parametrize("speed", [0.6, 1.0, 1.6])
def test_velocity_channel_matches_a_swing_at_another_speed(speed):

    opts = BankOptions(motion_floor=0.0)
    swing = best_distances([_sway_template()], _sway(60, speed), opts)[0]
    assert swing < 0.3 * best_distances([_sway_template()], _still(40), opts)[0]


def test_a_template_without_velocity_is_matched_on_the_pose_alone():
    """Templates choose the velocity channel one by one; the others are unaffected by it."""
    from mirrorcam.embedding import Embedding

    plain, moving = _sway_template(0.0), _sway_template(0.25)
    opts = BankOptions(motion_floor=0.0)
    # A noisy, slower sway: on the still pose the DP meets exact ties (distance 0 on the
    # template frames equal to it), which round-off in the matrix products breaks either
    # way depending on how many templates share them.
    rng = np.random.default_rng(3)
    noisy = [(t, Embedding(e.vector + rng.normal(0, 0.02, e.vector.shape).astype(np.float32), e.weight))
             for t, e in _sway(60, 0.8)]
    pose_only = best_distances([plain], noisy, opts)[0]
    together = best_distances([plain, moving], noisy, opts)
    assert together[0] == pytest.approx(pose_only, rel=1e-4)
    still = best_distances([plain, moving], _still(40), opts)
    assert still[1] > 3.0 * still[0]


@pytest.mark.parametrize("blas_rows", [2048, 5])  # (5: the products in chunks that split templates)
@pytest.mark.parametrize("outside", [False, True])
@pytest.mark.parametrize("unseen_context", [1.0, 0.1])
@pytest.mark.parametrize("side_specific", [(False, False, False), (True, False, True), (True, True, True)])
def test_frame_distance_is_the_weighted_squared_distance(side_specific, unseen_context, outside, blas_rows, monkeypatch):
    """The expanded matrix form (per-body-part squared columns, mirrored rows only for
    templates that are not side-specific) equals the distance written out directly, and
    so do the slowed copies' (from the rows' own distances) to the template stretched
    to half its pace."""
    import mirrorcam.frame_distance
    from mirrorcam.embedding import DIM, MIRROR_FEATURES, mirror_vector
    from mirrorcam.frame_distance import TemplateMatrices, part_trust, unseen_weights, velocity_features
    from mirrorcam.templates import Template

    monkeypatch.setattr(mirrorcam.frame_distance, "BLAS_ROWS", blas_rows)

    rng = np.random.default_rng(5)
    templates = [
        Template(f"t{i}", f"t{i}", "dynamic", side, rng.normal(0, 0.5, (n, DIM)).astype(np.float32), 0.1,
                 weights=rng.uniform(0.2, 1.0, (n, DIM)).astype(np.float32), velocity_weight=0.25 * i)
        for i, (side, n) in enumerate(zip(side_specific, (7, 12, 4)))
    ]
    opts = BankOptions(unseen_context=unseen_context)
    m = TemplateMatrices(templates, opts)
    x, dx = rng.normal(0, 0.5, DIM).astype(np.float32), rng.normal(0, 0.05, DIM).astype(np.float32)
    v = part_trust(rng.uniform(0.0, 1.0, DIM))  # one trust per body part, as embeddings give
    # Which body parts are inside the picture (some outside when ``outside``).
    inside = (part_trust(rng.uniform(0.0, 1.0, DIM)) > 0.4).astype(np.float32) if outside else np.ones(DIM, np.float32)
    got = m.frame_distance(np.stack([x, mirror_vector(x)]), np.stack([v, v[MIRROR_FEATURES]]),
                           np.stack([dx, mirror_vector(dx)]), np.stack([v, v[MIRROR_FEATURES]]),
                           np.stack([inside, inside[MIRROR_FEATURES]]))
    rows = [(t, False) for t in templates] + [(t, True) for t in templates if not t.side_specific]
    assert got[0].shape == (len(rows), 12)
    # Every row also has a slowed copy: each template frame, and one halfway to the next.
    assert got[1].shape == (len(rows), 23) and list(m.slowed.rows) == list(range(len(rows)))
    for r, (t, mirrored) in enumerate(rows):
        xi, vi, dxi = (mirror_vector(x), v[MIRROR_FEATURES], mirror_vector(dx)) if mirrored else (x, v, dx)
        ini = inside[MIRROR_FEATURES] if mirrored else inside
        w = t.importance * t.weights.mean(axis=0)
        # Hidden in the picture: per feature group; outside it: per body part.
        u_in, u_out = (w, w) if unseen_context == 1.0 else unseen_weights(t.frames, w, unseen_context)
        unseen = (u_in * (1 - vi) * ini).sum() + (u_out * (1 - vi) * (1 - ini)).sum()
        vx = velocity_features(dxi, opts.velocity_scale)
        stretched = np.empty((2 * len(t.frames) - 1, DIM), np.float32)
        stretched[0::2], stretched[1::2] = t.frames, (t.frames[:-1] + t.frames[1:]) / 2
        for y, block in ((t.frames, got[0]), (stretched, got[1])):
            step = np.diff(y, axis=0)
            vy = velocity_features(np.vstack([step[:1], step]), opts.velocity_scale)
            direct = ((w * vi * (xi - y) ** 2).sum(axis=1) + opts.unseen_cost * unseen
                      + t.velocity_weight * (w * vi * (vx - vy) ** 2).sum(axis=1)) / w.sum()
            np.testing.assert_allclose(block[r, : len(y)], direct, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("ratio", [0.0, 0.3, 0.999, 1.0, 1.2, 2.5, 40.0])
def test_threshold_ratio_inverts_the_activation(ratio):
    activation = activation_of(np.array([ratio * 0.07]), np.array([0.07]))
    assert threshold_ratio(activation)[0] == pytest.approx(ratio, rel=1e-3, abs=1e-3)


def test_threshold_ratio_of_no_match_is_infinite():
    assert np.isinf(threshold_ratio(np.array([0.0]))[0]) and threshold_ratio(np.array([0.5]))[0] == 1.0


@pytest.mark.parametrize("action", ["squat", "lunge", "wave_one_hand"])
def test_a_movement_followed_by_standing_still_fires_soon_after_it(action):
    """Standing still after a squat matched the template's standing end for seconds at full
    activation: the squat fired 4.4 s after it ended.  Now ``hold_ms`` after its activation
    stopped rising (1.5 s), plus ``settle_ms`` (1 s), at most."""
    move = perform(action, PerformerOptions(lead_in_s=0.5, noise_m=0.004, seed=3)).frames
    still = perform("stand", PerformerOptions(lead_in_s=3.0, noise_m=0.004, seed=4)).frames
    step = move[1].timestamp_ms - move[0].timestamp_ms
    frames = [replace(f, timestamp_ms=i * step, index=i) for i, f in enumerate([*move, *still])]
    bank = NeuronBank(builtin_library().templates)
    shown = [(f.timestamp_ms, g) for f in frames for a in bank.update(f).values() for g in a.firings]
    assert [g.template for _, g in shown] == [action], shown
    t, firing = shown[0]
    assert t - firing.end_ms <= 2600.0, (t, firing.end_ms)
    assert firing.end_ms <= len(move) * step  # it ended with the movement, not with the standing


def test_hold_ms_is_validated():
    with pytest.raises(ValueError, match="hold_ms"):
        BankOptions(hold_ms=0.0)


@pytest.mark.parametrize("next_rep", ["pending", "active", "none"])
def test_a_neurons_own_next_repetition_does_not_help_another_inhibit_it(next_rep):
    """The next wave may begin a quarter of the template before this one ends; counted with
    arms_up's 35 % of this wave's span it had dropped the wave (no single firing covers half)."""
    from mirrorcam.containers import Firing

    lib = builtin_library()
    bank = NeuronBank([lib.get("wave_one_hand"), lib.get("arms_up")])
    track = bank._new_track(0)
    wave = Firing("wave_one_hand", 0, 0.0, 1000.0, 1000.0, 0.80, 0.1)
    next_wave = Firing("wave_one_hand", 0, 750.0, 1750.0, 1750.0, 0.85, 0.09)
    arms_up = Firing("arms_up", 0, 250.0, 600.0, 600.0, 0.90, 0.05)
    ready = [wave, arms_up] + ([next_wave] if next_rep == "pending" else [])
    if next_rep == "active":
        track.active[0], track.peak[0], track.peak_dist[0] = True, 0.85, 0.09
        track.peak_start[0], track.peak_end[0] = 750.0, 1750.0
    assert not bank._inhibited(track, wave, ready)
    # ... while two other neurons' firings that cover most of it together do drop it
    assert bank._inhibited(track, wave, [wave, arms_up, Firing("arms_up", 0, 600.0, 900.0, 900.0, 0.9, 0.05)])


@pytest.mark.parametrize("reach_back_ms, new_repetition", [(400.0, False), (300.0, True)])
def test_the_overlap_allowed_between_two_prototypes_matches_is_the_mean_of_theirs(reach_back_ms, new_repetition):
    """A short style's firing (allowance 150 ms) and a long prototype's next match (533 ms):
    reaching 400 ms back into a 600 ms firing is the same movement again, not a new one; it
    had been given the long prototype's whole allowance."""
    lib = builtin_library()
    bank = NeuronBank([lib.get("squat")], BankOptions(inhibition=False))
    track = bank._new_track(0)
    short, long = np.array([150.0]), np.array([533.0])
    track.distance = np.array([0.1], np.float32)
    assert not bank._fire(track, 0, np.array([0.9], np.float32), np.array([0.0]), 600.0, short)  # on, at its peak
    fired = bank._fire(track, 0, np.array([0.9], np.float32), np.array([600.0 - reach_back_ms]), 600.0 + bank.tick_ms, long)
    assert bool(fired) == new_repetition  # superseded: the first is released, the second begins


def test_a_slowly_rising_activation_is_not_taken_for_a_held_one():
    """``hold_ms`` counts from the last rise of 0.02; measured from the peak, which follows
    every smaller step, a steady rise of 0.015 a tick had fired half-way up."""
    lib = builtin_library()
    bank = NeuronBank([lib.get("squat")], BankOptions(inhibition=False))
    track = bank._new_track(0)
    fired, t = [], 0.0
    for k in range(60):
        level = min(0.5 + 0.015 * k, 0.99)  # the top after 33 ticks (2.2 s), then held
        track.distance = np.array([0.1], np.float32)
        fired += [(t, f.score) for f in bank._fire(track, 0, np.array([level], np.float32), np.array([t - 1500.0]), t, bank._overlap_ms)]
        t += bank.tick_ms
    assert len(fired) == 1 and fired[0][1] == pytest.approx(0.99, abs=1e-6), fired
    assert fired[0][0] > 33 * bank.tick_ms, fired  # after the top, not on the way up


def test_a_template_that_never_matched_is_infinitely_far_not_a_thousand_thresholds():
    from mirrorcam.matching import activation_of, threshold_ratio

    act = activation_of(np.array([np.inf, 0.1, 0.2]), np.array([0.1, 0.1, 0.1]))
    assert act[0] == 0.0 and np.isinf(threshold_ratio(act)[0])
    assert threshold_ratio(act)[1:] == pytest.approx([1.0, 2.0], rel=1e-5)


def test_tick_stream_takes_the_trust_of_a_frame_a_tick_falls_on():
    """As the bank does: between two frames the lower trust, on a frame that frame's own."""
    from mirrorcam.embedding import DIM, Embedding
    from mirrorcam.matching import tick_stream

    def emb(trust):
        return Embedding(np.zeros(DIM, np.float32), np.full(DIM, trust, np.float32), np.ones(DIM, np.float32))

    times, _, weights = tick_stream([(0.0, emb(1.0)), (1000 / 15, emb(0.2)), (2000 / 15, emb(1.0))])
    assert weights[:, 0].tolist() == pytest.approx([1.0, 0.2, 1.0])
    times, _, weights = tick_stream([(0.0, emb(1.0)), (100.0, emb(0.2))])  # a tick between two frames
    assert weights[:, 0].tolist() == pytest.approx([1.0, 0.2])


def _classified_distances(templates, recording, options: BankOptions) -> np.ndarray:
    """The lowest distance each template reaches while the clip runs through NeuronBank.update."""
    bank = NeuronBank(templates, options)
    best = np.full(len(bank.templates), np.inf, np.float32)
    for frame in recording.frames:
        bank.update(frame)
        for pid in bank.people():
            best = np.minimum(best, bank.distances(pid))
    bank.finish()
    for pid in bank.people():
        best = np.minimum(best, bank.distances(pid))
    return best


def _squats_with_an_absence(options: BankOptions):
    """Three generated squats, the person hidden for 2.5 s (over ``person_timeout_ms``) from
    40 % of the clip on; returns the recording and when the absence starts."""
    rec = perform("squat", PerformerOptions(repeats=3, seed=1))
    t0 = rec.frames[0].timestamp_ms + 0.4 * (rec.frames[-1].timestamp_ms - rec.frames[0].timestamp_ms)
    gap = options.person_timeout_ms + 500.0
    return replace(rec, frames=tuple(replace(f, persons=()) if t0 <= f.timestamp_ms < t0 + gap else f for f in rec.frames)), t0


def test_best_distances_ends_the_stream_where_the_bank_sees_the_person_leave():
    """The bank ends a stream where the person has left and starts another when they come
    back; calibration (``best_distances``) had interpolated across the absence."""
    from mirrorcam.templates import embed_recording

    options = BankOptions()
    rec, _ = _squats_with_an_absence(options)
    stream = embed_recording(rec)
    assert max(b - a for (a, _), (b, _) in zip(stream, stream[1:])) > options.person_timeout_ms
    templates = [p for t in builtin_library().templates for p in t.prototypes()]
    np.testing.assert_allclose(best_distances(templates, stream, options),
                               _classified_distances(templates, rec, options), rtol=1e-5)


def test_loso_candidate_windows_do_not_span_an_absence():
    """A LOSO candidate template made of frames interpolated across an absence is a
    movement nobody performed."""
    from mirrorcam.modes.eval import candidate_windows
    from mirrorcam.templates import RATE_HZ, embed_recording

    options = BankOptions()
    rec, t0 = _squats_with_an_absence(options)
    stream = embed_recording(rec)
    last_before = max(t for t, _ in stream if t < t0)
    first_after = min(t for t, _ in stream if t >= t0)
    windows = candidate_windows(stream, RATE_HZ)
    assert windows
    for frames, _, start_s in windows:
        start, end = start_s * 1000.0, start_s * 1000.0 + (len(frames) - 1) * 1000.0 / RATE_HZ
        assert end <= last_before + 1e-6 or start >= first_after - 1e-6, (start, end)
