"""Synthetic performers: keyframed joint angles rendered to BlazePose landmarks.

The built-in action templates are authored here, as keyframes of joint angles, and
rendered by forward kinematics to the 33 BlazePose landmarks, never copied from anyone's
footage.  The same generator makes the test performers: moved, scaled, with other body
proportions, turned away from the camera, mirrored, faster or slower, noisy, or with the
lower body out of view.

Conventions of the body frame used while authoring (metres):
    x points to the performer's own left, y up, z forward (where the performer faces);
    the origin is the midpoint of the hips.

Angles of a limb segment are ``(phi, psi)`` in degrees:
    ``phi`` swings in the frontal plane (0 = hanging down, 90 = out to the limb's own
    side, 180 = straight up, negative = across the body) and ``psi`` tilts it forward
    (90 = pointing straight ahead, negative = backwards).  Left and right use the same
    numbers for the mirror-symmetric pose, so a symmetric action reads symmetric.

Example:
    >>> rec = perform("squat", PerformerOptions(yaw_deg=30, speed=1.5, seed=1))
    >>> len(rec.frames) > 0
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from mirrorcam.containers import NUM_LANDMARKS, Person, PoseFrame
from mirrorcam.recording import Recording

# A relaxed standing pose: every keyframe starts from the previous one, the first from this.
REST: dict[str, tuple[float, float] | float] = {
    "l_arm": (8.0, 0.0), "r_arm": (8.0, 0.0), "l_fore": (6.0, 12.0), "r_fore": (6.0, 12.0),
    "l_thigh": (4.0, 0.0), "r_thigh": (4.0, 0.0), "l_shin": (3.0, 0.0), "r_shin": (3.0, 0.0),
    "pitch": 0.0, "roll": 0.0, "twist": 0.0, "lift": 0.0, "head_pitch": 0.0,
}


@dataclass(frozen=True)
class BodyShape:
    """Segment lengths in metres (MediaPipe's world landmarks are roughly this metric)."""

    shoulder_width: float = 0.34
    hip_width: float = 0.20
    torso: float = 0.50
    neck: float = 0.20
    upper_arm: float = 0.28
    forearm: float = 0.25
    thigh: float = 0.42
    shin: float = 0.40

    def __post_init__(self) -> None:
        for name, value in self.__dict__.items():
            if not 0.02 <= value <= 2.0:
                raise ValueError(f"BodyShape.{name} must be between 0.02 and 2.0 m, got {value}")

    @staticmethod
    def random(rng: np.random.Generator, spread: float = 0.12) -> BodyShape:
        """A body with each proportion scaled independently by up to +-``spread``."""
        base = BodyShape()
        return BodyShape(**{k: v * float(rng.uniform(1 - spread, 1 + spread)) for k, v in base.__dict__.items()})

    def scaled(self, factor: float) -> BodyShape:
        return BodyShape(**{k: v * factor for k, v in self.__dict__.items()})


@dataclass(frozen=True)
class Motion:
    """An authored movement: keyframes of joint angles over one cycle.

    Attributes:
        name: Action name, e.g. ``"squat"``.
        keyframes: ``(time_s, changes)`` pairs; each keyframe's pose is the previous one
            updated with ``changes`` (the first starts from :data:`REST`).  Times rise.
        cyclic: The last keyframe flows back into the first when repeated.
    """

    name: str
    keyframes: tuple[tuple[float, dict], ...]
    cyclic: bool = True

    def __post_init__(self) -> None:
        times = [t for t, _ in self.keyframes]
        if len(times) < 1 or any(b <= a for a, b in zip(times, times[1:])) or times[0] != 0.0:
            raise ValueError(f"Motion {self.name!r}: keyframe times must start at 0 and rise")
        for _, changes in self.keyframes:
            unknown = set(changes) - set(REST)
            if unknown:
                raise ValueError(f"Motion {self.name!r}: unknown joint(s) {sorted(unknown)}")

    @property
    def duration(self) -> float:
        return self.keyframes[-1][0]

    def poses(self) -> list[dict]:
        """Full joint-angle dicts of every keyframe."""
        out, pose = [], dict(REST)
        for _, changes in self.keyframes:
            pose = {**pose, **changes}
            out.append(pose)
        return out

    def sample(self, t: float) -> dict:
        """Joint angles at ``t`` seconds into one cycle (smooth-step between keyframes)."""
        poses = self.poses()
        times = [k for k, _ in self.keyframes]
        if t <= 0 or len(times) == 1:
            return poses[0]
        if t >= times[-1]:
            return poses[-1]
        j = int(np.searchsorted(times, t, side="right"))
        a, b = poses[j - 1], poses[j]
        u = (t - times[j - 1]) / (times[j] - times[j - 1])
        u = u * u * (3 - 2 * u)  # ease in and out like a real limb
        return {k: _lerp(a[k], b[k], u) for k in REST}


def _lerp(a, b, u):
    if isinstance(a, tuple):
        return (a[0] + (b[0] - a[0]) * u, a[1] + (b[1] - a[1]) * u)
    return a + (b - a) * u


def _k(*pairs) -> tuple[tuple[float, dict], ...]:
    return tuple(pairs)


# ---------------------------------------------------------------------------------------
# The actions.  Built-ins (the public names) first, then the impostors used to calibrate
# rejection: everyday movements that must not fire anything.
# ---------------------------------------------------------------------------------------
# Boxing guard: elbows down by the ribs, fists up at the chin (forearms nearly upright).
_GUARD = {"l_arm": (12.0, 30.0), "r_arm": (12.0, 30.0), "l_fore": (192.0, 35.0), "r_fore": (192.0, 35.0)}
# A greeting wave: elbow a little below shoulder height, the hand up beside the head.
_WAVE_UP = {"r_arm": (75.0, 20.0), "r_fore": (165.0, 10.0)}

ACTIONS: dict[str, Motion] = {
    m.name: m
    for m in (
        Motion("wave_one_hand", _k(
            (0.0, _WAVE_UP),
            (0.3, {"r_fore": (135.0, 10.0)}),
            (0.6, {"r_fore": (195.0, 10.0)}),
            (0.9, {"r_fore": (135.0, 10.0)}),
            (1.2, {"r_fore": (195.0, 10.0)}),
            (1.5, {"r_fore": (165.0, 10.0)}),
        )),
        Motion("wave_both_hands", _k(
            (0.0, {**_WAVE_UP, "l_arm": (75.0, 20.0), "l_fore": (165.0, 10.0)}),
            (0.3, {"r_fore": (135.0, 10.0), "l_fore": (135.0, 10.0)}),
            (0.6, {"r_fore": (195.0, 10.0), "l_fore": (195.0, 10.0)}),
            (0.9, {"r_fore": (135.0, 10.0), "l_fore": (135.0, 10.0)}),
            (1.2, {"r_fore": (195.0, 10.0), "l_fore": (195.0, 10.0)}),
            (1.5, {"r_fore": (165.0, 10.0), "l_fore": (165.0, 10.0)}),
        )),
        Motion("clap", _k(
            (0.0, {"l_arm": (25.0, 45.0), "r_arm": (25.0, 45.0), "l_fore": (45.0, 80.0), "r_fore": (45.0, 80.0)}),
            (0.25, {"l_arm": (8.0, 40.0), "r_arm": (8.0, 40.0), "l_fore": (-55.0, 70.0), "r_fore": (-55.0, 70.0)}),
            (0.5, {"l_arm": (25.0, 45.0), "r_arm": (25.0, 45.0), "l_fore": (45.0, 80.0), "r_fore": (45.0, 80.0)}),
            (0.75, {"l_arm": (8.0, 40.0), "r_arm": (8.0, 40.0), "l_fore": (-55.0, 70.0), "r_fore": (-55.0, 70.0)}),
            (1.0, {"l_arm": (25.0, 45.0), "r_arm": (25.0, 45.0), "l_fore": (45.0, 80.0), "r_fore": (45.0, 80.0)}),
        )),
        Motion("arms_up", _k(
            (0.0, {}),
            (0.7, {"l_arm": (170.0, 5.0), "r_arm": (170.0, 5.0), "l_fore": (175.0, 5.0), "r_fore": (175.0, 5.0)}),
            (1.1, {}),
            (1.8, dict(REST)),
        )),
        Motion("arm_circles", _k(
            *[
                (0.25 * i, {
                    "l_arm": (90.0 + 30.0 * math.cos(i * math.pi / 2), 30.0 * math.sin(i * math.pi / 2)),
                    "r_arm": (90.0 + 30.0 * math.cos(i * math.pi / 2), 30.0 * math.sin(i * math.pi / 2)),
                    "l_fore": (90.0 + 38.0 * math.cos(i * math.pi / 2), 38.0 * math.sin(i * math.pi / 2)),
                    "r_fore": (90.0 + 38.0 * math.cos(i * math.pi / 2), 38.0 * math.sin(i * math.pi / 2)),
                })
                for i in range(9)
            ]
        )),
        Motion("punch", _k(
            (0.0, _GUARD),
            (0.2, {"r_arm": (10.0, 85.0), "r_fore": (5.0, 88.0), "twist": 15.0}),
            (0.35, {}),
            (0.6, {**_GUARD, "twist": 0.0}),
        )),
        Motion("jumping_jack", _k(
            (0.0, {}),
            (0.3, {"l_arm": (170.0, 5.0), "r_arm": (170.0, 5.0), "l_fore": (185.0, 5.0), "r_fore": (185.0, 5.0),
                   "l_thigh": (15.0, 0.0), "r_thigh": (15.0, 0.0), "l_shin": (15.0, 0.0), "r_shin": (15.0, 0.0),
                   "lift": 0.06}),
            (0.45, {"lift": 0.0}),
            (0.75, {"l_arm": (8.0, 0.0), "r_arm": (8.0, 0.0), "l_fore": (6.0, 12.0), "r_fore": (6.0, 12.0),
                    "l_thigh": (4.0, 0.0), "r_thigh": (4.0, 0.0), "l_shin": (3.0, 0.0), "r_shin": (3.0, 0.0),
                    "lift": 0.06}),
            (0.9, {"lift": 0.0}),
        )),
        Motion("squat", _k(
            (0.0, {}),
            (0.9, {"l_thigh": (12.0, 80.0), "r_thigh": (12.0, 80.0), "l_shin": (6.0, -15.0), "r_shin": (6.0, -15.0),
                   "pitch": 35.0, "l_arm": (10.0, 80.0), "r_arm": (10.0, 80.0), "l_fore": (5.0, 85.0), "r_fore": (5.0, 85.0)}),
            (1.2, {}),
            (2.1, dict(REST)),
        )),
        Motion("lunge", _k(
            (0.0, {}),
            (0.9, {"r_thigh": (3.0, 70.0), "r_shin": (2.0, -5.0), "l_thigh": (3.0, -30.0), "l_shin": (2.0, -85.0),
                   "pitch": 5.0}),
            (1.2, {}),
            (2.1, dict(REST)),
        )),
        Motion("bend", _k(
            (0.0, {}),
            (1.0, {"pitch": 80.0, "l_arm": (3.0, 0.0), "r_arm": (3.0, 0.0), "l_fore": (3.0, 0.0), "r_fore": (3.0, 0.0),
                   "l_thigh": (4.0, -8.0), "r_thigh": (4.0, -8.0), "head_pitch": 20.0}),
            (1.4, {}),
            (2.4, dict(REST)),
        )),
        Motion("jump_in_place", _k(
            (0.0, {}),
            (0.25, {"l_thigh": (4.0, 40.0), "r_thigh": (4.0, 40.0), "l_shin": (3.0, -25.0), "r_shin": (3.0, -25.0),
                    "pitch": 20.0, "l_arm": (10.0, -30.0), "r_arm": (10.0, -30.0)}),
            (0.45, {"l_thigh": (3.0, 0.0), "r_thigh": (3.0, 0.0), "l_shin": (2.0, -5.0), "r_shin": (2.0, -5.0),
                    "pitch": 0.0, "l_arm": (20.0, 60.0), "r_arm": (20.0, 60.0), "lift": 0.25}),
            (0.65, {"l_thigh": (4.0, 20.0), "r_thigh": (4.0, 20.0), "l_shin": (3.0, -10.0), "r_shin": (3.0, -10.0),
                    "lift": 0.0, "l_arm": (10.0, 10.0), "r_arm": (10.0, 10.0)}),
            (0.9, {"l_thigh": (4.0, 0.0), "r_thigh": (4.0, 0.0), "l_shin": (3.0, 0.0), "r_shin": (3.0, 0.0),
                   "pitch": 0.0, "l_arm": (8.0, 0.0), "r_arm": (8.0, 0.0)}),
        )),
        Motion("high_knees", _k(
            (0.0, {}),
            (0.2, {"l_thigh": (3.0, 85.0), "l_shin": (2.0, 5.0), "lift": 0.04, "r_arm": (8.0, 35.0), "r_fore": (10.0, 80.0),
                   "l_arm": (8.0, -20.0), "l_fore": (8.0, 40.0)}),
            (0.4, {"l_thigh": (4.0, 0.0), "l_shin": (3.0, 0.0), "lift": 0.0, "r_arm": (8.0, 0.0), "r_fore": (6.0, 30.0),
                   "l_arm": (8.0, 0.0), "l_fore": (6.0, 30.0)}),
            (0.6, {"r_thigh": (3.0, 85.0), "r_shin": (2.0, 5.0), "lift": 0.04, "l_arm": (8.0, 35.0), "l_fore": (10.0, 80.0),
                   "r_arm": (8.0, -20.0), "r_fore": (8.0, 40.0)}),
            (0.8, {"r_thigh": (4.0, 0.0), "r_shin": (3.0, 0.0), "lift": 0.0, "l_arm": (8.0, 0.0), "l_fore": (6.0, 30.0),
                   "r_arm": (8.0, 0.0), "r_fore": (6.0, 30.0)}),
        )),
        # Other styles of the built-ins ("action:style"): people perform the same action
        # in more than one way, and a neuron must recognise the common ones.
        Motion("wave_one_hand:overhead", _k(  # the whole arm sweeping above the head
            (0.0, {"r_arm": (150.0, 5.0), "r_fore": (165.0, 5.0)}),
            (0.35, {"r_arm": (105.0, 5.0), "r_fore": (120.0, 5.0)}),
            (0.7, {"r_arm": (165.0, 5.0), "r_fore": (195.0, 5.0)}),
            (1.05, {"r_arm": (105.0, 5.0), "r_fore": (120.0, 5.0)}),
            (1.4, {"r_arm": (150.0, 5.0), "r_fore": (165.0, 5.0)}),
        )),
        Motion("wave_one_hand:low", _k(  # elbow by the side, the hand at face height
            (0.0, {"r_arm": (25.0, 25.0), "r_fore": (160.0, 15.0)}),
            (0.3, {"r_fore": (130.0, 15.0)}),
            (0.6, {"r_fore": (190.0, 15.0)}),
            (0.9, {"r_fore": (130.0, 15.0)}),
            (1.2, {"r_fore": (190.0, 15.0)}),
            (1.5, {"r_fore": (160.0, 15.0)}),
        )),
        Motion("wave_both_hands:overhead", _k(
            (0.0, {"r_arm": (150.0, 5.0), "r_fore": (165.0, 5.0), "l_arm": (150.0, 5.0), "l_fore": (165.0, 5.0)}),
            (0.35, {"r_arm": (105.0, 5.0), "r_fore": (120.0, 5.0), "l_arm": (105.0, 5.0), "l_fore": (120.0, 5.0)}),
            (0.7, {"r_arm": (165.0, 5.0), "r_fore": (195.0, 5.0), "l_arm": (165.0, 5.0), "l_fore": (195.0, 5.0)}),
            (1.05, {"r_arm": (105.0, 5.0), "r_fore": (120.0, 5.0), "l_arm": (105.0, 5.0), "l_fore": (120.0, 5.0)}),
            (1.4, {"r_arm": (150.0, 5.0), "r_fore": (165.0, 5.0), "l_arm": (150.0, 5.0), "l_fore": (165.0, 5.0)}),
        )),
        Motion("clap:wide", _k(  # arms opened out to the sides between claps
            (0.0, {"l_arm": (60.0, 40.0), "r_arm": (60.0, 40.0), "l_fore": (65.0, 45.0), "r_fore": (65.0, 45.0)}),
            (0.35, {"l_arm": (8.0, 40.0), "r_arm": (8.0, 40.0), "l_fore": (-55.0, 70.0), "r_fore": (-55.0, 70.0)}),
            (0.7, {"l_arm": (60.0, 40.0), "r_arm": (60.0, 40.0), "l_fore": (65.0, 45.0), "r_fore": (65.0, 45.0)}),
            (1.05, {"l_arm": (8.0, 40.0), "r_arm": (8.0, 40.0), "l_fore": (-55.0, 70.0), "r_fore": (-55.0, 70.0)}),
            (1.4, {"l_arm": (60.0, 40.0), "r_arm": (60.0, 40.0), "l_fore": (65.0, 45.0), "r_fore": (65.0, 45.0)}),
        )),
        Motion("arms_up:press", _k(  # from the hands at the shoulders (a press), standing or seated
            (0.0, {"l_arm": (80.0, 15.0), "r_arm": (80.0, 15.0), "l_fore": (178.0, 10.0), "r_fore": (178.0, 10.0)}),
            (0.6, {"l_arm": (165.0, 5.0), "r_arm": (165.0, 5.0), "l_fore": (175.0, 5.0), "r_fore": (175.0, 5.0)}),
            (0.9, {}),
            (1.5, {"l_arm": (80.0, 15.0), "r_arm": (80.0, 15.0), "l_fore": (178.0, 10.0), "r_fore": (178.0, 10.0)}),
        )),
        Motion("jump_in_place:tuck", _k(  # knees pulled up in the air
            (0.0, {}),
            (0.25, {"l_thigh": (4.0, 45.0), "r_thigh": (4.0, 45.0), "l_shin": (3.0, -30.0), "r_shin": (3.0, -30.0),
                    "pitch": 25.0, "l_arm": (10.0, -20.0), "r_arm": (10.0, -20.0)}),
            (0.5, {"l_thigh": (4.0, 85.0), "r_thigh": (4.0, 85.0), "l_shin": (3.0, -20.0), "r_shin": (3.0, -20.0),
                   "pitch": 10.0, "l_arm": (20.0, 50.0), "r_arm": (20.0, 50.0), "lift": 0.35}),
            (0.75, {"l_thigh": (4.0, 35.0), "r_thigh": (4.0, 35.0), "l_shin": (3.0, -25.0), "r_shin": (3.0, -25.0),
                    "pitch": 20.0, "lift": 0.0, "l_arm": (10.0, 10.0), "r_arm": (10.0, 10.0)}),
            (1.0, {"l_thigh": (4.0, 0.0), "r_thigh": (4.0, 0.0), "l_shin": (3.0, 0.0), "r_shin": (3.0, 0.0),
                   "pitch": 0.0, "l_arm": (8.0, 0.0), "r_arm": (8.0, 0.0)}),
        )),
        Motion("high_knees:kick", _k(  # the heel behind the knee, arms pumping
            (0.0, {}),
            (0.2, {"l_thigh": (3.0, 75.0), "l_shin": (2.0, -35.0), "lift": 0.04, "r_arm": (8.0, 45.0), "r_fore": (10.0, 100.0),
                   "l_arm": (8.0, -30.0), "l_fore": (8.0, 40.0)}),
            (0.4, {"l_thigh": (4.0, 0.0), "l_shin": (3.0, 0.0), "lift": 0.0, "r_arm": (8.0, 0.0), "r_fore": (6.0, 45.0),
                   "l_arm": (8.0, 0.0), "l_fore": (6.0, 45.0)}),
            (0.6, {"r_thigh": (3.0, 75.0), "r_shin": (2.0, -35.0), "lift": 0.04, "l_arm": (8.0, 45.0), "l_fore": (10.0, 100.0),
                   "r_arm": (8.0, -30.0), "r_fore": (8.0, 40.0)}),
            (0.8, {"r_thigh": (4.0, 0.0), "r_shin": (3.0, 0.0), "lift": 0.0, "l_arm": (8.0, 0.0), "l_fore": (6.0, 45.0),
                   "r_arm": (8.0, 0.0), "r_fore": (6.0, 45.0)}),
        )),
        # Impostors: must fire nothing.
        Motion("stand", _k((0.0, {}), (1.0, {"roll": 2.0, "l_arm": (10.0, 3.0)}), (2.0, {"roll": -1.0}), (3.0, dict(REST)))),
        Motion("walk_in_place", _k(
            (0.0, {}),
            (0.3, {"l_thigh": (3.0, 30.0), "l_shin": (2.0, -20.0), "l_arm": (8.0, -15.0), "r_arm": (8.0, 20.0)}),
            (0.6, {"l_thigh": (4.0, 0.0), "l_shin": (3.0, 0.0), "l_arm": (8.0, 0.0), "r_arm": (8.0, 0.0)}),
            (0.9, {"r_thigh": (3.0, 30.0), "r_shin": (2.0, -20.0), "r_arm": (8.0, -15.0), "l_arm": (8.0, 20.0)}),
            (1.2, {"r_thigh": (4.0, 0.0), "r_shin": (3.0, 0.0), "l_arm": (8.0, 0.0), "r_arm": (8.0, 0.0)}),
        )),
        Motion("touch_face", _k(
            (0.0, {}),
            (0.6, {"r_arm": (15.0, 60.0), "r_fore": (-150.0, 20.0)}),
            (1.4, {}),
            (2.0, {"r_arm": (8.0, 0.0), "r_fore": (6.0, 12.0)}),
            (2.6, {}),
        )),
        Motion("lateral_raise", _k(
            (0.0, {}),
            (0.9, {"l_arm": (85.0, 5.0), "r_arm": (85.0, 5.0), "l_fore": (88.0, 5.0), "r_fore": (88.0, 5.0)}),
            (1.2, {}),
            (2.1, dict(REST)),
        )),
        Motion("reach_forward", _k(
            (0.0, {}),
            (0.7, {"r_arm": (10.0, 75.0), "r_fore": (5.0, 80.0), "pitch": 10.0}),
            (1.2, {}),
            (1.9, dict(REST)),
        )),
        Motion("stretch_sideways", _k(
            (0.0, {}),
            (1.0, {"roll": 20.0, "r_arm": (160.0, 0.0), "r_fore": (190.0, 0.0)}),
            (1.5, {}),
            (2.5, dict(REST)),
        )),
        Motion("drink", _k(
            (0.0, {}),
            (0.7, {"r_arm": (10.0, 40.0), "r_fore": (-170.0, 25.0), "head_pitch": -15.0}),
            (1.5, {}),
            (2.2, dict(REST)),
        )),
        # Styles added since the built-ins were first calibrated go last: the generated
        # performers are seeded by their position here (`authoring.build_builtins`,
        # `synthetic_performances`), so appending leaves the others as they were.
        Motion("jump_in_place:high", _k(  # a deeper crouch and a higher jump, longer in the air
            (0.0, {}),
            (0.35, {"l_thigh": (4.0, 55.0), "r_thigh": (4.0, 55.0), "l_shin": (3.0, -35.0), "r_shin": (3.0, -35.0),
                    "pitch": 25.0}),
            (0.6, {"l_thigh": (3.0, 0.0), "r_thigh": (3.0, 0.0), "l_shin": (2.0, -5.0), "r_shin": (2.0, -5.0),
                   "pitch": 0.0, "lift": 0.45}),
            (0.85, {"l_thigh": (4.0, 10.0), "r_thigh": (4.0, 10.0), "l_shin": (3.0, -10.0), "r_shin": (3.0, -10.0), "lift": 0.0}),
            (1.05, {"l_thigh": (4.0, 50.0), "r_thigh": (4.0, 50.0), "l_shin": (3.0, -35.0), "r_shin": (3.0, -35.0),
                    "pitch": 25.0}),
            (1.4, {"l_thigh": (4.0, 0.0), "r_thigh": (4.0, 0.0), "l_shin": (3.0, 0.0), "r_shin": (3.0, 0.0),
                   "pitch": 0.0}),
        )),
    )
}

BUILTIN_ACTIONS: tuple[str, ...] = (
    "wave_one_hand", "wave_both_hands", "clap", "arms_up", "arm_circles", "punch",
    "jumping_jack", "squat", "lunge", "bend", "jump_in_place", "high_knees",
)
STYLE_ACTIONS: dict[str, tuple[str, ...]] = {
    a: tuple(n for n in ACTIONS if n.startswith(a + ":")) for a in BUILTIN_ACTIONS
}
"""Other styles of each built-in (``"action:style"`` motions), rendered as template variants."""
IMPOSTOR_ACTIONS: tuple[str, ...] = tuple(n for n in ACTIONS if n not in BUILTIN_ACTIONS and ":" not in n)


# ---------------------------------------------------------------------------------------
# Forward kinematics.
# ---------------------------------------------------------------------------------------
def _direction(angles: tuple[float, float], side: float) -> np.ndarray:
    phi, psi = math.radians(angles[0]), math.radians(angles[1])
    return np.array([side * math.cos(psi) * math.sin(phi), -math.cos(psi) * math.cos(phi), math.sin(psi)])


def _rot_x(a: float) -> np.ndarray:  # pitch: tilts +y toward +z (forward)
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _rot_z(a: float) -> np.ndarray:  # roll: tilts +y toward +x (own left)
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, s, 0], [-s, c, 0], [0, 0, 1]])


def _rot_y(a: float) -> np.ndarray:  # yaw: turns +z toward +x
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def body_landmarks(pose: dict, shape: BodyShape = BodyShape()) -> tuple[np.ndarray, float]:
    """Forward kinematics of one pose.

    Returns:
        ``(33, 3)`` landmarks in the body frame (x own left, y up, z forward, origin
        between the hips) and the height of the hip midpoint above the floor.
    """
    p = np.zeros((NUM_LANDMARKS, 3))
    torso_rot = _rot_y(math.radians(pose["twist"])) @ _rot_x(math.radians(pose["pitch"])) @ _rot_z(math.radians(pose["roll"]))
    hw, sw = shape.hip_width / 2, shape.shoulder_width / 2
    p[23], p[24] = (hw, 0, 0), (-hw, 0, 0)
    neck = torso_rot @ np.array([0.0, shape.torso, 0.0])
    p[11] = neck + torso_rot @ np.array([sw, 0, 0])
    p[12] = neck + torso_rot @ np.array([-sw, 0, 0])
    for side, sh, el, wr, pinky, index, thumb in ((1.0, 11, 13, 15, 17, 19, 21), (-1.0, 12, 14, 16, 18, 20, 22)):
        key = "l" if side > 0 else "r"
        upper = _direction(pose[f"{key}_arm"], side)
        fore = _direction(pose[f"{key}_fore"], side)
        p[el] = p[sh] + shape.upper_arm * upper
        p[wr] = p[el] + shape.forearm * fore
        # A loose hand: fingers continue the forearm, thumb toward the body's front.
        across = np.cross(fore, np.array([0.0, 0.0, 1.0]) if abs(fore[2]) < 0.9 else np.array([0.0, 1.0, 0.0]))
        across = across / (np.linalg.norm(across) + 1e-9)
        p[pinky] = p[wr] + 0.08 * fore - 0.02 * side * across
        p[index] = p[wr] + 0.09 * fore + 0.02 * side * across
        p[thumb] = p[wr] + 0.05 * fore + 0.03 * side * across + np.array([0, 0, 0.02])
    for side, hip, kn, an, heel, toe in ((1.0, 23, 25, 27, 29, 31), (-1.0, 24, 26, 28, 30, 32)):
        key = "l" if side > 0 else "r"
        p[kn] = p[hip] + shape.thigh * _direction(pose[f"{key}_thigh"], side)
        p[an] = p[kn] + shape.shin * _direction(pose[f"{key}_shin"], side)
        p[heel] = p[an] + np.array([0.0, -0.05, -0.05])
        p[toe] = p[an] + np.array([0.0, -0.07, 0.15])
    head_rot = torso_rot @ _rot_x(math.radians(pose["head_pitch"]))
    head = neck + torso_rot @ np.array([0.0, shape.neck * 0.75, 0.0])
    face = {
        0: (0.0, 0.0, 0.10), 1: (0.015, 0.03, 0.09), 2: (0.03, 0.03, 0.085), 3: (0.045, 0.03, 0.08),
        4: (-0.015, 0.03, 0.09), 5: (-0.03, 0.03, 0.085), 6: (-0.045, 0.03, 0.08), 7: (0.075, 0.01, 0.0),
        8: (-0.075, 0.01, 0.0), 9: (0.025, -0.04, 0.085), 10: (-0.025, -0.04, 0.085),
    }
    for i, offset in face.items():
        p[i] = head + head_rot @ np.array(offset)
    floor = -float(p[23:, 1].min())
    return p, floor + float(pose["lift"])


@dataclass(frozen=True)
class PerformerOptions:
    """How a synthetic performer is filmed.

    Attributes:
        fps: Frame rate of the generated recording.
        speed: Playback speed of the motion (0.5 = half as fast).
        repeats: Cycles performed (a non-cyclic motion is held this many times as long).
        lead_in_s: Seconds of standing still before and after the action.
        yaw_deg: Camera angle: 0 faces the camera, positive turns the performer to its left.
        mirror: Render the horizontal mirror image (as a flipped video shows it).
        translation: ``(x, z)`` metres the performer stands off-centre / further back.
        scale: Overall body size factor.
        shape: Body proportions (default: average; see :meth:`BodyShape.random`).
        noise_m: Standard deviation of landmark noise in metres (twice that in depth,
            which monocular pose estimation guesses worst).
        occlude_lower: Hips and legs below the picture (low visibility, made-up positions).
        camera_distance: Metres from camera to performer.
        image_size: ``(width, height)`` of the imagined camera.
        seed: Random seed for noise and style.
        style_deg: Personal style: every keyframe angle is offset by a random amount of
            this standard deviation (fixed for the whole performance).
        amplitude: How far the movement goes from rest (1 = as authored).
    """

    fps: float = 30.0
    speed: float = 1.0
    repeats: int = 1
    lead_in_s: float = 0.5
    yaw_deg: float = 0.0
    mirror: bool = False
    translation: tuple[float, float] = (0.0, 0.0)
    scale: float = 1.0
    shape: BodyShape = field(default_factory=BodyShape)
    noise_m: float = 0.0
    occlude_lower: bool = False
    camera_distance: float = 3.0
    image_size: tuple[int, int] = (640, 480)
    seed: int = 0
    style_deg: float = 0.0
    amplitude: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.style_deg <= 45.0:
            raise ValueError(f"style_deg must be between 0 and 45, got {self.style_deg}")
        if not 0.2 <= self.amplitude <= 2.0:
            raise ValueError(f"amplitude must be between 0.2 and 2, got {self.amplitude}")
        if not 1.0 <= self.fps <= 240.0:
            raise ValueError(f"fps must be between 1 and 240, got {self.fps}")
        if not 0.1 <= self.speed <= 10.0:
            raise ValueError(f"speed must be between 0.1 and 10, got {self.speed}")
        if self.repeats < 1:
            raise ValueError(f"repeats must be >= 1, got {self.repeats}")
        if self.lead_in_s < 0:
            raise ValueError(f"lead_in_s must be >= 0, got {self.lead_in_s}")
        if not -90.0 <= self.yaw_deg <= 90.0:
            raise ValueError(f"yaw_deg must be between -90 and 90, got {self.yaw_deg}")
        if not 0.3 <= self.scale <= 3.0:
            raise ValueError(f"scale must be between 0.3 and 3, got {self.scale}")
        if self.noise_m < 0:
            raise ValueError(f"noise_m must be >= 0, got {self.noise_m}")
        if self.camera_distance <= 0.5:
            raise ValueError(f"camera_distance must be > 0.5 m, got {self.camera_distance}")


def motion_poses(motion: Motion, options: PerformerOptions) -> tuple[np.ndarray, list[dict]]:
    """Timestamps (ms) and joint-angle poses of a performance, rest before and after."""
    cycle = motion.duration / options.speed
    hold = cycle if cycle > 0 else 0.5
    body = hold * options.repeats
    total = options.lead_in_s * 2 + body
    n = max(int(round(total * options.fps)), 1)
    times = np.arange(n) / options.fps
    first, last = motion.poses()[0], motion.poses()[-1]
    ease = min(0.3, options.lead_in_s) if options.lead_in_s > 0 else 0.0
    poses = []
    for t in times:
        u = t - options.lead_in_s
        if u < 0 or u > body:
            # Rest, easing into the action's first (or out of its last) pose.
            target = first if u < 0 else last
            gap = -u if u < 0 else u - body
            w = 0.0 if ease == 0 else max(0.0, 1.0 - gap / ease)
            w = w * w * (3 - 2 * w)
            poses.append({k: _lerp(REST[k], target[k], w) for k in REST})
        elif motion.duration == 0:
            poses.append(first)
        else:
            phase = (u * options.speed) % motion.duration if u < body else motion.duration
            if not motion.cyclic and u * options.speed >= motion.duration:
                phase = motion.duration
            poses.append(motion.sample(phase))
    return times * 1000.0, poses


def render_person(
    body: np.ndarray, hip_height: float, options: PerformerOptions, rng: np.random.Generator, person_id: int = 0
) -> Person:
    """Turn body-frame landmarks into a :class:`Person` as MediaPipe would report it."""
    yaw = _rot_y(math.radians(options.yaw_deg))
    turned = body @ yaw.T
    # Body frame (x left, y up, z forward) -> MediaPipe world (x image right, y down, z away).
    world = turned * np.array([1.0, -1.0, -1.0])
    visibility = np.full(NUM_LANDMARKS, 0.98)
    if options.occlude_lower:
        # Out of frame: MediaPipe still guesses legs, but standing ones and with low visibility.
        rest, _ = body_landmarks(dict(REST), options.shape.scaled(options.scale))
        world[23:] = (rest[23:] @ yaw.T) * np.array([1.0, -1.0, -1.0]) + rng.normal(0, 0.05, (10, 3))
        visibility[23:] = rng.uniform(0.01, 0.15, 10)
    if options.noise_m > 0:
        world = world + rng.normal(0.0, options.noise_m, world.shape) * np.array([1.0, 1.0, 2.0])
    # Pinhole camera at chest height looking along +z (MediaPipe world axes).
    w, h = options.image_size
    focal = 0.9 * w
    cam_height = 1.3
    cam = world.copy()
    cam[:, 0] += options.translation[0]
    cam[:, 1] += cam_height - hip_height
    cam[:, 2] += options.camera_distance + options.translation[1]
    cam[:, 2] = np.maximum(cam[:, 2], 0.3)
    image = np.stack(
        [0.5 + focal * cam[:, 0] / cam[:, 2] / w, 0.5 + focal * cam[:, 1] / cam[:, 2] / h, world[:, 2] * 0.3], axis=1
    )
    if options.occlude_lower:
        image[23:, 1] = np.maximum(image[23:, 1], 1.05)  # below the picture's bottom edge
    person = Person(
        id=person_id,
        landmarks=image.astype(np.float32),
        world=world.astype(np.float32),
        visibility=visibility.astype(np.float32),
        presence=np.ones(NUM_LANDMARKS, np.float32),
    )
    return person.mirrored() if options.mirror else person


def styled(motion: Motion, style_deg: float, amplitude: float, rng: np.random.Generator) -> Motion:
    """``motion`` as one particular person does it: angles offset, movement scaled."""
    offsets = {k: (rng.normal(0, style_deg, 2) if isinstance(v, tuple) else rng.normal(0, style_deg * 0.5)) for k, v in REST.items()}
    offsets["lift"] = 0.0
    keyframes = []
    for (t, _), pose in zip(motion.keyframes, motion.poses()):
        new = {}
        for k, v in pose.items():
            r = REST[k]
            if isinstance(v, tuple):
                new[k] = tuple(float(r[i] + amplitude * (v[i] - r[i]) + offsets[k][i] * rng.uniform(0.6, 1.0)) for i in range(2))
            elif k == "lift":
                new[k] = float(v * amplitude)
            else:
                new[k] = float(r + amplitude * (v - r) + offsets[k])
        keyframes.append((t, new))
    return Motion(motion.name, tuple(keyframes), motion.cyclic)


def _motion(motion: str | Motion) -> Motion:
    """``motion`` itself, or the action of that name (a clear ValueError, not a bare KeyError)."""
    if isinstance(motion, str):
        if motion not in ACTIONS:
            raise ValueError(f"unknown action {motion!r}; known: {', '.join(ACTIONS)}")
        return ACTIONS[motion]
    return motion


def perform(motion: str | Motion, options: PerformerOptions = PerformerOptions()) -> Recording:
    """Render a performance of ``motion`` to a landmark :class:`Recording`.

    Args:
        motion: An action name from :data:`ACTIONS` or a :class:`Motion`.
        options: Camera, body and timing of the performance.

    Raises:
        ValueError: Unknown action name.
    """
    motion = _motion(motion)
    rng = np.random.default_rng(options.seed)
    if options.style_deg > 0 or options.amplitude != 1.0:
        motion = styled(motion, options.style_deg, options.amplitude, rng)
    shape = options.shape.scaled(options.scale)
    stamps, poses = motion_poses(motion, options)
    frames = []
    for i, (t, pose) in enumerate(zip(stamps, poses)):
        body, hip_height = body_landmarks(pose, shape)
        person = render_person(body, hip_height, options, rng)
        frames.append(PoseFrame(float(t), i, (person,), options.image_size))
    return Recording(
        tuple(frames), options.fps, options.image_size, source=f"generated: {motion.name}", model_variant="generated",
        meta={"action": motion.name},
    )


def preview_landmarks(motion: str | Motion, fps: float = 10.0, speed: float = 1.0) -> np.ndarray:
    """``(K, 33, 3)`` float32 landmarks of one cycle, for drawing a little figure.

    Axes as MediaPipe world landmarks (x image right, y down, z away, facing the camera),
    so the screen can draw them like any person's world landmarks; the origin is on the
    floor below the hips, not between them, so that a squat lowers the body over its
    feet and a jump leaves the floor (hip-centred, the feet had risen to the hips).

    Raises:
        ValueError: Unknown action name.
    """
    motion = _motion(motion)
    n = max(int(round(motion.duration / speed * fps)), 1)
    out = []
    for i in range(n + 1):
        body, hip_height = body_landmarks(motion.sample(i / fps * speed), BodyShape())
        out.append((body + np.array([0.0, hip_height, 0.0])) * np.array([1.0, -1.0, -1.0]))
    return np.asarray(out, np.float32)
