"""OTHER in ``mirrorcam live``: the observed performer's clips and the player that shows them.

A clip is a landmark recording, played as it is, or a video, run through the pose stage
once (its landmarks are cached) and shown frame by frame beside them.
:class:`ClipPlayer` plays the clips on the screen's clock and feeds the matcher every
clip frame once a play, whatever the screen's frame rate.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from mirrorcam.containers import PoseFrame
from mirrorcam.errors import MirrorcamError, SourceError
from mirrorcam.modes.common import say
from mirrorcam.recording import Recording, is_recording_path, load_recording
from mirrorcam.sources import VIDEO_SUFFIXES, opencv_path

log = logging.getLogger(__name__)

DEMO_DIR = Path(__file__).resolve().parent.parent.parent / "recordings"
"""The embedded demo's recordings (``recordings/make_demo.py`` makes them)."""
SECOND_PERSON = "second-person"
"""``--other`` for the camera's second person instead of clips."""


@dataclass
class ObservedClip:
    """One observed performance: landmarks for the matcher and, for videos, frames to show."""

    name: str
    recording: Recording
    video: Path | None = None

    @property
    def duration_ms(self) -> float:
        return max(1000.0 / self.recording.fps, len(self.recording) * 1000.0 / self.recording.fps)


def clip_paths(spec: Path) -> list[Path]:
    """Recordings and videos named by ``spec`` (a file or a folder), in name order.

    Raises:
        SourceError: Nothing playable there.
    """
    if not spec.exists():
        near = str(spec).lower().replace("_", "-").replace(" ", "-") == SECOND_PERSON
        hint = f" (for a second person in front of the camera: --other {SECOND_PERSON})" if near else ""
        raise SourceError(f"no such clip or folder: {spec}{hint}")
    if spec.is_file():
        return [spec]
    paths = sorted(p for p in spec.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES or is_recording_path(p))
    if not paths:
        raise SourceError(f"{spec} holds no clips or landmark recordings")
    return paths


def clip_name(path: Path) -> str:
    """A clip's name on the screen: the demo's ``observed_2_squat.npz`` is ``squat``."""
    return re.sub(r"^observed_\d+_", "", path.stem)


def load_observed(path: Path, pose_options) -> ObservedClip:
    """A clip's landmarks: a recording as it is, a video through the (cached) pose stage.

    Raises:
        MirrorcamError: An unreadable clip, or one with nobody in it (OTHER would stand
            empty while the screen waits for it to do something).
    """
    name = clip_name(path)
    if is_recording_path(path):
        clip = ObservedClip(name, load_recording(path))
    else:
        from mirrorcam.pipeline import clip_landmarks

        say("observing %s (landmarks computed once, then cached)", path.name)
        clip = ObservedClip(name, clip_landmarks(path, pose_options), path)
    if not any(f.persons for f in clip.recording.frames):
        raise SourceError(f"no person found in any of the {len(clip.recording.frames)} frames of {path}")
    return clip


class ClipPlayer:
    """Plays observed clips on the screen clock, looping; feeds every clip frame once a play.

    The matcher sees the clip's own frames in order (with timestamps that keep rising
    across loops), however fast or slow the screen runs.  ``plays`` counts the clip
    starts (each loop and each next clip): a change means the last play has ended.  A
    play ends only once all its frames have been fed: the call that finds the clip's time
    up returns the frames still unfed, and the next call starts the next play (never both
    at once, as the caller ends the last play's stream between them).
    """

    def __init__(self, clips: list[ObservedClip]) -> None:
        if not clips:
            raise ValueError("ClipPlayer needs at least one clip")
        self.clips = clips
        self.index = 0
        self._start_ms = 0.0
        self._fed = -1
        self._offset_ms = 0.0  # added to clip timestamps so the bank never sees time go back
        self._last_ts = 0.0
        self._video: cv2.VideoCapture | None = None
        self._video_pos = -1
        self._image: np.ndarray | None = None
        self.plays = 0

    @property
    def clip(self) -> ObservedClip:
        return self.clips[self.index]

    def next(self, now_ms: float) -> None:
        """Switch to the next clip."""
        self.index = (self.index + 1) % len(self.clips)
        self._restart(now_ms)

    def _restart(self, now_ms: float) -> None:
        self._offset_ms = self._last_ts + 1000.0
        self._start_ms = now_ms
        self._fed = -1
        self._close_video()
        self.plays += 1

    def _close_video(self) -> None:
        if self._video is not None:
            self._video.release()
        self._video, self._video_pos, self._image = None, -1, None

    def advance(self, now_ms: float, auto_next: bool = True) -> tuple[list[PoseFrame], PoseFrame | None]:
        """Frames due since the last call (for the matcher) and the frame to show now."""
        if self.plays == 0:
            self._restart(now_ms)
        clip = self.clip
        rec = clip.recording
        elapsed = now_ms - self._start_ms
        # The time's up but the last frames are unfed (a 20 fps screen missed the last
        # 33 ms of a 30 fps clip): they come first, and the next play on the next call.
        if elapsed >= clip.duration_ms and self._fed >= len(rec) - 1:
            if auto_next and len(self.clips) > 1:
                self.next(now_ms)
            else:
                self._restart(now_ms)
            clip, rec, elapsed = self.clip, self.clip.recording, 0.0
        target = min(len(rec) - 1, int(elapsed * rec.fps / 1000.0))
        due = []
        for i in range(self._fed + 1, target + 1):
            frame = rec.frames[i]
            ts = self._offset_ms + i * 1000.0 / rec.fps
            self._last_ts = ts
            due.append(replace(frame, timestamp_ms=ts))
        self._fed = max(self._fed, target)
        shown = rec.frames[target] if len(rec) else None
        if clip.video is not None and shown is not None:
            shown = replace(shown, image=self._video_frame(clip.video, target))
        return due, shown

    def _video_frame(self, path: Path, index: int) -> np.ndarray | None:
        if self._video is None:
            self._video = cv2.VideoCapture(opencv_path(path))
            self._video_pos = -1
        if index < self._video_pos:
            self._video.set(cv2.CAP_PROP_POS_FRAMES, 0)
            self._video_pos = -1
        while self._video_pos < index:
            # grab() skips decoding work for frames that are never shown.
            ok = self._video.grab() if self._video_pos < index - 1 else False
            if self._video_pos == index - 1:
                ok, image = self._video.read()
                if ok:
                    self._image = image
            self._video_pos += 1
            if not ok and self._video_pos < index:
                break
        return self._image

    @property
    def last_timestamp_ms(self) -> float:
        """The matcher's timestamp of the last frame fed."""
        return self._last_ts

    def close(self) -> None:
        self._close_video()


def observed_clips(spec: str | None, pose_options) -> list[ObservedClip] | None:
    """OTHER's clips for ``--other``: None for the camera's second person, the demo's clips
    when ``spec`` is None, else the clip or the folder's clips (one that cannot be played,
    or has nobody in it, skipped with a line).

    Raises:
        MirrorcamError: A single clip that cannot be played, or a folder with none that can.
    """
    if spec == SECOND_PERSON:
        return None
    folder = Path(spec) if spec else DEMO_DIR
    paths = clip_paths(folder)
    if spec is None:
        paths = [p for p in paths if p.name.startswith("observed_")] or paths
    if len(paths) == 1:
        return [load_observed(paths[0], pose_options)]
    # A folder goes on past a clip it cannot play, as replay's does: one broken file
    # among a lecturer's clips must not cost the whole screen.
    clips = []
    for path in paths:
        try:
            clips.append(load_observed(path, pose_options))
        except MirrorcamError as exc:  # (the message names the clip)
            log.error("skipping a clip: %s", exc)
    if not clips:
        raise SourceError(f"no clip in {folder} can be played (each one's reason above)")
    return clips


def demo_recordings(folder: Path = DEMO_DIR) -> tuple[Recording, list[ObservedClip]]:
    """The embedded demo: the generated visitor and the observed clips.

    Raises:
        SourceError: The demo recordings are missing.
    """
    you = folder / "self_demo.npz"
    observed = sorted(folder.glob("observed_*.npz"))
    if not you.is_file() or not observed:
        raise SourceError(f"the embedded demo's recordings are missing from {folder} (run recordings/make_demo.py)")
    return load_recording(you), [ObservedClip(clip_name(p), load_recording(p)) for p in observed]
