"""Landmark recordings: round trip, versioning, damaged and foreign files."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mirrorcam.containers import Person, PoseFrame
from mirrorcam.errors import RecordingError
from mirrorcam.recording import Recording, is_recording_path, load_recording, save_recording


def _person(pid: int, seed: int) -> Person:
    rng = np.random.default_rng(seed)
    return Person(
        id=pid,
        landmarks=rng.random((33, 3), dtype=np.float32),
        world=rng.normal(size=(33, 3)).astype(np.float32),
        visibility=rng.random(33, dtype=np.float32),
        presence=rng.random(33, dtype=np.float32),
    )


def _recording(n: int = 12) -> Recording:
    frames = []
    for i in range(n):
        persons = tuple(_person(pid, i * 10 + pid) for pid in range(i % 3))  # 0, 1 or 2 people
        frames.append(PoseFrame(i * 33.3, i, persons, (640, 480)))
    return Recording(tuple(frames), 30.0, (640, 480), "generated: test", "full", {"note": "ünïcode ✓"})


def test_round_trip_keeps_every_value(tmp_path: Path) -> None:
    original = _recording()
    path = tmp_path / "rec.npz"
    save_recording(path, original)
    loaded = load_recording(path)
    assert (loaded.fps, loaded.frame_size, loaded.source, loaded.model_variant) == (30.0, (640, 480), "generated: test", "full")
    assert loaded.meta == {"note": "ünïcode ✓"}
    assert len(loaded) == len(original)
    for a, b in zip(original.frames, loaded.frames):
        assert a.timestamp_ms == pytest.approx(b.timestamp_ms)
        assert [p.id for p in a.persons] == [p.id for p in b.persons]
        for pa, pb in zip(a.persons, b.persons):
            for name in ("landmarks", "world", "visibility", "presence"):
                np.testing.assert_array_equal(getattr(pa, name), getattr(pb, name))
    assert is_recording_path(path)


def test_empty_recording_round_trips(tmp_path: Path) -> None:
    save_recording(tmp_path / "empty.npz", Recording((), 25.0, (320, 240)))
    assert len(load_recording(tmp_path / "empty.npz")) == 0


def _rewrite_header(path: Path, **changes) -> None:
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    header = json.loads(arrays["header"].tobytes())
    header.update(changes)
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    np.savez(path, **arrays)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _text(path: Path) -> None:
    path.write_text("this is not a recording\n")


def _npy(path: Path) -> None:
    with path.open("wb") as f:  # a bare .npy array under an .npz name
        np.save(f, np.zeros(3))


def _foreign_npz(path: Path) -> None:
    np.savez(path, weights=np.zeros(3))


def _object_array(path: Path) -> None:
    # A pickled object array must be refused, never unpickled.
    np.savez(path, header=np.array([{"format": "mirrorcam.landmarks"}], dtype=object))


def _missing_array(path: Path) -> None:
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files if k != "world"}
    np.savez(path, **arrays)


def _bad_shape(path: Path) -> None:
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    arrays["world"] = arrays["world"][:, :, :10]
    np.savez(path, **arrays)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: _rewrite_header(p, version=99), "version 99"),
        (lambda p: _rewrite_header(p, format="something.else"), "not a mirrorcam landmark recording"),
        (_truncate, "not an .npz archive: truncated"),
        (_text, "not an .npz archive"),
        (_npy, "not an .npz archive"),
        (_foreign_npz, "no header"),
        (_object_array, "pickled objects, which are never loaded"),
        (_missing_array, "missing world"),
        (_bad_shape, "shape"),
        (lambda p: p.unlink(), "no such recording"),
    ],
    ids=["unknown-version", "foreign-format", "truncated", "text-file", "npy-file", "foreign-npz", "pickled-object", "missing-array", "bad-shape", "missing-file"],
)
def test_damaged_recordings_give_a_clear_error(tmp_path: Path, damage, message: str) -> None:
    path = tmp_path / "rec.npz"
    save_recording(path, _recording())
    damage(path)
    with pytest.raises(RecordingError, match=message) as caught:
        load_recording(path)
    assert "allow_pickle" not in str(caught.value)  # never the advice to load it unsafely


def test_save_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "rec.npz"
    save_recording(path, _recording(3))
    before = path.read_bytes()

    def crash(*_args, **_kwargs):
        raise OSError("disk pulled out")

    monkeypatch.setattr("mirrorcam.fileio.os.replace", crash)
    with pytest.raises(OSError):
        save_recording(path, _recording(12))
    assert path.read_bytes() == before, "the old recording must survive a failed save"
    assert [p.name for p in tmp_path.iterdir()] == ["rec.npz"], "no temporary file may be left behind"
    with zipfile.ZipFile(path) as archive:
        assert "header.npy" in archive.namelist()


def test_saved_files_get_ordinary_permissions(tmp_path: Path) -> None:
    """Temp-file-and-rename must not leave the 0600 mode of mkstemp on the user's file."""
    import os

    path = tmp_path / "rec.npz"
    save_recording(path, _recording(2))
    mask = os.umask(0o022)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask
