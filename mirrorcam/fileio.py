"""Atomic file writes: a crash never leaves half a file behind; bounded reads of data files.

Every file mirrorcam writes for the user goes through :func:`atomic_write` (or the
helpers built on it): the data goes to a temporary file in the destination folder,
is flushed to disk and then renamed over the destination in one step.

Small text files the user names (a manifest, a config) are read with
:func:`read_data_file`, which refuses a FIFO or a device (reading one blocks forever or
never ends) and a file too large to be one.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from mirrorcam.errors import MirrorcamError


@functools.lru_cache(maxsize=1)
def new_file_mode() -> int:
    """The mode a plain ``open()`` would give a new file (0o666 less the umask).

    ``mkstemp`` creates its files 0o600; renamed into place they would keep that, and a
    user's video or template would be unreadable to everyone else for no reason.
    """
    try:  # Linux says it without changing it: setting it to read it races other threads' new files
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def publish(tmp: str | os.PathLike[str], dest: str | os.PathLike[str]) -> None:
    """Give a finished temporary file a new file's mode and rename it over ``dest``.

    Raises:
        OSError: The rename failed; the temporary file is gone too.
    """
    try:
        os.chmod(tmp, new_file_mode())
        os.replace(tmp, dest)
    except OSError:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


MAX_DATA_FILE_BYTES = 16_000_000
"""The largest manifest or config :func:`read_data_file` reads by default: far above any
real one (the shipped manifest is 8 KB), far below what would exhaust memory."""

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def file_kind(mode: int) -> str:
    """What a ``st_mode`` names, for a message: ``"a FIFO"``, ``"a folder"``, ``"a regular file"``."""
    if stat.S_ISREG(mode):
        return "a regular file"
    return next((name for test, name in _KINDS if test(mode)), "a special file")


def _size(n: int) -> str:
    """``n`` bytes for a message: ``"16 MB"``, ``"8.6 GB"``."""
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"


def read_data_file(path: str | os.PathLike[str], what: str, max_bytes: int = MAX_DATA_FILE_BYTES) -> bytes:
    """The bytes of a small data file the user named (a manifest, a config), read whole.

    A FIFO would block the read until some other program writes to it (forever, for the
    user), and ``/dev/zero`` or an 8 GB file would fill memory: both are refused first.

    Args:
        path: The file.
        what: What it is, for the message (``"manifest"``, ``"config file"``).
        max_bytes: Larger files are refused.

    Raises:
        MirrorcamError: ``path`` is not a regular file or is larger than ``max_bytes``.
        OSError: It cannot be read (missing, no permission): the caller words that.
    """
    refusal = f"{what} {os.fsdecode(path)}"
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):  # (before opening it: opening a FIFO blocks)
        raise MirrorcamError(f"{refusal} is not a regular file ({file_kind(mode)})")
    # O_NONBLOCK: a FIFO put in its place since the stat opens without waiting, and is refused below.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise MirrorcamError(f"{refusal} is not a regular file ({file_kind(info.st_mode)})")
        if info.st_size > max_bytes:
            raise MirrorcamError(f"{refusal} is {_size(info.st_size)}, too large for a {what} "
                                 f"(at most {_size(max_bytes)}); is it the right file?")
        data = handle.read(max_bytes + 1)  # (a file still growing stops at the limit too)
    if len(data) > max_bytes:
        raise MirrorcamError(f"{refusal} is over {_size(max_bytes)}, too large for a {what}; is it the right file?")
    return data


def require_readable(path: str | os.PathLike[str], error: type[MirrorcamError] = MirrorcamError) -> None:
    """Refuse a file this user may not read as what it is: ``cannot read X: permission denied``.

    Why: OpenCV and ``zipfile`` take a file they may not open for a damaged one ("could
    not decode a frame", "truncated"), which sends the user looking for damage.  The file
    is opened (root, ACLs and read-only mounts answer as for the real read), non-blocking
    so that a FIFO answers at once; other failures (missing, ...) are the caller's to say.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except PermissionError:
        raise error(f"cannot read {os.fsdecode(path)}: permission denied") from None
    except OSError:
        return
    os.close(fd)


def is_utf8(text: str) -> bool:
    """False for text holding bytes that were not UTF-8: a file name or a command-line
    argument that Python keeps as surrogates (a Latin-1 ``caf\\xe9.mp4``), which OpenCV
    crashes on and no JSON file can hold."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# Root may write anywhere as far as access() is concerned, yet no file can be created here.
_KERNEL_FOLDERS = (Path("/proc"), Path("/sys"))


def folder_problem(path: Path) -> str | None:
    """Why ``path`` could not be created or written in, or None if it can: said after the
    folder's name ("storage.dir: is not writable: ...").

    Missing folders are created when written to, so the nearest folder that exists must
    be one this user may create entries in (the kiosk's folders; outputs checked before
    the work, :func:`writable_destination` with ``create`` False).
    """
    existing = path
    while not os.path.exists(existing) and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        return f"is not a folder: {path}" if existing == path else f"cannot be created: {existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"is not writable: {path}" if existing == path else f"cannot be created: {existing} is not writable"
    if any(existing.resolve().is_relative_to(kernel) for kernel in _KERNEL_FOLDERS):
        return f"cannot hold files: {existing.resolve()} is a kernel file system"
    return None


def may_write(path: str | os.PathLike[str]) -> bool:
    """Whether this user may write the existing file ``path`` (root may write any)."""
    return os.access(path, os.W_OK)


def writable_destination(path: str | os.PathLike[str], create: bool = True) -> Path:
    """``path`` as a file mirrorcam may write, or a clear :class:`MirrorcamError`.

    Refuses what the rename would get wrong: a folder, a device or anything that is not
    a regular file (renaming over ``/dev/null`` replaces the device), an existing file
    this user may not write, an empty name, and a parent that is a file.  Creates the
    parent folder; with ``create`` False (a check before the work, which may still be
    refused) only checks that the nearest existing folder above could hold it.
    """
    dest = Path(path)
    if not str(path) or not dest.name:
        raise MirrorcamError(f"cannot write to {str(path)!r}: not a file name")
    if dest.exists() and not dest.is_file():
        raise MirrorcamError(f"cannot write to {dest}: it is {file_kind(dest.stat().st_mode)}, not a file")
    if dest.exists() and not may_write(dest):
        # The rename needs only the folder's permission: it would replace a file its owner
        # made read-only (and leave it writable), where a plain open() would be refused.
        raise MirrorcamError(f"cannot write to {dest}: permission denied; nothing written")
    if not create:
        problem = folder_problem(dest.parent)
        if problem:
            raise MirrorcamError(f"cannot write to {dest}: its folder {problem}")
        return dest
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # (the reason as the check before the work says it: "... is a file, not a folder")
        problem = folder_problem(dest.parent) or f"cannot be created ({exc.strerror or exc})"
        raise MirrorcamError(f"cannot write to {dest}: its folder {problem}") from None
    if not os.access(dest.parent, os.W_OK):
        raise MirrorcamError(f"cannot write to {dest}: its folder is not writable")
    return dest


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file that replaces ``path`` only if the block succeeds.

    Args:
        path: Destination file. Its folder is created if needed.
        mode: ``"wb"`` or ``"w"`` (text, UTF-8).

    Example:
        >>> with atomic_write("/tmp/x.json", "w") as f:  # doctest: +SKIP
        ...     f.write("{}")
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w', got {mode!r}")
    dest = writable_destination(path)
    # The temp file lives beside the destination so the rename stays on one filesystem.
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    except OSError as exc:
        raise MirrorcamError(f"cannot write to {dest}: {exc.strerror or exc}") from None
    try:
        kwargs = {"encoding": "utf-8", "newline": "\n"} if mode == "w" else {}
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        publish(tmp, dest)
    except OSError as exc:  # a full disk: say which file could not be written ("No space left" alone had not)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if exc.filename not in (None, tmp, str(dest)):
            raise  # another file the block was reading or writing: its own error names it
        raise MirrorcamError(f"cannot write to {dest}: {exc.strerror or exc}; nothing written") from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_write(path, "wb") as handle:
        handle.write(data)


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented UTF-8 JSON to ``path`` atomically (serialised first: an
    object that is not JSON-safe leaves no file behind)."""
    text = json.dumps(obj, indent=2, ensure_ascii=False)
    with atomic_write(path, "w") as handle:
        handle.write(text + "\n")


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
