"""``mirrorcam live``: the embedded demo, camera failures, a real window under Xvfb, teaching.

Window tests start their own Xvfb on a free display number, drive the real program
with xdotool and look at screenshots taken with xwd (compared against expectations,
not pixel for pixel).  They skip with the reason when Xvfb, xdotool or xwd is missing.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import (REPO, assert_one_line_error, fires, first_showing, make_truncated_avi, make_undecodable_avi,
                      private_xvfb, run_cli, screen_shows_within, screenshot, unmap_the_shown_window)
from mirrorcam.screen import MIRROR_COLOR, Layout

pytestmark = pytest.mark.display
SIZE = (1280, 720)


def no_display_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    return env


# --------------------------------------------------------------------------- without a window


def test_demo_fallback_without_display_writes_video_and_summary(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "mirrorcam", "live", "--demo-fallback", "--seconds", "7"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env=no_display_env(),
    )
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "out" / "demo.mp4"
    assert out.is_file() and "Traceback" not in proc.stderr
    assert "mirror event" in proc.stdout and str(Path("out") / "demo.mp4") in proc.stdout
    cap = cv2.VideoCapture(str(out))
    ok, frame = cap.read()
    frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    assert ok and frame.shape == (SIZE[1], SIZE[0], 3) and frames >= 200
    # The first mirror event (waving, about 4.7 s in) is counted in the summary.
    assert "0 mirror event" not in proc.stdout


@pytest.mark.parametrize("out, said, written", [
    # No display and nowhere to write the camera's screen: the demo, and why.
    (None, "mirrorcam: no display for the live screen; playing the embedded demo instead", "out/demo.mp4"),
    # With --out the source is tried first (it needs no display), and its error is said.
    ("mine.mp4", "mirrorcam: no such video file or URL: nothere.mp4; playing the embedded demo instead", "mine.mp4"),
])
def test_demo_fallback_without_display_says_why_it_plays_the_demo(tmp_path, out, said, written):
    """A ``--source`` that was never tried had been dropped without a word."""
    command = [sys.executable, "-m", "mirrorcam", "live", "--demo-fallback", "--source", "nothere.mp4", "--seconds", "1"]
    proc = subprocess.run(command + (["--out", out] if out else []), capture_output=True, text=True, timeout=300,
                          cwd=tmp_path, env=no_display_env())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == said, proc.stdout
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()) == [str(Path(written))]


@pytest.mark.parametrize("command", [("--demo", "--no-window"), ("--demo-fallback",)], ids=["demo", "demo-fallback"])
@pytest.mark.parametrize("force", [False, True], ids=["kept", "force"])
def test_the_demo_does_not_replace_an_earlier_out_demo_mp4_without_force(tmp_path, command, force):
    """``out/demo.mp4`` is a name the user never gave: a demo had replaced their file of that name
    (as teach keeps a template and models fetch a bundle, it is replaced with --force only)."""
    (tmp_path / "out").mkdir()
    earlier = tmp_path / "out" / "demo.mp4"
    earlier.write_bytes(b"an earlier video of mine")
    proc = subprocess.run([sys.executable, "-m", "mirrorcam", "live", *command, "--seconds", "1", *(["--force"] if force else [])],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path, env=no_display_env())
    if force:
        assert proc.returncode == 0, proc.stderr
        assert earlier.stat().st_size > 10_000  # the new demo
    else:
        assert_one_line_error(proc, "out/demo.mp4 already exists (an earlier demo?); use --force to replace it, "
                                    "or --out FILE to write another")
        assert earlier.read_bytes() == b"an earlier video of mine"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["demo.mp4"]


def unreachable_display() -> str:
    """A ``$DISPLAY`` no X server answers on (no socket of that number)."""
    return next(f":{n}" for n in range(917, 1000) if not Path(f"/tmp/.X11-unix/X{n}").exists())


@pytest.mark.parametrize("command", [
    ("live", "--demo-fallback", "--seconds", "2"),  # what `make demo` runs
    ("live", "--demo", "--seconds", "2", "--out", "mine.mp4"),
    ("replay", "squat.npz", "--events", "squat.jsonl"),
])
def test_a_display_that_cannot_be_reached_is_a_warning_and_a_run_without_a_window(tmp_path, command):
    """A stale ``$DISPLAY`` (ssh) had aborted the process inside OpenCV's Qt (exit 134, Qt's
    lines, temporary outputs left behind); `make demo`'s fallback had aborted with it."""
    from mirrorcam.performer import PerformerOptions, perform
    from mirrorcam.recording import save_recording

    save_recording(tmp_path / "squat.npz", perform("squat", PerformerOptions(repeats=1)))
    env = {**no_display_env(), "DISPLAY": unreachable_display()}
    proc = subprocess.run([sys.executable, "-m", "mirrorcam", *command], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines()[0] == f"mirrorcam: cannot reach the X display {env['DISPLAY']}; running without a window", proc.stderr
    assert "qt" not in proc.stderr.lower()
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    expected = {"live": ["mine.mp4"] if "--out" in command else [str(Path("out") / "demo.mp4")], "replay": ["squat.jsonl"]}[command[0]]
    assert written == sorted(["squat.npz", *expected]), written  # (and no temporary file)


@pytest.mark.parametrize("display", ["unreachable", None])
def test_a_kiosk_without_a_display_says_so_once_and_runs_without_a_window(tmp_path, display):
    """The kiosk had said it twice for a display that cannot be reached ("cannot reach the X
    display :917; no window", then "no display found; running without a window")."""
    from mirrorcam.performer import PerformerOptions, perform
    from mirrorcam.recording import save_recording

    save_recording(tmp_path / "wave.npz", perform("wave_one_hand", PerformerOptions(repeats=1)))
    (tmp_path / "kiosk.toml").write_text(
        f'[camera]\nsource = "{tmp_path / "wave.npz"}"\n[storage]\ndir = "{tmp_path / "state"}"\n'
        '[[playlist]]\naction = "wave_one_hand"\nclip = "wave.npz"\n', encoding="utf-8")
    env = no_display_env()
    if display:
        env["DISPLAY"] = unreachable_display()
    proc = subprocess.run([sys.executable, "-m", "mirrorcam", "kiosk", "--config", "kiosk.toml", "--frames", "30"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    said = [line for line in proc.stderr.splitlines() if "display" in line]
    expected = (f"mirrorcam: cannot reach the X display {env['DISPLAY']}; running without a window" if display
                else "mirrorcam: no display found; running without a window")
    assert said == [expected], proc.stderr
    assert "kiosk stopped after 30 frames" in proc.stderr


def test_the_demo_with_a_second_person_to_watch_says_it_has_none(tmp_path):
    """The demo's visitor is one generated person: `--other second-person` had been dropped
    without a word (OTHER played the demo's clips)."""
    run = lambda *flags: subprocess.run([sys.executable, "-m", "mirrorcam", "live", *flags, "--other", "second-person",
                                         "--seconds", "1"], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                                        env=no_display_env())
    assert_one_line_error(run("--demo", "--out", "d.mp4"), "leave it out")
    assert not (tmp_path / "d.mp4").exists()
    fallback = run("--demo-fallback")  # (no display here: the demo it falls back to, with a warning)
    assert fallback.returncode == 0, fallback.stderr
    assert "--other second-person watches a second person" in fallback.stderr and "the demo's clips" in fallback.stderr


def test_the_whole_demo_shows_every_mirror_event_while_other_does_that_action(tmp_path):
    # Each observed clip goes on until the visitor's second copy has fired: six mirror
    # events, each between "observing X" and the next clip (half had come after it), and
    # the last one no longer cut off by the end of the visitor's recording.
    proc = run_cli("live", "--demo", "--no-window", "--out", tmp_path / "demo.mp4", timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "6 mirror event(s)" in proc.stdout, proc.stdout
    watching, events = None, []  # (the first clip is announced too)
    for line in proc.stdout.splitlines():
        if m := re.match(r"mirrorcam: observing (\w+) \(", line):
            watching = m.group(1)
        elif m := re.match(r"mirrorcam: mirror event: (\w+) ", line):
            events.append((m.group(1), watching))
    assert [e for e, _ in events] == ["wave_one_hand"] * 2 + ["squat"] * 2 + ["arms_up"] * 2, events
    assert all(e == w for e, w in events), events


def test_camera_that_cannot_open_is_one_clear_error(tmp_path):
    out = tmp_path / "never.mp4"
    proc = run_cli("live", "--camera", "57", "--no-window", "--out", out, timeout=120, cwd=tmp_path)
    assert_one_line_error(proc, "camera 57")
    assert not list(tmp_path.iterdir())  # no video, not even an empty one, and nothing else


def test_unreachable_stream_is_one_clear_error(tmp_path):
    out = tmp_path / "never.mp4"
    proc = run_cli("live", "--source", "http://127.0.0.1:9/stream.mjpg", "--no-window", "--out", out, timeout=120, cwd=tmp_path)
    assert_one_line_error(proc, "127.0.0.1:9")
    assert not list(tmp_path.iterdir())  # no video, not even an empty one, and nothing else


def _fifo(tmp: Path) -> Path:
    os.mkfifo(tmp / "pipe.mp4")
    return tmp / "pipe.mp4"


@pytest.mark.parametrize(("make", "needle"), [
    (lambda tmp: tmp, "is a folder, not a video file (--source plays one video file, landmark recording or stream; "
                      "--other takes a folder of clips)"),
    (lambda tmp: Path("/dev/zero"), "--source /dev/zero is not a regular file (a character device); a camera is --camera N"),
    (_fifo, "is not a regular file (a FIFO); a camera is --camera N"),
    (lambda tmp: "0", "no such video file or URL: 0 (a camera is --camera 0)"),
], ids=["folder", "dev-zero", "fifo", "camera-index"])
def test_a_source_that_is_no_file_says_what_it_is(tmp_path, make, needle):
    """A folder, /dev/zero or a FIFO as --source had been "no such video file or URL"; a
    camera's index there is pointed to --camera."""
    source = make(tmp_path)
    proc = run_cli("live", "--source", source, "--no-window", "--out", tmp_path / "x.mp4", "--seconds", "1", timeout=120)
    assert_one_line_error(proc, needle)
    assert not (tmp_path / "x.mp4").exists()


def test_a_recording_as_source_plays_as_the_camera(tmp_path):
    """As the kiosk's camera.source: a landmark recording (mirrorcam extract's) is YOU, without
    the pose model. It had been refused as "not a readable video"."""
    out = tmp_path / "rec.mp4"
    proc = run_cli("live", "--source", REPO / "recordings" / "self_demo.npz", "--no-window", "--out", out, "--seconds", "8",
                   timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "error" not in proc.stderr, proc.stderr
    assert re.search(r"neurons fired [1-9]\d*x for YOU", proc.stdout), proc.stdout  # (the visitor waves 2 s in)
    cap = cv2.VideoCapture(str(out))
    frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    assert frames > 50, frames


@pytest.mark.parametrize(("make", "code", "said"), [
    (make_truncated_avi, 0, "mirrorcam: {path}: decoding stopped after 15 of 40 frames (truncated or damaged file?)"),
    (make_undecodable_avi, 2, "mirrorcam: error: {path} is not a readable video (OpenCV could not decode a frame)"),
], ids=["truncated", "no-frame-decodes"])
def test_a_damaged_video_as_source_is_said_as_replay_says_it(tmp_path, pose_model, make, code, said):
    """Live had said nothing of a truncated file (looping what decodes), and of one whose frames
    none decodes "lost ...; reconnecting" / "... is back" every second, exit 0 both. Replay's
    line for each, and its exit code: a warning and 0, an error and 2."""
    path = make(tmp_path)
    out = tmp_path / "x.mp4"
    proc = run_cli("live", "--source", path, "--no-window", "--out", out, "--seconds", "4", timeout=300)
    lines = [line for line in proc.stderr.splitlines() if line.startswith("mirrorcam:")]
    assert proc.returncode == code, proc.stderr
    assert lines == [said.format(path=path)], proc.stderr
    assert out.exists() == (code == 0)
    replayed = run_cli("replay", path, "--no-window", timeout=300)
    assert said.format(path=path) in replayed.stderr.splitlines(), replayed.stderr


@pytest.mark.parametrize("size", ["12x12", "big", "100000x2"])
def test_bad_size_is_one_clear_error(size):
    assert_one_line_error(run_cli("live", "--size", size, "--no-window"), "--size")


# --------------------------------------------------------------------------- Xvfb helpers


def _need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (apt-get install -y xvfb xdotool x11-apps)")


@pytest.fixture()
def xvfb():
    """A private X server; yields its DISPLAY string."""
    _need("Xvfb", "xdotool", "xwd")
    yield from private_xvfb(1600, 900)


class Program:
    """``mirrorcam live ...`` (or ``command``, whose window is ``window``) in a window on
    ``display``, with keys and screenshots."""

    def __init__(self, display: str, *args: str, cwd: Path | None = None, env: dict | None = None,
                 command: str = "live", window: str = "mirrorcam") -> None:
        self.display, self.window_name = display, window
        self.env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb", **(env or {})}
        # Append mode: the child's writes always go to the end, whatever the reader does.
        self.log_path = Path(cwd or REPO) / f".live-{os.getpid()}.log"
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen([sys.executable, "-m", "mirrorcam", command, *args], cwd=cwd or REPO,
                                     env=self.env, stdout=self.log, stderr=subprocess.STDOUT, text=True)
        self.window = self._wait_window()

    def _wait_window(self, timeout: float = 60.0) -> str:
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"mirrorcam exited early:\n{self.output()}")
            found = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", f"^{self.window_name}$"],
                                   capture_output=True, text=True, env=self.env)
            if found.stdout.strip():
                return found.stdout.split()[0]
            time.sleep(0.3)
        raise AssertionError(f"no mirrorcam window after {timeout} s:\n{self.output()}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def key(self, *names: str) -> None:
        for name in names:
            subprocess.run(["xdotool", "windowactivate", "--sync", self.window], env=self.env, capture_output=True)
            subprocess.run(["xdotool", "key", "--window", self.window, name], env=self.env, check=True)
            time.sleep(0.15)

    def type(self, text: str, ms_per_key: int) -> None:
        """Type ``text``, a key every ``ms_per_key`` milliseconds."""
        subprocess.run(["xdotool", "windowactivate", "--sync", self.window], env=self.env, capture_output=True)
        # xdotool's --delay is split between a key's press and its release: measured at the
        # window, --delay 60 typed a key every 35 ms and --delay 120 every 62 ms.
        subprocess.run(["xdotool", "type", "--delay", str(2 * ms_per_key), "--window", self.window, text],
                       env=self.env, check=True)
        time.sleep(0.3)

    def wait_for(self, text: str, timeout: float = 30.0) -> None:
        end = time.time() + timeout
        while time.time() < end:
            if text in self.output():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"{text!r} never appeared:\n{self.output()}")

    def shot_showing(self, shows, timeout: float = 3.0) -> np.ndarray:
        """The first shot of the window for which ``shows(image)`` is true within ``timeout`` s
        (see ``first_showing``)."""
        return first_showing(self.shot, shows, timeout)

    def shot(self) -> np.ndarray:
        """The window's content (geometry from xdotool), as BGR."""
        geo = subprocess.run(["xdotool", "getwindowgeometry", "--shell", self.window],
                             capture_output=True, text=True, env=self.env, check=True).stdout
        g = dict(line.split("=") for line in geo.split())
        x, y, w, h = (int(g[k]) for k in ("X", "Y", "WIDTH", "HEIGHT"))
        img = screenshot(self.display)[y:y + h, x:x + w]
        if (img.shape[1], img.shape[0]) != SIZE:
            img = cv2.resize(img, SIZE)
        return img

    def close(self) -> int:
        try:
            if self.proc.poll() is None:
                self.key("q")
                try:
                    self.proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    self.proc.send_signal(signal.SIGINT)
                    self.proc.wait(timeout=10)
        finally:
            # (Also when q could not be typed or the program outlived Ctrl+C: a failed test
            # had left both the program running and its log in the checkout.)
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.log.close()
            self.log_path.unlink(missing_ok=True)
        return self.proc.returncode


def save(name: str, image: np.ndarray) -> None:
    folder = os.environ.get("MIRRORCAM_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(Path(folder) / f"{name}.png"), image)


def fraction(img: np.ndarray, rect, color, tol: int = 40) -> float:
    x, y, w, h = rect
    roi = img[y:y + h, x:x + w].astype(np.int16)
    return float(np.all(np.abs(roi - np.array(color)) <= tol, axis=2).mean())


# --------------------------------------------------------------------------- window tests


def test_a_live_recording_stopped_by_a_signal_keeps_what_it_recorded(xvfb, tmp_path):
    """A live session ends by being stopped: SIGTERM keeps the video up to then (finished,
    under its name, no temporary file left), as the README says."""
    out = tmp_path / "session.mp4"
    app = Program(xvfb, "--demo", "--seconds", "120", "--out", str(out))
    try:
        app.wait_for("mirror event:", timeout=40)
        app.proc.send_signal(signal.SIGTERM)
        assert app.proc.wait(timeout=30) == 143, app.output()
    finally:
        app.close()
    capture = cv2.VideoCapture(str(out))
    frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    capture.release()
    assert frames > 60
    assert sorted(p.name for p in tmp_path.iterdir()) == ["session.mp4"]


def test_window_keys_change_state_and_the_mirror_event_shows(xvfb):
    layout = Layout.compute(*SIZE, 12)
    app = Program(xvfb, "--demo", "--seconds", "120")
    try:
        # The demo's first mirror event (waving) comes about 4.7 s in; its caption stays 5 s.
        app.wait_for("mirror event:", timeout=40)
        time.sleep(0.3)  # (past the caption's first white flash)

        def green_rows(image):
            return {i for i, (x, y, w, h) in enumerate(layout.rows)
                    if fraction(image, (x + 20, y + 1, w - 40, 1), MIRROR_COLOR) > 0.6}

        event = app.shot_showing(lambda image: green_rows(image) and fraction(image, layout.caption, MIRROR_COLOR) > 0.4)
        save("window_mirror_event", event)
        rows = {int(m) for m in re.findall(r"mirror event: \S+ \(row (\d+)\)", app.output())}
        green = green_rows(event)
        assert len(green) == 1 and green <= rows, (green, rows, app.output())
        assert fraction(event, layout.caption, MIRROR_COLOR) > 0.4

        app.key("space")
        app.wait_for("paused")
        def tagged(image):
            x, y, w, h = layout.you
            return fraction(image, (x + w - 160, y, 160, 60), (60, 60, 200), 30) > 0.05

        paused = app.shot_showing(tagged)
        save("window_paused", paused)
        assert tagged(paused), "no PAUSED tag"

        # While paused nothing moves, so mirroring the display only changes the YOU panel.
        def changed(image, rect):
            x, y, w, h = rect
            return (np.abs(image.astype(int) - paused.astype(int)).sum(axis=2) > 30)[y:y + h, x:x + w].mean()

        app.key("m")
        app.wait_for("mirror display off")
        flipped = app.shot_showing(lambda image: changed(image, layout.you) > 0.002)
        save("window_mirror_off", flipped)
        assert changed(flipped, layout.you) > 0.002 and changed(flipped, layout.other) < 0.001

        # The first clip may already have ended on a loaded machine (auto-advance logs it too),
        # so the expected clip is the one after whichever is showing now.
        shown = re.findall(r"observing (\S+) \((\d)/(\d)\)", app.output())
        index, count = (int(shown[-1][1]), int(shown[-1][2])) if shown else (1, 3)
        names = ["wave_one_hand", "squat", "arms_up"]  # the embedded demo's OTHER playlist
        app.key("n")
        app.wait_for(f"observing {names[index % count]} ({index % count + 1}/{count})")
        app.key("h")
        app.wait_for("help on")

        def dark_centre(image):
            centre = image[SIZE[1] // 2 - 60:SIZE[1] // 2 + 60, SIZE[0] // 2 - 200:SIZE[0] // 2 + 200]
            return (centre.mean(axis=2) < 40).mean() > 0.5

        helped = app.shot_showing(dark_centre)
        save("window_help", helped)
        assert dark_centre(helped), "no dark help panel in the middle"
        app.key("d", "space")
        app.wait_for("playing")
    finally:
        code = app.close()
    assert code == 0


def test_a_window_that_shows_nothing_is_opened_again(xvfb):
    """Unmapped behind live's back (as when Qt misses its window's mapping under load, see
    ``X11Window.shows_nothing``), the window is opened again and shows the screen."""
    app = Program(xvfb, "--demo", "--seconds", "90")
    said = "the window shows nothing of its pictures; opening it again"
    try:
        unmap_the_shown_window(xvfb, app._wait_window, app.output)
        assert screenshot(xvfb).max() == 0  # (the bare X root: nothing of the window shows)
        reopened = app.output().count(said)  # (live may have opened its window again on its own before)
        assert screen_shows_within(xvfb, 30), f"the window stayed black:\n{app.output()}"
        assert app.output().count(said) > reopened
        app.window = app._wait_window()  # (a new window: q goes to it)
    finally:
        code = app.close()
    assert code == 0


@pytest.fixture()
def small_xvfb():
    """A private X server of 1024 x 600 (a small projector's); yields its DISPLAY."""
    yield from private_xvfb(1024, 600)


def test_live_and_the_kiosk_open_the_x_display_through_one_helper(small_xvfb, monkeypatch):
    """The screen's size (live's and the kiosk's windows) and the kiosk's hidden pointer
    come through ``X11Display``; without an X server they are None and False, not an error."""
    from mirrorcam.modes.common import X11Display, X11Window, fit_window, system_library, x11_screen_size

    monkeypatch.setenv("DISPLAY", small_xvfb)
    assert x11_screen_size() == (1024, 600)
    assert fit_window((1280, 720), x11_screen_size()) == (922, 518)
    window = X11Window("no such window")
    assert window.hide_pointer() == (system_library("Xfixes", "libXfixes.so.3") is not None)
    window.close()
    monkeypatch.delenv("DISPLAY")
    assert X11Display.open() is None and x11_screen_size() is None and not X11Window("mirrorcam").hide_pointer()
    free = next(n for n in range(999, 2000) if not Path(f"/tmp/.X11-unix/X{n}").exists())
    monkeypatch.setenv("DISPLAY", f":{free}")  # no server answers there
    assert X11Display.open() is None and x11_screen_size() is None


def test_camera_that_cannot_open_falls_back_to_the_demo_in_a_window(xvfb):
    proc = subprocess.run(
        [sys.executable, "-m", "mirrorcam", "live", "--camera", "57", "--demo-fallback", "--seconds", "3"],
        capture_output=True, text=True, timeout=120, cwd=REPO, env={**os.environ, "DISPLAY": xvfb},
    )
    assert proc.returncode == 0, proc.stderr
    assert "camera 57" in proc.stdout and "embedded demo" in proc.stdout
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_a_replay_window_fits_the_screen_and_q_stops_the_whole_folder(xvfb, tmp_path):
    """A 1920 x 1080 clip's replay window had been 1920 x 1142 on a 1600 x 900 screen (a third
    of it off the screen), and q had only skipped to the folder's next clip."""
    from mirrorcam.performer import PerformerOptions, perform
    from mirrorcam.recording import save_recording

    clips = tmp_path / "clips"
    clips.mkdir()
    recording = perform("squat", PerformerOptions(repeats=60, image_size=(1920, 1080)))  # (long: the window must last)
    for name in ("a", "b"):
        save_recording(clips / f"{name}.npz", recording)
    app = Program(xvfb, str(clips), "--out", str(tmp_path / "out"), command="replay", window="mirrorcam replay",
                  env={"MIRRORCAM_TEMPLATES": str(tmp_path / "none")})
    try:
        time.sleep(1.0)
        geo = subprocess.run(["xdotool", "getwindowgeometry", "--shell", app.window],
                             capture_output=True, text=True, env=app.env, check=True).stdout
        g = dict(line.split("=") for line in geo.split())
        width, height = int(g["WIDTH"]), int(g["HEIGHT"])
        assert width <= 0.9 * 1600 + 1 and height <= 0.9 * 900 + 1, (width, height)
        assert abs(width / height - 16 / 9) < 0.02, (width, height)
        app.key("q")
        app.proc.wait(timeout=30)
        output = app.output()
    finally:
        app.close()
    assert app.proc.returncode == 0, output
    stopped = [line for line in output.splitlines() if "a.npz:" in line]
    assert len(stopped) == 1 and f" of {len(recording)} frames (stopped in the window)" in stopped[0], output
    assert "stopped: 1 more clip not replayed" in output and "b.npz:" not in output, output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.mp4"]  # (what was replayed is kept)


def test_teach_from_a_simulated_camera_then_the_template_fires_on_a_replay(xvfb, clip, tmp_path, pose_model):
    from mirrorcam.matching import NeuronBank
    from mirrorcam.pipeline import clip_landmarks
    from mirrorcam.templates import load_template

    video = clip("RJ-song_MediapipePy/jumpingjacks.mp4")
    templates = tmp_path / "templates"
    templates.mkdir()
    app = Program(xvfb, "--source", str(video), "--templates", str(templates), "--teach-seconds", "3",
                  "--num-poses", "1", "--seconds", "120")
    try:
        app.key("t")
        app.wait_for("teaching: recording", timeout=20)
        time.sleep(1.0)
        save("window_teach_recording", app.shot())
        app.wait_for("type a name", timeout=20)
        # A fast typist's burst, a key every 60 ms.  OpenCV keeps only the last of the keys
        # pressed between two reads of the keyboard: read once a frame, keys had been lost
        # at this speed; read between frames only, at 50 ms a key on two busy cores.
        app.type("jj test now", ms_per_key=60)
        app.key("Return")
        app.wait_for("taught template", timeout=60)
    finally:
        app.close()
    path = templates / "jj_test_now.json"
    assert path.is_file(), sorted(templates.iterdir())
    template = load_template(path)
    assert template.display_name == "jj test now" and len(template.preview) > 0
    # The same performance, replayed from its cached landmarks, fires the new neuron.
    bank = NeuronBank([template])
    fired = [f for pf in clip_landmarks(video).frames for a in bank.update(pf).values() for f in a.firings]
    assert fired and all(f.template == "jj_test_now" for f in fired)
    # and only on jumping jacks: not on someone standing still, nor on squats (a template
    # that fired on anything would have passed the check above)
    for other in ("omkarnagarkar55_HAR/stand.mp4", "RJ-song_MediapipePy/squat.mp4"):
        assert not fires(bank, clip_landmarks(clip(other), progress=False).frames), other


@pytest.mark.parametrize(
    "argv, num_poses",
    [
        ([], 1),                                   # one visitor beside an observed clip
        (["--other", "recordings"], 1),
        (["--other", "second-person"], 2),         # OTHER is the camera's second person
        (["--num-poses", "3"], 3),                 # the flag wins
        (["--other", "second-person", "--num-poses", "1"], 1),
    ],
)
def test_the_camera_looks_for_one_person_unless_other_is_the_second(argv, num_poses):
    from mirrorcam.cli import build_parser
    from mirrorcam.modes.live import camera_pose_options
    from mirrorcam.modes.common import pose_options_from_args

    args = build_parser().parse_args(["live", *argv])
    assert camera_pose_options(args).num_poses == num_poses
    # Observed clips keep replay's and eval's options (their landmark cache is shared).
    assert pose_options_from_args(args).num_poses == (int(argv[-1]) if "--num-poses" in argv else 2)
    # A camera searches for far people one crop per 100 ms; a clip, every crop on every frame.
    assert camera_pose_options(args).far_search_ms == 100.0
    assert pose_options_from_args(args).far_search_ms == 0.0


@pytest.mark.parametrize("other, hint", [("second_person", True), ("Second Person", True), ("nope", False)])
def test_a_missing_other_clip_is_one_line_that_names_second_person_when_meant(tmp_path, other, hint):
    proc = run_cli("live", "--demo", "--other", other, "--no-window", "--seconds", "1", "--out", tmp_path / "x.mp4",
                   cwd=tmp_path)
    assert_one_line_error(proc, f"no such clip or folder: {other}")
    assert ("--other second-person" in proc.stderr) == hint and not (tmp_path / "x.mp4").exists()


def test_a_bad_num_poses_is_one_clear_error():
    assert_one_line_error(run_cli("live", "--demo", "--num-poses", "0", "--no-window", "--seconds", "1"), "--num-poses")


def test_a_missing_templates_folder_is_refused_before_anything_opens(tmp_path):
    # It had been found after every --other clip had gone through the pose model.
    proc = run_cli("live", "--source", tmp_path / "nope.mp4", "--other", tmp_path, "--templates", tmp_path / "missing",
                   "--no-window", "--out", tmp_path / "x.mp4")
    assert_one_line_error(proc, "template folder", "does not exist")


def test_the_demo_teaches_into_the_templates_folder_for_the_seconds_asked(tmp_path):
    from mirrorcam.cli import build_parser
    from mirrorcam.modes.live import app_from_args

    args = build_parser().parse_args(["live", "--demo", "--templates", str(tmp_path), "--teach-seconds", "2.5"])
    app = app_from_args(args, None, (640, 480), "generated", "demo visitor")
    assert app.teach_dir == tmp_path and app.teach_seconds == 2.5


@pytest.mark.parametrize("extra", [["--demo"], ["--camera", "57"]])
def test_a_bad_teach_length_is_one_clear_error(extra, tmp_path):
    proc = run_cli("live", *extra, "--no-window", "--out", tmp_path / "x.mp4", "--teach-seconds", "0", "--seconds", "1",
                   cwd=tmp_path)
    assert_one_line_error(proc, "--teach-seconds")
    assert not list(tmp_path.iterdir())  # refused before any video (or anything else) was written


def test_teaching_live_under_an_existing_neurons_name_adds_a_style_to_it(tmp_path):
    """Typed as a neuron's name, a live performance becomes one more style of that neuron."""
    from test_teach import _side_lunge

    from mirrorcam.cli import build_parser
    from mirrorcam.matching import NeuronBank
    from mirrorcam.modes.live import app_from_args
    from mirrorcam.performer import PerformerOptions, perform
    from mirrorcam.templates import builtin_library, load_template

    args = build_parser().parse_args(["live", "--demo", "--templates", str(tmp_path)])
    app = app_from_args(args, None, (640, 480), "generated", "demo visitor")
    names = [t.name for t in app.templates]
    frames = perform(_side_lunge(), PerformerOptions(seed=1)).frames
    assert app.save_taught(list(frames), "Lunge") == "lunge"  # the display name's slug is the neuron's name
    assert [t.name for t in app.templates] == names  # no new row: the lunge row learnt a style
    lunge = app.templates[names.index("lunge")]
    builtin = builtin_library().get("lunge")
    assert [v.style for v in lunge.variants] == [v.style for v in builtin.variants] + ["mine"]
    assert load_template(tmp_path / "lunge.json").variants[-1].style == "mine"
    # The same visitor again, further back and to the side, the camera turned by 15 degrees.
    again = perform(_side_lunge(), PerformerOptions(repeats=2, yaw_deg=15.0, translation=(0.3, 0.5)))
    assert fires(NeuronBank(app.templates), again.frames) == Counter({"lunge": 2})
    # Any other name is a new neuron, as before; the raster keeps what it showed.
    from mirrorcam.containers import Firing

    app.history.add(1, [Firing("squat", 0, 0.0, 900.0, 800.0, 0.9)], now_ms=1000.0)
    app.history.add(0, [Firing("squat", 0, 0.0, 900.0, 800.0, 0.9)], now_ms=1500.0)  # a mirror event
    assert app.save_taught(list(frames), "side step") == "side_step"
    assert [t.name for t in app.templates] == [*names, "side_step"]
    raster = app.history.snapshot(2000.0)
    assert len(raster.spikes) == 2 and len(raster.mirrors) == 1 and app.history.names[-1] == "side_step"


def _performed(action: str, start_ms: float, **options) -> list:
    """A generated performance's frames, its clock starting at ``start_ms``."""
    from dataclasses import replace

    from mirrorcam.performer import PerformerOptions, perform

    rec = perform(action, PerformerOptions(lead_in_s=0.5, **options))
    return [replace(f, timestamp_ms=start_ms + f.timestamp_ms) for f in rec.frames]


def test_teaching_on_the_screen_learns_in_the_background_and_keeps_the_counts(tmp_path):
    """Enter starts the learning in a thread: the screen goes on drawing meanwhile, then
    the new row appears, and the squats counted before are still counted."""
    from dataclasses import replace

    from mirrorcam.modes.live import LiveApp
    from mirrorcam.templates import builtin_library, load_template

    app = LiveApp(builtin_library().templates, None, size=(640, 360), teach_dir=tmp_path, teach_seconds=2.5)
    frames = _performed("squat", 0.0, repeats=2)
    stand = frames[0]
    clock = frames[-1].timestamp_ms
    for f in frames:
        app.step(f, f.timestamp_ms)

    def standing(ms: float) -> None:
        nonlocal clock
        end = clock + ms
        while clock < end:
            clock += 1000.0 / 30
            app.step(replace(stand, timestamp_ms=clock), clock)

    def squats() -> int:
        act = app._acts[0]
        return int(act.reps[list(act.names).index("squat")])

    standing(2000.0)  # a firing is reported once it is settled
    assert squats() == 2
    app.key(ord("t"))
    standing(3100.0)  # the count-down
    assert app.teaching.phase == "record"
    for f in _performed("jumping_jack", clock, repeats=2):
        if app.teaching.phase != "record":
            break
        clock = f.timestamp_ms
        app.step(f, clock)
    assert app.teaching.phase == "name"
    for ch in "star jump\r":
        app.key(ord(ch))
    assert app.teaching.phase == "learn"
    app.key(ord(" "))  # paused while it learns: the counts must stay on the screen
    drawn_while_learning, deadline = 0, time.monotonic() + 60.0
    while app.teaching is not None and time.monotonic() < deadline:
        clock += 1000.0 / 30
        image = app.step(replace(stand, timestamp_ms=clock), clock)
        drawn_while_learning += app.teaching is not None
        assert image.shape == (360, 640, 3)
    assert app.teaching is None and drawn_while_learning > 0
    assert app.templates[-1].name == "star_jump" and load_template(tmp_path / "star_jump.json").name == "star_jump"
    assert app.paused and squats() == 2  # (the paused screen had shown every dot empty)
    app.key(ord(" "))
    standing(100.0)
    assert squats() == 2  # (they had restarted at zero)
    assert app._acts[0].names[-1] == "star_jump"


def test_quitting_while_an_action_is_learnt_still_saves_it(tmp_path):
    from mirrorcam.modes.live import LiveApp
    from mirrorcam.templates import builtin_library

    app = LiveApp(builtin_library().templates, None, size=(640, 360), teach_dir=tmp_path, teach_seconds=2.0)
    frames = _performed("jumping_jack", 0.0, repeats=2)
    app.key(ord("t"))
    app.step(frames[0], 0.0)
    for f in frames:
        app.step(f, f.timestamp_ms + 3000.0)  # after the count-down
    for ch in "jacks\r":
        app.key(ord(ch))
    assert app.teaching.phase == "learn"
    assert app.key(ord("q")) == "quit"  # q quits at once; it does not cancel a learning
    app.close()
    assert (tmp_path / "jacks.json").is_file() and app.templates[-1].name == "jacks"


def test_a_recording_ends_on_time_when_the_camera_is_lost(tmp_path):
    """The camera goes away one second into a 2.5 s recording: the recording ends on time
    with what it had and asks for a name.  It had ended only with a camera frame, so the
    screen showed "REC ... 0.0 s" for good (the count-down never stalled, the recording did)."""
    from dataclasses import replace

    from mirrorcam.modes.live import LiveApp
    from mirrorcam.templates import builtin_library

    app = LiveApp(builtin_library().templates, None, size=(640, 360), teach_dir=tmp_path, teach_seconds=2.5)
    period = 1000.0 / 30
    app.key(ord("t"))
    clock = 0.0
    while app.teaching.phase == "countdown":  # no camera frame yet: the count-down goes on
        clock += period
        app.step(None, clock)
    frames = _performed("jumping_jack", clock, repeats=2)
    for frame in frames[:30]:  # one second of it
        clock = frame.timestamp_ms
        app.step(frame, clock)
    assert app.teaching.phase == "record"
    end = clock + 2500.0
    while clock < end:  # the camera is lost
        clock += period
        app.camera_lost = True
        app.step(None, clock)
    assert app.teaching.phase == "name" and len(app.teaching.frames) == 30
    # Frames again: nothing more is recorded, the name is typed as before.
    app.camera_lost = False
    app.step(replace(frames[30], timestamp_ms=clock), clock)
    for ch in "half":
        app.key(ord(ch))
    assert app.teaching.phase == "name" and app.teaching.typed == "half" and len(app.teaching.frames) == 30


def test_an_action_that_cannot_be_saved_is_a_message_on_the_screen(tmp_path, capsys):
    from mirrorcam.modes.live import LiveApp
    from mirrorcam.templates import builtin_library

    folder = tmp_path / "a_file"
    folder.write_text("not a folder")
    app = LiveApp(builtin_library().templates, None, size=(640, 360), teach_dir=folder, teach_seconds=2.0)
    frames = _performed("jumping_jack", 0.0, repeats=2)
    app.key(ord("t"))
    for f in frames:
        app.step(f, f.timestamp_ms + 3000.0)
    for ch in "jacks\r":
        app.key(ord(ch))
    app.close()  # waits for the learning, then fails to save it
    assert app.teaching is None and len(app.templates) == 12
    assert "teaching failed" in capsys.readouterr().out and app.toast[0]


def _cut_jumping_jacks():
    """Two generated jumping jacks, the clip cut 60 % into the second (its arms on the way down)."""
    from dataclasses import replace

    from mirrorcam.performer import ACTIONS, PerformerOptions, perform

    rec = perform("jumping_jack", PerformerOptions(repeats=2, lead_in_s=0.5, seed=5))
    end_ms = (0.5 + 1.6 * ACTIONS["jumping_jack"].duration) * 1000.0
    return replace(rec, frames=tuple(f for f in rec.frames if f.timestamp_ms <= end_ms))


@pytest.mark.parametrize("screen_fps", [7.0, 20.0, 29.97, 30.0, 45.0, 144.0])
def test_every_clip_frame_reaches_the_matcher_once_a_play_whatever_the_screen_rate(screen_fps):
    """A 30 fps clip on screens slower and faster than it: each play feeds every frame once,
    in order, its timestamps rising across plays.  A 20 fps screen had skipped the last
    frame of every play (the clip's time was up before a screen frame fell in its last
    33 ms); a new play never shares a call with the last one's tail, as the screen ends
    the last play's stream between them."""
    from mirrorcam.modes.observed import ClipPlayer, ObservedClip
    from mirrorcam.performer import PerformerOptions, perform

    rec = perform("squat", PerformerOptions(seed=1))
    assert rec.fps == 30.0 and [f.index for f in rec.frames] == list(range(len(rec)))
    player = ClipPlayer([ObservedClip("squat", rec)])
    fed: dict[int, list[int]] = {}
    stamps: list[float] = []
    now = 0.0
    while player.plays <= 3:
        plays = player.plays
        due, _ = player.advance(now)
        if due and player.plays != plays:  # a new play: its first frame, none of the last one's
            assert due[0].index == 0
        fed.setdefault(player.plays, []).extend(f.index for f in due)
        stamps.extend(f.timestamp_ms for f in due)
        now += 1000.0 / screen_fps
    for play in (1, 2, 3):
        assert fed[play] == list(range(len(rec))), f"play {play}: {len(fed[play])} of {len(rec)} frames"
    assert np.all(np.diff(stamps) > 0)


def test_every_play_of_an_observed_clip_fires_as_a_replay_of_it_does():
    """Each play of an observed clip is a stream of its own, as in ``replay``: the jack cut
    off by the clip's end fires at the end of every play (the matcher's open end), and the
    next play starts afresh."""
    from mirrorcam.matching import NeuronBank
    from mirrorcam.modes.live import LiveApp
    from mirrorcam.modes.observed import ObservedClip
    from mirrorcam.templates import builtin_library

    templates = builtin_library().templates
    clip = _cut_jumping_jacks()
    assert fires(NeuronBank(templates), clip.frames) == Counter({"jumping_jack": 2})  # what replay counts
    observed = ObservedClip("jacks", clip)
    app = LiveApp(templates, [observed], size=(640, 360))
    now = 0.0
    while now < 3 * observed.duration_ms + 200.0:  # three whole plays, and the fourth begins
        app.step(None, now)
        now += 1000.0 / 30
    assert app.stats.firings == [0, 6]


def test_the_observed_clips_counts_go_on_from_play_to_play():
    """OTHER's row counts the session, as YOU's does: each play of a looping clip had started
    its counts again (a play's stream ends with it), so the screen compared YOU's session
    with OTHER's last play."""
    from mirrorcam.modes.live import LiveApp
    from mirrorcam.modes.observed import ObservedClip
    from mirrorcam.templates import builtin_library

    observed = ObservedClip("jacks", _cut_jumping_jacks())
    app = LiveApp(builtin_library().templates, [observed], size=(640, 360))
    shown, now = [], 0.0
    while now < 3 * observed.duration_ms + 1500.0:  # three whole plays, and the fourth's first second
        app.step(None, now)
        act = app._acts[1]
        if act is not None:
            shown.append(int(act.reps[act.names.index("jumping_jack")]))
        now += 1000.0 / 30
    assert shown[-1] == 6 and shown == sorted(shown)  # never back to 0 between plays


def test_a_visitor_who_walks_out_right_after_a_squat_keeps_it():
    """YOU squats twice and leaves 0.3 s after the second: both count, the second once the
    bank has seen them gone for its timeout."""
    from test_matching import _squats_then_nobody

    from mirrorcam.modes.live import LiveApp
    from mirrorcam.templates import builtin_library

    app = LiveApp(builtin_library().templates, None, size=(640, 360))
    for frame in _squats_then_nobody():
        app.step(frame, frame.timestamp_ms)
    assert app.stats.firings == [2, 0]


def test_an_other_folder_goes_on_past_clips_it_cannot_play(tmp_path, caplog):
    """One broken file among a lecturer's clips had ended the screen before it opened."""
    from dataclasses import replace

    from mirrorcam.errors import SourceError
    from mirrorcam.modes.observed import observed_clips
    from mirrorcam.pose import PoseEstimatorOptions
    from mirrorcam.recording import load_recording, save_recording

    folder = tmp_path / "other"
    folder.mkdir()
    shutil.copy(REPO / "recordings" / "observed_2_squat.npz", folder / "a_squat.npz")
    (folder / "b_empty.mp4").write_bytes(b"")
    (folder / "c_text.mp4").write_text("this is a shopping list, not a video\n")
    squat = load_recording(REPO / "recordings" / "observed_2_squat.npz")
    nobody = replace(squat, frames=tuple(replace(f, persons=()) for f in squat.frames))
    save_recording(folder / "d_nobody.npz", nobody)
    options = PoseEstimatorOptions()
    with caplog.at_level("ERROR"):
        clips = observed_clips(str(folder), options)
    assert [c.name for c in clips] == ["a_squat"]
    skipped = [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipping")]
    assert len(skipped) == 3 and all(name in " ".join(skipped) for name in ("b_empty", "c_text", "d_nobody"))
    assert "no person found" in " ".join(skipped)
    # Nothing playable at all is still the one error it was.
    (folder / "a_squat.npz").unlink()
    with pytest.raises(SourceError, match="no clip in .* can be played"):
        observed_clips(str(folder), options)
    # A single clip named on its own is refused, not skipped.
    with pytest.raises(SourceError, match="no person found"):
        observed_clips(str(folder / "d_nobody.npz"), options)


@pytest.mark.parametrize("how", ["the clip ends", "n pressed"])
def test_no_mirror_event_with_a_clip_that_has_gone(how, capsys):
    """OTHER's jumping jacks end and the next clip (nobody doing anything) starts; YOU then
    does a jumping jack within the 4 s a mirror event allows: the screen had announced "You
    did JUMPING JACK like them" with links to an OTHER panel showing something else.

    The same whether the clip ended or ``n`` moved on once it had been seen whole: ``n``
    had switched the clip behind the screen's back, so OTHER's bank went on from the jacks
    (the one cut off by the clip's end never fired) and their spikes could still pair."""
    from dataclasses import replace

    from mirrorcam.modes.live import LiveApp
    from mirrorcam.modes.observed import ObservedClip
    from mirrorcam.performer import PerformerOptions, perform
    from mirrorcam.templates import builtin_library

    jacks = _cut_jumping_jacks()
    empty = replace(jacks, frames=tuple(replace(f, persons=()) for f in jacks.frames) * 3)
    app = LiveApp(builtin_library().templates, [ObservedClip("jacks", jacks), ObservedClip("empty", empty)], size=(640, 360))
    you = perform("jumping_jack", PerformerOptions(repeats=2, lead_in_s=0.5, seed=9))
    now, period, switch = 0.0, 1000.0 / 30, None
    while app.player is None or app.player.index == 0 or now < 100.0:
        app.step(None, now)
        if how == "n pressed" and now >= (len(jacks) - 1) * period - 1.0:  # its last frame seen
            app.key(ord("n"))
        if app.player.index == 1 and switch is None:
            switch = now
        now += period
    assert app.stats.firings[1] == 2  # OTHER's jacks fired, the cut-off one at the clip's end
    assert app.banks[1].people() == set()  # OTHER's bank started afresh: nobody in the empty clip
    # On the raster where they ended: the first jack 1.4 s in, the cut-off one at the
    # clip's end (both had stood a second early, timed from the next play's first frame).
    other = [s.t_ms for s in app.history.snapshot(switch).spikes if s.channel == 1]
    assert abs(other[0] - 1400.0) < 200.0 and abs(other[1] - switch) < 50.0, (other, switch)
    start = now
    for frame in you.frames:
        app.step(replace(frame, timestamp_ms=frame.timestamp_ms + start), start + frame.timestamp_ms)
        now = start + frame.timestamp_ms
    assert now - start < 4000.0 and app.player.index == 1
    assert app.stats.firings[0] >= 1, "YOU's jumping jack did not fire"
    assert app.stats.mirror_events == 0
    said = [line for line in capsys.readouterr().out.splitlines() if line.startswith("mirrorcam: observing")]
    assert said == ["mirrorcam: observing jacks (1/2)", "mirrorcam: observing empty (2/2)"]


def test_a_lost_camera_empties_you_and_says_so_until_frames_come_again():
    """The panel had stood frozen on the last picture, skeleton and all, as if live, while
    only stderr said the camera was lost."""
    from dataclasses import replace

    from mirrorcam.modes.live import LiveApp
    from mirrorcam.performer import PerformerOptions, perform
    from mirrorcam.templates import builtin_library

    app = LiveApp(builtin_library().templates, None, size=(640, 360))
    layout = Layout.compute(640, 360, len(app.templates))
    x, y, w, h = layout.you
    white = np.full((480, 640, 3), 255, np.uint8)
    frames = [replace(f, image=white) for f in perform("squat", PerformerOptions(seed=1)).frames[:10]]
    for frame in frames:
        shown = app.step(frame, frame.timestamp_ms)

    def brightness(image):
        return float(image[y + h // 4 : y + 3 * h // 4, x + w // 4 : x + 3 * w // 4].mean())

    assert brightness(shown) > 200  # the camera's (white) picture
    app.camera_lost = True
    lost = app.step(None, frames[-1].timestamp_ms + 100)
    assert brightness(lost) < 100  # a dark panel with a line of text
    app.camera_lost = False
    back = app.step(replace(frames[-1], timestamp_ms=frames[-1].timestamp_ms + 200), frames[-1].timestamp_ms + 200)
    assert brightness(back) > 200


def test_an_observed_video_is_shown_in_the_other_panel(tmp_path):
    """OTHER shows the clip's own pictures, decoded as it plays (a path no other test took:
    a missing import there had passed every test)."""
    from mirrorcam.modes.live import LiveApp
    from mirrorcam.modes.observed import ObservedClip
    from mirrorcam.performer import PerformerOptions, perform
    from mirrorcam.templates import builtin_library

    rec = perform("squat", PerformerOptions(seed=1))
    video = tmp_path / "squat.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), rec.fps, (320, 240))
    for _ in rec.frames:
        writer.write(np.full((240, 320, 3), (40, 200, 40), np.uint8))  # green
    writer.release()
    app = LiveApp(builtin_library().templates, [ObservedClip("squat", rec, video)], size=(640, 360))
    for i in range(10):
        shown = app.step(None, i * 1000.0 / 30)
    x, y, w, h = Layout.compute(640, 360, len(app.templates)).other
    centre = shown[y + h // 3 : y + 2 * h // 3, x + w // 3 : x + 2 * w // 3].reshape(-1, 3).mean(axis=0)
    assert centre[1] > 150 and centre[0] < 100 and centre[2] < 100, centre  # the clip's green


def test_match_times_the_matching_alone_not_the_clips_video(tmp_path):
    """The "match" figure (overlay, summary, benchmark) had timed OTHER's clip advancing
    too, which decodes its video's next picture; it is the banks' updates alone, and the
    clip has its own figure.  (It had also been written into YOU's pose frame, where the
    screen's own figure overwrote it.)"""
    from dataclasses import replace

    from mirrorcam.modes.live import LiveApp, summary
    from mirrorcam.modes.observed import ObservedClip
    from mirrorcam.performer import PerformerOptions, perform
    from mirrorcam.templates import builtin_library

    rec = perform("squat", PerformerOptions(seed=1))
    video = tmp_path / "squat.avi"
    noise = np.random.default_rng(0).integers(0, 256, (720, 1280, 3), np.uint8)  # (slow to decode)
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), rec.fps, (1280, 720))
    for _ in range(12):
        writer.write(noise)
    writer.release()
    clip = ObservedClip("squat", replace(rec, frames=rec.frames[:12]), video)
    app = LiveApp([], [clip], size=(640, 360))  # no neurons: nothing to match
    for i in range(10):
        app.step(None, i * 1000.0 / 30)
    assert list(app.stats.match_ms) == [0.0] * 10
    assert min(app.stats.clip_ms) > 0.0
    assert ", clip " in summary(app.stats, None) and "median match 0.00 ms" in summary(app.stats, None)
    # With neurons, YOU's frame keeps the pose stage's timings as they came.
    app = LiveApp(builtin_library().templates, None, size=(640, 360), debug=True)
    frame = replace(rec.frames[0], timings_ms={"pose": 12.0})
    app.step(frame, 0.0)
    assert frame.timings_ms == {"pose": 12.0} and app.stats.match_ms[-1] > 0.0 and not any(app.stats.clip_ms)


def test_the_per_frame_figures_keep_only_the_newest_frames():
    """Three floats a frame had been kept for the whole session (a lecturer's all day):
    only the last ``keep`` frames' are, and the summary's medians and the overlay's
    latency come from them."""
    from dataclasses import replace

    from mirrorcam.modes.live import STATS_FRAMES, LiveApp, Stats, summary
    from mirrorcam.performer import PerformerOptions, perform
    from mirrorcam.templates import builtin_library

    assert Stats().keep == STATS_FRAMES
    app = LiveApp(builtin_library().templates, None, size=(640, 360), debug=True)
    app.stats = Stats(keep=40)
    frames = perform("squat", PerformerOptions(seed=1)).frames
    for i, frame in enumerate(frames[:90]):
        app.step(frame, frame.timestamp_ms)
        app.displayed(replace(frame, captured_at=time.perf_counter() - (0.001 if i < 50 else 0.5)))
    stats = app.stats
    assert stats.frames == 90
    assert len(stats.match_ms) == len(stats.render_ms) == len(stats.clip_ms) == len(stats.latency_ms) == 40
    assert min(stats.latency_ms) >= 500.0  # the newest 40, all 0.5 s late
    assert "capture-to-display 50" in summary(stats, None)
