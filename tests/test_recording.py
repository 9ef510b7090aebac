"""Landmark recordings: round trip, versioning, damaged and foreign files."""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from mirrorcam.containers import Person, PoseFrame
from mirrorcam.errors import MirrorcamError, RecordingError
from mirrorcam.recording import Recording, is_recording_path, load_recording, save_recording

from conftest import UNREADABLE, make_unreadable


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
    """Rewrite the header with ``changes`` (a value of ``...`` removes that field)."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    header = json.loads(arrays["header"].tobytes())
    header.update(changes)
    header = {k: v for k, v in header.items() if v is not ...}
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


@pytest.mark.parametrize("how", UNREADABLE)
def test_a_recording_the_user_may_not_read_is_not_called_truncated(tmp_path: Path, monkeypatch, request, how: str) -> None:
    """``zipfile.is_zipfile`` says False for a file it may not open: "not an .npz archive:
    truncated, or another kind of file" had been the message."""
    path = tmp_path / "rec.npz"
    save_recording(path, _recording())
    make_unreadable(path, how, monkeypatch, request)
    with pytest.raises(RecordingError) as raised:
        load_recording(path)
    assert str(raised.value) == f"cannot read {path}: permission denied"


def test_save_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "rec.npz"
    save_recording(path, _recording(3))
    before = path.read_bytes()

    def crash(*_args, **_kwargs):
        raise OSError("disk pulled out")

    monkeypatch.setattr("mirrorcam.fileio.os.replace", crash)
    with pytest.raises(MirrorcamError, match=r"cannot write to .*rec\.npz: disk pulled out; nothing written"):
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


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_the_new_file_mode_follows_the_umask_without_changing_it(umask: int) -> None:
    """Read from /proc where Linux has it: setting the umask to read it raced the pose
    thread's and the writer thread's new files (they could get the probe's 022)."""
    import os
    import subprocess
    import sys

    probe = ("import os, threading\nfrom mirrorcam.fileio import new_file_mode\n"
             "seen = []\nos.umask = lambda m, real=os.umask: seen.append(m) or real(m)\n"
             "print(oct(new_file_mode()), seen)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         preexec_fn=lambda: os.umask(umask)).stdout.split()
    assert out[0] == oct(0o666 & ~umask)
    assert out[1] == "[]" or not os.path.exists("/proc/self/status"), "the umask was changed to be read"


def _rewrite_arrays(path: Path, **arrays) -> None:
    with np.load(path, allow_pickle=False) as archive:
        kept = {k: archive[k] for k in archive.files}
    np.savez(path, **{**kept, **arrays})


@pytest.mark.parametrize(
    ("offset", "loads"),
    [(0.0, True), (-1e11, True), (1e16, False), (1e19, False), (-1e19, False)],
)
def test_timestamps_beyond_31_years_are_refused(tmp_path: Path, offset: float, loads: bool) -> None:
    # At 1e19 ms a tick (66.7 ms) is lost in float64 rounding: replay and eval had hung.
    path = tmp_path / "rec.npz"
    save_recording(path, _recording(4))
    _rewrite_arrays(path, timestamps_ms=np.arange(4) * 33.3 + offset)
    if loads:
        assert len(load_recording(path)) == 4
    else:
        with pytest.raises(RecordingError, match=r"rec\.npz: timestamps must be within"):
            load_recording(path)


@pytest.mark.parametrize("times", [(1e19, 1e19 + 4096.0, 1e19 + 8192.0), (0.0, 1e12, 2e12)], ids=["unrepresentable-tick", "huge-gap"])
def test_the_matcher_never_spins_on_absurd_timestamps(times: tuple[float, ...]) -> None:
    """A stream given straight to the bank (teaching, eval) is not checked like a file:
    its tick loop must end anyway (it had spun forever on 1e19, where 1e19 + 66.7 == 1e19,
    and for billions of ticks across a gap of 1e12 ms)."""
    import signal

    from mirrorcam.embedding import DIM, Embedding
    from mirrorcam.matching import NeuronBank
    from mirrorcam.templates import builtin_library

    def hung(*_args) -> None:
        raise TimeoutError("the tick loop did not end")

    bank = NeuronBank(builtin_library().templates[:2])
    emb = Embedding(np.zeros(DIM, np.float32), np.ones(DIM, np.float32))
    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    try:
        for t in times:
            bank.update_embedding(0, emb, t)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _npy_bytes(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _with_member(path: Path, name: str, data: bytes, compress: bool = False) -> None:
    """Rewrite the archive with one member replaced by raw ``data`` (a crafted .npy)."""
    with zipfile.ZipFile(path) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    members[f"{name}.npy"] = data
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as archive:
        for member, content in members.items():
            archive.writestr(member, content)


def _declared_only(shape: tuple[int, ...], descr: str = "<f4") -> bytes:
    """A .npy header declaring ``shape`` followed by a few bytes, not the data it promises."""
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue() + b"\0" * 64


def _consistent_giant(path: Path) -> None:
    """Every array declares 2 million frames, consistently, with none of the data."""
    t = 2_000_000
    shapes = {"timestamps_ms": ((t,), "<f8"), "person_ids": ((t, 1), "<i4"), "landmarks": ((t, 1, 33, 3), "<f4"),
              "world": ((t, 1, 33, 3), "<f4"), "visibility": ((t, 1, 33), "<f4"), "presence": ((t, 1, 33), "<f4")}
    for name, (shape, descr) in shapes.items():
        _with_member(path, name, _declared_only(shape, descr))


def _zip_bomb(path: Path) -> None:
    # 128 MB of zeros that deflate to about 130 kB, declared as landmarks: had been
    # inflated in full (a 2 MB bomb used 2 GB) before its shape was looked at.
    with zipfile.ZipFile(path) as archive:
        members = {n: archive.read(n) for n in archive.namelist() if n != "landmarks.npy"}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, content in members.items():
            archive.writestr(member, content)
        with archive.open("landmarks.npy", "w") as bomb:
            bomb.write(_declared_only((2**25, 1, 1, 1))[:-64])
            for _ in range(128):
                bomb.write(bytes(1 << 20))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: _with_member(p, "landmarks", _declared_only((10**9, 1, 33, 3))), r"'landmarks' has shape \(1000000000, 1, 33, 3\)"),
        (_consistent_giant, "too large: 2000000 frames x 1 people"),
        (_zip_bomb, "'landmarks' has shape"),
        (lambda p: _with_member(p, "header", _npy_bytes(np.frombuffer(b"[" * 100_000, np.uint8))), "nested too deeply"),
        (lambda p: _with_member(p, "header", _declared_only((10**12,), "|u1")), "header is over"),
        (lambda p: _with_member(p, "world", _npy_bytes(np.array([object()] * 3))), "pickled objects, which are never loaded"),
        (lambda p: _with_member(p, "world", _declared_only((12, 2, 33, 3), "<U5")), "'world' holds <U5 values"),
    ],
    ids=["huge-declared-shape", "consistent-giant", "zip-bomb", "deep-header", "huge-header", "pickled-array", "string-array"],
)
def test_crafted_archives_are_refused_before_their_data_is_read(tmp_path: Path, damage, message: str) -> None:
    """Each array's .npy header is checked first: a crafted one had given "unexpected
    MemoryError" or "unexpected RecursionError", or used gigabytes before the refusal."""
    import resource

    path = tmp_path / "rec.npz"
    save_recording(path, _recording())
    damage(path)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(RecordingError, match=message):
        load_recording(path)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 64, f"the refusal took {grown_mb:.0f} MB more memory"


@pytest.mark.parametrize(
    ("size", "loads"),
    [((640, 480), True), ((180, 144), True), ((1080, 1920), True), ((7680, 4320), True), ((1, 1), True),
     ((16384, 16384), True), ((6000, 400), True),
     ((16384, 1), False), ((1, 16384), False), ((0, 480), False), ((20000, 10000), False)],
)
def test_frame_size_is_bounded(tmp_path: Path, size: tuple[int, int], loads: bool) -> None:
    # Replay draws on a canvas of this size: 16384 x 16384 (and 16384 x 1, scaled up to
    # 480 px high) had taken 11.6 GB.
    path = tmp_path / "rec.npz"
    save_recording(path, _recording(3))
    _rewrite_header(path, frame_size=list(size))
    if loads:
        assert load_recording(path).frame_size == size
    else:
        with pytest.raises(RecordingError, match=r"rec\.npz: frame_size must be"):
            load_recording(path)
        if size == (20000, 10000):
            return  # (saved scaled down: the test below)
        # ...and nothing mirrorcam writes is a file it cannot read.
        with pytest.raises(RecordingError, match="cannot write .*frame_size must be"):
            save_recording(tmp_path / "again.npz", replace(_recording(3), frame_size=size))
        assert not (tmp_path / "again.npz").exists()


@pytest.mark.parametrize(("size", "stored"), [((20000, 10000), (16384, 8192)), ((40000, 4000), (16384, 1638))])
def test_a_frame_wider_than_the_bound_is_stored_scaled_down(tmp_path: Path, size, stored) -> None:
    # (A panorama's landmarks are normalised: only its shape matters; refused at the save,
    # it had cost a whole pose run.)
    save_recording(tmp_path / "rec.npz", replace(_recording(3), frame_size=size))
    assert load_recording(tmp_path / "rec.npz").frame_size == stored


@pytest.mark.parametrize("change", [{"fps": 2000.0}, {"frames": "far"}], ids=["fps", "timestamps"])
def test_save_refuses_what_loading_would(tmp_path: Path, change) -> None:
    rec = _recording(3)
    if change.get("frames") == "far":
        change = {"frames": tuple(replace(f, timestamp_ms=2e12 + f.timestamp_ms) for f in rec.frames)}
    with pytest.raises(RecordingError, match="cannot write"):
        save_recording(tmp_path / "rec.npz", replace(rec, **change))
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("version", ["1", True, 1.0, None, [1]], ids=repr)
def test_a_version_that_is_not_a_whole_number_is_refused_clearly(tmp_path: Path, version) -> None:
    # "1" had given "is a version 1 recording; this mirrorcam reads version 1" (and true loaded).
    path = tmp_path / "rec.npz"
    save_recording(path, _recording(2))
    _rewrite_header(path, version=version)
    with pytest.raises(RecordingError, match=rf"has version {re.escape(repr(version))} in its header, not a version number"):
        load_recording(path)


_NOT_A_RATE = "header field 'fps' must be a number of frames a second, got "
_NOT_A_SIZE = "header field 'frame_size' must be [width, height] in whole pixels, got "


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"fps": 30.0}, None),
        ({"fps": 30}, None),  # (a whole number is a number)
        ({"fps": 0.1}, None),
        ({"fps": 1000}, None),
        ({"fps": "30"}, _NOT_A_RATE + '"30"'),  # (float() had taken it)
        ({"fps": True}, _NOT_A_RATE + "true"),  # (and this, as 1 fps)
        ({"fps": None}, _NOT_A_RATE + "null"),
        ({"fps": ...}, _NOT_A_RATE + "nothing (no such field)"),
        ({"fps": 1e-300}, "fps must be between 0.1 and 1000, got 1e-300"),  # (replay --out: "OpenCV cannot write video")
        ({"fps": 0.05}, "fps must be between 0.1 and 1000, got 0.05"),
        ({"fps": 1000.5}, "fps must be between 0.1 and 1000, got 1000.5"),
        ({"fps": 10**400}, "fps must be between 0.1 and 1000, got inf"),  # (float() overflows)
        ({"frame_size": [640, 480]}, None),
        ({"frame_size": [True, True]}, _NOT_A_SIZE + "[true, true]"),  # (int() had taken it as 1 x 1)
        ({"frame_size": [640.7, 480.2]}, _NOT_A_SIZE + "[640.7, 480.2]"),  # (and this as 640 x 480)
        ({"frame_size": [640.0, 480.0]}, _NOT_A_SIZE + "[640.0, 480.0]"),  # (mirrorcam has always written integers)
        ({"frame_size": ["640", "480"]}, _NOT_A_SIZE + '["640", "480"]'),
        ({"frame_size": [640, 480, 3]}, _NOT_A_SIZE + "[640, 480, 3]"),
        ({"frame_size": list(range(100))}, _NOT_A_SIZE + "[0, 1, 2, 3"),  # (cut to a line's worth)
        ({"frame_size": ...}, _NOT_A_SIZE + "nothing (no such field)"),
    ],
    ids=lambda v: ("loads" if v is None else "refused") if not isinstance(v, dict) else
    ",".join(f"{k}={'missing' if x is ... else json.dumps(x)[:16]}" for k, x in v.items()),
)
def test_header_fps_and_frame_size_must_be_numbers_in_range(tmp_path: Path, change: dict, error: str | None) -> None:
    path = tmp_path / "rec.npz"
    save_recording(path, _recording(3))
    _rewrite_header(path, **change)
    if error is None:
        loaded = load_recording(path)
        assert (loaded.fps, loaded.frame_size) == (change.get("fps", 30.0), tuple(change.get("frame_size", (640, 480))))
        return
    with pytest.raises(RecordingError) as caught:
        load_recording(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {error}") and "\n" not in message and len(message) < len(str(path)) + 160


@pytest.mark.parametrize(
    ("times", "error"),
    [
        ((0.0, 33.3, 66.7, 100.0), None),
        ((-500.0, -466.7, -433.3, -400.0), None),
        # Equal neighbours (a stalled clock, stamps in whole milliseconds) are kept: the
        # matcher takes the later frame in the earlier one's place.
        ((0.0, 33.0, 33.0, 66.0), None),
        ((100.0, 100.0, 133.0, 166.0), None),
        ((0.0, 33.3, 20.0, 100.0), "timestamps go backwards at frame 2 (20 ms after 33.3 ms)"),
        ((100.0, 66.7, 33.3, 0.0), "timestamps go backwards at frame 1 (66.7 ms after 100 ms)"),
        ((0.0, 0.0, 0.0, 0.0), "timestamps never advance (all 4 frames are at 0 ms)"),
        ((250.0, 250.0, 250.0, 250.0), "timestamps never advance (all 4 frames are at 250 ms)"),
    ],
)
def test_timestamps_that_go_backwards_or_never_advance_are_refused(tmp_path: Path, times, error: str | None) -> None:
    """Both had loaded, and replay had said "0 firings" of a recording that holds some."""
    original = _recording(4)
    rec = replace(original, frames=tuple(replace(f, timestamp_ms=t) for f, t in zip(original.frames, times)))
    path = tmp_path / "rec.npz"
    save_recording(path, original)
    _rewrite_arrays(path, timestamps_ms=np.array(times))
    if error is None:
        assert [f.timestamp_ms for f in load_recording(path).frames] == list(times)
        save_recording(tmp_path / "again.npz", rec)
        return
    with pytest.raises(RecordingError, match=rf"^{re.escape(f'{path}: {error}')}$"):
        load_recording(path)
    # ...and mirrorcam writes no such file.
    with pytest.raises(RecordingError, match=rf"cannot write .*again\.npz: {re.escape(error)}"):
        save_recording(tmp_path / "again.npz", rec)
    assert not (tmp_path / "again.npz").exists()


@pytest.mark.parametrize(
    ("damage", "needle"),
    [(lambda p: _rewrite_header(p, fps="30"), "header field 'fps' must be a number"),
     (lambda p: _rewrite_arrays(p, timestamps_ms=np.arange(4)[::-1] * 33.3), "timestamps go backwards at frame 1")],
    ids=["fps-text", "times-backwards"],
)
def test_replay_says_a_bad_recording_in_one_line(tmp_path: Path, damage, needle: str) -> None:
    from conftest import assert_one_line_error, run_cli

    path = tmp_path / "rec.npz"
    save_recording(path, _recording(4))
    damage(path)
    assert_one_line_error(run_cli("-q", "replay", "--no-window", path), str(path), needle)


@pytest.mark.parametrize(
    ("change", "needle"),
    [("nan-time", "timestamps must be finite"), ("inf-landmark", "array 'landmarks' holds values outside"),
     ("visibility-2", "array 'visibility' holds values outside")],
)
def test_save_refuses_every_value_loading_would(tmp_path: Path, change: str, needle: str) -> None:
    # Only the frame count, rate, size and the times' bound were checked on saving: a NaN
    # time or an infinite landmark was written, and the file then refused by load_recording.
    rec = _recording(3)
    last = rec.frames[-1]
    person = _person(0, 99)
    if change == "nan-time":
        last = replace(last, timestamp_ms=float("nan"))
    elif change == "inf-landmark":
        landmarks = person.landmarks.copy()
        landmarks[5, 0] = np.inf
        last = replace(last, persons=(replace(person, landmarks=landmarks),))
    else:
        last = replace(last, persons=(replace(person, visibility=np.full(33, 2.0, np.float32)),))
    with pytest.raises(RecordingError, match=rf"cannot write .*rec\.npz: {needle}"):
        save_recording(tmp_path / "rec.npz", replace(rec, frames=rec.frames[:-1] + (last,)))
    assert not list(tmp_path.iterdir())


def test_the_flipped_landmarks_of_a_recording_are_mirrored(tmp_path: Path) -> None:
    # clip_landmarks(flip=True) had returned a recording as it was: eval's flip variant of a
    # manifest of recordings was the original again.
    from mirrorcam.pipeline import clip_landmarks

    path = tmp_path / "rec.npz"
    save_recording(path, _recording(4))
    plain = clip_landmarks(path)
    flipped = clip_landmarks(path, flip=True, cache_dir=tmp_path / "cache")
    assert len(flipped) == len(plain) and flipped.fps == plain.fps
    for a, b in zip(plain.frames, flipped.frames):
        assert b.timestamp_ms == a.timestamp_ms and [p.id for p in b.persons] == [p.id for p in a.persons]
        for p, q in zip(a.persons, b.persons):
            expected = p.mirrored()
            np.testing.assert_allclose(q.landmarks, expected.landmarks)
            np.testing.assert_allclose(q.world, expected.world)
            np.testing.assert_allclose(q.visibility, expected.visibility)
    assert any(f.persons for f in flipped.frames)
    assert not (tmp_path / "cache").exists()  # (a recording is never run through the model, nor cached)


@pytest.mark.parametrize("failure, blamed", [("read", "missing.bin"), ("write", "out.bin")])
def test_an_atomic_write_blames_the_file_that_failed(tmp_path: Path, failure: str, blamed: str) -> None:
    """An error reading another file inside the block had been said as "cannot write to OUT"."""
    import errno

    from mirrorcam.errors import MirrorcamError
    from mirrorcam.fileio import atomic_write

    out = tmp_path / "out.bin"
    out.write_bytes(b"old")
    with pytest.raises((OSError, MirrorcamError)) as caught:
        with atomic_write(out) as handle:
            handle.write(b"new")
            if failure == "read":
                (tmp_path / "missing.bin").read_bytes()
            else:
                raise OSError(errno.ENOSPC, "No space left on device")
    assert blamed in str(caught.value) and (failure == "write") == isinstance(caught.value, MirrorcamError)
    assert out.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["out.bin"]
