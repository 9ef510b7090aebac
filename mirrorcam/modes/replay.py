"""``mirrorcam replay PATH``: run a clip, folder or recording through the pipeline.

Draws the skeletons (and the neurons' activations) over the frames, shows them in a
window when a display exists, writes the annotated video and a JSON-lines events file
(one line per frame, one per neuron firing).
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from mirrorcam.containers import PoseFrame
from mirrorcam.errors import MirrorcamError, SourceError
from mirrorcam.modes.common import (add_pose_arguments, add_template_arguments, display_available, folder_form_problem, load_bank, nonempty_arg,
                                    open_window, path_arg, pose_options_from_args)
from mirrorcam.pipeline import iter_pose_frames
from mirrorcam.pose import PoseEstimator
from mirrorcam.progress import Progress
from mirrorcam.recording import is_recording_path, load_recording
from mirrorcam.screen import draw_neuron_bars, draw_skeleton, person_color
from mirrorcam.sinks import BackgroundWorker, JsonLinesSink, VideoSink
from mirrorcam.sources import IMAGE_SUFFIXES, VIDEO_SUFFIXES, open_source, require_clip_path

log = logging.getLogger(__name__)
WINDOW = "mirrorcam replay"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="annotate a clip, folder of clips, image folder or landmark recording",
        description="Run PATH through the pose stage and the neurons; draw skeletons and activations, "
        "show a window when a display exists, and write the annotated video and an events file.",
    )
    parser.add_argument("path", type=path_arg, help="video file, folder of clips or images, or recording (.npz)")
    # Text, read as a path by run(): a trailing '/' (which Path drops) names a folder.
    parser.add_argument("--out", type=nonempty_arg, help="annotated video (.mp4/.avi); a folder when PATH holds several clips")
    parser.add_argument("--events", type=nonempty_arg, help="JSON-lines events file; a folder when PATH holds several clips")
    parser.add_argument("--no-window", action="store_true", help="never open a window")
    add_template_arguments(parser)
    add_pose_arguments(parser)
    parser.set_defaults(run=run)


@dataclass(frozen=True)
class ReplaySummary:
    """What one replayed clip produced."""

    path: Path
    frames: int
    frames_with_person: int
    firings: int
    seconds: float
    stopped: bool = False
    """The user stopped it in its window (q or Esc) before its end."""
    total: int | None = None
    """The clip's frames, where its container says."""

    @property
    def fps(self) -> float:
        return self.frames / max(self.seconds, 1e-9)


CLIP_SUFFIXES = VIDEO_SUFFIXES | {".npz"}
"""Files a folder's replay takes one by one: videos and landmark recordings."""


def clips_in(path: Path) -> list[Path]:
    """The clips a replay of ``path`` processes: itself, or the clips of a folder.

    A folder holding videos or recordings is a batch; a folder of only images is one clip.

    Raises:
        SourceError: The path is missing or the folder holds nothing playable.
    """
    require_clip_path(path)  # (a pipe or a device: iterdir had said only "Not a directory")
    if path.is_file():
        return [path]
    clips = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in CLIP_SUFFIXES)
    if clips:
        images = sum(p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir())
        if images:
            log.warning("%s holds clips, so it is replayed clip by clip; its %d image(s) are left out "
                        "(put them in a folder of their own to replay them)", path, images)
        return clips
    if any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir()):
        return [path]
    # `replay ../shared/clips` (a folder of folders) had said only this, as if it were empty.
    subfolders = sorted(p for p in path.iterdir() if p.is_dir())
    if subfolders:
        example = next((sub for sub in subfolders if _holds_clips(sub)), None)
        hint = f"; replay one of them, e.g. {example}" if example else ""
        raise SourceError(f"{path} contains no clips, recordings or images (its subfolders are not searched{hint})")
    raise SourceError(f"{path} contains no clips, recordings or images")


def _holds_clips(folder: Path) -> bool:
    """Whether ``folder`` itself holds a clip, recording or image (for the hint above)."""
    try:
        return any(p.suffix.lower() in CLIP_SUFFIXES | IMAGE_SUFFIXES and p.is_file() for p in folder.iterdir())
    except OSError:  # unreadable: just not the one to suggest
        return False


def run(args: argparse.Namespace) -> int:
    clips = clips_in(args.path)
    batch = len(clips) > 1 or (args.path.is_dir() and clips != [args.path])
    out_arg, events_arg = (_output_arg(flag, text, batch) for flag, text in (("--out", args.out), ("--events", args.events)))
    if batch:
        _check_batch_outputs(clips, ("--out", out_arg), ("--events", events_arg))
        for clip in clips:  # (all before the first clip: `--out` the clips' own folder had
            #                  written a.mp4 beside a.npz, then stopped at b.mp4)
            _check_outputs(clip, _output_for(out_arg, clip, batch, ".mp4"), _output_for(events_arg, clip, batch, ".jsonl"))
    bank = load_bank(args)
    show = not args.no_window and display_available()
    options = pose_options_from_args(args)
    estimator = None
    failures = 0
    try:
        for k, clip in enumerate(clips):
            out = _output_for(out_arg, clip, batch, ".mp4")
            events = _output_for(events_arg, clip, batch, ".jsonl")
            _check_outputs(clip, out, events)
            if not is_recording_path(clip) and estimator is None:
                estimator = PoseEstimator.create_from_options(options)
            try:
                summary = replay_clip(clip, estimator, bank, out, events, show)
            except MirrorcamError as exc:
                if not batch:
                    raise
                failures += 1
                reason = str(exc)
                if str(clip) in reason:  # ("skipping a.mp4: a.mp4 is not a readable video" had said it twice)
                    log.error("%s; skipping it", reason)
                else:
                    log.error("skipping %s: %s", clip, reason)
                continue
            if summary.frames_with_person == 0 and not batch:  # (an earlier output of that name is kept)
                raise MirrorcamError(f"no person found in any of the {summary.frames} frames of {clip}; nothing written")
            written = ", ".join(str(p) for p in (out, events) if p) if summary.frames_with_person else ""
            frames = _count(summary.frames, "frame")
            if summary.stopped:  # (the outputs are kept, and said to be partial)
                frames = (f"{summary.frames} of {summary.total} frames" if summary.total else frames) + " (stopped in the window)"
            print(
                f"{clip}: {frames}, a person in {summary.frames_with_person}, {_count(summary.firings, 'firing')}, "
                f"{summary.fps:.1f} fps" + (f" -> {written}" if written else "")
            )
            if summary.frames_with_person == 0:
                log.warning("no person found in %s; nothing written for it", clip)
            if summary.stopped:  # (q had only skipped to the folder's next clip)
                if k + 1 < len(clips):
                    log.warning("stopped: %s not replayed", _count(len(clips) - k - 1, "more clip"))
                break
    finally:
        if estimator is not None:
            estimator.close()
        if show:
            cv2.destroyAllWindows()
    if failures and failures == len(clips):  # (each was named above)
        raise MirrorcamError(f"none of the {len(clips)} clips in {args.path} could be replayed; nothing written")
    if not show and args.out is None and args.events is None:
        # Without a window and without outputs the run leaves nothing behind but the summary,
        # which first-time users took for a replay that had failed to write.
        log.warning("nothing written: give --out and/or --events to keep the annotated video or the events")
    return 1 if failures else 0


def _count(n: int, noun: str) -> str:
    """``1 firing``, ``3 firings``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _check_outputs(clip: Path, *outputs: Path | None) -> None:
    """Refuse outputs that would replace the clip being read, or each other."""
    seen = {clip.resolve()}
    for path in outputs:
        if path is None:
            continue
        if path.resolve() in seen:
            raise MirrorcamError(f"{path} would overwrite {'the clip being replayed' if path.resolve() == clip.resolve() else 'the other output'}")
        seen.add(path.resolve())


FILE_SUFFIXES = CLIP_SUFFIXES | {".jsonl", ".json"}
"""Output names that are meant as files: for a batch they are refused rather than made folders."""


def _check_batch_outputs(clips: list[Path], *folders: tuple[str, Path | None]) -> None:
    """Refuse, before any work, output folders that are files or are named like one, and clips
    whose outputs would share a name (``wave.mp4`` and ``wave.npz`` both give ``wave.jsonl``)."""
    if not any(folder for _, folder in folders):
        return
    for flag, folder in folders:
        if folder is None:
            continue
        if folder.exists() and not folder.is_dir():
            raise MirrorcamError(f"{folder} is a file; replaying a folder of clips writes a folder of outputs there")
        # `--out annotated.mp4` for a folder had silently made a FOLDER called annotated.mp4.
        if not folder.exists() and folder.suffix.lower() in FILE_SUFFIXES:
            raise MirrorcamError(f"{flag} {folder}: for a folder of clips {flag} names a folder (one file per clip), "
                                 f"e.g. {flag} {folder.with_suffix('')}/")
    stems: dict[str, Path] = {}
    for clip in clips:
        other = stems.setdefault(clip.stem, clip)
        if other is not clip:
            raise MirrorcamError(f"{other.name} and {clip.name} would write outputs of the same name; "
                                 "rename one or replay them one at a time")


def _output_arg(flag: str, text: str | None, batch: bool) -> Path | None:
    """``--out`` or ``--events`` as a path: a folder for a folder of clips, else a file, which
    a name ending in '/' is not (``--out x.mp4/`` had written the file x.mp4)."""
    if text is None:
        return None
    problem = None if batch else folder_form_problem(text)
    if problem:
        raise MirrorcamError(f"{flag} {problem}")
    return Path(text)


def _output_for(arg: Path | None, clip: Path, batch: bool, suffix: str) -> Path | None:
    if arg is None:
        return None
    return arg / f"{clip.stem}{suffix}" if batch else arg


def replay_clip(
    clip: Path,
    estimator: PoseEstimator | None,
    bank,
    out: Path | None,
    events: Path | None,
    show: bool,
) -> ReplaySummary:
    """Replay one clip; returns counts and throughput."""
    if is_recording_path(clip):
        recording = load_recording(clip)
        frames, fps, total, size = iter(recording.frames), recording.fps, len(recording), recording.frame_size
    else:
        source = open_source(clip)
        fps, total = source.fps, getattr(source, "frame_count", None)
        size = getattr(source, "size", None)
        estimator.reset_tracking()
        frames = iter_pose_frames(source, estimator)
    if bank is not None:
        bank.reset()
    video = VideoSink(out, fps) if out else None
    log_sink = writer = None
    names = {t.name: t.display_name for t in bank.templates} if bank is not None else None
    sides = BarSide()
    count = with_person = fired = 0
    last = None  # (pose frame, activities, bar side) of the last frame drawn
    latest: dict = {}  # each person's latest activity, for the final counts of one absent at the end
    start = time.perf_counter()
    completed = stopped = window = False
    try:
        # Inside the clean-up's reach: an events file that cannot be made (a folder under
        # /proc, no permission) had left the video's temporary file behind.
        log_sink = JsonLinesSink(events) if events else None
        # Without a window, drawing and encoding run beside the pose stage on the other core.
        writer = BackgroundWorker(lambda item: video.write(annotate(*item[:2], size, names, item[2]))) if video and not show else None
        with Progress(total, f"replay {clip.name}") as bar:
            for pose_frame in frames:
                activities = bank.update(pose_frame) if bank is not None else {}
                latest.update(activities)
                count += 1
                with_person += bool(pose_frame.persons)
                for activity in activities.values():
                    for firing in activity.firings:
                        fired += 1
                        if log_sink:
                            log_sink.write({"type": "fire", **firing.to_json()})
                if log_sink:
                    log_sink.write(frame_event(pose_frame, activities))
                side = sides.update(pose_frame) if video or show else "left"
                last = (pose_frame, activities, side)
                if writer:
                    writer.submit((pose_frame, activities, side))
                elif video or show:
                    image = annotate(pose_frame, activities, size, names, side)
                    if video:
                        video.write(image)
                    if show:
                        if not window:  # (each clip's own size: a folder holds several)
                            open_window(WINDOW, (image.shape[1], image.shape[0]))
                            window = True
                        cv2.imshow(WINDOW, image)
                        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                            stopped = True
                            break
                bar.update()
        if bank is not None:
            # Firings held back for lateral inhibition are decided at the end of the clip.
            ended = bank.finish()
            for firings in ended.values():
                for firing in firings:
                    fired += 1
                    if log_sink:
                        log_sink.write({"type": "fire", **firing.to_json()})
            if video and last is not None and any(ended.values()):
                # The video ends on its final counts, held a second: drawn a settle time
                # behind, the counts of a short clip's last repetitions had never appeared.
                frame, activities, side = last
                final = _with_final_counts(activities, ended, latest)
                for _ in range(max(1, round(fps * FINAL_HOLD_S))):
                    if writer:
                        writer.submit((frame, final, side))
                    else:
                        video.write(annotate(frame, final, size, names, side))
        if writer:
            writer.close()
        completed = True
    finally:
        # A clean end (or the user pressing q) keeps the outputs; a crash leaves no half file,
        # and a clip with nobody in it does not replace an earlier output with an empty one.
        # Nested: a second Ctrl+C during this clean-up (impatient, or systemd's SIGTERM
        # then SIGINT) had skipped the rest and left both temporary files behind.
        keep = completed and with_person > 0
        try:
            if writer and not completed:
                writer.abort()  # (the frames still queued would only be thrown away)
        finally:
            try:
                if video:
                    video.close(commit=keep)
            except BaseException:
                keep = False  # (the video failed: the events must not replace an earlier file alone)
                raise
            finally:
                if log_sink:
                    log_sink.close(commit=keep)
    return ReplaySummary(clip, count, with_person, fired, time.perf_counter() - start, stopped, total)


FINAL_HOLD_S = 1.0
"""How long an annotated video holds its last frame with the counts the clip's end settled."""


def _with_final_counts(activities: dict, ended: dict, latest: dict | None = None) -> dict:
    """``activities`` with the firings ``ended`` (``NeuronBank.finish``) added to the counts.

    A person out of the last frame (hidden, or gone less than the bank's timeout) whose
    firings only the end decided is shown too, from their ``latest`` activity: their last
    squat had been in the events file but in no count on the screen.
    """
    latest = latest or {}
    bases = {pid: latest[pid] for pid in ended if pid in latest}
    bases.update(activities)
    final = {}
    for pid, activity in bases.items():
        reps = activity.reps.copy()
        for firing in ended.get(pid, ()):
            if firing.template in activity.names:
                reps[activity.names.index(firing.template)] += 1
        final[pid] = replace(activity, reps=reps, active=np.zeros_like(activity.active), firings=tuple(ended.get(pid, ())))
    return final


def frame_event(pose_frame: PoseFrame, activities: dict) -> dict:
    """The events-file line of one frame: time, people and a landmark summary."""
    persons = []
    for person in pose_frame.persons:
        entry = {
            "id": person.id,
            "center": [round(float(v), 4) for v in person.center],
            "bbox": [round(v, 4) for v in person.bbox],
            "visibility": round(float(person.visibility.mean()), 3),
        }
        activity = activities.get(person.id)
        if activity is not None and len(activity.names):
            best = int(np.argmax(activity.activation))
            level = round(float(activity.activation[best]), 3)
            # (null while every neuron is at rest: the argmax of noise would name one)
            entry["top"] = {"template": activity.names[best], "activation": level} if level > 0 else None
        persons.append(entry)
    return {"type": "frame", "t": round(pose_frame.timestamp_ms / 1000.0, 3), "frame": pose_frame.index, "persons": persons}


MIN_ANNOTATED_HEIGHT = 480
"""Annotated videos of smaller clips are scaled up to this height: on a 180 x 144 clip the
twelve neurons' bars had covered the whole picture, the person included."""
MAX_ANNOTATED_HEIGHT = 1080
"""... and of larger ones scaled down to it (a folder whose first photo was 9000 x 6750 gave
a video OpenCV could not write)."""


BARS_ZONE = (0.3, 0.45)
"""The share of an annotated frame's width and height its neurons' bars cover, about
(twelve neurons, one person), for choosing the edge they hug (:class:`BarSide`)."""
BAND_ZONE = 0.2
"""... and the share of a narrow frame's height its band of bars covers (two columns of six rows)."""
NARROW_SHARE = 1 / 3
"""A frame is *narrow* when a column of bars would cover more than this share of its width
(under 528 px wide: portrait clips); its bars are then a two-column band along the bottom
or top edge.  A 160 px column on a 270 x 480 portrait frame had covered 60 % of it, and the
head, shoulders and raised arms of the performer in the middle with it."""


def _annotated_size(width: int, height: int) -> tuple[int, int]:
    """``(width, height)`` an annotated video of frames of this size has (see :func:`annotate`):
    scaled to a height within the limits, an even width when scaled (video codecs)."""
    width, height = max(int(width), 1), max(int(height), 1)
    shown = min(max(height, MIN_ANNOTATED_HEIGHT), MAX_ANNOTATED_HEIGHT)
    return (width, height) if shown == height else (max(2, round(width * shown / height / 2) * 2), shown)


def _bars_geometry(width: int, height: int) -> tuple[int, int, bool]:
    """Row height, column width and narrowness of the bars on an annotated ``width`` x ``height`` frame."""
    # Bars scale with the frame: about a third of its height for twelve neurons.
    row = max(10, min(22, height // 40))
    bar_width = max(160, width // 5)
    return row, bar_width, bar_width + 16 > width * NARROW_SHARE


LANDMARK_WEIGHT = np.array([1.0] * 25 + [0.5] * 2 + [0.25] * 6, np.float32)
"""How much the bars covering a landmark hides: the head, arms, hands and hips fully, the
knees half, the ankles and feet a quarter (what an action is seen by, first)."""


class BarSide:
    """The edge an annotated video's bars hug: the left, or the right while more of the
    people stands under the bars at the left than at the right.  On a narrow frame (see
    :data:`NARROW_SHARE`) the bars are a band along the bottom, or the top while more of
    them stands under the bottom band than under the top one.  "More" counts landmarks,
    weighed by :data:`LANDMARK_WEIGHT`: by the boxes' areas a man filling a square clip
    with his hands up had had the band moved from his feet to his face and hands.

    The bars move only after ``patience`` frames in a row that say so, so they do not
    jump with every step of someone near the middle.

    Example:
        >>> sides = BarSide()
        >>> sides.update(pose_frame)  # doctest: +SKIP
        'left'
    """

    def __init__(self, patience: int = 15) -> None:
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience}")
        self.patience = patience
        self.side = "left"
        self._votes = 0

    def update(self, pose_frame: PoseFrame) -> str:
        """The side for this frame, given where its people are."""
        zw, zh = BARS_ZONE
        zones = {"left": (0.0, 0.0, zw, zh), "right": (1.0 - zw, 0.0, 1.0, zh),
                 "bottom": (0.0, 1.0 - BAND_ZONE, 1.0, 1.0), "top": (0.0, 0.0, 1.0, BAND_ZONE)}
        sides = ("bottom", "top") if _bars_geometry(*_annotated_size(*pose_frame.image_size))[2] else ("left", "right")
        if self.side not in sides:
            self.side, self._votes = sides[0], 0
        covered = dict.fromkeys(sides, 0.0)
        for person in pose_frame.persons:
            seen = person.visibility > 0.3
            x, y, weight = person.landmarks[seen, 0], person.landmarks[seen, 1], LANDMARK_WEIGHT[seen]
            for side in sides:
                zx0, zy0, zx1, zy1 = zones[side]
                covered[side] += float(weight[(x >= zx0) & (x <= zx1) & (y >= zy0) & (y <= zy1)].sum())
        other = sides[1] if self.side == sides[0] else sides[0]
        self._votes = self._votes + 1 if covered[self.side] > covered[other] else 0
        if self._votes >= self.patience:
            self.side, self._votes = other, 0
        return self.side


def annotate(
    pose_frame: PoseFrame, activities: dict, size: tuple[int, int] | None, display_names: dict | None = None,
    side: str = "left",
) -> np.ndarray:
    """The frame with skeletons and activation bars drawn over it (a blank canvas for recordings).

    Frames under ``MIN_ANNOTATED_HEIGHT`` or over ``MAX_ANNOTATED_HEIGHT`` are scaled first.
    Each person's bars take a column at the ``side`` edge (``"left"`` or ``"right"``;
    :class:`BarSide` chooses), the next person's beside it when a column is full.  On a
    narrow frame they are a two-column band across it instead, at the bottom (or the
    top for ``side="top"``), one band per person.
    """
    if pose_frame.image is not None:
        image = pose_frame.image
    else:
        # A recording has no pictures: its blank canvas is made at the size it is shown at
        # (a crafted frame_size of 16384 x 16384 had been an 800 MB canvas a frame).
        # (the size BarSide reckons with too: a 527 px canvas rounded to 528 had been drawn
        # as a column while BarSide chose a band)
        width, height = _annotated_size(*(size or pose_frame.image_size or (640, 480)))
        image = np.full((height, width, 3), 24, np.uint8)
    height = min(max(image.shape[0], MIN_ANNOTATED_HEIGHT), MAX_ANNOTATED_HEIGHT)
    if height != image.shape[0]:
        width = max(2, round(image.shape[1] * height / image.shape[0] / 2) * 2)  # (even: video codecs)
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR if height > image.shape[0] else cv2.INTER_AREA)
    else:
        image = image.copy()
    for person in pose_frame.persons:
        draw_skeleton(image, person, person_color(person.id), label=f"#{person.id}")
    height, width = image.shape[:2]
    row, bar_width, narrow = _bars_geometry(width, height)
    if narrow:
        bands = [-(-len(activities[pid].names) // 2) * (row + 2) for pid in sorted(activities)]
        y = 8 if side == "top" else max(8, height - 8 - sum(bands) - 8 * (len(bands) - 1))
        for person_id in sorted(activities):
            y = draw_neuron_bars(
                image, activities[person_id], origin=(8, y), width=width - 16, row_height=row,
                color=person_color(person_id), display_names=display_names, columns=2,
            ) + 8
        return image
    step = bar_width + 8 if side != "right" else -(bar_width + 8)
    x, y = (8 if side != "right" else width - 8 - bar_width), 8
    for person_id in sorted(activities):
        rows = len(activities[person_id].names)
        if y > 8 and y + rows * (row + 2) > height:  # this column is full: the next one
            x, y = x + step, 8
        y = draw_neuron_bars(
            image, activities[person_id], origin=(x, y), width=bar_width, row_height=row, color=person_color(person_id),
            display_names=display_names,
        ) + 8
    return image
