"""Every key typed into an OpenCV window reaches the loop, however slow its frames.

OpenCV's window keeps only the last key pressed between two reads; ``X11Window`` reads the
X server's queue instead.  A real window on a private Xvfb, in a child process whose loop
takes 250 ms a frame (a loaded PC), and ``xdotool`` typing at 30 ms a key: with
``cv2.waitKeyEx`` alone each frame would see one key of about eight.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from conftest import REPO, private_xvfb

pytestmark = [
    pytest.mark.display,
    pytest.mark.skipif(not (shutil.which("Xvfb") and shutil.which("xdotool")),
                       reason="needs Xvfb and xdotool (apt-get install xvfb xdotool)"),
]

# The window's loop: shows a frame, reads the keys, sleeps 250 ms; the window is closed and
# opened again (as the kiosk does when a window manager closed it) when "r" comes; prints
# what it read as one JSON line when "." comes.
LOOP = """
import json, sys, time
import cv2, numpy as np
from mirrorcam.modes.common import X11Window, open_window
title = "keys under test"
open_window(title, (320, 180))
window = X11Window(title)
image = np.full((180, 320, 3), 90, np.uint8)
read, found = [], False
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    cv2.imshow(title, image)
    new = window.read_keys()
    read += new
    if window.found and not found:
        found = True
        print("ready", flush=True)
    if ord("r") in new:
        cv2.destroyWindow(title)
        cv2.waitKey(1)
        open_window(title, (320, 180))
        found = False
    if ord(".") in new:
        break
    time.sleep(0.25)
print(json.dumps({"keys": read, "found": window.found}), flush=True)
window.close()
"""


@pytest.fixture()
def xvfb():
    yield from private_xvfb(640, 360)


def _type(display: str, *keys: str) -> None:
    env = {**os.environ, "DISPLAY": display}
    window = ""
    deadline = time.monotonic() + 20
    while not window and time.monotonic() < deadline:
        window = subprocess.run(["xdotool", "search", "--name", "keys under test"], capture_output=True, text=True,
                                env=env, timeout=20).stdout.split("\n")[0].strip()
    assert window, "the window did not appear"
    subprocess.run(["xdotool", "windowfocus", "--sync", window], env=env, timeout=20, check=True)
    subprocess.run(["xdotool", "key", "--delay", "30", *keys], env=env, timeout=20, check=True)


def _wait_for(proc: subprocess.Popen, line: str) -> None:
    got = proc.stdout.readline().strip()
    assert got == line, f"expected {line!r} from the window's loop, got {got!r}: {proc.stderr.read() if got == '' else ''}"


def test_keys_typed_faster_than_the_frames_all_arrive_in_order(xvfb):
    proc = subprocess.Popen([sys.executable, "-c", LOOP], cwd=REPO, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "DISPLAY": xvfb, "QT_QPA_PLATFORM": "xcb"})
    try:
        _wait_for(proc, "ready")
        _type(xvfb, "Escape", "q", "u", "i", "t", "shift+a", "b", "space", "Return", "BackSpace", "r")
        _wait_for(proc, "ready")  # (the window opened again is found again)
        _type(xvfb, "x", "y", "z", "period")
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    result = json.loads(out.strip().splitlines()[-1])
    assert result["found"]
    assert result["keys"] == [27, *map(ord, "quitAb "), 13, 8, ord("r"), *map(ord, "xyz.")], err
