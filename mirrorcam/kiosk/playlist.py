"""The performer clips a kiosk shows: loaded once at start, broken ones skipped.

Each playlist entry names an action (a template) and a clip of a performer doing it: a
video (shown with the performer's skeleton over it) or a landmark recording (shown as a
skeleton).  At start every clip is opened, its landmarks are obtained (recording, the
landmark cache, or the pose model once) and run through a private neuron bank, so the
screen knows when the performer's own neuron fires (the OTHER row of the raster).

A clip that is missing, unreadable, or of an unknown action is skipped with one log
line.  A video that breaks later (deleted, disk error) falls back to its skeleton.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from mirrorcam.containers import Person, PoseFrame
from mirrorcam.errors import MirrorcamError
from mirrorcam.kiosk.config import PlaylistItem, clip_problem
from mirrorcam.recording import Recording, is_recording_path, load_recording

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PerformerTrace:
    """The target neuron's response to the performer, frame by frame.

    Attributes:
        activation: ``(T,)`` float32 activation of the target neuron per clip frame.
        fired: Frame indices at which a firing of the target completed.
    """

    activation: np.ndarray
    fired: tuple[int, ...]


@dataclass
class PlaylistClip:
    """One playable entry.

    Attributes:
        action: Template name.
        label: What the screen calls the action.
        recording: The performer's landmarks (frames in clip time).
        video: Video file to show under the skeleton, or None (skeleton only).
        trace: The target neuron's response to the performer.
        preview: The template's stick-figure animation, ``(K, 33, 3)`` or None.
    """

    action: str
    label: str
    recording: Recording
    video: Path | None
    trace: PerformerTrace
    preview: np.ndarray | None = None
    _cap: cv2.VideoCapture | None = field(default=None, repr=False)
    _next_index: int = field(default=0, repr=False)
    _image: np.ndarray | None = field(default=None, repr=False)
    broken: bool = field(default=False, repr=False)

    @property
    def fps(self) -> float:
        return self.recording.fps

    @property
    def frame_count(self) -> int:
        return len(self.recording.frames)

    @property
    def duration_s(self) -> float:
        return self.frame_count / self.fps

    def index_at(self, t: float) -> int:
        """The clip frame shown ``t`` seconds after the clip started (looping)."""
        return int(max(t, 0.0) * self.fps) % max(self.frame_count, 1)

    def performer(self, index: int) -> Person | None:
        """The performer in clip frame ``index``: the largest person in view."""
        return _performer(self.recording.frames[index].persons)

    def image(self, index: int) -> np.ndarray | None:
        """The video picture of clip frame ``index`` (None for skeleton-only clips).

        Decodes forward from the last frame shown (restarting when the clip loops), so
        memory holds one picture; a failing video switches the clip to skeleton only.
        """
        if self.video is None or self.broken:
            return None
        if self._cap is None or index < self._next_index - 1:
            self.release()
            self._cap = cv2.VideoCapture(str(self.video))
            self._next_index = 0
            if not self._cap.isOpened():
                return self._break("cannot be opened any more")
        while self._next_index <= index:
            ok = self._cap.grab() if self._next_index < index else False
            if self._next_index == index:
                ok, image = self._cap.read()
                if ok and image is not None:
                    self._image = image
            if not ok:
                if self._next_index == 0:
                    return self._break("delivers no frames")
                # The video is shorter than its landmarks: hold the last picture.
                self._next_index = index + 1
                break
            self._next_index += 1
        return self._image

    def _break(self, why: str) -> None:
        log.warning("clip %s %s; showing its skeleton only", self.video, why)
        self.broken = True
        self.release()
        return None

    def release(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        self._image = None


def _performer(persons) -> Person | None:
    """The performer among a frame's ``persons``: the largest (one rule for what is shown
    and for whose firings count)."""
    return max(persons, key=_box_area) if persons else None


def _box_area(person: Person) -> float:
    x0, y0, x1, y1 = person.bbox
    return (x1 - x0) * (y1 - y0)


def performer_trace(recording: Recording, action: str, bank) -> PerformerTrace:
    """Run the performer's frames through ``bank`` and keep the ``action`` neuron's response.

    Only the performer's response counts: in each frame the largest person in view, the
    one :meth:`PlaylistClip.performer` shows (a bystander's firing must not light up the
    performer's raster).  A firing counts when its person was the performer in the frame
    where its movement ended, and is placed there (the bank reports it up to its settle
    time later).  The clip's end is the stream's end (``bank.finish()``): firings still
    held are released, and a movement cut off by the end may fire, as in ``replay``.
    """
    names = list(bank.names)
    target = names.index(action)
    times = np.array([f.timestamp_ms for f in recording.frames], np.float64)
    shown = [getattr(_performer(f.persons), "id", None) for f in recording.frames]

    def ended_at(firing) -> int:
        return int(np.clip(np.searchsorted(times, firing.end_ms - 1e-6), 0, len(times) - 1))

    def _performers_firings(firings) -> list[int]:
        """Frames where the performer's firings of ``action`` among ``firings`` ended."""
        ends = [(ended_at(f), f.person) for f in firings if f.template == action]
        return [i for i, person in ends if shown[i] == person]

    bank.reset()
    activation = np.zeros(len(recording.frames), np.float32)
    fired = []
    for i, frame in enumerate(recording.frames):
        activities = bank.update(frame)
        if shown[i] in activities:
            activation[i] = float(activities[shown[i]].activation[target])
        for activity in activities.values():
            fired += _performers_firings(activity.firings)
    if len(times):
        for firings in bank.finish().values():
            fired += _performers_firings(firings)
        last = bank.activations().get(shown[-1])
        if last is not None:
            activation[-1] = max(activation[-1], float(last[target]))
    bank.reset()
    return PerformerTrace(activation, tuple(sorted(set(fired))))


LandmarkFn = Callable[[Path], Recording]


def load_playlist(
    items: Sequence[PlaylistItem],
    templates: Sequence,
    bank_factory: Callable[[], object],
    landmarks: LandmarkFn,
    stop: threading.Event | None = None,
) -> list[PlaylistClip]:
    """Load every playable entry; skip the rest with one log line each.

    Args:
        items: Playlist entries from the config.
        templates: The template library's templates (for names, display names, previews).
        bank_factory: Makes a fresh neuron bank (one is used for all clips, then dropped).
        landmarks: Landmarks of a video clip (cached, or the pose model).
        stop: When set, loading ends before the next entry and returns what is loaded.
    """
    by_name = {t.name: t for t in templates}
    clips: list[PlaylistClip] = []
    bank = None
    for number, item in enumerate(items, start=1):
        # Uncached clips take minutes to load: systemctl stop must not wait for all of them.
        if stop is not None and stop.is_set():
            log.info("stopping: %d of %d playlist entries not loaded", len(items) - number + 1, len(items))
            break
        where = f"playlist entry {number} ({item.action}, {Path(item.clip).name})"
        template = by_name.get(item.action)
        if template is None:
            log.error("skipping %s: no template named %r", where, item.action)
            continue
        path = Path(item.clip)
        problem = clip_problem(path)
        if problem:
            log.error("skipping %s: %s", where, problem)
            continue
        try:
            recording = load_recording(path) if is_recording_path(path) else landmarks(path)
        except MirrorcamError as exc:
            log.error("skipping %s: %s", where, exc)
            continue
        if not any(f.persons for f in recording.frames):
            log.error("skipping %s: no performer found in the clip", where)
            continue
        if bank is None:
            bank = bank_factory()
        trace = performer_trace(recording, item.action, bank)
        if not trace.fired:
            log.warning("%s: the %s neuron never fires for this performer; the OTHER row stays empty", where, item.action)
        label = item.label or getattr(template, "display_name", "") or item.action.replace("_", " ")
        clips.append(
            PlaylistClip(
                action=item.action,
                label=label,
                recording=recording,
                video=None if is_recording_path(path) else path,
                trace=trace,
                preview=getattr(template, "preview", None),
            )
        )
        log.info("%s ready (%d frames; the performer's firings: %d)", where, len(recording.frames), len(trace.fired))
    return clips


def stand_in_clips(items: Sequence[PlaylistItem], templates: Sequence) -> list[PlaylistClip]:
    """The templates' own stick figures for the playlist's actions (the first three templates
    when no action is known), to show when no clip is playable."""
    by_name = {t.name: t for t in templates}
    wanted = [by_name[i.action] for i in items if i.action in by_name] or list(templates)[:3]
    return [c for c in (preview_clip(t) for t in wanted) if c is not None]


def preview_clip(template, fps: float = 30.0, seconds: float = 3.0) -> PlaylistClip | None:
    """A stand-in clip from a template's own stick-figure animation (when every clip is broken)."""
    preview = getattr(template, "preview", None)
    if preview is None or len(preview) == 0:
        return None
    k = len(preview)
    n = max(int(fps * seconds), k)
    frames = []
    lo = preview[:, :, :2].reshape(-1, 2).min(axis=0)
    hi = preview[:, :, :2].reshape(-1, 2).max(axis=0)
    span = float(max(hi[0] - lo[0], hi[1] - lo[1], 1e-3))
    vis = np.ones(33, np.float32)
    for i in range(n):
        world = preview[int(i * k / n)].astype(np.float32)
        image = np.empty_like(world)
        # Fit the figure into the middle 80 % of a square picture.
        image[:, :2] = (world[:, :2] - (lo + hi) / 2) / span * 0.8 + 0.5
        image[:, 2] = 0.0
        frames.append(PoseFrame(i * 1000.0 / fps, i, (Person(0, image, world, vis, vis),), (720, 720)))
    recording = Recording(tuple(frames), fps, (720, 720), source=f"template {template.name}", model_variant="generated")
    label = getattr(template, "display_name", "") or template.name.replace("_", " ")
    return PlaylistClip(template.name, label, recording, None, PerformerTrace(np.zeros(n, np.float32), ()), preview)
