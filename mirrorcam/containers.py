"""Typed containers that pass between the pipeline stages.

One frame's way through mirrorcam::

    Source --Frame--> PoseEstimator --PoseFrame--> Embedder --> NeuronBank --> Screen

Each container is a small frozen dataclass holding numpy arrays with documented
shapes.  Stages take one and return one; nothing reaches back upstream.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mirrorcam.skeleton import MIRROR_PERMUTATION

NUM_LANDMARKS = 33
"""BlazePose landmarks per person."""


@dataclass(frozen=True)
class Frame:
    """One decoded video frame, as a source delivers it.

    Attributes:
        image: ``(H, W, 3)`` uint8 BGR image, unmirrored (as the camera saw it).
        timestamp_ms: Presentation time in milliseconds since the source started.
        index: 0-based frame number within the source.
        captured_at: ``time.perf_counter()`` when the frame was captured or decoded;
            used to measure capture-to-display latency.
        new_scene: The picture does not continue the one before (the next photo of a
            folder of unrelated photos): the pose stage finds people afresh in it and
            carries nobody over.
    """

    image: np.ndarray
    timestamp_ms: float
    index: int
    captured_at: float = 0.0
    new_scene: bool = False

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` in pixels."""
        return int(self.image.shape[1]), int(self.image.shape[0])


@dataclass(frozen=True)
class Person:
    """One tracked person's pose in one frame.

    Attributes:
        id: Stable id across frames while the person stays in view (0, 1, ...).
        landmarks: ``(33, 3)`` float32 image landmarks: x, y normalised to [0, 1] by
            the frame's width and height, z relative depth (MediaPipe convention).
        world: ``(33, 3)`` float32 world landmarks in metres, origin between the hips,
            y pointing down (MediaPipe convention).
        visibility: ``(33,)`` float32 likelihood that each landmark is visible.
        presence: ``(33,)`` float32 likelihood that each landmark is in the frame.
    """

    id: int
    landmarks: np.ndarray
    world: np.ndarray
    visibility: np.ndarray
    presence: np.ndarray

    def __post_init__(self) -> None:
        for name, shape in (
            ("landmarks", (NUM_LANDMARKS, 3)),
            ("world", (NUM_LANDMARKS, 3)),
            ("visibility", (NUM_LANDMARKS,)),
            ("presence", (NUM_LANDMARKS,)),
        ):
            value = getattr(self, name)
            if getattr(value, "shape", None) != shape:
                raise ValueError(f"Person.{name} must have shape {shape}, got {getattr(value, 'shape', None)}")

    @property
    def center(self) -> np.ndarray:
        """Mean of the hip and shoulder landmarks in normalised image coordinates, ``(2,)``."""
        return self.landmarks[[11, 12, 23, 24], :2].mean(axis=0)

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """``(x0, y0, x1, y1)`` normalised box around the visible landmarks."""
        pts = self.landmarks[self.visibility > 0.3, :2]
        if len(pts) == 0:
            pts = self.landmarks[:, :2]
        x0, y0 = pts.min(axis=0)
        x1, y1 = pts.max(axis=0)
        return float(x0), float(y0), float(x1), float(y1)

    def mirrored(self) -> Person:
        """The person as a horizontally flipped picture shows them.

        Image x becomes ``1 - x``, world x changes sign, and left and right landmarks
        swap labels (the flipped picture's left hand is the person's right).

        Example:
            >>> import numpy as np
            >>> p = Person(0, np.full((33, 3), 0.25, np.float32), np.zeros((33, 3), np.float32),
            ...            np.arange(33, dtype=np.float32), np.ones(33, np.float32))
            >>> m = p.mirrored()
            >>> float(m.landmarks[0, 0]), float(m.visibility[11]), float(m.visibility[12])
            (0.75, 12.0, 11.0)
        """
        perm = MIRROR_PERMUTATION
        landmarks = self.landmarks[perm].copy()
        landmarks[:, 0] = 1.0 - landmarks[:, 0]
        world = self.world[perm].copy()
        world[:, 0] = -world[:, 0]
        return Person(self.id, landmarks, world, self.visibility[perm].copy(), self.presence[perm].copy())


@dataclass(frozen=True)
class PoseFrame:
    """The pose stage's output for one frame.

    Attributes:
        timestamp_ms: The frame's presentation time in milliseconds.
        index: 0-based frame number within the source.
        persons: Tracked people, sorted by id.
        image_size: ``(width, height)`` of the frame the landmarks were found in.
        image: The BGR frame itself when there is one (None when replaying a recording).
        captured_at: ``time.perf_counter()`` of capture, carried through for latency.
        timings_ms: Per-stage milliseconds spent on this frame so far.
    """

    timestamp_ms: float
    index: int
    persons: tuple[Person, ...]
    image_size: tuple[int, int]
    image: np.ndarray | None = None
    captured_at: float = 0.0
    timings_ms: dict[str, float] = field(default_factory=dict, compare=False)

    def person(self, person_id: int) -> Person | None:
        """The person with ``person_id``, or None if not in this frame."""
        for p in self.persons:
            if p.id == person_id:
                return p
        return None


@dataclass(frozen=True)
class Firing:
    """One completed firing of a neuron (one performance of an action).

    Attributes:
        template: Template name, e.g. ``"wave_one_hand"``.
        person: Person id (or channel id) the firing belongs to.
        start_ms: Estimated start of the matched movement.
        end_ms: Estimated end of the matched movement.
        peak_ms: Time of the peak activation (the events file's ``t``).  A
            :class:`~mirrorcam.matching.NeuronBank` scores a match on the tick of its
            last frame, so its firings have ``peak_ms == end_ms``.
        score: Peak activation in [0, 1].
        distance: Match distance at the peak (lower explains the movement better; it
            decides between neurons that saturate at activation 1).
    """

    template: str
    person: int
    start_ms: float
    end_ms: float
    peak_ms: float
    score: float
    distance: float = float("inf")

    def to_json(self) -> dict:
        """The events-file line for this firing (times in seconds)."""
        return {
            "t": round(self.peak_ms / 1000.0, 3),
            "person": self.person,
            "template": self.template,
            "score": round(float(self.score), 4),
            "start": round(self.start_ms / 1000.0, 3) + 0.0,  # (+ 0.0: a -0.0 start prints as 0.0)
            "end": round(self.end_ms / 1000.0, 3),
        }


@dataclass(frozen=True)
class NeuronActivity:
    """The neuron bank's state for one person after one frame.

    Attributes:
        timestamp_ms: Time of the frame.
        person: Person id (or channel id).
        names: Template names, one per neuron, in bank order.
        activation: ``(N,)`` float32 activations in [0, 1].
        active: ``(N,)`` bool, True while a neuron is in its firing state.
        reps: ``(N,)`` int repetition counts since the bank was reset.
        firings: Firings that completed on this frame.
    """

    timestamp_ms: float
    person: int
    names: tuple[str, ...]
    activation: np.ndarray
    active: np.ndarray
    reps: np.ndarray
    firings: tuple[Firing, ...] = ()
