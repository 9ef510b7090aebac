"""Replay throughput (frames per second against the clip's own fps) and peak memory.

Runs ``mirrorcam replay`` in-process on clips from the shared set, with the full model,
annotated video out and events out, no window.  Usage: ``python benchmarks/replay.py``.
Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _common import emit, machine, peak_rss_mb, shared_clips

from mirrorcam.modes.common import load_bank
from mirrorcam.modes.replay import replay_clip
from mirrorcam.pose import PoseEstimator, PoseEstimatorOptions
from mirrorcam.sources import VideoFileSource

CLIPS = [
    "RJ-song_MediapipePy/jumpingjacks.mp4",   # 1280x720, 24 fps, one person
    "sudchaudhary_vad/claping.avi",           # 640x480, 29.6 fps, one person
    "felixchenfy_rtar/exercise.avi",          # 384x288, 10 fps, several people
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--num-poses", type=int, default=2)
    args = parser.parse_args()
    figures = {"model": "full", "num_poses": args.num_poses, **machine()}

    class Args:
        no_templates = False
        templates = None

    bank = load_bank(Args)
    with PoseEstimator.create_from_options(PoseEstimatorOptions(num_poses=args.num_poses)) as estimator, \
            tempfile.TemporaryDirectory() as tmp:
        for relative in CLIPS:
            path = shared_clips() / relative
            with VideoFileSource(path) as source:
                clip_fps, size = source.fps, source.size
            summary = replay_clip(path, estimator, bank, Path(tmp) / "out.mp4", Path(tmp) / "ev.jsonl", show=False)
            figures[relative] = {
                "size": f"{size[0]}x{size[1]}",
                "clip_fps": round(clip_fps, 2),
                "replay_fps": round(summary.fps, 1),
                "realtime_factor": round(summary.fps / clip_fps, 2),
                "frames": summary.frames,
            }
            print(relative, figures[relative])
    figures["peak_rss_mb"] = round(peak_rss_mb(), 1)
    emit(figures)


if __name__ == "__main__":
    main()
