"""``mirrorcam live``: the mirror screen, live from a camera.

YOU is the camera (shown like a mirror, processed unmirrored); OTHER is an observed
performer: clips (landmark recordings or videos, processed once and cached), or the
second person in front of the camera.  Every frame::

    camera ─▶ capture thread (newest frame only) ─▶ pose thread (newest frame only)
          ─▶ main thread: NeuronBank(YOU), NeuronBank(OTHER clip), SpikeHistory ─▶ Screen ─▶ window

Pose inference runs in its own thread, so on two cores the screen's own work
(matching, drawing, showing) overlaps the next frame's inference instead of adding to
it; both hand-offs keep only the newest item, so latency cannot build up.

Keys: q/Esc quit, space pause, n next observed clip, t teach a new action from the
camera (count-down, a few seconds of recording, then type a name and Enter; the
template is learnt in the background while the screen goes on), f
fullscreen, m mirror display, d debug overlay, h help.

``--demo-fallback`` (``make demo``): live when a camera opens and there is a display (or
``--out`` to write the screen to); otherwise the embedded demo from ``recordings/`` (a
generated "visitor" copying generated performers), in a window when there is a display,
else written to ``out/demo.mp4`` (or ``--out``) with a summary.

OTHER's clips and the player that shows them are :mod:`mirrorcam.modes.observed`.
"""

from __future__ import annotations

import argparse
import logging
import re
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from mirrorcam.containers import NeuronActivity, PoseFrame
from mirrorcam.errors import MirrorcamError, RecordingError, SourceError, TemplateError
from mirrorcam.modes.common import (MAX_KEYS_PER_FRAME, X11Window, add_pose_arguments, display_available, file_arg, load_templates, nonempty_arg, open_window,
                                    path_arg, pose_options_from_args, say)
from mirrorcam.modes.observed import SECOND_PERSON, ClipPlayer, ObservedClip, demo_recordings, observed_clips
from mirrorcam.pipeline import PoseWorker
from mirrorcam.pose import CAMERA_FAR_SEARCH_MS, PoseEstimatorOptions
from mirrorcam.recording import Recording, fps_of, is_recording_path, load_recording, recording_from_frames
from mirrorcam.screen import OTHER_COLOR, YOU_COLOR, Screen
from mirrorcam.screen_state import ChannelView, DebugInfo, NeuronInfo, ScreenState, SpikeHistory
from mirrorcam.text import TextRenderer

log = logging.getLogger(__name__)

WINDOW = "mirrorcam"
MIN_TEACH_SECONDS = 0.5  # a taught performance shorter than this holds no movement
KEYS = (
    ("q / Esc", "quit"),
    ("space", "pause / go on"),
    ("n", "next observed clip"),
    ("t", "teach a new action from the camera"),
    ("f", "fullscreen on/off"),
    ("m", "mirror display on/off"),
    ("d", "debug: fps, milliseconds per stage, latency"),
    ("h", "this help"),
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "live",
        help="the mirror screen, live from a camera",
        description="Show YOU (the camera) beside OTHER (a clip or a second person) and the neurons that fire "
        "for both. Keys: q/Esc quit, space pause, n next clip, t teach, f fullscreen, m mirror, d debug, h help.",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--camera", type=int, default=0, metavar="N", help="camera index (default 0)")
    where.add_argument("--source", type=nonempty_arg, metavar="URL|FILE", help="stream URL, or a video file or landmark recording (.npz) played as a simulated camera")
    parser.add_argument(
        "--other", type=nonempty_arg, default=None, metavar="CLIP|FOLDER|second-person",
        help="what OTHER shows: a clip or recording, a folder of them, or 'second-person' (default: recordings/)",
    )
    parser.add_argument("--demo-fallback", action="store_true",
                        help="play the embedded demo when no camera opens, or when there is no display "
                             "and no --out (then written to out/demo.mp4)")
    parser.add_argument("--demo", action="store_true", help="play the embedded demo even if a camera is present")
    parser.add_argument("--size", default="1280x720", metavar="WxH", help="screen size (default 1280x720)")
    parser.add_argument("--fullscreen", action="store_true", help="start fullscreen")
    parser.add_argument("--no-mirror", action="store_true", help="show the camera unmirrored")
    parser.add_argument("--debug", action="store_true", help="start with the debug overlay")
    parser.add_argument("--no-window", action="store_true", help="never open a window (use --out)")
    parser.add_argument("--out", type=file_arg, help="also write the screen to this video (.mp4/.avi)")
    parser.add_argument("--force", action="store_true",
                        help="let the demo without a window replace out/demo.mp4 (a file named with --out is always replaced)")
    parser.add_argument("--seconds", type=float, help="stop after this many seconds")
    parser.add_argument("--templates", type=path_arg, action="append", metavar="DIR", help="extra template folder (repeatable)")
    parser.add_argument("--teach-seconds", type=float, default=4.0, help="length of a taught performance (default 4)")
    add_pose_arguments(parser, num_poses_default="1, or 2 with --other second-person")
    parser.set_defaults(run=run)


# --------------------------------------------------------------------------- the app


@dataclass
class Teaching:
    """Teach-from-live state: count-down, recording, naming, then learning."""

    phase: str  # "countdown" | "record" | "name" | "learn"
    started_ms: float
    frames: list[PoseFrame] = field(default_factory=list)
    typed: str = ""
    job: Future | None = None  # learning: (template, is a new style of a neuron) when done


STATS_FRAMES = 9000
"""Per-frame figures :class:`Stats` keeps: the last five minutes at 30 fps.  Enough for
the summary's medians and a benchmark's percentiles; a lecturer's all-day session had kept
three floats a frame, about 3 million by the evening, for figures nobody reads."""


@dataclass
class Stats:
    """What a session did, and the per-frame figures of its last ``keep`` frames.

    Attributes:
        frames: Screens drawn.
        seconds: How long the session ran.
        firings: Firings counted for YOU and for OTHER.
        mirror_events: Mirror events shown.
        latency_ms: Capture-to-display milliseconds of the frames shown with a camera frame.
        render_ms: Drawing the screen.
        match_ms: The neuron banks' updates (the matching) for both channels.
        clip_ms: OTHER's clip: its frames due and, for a video, the picture decoded.
        taught: Names of the templates taught on the screen.
        keep: How many of each per-frame figure are kept (the newest).
    """

    frames: int = 0
    seconds: float = 0.0
    firings: list[int] = field(default_factory=lambda: [0, 0])
    mirror_events: int = 0
    taught: list[str] = field(default_factory=list)
    keep: int = STATS_FRAMES
    latency_ms: deque[float] = field(init=False)
    render_ms: deque[float] = field(init=False)
    match_ms: deque[float] = field(init=False)
    clip_ms: deque[float] = field(init=False)

    def __post_init__(self) -> None:
        # Bounded: the session may run all day (see STATS_FRAMES).
        self.latency_ms, self.render_ms, self.match_ms, self.clip_ms = (deque(maxlen=self.keep) for _ in range(4))


class LiveApp:
    """The live screen's state machine; the pose stage, sources and window are given to it.

    Args:
        templates: Action templates (one neuron each).
        observed: Clips for OTHER, or None for the second person in the camera frame.
        size: Screen size ``(width, height)``.
        mirror: Show YOU mirrored.
        debug: Start with the debug overlay (fps, milliseconds per stage, latency) shown.
        model_variant: Named in the debug overlay.
        teach_dir: Where taught templates are saved (None: the user template folder).
        teach_seconds: Length of a taught performance; more than ``MIN_TEACH_SECONDS``.
        you_label: What YOU is, in its panel's subtitle ("doing · camera 0").
        text: Text renderer to share (one is made when None; it caches fonts).

    Raises:
        ValueError: ``teach_seconds`` is not more than ``MIN_TEACH_SECONDS``.
    """

    def __init__(
        self,
        templates,
        observed: list[ObservedClip] | None,
        size: tuple[int, int] = (1280, 720),
        mirror: bool = True,
        debug: bool = False,
        model_variant: str = "",
        teach_dir: Path | None = None,
        teach_seconds: float = 4.0,
        you_label: str = "camera",
        text: TextRenderer | None = None,
    ) -> None:
        if not teach_seconds > MIN_TEACH_SECONDS:
            raise ValueError(f"teach_seconds must be > {MIN_TEACH_SECONDS}, got {teach_seconds}")
        self.text = text or TextRenderer()
        self.size = size
        self.mirror = mirror
        self.debug = debug
        self.help = False
        self.paused = False
        self.camera_lost = False  # set by the loop from the source: YOU's panel says so
        self.model_variant = model_variant
        self.teach_dir = teach_dir
        self.teach_seconds = teach_seconds
        self.you_label = you_label
        self.player = ClipPlayer(observed) if observed else None
        self.teaching: Teaching | None = None
        self._learner: ThreadPoolExecutor | None = None  # made by the first teaching
        self.toast = ("", 0.0)
        self.stats = Stats()
        self._fps_times: list[float] = []
        self._last_you: PoseFrame | None = None
        self._last_other: PoseFrame | None = None
        self._acts: list[NeuronActivity | None] = [None, None]
        # The observed clips' firings per neuron over the session: a looping clip's stream
        # ends at every play, and its counts had started again while YOU's went on, so
        # "YOU 4 / OTHER 3" on one row compared a session with a play.
        self._observed_fired: Counter[str] = Counter()
        self._you_id: int | None = None
        self._other_id: int | None = None
        self._observed_pid: int | None = None  # the observed clip's performer in its last frame
        self._channel_of: dict[int, int] = {}  # camera person id -> the channel (0 YOU, 1 OTHER) they were last on
        self._clock_ms = 0.0
        self._paused_since: float | None = None
        self._paused_total = 0.0
        self._timings: dict[str, float] = {}
        self._match_ms = 0.0  # this frame's bank updates, added up where they happen
        # The player's (index, plays) when last looked at: a change, whoever made it (the
        # clip's end or the `n` key), ends the last play's stream (_sync_clip).
        self._seen_clip = (0, 0)
        # Set by the window's loop: reads the keyboard once (see ``step``); None without a window.
        self.poll_keyboard: Callable[[], object] | None = None
        self._set_templates(list(templates))

    # -- setup
    def _set_templates(self, templates: list) -> None:
        from mirrorcam.matching import NeuronBank

        self.templates = templates
        infos = self._infos = [NeuronInfo.from_template(t) for t in templates]
        self.screen = Screen(infos, self.size, text=self.text)
        old_banks = getattr(self, "banks", [None, None])
        self.banks = [NeuronBank(templates), NeuronBank(templates)] if templates else [None, None]
        # A taught action joins the rows: the counts, the raster and the last mirror event
        # stay (they had all gone when it was saved); what each person was in the middle of
        # starts afresh.
        for bank, old_bank in zip(self.banks, old_banks):
            if bank is not None and old_bank is not None:
                bank.carry_counts(old_bank)
        names, labels = [i.name for i in infos], [i.label for i in infos]
        old = getattr(self, "history", None)
        self.history = old.with_neurons(names, labels) if old is not None else SpikeHistory(names, labels)
        # The last activities stay shown until the next frame's (the screen finds a row by
        # its name): cleared, a screen paused while an action was learnt had lost its counts.

    def _label(self, name: str) -> str:
        """A clip named after a template (the demo's ``squat``) shows as its neuron row does."""
        return next((i.label for i in self._infos if i.name == name), name)

    def resize(self, size: tuple[int, int]) -> None:
        """Lay the screen out afresh for a window of ``size`` (scaling the picture instead
        had left text a few pixels high in a small window, and bars beside it in one of
        another shape).  Sizes under 320 x 240 are ignored."""
        size = (int(size[0]), int(size[1]))
        if size != self.size and size[0] >= 320 and size[1] >= 240:
            self.size = size
            self.screen = Screen(self._infos, size, text=self.text)

    # -- per frame
    def step(self, you_frame: PoseFrame | None, wall_ms: float) -> np.ndarray:
        """Advance everything to ``wall_ms`` with YOU's newest pose frame; returns the screen.

        The screen clock stops while paused, so clips, raster and captions freeze too.
        """
        if self.paused:
            if self._paused_since is None:
                self._paused_since = wall_ms
        elif self._paused_since is not None:
            self._paused_total += wall_ms - self._paused_since
            self._paused_since = None
        now_ms = (self._paused_since if self._paused_since is not None else wall_ms) - self._paused_total
        self._clock_ms = now_ms
        self._learnt(now_ms)
        # "match" is the banks' updates alone, timed around each; "clip" is OTHER's clip
        # advancing, which decodes a video's next picture (it had been counted as matching).
        self._match_ms = clip_ms = 0.0
        # While a name is typed, the keyboard is also read between the stages: OpenCV keeps
        # only the last key pressed between two reads, and on two cores busy with inference
        # a frame's matching and drawing took 60-130 ms, so a name typed at 50 ms a key
        # had lost letters ("jj test now" saved as "jj_te_now").
        poll = self.poll_keyboard if self.teaching is not None and self.teaching.phase == "name" else None
        if not self.paused:
            if you_frame is not None:
                self._update_you(you_frame, now_ms)
            else:
                self._teach_idle(now_ms)
            if poll:
                poll()
            if self.player is not None:
                last_ts = self.player.last_timestamp_ms  # (advance moves it on to the next play's)
                t0 = time.perf_counter()
                due, shown = self.player.advance(now_ms, auto_next=True)
                clip_ms = (time.perf_counter() - t0) * 1000.0
                self._sync_clip(now_ms, last_ts)
                for frame in due:
                    self._observed_pid = self._focus(frame)
                    self._update_channel(1, self.banks[1], frame, self._observed_pid, now_ms)
                if shown is not None:
                    self._last_other = shown
        if poll:
            poll()
        t1 = time.perf_counter()
        image = self.screen.render(self._state(now_ms))
        render_ms = (time.perf_counter() - t1) * 1000.0
        self.stats.frames += 1
        self.stats.match_ms.append(self._match_ms)
        self.stats.render_ms.append(render_ms)
        self.stats.clip_ms.append(clip_ms)
        self._timings = {"match": self._match_ms, **({"clip": clip_ms} if self.player is not None else {}),
                         "render": render_ms}
        return image

    def _sync_clip(self, now_ms: float, last_ts: float, asked: bool = False) -> None:
        """Catch up with what the clip player did since last looked at.

        A play that ended (the clip looped, the next one started, or ``n`` was pressed)
        ends OTHER's stream (:meth:`_observed_ended`); another clip (or ``asked``, the
        ``n`` key) also retires the last one's spikes and caption.  One path for every
        change: ``n`` had switched the clip behind :meth:`step`'s back, which then noticed
        nothing, and OTHER's bank went on from the old clip's movement.

        Args:
            now_ms: Screen clock now.
            last_ts: The matcher's timestamp of the last frame fed of the play that ended.
            asked: The change was asked for (``n``): announced and retired even when the
                same clip starts again (a folder of one).
        """
        index, plays = self.player.index, self.player.plays
        seen_index, seen_plays = self._seen_clip
        if plays == seen_plays:
            return
        self._seen_clip = (index, plays)
        if seen_plays > 0:
            self._observed_ended(now_ms, last_ts)
        if index != seen_index or asked:
            self._acts[1] = None
            # The last clip's caption and links go with it: they must not join a neuron
            # row to OTHER doing the next action; nor may its firings pair with YOU's
            # later ones into a mirror event the screen cannot show.
            self.history.latest_mirror = None
            self.history.retire(1)
        if index != seen_index or asked or seen_plays == 0:
            self._say_observing()  # (the first clip too, as every later one is announced)

    @staticmethod
    def _focus(frame: PoseFrame) -> int | None:
        # The observed clip's performer: the first (lowest id) person in the frame.
        return min((p.id for p in frame.persons), default=None)

    def _update_you(self, frame: PoseFrame, now_ms: float) -> None:
        self._last_you = frame
        ids = sorted(p.id for p in frame.persons)
        if self.player is None:
            # Second-person mode: the first person the camera saw is YOU, the next one OTHER.
            self._you_id = ids[0] if ids else None
            self._other_id = ids[1] if len(ids) > 1 else None
        else:
            self._you_id = ids[0] if ids else None
        bank = self.banks[0]
        if bank is not None:
            t = time.perf_counter()
            acts = bank.update(frame)
            self._match_ms += (time.perf_counter() - t) * 1000.0
            self._record(0, acts.get(self._you_id) if self._you_id is not None else None, now_ms)
            if self.player is None:
                self._record(1, acts.get(self._other_id) if self._other_id is not None else None, now_ms)
            # Someone who left: the bank ends their stream and hands over its last firings
            # (a squat finished just before walking out), for the channel they were on.
            for pid in (pid for pid in acts if pid not in ids and pid in self._channel_of):
                self._record_firings(self._channel_of[pid], acts[pid].firings, acts[pid].timestamp_ms, now_ms)
            followed = bank.people()
            self._channel_of = {pid: ch for pid, ch in self._channel_of.items() if pid in followed}
            self._channel_of.update({pid: ch for pid, ch in ((self._you_id, 0), (self._other_id, 1)) if pid is not None})
        if self.teaching is not None:
            self._teach_tick(frame, now_ms)

    def _update_channel(self, channel: int, bank, frame: PoseFrame, pid: int | None, now_ms: float) -> None:
        if bank is None:
            return
        t = time.perf_counter()
        acts = bank.update(frame)
        self._match_ms += (time.perf_counter() - t) * 1000.0
        self._record(channel, acts.get(pid) if pid is not None else None, now_ms)

    def _observed_ended(self, now_ms: float, last_ts: float) -> None:
        """The observed clip ended (it loops or the next one starts): its stream ends as a
        replay's does, so a movement cut off by the clip's end still fires (the matcher's
        open end) and the next play starts afresh (its open start), as in ``replay``.

        ``last_ts`` is the ended play's last timestamp (the firings' lag is counted from it;
        the next play's first, a second later, had put them a second early on the raster).
        """
        bank = self.banks[1]
        if bank is None:
            return
        t = time.perf_counter()
        ended = bank.finish()
        bank.reset()
        self._match_ms += (time.perf_counter() - t) * 1000.0
        self._record_firings(1, ended.get(self._observed_pid, ()), last_ts, now_ms)

    def _record(self, channel: int, act: NeuronActivity | None, now_ms: float) -> None:
        if act is not None:
            self._record_firings(channel, act.firings, act.timestamp_ms, now_ms)
            if channel == 1 and self.player is not None:
                act = replace(act, reps=np.array([self._observed_fired[name] for name in act.names], np.int64))
        self._acts[channel] = act

    def _record_firings(self, channel: int, firings, timestamp_ms: float, now_ms: float) -> None:
        if not firings:
            return
        self.stats.firings[channel] += len(firings)
        if channel == 1 and self.player is not None:
            self._observed_fired.update(firing.template for firing in firings)
        for firing in firings:
            lag = max(0.0, timestamp_ms - firing.end_ms)
            event = self.history.add(channel, [firing], now_ms, lag_ms=lag)
            if event is not None:
                self.stats.mirror_events += 1
                say("mirror event: %s (row %d)", self.history.names[event.neuron], event.neuron)

    def _state(self, now_ms: float) -> ScreenState:
        # A lost camera's last picture would stand frozen as if live (the source reconnects
        # on its own): the panel is emptied and says so until frames come again.
        you_pf = None if self.camera_lost else self._last_you
        you = ChannelView(
            "YOU", YOU_COLOR,
            image=you_pf.image if you_pf is not None else None,
            image_size=you_pf.image_size if you_pf is not None else (640, 480),
            persons=you_pf.persons if you_pf is not None else (),
            focus=self._you_id,
            activity=self._acts[0],
            mirrored=self.mirror,
            subtitle=f"doing · {self.you_label}",
            status="" if you_pf is not None else "camera lost: reconnecting…" if self.camera_lost else "waiting for the camera…",
        )
        if self.player is None:
            other = replace(
                you, label="OTHER", color=OTHER_COLOR, focus=self._other_id, activity=self._acts[1],
                subtitle="seeing · the second person",
                status="" if self._other_id is not None else "a second person can stand here too",
            )
            if self._other_id is None:
                other = replace(other, persons=())
        else:
            pf = self._last_other
            clip = self.player.clip
            other = ChannelView(
                "OTHER", OTHER_COLOR,
                image=pf.image if pf is not None else None,
                image_size=pf.image_size if pf is not None else clip.recording.frame_size,
                persons=pf.persons if pf is not None else (),
                focus=self._focus(pf) if pf is not None else None,
                activity=self._acts[1],
                # (one clip: no "1/1, n: next", which had pushed a portrait panel's name off its tag)
                subtitle=f"seeing · {self._label(clip.name)}" + (
                    f"  ({self.player.index + 1}/{len(self.player.clips)}, n: next)" if len(self.player.clips) > 1 else ""),
            )
        debug = None
        if self.debug:
            timings = dict(you_pf.timings_ms) if you_pf is not None else {}
            timings.update(self._timings)
            latency = self.stats.latency_ms[-1] if self.stats.latency_ms else None
            debug = DebugInfo(self.fps(), timings, latency, len(you_pf.persons) if you_pf is not None else 0, self.model_variant)
        toast = self.toast[0] if now_ms - self.toast[1] < 4000 else ""
        return ScreenState(
            (you, other), now_ms, self.history.snapshot(now_ms), self.history.latest_mirror,
            paused=self.paused, help=KEYS if self.help else None, debug=debug,
            notice=self._teach_notice(now_ms), toast=toast,
        )

    def displayed(self, frame: PoseFrame | None) -> None:
        """Call once the screen is on the display: measures capture-to-display latency and fps."""
        now = time.perf_counter()
        if frame is not None and frame.captured_at:
            self.stats.latency_ms.append((now - frame.captured_at) * 1000.0)
        self._fps_times.append(now)
        if len(self._fps_times) > 30:
            del self._fps_times[0]

    def fps(self) -> float:
        t = self._fps_times
        return (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 and t[-1] > t[0] else 0.0

    def _say_observing(self) -> None:
        assert self.player is not None
        say("observing %s (%d/%d)", self.player.clip.name, self.player.index + 1, len(self.player.clips))

    # -- keys
    def key(self, code: int) -> str | None:
        """Handle one key (a ``cv2.waitKey`` code); returns "quit", "fullscreen" or None."""
        now_ms = self._clock_ms
        if code < 0:
            return None
        code &= 0xFF
        if self.teaching is not None and self.teaching.phase == "name":
            return self._name_key(code, now_ms)
        if code in (ord("q"), 27):
            if self.teaching is not None and self.teaching.phase != "learn":
                self.teaching = None  # (a template being learnt is saved even on quitting)
                return None
            return "quit"
        # Each change is logged: a record of the session, and what the window tests read.
        if code == ord(" "):
            self.paused = not self.paused
            say("paused" if self.paused else "playing")
        elif code == ord("n") and self.player is not None:
            last_ts = self.player.last_timestamp_ms
            self.player.next(now_ms)
            self._sync_clip(now_ms, last_ts, asked=True)  # as the clip's own end does
        elif code == ord("m"):
            self.mirror = not self.mirror
            say("mirror display %s", "on" if self.mirror else "off")
        elif code == ord("d"):
            self.debug = not self.debug
            say("debug overlay %s", "on" if self.debug else "off")
        elif code == ord("h"):
            self.help = not self.help
            say("help %s", "on" if self.help else "off")
        elif code == ord("f"):
            say("fullscreen toggled")
            return "fullscreen"
        elif code == ord("t") and self.teaching is None:
            self.teaching = Teaching("countdown", now_ms)
            self.paused = False
            say("teaching: count-down")
        return None

    # -- teaching
    COUNTDOWN_MS = 3000.0

    def _teach_notice(self, now_ms: float) -> tuple[str, ...]:
        t = self.teaching
        if t is None:
            return ()
        if t.phase == "countdown":
            left = max(1, int(np.ceil((self.COUNTDOWN_MS - (now_ms - t.started_ms)) / 1000.0)))
            return (str(left), "Teaching a new action: get ready…", "start moving when the count ends")
        if t.phase == "record":
            left = max(0.0, self.teach_seconds - (now_ms - t.started_ms) / 1000.0)
            return ("● REC", f"do your action now: {left:.1f} s", "Esc cancels")
        if t.phase == "learn":
            dots = "." * (1 + int((now_ms - t.started_ms) // 400) % 3)
            return ("Learning" + dots, f"'{t.typed or 'my action'}'", "its row appears when it is ready")
        name = t.typed or "…"
        return ("Name it:", f"{name}_", "type a name, Enter saves (empty: automatic), Esc cancels")

    def _teach_tick(self, frame: PoseFrame, now_ms: float) -> None:
        t = self.teaching
        if self._count_down_ended(now_ms):
            return
        if t.phase == "record":
            t.frames.append(replace(frame, image=None))
            self._recording_ended(now_ms)

    def _teach_idle(self, now_ms: float) -> None:
        # Count-down and recording go on while no camera frame comes, so neither stalls: a
        # lost camera had left "REC ... 0.0 s" on the screen for good.
        if not self._count_down_ended(now_ms):
            self._recording_ended(now_ms)

    def _recording_ended(self, now_ms: float) -> None:
        """Ask for a name once the recording's time is up (what was recorded is kept)."""
        t = self.teaching
        if t is not None and t.phase == "record" and now_ms - t.started_ms >= self.teach_seconds * 1000.0:
            t.phase = "name"
            say("teaching: recorded %d frames; type a name and press Enter", len(t.frames))

    def _count_down_ended(self, now_ms: float) -> bool:
        """Start recording if the count-down is over; whether it just was."""
        t = self.teaching
        if t is None or t.phase != "countdown" or now_ms - t.started_ms < self.COUNTDOWN_MS:
            return False
        self.teaching = Teaching("record", now_ms)
        say("teaching: recording")
        return True

    def _name_key(self, code: int, now_ms: float) -> None:
        t = self.teaching
        if code == 27:
            self.teaching = None
            self.toast = ("teaching cancelled", now_ms)
        elif code in (13, 10):
            # Learning takes about a second (the example against every generated impostor):
            # in a thread, so the screen and the counts go on meanwhile.
            if self._learner is None:
                self._learner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mirrorcam-learn")
            t.job = self._learner.submit(self._learn, t.frames, t.typed, list(self.templates), self._you_id)
            t.phase, t.started_ms = "learn", now_ms
            say("teaching: learning")
        elif code in (8, 127):
            t.typed = t.typed[:-1]
        elif 32 <= code < 127 and len(t.typed) < 40:
            t.typed += chr(code)
        return None

    def _learnt(self, now_ms: float, wait: bool = False) -> None:
        """Save and show a template whose learning has finished (``wait``: or finishes)."""
        t = self.teaching
        if t is None or t.job is None or not (wait or t.job.done()):
            return
        self.teaching = None
        try:
            template, style = t.job.result()
            name = self._store(template, style)
        except (MirrorcamError, OSError) as exc:  # (OSError: the folder cannot be written)
            self.toast = (str(exc), now_ms)
            say("teaching failed: %s", exc)
            return
        if style:
            self.toast = (f"'{name}' learnt your way of doing it: do it again and watch it fire", now_ms)
            say("taught a new style of template %s", name)
        else:
            self.toast = (f"new neuron '{name}' saved: do it again and watch it fire", now_ms)
            say("taught template %s", name)

    def close(self) -> None:
        """Finish what is under way: a template being learnt is saved, the clips closed."""
        self._learnt(self._clock_ms, wait=True)
        if self._learner is not None:
            self._learner.shutdown()
        if self.player is not None:
            self.player.close()

    def save_taught(self, frames: list[PoseFrame], typed: str = "") -> str:
        """Make a template from recorded YOU frames, save it, add its neuron; returns its name.

        Typed as an existing neuron's name (``wave_one_hand``), the performance becomes one
        more style of that neuron instead (as ``mirrorcam teach --add``): a lecturer whose
        wave the built-in misses teaches it theirs, and the same row fires from then on.
        (The screen does the same with the learning in a thread.)

        Raises:
            TemplateError: Nobody was seen, or the performance is unusable.
        """
        return self._store(*self._learn(frames, typed, list(self.templates), self._you_id))

    @staticmethod
    def _learn(frames: list[PoseFrame], typed: str, templates: list, person: int | None):
        """``(template, is a new style of a neuron in templates)``; touches nothing of the app's."""
        from mirrorcam.teaching import add_style, free_style

        names = [t.name for t in templates]
        try:
            if (slug := _slug(typed)) in names:
                old = templates[names.index(slug)]
                taught = taught_template(frames, typed, existing=set(), person=person, kind=old.kind,
                                         side_specific=old.side_specific, templates=templates)
                return add_style(old, taught, free_style(old)), True
            return taught_template(frames, typed, existing=set(names), person=person, templates=templates), False
        except ValueError as exc:  # the performance makes no valid template (as `mirrorcam teach` says it)
            raise TemplateError(f"cannot learn an action from this performance: {exc}") from None

    def _store(self, template, style: bool) -> str:
        """Save a learnt template (atomically) and give it its row: its neuron's, or a new one."""
        from mirrorcam.templates import save_template, user_template_dir

        folder = self.teach_dir or user_template_dir()
        save_template(folder / f"{template.name}.json", template, force=style)
        if style:
            self._set_templates([template if t.name == template.name else t for t in self.templates])
        else:
            self._set_templates([*self.templates, template])
        self.stats.taught.append(template.name)
        return template.name


def _slug(text: str) -> str:
    return re.sub(r"_+", "_", re.sub(r"[^a-z0-9]+", "_", text.lower())).strip("_")[:40]


def taught_template(frames: list[PoseFrame], typed: str, existing: set[str], person: int | None = None,
                    kind: str = "dynamic", side_specific: bool = False, templates=()):
    """A template from a live performance (``frames``), named from ``typed`` or automatically,
    calibrated against the generated performers and the user's ``templates`` besides.

    Raises:
        TemplateError: No person in the frames, or too short a performance.
    """
    from mirrorcam.authoring import impostor_streams
    from mirrorcam.teaching import teach
    from mirrorcam.templates import embed_recording

    if not frames or not any(f.persons for f in frames):
        raise TemplateError("nobody was seen while teaching; stand in front of the camera and try again")
    rec = recording_from_frames(frames, fps_of(frames), frames[0].image_size, "live camera")
    stream = embed_recording(rec, person)
    base = _slug(typed) or "my_action"
    name, k = base, 2
    while name in existing:
        name, k = f"{base}_{k}", k + 1
    taught = teach(name, [stream], impostor_streams(name, templates), display_name=typed.strip() or name.replace("_", " "),
                   kind=kind, side_specific=side_specific, source="taught live from the camera")
    return replace(taught.template, preview=taught.preview(rec, person))


# --------------------------------------------------------------------------- running


def parse_size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text or "")
    if not m:
        raise MirrorcamError(f"--size must look like 1280x720, got {text!r}")
    w, h = int(m.group(1)), int(m.group(2))
    if w < 320 or h < 240 or w > 7680 or h > 4320:
        raise MirrorcamError(f"--size must be between 320x240 and 7680x4320, got {w}x{h}")
    return w, h


def open_you_source(args):
    from mirrorcam.sources import camera_source, parse_source_spec, simulated_camera, url_source

    if args.source:  # (a file or URL; --camera takes an index)
        path = parse_source_spec(args.source)
        if isinstance(path, str):
            return url_source(path)
        if not isinstance(path, Path) or not path.exists():
            hint = f" (a camera is --camera {args.source})" if args.source.strip().isdigit() else ""
            raise SourceError(f"no such video file or URL: {args.source}{hint}")
        if not path.is_file():  # (a folder or /dev/zero had been called missing)
            raise SourceError(_not_a_source_file(path, args.source))
        return simulated_camera(path)
    return camera_source(args.camera)


def _not_a_source_file(path: Path, typed: str) -> str:
    """Why ``--source`` cannot play what is at ``path``, an existing folder, device or FIFO."""
    from mirrorcam.fileio import file_kind

    if path.is_dir():
        return (f"--source {typed} is a folder, not a video file (--source plays one video file, "
                "landmark recording or stream; --other takes a folder of clips)")
    return f"--source {typed} is not a regular file ({file_kind(path.stat().st_mode)}); a camera is --camera N"


def source_recording(args) -> Recording | None:
    """The landmark recording ``--source`` names, or None (a camera, a stream, a video).

    Played as YOU without the pose model, as the kiosk plays one as its camera and the demo
    its visitor (it had been refused as "not a readable video").

    Raises:
        MirrorcamError: A damaged recording, or one with no frames.
    """
    if not args.source or not is_recording_path(args.source):
        return None
    recording = load_recording(args.source)
    if not recording.frames:
        raise SourceError(f"{args.source} is a recording with no frames")
    return recording


def recording_feed(recording: Recording) -> Callable[[float], PoseFrame | None]:
    """``next_frame`` for :func:`run_loop`: a recording played as a camera gives it, in real
    time from now, looping, only the newest frame (timestamps rising across loops)."""
    player = ClipPlayer([ObservedClip("you", recording)])
    start = time.perf_counter()

    def next_frame(timeout: float) -> PoseFrame | None:
        time.sleep(max(0.0, min(timeout, 1.0 / 30.0 - 0.004)))
        now = (time.perf_counter() - start) * 1000.0
        due, _shown = player.advance(now)
        return replace(due[-1], captured_at=time.perf_counter()) if due else None

    return next_frame


def camera_pose_options(args: argparse.Namespace) -> PoseEstimatorOptions:
    """The camera's pose stage: one person, or two when OTHER is the second person
    (``--num-poses`` overrides).

    Why not always two: MediaPipe re-runs its person detector on every frame while it
    tracks fewer people than it may, about 20 ms a frame on a 2-core laptop (pose 29-32
    against 48-52 ms, live 30 against 19-21 fps).  Observed clips keep the pose options
    replay and eval use, so their landmark cache is shared.  A camera searches for people
    too small to be found in the whole picture one crop at a time
    (:data:`~mirrorcam.pose.CAMERA_FAR_SEARCH_MS`).
    """
    options = pose_options_from_args(args, num_poses=2 if args.other == SECOND_PERSON else 1)
    return replace(options, far_search_ms=CAMERA_FAR_SEARCH_MS)


def app_from_args(args: argparse.Namespace, observed, size: tuple[int, int], model_variant: str, you_label: str,
                  templates=None) -> LiveApp:
    """The live screen's state for the command line's options (the camera's and the demo's
    alike); ``templates`` when already loaded from ``--templates``."""
    return LiveApp(templates if templates is not None else load_templates(args.templates), observed, size, mirror=not args.no_mirror, debug=args.debug,
                   model_variant=model_variant, teach_dir=args.templates[0] if args.templates else None,
                   teach_seconds=args.teach_seconds, you_label=you_label)


def run(args: argparse.Namespace) -> int:
    size = parse_size(args.size)
    # Options first, before any camera opens (a negative index crashes OpenCV's capture).
    if not args.teach_seconds > MIN_TEACH_SECONDS:  # (LiveApp's own check, said as the option)
        raise MirrorcamError(f"--teach-seconds must be more than {MIN_TEACH_SECONDS}, got {args.teach_seconds}")
    if args.seconds is not None and not 0 < args.seconds < 1e7:
        raise MirrorcamError(f"--seconds must be a positive number of seconds, got {args.seconds}")
    if args.camera < 0:
        raise MirrorcamError(f"--camera must be 0 or more, got {args.camera}")
    if args.demo and args.other == SECOND_PERSON:  # (it had been dropped without a word)
        raise MirrorcamError(f"{_DEMO_ALONE}: give --other a clip or a folder of clips, or leave it out")
    pose_options = pose_options_from_args(args)  # observed clips: as replay and eval (shared cache)
    camera_options = camera_pose_options(args)
    # (Before the observed clips' pose runs: a mistyped --templates folder had been found after them.)
    templates = load_templates(args.templates)
    show = not args.no_window and display_available()
    # With --out the camera or source is tried first: it needs no display to be written.
    no_screen = args.demo_fallback and not show and args.out is None
    if no_screen and not args.demo:  # (said: a --source that was never tried had been dropped without a word)
        say("no display for the live screen; playing the embedded demo instead")
    if args.demo or no_screen:
        return run_demo(args, size, show, templates)
    try:
        recording = source_recording(args)
        source = open_you_source(args) if recording is None else None
    except (SourceError, RecordingError) as exc:
        if not args.demo_fallback:
            raise
        say("%s; playing the embedded demo instead", exc)
        return run_demo(args, size, show, templates)
    if not show and args.out is None:
        if source is not None:
            source.close()
        raise MirrorcamError("no display to show the live screen on; use --out FILE.mp4 (or --demo-fallback)")
    if recording is not None:
        return run_recording(args, recording, size, show, templates)
    from mirrorcam.pose import PoseEstimator

    try:
        observed = observed_clips(args.other, pose_options)
        app = app_from_args(args, observed, size, pose_options.model_variant, source.description, templates)
        estimator = PoseEstimator.create_from_options(camera_options)
    except BaseException:
        source.close()
        raise
    worker = PoseWorker(source, estimator)

    def next_frame(timeout: float) -> PoseFrame | None:
        # (Lost once it had given frames: before the first one it is still "waiting for the camera".)
        app.camera_lost = source.frames_captured > 0 and not source.connected
        return worker.get(timeout)

    try:
        stats = run_loop(app, next_frame, show, args.out, args.seconds, args.fullscreen, getattr(source, "fps", 30.0))
    finally:
        ended = worker.close()
        source.close()
        if ended:  # (else still inside MediaPipe: left to the process's end, not freed under it)
            estimator.close()
    print(summary(stats, args.out))
    return 0


def run_recording(args: argparse.Namespace, recording: Recording, size: tuple[int, int], show: bool, templates) -> int:
    """``--source REC.npz``: the live screen with a landmark recording as YOU's camera (no pose model)."""
    observed = observed_clips(args.other, pose_options_from_args(args))
    app = app_from_args(args, observed, size, recording.model_variant, f"recording {Path(args.source).name}", templates)
    stats = run_loop(app, recording_feed(recording), show, args.out, args.seconds, args.fullscreen, recording.fps)
    print(summary(stats, args.out))
    return 0


FRAME_WAIT_S = 0.05  # longest wait for YOU's next frame before the screen is drawn anyway


def run_loop(app: LiveApp, next_frame, show: bool, out: Path | None, seconds: float | None,
             fullscreen: bool = False, fps: float = 30.0) -> Stats:
    """Show (and/or write) the live screen until q/Esc, ``seconds`` or the window closes.

    ``next_frame(timeout)`` returns YOU's newest pose frame or None.
    """
    from mirrorcam.sinks import VideoSink

    sink = VideoSink(out, fps) if out else None
    start = time.perf_counter()
    completed = False
    x_window = None  # (the window's keys and looks: set when the window is shown)
    if show:
        open_window(WINDOW, app.size, fill=True, fullscreen=fullscreen)  # (the loop draws at the window's size)
        x_window = X11Window(WINDOW)
    try:
        codes: list[int] = []
        if x_window is not None:
            app.poll_keyboard = lambda: codes.extend(x_window.read_keys())
        while True:
            if x_window is not None:
                # The keyboard is also read while the next frame is awaited, not once a
                # frame: without X's key queue (see X11Window), OpenCV keeps only the last
                # key between two reads, and a name typed for a taught action at 50 ms a key
                # had lost every third key, at 10 ms most of them ("jj test" saved as "et").
                frame = next_frame(0.0)
                deadline = time.perf_counter() + FRAME_WAIT_S
                while frame is None and time.perf_counter() < deadline:
                    codes.extend(x_window.read_keys())
                    frame = next_frame(0.0)
            else:
                frame = next_frame(FRAME_WAIT_S)
            now_ms = (time.perf_counter() - start) * 1000.0
            image = app.step(frame, now_ms)
            if sink:
                sink.write(image)
            if x_window is not None:
                cv2.imshow(WINDOW, image)
                codes.extend(x_window.read_keys())
                app.displayed(frame)
                actions = [app.key(code) for code in codes[:MAX_KEYS_PER_FRAME]]
                codes.clear()
                if "quit" in actions or _window_closed():
                    break
                if actions.count("fullscreen") % 2:
                    fullscreen = not fullscreen
                    cv2.setWindowProperty(WINDOW, cv2.WND_PROP_FULLSCREEN,
                                          cv2.WINDOW_FULLSCREEN if fullscreen else cv2.WINDOW_NORMAL)
                if x_window.gone_blank(image):  # (see X11Window.shows_nothing)
                    log.warning("the window shows nothing of its pictures; opening it again")
                    open_window(WINDOW, app.size, fill=True, fullscreen=fullscreen, afresh=True)
                app.resize(cv2.getWindowImageRect(WINDOW)[2:])  # the next frame is drawn at the window's size
            else:
                app.displayed(frame)
            if seconds is not None and now_ms >= seconds * 1000.0:
                break
        completed = True
    finally:
        app.stats.seconds = time.perf_counter() - start
        try:
            if sink:
                sink.close(commit=completed or sink.frames_written > 0)
        finally:  # (a video that cannot be finished must not cost a template still being learnt)
            if x_window is not None:
                x_window.close()
                cv2.destroyWindow(WINDOW)
                cv2.waitKey(1)
            app.close()
    return app.stats


def _window_closed() -> bool:
    try:
        return cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) < 1
    except cv2.error:
        return True


# --------------------------------------------------------------------------- embedded demo


_DEMO_ALONE = f"--other {SECOND_PERSON} watches a second person in front of the camera, and the demo's visitor is one generated person"


DEMO_OUT = Path("out") / "demo.mp4"
"""Where the demo without a window is written when ``--out`` names no file."""


def demo_output(args: argparse.Namespace) -> Path:
    """The file the demo without a window writes: ``--out``, replaced as every output named is,
    else :data:`DEMO_OUT`, not written over without ``--force``: a name the user never gave had
    replaced their file of that name (as ``teach`` keeps a template and ``models fetch`` a bundle)."""
    if args.out is not None:
        return args.out
    if DEMO_OUT.exists() and not args.force:
        raise MirrorcamError(f"{DEMO_OUT} already exists (an earlier demo?); use --force to replace it, "
                             "or --out FILE to write another")
    return DEMO_OUT


def run_demo(args: argparse.Namespace, size: tuple[int, int], show: bool, templates=None) -> int:
    """Replay the embedded demo through the same screen: a window, or out/demo.mp4."""
    out = None if show else demo_output(args)  # (before any work: --other's clips may go through the model)
    you_rec, observed = demo_recordings()
    if args.other == SECOND_PERSON:  # (--demo refuses it in run(); the camera's fallback goes on)
        log.warning("%s: OTHER plays the demo's clips", _DEMO_ALONE)
    elif args.other:
        observed = observed_clips(args.other, pose_options_from_args(args))
    app = app_from_args(args, observed, size, "generated", "demo visitor (generated)", templates)
    if show:
        stats = run_loop(app, recording_feed(you_rec), True, args.out, args.seconds, args.fullscreen)
        print(summary(stats, args.out))
        return 0
    stats = render_offline(app, you_rec, out, args.seconds)
    print(summary(stats, out))
    return 0


DEMO_TAIL_S = 2.0
"""The offline demo goes on this long after the visitor's recording (the visitor standing):
a firing is shown once it is decided, a second after the movement (``settle_ms``), and the
last one had been cut off."""


def render_offline(app: LiveApp, you: Recording, out: Path, seconds: float | None = None) -> Stats:
    """Render the demo frame by frame on a virtual clock (as fast as possible) into ``out``.

    The visitor's recording plays once and holds its last pose for ``DEMO_TAIL_S``; with
    ``seconds`` it loops for that long, as the window does.
    """
    from mirrorcam.sinks import VideoSink

    fps = you.fps
    count = len(you) + int(DEMO_TAIL_S * fps) if seconds is None else int(seconds * fps)
    start = time.perf_counter()
    completed = False
    sink = VideoSink(out, fps)
    try:
        for i in range(count):
            now_ms = i * 1000.0 / fps
            source = you.frames[i % len(you)] if seconds is not None else you.frames[min(i, len(you) - 1)]
            frame = replace(source, timestamp_ms=now_ms, index=i)
            sink.write(app.step(frame, now_ms))
        completed = True
    finally:
        sink.close(commit=completed)
        app.stats.seconds = time.perf_counter() - start
    return app.stats


def summary(stats: Stats, out: Path | None) -> str:
    """The session in one line: frames, firings, mirror events, median milliseconds per
    frame (of the last ``stats.keep`` frames), what was taught, the video written."""
    def p50(values):
        return float(np.median(values)) if values else float("nan")

    text = (
        f"{stats.frames} frames in {stats.seconds:.1f} s; neurons fired {stats.firings[0]}x for YOU and "
        f"{stats.firings[1]}x for OTHER; {stats.mirror_events} mirror event(s); "
        f"median match {p50(stats.match_ms):.2f} ms"
    )
    if any(stats.clip_ms):  # (none with the second person as OTHER)
        text += f", clip {p50(stats.clip_ms):.2f} ms"
    text += f", render {p50(stats.render_ms):.2f} ms"
    if stats.latency_ms:
        text += f", capture-to-display {p50(stats.latency_ms):.0f} ms"
    if stats.taught:
        text += f"; taught {', '.join(stats.taught)}"
    if out is not None:
        text += f" -> {out}"
    return text
