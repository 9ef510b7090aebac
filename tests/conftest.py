"""Shared fixtures: where the shared clips are, the pose model, a CLI runner.

The clips live outside the repository (``../shared`` beside the checkout, or
``$MIRRORCAM_SHARED``); tests that need them skip with the reason when absent.
"""

from __future__ import annotations

import csv
import os
import shutil
import struct
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent


def shared_path() -> Path:
    return Path(os.environ.get("MIRRORCAM_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    path = shared_path()
    if not path.is_dir():
        pytest.skip(f"shared test material not found at {path} (set MIRRORCAM_SHARED)")
    return path


@pytest.fixture(scope="session")
def clips_dir(shared_dir: Path) -> Path:
    path = shared_dir / "clips"
    if not (path / "MANIFEST.tsv").is_file():
        pytest.skip(f"no clips/MANIFEST.tsv under {shared_dir}")
    return path


@pytest.fixture(scope="session")
def images_dir(shared_dir: Path) -> Path:
    path = shared_dir / "images"
    if not path.is_dir():
        pytest.skip(f"no images/ under {shared_dir}")
    return path


@pytest.fixture(scope="session")
def manifest_rows(clips_dir: Path) -> list[dict[str, str]]:
    with open(clips_dir / "MANIFEST.tsv", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


@pytest.fixture(scope="session")
def clip(clips_dir: Path):
    """``clip("omkarnagarkar55_HAR/wave.mp4")`` -> absolute path, skipping if that clip is absent."""

    def find(relative: str) -> Path:
        path = clips_dir / relative
        if not path.is_file():
            pytest.skip(f"clip {relative} not in {clips_dir}")
        return path

    return find


@pytest.fixture(scope="session")
def pose_model() -> Path:
    """The provisioned full model (``make test`` provisions it first; built here otherwise)."""
    from mirrorcam.modelstore import ensure_model

    return ensure_model("full").path


@pytest.fixture(autouse=True, scope="session")
def ctrl_c_reaches_the_tests() -> Iterator[None]:
    """Ctrl+C (SIGINT) handled as in a terminal, even when the suite runs in a background job.

    A shell script's ``cmd &`` (and ``nohup``) starts the job with SIGINT ignored, and the
    ignoring is inherited by every process it starts: the Ctrl+C tests' signals then did
    nothing, and four of them failed (exit 0 instead of 130), although mirrorcam rightly
    leaves an ignored SIGINT ignored.  A handler of our own is reset at ``exec``, so the
    programs the tests start get the default too.
    """
    import signal

    before = signal.getsignal(signal.SIGINT)
    if before is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


@pytest.fixture(autouse=True)
def no_user_templates(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test sees an empty folder of taught templates, not the developer's own.

    ``mirrorcam`` adds ``$MIRRORCAM_TEMPLATES`` (else ``~/.local/share/mirrorcam/templates``)
    to the built-ins; one template left there had made the live demo's test fail.  Set in
    ``os.environ``, so it reaches ``run_cli`` and every subprocess spawned from
    ``{**os.environ, ...}``; a test that sets the variable itself (``env=`` of ``run_cli``, or
    its own ``monkeypatch.setenv``, which runs after this autouse fixture) still wins.  The
    folder is outside ``tmp_path``: tests assert their ``tmp_path`` holds only what they wrote.
    """
    folder = tmp_path_factory.mktemp("user_templates")
    monkeypatch.setenv("MIRRORCAM_TEMPLATES", str(folder))
    return folder


@pytest.fixture()
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private landmark cache, so a test really runs the pose model."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("MIRRORCAM_CACHE", str(cache))
    return cache


def run_cli(*args: str, env: dict | None = None, timeout: float = 600, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m mirrorcam ARGS`` in a real subprocess and capture its output."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "mirrorcam", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, env=full_env, cwd=cwd or REPO,
    )


def firings(bank, frames) -> list:
    """The :class:`~mirrorcam.containers.Firing` objects of ``bank`` over pose ``frames``, in
    order (from a clean state, the end included).

    Every activation is checked on the way: one per neuron, each in [0, 1].
    """
    bank.reset()
    out = []
    for f in frames:
        for act in bank.update(f).values():
            assert act.activation.shape == (len(bank.names),)
            assert np.all((act.activation >= 0) & (act.activation <= 1))
            out += act.firings
    for fired in bank.finish().values():
        out += fired
    return out


def fires(bank, frames) -> Counter:
    """Template name -> firings of ``bank`` over pose ``frames`` (see :func:`firings`)."""
    return Counter(g.template for g in firings(bank, frames))


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    """A user error: non-zero exit, no traceback, one ``mirrorcam: error:`` line naming the problem."""
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("mirrorcam: error:")]
    assert len(errors) == 1, proc.stderr
    # Nothing else on stderr: no native library chatter around the one line.
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle.lower() in errors[0].lower(), errors[0]


# --- Bad inputs shared by several test modules -----------------------------------------

def make_text_named_mp4(tmp: Path) -> Path:
    """A text file that pretends to be a video."""
    path = tmp / "holiday.mp4"
    path.write_text("this is a shopping list, not a video\n")
    return path


def make_empty_dir(tmp: Path) -> Path:
    path = tmp / "nothing_here"
    path.mkdir()
    return path


def _noise_avi(path: Path, frames: int = 40) -> Path:
    """An MJPG clip of ``frames`` frames of noise at 10 fps, 64x48 (its index at the end)."""
    rng = np.random.default_rng(0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for _ in range(frames):
        writer.write(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    writer.release()
    return path


def make_truncated_avi(tmp: Path) -> Path:
    """A 40-frame clip cut to 40 % of its bytes (a download cut short): its header still says
    40 frames, and 15 of them decode."""
    path = _noise_avi(tmp / "cut.avi")
    os.truncate(path, path.stat().st_size * 40 // 100)
    return path


def make_undecodable_avi(tmp: Path) -> Path:
    """A clip whose container opens (40 frames, 10 fps) but none of whose frames decodes: each
    frame's data zeroed."""
    import re

    path = _noise_avi(tmp / "blank.avi")
    data = bytearray(path.read_bytes())
    movi_end = data.rindex(b"idx1")  # (the frames' chunks come before the index)
    for chunk in re.finditer(rb"00dc", bytes(data[:movi_end])):
        size = int.from_bytes(data[chunk.end() : chunk.end() + 4], "little")
        data[chunk.end() + 4 : chunk.end() + 4 + size] = bytes(size)
    path.write_bytes(bytes(data))
    return path


UNREADABLE = ["mode-000", "open-refused"]
"""The two ways :func:`make_unreadable` takes a file's reading away (a parametrize list)."""


def make_unreadable(path: Path, how: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """Take this user's right to read ``path`` away: ``mode-000`` as the system does it (skipped
    as root, who reads any file), ``open-refused`` by hand (``os.open`` raising the
    PermissionError the system gives anyone else; the check mirrorcam makes before OpenCV or
    zipfile opens the file, which took such a file for a damaged one)."""
    import errno

    if how == "mode-000":
        if os.geteuid() == 0:
            pytest.skip("root reads a file of mode 000 (open-refused tests the same path)")
        path.chmod(0)
        request.addfinalizer(lambda: path.chmod(0o644))
        return
    real_open = os.open

    def refused(file, flags, *args, **kwargs):
        if os.fspath(file) == os.fspath(path):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(file))
        return real_open(file, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refused)


def far_away(image: np.ndarray, shrink: float) -> np.ndarray:
    """A person further from the camera: ``image`` shrunk to ``shrink`` of its size, standing on the
    bottom edge, centred, on its median colour (``shrink`` 0: the backdrop alone)."""
    h, w = image.shape[:2]
    canvas = np.empty_like(image)
    canvas[:] = np.median(image.reshape(-1, 3), axis=0)
    if shrink <= 0:
        return canvas  # nobody: the bare backdrop
    small = cv2.resize(image, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
    x0 = (w - small.shape[1]) // 2
    canvas[h - small.shape[0] :, x0 : x0 + small.shape[1]] = small
    return canvas


def private_xvfb(width: int, height: int, *options: str) -> Iterator[str]:
    """A private X server (Xvfb) on a free display number; yields its DISPLAY, then stops it.

    Ready when it answers (``xprop -root``), not when its socket appears: a client that
    connects in between can be refused (openbox once exited so in CI).  Skips the test
    when Xvfb is missing or will not start.  Use as ``yield from private_xvfb(w, h)``;
    ``options`` are Xvfb's own (``"-fbdir", DIR``...).
    """
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb not installed (apt-get install -y xvfb x11-utils)")

    def answers(display: str) -> bool:
        if shutil.which("xprop") is None:
            return Path(f"/tmp/.X11-unix/X{display[1:]}").exists()
        return subprocess.run(["xprop", "-root", "-display", display], capture_output=True, timeout=20).returncode == 0

    for _ in range(3):
        n = next(n for n in range(90 + os.getpid() % 50, 400)
                 if not Path(f"/tmp/.X{n}-lock").exists() and not Path(f"/tmp/.X11-unix/X{n}").exists())
        display = f":{n}"
        # -noreset: by default Xvfb resets itself each time its last client leaves (the
        # readiness check above, an xdotool call), and a client that connects meanwhile is
        # refused: Qt then aborted the kiosk with "could not connect to display" under load.
        proc = subprocess.Popen(["Xvfb", display, "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp", "-noreset",
                                 *options],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        ready = answers(display)
        while not ready and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
            ready = answers(display)
        if ready:
            break
        proc.terminate()
        proc.wait(timeout=10)
    else:
        pytest.skip("Xvfb would not start")
    try:
        yield display
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def screenshot(display: str) -> np.ndarray:
    """The whole screen of the X ``display`` as a BGR image: an ``xwd`` dump (:func:`xwd_pixels`)."""
    for _ in range(3):
        # (xwd walks the windows on the screen: one destroyed meanwhile, as a window opened
        # again, is an X error and exit status 1.  The next dump is taken without it.)
        dump = subprocess.run(["xwd", "-root", "-silent", "-display", display], capture_output=True, timeout=30)
        if dump.returncode == 0:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"xwd could not dump the screen: {dump.stderr.decode(errors='replace').strip()}")
    return xwd_pixels(dump.stdout)


def xwd_pixels(data: bytes) -> np.ndarray:
    """The BGR image in an XWD dump of a 24/32-bit TrueColor screen (``xwd``'s output, or
    Xvfb's screen memory with ``-fbdir``), read with ``struct``: no ImageMagick needed."""
    fields = struct.unpack(">25I", data[:100])
    header_size, width, height = fields[0], fields[4], fields[5]
    byte_order, bits_per_pixel, bytes_per_line, ncolors = fields[7], fields[11], fields[12], fields[19]
    # 32 bits per pixel (B, G, R, pad) or packed 24 (B, G, R); lines may be padded.
    step = bits_per_pixel // 8
    if step not in (3, 4) or bytes_per_line < width * step:
        raise ValueError(f"unsupported xwd layout (header {fields})")
    start = header_size + 12 * ncolors
    rows = np.frombuffer(data, np.uint8, count=height * bytes_per_line, offset=start).reshape(height, bytes_per_line)
    pixels = rows[:, : width * step].reshape(height, width, step)
    # LSBFirst stores B, G, R(, pad); MSBFirst (pad,) R, G, B.
    return pixels[:, :, :3].copy() if byte_order == 0 else pixels[:, :, ::-1][:, :, :3].copy()


def first_showing(take: Callable[[], np.ndarray], shows: Callable[[np.ndarray], bool], seconds: float) -> np.ndarray:
    """The first image ``take()`` gives for which ``shows(image)`` is true, polled for
    ``seconds``; the last one taken if none was, for the caller's assertion to say what it shows.

    A program prints a change before the screen with it is on the display, and a window can
    cover the screen before its first paint: on busy cores a fixed wait came too early.
    """
    deadline = time.monotonic() + seconds
    while True:
        image = take()
        if shows(image) or time.monotonic() > deadline:
            return image
        time.sleep(0.1)


def screen_shows_within(display: str, seconds: float) -> bool:
    """True once anything on the screen of ``display`` is not black, within ``seconds``."""
    return first_showing(lambda: screenshot(display), lambda image: image.max() > 0, seconds).max() > 0


def unmap_the_shown_window(display: str, find_window: Callable[[], str], output: Callable[[], str]) -> None:
    """Unmaps a program's window from outside (``xdotool windowunmap``) once it shows.

    That is the state of a window whose mapping Qt missed (see ``X11Window.shows_nothing``),
    on demand.  The state also comes on its own under load, and the program then opens its
    window again by itself: a window that was looked up (``find_window``) and is gone when it
    is unmapped is waited for and looked up again (a CI run failed when it was not).
    ``output`` gives the program's output so far, for the failure's message.
    """
    for _ in range(5):
        assert screen_shows_within(display, 30), f"the window never showed anything:\n{output()}"
        window = find_window()
        unmapped = subprocess.run(["xdotool", "windowunmap", "--sync", window], capture_output=True, text=True,
                                  timeout=20, env={**os.environ, "DISPLAY": display})
        if unmapped.returncode == 0:
            return
    pytest.fail(f"the window was gone each time it was to be unmapped ({unmapped.stderr.strip()}):\n{output()}")
