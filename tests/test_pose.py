"""Pose stage: real MediaPipe inference on real footage, smoothing and tracking."""

from __future__ import annotations

import numpy as np
import pytest

from mirrorcam.containers import Frame, Person
from mirrorcam.pose import OneEuroFilter, PersonTracker, PoseEstimator, PoseEstimatorOptions
from mirrorcam.sources import VideoFileSource


def _run(path, options: PoseEstimatorOptions, limit: int | None = None):
    out = []
    with PoseEstimator.create_from_options(options) as estimator, VideoFileSource(path) as source:
        for frame in source:
            out.append(estimator.process(frame))
            if limit and len(out) >= limit:
                break
    return out


@pytest.mark.parametrize(
    "relative",
    [
        "omkarnagarkar55_HAR/wave.mp4",          # 420x420 at 10 fps
        "bward_site/waving.mp4",                 # pillarboxed portrait in 1280x720
        "fitnesspipe/single_squat_demo.mp4",     # 1920x1080 full body
        "hanle_robotvision/wave_test2.mp4",      # upper body only, close to the camera
    ],
)
def test_a_person_is_found_and_lies_inside_the_frame(clip, pose_model, relative: str) -> None:
    frames = _run(clip(relative), PoseEstimatorOptions(num_poses=1), limit=60)
    found = [f for f in frames if f.persons]
    assert len(found) >= 0.9 * len(frames), f"a person in only {len(found)} of {len(frames)} frames"
    for pose_frame in found:
        person = pose_frame.persons[0]
        visible = person.visibility > 0.8
        assert visible.sum() >= 8
        xy = person.landmarks[visible, :2]
        assert xy.min() >= -0.05 and xy.max() <= 1.05, "visible landmarks must fall inside the frame"
        # World landmarks are metric and hip-centred: a body is about 1-2 m tall.
        assert np.abs(person.world).max() < 1.5
        assert np.linalg.norm(person.world[[23, 24]].mean(axis=0)) < 0.1


def test_two_people_get_two_stable_ids(clip, pose_model) -> None:
    # Three performers side by side; MediaPipe finds two of them for most of the clip.
    frames = _run(clip("felixchenfy_rtar/exercise.avi"), PoseEstimatorOptions(num_poses=2))
    both = [f for f in frames if {p.id for p in f.persons} == {0, 1}]
    assert len(both) >= 0.6 * len(frames), f"two ids in only {len(both)} of {len(frames)} frames"
    # The person on the left stays person 0 while both stay in view: no identity swaps.
    left_is_zero = [f.person(0).center[0] < f.person(1).center[0] for f in both]
    assert all(left_is_zero) or not any(left_is_zero), "ids swapped between the two people"
    assert all(p.id in (0, 1) for f in frames for p in f.persons), "no spurious new ids"


def test_timestamps_that_repeat_or_go_back_do_not_crash(clip, pose_model) -> None:
    with VideoFileSource(clip("omkarnagarkar55_HAR/wave.mp4")) as source:
        images = [f.image for _, f in zip(range(6), source)]
    stamps = [0.0, 0.0, 100.0, 40.0, 40.0, -5.0]
    with PoseEstimator.create_from_options(PoseEstimatorOptions(num_poses=1)) as estimator:
        results = [estimator.process(Frame(img, t, i)) for i, (img, t) in enumerate(zip(images, stamps))]
    assert [r.timestamp_ms for r in results] == stamps
    assert sum(bool(r.persons) for r in results) >= 5


def test_smoothing_reduces_jitter_on_a_standing_person(clip, pose_model) -> None:
    path = clip("omkarnagarkar55_HAR/stand.mp4")
    raw = _run(path, PoseEstimatorOptions(num_poses=1, smoothing=False))
    smooth = _run(path, PoseEstimatorOptions(num_poses=1, smoothing=True))

    def jitter(frames) -> float:
        xs = np.stack([f.persons[0].world for f in frames if f.persons])
        return float(np.abs(np.diff(xs, n=2, axis=0)).mean())

    assert jitter(smooth) < 0.8 * jitter(raw)


def test_estimator_closes_twice_and_refuses_use_after_close(pose_model) -> None:
    estimator = PoseEstimator.create_from_options(PoseEstimatorOptions())
    estimator.close()
    estimator.close()
    with pytest.raises(RuntimeError, match="closed"):
        estimator.process(Frame(np.zeros((32, 32, 3), np.uint8), 0.0, 0))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model_variant": "huge"}, "model_variant"),
        ({"num_poses": 0}, "num_poses"),
        ({"min_detection_confidence": 1.5}, "min_detection_confidence"),
        ({"min_tracking_confidence": -0.1}, "min_tracking_confidence"),
        ({"smoothing_min_cutoff": 0}, "smoothing_min_cutoff"),
        ({"track_max_gap_ms": 0}, "track_max_gap_ms"),
    ],
)
def test_options_are_validated(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PoseEstimatorOptions(**kwargs)


# --- One-Euro filter on deterministic synthetic signals -------------------------------

def test_one_euro_keeps_a_constant_signal() -> None:
    f = OneEuroFilter()
    x = np.full((33, 3), 0.42, np.float32)
    for i in range(30):
        out = f(x, i / 30)
    np.testing.assert_allclose(out, x, atol=1e-6)


@pytest.mark.parametrize(("min_cutoff", "max_ratio"), [(0.5, 0.3), (2.0, 0.6)])
def test_one_euro_removes_jitter_at_rest(min_cutoff: float, max_ratio: float) -> None:
    rng = np.random.default_rng(0)
    noisy = 0.5 + rng.normal(0, 0.01, size=(300, 4))
    f = OneEuroFilter(min_cutoff=min_cutoff, beta=0.0)
    smoothed = np.stack([f(x, i / 30) for i, x in enumerate(noisy)])
    assert smoothed[30:].std() < max_ratio * noisy[30:].std()


def test_one_euro_speed_term_reduces_lag() -> None:
    t = np.arange(60) / 30
    ramp = (2.0 * t)[:, None]  # fast, steady movement
    lag = {}
    for beta in (0.0, 1.0):
        f = OneEuroFilter(min_cutoff=1.0, beta=beta)
        out = np.stack([f(x, ti) for x, ti in zip(ramp, t)])
        lag[beta] = float(np.abs(out[-1] - ramp[-1]).item())
    assert lag[1.0] < 0.5 * lag[0.0]


@pytest.mark.parametrize("kwargs", [{"min_cutoff": 0}, {"beta": -1}, {"d_cutoff": 0}])
def test_one_euro_validates(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        OneEuroFilter(**kwargs)


# --- Tracker on deterministic synthetic people ----------------------------------------

def _synthetic_person(cx: float, cy: float = 0.5, size: float = 0.3) -> Person:
    base = np.zeros((33, 3), np.float32)
    base[:, 0], base[:, 1] = cx, cy
    base[[11, 12], 1] = cy - size / 2   # shoulders
    base[[23, 24], 1] = cy + size / 2   # hips
    base[[11, 23], 0] = cx - 0.05
    base[[12, 24], 0] = cx + 0.05
    ones = np.ones(33, np.float32)
    return Person(-1, base, np.zeros((33, 3), np.float32), ones, ones)


def test_tracker_keeps_ids_by_position_whatever_the_detection_order() -> None:
    tracker = PersonTracker(PoseEstimatorOptions(smoothing=False))
    for i in range(40):
        left, right = _synthetic_person(0.25 + 0.002 * i), _synthetic_person(0.75 - 0.002 * i)
        detections = [left, right] if i % 2 else [right, left]  # MediaPipe's order is arbitrary
        tracked = tracker.update(detections, i * 33.0)
        by_id = {p.id: p.center[0] for p in tracked}
        assert set(by_id) == {0, 1}
        assert by_id[0] < by_id[1], f"frame {i}: the left person lost id 0"


def test_tracker_reuses_freed_ids_after_a_gap() -> None:
    options = PoseEstimatorOptions(smoothing=False, track_max_gap_ms=200)
    tracker = PersonTracker(options)
    assert [p.id for p in tracker.update([_synthetic_person(0.3)], 0.0)] == [0]
    assert tracker.update([], 100.0) == ()
    assert [p.id for p in tracker.update([_synthetic_person(0.31)], 150.0)] == [0], "short gap keeps the id"
    second = tracker.update([_synthetic_person(0.3), _synthetic_person(0.8)], 200.0)
    assert [p.id for p in second] == [0, 1]
    later = tracker.update([_synthetic_person(0.8)], 1000.0)
    assert [p.id for p in later] == [0], "after the gap, ids start again from 0"
