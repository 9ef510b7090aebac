"""Arguments and helpers shared by several modes."""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import logging
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from mirrorcam.errors import MirrorcamError
from mirrorcam.modelstore import DEFAULT_VARIANT, VARIANTS
from mirrorcam.pose import PoseEstimatorOptions


def path_arg(text: str) -> Path:
    """A path argument (``type=path_arg``); an empty one is refused (argparse's one line, exit 2).

    ``Path("")`` is ``.``: ``replay ""`` had replayed every clip of the working folder, and
    ``eval --report ""`` had written its report there over any files of those names.
    """
    if not text:
        raise argparse.ArgumentTypeError("an empty path names nothing; give a file or folder name")
    return Path(text)


def folder_form_problem(text: str) -> str | None:
    """Why ``text``, an output that must be a file, names a folder by its form (``x.mp4/``,
    ``x/.``), or None.

    ``Path`` drops a trailing ``/``, and ``--out x.mp4/`` had written the file ``x.mp4``: a
    trailing ``/`` is how a shell's completion names a folder, so it is taken to mean one.
    """
    if os.path.basename(text) not in ("", ".", ".."):
        return None
    name, ending = Path(text), text[len(text.rstrip("/.")):]
    hint = f"; leave the '{ending}' out to write the file {name}" if name.suffix else "; give a file name"
    return f"{text} names a folder (it ends in '{ending}'), not a file{hint}"


def file_arg(text: str) -> Path:
    """A path argument that names a file to write (``type=file_arg``): refused, as
    :func:`path_arg` refuses an empty one, when its form names a folder (:func:`folder_form_problem`)."""
    path = path_arg(text)
    problem = folder_form_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return path


def nonempty_arg(text: str) -> str:
    """A file-or-URL argument kept as given (a URL is no path: ``Path`` makes ``rtsp:/`` of
    ``rtsp://``), refused when empty as :func:`path_arg` does."""
    path_arg(text)  # (refuses an empty one)
    return text


def add_pose_arguments(parser: argparse.ArgumentParser, num_poses_default: str = "2") -> None:
    """``--model-variant``, ``--num-poses``, ``--no-smoothing``.

    ``--num-poses`` is None when not given, so a mode can choose its own default
    (``num_poses_default`` is how its help text says what that is).
    """
    group = parser.add_argument_group("pose stage")
    group.add_argument("--model-variant", choices=VARIANTS, default=DEFAULT_VARIANT, help="pose model (default: full)")
    group.add_argument("--num-poses", type=int, default=None, metavar="N",
                       help=f"most people per frame (default: {num_poses_default})")
    group.add_argument("--no-smoothing", action="store_true", help="turn the One-Euro landmark filter off")


def pose_options_from_args(args: argparse.Namespace, num_poses: int | None = None) -> PoseEstimatorOptions:
    """The pose stage's options from the command line; ``num_poses`` is the mode's default
    when ``--num-poses`` was not given (else :class:`PoseEstimatorOptions`'s, 2)."""
    chosen = args.num_poses if args.num_poses is not None else num_poses
    if chosen is not None and not 1 <= chosen <= 10:  # (said as the option typed, not the field)
        raise MirrorcamError(f"--num-poses must be between 1 and 10, got {chosen}")
    try:
        options = PoseEstimatorOptions(model_variant=args.model_variant, smoothing=not args.no_smoothing)
        return options if chosen is None else replace(options, num_poses=chosen)
    except ValueError as exc:
        raise MirrorcamError(str(exc)) from None


def say(message: str, *args) -> None:
    """A session event on stdout (``mirrorcam: paused``), flushed at once.

    stdout, not the log: these are what the session did (mirror events, clips observed,
    actions taught), for the person at the screen and for scripts reading them, apart from
    the diagnostics on stderr.
    """
    print("mirrorcam: " + (message % args if args else message), flush=True)


def display_available() -> bool:
    """True where an OpenCV window can open (an X display that answers on Linux; always elsewhere).

    Why ask the X server: OpenCV's Qt aborts the whole process (exit 134, temporary
    outputs left behind) when ``$DISPLAY`` names a display it cannot reach, a stale one
    over ssh for instance; here that is one warning and the run goes on without a window.
    """
    if not sys.platform.startswith("linux"):
        return True
    if not os.environ.get("DISPLAY"):
        return bool(os.environ.get("WAYLAND_DISPLAY"))
    if system_library("X11", "libX11.so.6") is None:  # (no libX11 to ask with: take $DISPLAY's word)
        return True
    display = X11Display.open()
    if display is None:
        logging.getLogger("mirrorcam").warning("cannot reach the X display %s; running without a window", os.environ["DISPLAY"])
        return False
    display.close()
    return True


MAX_KEYS_PER_FRAME = 32
"""Keys a window loop reads per frame at most (a held key cannot stall it); live and the kiosk."""


def system_library(name: str, fallback: str) -> ctypes.CDLL | None:
    """A C library of the system through ctypes (``name`` as ``find_library`` knows it,
    ``fallback`` the file tried when it finds none), or None when there is none."""
    try:
        return ctypes.CDLL(ctypes.util.find_library(name) or fallback)
    except OSError:
        return None


@dataclass(frozen=True)
class X11Display:
    """A connection to the X server of ``$DISPLAY``, through libX11 by ctypes (no dependency).

    The one place live and the kiosk open the display (the screen's size; the window's
    keys, looks and the kiosk's hidden pointer, see :class:`X11Window`).  Close it, or use
    it as a context manager.

    Attributes:
        lib: libX11, with the argument types of the calls made here set.
        handle: The ``Display *``.
    """

    lib: ctypes.CDLL
    handle: int

    @classmethod
    def open(cls) -> X11Display | None:
        """The default display, or None without ``$DISPLAY``, libX11 or an X server answering."""
        x11 = system_library("X11", "libX11.so.6") if os.environ.get("DISPLAY") else None
        if x11 is None:
            return None
        x11.XOpenDisplay.restype = ctypes.c_void_p
        x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
        x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
        x11.XDefaultScreen.argtypes = [ctypes.c_void_p]
        x11.XDisplayWidth.argtypes = [ctypes.c_void_p, ctypes.c_int]
        x11.XDisplayHeight.argtypes = [ctypes.c_void_p, ctypes.c_int]
        x11.XDefaultRootWindow.restype = ctypes.c_ulong
        x11.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
        x11.XFlush.argtypes = [ctypes.c_void_p]
        handle = x11.XOpenDisplay(None)
        return cls(x11, handle) if handle else None

    def close(self) -> None:
        self.lib.XCloseDisplay(self.handle)

    def __enter__(self) -> X11Display:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def x11_screen_size() -> tuple[int, int] | None:
    """``(width, height)`` of the default X screen, or None without X."""
    display = X11Display.open()
    if display is None:
        return None
    with display:
        screen = display.lib.XDefaultScreen(display.handle)
        return int(display.lib.XDisplayWidth(display.handle, screen)), int(display.lib.XDisplayHeight(display.handle, screen))


def fit_window(size: tuple[int, int], screen: tuple[int, int] | None) -> tuple[int, int]:
    """A window size for a picture of ``size`` that fits ``screen`` with room for a title bar.

    Example:
        >>> fit_window((1280, 720), (1280, 720))  # a projector's screen
        (1152, 648)
        >>> fit_window((1280, 720), (1920, 1080))
        (1280, 720)
    """
    if not screen:
        return size
    scale = min(1.0, 0.9 * screen[0] / size[0], 0.9 * screen[1] / size[1])
    return round(size[0] * scale), round(size[1] * scale)


def open_window(name: str, size: tuple[int, int] | None, fill: bool = False, fullscreen: bool = False,
                afresh: bool = False) -> None:
    """An OpenCV window for pictures of ``size``, made to fit the screen (:func:`fit_window`).

    Used by live, replay and the kiosk; calling it again for an open window sets it up again.

    Args:
        name: The window's name (its title).
        size: ``(width, height)`` of the pictures it shows (None: Qt's own first size).
        fill: The picture fills the window, whatever its shape (the caller draws at the
            window's size: live); else it keeps its proportions inside the window.
        fullscreen: Fill the screen.
        afresh: Close the window first and open a new one: a new X window, which Qt maps
            and paints anew (a window that shows nothing, see :meth:`X11Window.gone_blank`).
    """
    import cv2

    if afresh:
        cv2.destroyWindow(name)
        cv2.waitKey(1)  # (Qt closes it here, before the new one opens)
    ratio = cv2.WINDOW_FREERATIO if fill else cv2.WINDOW_KEEPRATIO
    cv2.namedWindow(name, cv2.WINDOW_NORMAL | ratio | cv2.WINDOW_GUI_NORMAL)
    # On a 1280 x 720 projector a 1280 x 720 window with its title bar lost the live raster's
    # axis below the screen's edge; a 1920 x 1080 clip's replay window had been 1920 x 1142,
    # its right third and bottom off a 1280 x 800 screen.
    if size is not None:
        cv2.resizeWindow(name, *fit_window(size, x11_screen_size()))
    if fullscreen:
        cv2.setWindowProperty(name, cv2.WND_PROP_FULLSCREEN, cv2.WINDOW_FULLSCREEN)


class _XKeyEvent(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
                ("display", ctypes.c_void_p), ("window", ctypes.c_ulong), ("root", ctypes.c_ulong),
                ("subwindow", ctypes.c_ulong), ("time", ctypes.c_ulong), ("x", ctypes.c_int), ("y", ctypes.c_int),
                ("x_root", ctypes.c_int), ("y_root", ctypes.c_int), ("state", ctypes.c_uint),
                ("keycode", ctypes.c_uint), ("same_screen", ctypes.c_int)]


class _XEvent(ctypes.Union):
    _fields_ = [("type", ctypes.c_int), ("xkey", _XKeyEvent), ("pad", ctypes.c_long * 24)]


class _XImage(ctypes.Structure):  # (its first fields: all that is read here)
    _fields_ = [("width", ctypes.c_int), ("height", ctypes.c_int), ("xoffset", ctypes.c_int), ("format", ctypes.c_int),
                ("data", ctypes.c_void_p), ("byte_order", ctypes.c_int), ("bitmap_unit", ctypes.c_int),
                ("bitmap_bit_order", ctypes.c_int), ("bitmap_pad", ctypes.c_int), ("depth", ctypes.c_int),
                ("bytes_per_line", ctypes.c_int), ("bits_per_pixel", ctypes.c_int)]


_KEY_PRESS, _DESTROY_NOTIFY = 2, 17  # X event types
_KEY_PRESS_MASK, _STRUCTURE_NOTIFY_MASK = 1 << 0, 1 << 17
_Z_PIXMAP, _ALL_PLANES = 2, 0xFFFFFFFF
_FIND_EVERY_S = 0.5  # how often X11Window looks for its window until it has found it ...
_FIND_TRIES = 20  # ... and for how many times (a walk of a desktop's windows is not free)
BLANK_CHECK_S = 1.0  # how often X11Window.gone_blank looks at the window


class X11Window:
    """The X window of an OpenCV window, through a connection of our own to the X server:
    every key typed in it, in order, and whether it shows anything.

    Why keys from X: OpenCV's window keeps only the last key pressed since its previous
    ``waitKey``, so keys typed faster than a loop reads them merge into the last one.  On
    a loaded kiosk PC a frame took over 30 ms, and the operator's chord typed at 30 ms a
    key lost its ``i`` (the kiosk saw Esc, q, u, t and stayed up: a CI run on a slow host
    failed on it).  This connection also selects the window's key presses, and the X
    server queues every one of them for it until they are read.  Without X (no
    ``$DISPLAY``, no libX11), or until the window is found (looked for by its title every
    0.5 s, for 10 s after it opens), keys come from ``cv2.waitKeyEx`` as before.

    Codes are those of ``cv2.waitKeyEx`` for the keys that type a character (ASCII and
    Latin-1; Esc 27, Enter 13, Backspace 8); other keys (arrows, F1...) are not reported.

    Example:
        >>> window = X11Window("mirrorcam")  # doctest: +SKIP
        >>> cv2.imshow("mirrorcam", image); window.read_keys()  # doctest: +SKIP
        [27, 113]
    """

    def __init__(self, title: str, limit: int = MAX_KEYS_PER_FRAME) -> None:
        self.title = title
        self.limit = limit
        self._x = X11Display.open()
        self._window: int | None = None
        self._next_find = 0.0
        self._tries_left = _FIND_TRIES
        self._next_check = 0.0
        self._blank_checks = 0  # checks in a row that found the window showing nothing
        self._event = _XEvent()
        self._text = ctypes.create_string_buffer(8)
        if self._x is not None:
            lib, void, ulong, uint, cint = self._x.lib, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_uint, ctypes.c_int
            lib.XPending.argtypes = [void]
            lib.XNextEvent.argtypes = [void, ctypes.POINTER(_XEvent)]
            lib.XSelectInput.argtypes = [void, ulong, ctypes.c_long]
            lib.XLookupString.argtypes = [ctypes.POINTER(_XKeyEvent), ctypes.c_char_p, cint, void, void]
            lib.XQueryTree.argtypes = [void, ulong, ctypes.POINTER(ulong), ctypes.POINTER(ulong),
                                       ctypes.POINTER(ctypes.POINTER(ulong)), ctypes.POINTER(uint)]
            lib.XFetchName.argtypes = [void, ulong, ctypes.POINTER(void)]
            lib.XFree.argtypes = [void]
            lib.XGetGeometry.argtypes = [void, ulong, ctypes.POINTER(ulong), *[ctypes.POINTER(cint)] * 2, *[ctypes.POINTER(uint)] * 4]
            lib.XGetImage.restype = ctypes.POINTER(_XImage)
            lib.XGetImage.argtypes = [void, ulong, cint, cint, uint, uint, ulong, cint]

    @property
    def found(self) -> bool:
        """True once the window has been found (keys then come from the X server's queue)."""
        return self._window is not None

    def read_keys(self) -> list[int]:
        """Keys pressed since the last call, oldest first (at most ``limit``).

        Also lets the window handle its events (``cv2.waitKeyEx(1)``): call it once a frame
        after ``cv2.imshow``, and while the loop waits for anything else.
        """
        import cv2

        code = cv2.waitKeyEx(1)
        if self._window is not None:
            return self._queued()  # (waitKeyEx's key is among them)
        keys = []
        while code != -1 and len(keys) < self.limit:
            keys.append(code)
            code = cv2.waitKeyEx(1)
        if self._x is not None:
            # Keys typed before the window is found are OpenCV's (above: a key pressed as
            # the window opens is not lost); from then on the X server queues them all.
            self._find()
        return keys

    def shows_nothing(self, image) -> bool:
        """True when the window's middle row is black (or cannot be read) and ``image``'s,
        the picture last shown in it, is not; False also when it cannot tell (no X, the
        window not found yet).

        Why: under load, Qt can miss the X server's notice that its window was mapped (2
        kiosk starts in 9 and 2 in 12 beside three CPU-bound processes, on a bare X display;
        Qt's own log showed no ``MapNotify``).  It then never paints the window, and the
        screen stayed black while the kiosk ran.
        """
        if self._window is None or image is None or int(image[image.shape[0] // 2].max()) <= 8:
            return False
        lib, handle = self._x.lib, self._x.handle
        root, x, y = ctypes.c_ulong(), ctypes.c_int(), ctypes.c_int()
        width, height, border, depth = (ctypes.c_uint() for _ in range(4))
        if not lib.XGetGeometry(handle, self._window, ctypes.byref(root), ctypes.byref(x), ctypes.byref(y),
                                ctypes.byref(width), ctypes.byref(height), ctypes.byref(border), ctypes.byref(depth)):
            return True
        # (A window that is not viewable cannot be read: an X error, which Qt's handler
        # for the process ignores, and no image.)
        row = lib.XGetImage(handle, self._window, 0, height.value // 2, width.value, 1, _ALL_PLANES, _Z_PIXMAP)
        if not row:
            return True
        try:
            data = np.frombuffer(ctypes.string_at(row.contents.data, row.contents.bytes_per_line), np.uint8)
            if row.contents.bits_per_pixel == 32:  # (the fourth byte of a pixel is padding)
                data = data[: width.value * 4].reshape(-1, 4)[:, :3]
            return not data.any()
        finally:
            lib.XFree(row.contents.data)
            lib.XFree(row)

    def hide_pointer(self) -> bool:
        """Hide the mouse pointer on the whole screen (XFixes) for as long as this connection
        is open: :meth:`close` brings it back.  False without X or libXfixes.

        Why here: the kiosk hides the pointer while its window is up, and this connection
        lasts exactly that long (one connection for the window's keys, looks and pointer).
        """
        xfixes = system_library("Xfixes", "libXfixes.so.3") if self._x is not None else None
        if xfixes is None:
            return False
        xfixes.XFixesHideCursor.argtypes = [ctypes.c_void_p, ctypes.c_ulong]
        xfixes.XFixesHideCursor(self._x.handle, self._x.lib.XDefaultRootWindow(self._x.handle))
        self._x.lib.XFlush(self._x.handle)
        return True

    def gone_blank(self, image) -> bool:
        """True when the window should be opened again: it showed nothing of its pictures
        (:meth:`shows_nothing`) at two checks in a row, a check every ``BLANK_CHECK_S``.

        Two checks: the first can come before the window's first paint.  Under load, a
        reopened window also missed its mapping at times (3 windows in a row once, beside
        three CPU-bound processes): it is looked at again and opened again until it shows.
        """
        now = time.monotonic()
        if now < self._next_check:
            return False
        self._next_check = now + BLANK_CHECK_S
        self._blank_checks = self._blank_checks + 1 if self.shows_nothing(image) else 0
        if self._blank_checks < 2:
            return False
        self._blank_checks = 0
        return True

    def close(self) -> None:
        if self._x is not None:
            self._x.close()
            self._x, self._window = None, None

    def _queued(self) -> list[int]:
        lib, handle, event = self._x.lib, self._x.handle, self._event
        keys: list[int] = []
        while lib.XPending(handle) and len(keys) < self.limit:
            lib.XNextEvent(handle, ctypes.byref(event))
            if event.type == _DESTROY_NOTIFY:  # (closed: found again when it is back)
                self._window, self._tries_left = None, _FIND_TRIES
            elif event.type == _KEY_PRESS:
                n = lib.XLookupString(ctypes.byref(event.xkey), self._text, len(self._text), None, None)
                if n == 1:
                    keys.append(self._text.raw[0])
        return keys

    def _find(self) -> None:
        now = time.monotonic()
        if now < self._next_find or self._tries_left <= 0:
            return
        self._next_find = now + _FIND_EVERY_S
        self._tries_left -= 1
        lib, handle = self._x.lib, self._x.handle
        window = self._named(lib.XDefaultRootWindow(handle), self.title.encode(), depth=3)
        if window is not None:
            # (Selecting on a window that has just gone is an X error, which Qt's own
            # handler, set for the process by OpenCV's window, ignores.)
            lib.XSelectInput(handle, window, _KEY_PRESS_MASK | _STRUCTURE_NOTIFY_MASK)
            lib.XFlush(handle)
            self._window = window

    def _named(self, window: int, name: bytes, depth: int) -> int | None:
        """The first window under ``window`` (depth first, ``depth`` levels) titled ``name``."""
        lib, handle = self._x.lib, self._x.handle
        title = ctypes.c_void_p()
        if lib.XFetchName(handle, window, ctypes.byref(title)) and title.value:
            found = ctypes.string_at(title.value) == name
            lib.XFree(title)
            if found:
                return window
        if depth == 0:
            return None
        root, parent = ctypes.c_ulong(), ctypes.c_ulong()
        children, count = ctypes.POINTER(ctypes.c_ulong)(), ctypes.c_uint()
        if not lib.XQueryTree(handle, window, ctypes.byref(root), ctypes.byref(parent), ctypes.byref(children), ctypes.byref(count)):
            return None
        try:
            kids = [children[i] for i in range(count.value)]
        finally:
            if children:
                lib.XFree(children)
        for kid in reversed(kids):  # (top of the stacking order first)
            found = self._named(kid, name, depth - 1)
            if found is not None:
                return found
        return None


def add_template_arguments(parser: argparse.ArgumentParser) -> None:
    """``--templates DIR`` (user templates beside the built-ins) and ``--no-templates``."""
    group = parser.add_argument_group("action templates")
    group.add_argument("--templates", type=path_arg, action="append", metavar="DIR", help="extra template folder (repeatable)")
    group.add_argument("--no-templates", action="store_true", help="skeletons only, no neurons")


def load_templates(extra_dirs=None) -> list:
    """The templates live and replay match against: built-ins, the user's taught ones, ``extra_dirs``.

    (eval and the kiosk leave the user's folder out on purpose: they measure or show a
    fixed library.)
    """
    from mirrorcam.templates import TemplateLibrary

    return list(TemplateLibrary.load(extra_dirs=extra_dirs or [], include_user=True).templates)


def load_bank(args: argparse.Namespace):
    """A NeuronBank over :func:`load_templates` with ``--templates`` folders, or None."""
    if getattr(args, "no_templates", False):
        if getattr(args, "templates", None):  # (the one had silently cancelled the other)
            raise MirrorcamError("--no-templates matches nothing, --templates adds folders to match: choose one")
        return None
    from mirrorcam.matching import NeuronBank

    templates = load_templates(args.templates)
    return NeuronBank(templates) if templates else None
