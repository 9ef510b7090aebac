"""Arguments and helpers shared by several modes."""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import logging
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path

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

    The one place live and the kiosk open the display (the screen's size; the kiosk's
    hidden pointer, which lasts as long as its connection).  Close it, or use it as a
    context manager.

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


def open_window(name: str, size: tuple[int, int] | None, fill: bool = False, fullscreen: bool = False) -> None:
    """An OpenCV window for pictures of ``size``, made to fit the screen (:func:`fit_window`).

    Used by live, replay and the kiosk; calling it again for an open window sets it up again.

    Args:
        name: The window's name (its title).
        size: ``(width, height)`` of the pictures it shows (None: Qt's own first size).
        fill: The picture fills the window, whatever its shape (the caller draws at the
            window's size: live); else it keeps its proportions inside the window.
        fullscreen: Fill the screen.
    """
    import cv2

    ratio = cv2.WINDOW_FREERATIO if fill else cv2.WINDOW_KEEPRATIO
    cv2.namedWindow(name, cv2.WINDOW_NORMAL | ratio | cv2.WINDOW_GUI_NORMAL)
    # On a 1280 x 720 projector a 1280 x 720 window with its title bar lost the live raster's
    # axis below the screen's edge; a 1920 x 1080 clip's replay window had been 1920 x 1142,
    # its right third and bottom off a 1280 x 800 screen.
    if size is not None:
        cv2.resizeWindow(name, *fit_window(size, x11_screen_size()))
    if fullscreen:
        cv2.setWindowProperty(name, cv2.WND_PROP_FULLSCREEN, cv2.WINDOW_FULLSCREEN)


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
