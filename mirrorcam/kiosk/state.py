"""The kiosk's state machine and visitor selection: pure, clock-injected, no I/O.

Phases a visitor can follow without instructions::

    ATTRACT --someone in view for engage_after_s--> ENGAGE --greet_s--> IMITATE
    IMITATE --the target neuron fires for the visitor--> MIRROR --mirror_s--> IMITATE (next action)
    IMITATE --imitate_timeout_s without success--> IMITATE (next action)
    ENGAGE/IMITATE/MIRROR --nobody in view for idle_timeout_s--> ATTRACT
    ENGAGE/IMITATE/MIRROR --visitor gone idle_timeout_s, only unselectable people in view--> ATTRACT (walked away)
    ENGAGE/IMITATE/MIRROR --visitor gone visitor_hold_s, then someone else in view
                            for engage_after_s--> ENGAGE (new visitor)
    any --camera lost--> NO_CAMERA --frames again--> ATTRACT

Every update takes ``now`` (seconds on any monotonic clock) so tests drive hours of
kiosk life in milliseconds without sleeping.  The machine returns :class:`KioskEvent`
values; the caller reacts (reset the neurons, count a session, log a line).

Example:
    >>> machine = KioskStateMachine(TimingConfig(), ["clap"])
    >>> machine.update(0.0, visitor=None, activity=None)
    []
    >>> machine.phase
    <Phase.ATTRACT: 'attract'>
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mirrorcam.containers import Firing, NeuronActivity, Person, PoseFrame
from mirrorcam.kiosk.config import TimingConfig, VisitorConfig


class Phase(enum.Enum):
    """What the screen is doing."""

    ATTRACT = "attract"
    ENGAGE = "engage"
    IMITATE = "imitate"
    MIRROR = "mirror"
    NO_CAMERA = "no_camera"


@dataclass(frozen=True)
class KioskEvent:
    """Something the caller must react to.

    Attributes:
        kind: ``"session_started"``, ``"session_ended"``, ``"action_started"``,
            ``"mirror"``, ``"action_skipped"``, ``"camera_lost"``, ``"camera_back"``.
        time: Machine time (seconds) of the event.
        action: Template name concerned, if any.
        reason: Short explanation (``"idle"``, ``"new visitor"``, ``"timeout"``...).
        firing: The visitor's firing that made a mirror event.
    """

    kind: str
    time: float
    action: str | None = None
    reason: str = ""
    firing: Firing | None = None


# Short gaps in detection (a missed frame, a turn of the body) do not interrupt the
# visitor's wait in front of the attract screen.
_PRESENCE_GAP_S = 0.5


class KioskStateMachine:
    """The attract -> engage -> imitate -> mirror cycle for one visitor at a time.

    Args:
        timing: Phase durations.
        actions: Template names of the playlist, in order (at least one).
        min_score: A firing of the target neuron must reach this peak activation.
    """

    def __init__(self, timing: TimingConfig, actions: Sequence[str], min_score: float = 0.0) -> None:
        if not actions:
            raise ValueError("actions must name at least one template")
        if not 0.0 <= min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1], got {min_score}")
        self.timing = timing
        self.actions = tuple(actions)
        self.min_score = min_score
        self.phase = Phase.ATTRACT
        self.phase_since = 0.0
        self.visitor_id: int | None = None
        self.action_index = 0
        self.actions_done = 0
        self.last_seen: float | None = None  # when the visitor was last in view
        self.anyone_seen: float | None = None  # when anybody was last in view
        self._present_since: float | None = None
        self._candidate: int | None = None  # who stands in front of the attract screen
        self._candidate_seen = 0.0
        self.mirror_firing: Firing | None = None
        self._started = False

    # ----------------------------------------------------------------- queries
    @property
    def action(self) -> str | None:
        """The template the visitor is asked to do (IMITATE/MIRROR), else None."""
        return self.actions[self.action_index] if self.phase in (Phase.IMITATE, Phase.MIRROR) else None

    def seconds_in_phase(self, now: float) -> float:
        return max(0.0, now - self.phase_since)

    def seconds_left(self, now: float) -> float | None:
        """Time until the phase ends on its own (None for phases that wait for people)."""
        limit = {Phase.ENGAGE: self.timing.greet_s, Phase.IMITATE: self.timing.imitate_timeout_s,
                 Phase.MIRROR: self.timing.mirror_s}.get(self.phase)
        return None if limit is None else max(0.0, limit - self.seconds_in_phase(now))

    def visitor_missing(self, now: float) -> bool:
        """True while an engaged visitor is out of view (the screen says "come back")."""
        return self.visitor_id is not None and self.last_seen is not None and now - self.last_seen > _PRESENCE_GAP_S

    # ----------------------------------------------------------------- transitions
    def _enter(self, phase: Phase, now: float) -> None:
        self.phase = phase
        self.phase_since = now

    def _end_session(self, now: float, reason: str, events: list[KioskEvent]) -> None:
        if self.visitor_id is not None:
            events.append(KioskEvent("session_ended", now, reason=reason))
        self.visitor_id = None
        self.action_index = 0
        self.actions_done = 0
        self.mirror_firing = None
        self.last_seen = None
        # The candidate's wait is kept: someone who stood in view while the visitor
        # walked away goes on waiting in front of the attract screen.

    def _start_session(self, visitor_id: int, now: float, events: list[KioskEvent]) -> None:
        self.visitor_id = visitor_id
        self.action_index = 0
        self.actions_done = 0
        self.last_seen = now
        self.mirror_firing = None
        self._present_since = self._candidate = None
        self._enter(Phase.ENGAGE, now)
        events.append(KioskEvent("session_started", now))

    def _waited(self, person: Person, now: float) -> bool:
        """Note ``person`` in view and say whether they have stayed engage_after_s.

        Short gaps (under ``_PRESENCE_GAP_S``) do not restart the wait; a longer one,
        or someone else, does.
        """
        if self._present_since is None or self._candidate != person.id or now - self._candidate_seen > _PRESENCE_GAP_S:
            self._present_since = now
            self._candidate = person.id
        self._candidate_seen = now
        return now - self._present_since >= self.timing.engage_after_s

    def _next_action(self, now: float, events: list[KioskEvent], first: bool = False) -> None:
        if not first:
            self.action_index = (self.action_index + 1) % len(self.actions)
        self.mirror_firing = None
        self._enter(Phase.IMITATE, now)
        events.append(KioskEvent("action_started", now, action=self.actions[self.action_index]))

    def camera_lost(self, now: float) -> list[KioskEvent]:
        """The camera delivered nothing for a while: end any session, show the calm screen."""
        events: list[KioskEvent] = []
        if self.phase is not Phase.NO_CAMERA:
            self._end_session(now, "camera lost", events)
            self._enter(Phase.NO_CAMERA, now)
            events.append(KioskEvent("camera_lost", now))
        return events

    def update(self, now: float, visitor: Person | None, activity: NeuronActivity | None, anyone_in_view: bool | None = None) -> list[KioskEvent]:
        """Advance the machine by one camera frame.

        Args:
            now: Machine time in seconds (monotonic).
            visitor: The selected visitor in this frame (see :class:`VisitorSelector`), or None.
            activity: The visitor's neuron activity for this frame, or None.
            anyone_in_view: Whether anybody at all is in view (default: ``visitor is not None``).

        Returns:
            Events that happened on this frame, in order.
        """
        events: list[KioskEvent] = []
        if not self._started:
            self._started = True
            self.phase_since = now
        if anyone_in_view is None:
            anyone_in_view = visitor is not None
        if anyone_in_view:
            self.anyone_seen = now
        if self.phase is Phase.NO_CAMERA:
            self._enter(Phase.ATTRACT, now)
            events.append(KioskEvent("camera_back", now))

        if self.phase is Phase.ATTRACT:
            if visitor is None:
                return events  # (a wait broken off longer than _PRESENCE_GAP_S restarts in _waited)
            if self._waited(visitor, now):
                self._start_session(visitor.id, now, events)
            return events

        # ENGAGE / IMITATE / MIRROR: someone is engaged.
        if visitor is not None and visitor.id == self.visitor_id:
            self.last_seen = now
        elif visitor is not None:
            # The selector only offers someone else once the visitor was gone for its hold
            # time.  Like at the attract screen they must then stay engage_after_s: a
            # passer-by crossing the picture must not end the session.  Until then they
            # are not the visitor, so their neurons do not count.
            if self._waited(visitor, now):
                self._end_session(now, "new visitor", events)
                self._start_session(visitor.id, now, events)
                return events
            visitor, activity = None, None
        if self.anyone_seen is None or now - self.anyone_seen >= self.timing.idle_timeout_s:
            self._end_session(now, "idle", events)
            self._enter(Phase.ATTRACT, now)
            return events
        if self.last_seen is not None and now - self.last_seen >= self.timing.idle_timeout_s:
            # Others stand around but nobody is selectable (far, partial): the visitor left.
            self._end_session(now, "walked away", events)
            self._enter(Phase.ATTRACT, now)
            return events

        elapsed = now - self.phase_since
        if self.phase is Phase.ENGAGE:
            if elapsed >= self.timing.greet_s:
                self._next_action(now, events, first=True)
        elif self.phase is Phase.IMITATE:
            firing = self._target_firing(activity) if visitor is not None else None
            if firing is not None:
                self.mirror_firing = firing
                self.actions_done += 1
                self._enter(Phase.MIRROR, now)
                events.append(KioskEvent("mirror", now, action=self.actions[self.action_index], firing=firing))
            elif elapsed >= self.timing.imitate_timeout_s:
                events.append(KioskEvent("action_skipped", now, action=self.actions[self.action_index], reason="timeout"))
                self._next_action(now, events)
        elif self.phase is Phase.MIRROR:
            if elapsed >= self.timing.mirror_s:
                self._next_action(now, events)
        return events

    def _target_firing(self, activity: NeuronActivity | None) -> Firing | None:
        if activity is None:
            return None
        target = self.actions[self.action_index]
        for firing in activity.firings:
            if firing.template == target and firing.score >= self.min_score:
                return firing
        return None


# --------------------------------------------------------------------------- visitor


def visible_count(person: Person, threshold: float = 0.5) -> int:
    """Landmarks the model believes are visible and inside the picture."""
    return int(np.count_nonzero((person.visibility > threshold) & (person.presence > threshold)))


def visitor_score(person: Person, centre_weight: float = 1.0) -> float:
    """How much ``person`` looks like *the* visitor: large and central.

    The box area (clipped to the picture, so someone very close to the lens does not
    score beyond a full frame) is discounted by the distance of the body's centre from
    the picture's vertical centre line.
    """
    x0, y0, x1, y1 = person.bbox
    x0, x1 = max(0.0, x0), min(1.0, x1)
    y0, y1 = max(0.0, y0), min(1.0, y1)
    area = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    cx = float(np.clip((x0 + x1) / 2.0, 0.0, 1.0))
    off_centre = abs(cx - 0.5) * 2.0  # 0 in the middle, 1 at an edge
    return area / (1.0 + centre_weight * off_centre * 2.0)


class VisitorSelector:
    """Picks one visitor per frame, consistently.

    The current visitor keeps their place while they are in view, and for
    ``hold_s`` after they vanish (a missed detection, a turn, a short step aside);
    only then does the best other candidate take over.  Candidates must be tall enough
    (not far behind) and show enough landmarks (not a stray arm at the edge).

    Args:
        visitor: Selection thresholds.
        hold_s: How long a lost visitor keeps their place.
    """

    def __init__(self, visitor: VisitorConfig, hold_s: float) -> None:
        if hold_s < 0:
            raise ValueError(f"hold_s must be >= 0, got {hold_s}")
        self.config = visitor
        self.hold_s = hold_s
        self.current: int | None = None
        self._last_seen = 0.0

    def reset(self) -> None:
        self.current = None

    def candidates(self, pose_frame: PoseFrame) -> list[Person]:
        """People in the frame who could be the visitor."""
        out = []
        for person in pose_frame.persons:
            if visible_count(person) < self.config.min_visible_landmarks:
                continue
            _, y0, _, y1 = person.bbox
            if min(1.0, y1) - max(0.0, y0) < self.config.min_height:
                continue
            out.append(person)
        return out

    def select(self, now: float, pose_frame: PoseFrame | None) -> Person | None:
        """The visitor in ``pose_frame`` (None while nobody qualifies or the lost visitor is held)."""
        candidates = self.candidates(pose_frame) if pose_frame is not None else []
        if self.current is not None:
            for person in candidates:
                if person.id == self.current:
                    self._last_seen = now
                    return person
            if now - self._last_seen < self.hold_s:
                return None
            self.current = None
        if not candidates:
            return None
        best = max(candidates, key=lambda p: (visitor_score(p, self.config.centre_weight), -p.id))
        self.current = best.id
        self._last_seen = now
        return best
