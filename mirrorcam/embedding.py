"""View-invariant, mirror-aware pose embedding.

One person's landmarks in one frame become a fixed-length vector in which *doing* an
action and *seeing someone do it* look the same:

* **Body frame.**  MediaPipe's world landmarks are metric and hip-centred.  We keep
  gravity's vertical (world -y) and turn the horizontal plane so that x points along the
  performer's own left (the hip axis, or the shoulder axis when the hips are out of
  view) and z where they face.  A camera turned up to ~45 degrees, where the person
  stands and which way they face all drop out; bending forward does *not* (a spine-based
  frame would hide the ``bend`` action).
* **Size.**  Limb *directions* are unit vectors; positions are divided by the torso
  length (1.5 x the shoulder width, about the same, when the hips are not visible).
* **Features** (``FEATURES``): directions of torso, upper arms, forearms, thighs and
  shins; wrists relative to the shoulders; the hands' and the feet's distance; elbow and
  knee bend; ``lift``, the hips' vertical movement in the image (jumps and squats
  move the whole body, which hip-centred world landmarks cannot show);
  ``airborne``, both feet off the ground (a jump; a squat's feet stay on it); and
  ``travel``, the hips crossing the picture (walking past; every built-in action is
  done on the spot).
* **Weights.**  Every feature carries a weight from the visibility of the landmarks it
  uses (``FEATURE_LANDMARKS``), so an upper body alone (a laptop camera) is compared on
  its arms only, and ``in_view`` says whether those landmarks are inside the picture
  at all (MediaPipe guesses the ones beyond its edge) or hidden in it.
* **Mirror.**  :func:`mirror_vector` swaps left and right (``skeleton.MIRROR_PERMUTATION``
  plus negating x in the body frame) directly on the vector; the mirrored embedding of a
  pose equals the embedding of the horizontally flipped pose.

Example:
    >>> from mirrorcam.performer import perform
    >>> person = perform("wave_one_hand").frames[5].persons[0]
    >>> emb = embed_person(person)
    >>> emb.vector.shape == (DIM,)
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mirrorcam.containers import Person

# (name, from landmark, to landmark); the torso's ends are the shoulders' and hips' midpoints
_SEGMENTS = (
    ("torso", None, None),
    ("l_upper_arm", 11, 13), ("r_upper_arm", 12, 14),
    ("l_forearm", 13, 15), ("r_forearm", 14, 16),
    ("l_thigh", 23, 25), ("r_thigh", 24, 26),
    ("l_shin", 25, 27), ("r_shin", 26, 28),
)
_POSITIONS = (("l_wrist", 15), ("r_wrist", 16))
_SCALARS = ("hands_apart", "feet_apart", "l_elbow", "r_elbow", "l_knee", "r_knee", "lift", "airborne", "travel")
_ANGLES = ((11, 13, 15), (12, 14, 16), (23, 25, 27), (24, 26, 28))  # elbows and knees: (a, joint, c)


def _feature_names() -> tuple[str, ...]:
    names = []
    for name, *_ in _SEGMENTS:
        names += [f"{name}.x", f"{name}.y", f"{name}.z"]
    for name, _ in _POSITIONS:
        names += [f"{name}.x", f"{name}.y", f"{name}.z"]
    names += list(_SCALARS)
    return tuple(names)


FEATURES: tuple[str, ...] = _feature_names()
"""Names of the embedding's components, in order."""
DIM = len(FEATURES)
_MOVEMENT_FEATURES = [FEATURES.index(name) for name in ("lift", "airborne", "travel")]


def _feature_landmarks() -> np.ndarray:
    """``(DIM, 4)`` the landmarks each feature is made of (repeated to fill the row)."""
    uses: list[tuple[int, ...]] = []
    for name, a, b in _SEGMENTS:
        uses += [(11, 12, 23, 24) if name == "torso" else (a, b)] * 3
    for _, i in _POSITIONS:
        uses += [(i, 11, 12)] * 3  # relative to the shoulders
    uses += [(15, 16), (27, 28, 23, 24)]  # hands apart; feet apart (scaled by the torso)
    uses += list(_ANGLES)
    uses.append((23, 24))  # lift: the hips
    uses.append((27, 28))  # airborne: the ankles
    uses.append((23, 24))  # travel: the hips
    assert len(uses) == len(FEATURES)
    return np.array([(u * 4)[:4] for u in uses], np.int64)


FEATURE_LANDMARKS = _feature_landmarks()
"""``(DIM, 4)`` landmark indices each feature is computed from (its trust and in-view come from them)."""
EMBEDDING_VERSION = 3
"""Bumped whenever ``FEATURES`` or their meaning changes (templates record it)."""


def _swap_name(name: str) -> str:
    if name.startswith("l_"):
        return "r_" + name[2:]
    if name.startswith("r_"):
        return "l_" + name[2:]
    return name


def _mirror_tables() -> tuple[np.ndarray, np.ndarray]:
    index = {n: i for i, n in enumerate(FEATURES)}
    perm = np.array([index[_swap_name(n)] for n in FEATURES])
    sign = np.array([-1.0 if n.endswith(".x") else 1.0 for n in FEATURES], np.float32)
    return perm, sign


MIRROR_FEATURES, MIRROR_SIGN = _mirror_tables()
"""``mirrored = vector[MIRROR_FEATURES] * MIRROR_SIGN`` (weights: ``weight[MIRROR_FEATURES]``)."""

# Feature groups, used for per-template importance weights.
GROUPS: dict[str, tuple[str, ...]] = {
    "torso": ("torso", "travel"),
    "arms": ("l_upper_arm", "r_upper_arm", "l_forearm", "r_forearm", "l_wrist", "r_wrist", "hands_apart", "l_elbow", "r_elbow"),
    "legs": ("l_thigh", "r_thigh", "l_shin", "r_shin", "feet_apart", "l_knee", "r_knee"),
    "lift": ("lift", "airborne"),
}


def group_mask(group: str) -> np.ndarray:
    """Boolean ``(DIM,)`` mask of the features of ``group`` (see :data:`GROUPS`)."""
    if group not in GROUPS:
        raise ValueError(f"unknown feature group {group!r}; known: {', '.join(GROUPS)}")
    stems = GROUPS[group]
    return np.array([n.split(".")[0] in stems for n in FEATURES])


# Relative importance of feature kinds (why: angles are bounded in [0, 1] and cover the
# same information as the directions, so they get less; the torso carries bends;
# ``airborne`` and ``travel`` are one number where a body part's direction is three).
def _base_weight(name: str) -> float:
    if name in ("airborne", "travel"):
        return 3.0
    w = 1.5 if name.startswith("torso") else 0.6 if name.endswith(("_elbow", "_knee")) else 1.0
    if name.endswith(".z"):
        # Depth is what monocular pose estimation guesses worst, and a camera tilted up
        # or down leans the whole body forward or back in it (about 15 degrees on many
        # real clips); bending still shows in the torso's y component.  Limbs' depth at
        # a quarter weight (was a half): real side and 3/4 views put it furthest from
        # the authored templates (builtin eval 46.0 -> 48.6 %, 0.5x 27 -> 30 %).
        w *= 0.2 if name.startswith("torso") else 0.25
    return w


BASE_WEIGHT = np.array([_base_weight(n) for n in FEATURES], np.float32)


@dataclass(frozen=True)
class Embedding:
    """One person's pose in one frame, as features and their reliability.

    Attributes:
        vector: ``(DIM,)`` float32 features (see :data:`FEATURES`).
        weight: ``(DIM,)`` float32 in [0, 1]: how far each feature can be trusted
            (from landmark visibility; 0 = unknown).
        in_view: ``(DIM,)`` float32, 1 where the feature's landmarks are inside the
            picture and 0 where one is outside it (the legs under a laptop camera's
            frame; in between at the edge, see :func:`in_picture`), as opposed to
            hidden in it (a side view's far arm); all 1 when not given.  The matcher
            charges what is out of the picture only for the body parts a template moves.
    """

    vector: np.ndarray
    weight: np.ndarray
    in_view: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.vector.shape != (DIM,) or self.weight.shape != (DIM,):
            raise ValueError(f"Embedding vector and weight must have shape ({DIM},)")
        if self.in_view is None:
            object.__setattr__(self, "in_view", np.ones(DIM, np.float32))
        elif self.in_view.shape != (DIM,):
            raise ValueError(f"Embedding in_view must have shape ({DIM},)")

    def mirrored(self) -> Embedding:
        """The embedding of the left-right mirrored pose."""
        return Embedding(mirror_vector(self.vector), self.weight[MIRROR_FEATURES].copy(), self.in_view[MIRROR_FEATURES].copy())


def mirror_vector(vector: np.ndarray) -> np.ndarray:
    """Left-right swap of embedding vectors ``(..., DIM)``."""
    return (vector[..., MIRROR_FEATURES] * MIRROR_SIGN).astype(np.float32)


def _trust(visibility: np.ndarray) -> np.ndarray:
    # MediaPipe's visibility is a likelihood; below ~0.2 the position is a guess, but
    # an informed one (the model knows anatomy), so it keeps a little weight.
    return 0.1 + 0.9 * np.clip((visibility - 0.2) / 0.5, 0.0, 1.0)


def _length(v: np.ndarray) -> float:
    """Euclidean length of a small vector: ``np.linalg.norm``'s own formula for 1-D
    input (``sqrt(v . v)``, the same bits) without its per-call overhead; an embedding
    takes about 25 of them, and the embedding runs for every person in every frame."""
    return math.sqrt(v.dot(v))


def body_frame(world: np.ndarray, trust: np.ndarray) -> np.ndarray:
    """``(3, 3)`` rows: the performer's left, up and forward in world coordinates."""
    up = np.array([0.0, -1.0, 0.0])
    axes = []
    for left, right, bias in ((23, 24, 3.0), (11, 12, 1.0)):
        v = world[left] - world[right]
        v = np.array([v[0], 0.0, v[2]])
        n = _length(v)
        # Why the bias: twisting the shoulders (a punch) must not turn the frame; the
        # hips are steadier, the shoulders only stand in when the hips are not seen.
        w = bias * min(trust[left], trust[right])
        # (Not dead though trust is at least 0.1: a NaN visibility can make w NaN, and that
        # axis is left out rather than turning the whole frame to NaN.)
        if n > 1e-6 and w > 0:
            axes.append(w * v / n)
    lateral = np.sum(axes, axis=0) if axes else np.array([1.0, 0.0, 0.0])
    n = _length(lateral)
    lateral = lateral / n if n > 1e-6 else np.array([1.0, 0.0, 0.0])
    # lateral x up with up = (0, -1, 0), written out (np.cross costs more than the rest).
    forward = np.array([lateral[2], 0.0, -lateral[0]])
    return np.stack([lateral, up, forward])


def embed_person(
    person: Person, lift: float = 0.0, lift_weight: float = 0.0, airborne: float = 0.0, airborne_weight: float = 0.0,
    travel: float = 0.0, travel_weight: float = 0.0,
) -> Embedding:
    """The view-invariant embedding of one person's pose.

    Args:
        person: Pose with world landmarks and visibility.
        lift: The hips' vertical movement (see :class:`Embedder`); a single frame has
            no movement, so by default it is 0 with weight 0.
        lift_weight: Trust in ``lift``.
        airborne: How far both feet are off the ground (see :class:`Embedder`); a
            single frame has no ground, so by default 0 with weight 0.
        airborne_weight: Trust in ``airborne``.
        travel: How fast the person crosses the picture (see :class:`Embedder`).
        travel_weight: Trust in ``travel``.
    """
    world = np.asarray(person.world, np.float64)
    trust = _trust(np.asarray(person.visibility, np.float64))
    frame = body_frame(world, trust)
    p = world @ frame.T  # body coordinates: x own left, y up, z forward
    t_hip = min(trust[23], trust[24])
    mid_sh, mid_hip = (p[11] + p[12]) / 2, (p[23] + p[24]) / 2
    torso_len = _length(mid_sh - mid_hip)
    shoulder_w = _length(p[11] - p[12])
    # Scale: the torso when the hips are seen, else the shoulders (the ratio is ~1.5).
    scale = torso_len if t_hip > 0.5 and torso_len > 1e-3 else max(shoulder_w * 1.5, 1e-3)

    vec: list[float] = []
    no_direction = np.zeros(DIM, bool)  # a zero-length segment has no direction: weight 0
    for k, (name, a, b) in enumerate(_SEGMENTS):
        d = mid_sh - mid_hip if name == "torso" else p[b] - p[a]
        n = _length(d)
        vec += list(d / n) if n > 1e-6 else [0.0, 0.0, 0.0]
        # "not n > eps", not "n <= eps": a NaN length (a NaN landmark) has no direction either.
        no_direction[3 * k : 3 * k + 3] = not n > 1e-6
    for _, i in _POSITIONS:
        vec += list((p[i] - mid_sh) / scale)
    vec.append(_length(p[15] - p[16]) / scale)
    vec.append(_length(p[27] - p[28]) / scale)
    for a, b, c in _ANGLES:
        u, v = p[a] - p[b], p[c] - p[b]
        cos = float(np.dot(u, v) / (_length(u) * _length(v) + 1e-9))
        vec.append((1.0 + cos) / 2.0)  # 0 = straight, 1 = fully bent
    vec.append(lift)
    vec.append(airborne)
    vec.append(travel)
    # A feature is as trustworthy as its least visible landmark, and in view when all
    # of its landmarks are inside the picture.
    wts = np.where(no_direction, 0.0, trust[FEATURE_LANDMARKS].min(axis=1))
    wts[_MOVEMENT_FEATURES] = lift_weight, airborne_weight, travel_weight  # their trust comes from the Embedder
    in_view = in_picture(np.asarray(person.landmarks, np.float64))[FEATURE_LANDMARKS].min(axis=1)
    return Embedding(np.asarray(vec, np.float32), wts.astype(np.float32), in_view.astype(np.float32))


def in_picture(landmarks: np.ndarray, margin: float = 0.02) -> np.ndarray:
    """``(33,)`` how far each landmark is inside the picture: 1.0 more than ``margin``
    (normalised units) inside the frame's edges, 0.0 more than ``margin`` beyond one,
    linear in between.

    MediaPipe reports every landmark, also those beyond the frame's edge, where their
    position is a guess from anatomy (a laptop camera's legs).  Why the soft edge: a
    landmark at the edge jitters across it from frame to frame (with a hard edge loso
    gave 7.5 false fires/min and flip consistency 88.9 %, with 0.02 6.8/min and 90.5 %;
    builtin the same).
    """
    xy = np.asarray(landmarks, np.float64)[:, :2]
    inside = np.minimum(xy, 1.0 - xy).min(axis=1)  # distance inside the nearest edge
    return np.clip((inside + margin) / (2.0 * margin), 0.0, 1.0)


# ``airborne``: the ground is where the lower ankle was lowest in the image lately; it
# rises back slowly (GROUND_CREEP torso lengths a second) so that a person walking away
# or a camera moving does not lift them.  The ankles are smoothed first (FOOT_TAU_S) and
# the first AIRBORNE_DEAD torso lengths ignored, then AIRBORNE_SCALE saturates it
# (tanh): a jump is ~1, standing 0.  Why the smoothing and the dead zone: a still
# generated performer's independent landmark noise (0.02 m) otherwise reads as up to
# 0.6, a squat performer's feet moving in depth as 0.5; with them 0.0-0.3, and a
# generated jump 0.9 (real clips: standing and squats 0.0, jumps 0.6-1.0).
GROUND_CREEP = 0.25
FOOT_TAU_S = 0.06
AIRBORNE_DEAD = 0.1
AIRBORNE_SCALE = 0.25
# ``travel``: the hips' sideways speed in the image, in torso lengths a second, averaged
# over TRAVEL_TAU_S; the first TRAVEL_DEAD ignored (a step or a sway), then saturated:
# walking past reads ~0.9, an action on the spot 0 (real clips: walking, running,
# skipping and galloping 0.7-0.9 on average; every action clip 0.0-0.2 but for a few
# moments of stepping into place; chosen before they were run).
TRAVEL_TAU_S = 0.3
TRAVEL_DEAD = 0.5
TRAVEL_SCALE = 1.0


def _smoothing(dt: float, tau_s: float) -> float:
    """The step of an exponential moving average with time constant ``tau_s`` after ``dt`` seconds."""
    return 1.0 - math.exp(-dt / tau_s)


class Embedder:
    """Per-person streaming embedder: adds ``lift``, ``airborne`` and ``travel``.

    World landmarks are hip-centred, so jumping shows only in the image: ``lift`` is the
    hips' height in the image above its recent average (time constant ``tau_s``), in
    torso lengths; ``airborne`` is how far the lower foot is above the ground it stood
    on lately (0 on the ground, near 1 in a jump), which tells a jump from a squat,
    whose hips go down and up too; ``travel`` is how fast the hips cross the picture
    (near 1 walking past, 0 on the spot).  Keep one Embedder per tracked person.

    Args:
        tau_s: Seconds over which the resting hip height is averaged.

    Example:
        >>> from mirrorcam.performer import perform
        >>> rec = perform("jump_in_place")
        >>> emb = Embedder()
        >>> vectors = [emb.update(f.persons[0], f.timestamp_ms, f.image_size).vector for f in rec.frames]
        >>> lift, airborne = FEATURES.index("lift"), FEATURES.index("airborne")
        >>> bool(max(v[lift] for v in vectors) > 0.1), bool(max(v[airborne] for v in vectors) > 0.8)
        (True, True)
    """

    def __init__(self, tau_s: float = 1.0) -> None:
        if not tau_s > 0:
            raise ValueError(f"tau_s must be > 0, got {tau_s}")
        self.tau_s = tau_s
        self.reset()

    def reset(self) -> None:
        self._base: float | None = None
        self._torso: float | None = None
        self._last_ms: float | None = None
        self._foot: float | None = None  # the lower ankle's smoothed image y (pixels, down)
        self._ground: float | None = None
        self._hip_x: float | None = None  # the hips' image x (pixels)
        self._speed = 0.0  # their smoothed sideways speed (torso lengths a second)

    def update(self, person: Person, timestamp_ms: float, image_size: tuple[int, int]) -> Embedding:
        lm = np.asarray(person.landmarks, np.float64)
        vis = _trust(np.asarray(person.visibility, np.float64))
        w, h = max(image_size[0], 1), max(image_size[1], 1)
        hip_y = (lm[23, 1] + lm[24, 1]) / 2 * h
        sh = (lm[11, :2] + lm[12, :2]) / 2 * (w, h)
        hip = (lm[23, :2] + lm[24, :2]) / 2 * (w, h)
        torso = _length(sh - hip)
        trust = float(min(vis[23], vis[24], vis[11], vis[12]))
        dt = 0.0 if self._last_ms is None else max(timestamp_ms - self._last_ms, 0.0) / 1000.0
        if dt > 1.0:
            self.reset()
            dt = 0.0
        self._last_ms = timestamp_ms
        if self._base is None or self._torso is None:
            self._base, self._torso = hip_y, max(torso, 1.0)
        a = _smoothing(dt, self.tau_s)
        # The torso length shrinks when bending; its slow average keeps the unit steady.
        # 0.7 of the previous average bounds one step's shrink, but only takes effect for
        # a step over 4 * tau_s * ln(1 / 0.7) = 1.43 * tau_s: never at the default tau_s
        # of 1 s, since a gap over 1 s resets.  1.0 keeps the unit positive.
        self._torso = max(self._torso + _smoothing(dt, 4 * self.tau_s) * (torso - self._torso), 0.7 * self._torso, 1.0)
        self._base = self._base + a * (hip_y - self._base)
        lift = float(np.clip((self._base - hip_y) / self._torso, -2.0, 2.0))
        return embed_person(person, lift=lift, lift_weight=trust, airborne=self._airborne(lm, h, dt),
                            airborne_weight=float(min(vis[27], vis[28])), travel=self._travel(hip[0], dt),
                            travel_weight=float(min(vis[23], vis[24])))

    def _travel(self, hip_x: float, dt: float) -> float:
        if self._hip_x is None:
            self._hip_x = hip_x
        elif dt > 0:
            speed = (hip_x - self._hip_x) / dt / self._torso
            self._speed += _smoothing(dt, TRAVEL_TAU_S) * (speed - self._speed)
            self._hip_x = hip_x
        return math.tanh(max(abs(self._speed) - TRAVEL_DEAD, 0.0) / TRAVEL_SCALE)

    def _airborne(self, lm: np.ndarray, height: int, dt: float) -> float:
        foot = max(lm[27, 1], lm[28, 1]) * height  # the lower ankle (image y grows downward)
        if self._foot is None or self._ground is None:
            self._foot = self._ground = foot
        self._foot += _smoothing(dt, FOOT_TAU_S) * (foot - self._foot)
        self._ground = max(self._foot, self._ground - GROUND_CREEP * dt * self._torso)
        height_above = (self._ground - self._foot) / self._torso
        return math.tanh(max(height_above - AIRBORNE_DEAD, 0.0) / AIRBORNE_SCALE)
