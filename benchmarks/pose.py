"""Pose stage milliseconds per frame at 640x480, for each provisioned model variant.

Usage: ``python benchmarks/pose.py [--frames N]``. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import statistics
import time

import cv2

from _common import emit, machine, peak_rss_mb, shared_clips

from mirrorcam.containers import Frame
from mirrorcam.errors import ModelError
from mirrorcam.modelstore import VARIANTS, verified_bundle
from mirrorcam.pose import PoseEstimator, PoseEstimatorOptions

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
    figures["peak_rss_mb"] = round(peak_rss_mb(), 1)
    emit(figures)


if __name__ == "__main__":
    main()
