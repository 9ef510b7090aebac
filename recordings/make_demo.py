"""Regenerate the embedded demo's landmark recordings (``make demo`` without a camera).

Everything here is made by mirrorcam itself: synthetic performers from
:mod:`mirrorcam.performer` (keyframed joint angles rendered to BlazePose landmarks),
never footage.  Run from the repository root::

    .venv/bin/python recordings/make_demo.py

Writes ``observed_*.npz`` (the OTHER channel's clips, played in name order) and
``self_demo.npz`` (the "you" performance, replayed as if from the camera).  The self
performance copies each observed action about two seconds after it starts, and each
observed performer keeps going until the copy's last firing is on screen, so the demo
shows a mirror event for each of the visitor's repetitions while OTHER still does that
action.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from mirrorcam.containers import PoseFrame
from mirrorcam.performer import BodyShape, PerformerOptions, perform
from mirrorcam.recording import Recording, save_recording

HERE = Path(__file__).resolve().parent
FPS = 30.0
SIZE = (640, 480)
# (action, repeats of the self performer); the observed performer repeats as often as it takes
PLAYLIST = (("wave_one_hand", 2), ("squat", 2), ("arms_up", 2))
WATCH_S = 2.0  # the visitor watches this long before copying
SETTLE_S = 1.5  # a firing is decided 1 s after it ends (the bank's settle_ms); OTHER goes on meanwhile
OTHER_BODY = BodyShape(shoulder_width=0.31, hip_width=0.22, torso=0.46, upper_arm=0.26, forearm=0.23, thigh=0.40, shin=0.38)


def concat(parts: list[Recording], source: str) -> Recording:
    """Recordings one after another on one timeline."""
    frames: list[PoseFrame] = []
    offset = 0.0
    for part in parts:
        for i, frame in enumerate(part.frames):
            frames.append(replace(frame, timestamp_ms=offset + i * 1000.0 / FPS, index=len(frames)))
        offset += len(part.frames) * 1000.0 / FPS
    return Recording(tuple(frames), FPS, SIZE, source=source, model_variant="generated")


def main() -> None:
    self_parts = []
    for k, (action, self_reps) in enumerate(PLAYLIST):
        copy = perform(action, PerformerOptions(fps=FPS, repeats=self_reps, lead_in_s=0.4, image_size=SIZE, noise_m=0.004, seed=20 + k))
        # OTHER keeps doing the action until the visitor's last copy has fired (and a
        # little longer): a mirror event must show both doing the same thing.
        other_reps = 1
        while True:
            observed = perform(action, PerformerOptions(
                fps=FPS, repeats=other_reps, lead_in_s=0.6, yaw_deg=25.0, translation=(0.35, 0.4),
                shape=OTHER_BODY, image_size=SIZE, noise_m=0.004, seed=10 + k,
            ))
            if observed.duration_s >= WATCH_S + copy.duration_s + SETTLE_S:
                break
            other_reps += 1
        observed = replace(observed, source=f"generated: {action} (observed performer)")
        save_recording(HERE / f"observed_{k + 1}_{action}.npz", observed)
        # The visitor stands while watching, copies the action, then stands until the clip
        # ends, so the self timeline stays aligned with the playlist.  Standing is a
        # generated standing person with the same camera noise, not one frame repeated: a
        # body frozen to the bit let the squat's match dwell on its standing end for 4.6 s
        # before it fired (on the shared clips' real people, at most 2.7 s).
        total = len(observed.frames)
        watch = int(WATCH_S * FPS)
        tail = max(0, total - watch - len(copy.frames))
        stand = perform("stand", PerformerOptions(fps=FPS, repeats=1, lead_in_s=(watch + tail) / FPS, image_size=SIZE,
                                                  noise_m=0.004, seed=30 + k)).frames
        frames = list(stand[:watch]) + list(copy.frames) + list(stand[watch:watch + tail])
        self_parts.append(Recording(tuple(frames), FPS, SIZE))
    save_recording(HERE / "self_demo.npz", concat(self_parts, "generated: the demo's visitor copying each observed clip"))
    print(f"wrote {len(PLAYLIST)} observed clips and self_demo.npz to {HERE}")


if __name__ == "__main__":
    main()
