"""Pose stage: MediaPipe PoseLandmarker (Tasks API), smoothing, tracking.

The landmarker runs in VIDEO mode (people followed from frame to frame); a new scene
(the next photo of a folder) and the far search's crops go to IMAGE-mode landmarkers,
which detect afresh on every call.

A :class:`PoseEstimator` turns a :class:`~mirrorcam.containers.Frame` into a
:class:`~mirrorcam.containers.PoseFrame`.  It runs on the camera's raw (unmirrored)
frame, so MediaPipe's left/right labels stay anatomical; mirroring is only a display
choice.

Example:
    >>> opts = PoseEstimatorOptions(num_poses=1)            # doctest: +SKIP
    >>> with PoseEstimator.create_from_options(opts) as est:  # doctest: +SKIP
    ...     pose_frame = est.process(frame)
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

import cv2
import numpy as np

from mirrorcam.containers import NUM_LANDMARKS, Frame, Person, PoseFrame
from mirrorcam.errors import ModelError
from mirrorcam.modelstore import DEFAULT_VARIANT, VARIANTS, ensure_model
from mirrorcam.skeleton import MIRROR_PERMUTATION

log = logging.getLogger(__name__)

# Bumped when the pose stage gives other landmarks for the same frames and options (the
# landmark cache is keyed by it).  2: the far search (session 13); 3: its 5 x 3 grid for
# files; 4: half-picture crops after the two-thirds ones, and a file's search of every
# crop only for FILE_FULL_SEARCH_MS after someone was seen; 5: duplicate detections dropped,
# the tracker's distance relative to the larger body and its last frame's tracks first;
# 6: those tracks preferred by STALE_PENALTY, not absolutely; 7: a track's smoothing starts
# afresh where its body jumps by more than JUMP_RESET body lengths, and the tracker measures in
# the picture's proportions (it had in normalised units, x shrunk by the aspect ratio); 8: so
# does a body part's labelled the other way round from the last frame (SWAP_SHARE); 9: a body
# found upside down is looked for again in the picture turned a quarter turn (UPSIDE_DOWN_M); 10:
# the body found there matched by the share of the smaller box (TURNED_OVERLAP), not by IoU.
POSE_STAGE_VERSION = 10

# A camera's far search budget: one crop every 100 ms while nobody is found (at 30 fps,
# one frame in three pays one more detection, about 20 ms on a 2-core laptop).
CAMERA_FAR_SEARCH_MS = 100.0
# A file searches every crop on every frame with nobody for this long after it last saw
# someone (or after its start); then, like a camera, one crop per CAMERA_FAR_SEARCH_MS of
# the clip's time.  Why: a file's full search costs 21 detections a frame (154 ms), and
# footage of an empty room is not worth 5 times real time.
FILE_FULL_SEARCH_MS = 1000.0
# The far search's crops (see :class:`FarSearch`), level by level: (zoom relative to
# ``far_zoom``, across, down).
FILE_FAR_GRIDS = ((1.0, 5, 3), (4 / 3, 3, 2))
CAMERA_FAR_GRIDS = ((1.0, 3, 2), (4 / 3, 3, 2))


@dataclass(frozen=True)
class PoseEstimatorOptions:
    """Options of the pose stage (mirrors MediaPipe's ``PoseLandmarkerOptions``).

    Attributes:
        model_variant: ``lite``, ``full`` or ``heavy`` bundle from ``models/``.
        model_path: Explicit ``.task`` path; overrides ``model_variant`` provisioning.
        num_poses: Maximum number of people per frame.
        min_detection_confidence: Person detector threshold.
        min_presence_confidence: Landmark presence threshold.
        min_tracking_confidence: Below this MediaPipe re-runs detection.
        smoothing: Apply a One-Euro filter per landmark (the Tasks API has none).
        smoothing_min_cutoff: One-Euro cutoff (Hz) at rest: lower is steadier.
        smoothing_beta: One-Euro speed coefficient: higher follows fast moves with less lag.
        track_max_gap_ms: A person unseen for longer than this loses their id.
        far_zoom: When nobody is found in the whole picture, look again in crops of
            ``1 / far_zoom`` of it (1 turns this off); see :class:`FarSearch`.
        far_search_ms: While nobody is found, the least time between two of those crops
            searched, in turn (a camera's budget); 0 means a file: every crop (of a finer
            grid) on every such frame for ``FILE_FULL_SEARCH_MS`` after someone was last
            seen, then one crop per 100 ms as a camera.  A person once found in a crop
            is followed in one every frame.
    """

    model_variant: str = DEFAULT_VARIANT
    model_path: str | None = None
    num_poses: int = 2
    min_detection_confidence: float = 0.5
    min_presence_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    smoothing: bool = True
    smoothing_min_cutoff: float = 2.0
    smoothing_beta: float = 0.5
    track_max_gap_ms: float = 700.0
    far_zoom: float = 1.5
    far_search_ms: float = 0.0

    def __post_init__(self) -> None:
        if self.model_variant not in VARIANTS:
            raise ValueError(f"model_variant must be one of {VARIANTS}, got {self.model_variant!r}")
        if not 1 <= self.num_poses <= 10:
            raise ValueError(f"num_poses must be between 1 and 10, got {self.num_poses}")
        for name in ("min_detection_confidence", "min_presence_confidence", "min_tracking_confidence"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if self.smoothing_min_cutoff <= 0 or self.smoothing_beta < 0:
            raise ValueError("smoothing_min_cutoff must be > 0 and smoothing_beta >= 0")
        if self.track_max_gap_ms <= 0:
            raise ValueError(f"track_max_gap_ms must be > 0, got {self.track_max_gap_ms}")
        if not 1.0 <= self.far_zoom <= 4.0:
            raise ValueError(f"far_zoom must be between 1 (off) and 4, got {self.far_zoom}")
        if self.far_search_ms < 0:
            raise ValueError(f"far_search_ms must be >= 0, got {self.far_search_ms}")


class OneEuroFilter:
    """One-Euro filter (Casiez et al. 2012) over a fixed-shape array, vectorised.

    Smooths jitter at rest (low cutoff) while following fast movement (the cutoff rises
    with speed), which is what pose landmarks need: steady when still, little lag when
    waving.

    Example:
        >>> f = OneEuroFilter(min_cutoff=1.0, beta=0.0)
        >>> f(np.zeros(3), 0.0).tolist()
        [0.0, 0.0, 0.0]
    """

    def __init__(self, min_cutoff: float = 2.0, beta: float = 0.5, d_cutoff: float = 1.0) -> None:
        if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise ValueError("min_cutoff and d_cutoff must be > 0, beta >= 0")
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    @staticmethod
    def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, x: np.ndarray, t_s: float) -> np.ndarray:
        """Filter sample ``x`` taken at time ``t_s`` (seconds); returns the smoothed value."""
        if self._x is None or self._t is None or t_s <= self._t:
            self._x, self._dx, self._t = x.astype(np.float32), np.zeros_like(x, dtype=np.float32), t_s
            return self._x
        dt = t_s - self._t
        dx = (x - self._x) / dt
        self._dx = self._dx + self._alpha(self.d_cutoff, dt) * (dx - self._dx)
        cutoff = self.min_cutoff + self.beta * np.abs(self._dx)
        self._x = (self._x + self._alpha(cutoff, dt) * (x - self._x)).astype(np.float32)
        self._t = t_s
        return self._x

    @property
    def last(self) -> np.ndarray | None:
        """The last smoothed value (None before the first sample)."""
        return self._x

    def restart(self, rows: np.ndarray, x: np.ndarray) -> None:
        """Start ``rows`` of the state afresh at sample ``x``'s: the next call returns them as
        they are, and their speed from there."""
        if self._x is not None and self._dx is not None:
            self._x[rows], self._dx[rows] = x[rows], 0.0


@dataclass
class _Track:
    id: int
    center: np.ndarray
    scale: float
    last_ms: float
    image_filter: OneEuroFilter
    world_filter: OneEuroFilter


class PersonTracker:
    """Gives detections stable ids across frames and smooths each tracked person.

    Matching is greedy on the distance between body centres, relative to body size;
    when several people appear at once, ids go left to right, so the person on the left
    stays person 0 while both stay in view.  Measured on a one-man jumping-jack clip
    (``theunknown550_jj/jj_1.mp4``), where MediaPipe twice found him twice and his
    shoulder-to-hip length jumped between 0.02 and 0.36 of the picture, the tracker had
    given him 19 runs of 3 ids:

    - two detections whose boxes overlap by more than ``DUPLICATE_IOU`` are one person
      (the better seen is kept);
    - the distance is relative to the larger of the two bodies' sizes, so a body
      measured a tenth of its size in one frame does not lose its track in the next;
    - a track not seen in the last frame pays ``STALE_PENALTY`` body lengths, so a
      track kept for a moment by a duplicate cannot take the person over from theirs.
    """

    def __init__(self, options: PoseEstimatorOptions) -> None:
        self.options = options
        self._tracks: list[_Track] = []
        self._last_ms: float | None = None  # the time of the last update

    def reset(self) -> None:
        self._tracks.clear()
        self._last_ms = None

    def update(self, persons: list[Person], timestamp_ms: float, aspect: float = 1.0) -> tuple[Person, ...]:
        """Ids and smoothing for one frame's ``persons``; ``aspect`` is the picture's width over
        its height (distances are measured in heights: a normalised x is ``aspect`` times longer)."""
        opts = self.options
        self._tracks = [t for t in self._tracks if timestamp_ms - t.last_ms <= opts.track_max_gap_ms]
        persons = _drop_duplicates(persons)
        order = sorted(range(len(persons)), key=lambda i: float(persons[i].center[0]))
        # In the picture's proportions: in normalised units a step sideways in a 16:9 picture
        # had counted 1.78 times less than one up or down (a jump of 1.2 body lengths as 0.9).
        unit = np.array([aspect, 1.0]) if aspect > 0 else np.ones(2)
        centers = [persons[i].center * unit for i in range(len(persons))]
        scales = [_body_scale(p, unit) for p in persons]
        pairs = []
        for ti, track in enumerate(self._tracks):
            # A track missed in the last frame pays STALE_PENALTY body lengths: nearer by more
            # than that, it still wins (two people side by side, each missed in turn, must
            # keep their ids; an absolute "last frame first" had swapped them).
            penalty = STALE_PENALTY if track.last_ms != self._last_ms else 0.0
            for di in range(len(persons)):
                dist = float(np.linalg.norm(centers[di] - track.center)) / max(track.scale, scales[di], 0.05)
                if dist < 1.5:
                    pairs.append((dist + penalty, dist, ti, di))
        self._last_ms = timestamp_ms
        pairs.sort()
        assigned: dict[int, _Track] = {}
        moved: dict[int, float] = {}  # body lengths from the track's last centre (a new track: 0)
        used_tracks: set[int] = set()
        for _, dist, ti, di in pairs:
            if ti in used_tracks or di in assigned:
                continue
            used_tracks.add(ti)
            assigned[di], moved[di] = self._tracks[ti], dist
        for di in order:
            if di not in assigned:
                taken = {t.id for t in self._tracks}
                new_id = next(i for i in range(len(taken) + 1) if i not in taken)
                track = _Track(new_id, centers[di], scales[di], timestamp_ms, *_filters(opts))
                self._tracks.append(track)
                assigned[di], moved[di] = track, 0.0
        out = []
        t_s = timestamp_ms / 1000.0
        for di, person in enumerate(persons):
            track = assigned[di]
            if moved[di] > JUMP_RESET:
                # No body moves that far between two looks at it: another person taken for it
                # (three people, MediaPipe finding two), whose skeleton the filters would slide
                # over from the last one's, stretched across both for frames.
                track.image_filter, track.world_filter = _filters(opts)
            track.center, track.scale, track.last_ms = centers[di], scales[di], timestamp_ms
            landmarks, world = person.landmarks, person.world
            if opts.smoothing:
                last = track.image_filter.last
                if last is not None:
                    # A limb MediaPipe has labelled the other way round (a frame or a few) is
                    # not averaged with its twin: that had drawn arms and legs spread as hanging
                    # and together.  The labels are MediaPipe's; only the smoothing starts again.
                    rows = _crossed_parts(landmarks, person.visibility, last, scales[di], unit)
                    track.image_filter.restart(rows, landmarks)
                    track.world_filter.restart(rows, world)
                landmarks = track.image_filter(landmarks, t_s)
                world = track.world_filter(world, t_s)
            out.append(replace(person, id=track.id, landmarks=landmarks, world=world))
        return tuple(sorted(out, key=lambda p: p.id))


STALE_PENALTY = 0.5
"""Body lengths added to the distance to a track that was not seen in the last frame."""

SWAP_SHARE = 0.5
"""A body part (``SWAP_PARTS``) is taken to be labelled the other way round from the last frame
when, with its left and right exchanged, its landmarks lie nearer the last ones than this share
of their distance as labelled, and that distance is over ``SWAP_MIN_MOVE`` body lengths on
average (sides exchanged move them about a shoulder's width)."""
SWAP_MIN_MOVE = 0.25
SWAP_PARTS = (np.arange(1, 11), np.arange(11, 23), np.arange(23, 33))
"""The face, the shoulders and arms, the hips and legs."""


def _crossed_parts(landmarks: np.ndarray, visibility: np.ndarray, last: np.ndarray, scale: float,
                   unit: np.ndarray) -> np.ndarray:
    """Indices of the landmarks of every body part whose left and right match ``last`` crosswise,
    in the picture's proportions (x, y times ``unit``; ``scale``: the body's shoulder-to-hip
    length in them); empty when none does.

    A body that turns round turns through a side view, where its sides overlap in the picture:
    hands crossing over there match crosswise but move less than ``SWAP_MIN_MOVE``.  Measured on
    the close-up jumping man of ``jj_1.mp4``: MediaPipe labels an arm or a leg the other way
    round on 9 of 313 frames with ``num_poses`` 3; relabelling such parts by continuity was
    tried and not kept (it also locked in a swap the test missed, for six frames).
    """
    xy, was = landmarks[:, :2] * unit, last[:, :2] * unit
    rows = []
    for part in SWAP_PARTS:
        twin = MIRROR_PERMUTATION[part]
        trust = np.minimum(visibility[part], visibility[twin])
        straight = float((np.linalg.norm(xy[part] - was[part], axis=1) * trust).sum())
        crossed = float((np.linalg.norm(xy[twin] - was[part], axis=1) * trust).sum())
        if crossed < SWAP_SHARE * straight and straight > SWAP_MIN_MOVE * max(scale, 0.05) * float(trust.sum()):
            rows.append(part)
    return np.concatenate(rows) if rows else np.zeros(0, np.int64)


JUMP_RESET = 1.0
"""Body lengths (shoulders to hips) a track's centre may move between two of its frames and
still be smoothed from the last one: farther, its filters start afresh.  (A new track's centre
is its own: 0.)"""

DUPLICATE_IOU = 0.5
"""Two detections whose boxes overlap more than this (intersection over union) are one person."""


def _drop_duplicates(persons: list[Person]) -> list[Person]:
    """``persons`` without second detections of one body (the better seen is kept).

    MediaPipe at times returns one person twice, the second a ghost whose legs run off
    the picture (on `jj_1.mp4` its box overlapped the person's by 0.55 and 0.94 on two frames; by
    0.44 on a third, where both are kept).
    """
    if len(persons) < 2:
        return list(persons)
    kept: list[Person] = []
    for person in sorted(persons, key=lambda p: -float(p.visibility.mean())):
        if all(_box_iou(person.bbox, other.bbox) <= DUPLICATE_IOU for other in kept):
            kept.append(person)
    return kept


def _box_iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over union of two ``(x0, y0, x1, y1)`` boxes."""
    inter = _box_intersection(a, b)
    union = _box_area(a) + _box_area(b) - inter
    return inter / union if union > 0 else 0.0


def _box_intersection(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """The area two ``(x0, y0, x1, y1)`` boxes share."""
    return max(min(a[2], b[2]) - max(a[0], b[0]), 0.0) * max(min(a[3], b[3]) - max(a[1], b[1]), 0.0)


def _box_area(box: tuple[float, float, float, float]) -> float:
    return (box[2] - box[0]) * (box[3] - box[1])


UPSIDE_DOWN_M = 0.2
"""Metres the shoulders' midpoint may lie below the hips' (MediaPipe's world landmarks, y down)
with the knees above the hips before a body counts as upside down (see :func:`_upside_down`)."""

TURNED_OVERLAP = 0.5
"""How much of the smaller of their boxes the body found in a turned picture and the upside-down one
must share to be the same body.  Why not IoU: the upright body, arms spread, is wider than the
upside-down skeleton inside it (on `weizmann_clean_wave2_p08.mp4`'s first frame the one box lies
wholly inside the other, IoU 0.31)."""

# The quarter turns an upside-down body is looked for in, in order.
QUARTER_TURNS = (cv2.ROTATE_90_CLOCKWISE, cv2.ROTATE_90_COUNTERCLOCKWISE)


def _upside_down(person: Person) -> bool:
    """True if ``person``'s whole body is upside down: shoulders well below the hips, knees above.

    Why: BlazePose's detector, which sets the body's orientation before the landmarks are
    found, at times takes raised hands for the head; the skeleton then comes out head down
    (the mirror image of ``weizmann_clean_wave2_p09.mp4``: 5 of 12 frames with someone,
    shoulders 0.27-0.47 m below the hips; ``weizmann_clean_wave2_p08.mp4``'s first two).  The
    knees tell it from a deep bend or a push-up, where the legs stay at or below the hips.
    """
    world = person.world
    return float(world[[11, 12], 1].mean()) > UPSIDE_DOWN_M and float(world[[25, 26], 1].mean()) < 0.0


def _from_turned(person: Person, rotation: int, size: tuple[int, int]) -> Person:
    """``person`` found in the picture turned by ``rotation`` (a quarter turn), in the picture's own coordinates.

    Args:
        person: Found in the turned picture.
        rotation: ``cv2.ROTATE_90_CLOCKWISE`` or ``cv2.ROTATE_90_COUNTERCLOCKWISE``.
        size: ``(width, height)`` of the picture before it was turned.
    """
    lm, world = person.landmarks.copy(), person.world.copy()
    x, y = person.landmarks[:, 0], person.landmarks[:, 1]
    wx, wy = person.world[:, 0], person.world[:, 1]
    if rotation == cv2.ROTATE_90_CLOCKWISE:  # turned: (x, y) -> (1 - y, x)
        lm[:, 0], lm[:, 1] = y, 1.0 - x
        world[:, 0], world[:, 1] = wy, -wx
    elif rotation == cv2.ROTATE_90_COUNTERCLOCKWISE:  # turned: (x, y) -> (y, 1 - x)
        lm[:, 0], lm[:, 1] = 1.0 - y, x
        world[:, 0], world[:, 1] = -wy, wx
    else:
        raise ValueError(f"rotation must be a quarter turn, got {rotation}")
    lm[:, 2] = person.landmarks[:, 2] * size[1] / size[0]  # (z is on the scale of the turned picture's width)
    return replace(person, landmarks=lm, world=world)


def _box_overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """The share of the smaller of two ``(x0, y0, x1, y1)`` boxes that lies inside the other."""
    smaller = min(_box_area(a), _box_area(b))
    return _box_intersection(a, b) / smaller if smaller > 0 else 0.0


def _body_scale(person: Person, unit: np.ndarray) -> float:
    """Shoulder-to-hip distance in normalised image units, times ``unit`` (x, y): the yardstick for tracking."""
    lm = person.landmarks
    shoulders = lm[[11, 12], :2].mean(axis=0)
    hips = lm[[23, 24], :2].mean(axis=0)
    return float(np.linalg.norm((shoulders - hips) * unit))


def _filters(options: PoseEstimatorOptions) -> tuple[OneEuroFilter, OneEuroFilter]:
    """A track's smoothing, new: for its image landmarks and its world landmarks."""
    return (OneEuroFilter(options.smoothing_min_cutoff, options.smoothing_beta),
            OneEuroFilter(options.smoothing_min_cutoff, options.smoothing_beta))


@contextlib.contextmanager
def quiet_native_stderr(enabled: bool = True) -> Iterator[None]:
    """Silence the C++ log lines MediaPipe and LiteRT print on file descriptor 2.

    They are noise to a user (dozens of INFO/WARNING lines at start-up) and would
    bury mirrorcam's own one-line messages; ``-v`` keeps them.
    """
    if not enabled:
        yield
        return
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class PoseEstimator:
    """MediaPipe PoseLandmarker in VIDEO mode plus smoothing and tracking.

    Create with :meth:`create_from_options` and close explicitly (or use ``with``).
    Timestamps handed to MediaPipe are forced to be strictly increasing, so a source
    whose timestamps repeat or go backwards cannot crash the graph; :meth:`reset_tracking`
    makes the graph anew for the next source (one handed in, which cannot be made anew, is
    given the next source's times shifted to go on after the last one sent, their spacing kept).
    """

    def __init__(self, landmarker, options: PoseEstimatorOptions, make_landmarker=None) -> None:
        self._landmarker = landmarker
        self._make = make_landmarker  # video: bool -> a new landmarker (None: no new scenes)
        self._still = None  # IMAGE-mode landmarker for new scenes, made on first use
        self._video_frames = 0  # frames the VIDEO graph has tracked through since it was made
        self._video_stale = False
        self.options = options
        self._tracker = PersonTracker(options)
        self._last_mp_ts = -1
        self._mp_offset = 0  # ms added to the source's times (see reset_tracking)
        self._rebase = False
        self._quiet = not log.isEnabledFor(logging.DEBUG)
        self._person_seen = False  # (until then, a file's inference is silenced: see process)
        self._first_inference = True
        self._far: FarSearch | None = None

    @classmethod
    def create_from_options(cls, options: PoseEstimatorOptions | None = None) -> PoseEstimator:
        """Provision the model if needed and build the MediaPipe graph.

        Raises:
            ModelError: The model cannot be provisioned or MediaPipe refuses it.
        """
        options = options or PoseEstimatorOptions()
        path = options.model_path or str(ensure_model(options.model_variant).path)
        if not os.path.isfile(path):
            raise ModelError(f"pose model {path} does not exist")  # (a file given by path: fetching would not make it)
        estimator = cls(_landmarker(path, options, video=True), options, lambda video: _landmarker(path, options, video=video))
        if options.far_zoom > 1.0:
            estimator._far = FarSearch(lambda: _landmarker(path, options, video=False), options)
        return estimator

    def __enter__(self) -> PoseEstimator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Release the MediaPipe graph; safe to call twice."""
        if self._landmarker is not None:
            with quiet_native_stderr(self._quiet):
                self._landmarker.close()
                if self._still is not None:
                    self._still.close()
                if self._far is not None:
                    self._far.close()
            self._landmarker = self._still = None

    def reset_tracking(self) -> None:
        """Forget tracked ids when the source changes; the next frame starts a new stream.

        MediaPipe's VIDEO graph follows people from its own last landmarks and smooths
        over time: carried into a folder's next clip of the same size, it had drawn the
        first frames' skeletons from the last clip's person.  The graph is made anew
        before the next frame (as for a new scene), so a clip in a folder gives what it
        gives alone.  A graph that cannot be made anew (one handed in, as in tests) is
        given the new source's times shifted to go on after the last one sent, spaced as
        they are: forced 1 ms apart, the next clip's first seconds had reached its
        time-based filtering as one burst.
        """
        self._forget_people()
        if self._make is not None and self._video_frames:
            self._video_stale = True
            self._last_mp_ts, self._mp_offset, self._rebase = -1, 0, False
        else:
            self._rebase = True

    def _forget_people(self) -> None:
        self._tracker.reset()
        if self._far is not None:
            self._far.reset()

    def process(self, frame: Frame) -> PoseFrame:
        """Find, track and smooth the people in one frame."""
        if self._landmarker is None:
            raise RuntimeError("PoseEstimator is closed")
        import mediapipe as mp

        start = time.perf_counter()
        # MediaPipe VIDEO mode demands strictly increasing integer milliseconds.
        source_ts = int(round(frame.timestamp_ms))
        if self._rebase:
            self._mp_offset, self._rebase = max(0, self._last_mp_ts + 1 - source_ts), False
        mp_ts = max(source_ts + self._mp_offset, self._last_mp_ts + 1)
        self._last_mp_ts = mp_ts
        rgb = cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB)
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb)
        # LiteRT prints its one-off warnings (tensor alignment, logging set-up) on fd 2
        # during the first inference, and MediaPipe one at its first landmark projection
        # (the first frame with someone: in a folder, maybe a later clip's). fd 2 is
        # process-wide, so a file silences the calls until then, a camera (which searches
        # crops on a budget, ``far_search_ms``) only its first: beside a screen or a kiosk
        # waiting for hours for someone, other threads' messages must not be swallowed.
        quiet = not self._person_seen if self.options.far_search_ms == 0 else self._first_inference
        self._first_inference = False
        with quiet_native_stderr(self._quiet and quiet):
            result = self._detect(image, mp_ts, frame.new_scene)
        self._person_seen = self._person_seen or bool(result.pose_landmarks)
        persons = [
            _to_person(img, world)
            for img, world in zip(result.pose_landmarks, result.pose_world_landmarks)
        ]
        if self._far is not None:
            if persons:
                self._far.reset()  # the whole picture's own tracking has them again
            else:
                with quiet_native_stderr(self._quiet and self._far.quiet):
                    persons = self._far.find(rgb, frame.timestamp_ms)
        if self._make is not None and any(_upside_down(p) for p in persons):
            with quiet_native_stderr(self._quiet):
                persons = self._upright(rgb, persons)
        height, width = frame.image.shape[:2]
        tracked = self._tracker.update(persons, frame.timestamp_ms, width / max(height, 1))
        elapsed = (time.perf_counter() - start) * 1000.0
        return PoseFrame(
            timestamp_ms=frame.timestamp_ms,
            index=frame.index,
            persons=tracked,
            image_size=frame.size,
            image=frame.image,
            captured_at=frame.captured_at,
            timings_ms={"pose": elapsed},
        )

    def _upright(self, rgb: np.ndarray, persons: list[Person]) -> list[Person]:
        """``persons`` with each upside-down body replaced by the same body found upright in
        the picture turned a quarter turn (:data:`QUARTER_TURNS`, the first that gives it).

        The detector's mistake depends on the body's orientation in the picture: on the
        flipped ``weizmann_clean_wave2_p09.mp4`` a fresh detection of the upright picture
        came out head down again, either quarter turn upright on every frame it found
        someone.  A body found upside down in a turn too (a handstand) is kept as it is; one
        no turn finds at all is dropped (the VIDEO graph had followed it from its own last,
        upside-down landmarks: on frame 6 of that clip a fresh look finds nobody in any
        orientation).  A turn costs one IMAGE-mode detection of the whole picture, on such
        frames only (37-125 ms a frame on a 2-core machine, see the README).
        """
        turned: dict[int, list[Person]] = {}  # (each turn detected once a frame, for everyone in it)
        out = []
        for person in persons:
            if not _upside_down(person):
                out.append(person)
                continue
            box, seen_again = person.bbox, False
            for rotation in QUARTER_TURNS:
                if rotation not in turned:
                    turned[rotation] = self._turned(rgb, rotation)
                same = [p for p in turned[rotation] if _box_overlap(p.bbox, box) > TURNED_OVERLAP]
                upright = [p for p in same if float(p.world[[11, 12], 1].mean()) < 0.0]  # shoulders above hips
                if upright:
                    out.append(max(upright, key=lambda p: _box_overlap(p.bbox, box)))
                    break
                seen_again = seen_again or bool(same)
            else:
                if seen_again:  # upside down whichever way the picture is turned: kept as it is
                    out.append(person)
        return out

    def _turned(self, rgb: np.ndarray, rotation: int) -> list[Person]:
        """The people the IMAGE-mode landmarker finds in ``rgb`` turned by ``rotation``, in ``rgb``'s coordinates."""
        import mediapipe as mp

        if self._still is None:
            self._still = self._make(False)
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(cv2.rotate(rgb, rotation)))
        result = self._still.detect(image)
        size = rgb.shape[1], rgb.shape[0]
        return [_from_turned(_to_person(img, world), rotation, size)
                for img, world in zip(result.pose_landmarks, result.pose_world_landmarks)]

    def _detect(self, image, mp_ts: int, new_scene: bool):
        """MediaPipe's result for one picture; a new scene is searched afresh.

        The VIDEO graph follows people from its own last landmarks, so in the next photo
        of a folder it drew a skeleton where the last photo's person had been.  A new
        scene after tracked frames goes to an IMAGE-mode landmarker (detection only) and
        forgets the tracked people; the VIDEO graph, stale, is made anew before the next
        frame that continues a scene (a folder of photos never pays for that).
        """
        if new_scene and self._video_frames and self._make is not None:
            self._forget_people()  # (the same stream goes on: its times are not shifted again)
            if self._still is None:
                self._still = self._make(False)
            self._video_stale = True
            return self._still.detect(image)
        if self._video_stale:
            with quiet_native_stderr(self._quiet):
                self._landmarker.close()
            self._landmarker = self._make(True)
            self._video_frames, self._video_stale = 0, False
        self._video_frames += 1
        return self._landmarker.detect_for_video(image, mp_ts)


def _landmarker(path: str, options: PoseEstimatorOptions, video: bool):
    """A MediaPipe ``PoseLandmarker`` for ``options``, in VIDEO or IMAGE running mode.

    Raises:
        ModelError: MediaPipe refuses the model.
    """
    from mediapipe.tasks.python import BaseOptions, vision

    mp_options = vision.PoseLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=path),
        running_mode=vision.RunningMode.VIDEO if video else vision.RunningMode.IMAGE,
        num_poses=options.num_poses,
        min_pose_detection_confidence=options.min_detection_confidence,
        min_pose_presence_confidence=options.min_presence_confidence,
        min_tracking_confidence=options.min_tracking_confidence,
    )
    try:
        with quiet_native_stderr(not log.isEnabledFor(logging.DEBUG)):
            return vision.PoseLandmarker.create_from_options(mp_options)
    except (RuntimeError, ValueError) as exc:
        raise ModelError(f"MediaPipe could not load the pose model {path} ({exc})") from exc


class FarSearch:
    """Finds people too small for BlazePose's detector in zoomed crops of the picture.

    Why: the detector finds a person by the face, in a 224 px picture, so a body under
    about a quarter of the picture's height, or in a low-resolution clip, gives nobody
    though it is plain to see (a 1280 x 720 squat shrunk to a third: 0 of 90 frames; the
    Weizmann jump clips, 180 x 144 with the person half the height: 0 of 25).  When the
    whole picture gives nobody, crops of it are searched, level by level and the centre
    first (:meth:`grid`): crops of ``1 / far_zoom`` of the picture (two thirds by
    default), then of 3/4 of that (a half).  A file searches all of them on every such
    frame (5 x 3 crops, then 3 x 2), a camera one per ``far_search_ms`` in turn (3 x 2,
    then 3 x 2).  Why the denser grid for files: the detector finds a small or blurred
    person in some crops and not in others a few pixels off (over the 63 clips of
    ``../shared/clips`` and their mirror images, frames with nobody 614 -> 515 with
    5 x 3 instead of 3 x 2); why the smaller crops: a person at a quarter of the size is
    found by them alone (a camera found them on 41 % of frames without, 81 % with; over
    the clips, frames with nobody 515 -> 487).  A frame with nobody costs a file 21
    detections (154 ms on a 2-core machine) for ``FILE_FULL_SEARCH_MS`` after it last
    saw someone (or its start), then, as for a camera, about one frame in three one
    detection.  A person found is followed from frame to frame in a crop centred on
    them that their body spans half of (the detector's favourite size), until they are
    lost for ``track_max_gap_ms`` or the whole picture finds someone again.  Crops run a
    second landmarker in IMAGE mode (detection every call), created on first use: a
    picture where people are found never pays for it.
    """

    def __init__(self, make_landmarker, options: PoseEstimatorOptions) -> None:
        self._make = make_landmarker
        self._landmarker = None
        self.zoom = float(options.far_zoom)
        self.interval_ms = float(options.far_search_ms)
        self.max_gap_ms = float(options.track_max_gap_ms)
        self._roi: tuple[int, int, int, int] | None = None  # x, y, width, height of the followed crop
        self._roi_ms = -math.inf
        self._searched_ms = -math.inf
        self._next_cell = 0
        self._found_once = False
        self._seen_ms: float | None = None  # when someone was last seen (None: on the next frame)

    @property
    def quiet(self) -> bool:
        """True until a crop has given a person once: silence fd 2 around the search.

        MediaPipe prints one-off native lines when the IMAGE landmarker is built and at
        its first landmark projection (a warning about non-square pictures, once a
        process; the whole picture's first inference takes it, unless a far person
        comes first).  fd 2 is process-wide, so this stops at the first person found:
        until then each search (about 20 ms) also silences other threads' stderr.
        """
        return not self._found_once

    def reset(self) -> None:
        self._roi = None
        self._searched_ms = -math.inf
        self._next_cell = 0
        self._seen_ms = None

    def close(self) -> None:
        if self._landmarker is not None:
            self._landmarker.close()
            self._landmarker = None

    def grid(self, width: int, height: int) -> list[tuple[int, int, int, int]]:
        """The search crops ``(x, y, w, h)``: level by level (``FILE_FAR_GRIDS`` or
        ``CAMERA_FAR_GRIDS``), each an overlapping grid nearest the centre first."""
        cells = []
        for zoom, across, down in CAMERA_FAR_GRIDS if self.interval_ms > 0 else FILE_FAR_GRIDS:
            cw, ch = max(1, round(width / (zoom * self.zoom))), max(1, round(height / (zoom * self.zoom)))
            level = [(int(x), int(y), cw, ch) for y in np.linspace(0, height - ch, down).round()
                     for x in np.linspace(0, width - cw, across).round()]
            cells += sorted(level, key=lambda c: abs(c[0] + cw / 2 - width / 2) / width + abs(c[1] + ch / 2 - height / 2) / height)
        return cells

    def find(self, rgb: np.ndarray, now_ms: float) -> list[Person]:
        """People in the crops of ``rgb`` (``(H, W, 3)``), in whole-picture coordinates."""
        height, width = rgb.shape[:2]
        if self._roi is not None and now_ms - self._roi_ms <= self.max_gap_ms:
            persons = self._detect(rgb, self._roi)
            if persons:
                return self._found(persons, now_ms, width, height)
        if self._seen_ms is None:
            self._seen_ms = now_ms
        interval = self.interval_ms
        if interval <= 0 and now_ms - self._seen_ms > FILE_FULL_SEARCH_MS:
            interval = CAMERA_FAR_SEARCH_MS  # a file with nobody in it for a while
        if now_ms - self._searched_ms < interval:
            return []
        self._searched_ms = now_ms
        cells = self.grid(width, height)
        if interval > 0:
            # A camera, or a file with nobody for a while: one crop per interval, in turn,
            # so that a picture with nobody in it costs one more detection now and then
            # rather than a dozen every frame.
            cells, self._next_cell = [cells[self._next_cell % len(cells)]], self._next_cell + 1
        for cell in cells:
            persons = self._detect(rgb, cell)
            if persons:
                return self._found(persons, now_ms, width, height)
        return []

    def _found(self, persons: list[Person], now_ms: float, width: int, height: int) -> list[Person]:
        self._found_once = True
        self._seen_ms = now_ms
        self._roi, self._roi_ms = self._follow(persons[0], width, height), now_ms
        return persons

    def _detect(self, rgb: np.ndarray, crop: tuple[int, int, int, int]) -> list[Person]:
        import mediapipe as mp

        if self._landmarker is None:
            self._landmarker = self._make()
        x, y, w, h = crop
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb[y : y + h, x : x + w]))
        result = self._landmarker.detect(image)
        size = rgb.shape[1], rgb.shape[0]
        return [
            _from_crop(_to_person(img, world), crop, size)
            for img, world in zip(result.pose_landmarks, result.pose_world_landmarks)
        ]

    def _follow(self, person: Person, width: int, height: int) -> tuple[int, int, int, int]:
        """The next frame's crop, centred on the body, which spans half its height (the
        picture's shape; no larger than the search crops, no smaller than a third of them)."""
        seen = person.visibility >= 0.5
        pts = person.landmarks[seen if seen.any() else slice(None), :2] * (width, height)
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        span = max((hi[1] - lo[1]) / height, (hi[0] - lo[0]) / width)
        share = float(np.clip(2.0 * span, 1.0 / (3.0 * self.zoom), 1.0 / self.zoom))
        w, h = max(1, round(width * share)), max(1, round(height * share))
        cx, cy = (lo + hi) / 2
        x = int(np.clip(round(cx - w / 2), 0, width - w))
        y = int(np.clip(round(cy - h / 2), 0, height - h))
        return x, y, w, h


def _from_crop(person: Person, crop: tuple[int, int, int, int], size: tuple[int, int]) -> Person:
    """``person`` found in ``crop`` ``(x, y, w, h)`` with image landmarks in the whole picture's units.

    World landmarks are metric and hip-centred, the same from a crop; MediaPipe's image
    ``z`` is on the scale of ``x``, so it scales with it.
    """
    x, y, w, h = crop
    lm = person.landmarks.copy()
    lm[:, 0] = (lm[:, 0] * w + x) / size[0]
    lm[:, 1] = (lm[:, 1] * h + y) / size[1]
    lm[:, 2] = lm[:, 2] * w / size[0]
    return replace(person, landmarks=lm)


def _to_person(image_landmarks, world_landmarks) -> Person:
    img = np.array([(p.x, p.y, p.z, p.visibility or 0.0, p.presence or 0.0) for p in image_landmarks], np.float32)
    world = np.array([(p.x, p.y, p.z) for p in world_landmarks], np.float32)
    if img.shape != (NUM_LANDMARKS, 5) or world.shape != (NUM_LANDMARKS, 3):
        raise ModelError("the pose model returned an unexpected number of landmarks")
    return Person(id=-1, landmarks=img[:, :3], world=world, visibility=img[:, 3], presence=img[:, 4])
