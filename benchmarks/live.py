"""The live screen end to end: frame rate, render + match cost, capture-to-display latency.

Runs the real ``mirrorcam live`` machinery (capture thread, pose thread with the full
model, two neuron banks, the screen, a window when ``$DISPLAY`` is set) against:

* a simulated 30 fps camera (a shared clip pushed in real time by a thread), and
* an HTTP MJPEG stream of the same clip served on 127.0.0.1 by a child process,

for ``--seconds`` each (default 15), ignoring the first 3 s (model warm-up).  Also
times the screen alone at 1280x720 on synthetic input.  Latency is measured from the
moment the capture thread got the frame to the moment the screen holding it was shown
(or, without a display, drawn); "growth" compares the median of the last third with
the first third of the run (a queue that fills would show here).  "match" is the two
neuron banks' updates alone; "clip" is OTHER's clip advancing (a video's picture decoded;
the demo's recordings used here have none), kept out of render + match (which had
included it).  Prints one JSON object on its last line.

    .venv/bin/python benchmarks/live.py [--seconds 15] [--clip RJ-song_MediapipePy/squat.mp4] [--num-poses 1]
    .venv/bin/python benchmarks/live.py --screen-only   # the screen's cost alone, in seconds
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from _common import emit, machine, shared_clips

from mirrorcam.mjpeg import MjpegServerProcess
from mirrorcam.modes.common import display_available, load_templates
from mirrorcam.modes.live import LiveApp, run_loop
from mirrorcam.modes.observed import demo_recordings
from mirrorcam.pipeline import PoseWorker
from mirrorcam.pose import PoseEstimator, PoseEstimatorOptions
from mirrorcam.sources import simulated_camera, url_source

WARMUP_S = 3.0


def pct(values, q) -> float | None:
    return round(float(np.percentile(values, q)), 2) if len(values) else None


def measure(source, seconds: float, show: bool, num_poses: int = 2) -> dict:
    _, observed = demo_recordings()
    options = PoseEstimatorOptions(model_variant="full", num_poses=num_poses)
    app = LiveApp(load_templates(None), observed, (1280, 720), model_variant="full")
    times: list[float] = []
    pose_ms: list[float] = []
    start = time.perf_counter()
    with PoseEstimator.create_from_options(options) as estimator:
        worker = PoseWorker(source, estimator)

        def next_frame(timeout):
            frame = worker.get(timeout)
            if frame is not None:
                times.append(time.perf_counter() - start)
                pose_ms.append(frame.timings_ms.get("pose", float("nan")))
            return frame

        try:
            stats = run_loop(app, next_frame, show, None, seconds)
        finally:
            worker.close()
            source.close()
    keep = [i for i, t in enumerate(times) if t >= WARMUP_S]
    # One latency per frame shown, but Stats keeps only the newest (STATS_FRAMES): the
    # lists are lined up at their ends.
    latencies = list(stats.latency_ms)
    skipped = len(times) - len(latencies)
    latency = [latencies[i - skipped] for i in keep if 0 <= i - skipped < len(latencies)]
    span = (times[keep[-1]] - times[keep[0]]) if len(keep) > 1 else 0.0
    third = max(1, len(latency) // 3)
    return {
        "fps": round((len(keep) - 1) / span, 1) if span > 0 else 0.0,
        "latency_ms_p50": pct(latency, 50),
        "latency_ms_p95": pct(latency, 95),
        "latency_growth_ms": round(float(np.median(latency[-third:]) - np.median(latency[:third])), 1) if latency else None,
        "pose_ms_p50": pct([pose_ms[i] for i in keep], 50),
        "match_ms_p50": pct(stats.match_ms, 50),  # the banks' updates alone
        "clip_ms_p50": pct(stats.clip_ms, 50),  # OTHER's clip advancing (a video's picture decoded)
        "render_ms_p50": pct(stats.render_ms, 50),
        "render_plus_match_ms_p50": pct(np.add(stats.match_ms, stats.render_ms), 50),
        "render_plus_match_ms_p95": pct(np.add(stats.match_ms, stats.render_ms), 95),
        "frames_dropped_by_capture": getattr(source, "frames_dropped", None),
        "frames_shown": len(keep),
    }


def screen_only(frames: int = 300) -> dict:
    """Render + match cost on the embedded demo (no camera, no pose), at 1280x720."""
    you, observed = demo_recordings()
    app = LiveApp(load_templates(None), observed, (1280, 720), debug=True)
    for i in range(min(frames, len(you))):
        app.step(you.frames[i], i * 1000.0 / you.fps)
    total = np.add(app.stats.match_ms, app.stats.render_ms)
    return {"render_plus_match_ms_p50": pct(total, 50), "render_plus_match_ms_p95": pct(total, 95),
            "render_ms_p50": pct(app.stats.render_ms, 50), "match_ms_p50": pct(app.stats.match_ms, 50),
            "clip_ms_p50": pct(app.stats.clip_ms, 50)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--clip", default="RJ-song_MediapipePy/squat.mp4", help="clip under the shared clips folder")
    parser.add_argument("--num-poses", type=int, default=1,
                        help="most people per frame, as `mirrorcam live --num-poses` (default 1, live's own default beside a clip)")
    parser.add_argument("--screen-only", action="store_true", help="only the screen's render + match cost (no camera, no model)")
    args = parser.parse_args()
    if args.screen_only:
        emit({"machine": machine(), "screen_only_1280x720": screen_only()})
        return
    clip = shared_clips() / args.clip
    show = display_available()
    figures = {"machine": machine(), "clip": args.clip, "window": show, "seconds": args.seconds, "num_poses": args.num_poses,
               "screen_only_1280x720": screen_only()}
    figures["simulated_camera_30fps"] = measure(simulated_camera(clip, fps=30.0), args.seconds, show, args.num_poses)
    with MjpegServerProcess(clip, fps=30.0) as server:
        figures["mjpeg_127.0.0.1_30fps"] = measure(url_source(server.url), args.seconds, show, args.num_poses)
    emit(figures)


if __name__ == "__main__":
    main()
