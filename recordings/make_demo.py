"""Regenerate the embedded demo's landmark recordings (``make demo`` without a camera).

Everything here is made by mirrorcam itself: synthetic performers from
:mod:`mirrorcam.performer` (keyframed joint angles rendered to BlazePose landmarks),
never footage.  Run from the repository root::

    .venv/bin/python recordings/make_demo.py

Writes ``observed_*.npz`` (the OTHER channel's clips, played in name order) and
``self_demo.npz`` (the "you" performance, replayed as if from the camera).  The self
performance copies each observed action about two seconds after it starts, so the demo
shows a mirror event for each clip.
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
# (action, repeats of the observed performer, repeats of the self performer)
PLAYLIST = (("wave_one_hand", 3, 2), ("squat", 3, 2), ("arms_up", 4, 2))
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
    for k, (action, other_reps, self_reps) in enumerate(PLAYLIST):
        observed = perform(action, PerformerOptions(
            fps=FPS, repeats=other_reps, lead_in_s=0.6, yaw_deg=25.0, translation=(0.35, 0.4),
            shape=OTHER_BODY, image_size=SIZE, noise_m=0.004, seed=10 + k,
        ))
        observed = replace(observed, source=f"generated: {action} (observed performer)")
        save_recording(HERE / f"observed_{k + 1}_{action}.npz", observed)
        # The visitor stands still while watching (~2 s), copies the action, then stands
        # until the clip ends, so the self timeline stays aligned with the playlist.
        copy = perform(action, PerformerOptions(fps=FPS, repeats=self_reps, lead_in_s=0.4, image_size=SIZE, noise_m=0.004, seed=20 + k))
        total = len(observed.frames)
        watch = min(int(2.0 * FPS), max(int(0.5 * FPS), total - len(copy.frames) - int(0.3 * FPS)))
        rest = copy.frames[0].persons
        frames = [replace(copy.frames[0], persons=rest)] * watch + list(copy.frames)
        frames += [replace(copy.frames[-1], persons=copy.frames[-1].persons)] * max(0, total - len(frames))
        self_parts.append(Recording(tuple(frames), FPS, SIZE))
    save_recording(HERE / "self_demo.npz", concat(self_parts, "generated: the demo's visitor copying each observed clip"))
    print(f"wrote {len(PLAYLIST)} observed clips and self_demo.npz to {HERE}")


if __name__ == "__main__":
    main()
