"""Kiosk state machine and visitor selection, driven by generated performers on a manual clock."""

from __future__ import annotations

import numpy as np
import pytest

from mirrorcam.containers import Firing, NeuronActivity, PoseFrame
from mirrorcam.kiosk.camera import ManualClock, ScriptedCamera, empty, generated_person, standing, unplugged
from mirrorcam.kiosk.config import TimingConfig, VisitorConfig
from mirrorcam.kiosk.state import KioskStateMachine, Phase, VisitorSelector, visitor_score

TIMING = TimingConfig(engage_after_s=1.0, greet_s=2.0, imitate_timeout_s=10.0, mirror_s=3.0, visitor_hold_s=1.0, idle_timeout_s=4.0)
ACTIONS = ("wave_one_hand", "clap")


def activity(t: float, person: int, fired: str | None = None, score: float = 0.9) -> NeuronActivity:
    """A neuron bank's output for one person, optionally completing a firing of ``fired``."""
    firings = (Firing(fired, person, t * 1000 - 800, t * 1000, t * 1000 - 300, score),) if fired else ()
    n = len(ACTIONS)
    return NeuronActivity(t * 1000, person, ACTIONS, np.zeros(n, np.float32), np.zeros(n, bool), np.zeros(n, int), firings)


class Driver:
    """Feeds a state machine from a scripted camera at 30 fps, like the kiosk loop does."""

    def __init__(self, scenes, fires: dict[float, str] | None = None, min_score: float = 0.0):
        self.clock = ManualClock()
        self.camera = ScriptedCamera(scenes, fps=30, clock=self.clock)
        self.selector = VisitorSelector(VisitorConfig(), TIMING.visitor_hold_s)
        self.machine = KioskStateMachine(TIMING, ACTIONS, min_score)
        self.fires = dict(fires or {})  # time -> template fired by the visitor at that time
        self.events = []
        self.phases: list[tuple[float, Phase]] = []

    def run(self):
        while True:
            reading = self.camera.poll()
            if self.camera.finished:
                return self
            now = self.clock()
            if reading.pose_frame is None:
                self.events += self.machine.camera_lost(now)
            else:
                visitor = self.selector.select(now, reading.pose_frame)
                fired = next((name for t, name in list(self.fires.items()) if t <= now), None)
                if fired is not None and visitor is not None:
                    self.fires = {t: n for t, n in self.fires.items() if t > now}
                act = activity(now, visitor.id, fired) if visitor is not None else None
                self.events += self.machine.update(now, visitor, act, anyone_in_view=bool(reading.pose_frame.persons))
            if not self.phases or self.phases[-1][1] is not self.machine.phase:
                self.phases.append((round(now, 2), self.machine.phase))

    def kinds(self):
        return [e.kind for e in self.events]

    def phase_names(self):
        return [p.value for _, p in self.phases]


def test_full_cycle_attract_engage_imitate_mirror_then_idle_back_to_attract():
    d = Driver([empty(2), standing(12), empty(6)], fires={6.0: "wave_one_hand"}).run()
    assert d.phase_names() == ["attract", "engage", "imitate", "mirror", "imitate", "attract"]
    assert d.kinds() == ["session_started", "action_started", "mirror", "action_started", "session_ended"]
    times = dict((p.value, t) for t, p in reversed(d.phases))  # first time each phase began
    assert times["engage"] == pytest.approx(3.0, abs=0.1)  # 2 s empty + 1 s in view
    assert times["imitate"] == pytest.approx(5.0, abs=0.1)  # + greet_s
    assert times["mirror"] == pytest.approx(6.0, abs=0.1)
    mirror = next(e for e in d.events if e.kind == "mirror")
    assert mirror.action == "wave_one_hand" and mirror.firing.template == "wave_one_hand"
    assert d.events[-1].reason == "idle"
    assert d.phases[-1][0] == pytest.approx(14.0 + TIMING.idle_timeout_s, abs=0.1)


def test_passers_by_do_not_engage():
    d = Driver([empty(1), standing(0.6), empty(1), standing(0.6), empty(2)]).run()
    assert d.phase_names() == ["attract"]
    assert d.kinds() == []


def test_the_wrong_action_or_a_weak_firing_does_not_count():
    d = Driver([standing(9)], fires={4.0: "clap", 5.0: "wave_one_hand"}, min_score=0.95).run()
    assert "mirror" not in d.kinds()
    assert d.machine.phase is Phase.IMITATE


def test_imitate_timeout_moves_on_to_the_next_action():
    d = Driver([standing(3 + 10.5)]).run()
    assert d.kinds() == ["session_started", "action_started", "action_skipped", "action_started"]
    assert [e.action for e in d.events if e.kind == "action_started"] == ["wave_one_hand", "clap"]


def test_walk_away_mid_action_resets_cleanly_for_the_next_visitor():
    # Visitor 0 engages, starts imitating, walks off; visitor 5 arrives after the idle timeout.
    scenes = [standing(4, person_id=0), empty(5), standing(4, person_id=5)]
    d = Driver(scenes, fires={8.0: "wave_one_hand"}).run()  # a firing while nobody is there
    assert d.phase_names() == ["attract", "engage", "imitate", "attract", "engage", "imitate"]
    assert d.kinds() == ["session_started", "action_started", "session_ended", "session_started", "action_started"]
    assert d.events[2].reason == "idle"
    assert d.machine.visitor_id == 5
    assert d.machine.action_index == 0 and d.machine.mirror_firing is None  # starts from the first action again


def test_a_new_visitor_takes_over_when_the_first_leaves_but_others_stay():
    # Person 0 (central) is the visitor; person 1 stands at the side throughout; 0 leaves.
    both = lambda t: (generated_person(0, cx=0.5, t=t), generated_person(1, cx=0.85, height=0.5, t=t))
    side = lambda t: (generated_person(1, cx=0.85, height=0.5, t=t),)
    from mirrorcam.kiosk.camera import Scene

    # 0 leaves at 5 s; 1 is offered after visitor_hold_s (6 s) and takes over after engage_after_s (7 s).
    d = Driver([Scene(5, both), Scene(2.5, side)]).run()
    assert d.kinds()[:2] == ["session_started", "action_started"]
    ended = [e for e in d.events if e.kind == "session_ended"]
    assert [e.reason for e in ended] == ["new visitor"]
    assert ended[0].time == pytest.approx(5.0 + TIMING.visitor_hold_s + TIMING.engage_after_s, abs=0.1)
    assert d.machine.visitor_id == 1 and d.machine.phase is Phase.ENGAGE


def test_a_passer_by_after_the_hold_does_not_take_over_the_session():
    # Visitor 0 steps out of view; after visitor_hold_s someone crosses the picture for
    # 0.3 s.  Like at the attract screen, they would have to stay engage_after_s.
    scenes = [standing(6, person_id=0), empty(1.5), standing(0.3, person_id=1, cx=0.2), empty(1.0)]
    d = Driver(scenes).run()
    assert d.kinds() == ["session_started", "action_started"]
    assert d.machine.visitor_id == 0 and d.machine.phase is Phase.IMITATE


def test_the_passer_by_s_firing_is_not_the_visitor_s_mirror_event():
    # The passer-by completes the target action while waiting: that is not a mirror event.
    scenes = [standing(6, person_id=0), empty(1.5), standing(0.5, person_id=1, cx=0.2), empty(1.0)]
    d = Driver(scenes, fires={7.8: "wave_one_hand"}).run()
    assert "mirror" not in d.kinds() and d.machine.visitor_id == 0


def test_the_visitor_back_after_a_passer_by_keeps_the_session():
    scenes = [standing(6, person_id=0), empty(1.5), standing(0.3, person_id=1, cx=0.2), empty(1.2), standing(2, person_id=0)]
    d = Driver(scenes).run()
    assert "session_ended" not in d.kinds()
    assert d.machine.visitor_id == 0 and not d.machine.visitor_missing(d.clock())


def test_short_detection_gaps_keep_the_visitor():
    scenes = [standing(3), empty(0.4), standing(3)]
    d = Driver(scenes).run()
    assert "session_ended" not in d.kinds()
    assert d.machine.visitor_id == 0


def test_camera_loss_shows_calm_screen_and_resumes():
    d = Driver([standing(4), unplugged(3), empty(1), standing(3)]).run()
    assert d.phase_names() == ["attract", "engage", "imitate", "no_camera", "attract", "engage"]
    assert d.kinds() == ["session_started", "action_started", "session_ended", "camera_lost", "camera_back", "session_started"]


@pytest.mark.parametrize(
    "people, expected",
    [
        ([], None),
        ([dict(person_id=3, cx=0.5)], 3),
        ([dict(person_id=1, cx=0.15), dict(person_id=2, cx=0.5)], 2),  # central wins over same size at the edge
        ([dict(person_id=1, cx=0.45, height=0.3), dict(person_id=2, cx=0.55, height=0.8)], 2),  # larger wins
        ([dict(person_id=1, cx=0.5, height=0.05)], None),  # far behind: not a visitor
        ([dict(person_id=1, cx=0.5, visible=0.1)], None),  # a partial glimpse
        ([dict(person_id=4, cx=0.5, height=2.5)], 4),  # very close to the lens: still selectable
    ],
    ids=["nobody", "one", "central", "largest", "far", "partial", "too-close"],
)
def test_visitor_selection(people, expected):
    selector = VisitorSelector(VisitorConfig(), hold_s=1.0)
    frame = PoseFrame(0.0, 0, tuple(generated_person(**p) for p in people), (640, 480))
    chosen = selector.select(0.0, frame)
    assert (chosen.id if chosen else None) == expected


def test_visitor_selection_is_consistent_when_someone_better_arrives():
    selector = VisitorSelector(VisitorConfig(), hold_s=1.0)
    a = generated_person(1, cx=0.3, height=0.5)
    b = generated_person(2, cx=0.5, height=0.9)
    assert visitor_score(b) > visitor_score(a)
    assert selector.select(0.0, PoseFrame(0, 0, (a,), (640, 480))).id == 1
    for t in np.arange(0.1, 5.0, 0.1):  # b is "better" but a keeps their place
        assert selector.select(t, PoseFrame(t * 1000, 0, (a, b), (640, 480))).id == 1
    # a vanishes: held for hold_s, then b takes over.
    assert selector.select(5.5, PoseFrame(5500, 0, (b,), (640, 480))) is None
    assert selector.select(6.1, PoseFrame(6100, 0, (b,), (640, 480))).id == 2


def test_constructor_validation():
    with pytest.raises(ValueError, match="at least one"):
        KioskStateMachine(TIMING, [])
    with pytest.raises(ValueError, match="min_score"):
        KioskStateMachine(TIMING, ACTIONS, min_score=2)
    with pytest.raises(ValueError, match="hold_s"):
        VisitorSelector(VisitorConfig(), -1)


@pytest.mark.parametrize("seconds", [0.0, -1.0, float("nan")])
def test_a_scripted_scene_that_lasts_no_time_is_refused(seconds):
    # Looped, such a script had spun forever inside poll() (refused before any poll here).
    with pytest.raises(ValueError, match="scene 1 lasts"):
        ScriptedCamera([standing(1), empty(seconds)], loop=True)


@pytest.mark.parametrize(
    "already_aside",
    [[], ["counters.json.corrupt"], ["counters.json.corrupt", "counters.json.corrupt.1"], ["counters.json.corrupt.1"]],
    ids=["first", "second", "third", "gap"],
)
def test_every_corrupt_counters_file_is_kept(tmp_path, caplog, already_aside):
    """A second corrupt counters.json had replaced counters.json.corrupt, the first one's counts with it."""
    from mirrorcam.kiosk.service import Counters

    for i, name in enumerate(already_aside):
        (tmp_path / name).write_text(f"earlier copy {i}")
    path = tmp_path / "counters.json"
    path.write_text("{ not json")
    with caplog.at_level("WARNING"):
        Counters(path)
    kept = sorted(set(p.name for p in tmp_path.iterdir()) - set(already_aside))
    assert len(kept) == 1 and kept[0].startswith("counters.json.corrupt"), kept
    assert (tmp_path / kept[0]).read_text() == "{ not json" and f"kept as {kept[0]}" in caplog.text
    for i, name in enumerate(already_aside):
        assert (tmp_path / name).read_text() == f"earlier copy {i}"

