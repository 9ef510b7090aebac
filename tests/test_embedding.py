"""The pose embedding: invariances, mirror convention and visibility weights (generated performers)."""

from __future__ import annotations

import numpy as np
import pytest

from mirrorcam.embedding import DIM, FEATURES, Embedding, embed_person, group_mask, mirror_vector
from mirrorcam.performer import BodyShape, PerformerOptions, perform


def _vectors(options: PerformerOptions, action: str = "punch") -> np.ndarray:
    rec = perform(action, options)
    return np.stack([embed_person(f.persons[0]).vector for f in rec.frames])


REFERENCE = PerformerOptions(seed=1)


@pytest.mark.parametrize(
    "change, moves",
    [
        # Where in the picture and how far from the camera: MediaPipe's world landmarks are
        # hip-centred metres, so only the image landmarks move (the performer models that).
        # These cases check that the embedding reads nothing of the picture's position or
        # size (it is built from the world landmarks alone); they cannot check more.
        ({"translation": (0.8, 1.5)}, {"image"}),
        ({"camera_distance": 5.0}, {"image"}),
        # A bigger or smaller body, a camera to the side: the world landmarks change too.
        ({"scale": 1.3}, {"image", "world"}),
        ({"scale": 0.75}, {"image", "world"}),
        ({"yaw_deg": 45.0}, {"image", "world"}),
        ({"yaw_deg": -45.0}, {"image", "world"}),
        ({"yaw_deg": 20.0, "translation": (-0.5, 0.5), "scale": 1.1}, {"image", "world"}),
    ],
)
def test_embedding_ignores_where_and_how_big_and_camera_yaw(change, moves):
    def landmarks(options: PerformerOptions) -> dict[str, np.ndarray]:
        persons = [f.persons[0] for f in perform("punch", options).frames]
        return {"image": np.stack([p.landmarks for p in persons]), "world": np.stack([p.world for p in persons])}

    before, after = landmarks(REFERENCE), landmarks(PerformerOptions(seed=1, **change))
    # (the premise: what the change moves, by well over the tolerance below)
    assert {k for k in before if np.abs(before[k] - after[k]).max() > 0.05} == moves
    base = _vectors(REFERENCE)
    other = _vectors(PerformerOptions(seed=1, **change))
    assert np.abs(base - other).max() < 1e-4


def test_body_proportions_change_directions_little():
    base = _vectors(REFERENCE, "wave_one_hand")
    other = _vectors(PerformerOptions(seed=1, shape=BodyShape.random(np.random.default_rng(5), 0.12)), "wave_one_hand")
    directions = np.array([n.endswith((".x", ".y", ".z")) and not n.startswith(("l_wrist", "r_wrist")) for n in FEATURES])
    assert np.abs(base[:, directions] - other[:, directions]).max() < 1e-4
    assert np.abs(base - other).mean() < 0.05


@pytest.mark.parametrize("action", ["wave_one_hand", "punch", "lunge", "high_knees"])
def test_mirrored_performer_gives_the_mirrored_embedding(action):
    rec = perform(action, PerformerOptions(yaw_deg=25.0))
    flipped = perform(action, PerformerOptions(yaw_deg=25.0, mirror=True))
    for f, g in zip(rec.frames[::5], flipped.frames[::5]):
        a, b = embed_person(f.persons[0]), embed_person(g.persons[0])
        np.testing.assert_allclose(a.mirrored().vector, b.vector, atol=1e-5)
        np.testing.assert_allclose(mirror_vector(mirror_vector(a.vector)), a.vector, atol=1e-6)


def test_side_specific_pose_differs_from_its_mirror():
    rec = perform("wave_one_hand", PerformerOptions())
    emb = embed_person(rec.frames[len(rec.frames) // 2].persons[0])
    assert np.abs(emb.vector - emb.mirrored().vector).max() > 0.5


def test_noise_moves_the_embedding_a_little():
    base = _vectors(REFERENCE)
    noisy = _vectors(PerformerOptions(seed=1, noise_m=0.01))
    assert 0 < np.abs(base - noisy).mean() < 0.1


def test_occluded_lower_body_weighs_the_legs_down():
    rec = perform("wave_one_hand", PerformerOptions(occlude_lower=True))
    emb = embed_person(rec.frames[10].persons[0])
    legs, arms = group_mask("legs"), group_mask("arms")
    assert emb.weight[legs].max() <= 0.15
    assert emb.weight[arms].min() > 0.9
    assert np.all(np.isfinite(emb.vector))


def test_in_view_tells_outside_the_picture_from_hidden_in_it():
    rec = perform("wave_one_hand", PerformerOptions(occlude_lower=True))
    emb = embed_person(rec.frames[10].persons[0])
    legs, arms = group_mask("legs"), group_mask("arms")
    assert emb.in_view[legs].max() == 0.0  # below the frame
    assert emb.in_view[group_mask("torso")].max() == 0.0  # the torso's direction needs the hips
    assert emb.in_view[arms].min() == 1.0
    # Standing in the picture: the upper body is in view; the feet, near the bottom
    # edge, are at most partly out (the edge is soft, see in_picture).
    seen = embed_person(perform("wave_one_hand", PerformerOptions()).frames[10].persons[0])
    assert seen.in_view[arms | group_mask("torso")].min() == 1.0
    assert seen.in_view.min() > 0.5
    # Mirroring swaps it with the features.
    person = rec.frames[10].persons[0]
    person.landmarks[15, 0] = -0.1  # the left wrist off the picture's left edge
    emb = embed_person(person)
    left_wrist = np.array([n.startswith("l_wrist") for n in FEATURES])
    right_wrist = np.array([n.startswith("r_wrist") for n in FEATURES])
    assert emb.in_view[left_wrist].max() == 0.0 and emb.in_view[right_wrist].min() == 1.0
    assert emb.mirrored().in_view[right_wrist].max() == 0.0 and emb.mirrored().in_view[left_wrist].min() == 1.0


@pytest.mark.parametrize(
    "xy, expected",
    [((0.5, 0.5), 1.0), ((0.03, 0.5), 1.0), ((0.5, 0.98), 1.0), ((0.5, 1.0), 0.5), ((-0.01, 0.5), 0.25),
     ((0.5, 1.02), 0.0), ((1.3, 0.5), 0.0), ((0.5, -0.5), 0.0)],
)
def test_in_picture_is_soft_at_the_edge(xy, expected):
    from mirrorcam.embedding import in_picture

    landmarks = np.full((33, 3), 0.5)
    landmarks[7, :2] = xy
    got = in_picture(landmarks)
    assert got[7] == pytest.approx(expected, abs=1e-9)
    assert np.all(np.delete(got, 7) == 1.0)


def _stream(recording, feature: str) -> np.ndarray:
    """One feature of the main person's embedding through a recording (streamed, as the matcher sees it)."""
    from mirrorcam.templates import embed_recording

    i = FEATURES.index(feature)
    return np.array([e.vector[i] for _, e in embed_recording(recording)])


def test_embedder_lift_sees_jumps():
    assert _stream(perform("jump_in_place", PerformerOptions(repeats=2)), "lift").max() > 0.15
    assert np.abs(_stream(perform("stand", PerformerOptions()), "lift")).max() < 0.05


@pytest.mark.parametrize(
    ("action", "noise_m", "low", "high"),
    [
        ("jump_in_place", 0.0, 0.8, 1.0),
        ("jump_in_place", 0.02, 0.8, 1.0),
        ("stand", 0.02, 0.0, 0.1),
        ("walk_in_place", 0.02, 0.0, 0.1),
        ("jumping_jack", 0.02, 0.0, 0.1),  # authored as a 6 cm hop: below the dead zone
        ("high_knees", 0.0, 0.0, 0.1),  # one foot stays down
        ("squat", 0.0, 0.0, 0.3),
        ("squat", 0.02, 0.0, 0.5),
        ("lunge", 0.02, 0.0, 0.5),
    ],
)
def test_airborne_is_near_one_in_a_jump_only(action, noise_m, low, high):
    # The generated squat's feet move in depth and read as up to ~0.2 in the image, its
    # noise as ~0.3 more; the dead zone and the ankles' smoothing keep both under a jump's.
    peak = _stream(perform(action, PerformerOptions(repeats=3, noise_m=noise_m, seed=1)), "airborne").max()
    assert low <= peak <= high


@pytest.mark.parametrize(
    ("relative", "low", "high"),
    [
        ("be2018_darebee/jump_knee_tucks.mp4", 0.10, 1.0),  # in the air on 20 % of its frames
        ("be2018_darebee/squat.mp4", 0.0, 0.02),  # the same woman and view, squatting: 0 %
        ("RJ-song_MediapipePy/squat.mp4", 0.0, 0.02),  # 1 %: the ankles jump at the clip's very end
    ],
    ids=["knee-tucks", "squats-same-person", "squats-other"],
)
def test_airborne_tells_real_jumps_from_real_squats(clip, relative, low, high):
    from mirrorcam.pipeline import clip_landmarks

    share_in_air = (_stream(clip_landmarks(clip(relative), progress=False), "airborne") > 0.5).mean()
    assert low <= share_in_air <= high


def _walking_past(recording, torso_lengths_per_s: float):
    """A recording whose person also crosses the picture sideways at a steady speed."""
    from dataclasses import replace

    first, (width, height) = recording.frames[0].persons[0].landmarks, recording.frames[0].image_size
    pixels = np.array([width, height])
    torso = float(np.linalg.norm(((first[11, :2] + first[12, :2]) / 2 - (first[23, :2] + first[24, :2]) / 2) * pixels))
    t0 = recording.frames[0].timestamp_ms

    def moved(frame):
        dx = torso * torso_lengths_per_s * (frame.timestamp_ms - t0) / 1000.0 / width  # normalised x
        persons = tuple(replace(p, landmarks=p.landmarks + np.array([dx, 0.0, 0.0], np.float32)) for p in frame.persons)
        return replace(frame, persons=persons)

    return replace(recording, frames=tuple(moved(f) for f in recording.frames))


@pytest.mark.parametrize(
    ("action", "noise_m", "speed", "low", "high"),
    [
        ("walk_in_place", 0.0, 0.0, 0.0, 0.0),
        ("walk_in_place", 0.03, 0.0, 0.0, 0.05),  # noise is no movement
        ("lunge", 0.02, 0.0, 0.0, 0.05),
        ("jumping_jack", 0.02, 0.0, 0.0, 0.05),
        ("walk_in_place", 0.02, 0.2, 0.0, 0.05),  # a slow drift: under the dead zone
        ("walk_in_place", 0.02, 0.4, 0.0, 0.25),  # near it, the noise's peaks show
        ("walk_in_place", 0.02, 2.5, 0.85, 1.0),  # walking past
        ("walk_in_place", 0.02, -2.5, 0.85, 1.0),  # the other way
    ],
)
def test_travel_is_near_one_only_for_someone_crossing_the_picture(action, noise_m, speed, low, high):
    recording = _walking_past(perform(action, PerformerOptions(repeats=3, noise_m=noise_m, seed=2)), speed)
    travel = _stream(recording, "travel")
    assert low <= travel[len(travel) // 2:].min() and travel.max() <= high  # after the 0.3 s average settles


@pytest.mark.parametrize(
    ("relative", "low", "high"),
    [
        ("weizmann_frames/weizmann_clean_walk_p09.mp4", 0.7, 1.0),
        ("weizmann_frames/weizmann_clean_skip_p10.mp4", 0.7, 1.0),
        ("weizmann_frames/weizmann_clean_wave1_p08.mp4", 0.0, 0.05),
        ("weizmann_frames/weizmann_clean_jack_p08.mp4", 0.0, 0.05),
    ],
    ids=["walk", "skip", "wave", "jumping-jack"],
)
def test_travel_tells_real_walkers_from_actions_on_the_spot(clip, relative, low, high):
    from mirrorcam.pipeline import clip_landmarks

    mean_travel = _stream(clip_landmarks(clip(relative), progress=False), "travel").mean()
    assert low <= mean_travel <= high


def test_embedding_validates_shapes():
    with pytest.raises(ValueError):
        Embedding(np.zeros(3, np.float32), np.zeros(3, np.float32))
    with pytest.raises(ValueError):
        Embedding(np.zeros(DIM, np.float32), np.zeros(DIM, np.float32), np.ones(3, np.float32))
    assert Embedding(np.zeros(DIM, np.float32), np.zeros(DIM, np.float32)).in_view.min() == 1.0
    assert len(FEATURES) == DIM


def test_a_segment_of_nan_length_has_no_direction_and_no_weight():
    # A NaN wrist: the forearm's length is NaN, which fails both "n > eps" (so a zero
    # direction) and "n <= eps" (so it had kept its full weight, counted as seen).
    from dataclasses import replace

    person = perform("squat", PerformerOptions(seed=1)).frames[10].persons[0]
    world = person.world.copy()
    world[15] = np.nan
    e = embed_person(replace(person, world=world))
    forearm = [FEATURES.index(f"l_forearm.{axis}") for axis in "xyz"]
    assert e.vector[forearm].tolist() == [0.0, 0.0, 0.0]
    assert e.weight[forearm].tolist() == [0.0, 0.0, 0.0]
    assert e.weight[FEATURES.index("r_forearm.x")] > 0.5  # the other arm is untouched


def test_an_unknown_action_is_the_same_clear_error_for_a_performance_and_a_preview():
    from mirrorcam.performer import preview_landmarks

    for make in (perform, preview_landmarks):
        with pytest.raises(ValueError, match="unknown action 'moonwalk'"):
            make("moonwalk")


@pytest.mark.parametrize("bad", [{"speed": 0.0}, {"fps": 0.5}, {"yaw_deg": 120.0}, {"scale": 10.0}, {"noise_m": -1.0}])
def test_performer_options_validated(bad):
    with pytest.raises(ValueError):
        PerformerOptions(**bad)


@pytest.mark.parametrize("seed", range(5))
def test_the_fast_length_and_forward_axis_equal_numpys_to_the_bit(seed):
    """The embedding's hand-written norm and cross product give exactly numpy's results
    (they replace np.linalg.norm and np.cross for speed, not to change a single bit)."""
    from mirrorcam.embedding import _length, body_frame

    rng = np.random.default_rng(seed)
    for v in rng.normal(0, [1e-3, 1.0, 1e3][seed % 3], (200, 3)):
        assert _length(v) == np.linalg.norm(v)
    world = rng.normal(0, 0.3, (33, 3))
    frame = body_frame(world, np.ones(33))
    np.testing.assert_array_equal(frame[2], np.cross(frame[0], frame[1]))
    np.testing.assert_allclose(frame @ frame.T, np.eye(3), atol=1e-12)
