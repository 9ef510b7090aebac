"""The command line end to end, in real subprocesses: help, extract, replay, bad input."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from mirrorcam.cli import MODES
from mirrorcam.recording import load_recording
from mirrorcam.sources import VideoFileSource

from conftest import assert_one_line_error, far_away, make_empty_dir, make_text_named_mp4, run_cli

WAVE = "omkarnagarkar55_HAR/wave.mp4"


@pytest.mark.parametrize("mode", MODES)
def test_every_subcommand_has_help(mode: str) -> None:
    proc = run_cli(mode, "--help")
    assert proc.returncode == 0, proc.stderr
    assert f"usage: mirrorcam {mode}" in proc.stdout


def test_top_level_help_lists_the_modes() -> None:
    proc = run_cli("--help")
    assert proc.returncode == 0
    for mode in MODES:
        assert mode in proc.stdout


def _write_video(path: Path, frames: list[np.ndarray], fps: float = 10.0) -> Path:
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if path.suffix == ".avi" else "mp4v"))
    writer = cv2.VideoWriter(str(path), fourcc, fps, (frames[0].shape[1], frames[0].shape[0]))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def _nobody(tmp: Path) -> Path:
    # An empty room: a smooth gradient with a little noise, no person anywhere.
    rng = np.random.default_rng(1)
    base = np.tile(np.linspace(60, 200, 320, dtype=np.float32), (240, 1))[..., None].repeat(3, axis=2)
    frames = [np.clip(base + rng.normal(0, 3, base.shape), 0, 255).astype(np.uint8) for _ in range(12)]
    return _write_video(tmp / "empty_room.avi", frames)


def _bad_recording(tmp: Path) -> Path:
    path = tmp / "broken.npz"
    path.write_bytes(b"PK\x03\x04 definitely not a complete archive")
    return path


@pytest.mark.parametrize(
    ("make", "needles"),
    [
        (lambda tmp: tmp / "missing.mp4", ("no such file",)),
        (make_text_named_mp4, ("not a readable video",)),
        (make_empty_dir, ("contains no clips",)),
        (_nobody, ("no person found",)),
        (_bad_recording, ("broken.npz",)),
    ],
    ids=["missing-path", "text-named-mp4", "empty-folder", "nobody-in-clip", "bad-recording"],
)
def test_replay_bad_input_gives_one_clear_line(tmp_path: Path, pose_model, make, needles) -> None:
    proc = run_cli("replay", make(tmp_path), "--no-window", "--events", tmp_path / "events.jsonl")
    assert_one_line_error(proc, *needles)


def _truncated_wave(tmp_path: Path, clip) -> Path:
    """The first 30 frames of the HAR wave as an AVI cut off half-way through its bytes."""
    cap = cv2.VideoCapture(str(clip(WAVE)))
    frames = [cap.read()[1] for _ in range(30)]
    cap.release()
    full = _write_video(tmp_path / "full.avi", frames)
    cut = tmp_path / "cut.avi"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    return cut


def test_truncated_video_is_replayed_as_far_as_it_goes(tmp_path: Path, clip, pose_model) -> None:
    cut = _truncated_wave(tmp_path, clip)
    proc = run_cli("replay", cut, "--no-window", "--no-templates", "--events", tmp_path / "cut.jsonl")
    assert "Traceback" not in proc.stderr
    assert proc.returncode == 0, proc.stderr
    lines = (tmp_path / "cut.jsonl").read_text().splitlines()
    assert 5 <= len(lines) < 30
    assert "truncated" in proc.stderr


def test_a_truncated_video_is_said_to_be_so_also_from_the_landmark_cache(tmp_path: Path, clip, pose_model,
                                                                           isolated_cache: Path) -> None:
    """Extract (like teach and eval) reads the landmark cache: the warning had been printed
    on the run that decoded the clip only."""
    cut = _truncated_wave(tmp_path, clip)
    for run in ("decoded", "cached"):
        proc = run_cli("extract", cut, "-o", tmp_path / f"{run}.npz", env={"MIRRORCAM_CACHE": str(isolated_cache)})
        assert proc.returncode == 0, proc.stderr
        said = [line for line in proc.stderr.splitlines() if "decoding stopped after" in line]
        assert len(said) == 1 and said[0].endswith(" of 30 frames (truncated or damaged file?)"), (run, proc.stderr)
        assert len(list(isolated_cache.glob("*.npz"))) == 1


def test_extract_writes_a_recording_and_caches_the_clip(tmp_path: Path, clip, pose_model, isolated_cache: Path) -> None:
    out = tmp_path / "wave.npz"
    proc = run_cli("extract", clip(WAVE), "-o", out, env={"MIRRORCAM_CACHE": str(isolated_cache)})
    assert proc.returncode == 0, proc.stderr
    recording = load_recording(out)
    assert len(recording) == 125 and recording.fps == pytest.approx(10.0)
    assert recording.person_ratio() > 0.9
    cached = list(isolated_cache.glob("*.npz"))
    assert len(cached) == 1
    from mirrorcam.pipeline import is_cached
    from mirrorcam.pose import PoseEstimatorOptions

    assert is_cached(clip(WAVE), PoseEstimatorOptions(), cache_dir=isolated_cache)  # (what eval's auto flip source asks)
    assert not is_cached(clip(WAVE), PoseEstimatorOptions(), flip=True, cache_dir=isolated_cache)
    stamp = cached[0].stat().st_mtime_ns
    # Second run: served from the cache, so MediaPipe is never asked.  Proof: a models
    # folder with the same manifest (the same model, so the same cache key) but no bundle.
    manifest_only = tmp_path / "manifest-only"
    manifest_only.mkdir()
    shutil.copy(pose_model.parent / "manifest.json", manifest_only / "manifest.json")
    proc = run_cli(
        "extract", clip(WAVE), "-o", tmp_path / "again.npz",
        env={"MIRRORCAM_CACHE": str(isolated_cache), "MIRRORCAM_MODELS": str(manifest_only)},
    )
    assert proc.returncode == 0, proc.stderr
    assert cached[0].stat().st_mtime_ns == stamp and len(list(isolated_cache.glob("*.npz"))) == 1
    assert load_recording(tmp_path / "again.npz").frames[50].persons[0].world.tolist() == recording.frames[50].persons[0].world.tolist()


def test_a_landmark_cache_that_cannot_be_written_costs_nothing_but_time(tmp_path: Path, clip, pose_model) -> None:
    """A cache under a file (or read-only, or full): the extract had failed after its pose
    run, without writing the recording asked for."""
    (tmp_path / "afile").write_text("in the way\n")
    out = tmp_path / "wave.npz"
    proc = run_cli("extract", clip(WAVE), "-o", out, env={"MIRRORCAM_CACHE": str(tmp_path / "afile" / "cache")})
    assert proc.returncode == 0, proc.stderr
    assert len(load_recording(out)) == 125
    assert "could not cache the landmarks of" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize(("flag", "name", "needles"), [
    ("--out", "annotated.mp4", ("could not write video", "nothing written")),
    ("--out", "annotated.avi", ("could not write video", "nothing written")),  # (a cut avi says 0 frames)
    ("--out", "annotated.mkv", ("could not write video", "nothing written")),  # (a cut mkv, a negative count)
    ("--events", "events.jsonl", ("cannot write events to", "events.jsonl")),
])
def test_an_output_cut_short_by_a_full_disk_does_not_replace_the_users_file(tmp_path: Path, flag, name, needles) -> None:
    """The disk fills up while an output is written (here: a file-size limit, which fails
    the writes as a full disk does).  OpenCV's writer reports nothing: a truncated mp4 with
    no index had replaced the user's video, with exit code 0; the events file's error had
    not named the file ("No space left on device")."""
    import resource
    import signal
    import subprocess
    import sys

    from conftest import REPO

    out = tmp_path / name
    out.write_bytes(b"the user's earlier file\n")

    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)
        resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))

    proc = subprocess.run(
        [sys.executable, "-m", "mirrorcam", "replay", str(REPO / "recordings" / "observed_2_squat.npz"),
         flag, str(out), "--no-window"],
        capture_output=True, text=True, timeout=300, cwd=REPO, preexec_fn=limit_file_size,
    )
    assert_one_line_error(proc, *needles)
    assert out.read_bytes() == b"the user's earlier file\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary file left


def test_replay_writes_annotated_video_and_events(tmp_path: Path, clip, pose_model) -> None:
    out, events = tmp_path / "wave_annotated.mp4", tmp_path / "wave.jsonl"
    proc = run_cli("replay", clip(WAVE), "--out", out, "--events", events, "--no-window")
    assert proc.returncode == 0, proc.stderr
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 125
    ok, first = cap.read()
    cap.release()
    assert ok and first.shape[:2] == (480, 480)  # the 420 x 420 clip, scaled up to 480 lines for the bars
    records = [json.loads(line) for line in events.read_text().splitlines()]
    frames = [r for r in records if r["type"] == "frame"]
    assert len(frames) == 125
    assert sum(bool(r["persons"]) for r in frames) > 110
    person = next(r["persons"][0] for r in frames if r["persons"])
    assert set(person) >= {"id", "center", "bbox", "visibility"}
    fired = [r for r in records if r["type"] == "fire"]
    for fire in fired:
        assert set(fire) >= {"t", "person", "template", "score", "start", "end"}
    # The clip waves with one hand, then with both: the wave neurons fire, and only they
    # (the loop above had passed with no firing at all).
    from collections import Counter

    got = Counter(f["template"] for f in fired)
    assert got["wave_one_hand"] >= 1 and set(got) <= {"wave_one_hand", "wave_both_hands"}, got
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temporary files left"


def test_replay_of_a_folder_and_of_a_recording(tmp_path: Path, clip, pose_model) -> None:
    folder = tmp_path / "clips"
    folder.mkdir()
    shutil.copy(clip("bward_site/waving.mp4"), folder / "a_waving.mp4")
    proc = run_cli("extract", clip(WAVE), "-o", folder / "b_wave.npz")
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("replay", folder, "--out", tmp_path / "out", "--events", tmp_path / "events", "--no-window")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_waving.mp4", "b_wave.mp4"]
    assert sorted(p.name for p in (tmp_path / "events").iterdir()) == ["a_waving.jsonl", "b_wave.jsonl"]
    lines = (tmp_path / "events" / "b_wave.jsonl").read_text().splitlines()
    assert sum(json.loads(line)["type"] == "frame" for line in lines) == 125


def _key_with_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, manifest: dict) -> str:
    from mirrorcam.pipeline import cache_key
    from mirrorcam.pose import PoseEstimatorOptions

    models = tmp_path / name
    models.mkdir()
    (models / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setenv("MIRRORCAM_MODELS", str(models))
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"the same clip bytes every time")
    return cache_key(clip, PoseEstimatorOptions(model_variant="full"))


_A = {"file": "pose_landmarker_full.task", "sha256": "a" * 64, "origin": "test"}
_B = {**_A, "sha256": "b" * 64}


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        ({"full": _A}, {"full": _A}, True),
        ({"full": _A}, {"full": _B}, False),
        ({"full": _A}, {}, False),
        ({"full": _A}, {"full": _A, "lite": _B}, True),
    ],
    ids=["same-model", "replaced-model", "unprovisioned", "other-variant-changed"],
)
def test_the_landmark_cache_key_follows_the_provisioned_model(tmp_path: Path, monkeypatch, first, second, same) -> None:
    # A bundle replaced by another one of the same variant gives other landmarks.
    k1 = _key_with_manifest(tmp_path, monkeypatch, "one", first)
    k2 = _key_with_manifest(tmp_path, monkeypatch, "two", second)
    assert (k1 == k2) is same


def test_the_landmark_cache_key_follows_an_explicit_model_file(tmp_path: Path) -> None:
    from mirrorcam.pipeline import cache_key
    from mirrorcam.pose import PoseEstimatorOptions

    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"clip")
    model = tmp_path / "model.task"
    model.write_bytes(b"one model")
    first = cache_key(clip, PoseEstimatorOptions(model_path=str(model)))
    assert cache_key(clip, PoseEstimatorOptions(model_path=str(model))) == first
    model.write_bytes(b"another model, other size")
    assert cache_key(clip, PoseEstimatorOptions(model_path=str(model))) != first


# --------------------------------------------------------------------------- outputs and odd inputs
# Found by feeding the command line odd inputs on purpose (session 10): each was a traceback,
# a hang or a lost file before.

DEMO_RECORDING = Path(__file__).resolve().parent.parent / "recordings" / "self_demo.npz"


def _recording_with(tmp: Path, name: str, **changes) -> Path:
    """A copy of the demo recording with some arrays or header fields replaced."""
    with np.load(DEMO_RECORDING, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    header = json.loads(arrays["header"].tobytes().decode("utf-8"))
    header.update(changes.pop("header", {}))
    arrays["header"] = np.frombuffer(json.dumps(header).encode("utf-8"), np.uint8)
    arrays.update(changes)
    path = tmp / name
    np.savez(path, **arrays)
    return path


def _with_value(name: str, value: float) -> np.ndarray:
    """The demo recording's array ``name`` with one value of its first person replaced."""
    with np.load(DEMO_RECORDING, allow_pickle=False) as data:
        array = data[name].copy()
    array[len(array) // 2, 0, 15] = value  # the left wrist, mid-clip
    return array


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda t: _recording_with(t, "fps_inf.npz", header={"fps": float("inf")}), "fps"),
        (lambda t: _recording_with(t, "huge.npz", header={"frame_size": [10 ** 9, 10]}), "frame_size"),
        (lambda t: _recording_with(t, "strings.npz", timestamps_ms=np.array(["a"] * len(np.load(DEMO_RECORDING)["timestamps_ms"]))), "timestamps_ms"),
        (lambda t: _recording_with(t, "inf_landmarks.npz", landmarks=_with_value("landmarks", np.inf)), "landmarks"),
        (lambda t: _recording_with(t, "nan_world.npz", world=_with_value("world", np.nan)), "world"),
        (lambda t: _recording_with(t, "visibility5.npz", visibility=_with_value("visibility", 5.0)), "visibility"),
    ],
    ids=["infinite-fps", "huge-frame", "text-timestamps", "infinite-landmark", "nan-world", "visibility-above-1"],
)
def test_a_recording_with_impossible_values_is_one_clear_line(tmp_path: Path, make, needle) -> None:
    proc = run_cli("replay", make(tmp_path), "--no-window", "--out", tmp_path / "x.mp4", timeout=120)
    assert_one_line_error(proc, needle)
    assert not any(p.name.startswith(".x") for p in tmp_path.iterdir()), "a temporary file was left behind"


def test_replay_refuses_to_write_over_its_own_input(tmp_path: Path) -> None:
    rec = tmp_path / "rec.npz"
    shutil.copy(DEMO_RECORDING, rec)
    before = rec.read_bytes()
    assert_one_line_error(run_cli("replay", rec, "--no-window", "--events", rec), "overwrite")
    assert_one_line_error(run_cli("replay", rec, "--no-window", "--out", tmp_path / "a.mp4", "--events", tmp_path / "a.mp4"),
                          "overwrite")
    assert rec.read_bytes() == before


@pytest.mark.parametrize("target", ["folder", "under-a-file"])
def test_an_output_that_cannot_be_a_file_is_one_clear_line(tmp_path: Path, target) -> None:
    (tmp_path / "folder").mkdir()
    (tmp_path / "plain.txt").write_text("x")
    out = tmp_path / "folder" if target == "folder" else tmp_path / "plain.txt" / "events.jsonl"
    assert_one_line_error(run_cli("replay", DEMO_RECORDING, "--no-window", "--events", out), "cannot write")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "plain.txt"] and not any((tmp_path / "folder").iterdir())


def test_no_templates_with_templates_is_refused(tmp_path: Path) -> None:
    """A user audit: ``--no-templates --templates DIR`` matched nothing without a word."""
    out = tmp_path / "e.jsonl"
    assert_one_line_error(run_cli("replay", DEMO_RECORDING, "--no-window", "--no-templates", "--templates", tmp_path,
                                  "--events", out), "choose one")
    assert not out.exists()


def test_a_clip_with_nobody_keeps_the_earlier_outputs(tmp_path: Path, pose_model) -> None:
    empty = _nobody(tmp_path)
    old_events, old_rec = tmp_path / "events.jsonl", tmp_path / "rec.npz"
    old_events.write_text("earlier run\n")
    shutil.copy(DEMO_RECORDING, old_rec)
    assert_one_line_error(run_cli("replay", empty, "--no-window", "--events", old_events), "no person")
    assert_one_line_error(run_cli("extract", empty, "-o", old_rec), "no person")
    assert old_events.read_text() == "earlier run\n" and old_rec.read_bytes() == DEMO_RECORDING.read_bytes()


def test_a_template_folder_with_a_non_utf8_or_absurd_file_reports_it_and_goes_on(tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "latin1.json").write_bytes('{"name": "café"}'.encode("latin-1"))
    (folder / "hugeint.json").write_text('{"name": "x", "threshold": ' + "9" * 5000 + "}")
    proc = run_cli("replay", DEMO_RECORDING, "--no-window", "--templates", folder, "--events", tmp_path / "e.jsonl")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "latin1.json" in proc.stderr and "hugeint.json" in proc.stderr


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("path\tlabel\tsubject\nclip.mp4\tcafé\tx\n".encode("latin-1"), "utf-8"),
        (b"path\nclip.mp4\n", "lacks"),
        ("\ufeffpath\tlabel\tsubject\n".encode("utf-8"), "no clips"),  # a BOM is not part of "path"
        (b'path,label,subject\n"' + b"x" * 200_000 + b"\n", "manifest"),
    ],
    ids=["latin-1", "path-only", "bom-header-only", "unclosed-quote"],
)
def test_a_bad_manifest_is_one_clear_line(tmp_path: Path, content: bytes, needle: str) -> None:
    manifest = tmp_path / "m.tsv"
    manifest.write_bytes(content)
    assert_one_line_error(run_cli("eval", manifest, "--no-variants"), needle)


@pytest.mark.parametrize(
    ("flags", "needle"),
    [(["--camera", "-1"], "--camera"), (["--demo", "--seconds", "nan"], "--seconds"), (["--demo", "--seconds", "0"], "--seconds")],
    ids=["negative-camera", "nan-seconds", "zero-seconds"],
)
def test_live_rejects_impossible_numbers_before_opening_anything(tmp_path: Path, flags, needle) -> None:
    assert_one_line_error(run_cli("live", *flags, "--no-window", "--out", tmp_path / "x.mp4", timeout=60), needle)


def test_a_far_person_is_extracted_with_no_native_log_lines(tmp_path: Path, clip, pose_model, isolated_cache: Path) -> None:
    # An empty wall, then a 720p squat shrunk to a third: nobody for the whole picture's
    # detector, so the first landmarks of the process come from the far search's crops,
    # whose first projection prints a MediaPipe warning unless silenced (a later search
    # than the first: the empty frames come before).
    far = tmp_path / "far_squat.mp4"
    with VideoFileSource(clip("be2018_darebee/squat.mp4")) as source:
        writer = cv2.VideoWriter(str(far), cv2.VideoWriter_fourcc(*"mp4v"), source.fps, source.size)
        for i, frame in zip(range(48), source):
            writer.write(far_away(frame.image, 0.35 if i >= 8 else 0.0))
        writer.release()
    out = tmp_path / "far.npz"
    proc = run_cli("extract", far, "-o", out, env={"MIRRORCAM_CACHE": str(isolated_cache)})
    assert proc.returncode == 0, proc.stderr
    frames = load_recording(out).frames
    assert not any(f.persons for f in frames[:8]) and sum(bool(f.persons) for f in frames[8:]) >= 36
    native = [line for line in proc.stderr.splitlines() if not line.startswith("mirrorcam")]
    assert not native, native


@pytest.mark.parametrize(("name", "needle"), [("folder", "it is a folder"), ("rec.txt", "name it rec.npz")])
def test_extract_refuses_an_output_name_it_would_write_elsewhere(tmp_path: Path, name: str, needle: str) -> None:
    # `-o /tmp` had written /tmp.npz beside the folder, `-o rec.txt` rec.txt.npz.
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "folder").mkdir()
    assert_one_line_error(run_cli("extract", "x.mp4", "-o", tmp_path / "work" / name), needle)
    assert [p.name for p in (tmp_path / "work").iterdir()] == ["folder"] and [p.name for p in tmp_path.iterdir()] == ["work"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file of mode 000 (test_sources and test_recording refuse the open by hand)")
@pytest.mark.parametrize(
    "args",
    [
        ("replay", "{video}", "--no-window"),
        ("extract", "{video}", "-o", "{tmp}/out.npz"),
        ("live", "--source", "{video}", "--no-window", "--out", "{tmp}/out.mp4", "--seconds", "1"),
        ("replay", "{recording}", "--no-window"),
    ],
    ids=["replay", "extract", "live-source", "replay-recording"],
)
def test_a_clip_the_user_may_not_read_is_said_so(tmp_path: Path, args) -> None:
    """A chmod 000 clip had been "not a readable video (OpenCV could not decode a frame)" (replay),
    "Permission denied (...)" (extract) and a recording "truncated, or another kind of file"."""
    video = _write_video(tmp_path / "clip.avi", [np.full((48, 64, 3), 90, np.uint8)] * 5)
    recording = tmp_path / "rec.npz"
    shutil.copyfile(DEMO_RECORDING, recording)
    paths = {"video": video, "recording": recording, "tmp": tmp_path}
    args = [arg.format(**paths) for arg in args]
    unreadable = video if str(video) in args else recording
    unreadable.chmod(0)
    try:
        assert_one_line_error(run_cli(*args, timeout=120), f"cannot read {unreadable}: permission denied")
    finally:
        unreadable.chmod(0o644)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.avi", "rec.npz"]  # nothing written


@pytest.mark.parametrize(("args", "name"), [
    (("replay", DEMO_RECORDING, "--no-window", "--out"), "x.mp4/"),
    (("replay", DEMO_RECORDING, "--no-window", "--events"), "e.jsonl/"),
    (("replay", DEMO_RECORDING, "--no-window", "--out"), "x.mp4/."),
    (("live", "--demo", "--no-window", "--seconds", "1", "--out"), "x.mp4/"),
    (("extract", DEMO_RECORDING, "-o"), "rec.npz/"),
    (("eval", "manifest.tsv", "--json"), "report.json/"),
], ids=["replay-out", "replay-events", "replay-out-dot", "live-out", "extract-o", "eval-json"])
def test_an_output_file_named_with_a_trailing_slash_is_refused(tmp_path: Path, args, name) -> None:
    """``Path`` drops the '/': ``--out x.mp4/`` had written the file x.mp4. A name ending in '/'
    names a folder, which a file output is not (a folder of clips' --out is one: next test)."""
    typed = f"{tmp_path}/{name}"  # (as text: a Path drops the '/')
    proc = run_cli(*args, typed, timeout=120)
    ending = name[len(name.rstrip("/.")):]
    assert_one_line_error(proc, f"{typed} names a folder (it ends in '{ending}'), not a file; "
                                f"leave the '{ending}' out to write the file {tmp_path / name.rstrip('/.')}")
    assert list(tmp_path.iterdir()) == []


def test_a_folder_of_clips_writes_into_an_output_named_with_a_trailing_slash(tmp_path: Path) -> None:
    clips = tmp_path / "clips"
    clips.mkdir()
    for name in ("a.npz", "b.npz"):
        shutil.copyfile(DEMO_RECORDING, clips / name)
    proc = run_cli("replay", clips, "--no-window", "--out", f"{tmp_path / 'annotated'}/", timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "annotated").iterdir()) == ["a.mp4", "b.mp4"]


def test_extract_takes_an_output_suffix_in_capitals_and_replay_a_pipe_is_one_clear_error(tmp_path: Path) -> None:
    # `-o REC.NPZ` had been refused ("name it REC.npz") while replay reads .NPZ; a named pipe
    # given to replay had said only "Not a directory".
    import os

    proc = run_cli("extract", DEMO_RECORDING, "-o", tmp_path / "REC.NPZ")
    assert proc.returncode == 0, proc.stderr
    assert len(load_recording(tmp_path / "REC.NPZ")) == len(load_recording(DEMO_RECORDING))
    os.mkfifo(tmp_path / "pipe.mp4")
    assert_one_line_error(run_cli("replay", tmp_path / "pipe.mp4", "--no-window", timeout=60), "neither a file nor a folder")


def test_sigterm_stops_a_replay_like_ctrl_c_and_leaves_no_temporary_file(tmp_path: Path, clip, pose_model) -> None:
    """`timeout`, `kill`, systemd and docker stop send SIGTERM: it unwinds as an interrupt does,
    so the outputs' temporary files go (they had stayed, hidden, beside the outputs)."""
    import signal
    import subprocess
    import sys
    import time

    cmd = [sys.executable, "-m", "mirrorcam", "replay", str(clip("RJ-song_MediapipePy/squat.mp4")), "--no-window",
           "--out", str(tmp_path / "x.mp4"), "--events", str(tmp_path / "x.jsonl")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not any(p.name.startswith(".x") for p in tmp_path.iterdir()) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert proc.poll() is None, "the replay ended before it could be stopped"
    time.sleep(0.5)  # writing
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert err.strip().splitlines()[-1] == "mirrorcam: terminated" and "Traceback" not in err, err
    assert not list(tmp_path.iterdir()), sorted(p.name for p in tmp_path.iterdir())


_SIGNALLING = """
import importlib, os, signal, sys
import mirrorcam.cli as cli
from mirrorcam.matching import NeuronBank
from mirrorcam.sinks import BackgroundWorker

def ctrl_c():
    os.kill(os.getpid(), signal.SIGINT)  # a real signal, through whatever handler is installed
    for _ in range(10**6):  # (Python runs the handler between bytecodes: it comes in here)
        pass

where = sys.argv[1]
if where == "import":  # while the modes are imported, before any command runs
    real_import = importlib.import_module
    def import_module(name, *args):
        if name == "mirrorcam.modes.replay":
            ctrl_c()
        return real_import(name, *args)
    importlib.import_module = import_module
else:  # mid-clip, then twice more while the outputs are closed (Ctrl+C pressed thrice, `timeout`'s second)
    real_update, real_close, real_abort = NeuronBank.update, BackgroundWorker.close, BackgroundWorker.abort
    def update(self, frame):
        if frame.index == 40:
            ctrl_c()
        return real_update(self, frame)
    def again(real):
        def stop(self):
            ctrl_c()
            real(self)
            ctrl_c()
        return stop
    NeuronBank.update = update
    BackgroundWorker.close, BackgroundWorker.abort = again(real_close), again(real_abort)
sys.exit(cli.main(sys.argv[2:]))
"""


@pytest.mark.parametrize("where", ["import", "clean-up"])
def test_ctrl_c_while_starting_or_again_while_cleaning_up_is_one_line(tmp_path: Path, where: str) -> None:
    """A Ctrl+C during the modes' imports (seconds on a busy machine) had printed a 24-69 line
    traceback; a second one during the clean-up, an "Exception ignored in" traceback from a
    generator's or MediaPipe's clean-up.  Later signals are ignored once the first is taken."""
    import subprocess
    import sys

    from conftest import REPO

    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", _SIGNALLING, where, "replay", str(REPO / "recordings" / "observed_2_squat.npz"),
         "--no-window", "--out", str(out / "x.mp4"), "--events", str(out / "x.jsonl")],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert proc.returncode == 130 and proc.stderr.strip() == "mirrorcam: interrupted", (proc.returncode, proc.stderr)
    assert not list(out.iterdir()), sorted(p.name for p in out.iterdir())


@pytest.mark.parametrize(("entry", "restored"), [
    ("main", True),   # an in-process caller (a test, a notebook) can be interrupted again
    ("run", False),   # the console script: a second Ctrl+C cannot break into the exit
])
def test_after_a_ctrl_c_main_gives_the_caller_its_handlers_back(tmp_path: Path, monkeypatch, entry: str, restored: bool) -> None:
    """An interrupted ``main()`` had left SIGINT and SIGTERM ignored for its caller."""
    import os
    import signal
    import sys

    import mirrorcam.cli as cli
    from conftest import REPO
    from mirrorcam.matching import NeuronBank

    real_update = NeuronBank.update

    def update(self, frame):
        if frame.index == 40:
            os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl+C, through main's handler
            for _ in range(10**6):  # (the handler runs between bytecodes: here)
                pass
        return real_update(self, frame)

    monkeypatch.setattr(NeuronBank, "update", update)
    argv = ["replay", str(REPO / "recordings" / "observed_2_squat.npz"), "--no-window", "--events", str(tmp_path / "e.jsonl")]
    monkeypatch.setattr(sys, "argv", ["mirrorcam", *argv])
    mine = {sig: (lambda signum, frame: None) for sig in (signal.SIGINT, signal.SIGTERM)}
    before = {sig: signal.signal(sig, handler) for sig, handler in mine.items()}
    try:
        code = cli.main(argv) if entry == "main" else cli.run()
        after = {sig: signal.getsignal(sig) for sig in mine}
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
    assert code == 130
    assert after == (mine if restored else {sig: signal.SIG_IGN for sig in mine}), after
    assert not (tmp_path / "e.jsonl").exists()


@pytest.mark.parametrize(("flags", "native_shown"), [([], False), (["-v"], True)])
def test_what_native_code_prints_at_the_exit_follows_the_last_line_only_with_v(tmp_path: Path, flags, native_shown) -> None:
    """A Ctrl+C while the pose model was being built had been followed by 4-48 of MediaPipe's
    INFO and WARNING lines, printed by its threads and destructors during the exit.  Here a
    write to descriptor 2 at the exit stands in for them (the timing of a real one varies)."""
    import subprocess
    import sys

    script = ("import atexit, os, sys\n"
              "atexit.register(lambda: os.write(2, b'I0000 native teardown line\\n'))\n"
              "from mirrorcam.cli import run\n"
              f"sys.argv = ['mirrorcam', 'replay', 'nothere.npz', *{flags!r}]\n"
              "raise SystemExit(run())\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert [line for line in lines if line.startswith("mirrorcam: error:")] == ["mirrorcam: error: no such file or folder: nothere.npz"], lines
    assert ("I0000 native teardown line" in lines) is native_shown, lines
    if not native_shown:
        assert len(lines) == 1, lines


@pytest.mark.parametrize("entry", ["main", "run"])
def test_a_ctrl_c_lost_in_a_callback_is_raised_by_the_next_one(tmp_path: Path, monkeypatch, entry: str) -> None:
    """Python may run the signal handler inside a callback whose exceptions it only prints
    (an import lock's clean-up, a destructor): the first Ctrl+C was lost there, and every
    later one ignored, so the replay ran to its end (exit 0, its outputs written)."""
    import os
    import signal
    import sys

    import mirrorcam.cli as cli
    from conftest import REPO
    from mirrorcam.matching import NeuronBank

    real_update = NeuronBank.update

    def ctrl_c():
        os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl+C, through main's handler
        for _ in range(10**6):  # (the handler runs between bytecodes: here)
            pass

    def update(self, frame):
        if frame.index == 20:
            try:
                ctrl_c()
            except KeyboardInterrupt:  # what "Exception ignored in ..." does to it
                pass
        if frame.index == 40:
            ctrl_c()
        return real_update(self, frame)

    monkeypatch.setattr(NeuronBank, "update", update)
    argv = ["replay", str(REPO / "recordings" / "observed_2_squat.npz"), "--no-window", "--events", str(tmp_path / "e.jsonl")]
    monkeypatch.setattr(sys, "argv", ["mirrorcam", *argv])
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = cli.main(argv) if entry == "main" else cli.run()
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
    assert code == 130
    assert not (tmp_path / "e.jsonl").exists()


def test_a_second_interrupt_during_the_clean_up_still_leaves_no_temporary_file(tmp_path: Path, monkeypatch) -> None:
    """Ctrl+C, then Ctrl+C again while the interrupted replay stops its writer thread (or
    systemd's SIGTERM, then its SIGKILL-warning SIGINT): the second had skipped the rest of
    the clean-up, and both outputs' temporary files stayed beside them."""
    from conftest import REPO
    from mirrorcam.matching import NeuronBank
    from mirrorcam.modes.replay import replay_clip
    from mirrorcam.sinks import BackgroundWorker
    from mirrorcam.templates import builtin_library

    class InterruptedBank(NeuronBank):
        def update(self, pose_frame):
            if pose_frame.index == 40:
                raise KeyboardInterrupt  # the first Ctrl+C, mid-clip
            return super().update(pose_frame)

    def again(stop_writer):
        def stop(self):
            stop_writer(self)
            raise KeyboardInterrupt  # the second, just as the writer thread has stopped
        return stop

    monkeypatch.setattr(BackgroundWorker, "close", again(BackgroundWorker.close))
    monkeypatch.setattr(BackgroundWorker, "abort", again(BackgroundWorker.abort))
    with pytest.raises(KeyboardInterrupt):
        replay_clip(REPO / "recordings" / "observed_2_squat.npz", None, InterruptedBank(builtin_library().templates),
                    tmp_path / "x.mp4", tmp_path / "x.jsonl", show=False)
    assert not list(tmp_path.iterdir()), sorted(p.name for p in tmp_path.iterdir())


def test_a_folder_whose_first_clip_has_nobody_prints_no_native_log_lines(tmp_path: Path, clip, pose_model,
                                                                          isolated_cache: Path) -> None:
    # MediaPipe's one-off warning comes with the first landmarks of the process: here the
    # second clip's, after a whole clip of nobody.
    folder = tmp_path / "clips"
    folder.mkdir()
    _nobody(folder)  # empty_room.avi, replayed first
    (folder / "wave.mp4").symlink_to(clip(WAVE))
    proc = run_cli("replay", folder, "--no-window", "--events", tmp_path / "events", env={"MIRRORCAM_CACHE": str(isolated_cache)})
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "events" / "wave.jsonl").exists() and not (tmp_path / "events" / "empty_room.jsonl").exists()
    native = [line for line in proc.stderr.splitlines() if not line.startswith("mirrorcam")]
    assert not native, native
    assert "nothing written for it" in proc.stderr and "empty_room.avi: 12 frames, a person in 0" in proc.stdout
    assert "-> " not in proc.stdout.splitlines()[0]  # nothing was written for the empty room


def test_a_small_clip_is_annotated_at_480_px_and_the_bars_leave_most_of_it_visible() -> None:
    from dataclasses import replace

    from mirrorcam.matching import NeuronBank
    from mirrorcam.modes.replay import annotate
    from mirrorcam.performer import PerformerOptions, perform
    from mirrorcam.templates import builtin_library

    bank = NeuronBank(builtin_library().templates)
    frame = perform("wave_one_hand", PerformerOptions(image_size=(180, 144))).frames[10]
    two = replace(frame, persons=(frame.persons[0], replace(frame.persons[0], id=1)))
    activities = bank.update(two)
    image = np.full((144, 180, 3), 255, np.uint8)  # a white 180 x 144 picture
    out = annotate(replace(two, image=image), activities, (180, 144), {"wave_one_hand": "Wave (one hand)"})
    assert out.shape[:2] == (480, 600)
    untouched = float(np.all(out == 255, axis=2).mean())
    assert untouched > 0.4, untouched  # two people's bars (24 rows) and skeletons: at 144 px they covered it all


def _shifted(frame, dy: float):
    """``frame`` with its people's landmarks moved down by ``dy`` (a share of the height)."""
    from dataclasses import replace

    persons = []
    for person in frame.persons:
        lm = person.landmarks.copy()
        lm[:, 1] += dy
        persons.append(replace(person, landmarks=lm))
    return replace(frame, persons=tuple(persons))


@pytest.mark.parametrize("size", [(202, 360), (400, 720)])  # jj_5.mp4 (shown at 270 x 480); jump.mp4
def test_on_a_portrait_clip_the_bars_leave_the_performer_visible(size) -> None:
    # A 160 px column had covered 60 % of a 270 x 480 frame: the head, shoulders and raised
    # arms of the performer in the middle, in every frame.
    from dataclasses import replace

    from mirrorcam.matching import NeuronBank
    from mirrorcam.modes.replay import BarSide, annotate
    from mirrorcam.performer import PerformerOptions, perform
    from mirrorcam.templates import builtin_library

    templates = builtin_library().templates
    names = {t.name: t.display_name for t in templates}
    bank, sides = NeuronBank(templates), BarSide()
    white = np.full((size[1], size[0], 3), 255, np.uint8)
    # Framed like the real clips: the head near the top, the feet at two thirds of the height.
    frames = perform("jumping_jack", PerformerOptions(image_size=size, camera_distance=1.8)).frames
    for k, frame in enumerate(_shifted(f, -0.3) for f in frames):
        activities, side = bank.update(frame), sides.update(frame)
        drawn = annotate(replace(frame, image=white), activities, size, names, side)
        bare = annotate(replace(frame, image=white), {}, size, names, side)
        h, w = drawn.shape[:2]
        bars = np.any(drawn != bare, axis=2)
        ys, xs = np.nonzero(bars)
        # A column at an edge leaves the middle two thirds (the performer) free, a band
        # along the top or bottom edge three quarters of the height.
        assert xs.max() - xs.min() < w / 3 or ys.max() - ys.min() < h / 4, (k, side, xs.min(), xs.max(), ys.min(), ys.max())
        person = np.any(bare != 255, axis=2)  # skeleton, head and label
        hidden = float((person & bars).sum() / person.sum())
        assert hidden < 0.05, (k, side, hidden)


def test_on_a_portrait_clip_the_bars_start_at_the_bottom_and_move_up_for_someone_under_them() -> None:
    from mirrorcam.modes.replay import BarSide
    from mirrorcam.performer import PerformerOptions, perform

    frames = perform("wave_one_hand", PerformerOptions(image_size=(270, 480), camera_distance=1.8)).frames
    high, low = _shifted(frames[10], -0.3), _shifted(frames[10], 0.25)  # feet at 0.6; past the bottom
    sides = BarSide(patience=15)
    assert {sides.update(high) for _ in range(30)} == {"bottom"}
    assert [sides.update(low) for _ in range(15)] == ["bottom"] * 14 + ["top"]
    assert sides.update(high) == "top"  # (the band under the feet now; the head clear of the top one)
    wide = perform("wave_one_hand", PerformerOptions(image_size=(640, 480))).frames[10]
    assert BarSide().update(wide) == "left"  # landscape frames keep their column at the left


def test_the_band_stays_under_the_feet_of_someone_filling_the_frame_not_over_their_face():
    """A man filling a square clip, waving both hands above his head, his feet at the bottom
    edge (the HAR wave): by the boxes' areas under each band the band had moved from his feet
    to his face and hands."""
    from mirrorcam.modes.replay import BarSide
    from mirrorcam.performer import PerformerOptions, perform

    frames = perform("wave_both_hands", PerformerOptions(image_size=(480, 480), camera_distance=1.6, repeats=3)).frames
    top = min(f.persons[0].bbox[1] for f in frames)
    framed = [_shifted(f, 0.02 - top) for f in frames]  # the hands up at the top edge, the feet at the bottom
    assert max(f.persons[0].bbox[3] for f in framed) > 0.97
    sides = BarSide()
    assert {sides.update(f) for f in framed} == {"bottom"}


def _moved_to(frame, x: float):
    """``frame`` with its person's landmarks shifted so that their box starts at ``x`` (0-1)."""
    from dataclasses import replace

    person = frame.persons[0]
    lm = person.landmarks.copy()
    lm[:, 0] += x - person.bbox[0]
    return replace(frame, persons=(replace(person, landmarks=lm),))


def test_the_bars_move_away_from_a_person_under_them_and_not_at_every_step() -> None:
    from dataclasses import replace

    from mirrorcam.matching import NeuronBank
    from mirrorcam.modes.replay import BarSide, annotate
    from mirrorcam.performer import PerformerOptions, perform
    from mirrorcam.templates import builtin_library

    frame = perform("wave_one_hand", PerformerOptions(image_size=(320, 240))).frames[10]
    left, middle, right = _moved_to(frame, 0.02), _moved_to(frame, 0.4), _moved_to(frame, 0.75)
    sides = BarSide(patience=15)
    assert [sides.update(left) for _ in range(15)] == ["left"] * 14 + ["right"]
    assert sides.update(middle) == "right" and sides.update(left) == "right"  # a step back: no jump
    assert {sides.update(right) for _ in range(14)} == {"right"} and sides.update(right) == "left"
    # Drawn at the right edge, the bars leave the person at the left alone.
    activities = NeuronBank(builtin_library().templates).update(left)
    white = np.full((240, 320, 3), 255, np.uint8)
    for side in ("left", "right"):
        out = annotate(replace(left, image=white), activities, (320, 240), None, side)
        w = out.shape[1]
        zone = out[:150, : int(0.25 * w)], out[:150, int(0.75 * w):]
        untouched = [float(np.all(z == 255, axis=2).mean()) for z in zone]
        near, far = untouched if side == "left" else untouched[::-1]
        assert near < 0.5 < far, (side, untouched)


def test_verbosity_flags_go_before_or_after_the_command() -> None:
    for args in (["-q", "replay", DEMO_RECORDING, "--no-window"], ["replay", DEMO_RECORDING, "--no-window", "-q"],
                 ["models", "list", "-q"]):
        proc = run_cli(*args)
        assert proc.returncode == 0 and not proc.stderr, proc.stderr


def test_a_folder_goes_on_past_a_bad_clip_and_fails_when_all_are_bad(tmp_path: Path) -> None:
    folder = tmp_path / "clips"
    folder.mkdir()
    make_text_named_mp4(folder)
    out = tmp_path / "events"
    mixed = folder / "demo.npz"
    shutil.copy(DEMO_RECORDING, mixed)
    proc = run_cli("replay", folder, "--no-window", "--events", out)
    bad = str(folder / "holiday.mp4")
    # The clip named once (the reason names it: "skipping X: X is not ..." had said it twice).
    skipped = [line for line in proc.stderr.splitlines() if "skipping" in line]
    assert proc.returncode == 1 and len(skipped) == 1 and skipped[0].count(bad) == 1, proc.stderr
    assert skipped[0].startswith(f"mirrorcam: {bad} ") and skipped[0].endswith("; skipping it"), proc.stderr
    assert [p.name for p in out.iterdir()] == ["demo.jsonl"]
    mixed.unlink()
    (folder / "other.avi").write_bytes(b"not a video either")
    proc = run_cli("replay", folder, "--no-window", "--events", tmp_path / "none")
    assert proc.returncode == 2 and proc.stderr.count("; skipping it") == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("mirrorcam: error: none of the 2 clips")
    assert not (tmp_path / "none").exists() or not list((tmp_path / "none").iterdir())


def test_clips_of_a_folder_whose_outputs_would_share_a_name_are_refused_before_any_work(tmp_path: Path) -> None:
    folder = tmp_path / "clips"
    folder.mkdir()
    shutil.copy(DEMO_RECORDING, folder / "wave.npz")  # what `extract wave.mp4 -o wave` writes beside its clip
    (folder / "wave.mp4").write_bytes(b"a clip")
    assert_one_line_error(run_cli("replay", folder, "--no-window", "--events", tmp_path / "events"), "same name")
    assert not (tmp_path / "events").exists()
    (tmp_path / "afile").write_text("x")
    (folder / "wave.mp4").unlink()
    (folder / "other.npz").write_bytes(DEMO_RECORDING.read_bytes())
    assert_one_line_error(run_cli("replay", folder, "--no-window", "--events", tmp_path / "afile"), "is a file")


def test_outputs_into_the_clips_own_folder_that_would_replace_one_are_refused_before_any_work(tmp_path: Path) -> None:
    """``replay clips --out clips`` with a.npz and b.mp4 there: a.mp4 had been written into
    the clips' folder before b.mp4's turn found it would replace the clip."""
    folder = tmp_path / "clips"
    folder.mkdir()
    shutil.copy(DEMO_RECORDING, folder / "a.npz")
    (folder / "b.mp4").write_bytes(b"a clip")
    assert_one_line_error(run_cli("replay", folder, "--no-window", "--out", folder), "would overwrite the clip being replayed")
    assert sorted(p.name for p in folder.iterdir()) == ["a.npz", "b.mp4"]


# --------------------------------------------------------------------------- a first-time user's audit
# Each of these went by without a word before (found by a first-time user's read of the README).

def _folder_with_a_recording(tmp: Path) -> Path:
    folder = tmp / "clips"
    folder.mkdir()
    shutil.copy(DEMO_RECORDING, folder / "demo.npz")
    return folder


@pytest.mark.parametrize(("flag", "name"), [("--out", "annotated.mp4"), ("--events", "events.jsonl"), ("--out", "a.AVI")])
def test_a_folder_of_clips_with_an_output_named_like_a_file_is_refused_before_any_work(tmp_path: Path, flag, name) -> None:
    # `--out annotated.mp4` for a folder had made a folder called annotated.mp4.
    folder = _folder_with_a_recording(tmp_path)
    proc = run_cli("replay", folder, "--no-window", flag, tmp_path / name)
    assert_one_line_error(proc, f"{flag} {tmp_path / name}", f"{flag} names a folder", "e.g.")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clips"]
    # A folder of that name that exists already is the user's choice, and is written into.
    (tmp_path / name).mkdir()
    proc = run_cli("replay", folder, "--no-window", flag, tmp_path / name)
    assert proc.returncode == 0, proc.stderr
    assert [p.name for p in (tmp_path / name).iterdir()] == ["demo" + (".mp4" if flag == "--out" else ".jsonl")]


def test_a_replay_that_writes_nothing_says_so(tmp_path: Path) -> None:
    proc = run_cli("replay", DEMO_RECORDING, "--no-window")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.splitlines() == ["mirrorcam: nothing written: give --out and/or --events to keep the annotated "
                                        "video or the events"], proc.stderr
    proc = run_cli("replay", DEMO_RECORDING, "--no-window", "--events", tmp_path / "e.jsonl")
    assert proc.returncode == 0 and "nothing written" not in proc.stderr, proc.stderr


def test_a_folder_of_folders_says_that_subfolders_are_not_searched(tmp_path: Path) -> None:
    top = tmp_path / "top"
    (top / "a_empty").mkdir(parents=True)
    _folder_with_a_recording(top)  # top/clips/demo.npz
    assert_one_line_error(run_cli("replay", top, "--no-window"), "subfolders are not searched", f"e.g. {top / 'clips'}")
    (top / "clips" / "demo.npz").unlink()
    proc = run_cli("replay", top, "--no-window")
    assert_one_line_error(proc, "subfolders are not searched")
    assert "e.g." not in proc.stderr  # no subfolder to suggest


def test_one_firing_is_said_in_the_singular(tmp_path: Path) -> None:
    from mirrorcam.performer import PerformerOptions, perform
    from mirrorcam.recording import save_recording

    rec = tmp_path / "squat.npz"
    save_recording(rec, perform("squat", PerformerOptions(repeats=1)))  # one squat: one firing
    events = tmp_path / "e.jsonl"
    proc = run_cli("replay", rec, "--no-window", "--events", events, env={"MIRRORCAM_TEMPLATES": str(tmp_path / "none")})
    assert proc.returncode == 0, proc.stderr
    assert sum(json.loads(line)["type"] == "fire" for line in events.read_text().splitlines()) == 1
    assert ", 1 firing, " in proc.stdout, proc.stdout


def test_the_readme_kiosk_table_is_the_config_reference() -> None:
    # The README's rows had drifted from `kiosk --config-reference` (display.width).
    proc = run_cli("kiosk", "--config-reference")
    assert proc.returncode == 0, proc.stderr
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8").splitlines()
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| `")]
    assert rows and [line for line in rows if line not in readme] == []


@pytest.mark.parametrize(
    "argv, needles",
    [
        (["teach", "x", "--from", "a.mp4", "--templates", "d"], ["unrecognized arguments: --templates d", "mirrorcam teach --help"]),
        (["eval", "m.tsv", "--protocol", "LOSO"], ["invalid choice: 'LOSO'", "mirrorcam eval --help"]),
        (["models", "lst"], ["invalid choice: 'lst'", "mirrorcam models --help"]),
        (["bogus"], ["invalid choice: 'bogus'"]),
        (["replay"], ["required: path", "mirrorcam replay --help"]),
    ],
)
def test_a_bad_option_is_one_line_that_names_the_commands_help(argv, needles) -> None:
    # argparse's own errors had printed a usage block (the top-level one for an unknown
    # option of a command) above the error line.
    assert_one_line_error(run_cli(*argv), *needles)


@pytest.mark.parametrize("command", ["replay", "extract", "out", "url"])
def test_a_file_name_that_is_not_utf8_is_one_clear_error_not_a_crash(tmp_path: Path, command: str) -> None:
    """A Latin-1 name (``wave\\xe9.mp4``): OpenCV had died of a segmentation fault on it."""
    import os

    from conftest import REPO

    folder = os.fsencode(str(tmp_path))
    latin1 = os.path.join(folder, b"wave\xe9.mp4")
    with open(latin1, "wb") as handle:
        handle.write(b"\x00\x00\x00\x18ftypmp42 not really a video")
    name = os.fsdecode(latin1)
    recording = str(REPO / "recordings" / "observed_2_squat.npz")
    argv = {
        "replay": ("replay", name, "--no-window"),
        "extract": ("extract", name, "-o", tmp_path / "out.npz"),
        "out": ("replay", recording, "--out", os.fsdecode(os.path.join(folder, b"annotated\xe9.mp4")), "--no-window"),
        "url": ("live", "--source", os.fsdecode(b"http://127.0.0.1:9/caf\xe9.mjpg"), "--no-window", "--out", tmp_path / "x.mp4"),
    }[command]
    proc = run_cli(*argv)
    assert_one_line_error(proc, "not valid UTF-8")
    assert sorted(os.listdir(folder)) == [b"wave\xe9.mp4"]  # nothing written, no temporary file


def test_log_lines_are_heard_while_the_pose_stage_silences_native_stderr() -> None:
    """The kiosk's camera runs MediaPipe in a thread that points descriptor 2 at /dev/null
    (MediaPipe's C++ log lines); lines logged from the main thread meanwhile had been lost."""
    import subprocess
    import sys

    from conftest import REPO

    code = (
        "import logging\n"
        "from mirrorcam.cli import configure_logging\n"
        "from mirrorcam.pose import quiet_native_stderr\n"
        "configure_logging()\n"
        "from mirrorcam.cli import _final_line\n"
        "with quiet_native_stderr():\n"
        "    logging.getLogger('mirrorcam.kiosk').warning('camera is back')\n"
        "    _final_line('mirrorcam: interrupted')  # (the command's last line, the pose thread still inside MediaPipe)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == ["mirrorcam: camera is back", "mirrorcam: interrupted"]


def test_a_cache_entry_under_another_clips_key_is_not_taken_for_it(tmp_path: Path, pose_model, caplog) -> None:
    """A cache entry copied (or restored) under another clip's key had been served for that
    clip without a word: an eval then scored one clip by another's landmarks."""
    from mirrorcam.pipeline import cache_key, clip_landmarks
    from mirrorcam.pose import PoseEstimatorOptions

    clips = []
    for name, grey in (("a.avi", 60), ("b.avi", 200)):
        writer = cv2.VideoWriter(str(tmp_path / name), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
        for _ in range(4):
            writer.write(np.full((48, 64, 3), grey, np.uint8))
        writer.release()
        clips.append(tmp_path / name)
    cache, options = tmp_path / "cache", PoseEstimatorOptions()
    clip_landmarks(clips[0], options, cache_dir=cache)
    (entry_a,) = cache.glob("*.npz")
    shutil.copy(entry_a, cache / f"{cache_key(clips[1], options)}.npz")
    with caplog.at_level("WARNING"):
        recording = clip_landmarks(clips[1], options, cache_dir=cache)
    assert recording.source == str(clips[1])
    assert "holds the landmarks of another clip" in caplog.text


def test_an_annotated_video_ends_on_the_counts_the_clips_end_settles(tmp_path: Path) -> None:
    """A jumping jack cut off by the clip's end is decided at the end (``finish``): it was in
    the events file but never in the video, whose counts trail by the settle second."""
    from test_live import _cut_jumping_jacks

    from mirrorcam.matching import NeuronBank
    from mirrorcam.modes.replay import FINAL_HOLD_S, _with_final_counts, replay_clip
    from mirrorcam.recording import save_recording
    from mirrorcam.templates import builtin_library

    rec = _cut_jumping_jacks()
    save_recording(tmp_path / "jacks.npz", rec)
    bank = NeuronBank(builtin_library().templates)
    summary = replay_clip(tmp_path / "jacks.npz", None, bank, tmp_path / "jacks.mp4", tmp_path / "jacks.jsonl", show=False)
    fires = [json.loads(line) for line in (tmp_path / "jacks.jsonl").read_text().splitlines() if '"fire"' in line]
    assert summary.firings == len(fires) == 2
    capture = cv2.VideoCapture(str(tmp_path / "jacks.mp4"))
    frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    capture.release()
    assert frames == len(rec) + round(rec.fps * FINAL_HOLD_S)
    # The held frame counts both jacks, the last of which only the end decided.
    bank.reset()
    last = {}
    for frame in rec.frames:
        last = bank.update(frame) or last
    ended = bank.finish()
    (pid,) = last
    jack = last[pid].names.index("jumping_jack")
    assert last[pid].reps[jack] < 2 and _with_final_counts(last, ended)[pid].reps[jack] == 2


def test_the_final_counts_show_a_person_out_of_the_last_frame(tmp_path: Path) -> None:
    """The jumping jacks' performer hidden in the last half second (less than the bank's
    timeout): the jack the end decides had been in no count on the screen, as the last
    frame's activities (none) were all the held frame drew."""
    from dataclasses import replace

    from test_live import _cut_jumping_jacks

    from mirrorcam.matching import NeuronBank
    from mirrorcam.modes.replay import FINAL_HOLD_S, _with_final_counts, replay_clip
    from mirrorcam.recording import save_recording
    from mirrorcam.templates import builtin_library

    rec = _cut_jumping_jacks()
    step, last = 1000.0 / rec.fps, rec.frames[-1]
    hidden = tuple(replace(last, persons=(), index=last.index + i, timestamp_ms=last.timestamp_ms + i * step) for i in range(1, 16))
    rec = replace(rec, frames=rec.frames + hidden)
    save_recording(tmp_path / "jacks.npz", rec)
    bank = NeuronBank(builtin_library().templates)
    replay_clip(tmp_path / "jacks.npz", None, bank, tmp_path / "jacks.mp4", None, show=False)
    capture = cv2.VideoCapture(str(tmp_path / "jacks.mp4"))
    frames = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(image)
    capture.release()
    assert len(frames) == len(rec) + round(rec.fps * FINAL_HOLD_S)
    # The last frame of the clip has nobody and no bars; the held one has the performer's bars.
    assert np.abs(frames[-1].astype(int) - frames[len(rec) - 1]).mean() > 1.0
    # ... with the counts the end settled (two jacks)
    bank.reset()
    latest: dict = {}
    for frame in rec.frames:
        activities = bank.update(frame)
        latest.update(activities)
    assert activities == {}
    ended = bank.finish()
    (pid,) = ended
    final = _with_final_counts(activities, ended, latest)
    assert list(final) == [pid] and final[pid].reps[final[pid].names.index("jumping_jack")] == 2


@pytest.mark.parametrize(
    "flags, heard",
    [
        ((), ["mirrorcam: ours, info", "mirrorcam: theirs, warning"]),  # other libraries' notes from WARNING up
        (("verbose",), ["mirrorcam: ours, info", "mirrorcam: theirs, info", "mirrorcam: theirs, warning"]),
        (("quiet",), []),
    ],
)
def test_other_libraries_info_lines_are_not_said_as_mirrorcams(flags, heard) -> None:
    """Found by a user audit: on a fresh HOME every command began with "mirrorcam: generated
    new fontManager" (matplotlib, imported by MediaPipe, logging at INFO)."""
    import subprocess
    import sys

    from conftest import REPO

    code = (
        "import logging\n"
        "from mirrorcam.cli import configure_logging\n"
        f"configure_logging(verbose={'verbose' in flags}, quiet={'quiet' in flags})\n"
        "logging.getLogger('mirrorcam.teach').info('ours, info')\n"
        "logging.getLogger('matplotlib.font_manager').info('theirs, info')\n"
        "logging.getLogger('matplotlib.font_manager').warning('theirs, warning')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == heard


@pytest.mark.parametrize("size", [(527, 480), (529, 480), (301, 240), (1280, 720)])
def test_a_recordings_canvas_is_the_size_bar_side_reckons_with(size) -> None:
    """A review: a 527 x 480 recording's blank canvas was rounded to 528 px, drawn with a
    column of bars while BarSide, reckoning with 527, had chosen a band."""
    from mirrorcam.containers import PoseFrame
    from mirrorcam.modes.replay import BarSide, _annotated_size, annotate

    frame = PoseFrame(0.0, 0, (), size)
    image = annotate(frame, {}, size)
    assert image.shape[1::-1] == _annotated_size(*size)
    assert BarSide().update(frame) == ("bottom" if image.shape[1] < 528 else "left")


def test_an_events_file_that_cannot_be_made_leaves_no_temporary_video(tmp_path: Path) -> None:
    # The video's temporary file was made first; the events file's refusal then left it
    # behind, hidden, beside the video the user asked for.
    from mirrorcam.errors import MirrorcamError
    from mirrorcam.modes.replay import replay_clip

    out = tmp_path / "out"
    (tmp_path / "afile").write_text("a file, not a folder")
    with pytest.raises(MirrorcamError, match="cannot write"):
        replay_clip(DEMO_RECORDING, None, None, out / "x.mp4", tmp_path / "afile" / "x.jsonl", show=False)
    assert not out.exists() or not list(out.iterdir()), sorted(p.name for p in out.iterdir())


def test_a_sink_whose_rename_or_open_fails_leaves_no_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mirrorcam import sinks
    from mirrorcam.errors import MirrorcamError

    def refuse(*_args, **_kwargs):
        raise OSError(30, "Read-only file system")

    events = sinks.JsonLinesSink(tmp_path / "a.jsonl")
    events.write({"type": "frame"})
    monkeypatch.setattr(sinks.os, "replace", refuse)
    with pytest.raises(MirrorcamError, match=r"a\.jsonl: Read-only file system"):
        events.close()
    monkeypatch.undo()
    assert not list(tmp_path.iterdir()), sorted(p.name for p in tmp_path.iterdir())

    monkeypatch.setattr(sinks, "open", refuse, raising=False)  # (the temporary file is made, its opening fails)
    with pytest.raises(MirrorcamError, match=r"b\.jsonl: Read-only file system"):
        sinks.JsonLinesSink(tmp_path / "b.jsonl")
    assert not list(tmp_path.iterdir()), sorted(p.name for p in tmp_path.iterdir())


def test_the_landmark_cache_key_follows_the_mediapipe_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Another MediaPipe release runs the same model through another graph: other landmarks.
    import importlib.metadata

    real = importlib.metadata.version
    first = _key_with_manifest(tmp_path, monkeypatch, "one", {"full": _A})
    assert _key_with_manifest(tmp_path, monkeypatch, "two", {"full": _A}) == first  # (deterministic)
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "0.0.1" if name == "mediapipe" else real(name))
    assert _key_with_manifest(tmp_path, monkeypatch, "three", {"full": _A}) != first


@pytest.mark.parametrize("spec", ["0", "rtsp://127.0.0.1:9/stream"], ids=["camera", "url"])
def test_extract_refuses_a_camera_or_a_stream(tmp_path: Path, spec: str) -> None:
    # Camera 0 had been recorded until Ctrl+C; a URL had been quoted as "rtsp:/127.0.0.1:9/stream".
    proc = run_cli("extract", spec, "-o", tmp_path / "x.npz", timeout=120, cwd=tmp_path)
    assert_one_line_error(proc, f"no such file or folder: {spec} ", "not a camera or a stream")
    assert not list(tmp_path.iterdir())


def test_an_events_file_names_no_top_neuron_while_every_neuron_rests(tmp_path: Path) -> None:
    """``top`` had named the first template (``punch``, 0.0) on frames where nothing was active."""
    from conftest import REPO

    proc = run_cli("replay", REPO / "recordings" / "observed_2_squat.npz", "--no-window", "--events", tmp_path / "e.jsonl")
    assert proc.returncode == 0, proc.stderr
    people = [p for r in map(json.loads, (tmp_path / "e.jsonl").read_text().splitlines()) if r["type"] == "frame"
              for p in r["persons"]]
    assert people[0]["top"] is None
    tops = [p["top"] for p in people if p["top"] is not None]
    assert tops and all(t["activation"] > 0 for t in tops) and tops[-1]["template"] == "squat"


def test_an_output_under_a_file_says_the_file_is_not_a_folder(tmp_path: Path) -> None:
    from conftest import REPO

    (tmp_path / "taken.mp4").write_bytes(b"kept")
    proc = run_cli("replay", REPO / "recordings" / "observed_2_squat.npz", "--no-window", "--out", tmp_path / "taken.mp4" / "x.mp4")
    assert_one_line_error(proc, "its folder is not a folder")
    assert (tmp_path / "taken.mp4").read_bytes() == b"kept"


def test_replay_of_a_file_named_0_replays_the_file_not_camera_0(tmp_path: Path, clip, pose_model) -> None:
    (tmp_path / "0").symlink_to(clip("weizmann_frames/weizmann_clean_wave1_p09.mp4"))
    proc = run_cli("replay", "0", "--no-window", "--events", tmp_path / "e.jsonl", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sum(json.loads(line)["type"] == "frame" for line in (tmp_path / "e.jsonl").read_text().splitlines()) > 10


@pytest.mark.parametrize("args", [
    ["replay", ""], ["replay", "r.npz", "--events", ""], ["replay", "r.npz", "--templates", ""],
    ["extract", "", "-o", "x.npz"], ["teach", "x", "--from", ""], ["teach", "x", "--from", "@1-2"],
    ["live", "--source", "", "--seconds", "1"], ["live", "--other", "", "--seconds", "1"], ["live", "--out", ""],
    ["kiosk", "--config", ""], ["kiosk", "--check-config", ""], ["models", "list", "--dir", ""],
], ids=lambda args: " ".join(a or '""' for a in args))
def test_an_empty_path_names_nothing(tmp_path: Path, args: list[str]) -> None:
    """``Path("")`` is ``.``: ``replay ""`` had replayed every clip of the working folder."""
    (tmp_path / "clip.mp4").write_bytes(b"")  # (what the working folder would have offered)
    proc = run_cli(*args, cwd=tmp_path)
    assert_one_line_error(proc, "names nothing")
    assert proc.returncode == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]
