"""Soak: the kiosk for >= 100,000 frames through a simulated camera, accelerated.

The camera is scripted (generated and recorded performers, crowds, someone too close,
unplugged cables) on a manual clock, so nothing sleeps; the kiosk loop, the neuron bank,
the playlist (including a real video clip being decoded) and the rendering are the real
ones.  Pose frames come from landmark recordings rather than MediaPipe, which would cost
~30 ms a frame on this machine (the brief allows it).

Checks: resident memory grows less than 20 MB after warm-up; no file handles or threads
leak.  ``MIRRORCAM_SOAK_FRAMES`` lowers the frame count for a quick local run.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time

import numpy as np
import pytest

from mirrorcam.kiosk.app import Kiosk, NullDisplay, load_library_and_bank, playable_clips, run_kiosk
from mirrorcam.kiosk.camera import ManualClock, Scene, ScriptedCamera, empty, generated_person, performing, unplugged
from mirrorcam.kiosk.config import load_config
from mirrorcam.kiosk.service import Counters, SystemdNotifier, remove_kiosk_log, setup_kiosk_log
from mirrorcam.performer import PerformerOptions, perform

from conftest import shared_path
from test_kiosk_app import wave_visitor, write_kiosk

FRAMES = int(os.environ.get("MIRRORCAM_SOAK_FRAMES", "100000"))
WARM_UP = min(10_000, FRAMES // 5)
SAMPLE_EVERY = max(FRAMES // 40, 100)


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def native_threads() -> int:
    return len(os.listdir("/proc/self/task"))


@pytest.mark.soak
@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs Linux /proc to measure memory and handles")
def test_soak_memory_handles_and_threads_stay_flat(tmp_path, capsys, monkeypatch):
    # pytest's log capture keeps every record in memory (a growth that is pytest's, not
    # the kiosk's): the kiosk's lines go only to its rotating file, as in production.
    monkeypatch.setattr(logging.getLogger("mirrorcam"), "propagate", False)
    playlist = [("wave_one_hand", "clips/wave.npz"), ("squat", "clips/squat.npz")]
    landmarks = None
    video = shared_path() / "clips" / "omkarnagarkar55_HAR" / "wave.mp4"
    if video.is_file():  # a real video clip too, decoded all along (landmarks from the cache)
        playlist.insert(1, ("wave_one_hand", str(video)))
    config_path = write_kiosk(tmp_path, playlist=playlist)
    config = load_config(config_path)
    templates, factory = load_library_and_bank(config)
    clips = playable_clips(config, templates, factory, landmarks)

    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(tmp_path / "notify.sock"))
    server.setblocking(False)
    clock = ManualClock()
    env = {"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "2000000"}
    notifier = SystemdNotifier(env, clock)
    counters = Counters(config.counters_path, config.storage.counters_flush_s, clock=clock)
    handler = setup_kiosk_log(config.log_path, 50_000, 2)
    kiosk = Kiosk(config, clips, factory(), clock, counters=counters, notifier=notifier)

    squat = perform("squat", PerformerOptions(repeats=6, seed=11, yaw_deg=-25, translation=(-0.3, 0.3)))
    crowd = lambda t: tuple(generated_person(i, cx=0.12 + 0.15 * i, height=0.35 + 0.1 * (i % 3), t=t) for i in range(5))
    close = lambda t: (generated_person(40, cx=0.45, height=2.8, t=t),)
    scenes = [
        empty(20),
        performing(wave_visitor(seed=1), 15, id_offset=10),
        Scene(8, crowd),
        unplugged(3),
        performing(squat, 20, id_offset=20),
        Scene(5, close),
        empty(10),
    ]
    image = np.full((240, 320, 3), 100, np.uint8)
    camera = ScriptedCamera(scenes, fps=30, clock=clock, loop=True, image=image)

    notes = {"pings": 0}
    samples: list[tuple[float, int, int, int]] = []  # (rss MB, fds, native threads, Python threads)
    before = (open_fds(), native_threads())

    def on_frame(k, canvas):
        n = k.frames
        if n >= WARM_UP and n % SAMPLE_EVERY == 0:
            samples.append((rss_mb(), open_fds(), native_threads(), threading.active_count()))
        if n % 15 == 0:
            while True:  # what systemd would read
                try:
                    server.recv(64)
                    notes["pings"] += 1
                except BlockingIOError:
                    break

    start = time.perf_counter()
    shown = run_kiosk(kiosk, camera, NullDisplay(), max_frames=FRAMES, on_frame=on_frame)
    seconds = time.perf_counter() - start
    kiosk.close()
    notifier.close()
    remove_kiosk_log(handler)
    server.close()
    after_close = (open_fds(), native_threads())

    assert shown == FRAMES
    rss = [round(x[0], 1) for x in samples]
    fds = [x[1] for x in samples]
    threads = [x[2] for x in samples]
    figures = {
        "frames": shown,
        "simulated_hours": round(clock() / 3600, 2),
        "ms_per_frame": round(seconds / shown * 1000, 2),
        "rss_after_warmup_mb": rss[0],
        "rss_end_mb": rss[-1],
        "rss_growth_mb": round(samples[-1][0] - samples[0][0], 1),
        "rss_samples_mb": rss,
        "fds_samples": fds,
        "threads_samples": threads,
        "fds_threads_before_and_after_close": [before, after_close],
        "events": kiosk.events_seen,
        "watchdog_pings": notes["pings"],
    }
    with capsys.disabled():
        print("\nkiosk soak:", json.dumps(figures))
    assert samples[-1][0] - samples[0][0] < 20.0, figures
    # Handles and threads go up and down with the video clip on show (FFmpeg's file and
    # its decoder threads, one per core plus one); a leak would climb with the sessions
    # (dozens of them here) and leave that band.
    assert max(fds) - min(fds) <= 2, figures
    assert max(threads) - min(threads) <= (os.cpu_count() or 2) + 2, figures
    assert len({x[3] for x in samples}) == 1, figures  # no Python thread comes or goes
    # Everything the kiosk opened is closed again.
    assert after_close[0] <= before[0] and after_close[1] <= before[1] + 2, figures
    # The loop really went round: sessions, mirror events, camera losses, heartbeats.
    assert kiosk.events_seen.get("session_started", 0) >= 2 and kiosk.events_seen.get("mirror", 0) >= 1, figures
    assert kiosk.events_seen.get("camera_lost", 0) >= 1, figures
    assert notes["pings"] > 0
    totals = json.loads(config.counters_path.read_text())["totals"]
    assert totals["sessions"] == kiosk.events_seen["session_started"]
