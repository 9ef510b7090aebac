"""BlazePose landmark names, skeleton edges and the left/right swap.

Shared by the embedding (which needs the anatomy) and the screen (which draws it).
"""

from __future__ import annotations

import numpy as np

LANDMARK_NAMES: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
    "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index", "left_thumb",
    "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
    "right_ankle", "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)
INDEX = {name: i for i, name in enumerate(LANDMARK_NAMES)}

L_SHOULDER, R_SHOULDER = 11, 12
L_ELBOW, R_ELBOW = 13, 14
L_WRIST, R_WRIST = 15, 16
L_HIP, R_HIP = 23, 24
L_KNEE, R_KNEE = 25, 26
L_ANKLE, R_ANKLE = 27, 28

# Edges drawn as the stick figure (MediaPipe's POSE_CONNECTIONS without the face mesh detail).
CONNECTIONS: tuple[tuple[int, int], ...] = (
    (11, 12), (11, 23), (12, 24), (23, 24),
    (11, 13), (13, 15), (12, 14), (14, 16),
    (15, 17), (15, 19), (15, 21), (17, 19), (16, 18), (16, 20), (16, 22), (18, 20),
    (23, 25), (25, 27), (27, 29), (29, 31), (27, 31),
    (24, 26), (26, 28), (28, 30), (30, 32), (28, 32),
    (0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10),
)


def _mirror_permutation() -> np.ndarray:
    perm = np.arange(len(LANDMARK_NAMES))
    for i, name in enumerate(LANDMARK_NAMES):
        if name.startswith("left_"):
            perm[i] = INDEX["right_" + name[5:]]
        elif name.startswith("right_"):
            perm[i] = INDEX["left_" + name[6:]]
        elif name == "mouth_left":
            perm[i] = INDEX["mouth_right"]
        elif name == "mouth_right":
            perm[i] = INDEX["mouth_left"]
    return perm


MIRROR_PERMUTATION: np.ndarray = _mirror_permutation()
"""``landmarks[MIRROR_PERMUTATION]`` relabels left as right and right as left."""
