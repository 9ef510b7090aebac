"""``mirrorcam.fileio``: bounded reads of the user's data files, refused destinations."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from mirrorcam import fileio
from mirrorcam.errors import MirrorcamError
from mirrorcam.fileio import atomic_write_bytes, read_data_file, writable_destination


def make_fifo(tmp: Path) -> Path:
    path = tmp / "fifo.tsv"
    os.mkfifo(path)
    return path


def make_socket(tmp: Path) -> Path:
    path = tmp / "sock.tsv"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))  # (the file stays after the socket is closed)
    return path


def make_sparse(tmp: Path) -> Path:
    path = tmp / "sparse.tsv"
    with open(path, "wb") as handle:
        handle.truncate(8 << 30)  # 8 GB that take no disk: read whole, a MemoryError
    return path


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (make_fifo, "is not a regular file (a FIFO)"),  # (reading it had blocked forever)
        (make_socket, "is not a regular file (a socket)"),
        (lambda tmp: Path("/dev/zero"), "is not a regular file (a character device)"),  # (a MemoryError)
        (lambda tmp: tmp, "is not a regular file (a folder)"),
        (make_sparse, "is 8.6 GB, too large for a manifest (at most 16 MB)"),
    ],
    ids=["fifo", "socket", "dev-zero", "folder", "sparse-8GB"],
)
def test_a_data_file_that_cannot_be_one_is_refused_unread(tmp_path, make, needle):
    path = make(tmp_path)
    with pytest.raises(MirrorcamError) as raised:
        read_data_file(path, "manifest")
    assert str(raised.value).startswith(f"manifest {path} {needle}"), raised.value


@pytest.mark.parametrize(
    ("make", "kind"),
    [(make_fifo, "a FIFO"), (make_socket, "a socket"), (lambda tmp: Path("/dev/null"), "a character device"), (lambda tmp: tmp, "a folder")],
    ids=["fifo", "socket", "dev-null", "folder"],
)
@pytest.mark.parametrize("create", [True, False])
def test_a_destination_that_is_no_file_is_named_for_what_it_is(tmp_path, make, kind, create):
    """Renaming over it would replace the operator's FIFO or device; the message says which
    it is (every one had been "a folder or a device")."""
    dest = make(tmp_path)
    with pytest.raises(MirrorcamError) as raised:
        writable_destination(dest, create=create)
    assert str(raised.value) == f"cannot write to {dest}: it is {kind}, not a file"


@pytest.mark.parametrize(("size", "refused"), [(0, False), (100, False), (101, True)])
def test_a_data_file_is_read_up_to_its_limit(tmp_path, size, refused):
    path = tmp_path / "m.tsv"
    path.write_bytes(b"x" * size)
    if refused:
        with pytest.raises(MirrorcamError, match="too large for a manifest"):
            read_data_file(path, "manifest", max_bytes=100)
    else:
        assert read_data_file(path, "manifest", max_bytes=100) == b"x" * size


def test_a_missing_data_file_is_left_to_the_caller_to_word(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_data_file(tmp_path / "nope.tsv", "manifest")


@pytest.mark.parametrize("create", [True, False])
def test_a_destination_the_user_may_not_write_is_not_replaced(tmp_path, monkeypatch, create):
    """The rename needs only the folder's permission: a 0444 file had been replaced (and
    come out 0644).  Root may write anything, so the user's answer is simulated here; the
    real one is below."""
    dest = tmp_path / "report.json"
    dest.write_text("kept\n")
    monkeypatch.setattr(fileio, "may_write", lambda path: Path(path) != dest)
    with pytest.raises(MirrorcamError) as raised:
        writable_destination(dest, create=create)
    assert str(raised.value) == f"cannot write to {dest}: permission denied; nothing written"
    writable_destination(tmp_path / "other.json", create=create)  # (only that file is refused)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write a read-only file")
def test_a_read_only_file_is_not_replaced_by_an_atomic_write(tmp_path):
    dest = tmp_path / "report.json"
    dest.write_text("kept\n")
    dest.chmod(0o444)
    with pytest.raises(MirrorcamError, match="permission denied; nothing written"):
        atomic_write_bytes(dest, b"new\n")
    assert dest.read_text() == "kept\n" and stat.S_IMODE(dest.stat().st_mode) == 0o444
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]
