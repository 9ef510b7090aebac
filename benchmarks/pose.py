"""Pose stage milliseconds per frame at 640x480, for each provisioned model variant, and
the far search (:class:`mirrorcam.pose.FarSearch`): how often a person far from the
camera is found, and what a picture with nobody in it costs.

Usage: ``python benchmarks/pose.py [--frames N]``. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import statistics
import time

import cv2
import numpy as np

from _common import emit, machine, peak_rss_mb, shared_clips

from mirrorcam.containers import Frame
from mirrorcam.errors import ModelError
from mirrorcam.modelstore import VARIANTS, verified_bundle
from mirrorcam.pose import CAMERA_FAR_SEARCH_MS, PoseEstimator, PoseEstimatorOptions

CLIP = "RJ-song_MediapipePy/jumpingjacks.mp4"  # one person, full body, 1280x720


def load_frames(n: int) -> list:
    cap = cv2.VideoCapture(str(shared_clips() / CLIP))
    frames = []
    while len(frames) < n:
        ok, image = cap.read()
        if not ok:
            break
        frames.append(cv2.resize(image, (640, 480)))
    cap.release()
    return frames


def bench(variant: str, frames: list, num_poses: int) -> dict:
    opts = PoseEstimatorOptions(model_variant=variant, num_poses=num_poses)
    with PoseEstimator.create_from_options(opts) as estimator:
        for i, image in enumerate(frames[:10]):  # warm-up
            estimator.process(Frame(image, i * 33.3, i))
        times = []
        for i, image in enumerate(frames):
            start = time.perf_counter()
            estimator.process(Frame(image, (i + 10) * 33.3, i))
            times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {
        "ms_mean": round(statistics.fmean(times), 2),
        "ms_p50": round(times[len(times) // 2], 2),
        "ms_p95": round(times[int(len(times) * 0.95)], 2),
        "fps": round(1000 / statistics.fmean(times), 1),
    }


def far_away(image, shrink: float):
    """``image`` shrunk to ``shrink``, standing on the bottom edge, centred, on its median colour:
    the same person further from the camera."""
    h, w = image.shape[:2]
    canvas = np.empty_like(image)
    canvas[:] = np.median(image.reshape(-1, 3), axis=0)
    small = cv2.resize(image, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
    x0 = (w - small.shape[1]) // 2
    canvas[h - small.shape[0] :, x0 : x0 + small.shape[1]] = small
    return canvas


def bench_far(frames: list) -> dict:
    """Per setting (off, a camera's 100 ms budget, files' every crop): the share of frames a
    far person is found on, at two distances, and the milliseconds of an empty picture."""
    settings = {"off": {"far_zoom": 1.0}, "camera": {"far_search_ms": CAMERA_FAR_SEARCH_MS}, "files": {"far_search_ms": 0.0}}
    empty = np.empty_like(frames[0])
    empty[:] = np.median(frames[0].reshape(-1, 3), axis=0)  # a bare wall
    out = {}
    for name, kwargs in settings.items():
        opts = PoseEstimatorOptions(num_poses=1, **kwargs)
        row = {}
        for shrink in (0.35, 0.25):
            with PoseEstimator.create_from_options(opts) as estimator:
                found = sum(bool(estimator.process(Frame(far_away(im, shrink), i * 33.3, i)).persons) for i, im in enumerate(frames))
            row[f"found_at_{shrink}"] = round(found / len(frames), 3)
        with PoseEstimator.create_from_options(opts) as estimator:
            times = []
            for i in range(len(frames)):
                start = time.perf_counter()
                estimator.process(Frame(empty, i * 33.3, i))
                times.append((time.perf_counter() - start) * 1000)
        # A file searches every crop for its first second with nobody (FILE_FULL_SEARCH_MS),
        # then as a camera does: the two apart (the first 10 frames warm up).
        first = times[10:30]
        times = sorted(times[40:])
        row["empty_first_second_ms_mean"] = round(statistics.fmean(first), 2)
        row["empty_ms_mean"] = round(statistics.fmean(times), 2)
        row["empty_ms_p95"] = round(times[int(len(times) * 0.95)], 2)
        out[name] = row
        print(f"far search {name:6s}: {row}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=150)
    args = parser.parse_args()
    frames = load_frames(args.frames)
    figures = {"resolution": "640x480", "frames": len(frames), "clip": CLIP, **machine()}
    for variant in VARIANTS:
        try:
            if verified_bundle(variant) is None:
                figures[variant] = "not provisioned"
                continue
        except ModelError as exc:
            figures[variant] = f"bad bundle: {exc}"
            continue
        for num_poses in (1, 2):
            result = bench(variant, frames, num_poses)
            figures[f"{variant}_poses{num_poses}"] = result
            print(f"{variant:5s} num_poses={num_poses}: {result}")
    if verified_bundle("full") is not None:
        figures["far_search"] = bench_far(frames)
    figures["peak_rss_mb"] = round(peak_rss_mb(), 1)
    emit(figures)


if __name__ == "__main__":
    main()
