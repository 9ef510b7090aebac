"""Model provisioning: offline build from the registry wheel, checksums, atomic writes."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from mirrorcam.errors import MirrorcamError, ModelError
from mirrorcam.modelstore import (
    WEIGHTS_WHEEL,
    build_bundle_from_wheel,
    ensure_model,
    fetch_model,
    verified_bundle,
)

from conftest import assert_one_line_error, run_cli


@pytest.fixture(scope="session")
def weights_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The mediapipe 0.10.21 wheel from the package registry (pip's cache makes reruns cheap)."""
    dest = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", str(dest), WEIGHTS_WHEEL],
        capture_output=True, text=True,
    )
    wheels = list(dest.glob("mediapipe-*.whl"))
    if proc.returncode != 0 or not wheels:
        pytest.skip(f"package registry unreachable for {WEIGHTS_WHEEL}: {proc.stderr.strip()[-200:]}")
    return wheels[0]


def test_offline_build_from_wheel_loads_in_mediapipe(weights_wheel: Path, tmp_path: Path, images_dir: Path) -> None:
    bundle = fetch_model("full", source=weights_wheel, models_dir=tmp_path)
    with zipfile.ZipFile(bundle.path) as archive:
        assert sorted(archive.namelist()) == ["pose_detector.tflite", "pose_landmarks_detector.tflite"]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["full"]["sha256"] == bundle.sha256
    assert verified_bundle("full", tmp_path) == bundle

    # The bundle really runs: one person found in a COCO photo.
    import cv2

    from mirrorcam.containers import Frame
    from mirrorcam.pose import PoseEstimator, PoseEstimatorOptions

    image = cv2.imread(str(images_dir / "COCO_val2014_000000000294.jpg"))  # one person
    with PoseEstimator.create_from_options(PoseEstimatorOptions(model_path=str(bundle.path), smoothing=False)) as est:
        result = est.process(Frame(image, 0.0, 0))
    assert len(result.persons) >= 1


def test_building_is_deterministic(weights_wheel: Path) -> None:
    assert build_bundle_from_wheel(weights_wheel) == build_bundle_from_wheel(weights_wheel)


def test_checksum_mismatch_is_detected(weights_wheel: Path, tmp_path: Path) -> None:
    bundle = fetch_model("full", source=weights_wheel, models_dir=tmp_path)
    data = bytearray(bundle.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bundle.path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256"):
        verified_bundle("full", tmp_path)
    proc = run_cli("models", "list", "--dir", tmp_path)
    assert "BAD" in proc.stdout


def test_interrupted_build_leaves_no_half_file(weights_wheel: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(*_args, **_kwargs):
        raise OSError("power cut")

    monkeypatch.setattr("mirrorcam.fileio.os.replace", crash)
    with pytest.raises(MirrorcamError, match=r"cannot write to .*pose_landmarker_full\.task: power cut; nothing written"):
        fetch_model("full", source=weights_wheel, models_dir=tmp_path)
    assert list(tmp_path.iterdir()) == [], "neither a half bundle nor a temp file may remain"
    assert verified_bundle("full", tmp_path) is None


def test_task_file_from_local_path(pose_model: Path, tmp_path: Path) -> None:
    bundle = fetch_model("full", source=pose_model, models_dir=tmp_path)
    assert bundle.path.read_bytes() == pose_model.read_bytes()


@pytest.mark.parametrize(
    ("content", "needle"),
    [(b"not a zip at all", "not a .task bundle"), (None, "no such file")],
    ids=["garbage-file", "missing-file"],
)
def test_bad_from_path_gives_one_line(tmp_path: Path, content: bytes | None, needle: str) -> None:
    source = tmp_path / "model.task"
    if content is not None:
        source.write_bytes(content)
    proc = run_cli("models", "fetch", "--from", source, "--dir", tmp_path / "models")
    assert_one_line_error(proc, needle)
    assert not (tmp_path / "models" / "pose_landmarker_full.task").exists()


def test_variant_without_offline_weights_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="--from"):
        fetch_model("heavy", models_dir=tmp_path, allow_download=False)


@pytest.mark.parametrize("entry", ['"x"', "[1]", "3"])
def test_a_manifest_entry_that_is_not_an_object_is_reported_not_a_crash(tmp_path: Path, entry: str) -> None:
    from conftest import run_cli

    (tmp_path / "manifest.json").write_text('{"full": ' + entry + "}")
    (tmp_path / "pose_landmarker_full.task").write_bytes(b"not a model")
    proc = run_cli("models", "list", "--dir", tmp_path)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "full   BAD" in proc.stdout and "not an object" in proc.stdout
    assert proc.returncode == 1  # (it had been 0: a script checking the models saw nothing wrong)


def test_a_missing_from_path_is_refused_even_when_a_bundle_is_provisioned(pose_model: Path, tmp_path: Path) -> None:
    # It had answered "already provisioned ... (use --force to replace)" and exit 0.
    models = tmp_path / "models"
    fetch_model("full", source=pose_model, models_dir=models)
    before = sorted((p.name, p.read_bytes()) for p in models.iterdir())
    for extra in ([], ["--if-missing"], ["--force"]):
        proc = run_cli("models", "fetch", "--from", tmp_path / "nonexist.task", "--dir", models, *extra)
        assert_one_line_error(proc, f"--from {tmp_path / 'nonexist.task'}: no such file")
    assert sorted((p.name, p.read_bytes()) for p in models.iterdir()) == before


def test_a_failed_download_is_logged_before_the_registry_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    # Nothing listens on port 9 here, and pip may not use an index: both sources fail for real.
    monkeypatch.setattr("mirrorcam.modelstore.MODEL_URL", "http://127.0.0.1:9/pose_landmarker_{v}.task")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    caplog.set_level(logging.INFO, logger="mirrorcam")
    with pytest.raises(ModelError, match="download from MediaPipe failed"):
        fetch_model("full", models_dir=tmp_path)
    messages = [r.getMessage() for r in caplog.records]
    failed = next(i for i, m in enumerate(messages) if m.startswith("download from MediaPipe failed ("))
    registry = next(i for i, m in enumerate(messages) if m.startswith(f"fetching {WEIGHTS_WHEEL} from the package registry"))
    assert failed < registry, messages
    assert "instead" in messages[failed] and caplog.records[failed].levelno == logging.WARNING
    assert list(tmp_path.iterdir()) == []


def test_a_bundle_copied_in_by_hand_is_said_to_be_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    # It has no recorded hash, so it is provisioned afresh; that had happened without a word.
    (tmp_path / "pose_landmarker_full.task").write_bytes(b"a bundle of mine")
    monkeypatch.setattr("mirrorcam.modelstore.MODEL_URL", "http://127.0.0.1:9/pose_landmarker_{v}.task")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    caplog.set_level(logging.INFO, logger="mirrorcam")
    with pytest.raises(ModelError):  # (no source works here: the point is what was said first)
        ensure_model("full", models_dir=tmp_path)
    first = caplog.records[0].getMessage()
    assert "is not in the models manifest" in first and "models fetch --variant full --from FILE" in first, first


def _bundle_with(detector: bytes, landmarker: bytes) -> bytes:
    import io

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as bundle:
        bundle.writestr("pose_detector.tflite", detector)
        bundle.writestr("pose_landmarks_detector.tflite", landmarker)
    return out.getvalue()


def _real_member(pose_model: Path, name: str) -> bytes:
    with zipfile.ZipFile(pose_model) as bundle:
        return bundle.read(name)


@pytest.mark.parametrize(
    ("junk", "needle"),
    [("both", "pose_detector.tflite is not a TFLite model"),
     ("detector", "pose_detector.tflite is not a TFLite model"),
     ("landmarker", "pose_landmarks_detector.tflite is not a TFLite model"),
     ("empty", "pose_detector.tflite is not a TFLite model")],
)
def test_a_bundle_of_junk_models_is_refused_and_the_old_one_kept(pose_model: Path, tmp_path: Path, junk: str, needle: str) -> None:
    """Any zip with the two member names had been adopted: 100 bytes of junk under them
    replaced a working bundle (with --force)."""
    models = tmp_path / "models"
    fetch_model("full", source=pose_model, models_dir=models)
    before = sorted((p.name, p.read_bytes()) for p in models.iterdir())
    detector = _real_member(pose_model, "pose_detector.tflite")
    landmarker = _real_member(pose_model, "pose_landmarks_detector.tflite")
    garbage = b"\0" * 100 if junk != "empty" else b""
    source = tmp_path / "junk.task"
    source.write_bytes(_bundle_with(detector if junk == "landmarker" else garbage,
                                    landmarker if junk == "detector" else garbage))
    with pytest.raises(ModelError, match=needle):
        fetch_model("full", source=source, models_dir=models)
    assert sorted((p.name, p.read_bytes()) for p in models.iterdir()) == before


def test_a_junk_bundle_is_one_line_from_the_cli(pose_model: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    fetch_model("full", source=pose_model, models_dir=models)
    before = sorted((p.name, p.read_bytes()) for p in models.iterdir())
    source = tmp_path / "junk.task"
    source.write_bytes(_bundle_with(b"x" * 100, b"y" * 100))
    proc = run_cli("models", "fetch", "--from", source, "--dir", models, "--force")
    assert_one_line_error(proc, "pose_detector.tflite is not a TFLite model")
    assert sorted((p.name, p.read_bytes()) for p in models.iterdir()) == before


def test_a_folder_given_to_from_is_called_a_folder(tmp_path: Path) -> None:
    # It had said "no such file" of a folder that exists.
    proc = run_cli("models", "fetch", "--from", tmp_path, "--dir", tmp_path / "models")
    assert_one_line_error(proc, f"--from {tmp_path}: a folder, not a .task bundle or a mediapipe wheel")


def _short_server(announced: int, sent: bytes):
    """An HTTP server on 127.0.0.1 that announces ``announced`` bytes and sends ``sent`` (fewer)."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self.send_response(200)
            self.send_header("Content-Length", str(announced))
            self.end_headers()
            self.wfile.write(sent)
            self.wfile.flush()
            self.close_connection = True

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_a_download_cut_short_falls_back_to_building_from_the_wheel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A truncated transfer raises http.client.IncompleteRead, which is no OSError: it had ended
    # the command as "unexpected IncompleteRead" instead of trying the wheel.
    from mirrorcam import modelstore

    server = _short_server(announced=100_000, sent=b"PK\x03\x04 the start of a bundle")
    tried = []

    def no_registry(dest: Path) -> Path:
        tried.append(dest)
        raise ModelError("pip could not fetch the wheel (no registry in this test)")

    try:
        monkeypatch.setattr(modelstore, "MODEL_URL", f"http://127.0.0.1:{server.server_address[1]}/pose_landmarker_{{v}}.task")
        monkeypatch.setattr(modelstore, "_pip_download_wheel", no_registry)
        with pytest.raises(ModelError, match=r"download from MediaPipe failed .*IncompleteRead.*pip could not fetch"):
            fetch_model("full", models_dir=tmp_path / "models")
    finally:
        server.shutdown()
        server.server_close()
    assert tried, "the wheel was not tried after the download failed"
    assert not (tmp_path / "models").exists() or not list((tmp_path / "models").iterdir())


def test_an_offline_variant_without_wheel_weights_says_why_in_one_sentence(tmp_path: Path) -> None:
    # It had read "...download-only): . Fix: connect to the internet" for --offline --variant lite.
    with pytest.raises(ModelError) as caught:
        fetch_model("lite", models_dir=tmp_path, allow_download=False)
    message = str(caught.value)
    assert "): ." not in message and "the download was skipped (--offline)" in message, message
    assert "run it without --offline" in message, message


def test_a_crash_between_the_bundle_and_the_manifest_is_not_called_a_corrupt_bundle(
        pose_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The bundle was written first and the manifest after: a crash in between left the new
    # bundle under the old hash, later reported as "corrupt or replaced".
    from mirrorcam import modelstore

    models = tmp_path / "models"
    fetch_model("full", source=pose_model, models_dir=models)
    other = tmp_path / "other.task"  # the same models zipped again: another valid bundle, another sha256
    other.write_bytes(_bundle_with(_real_member(pose_model, "pose_detector.tflite"),
                                   _real_member(pose_model, "pose_landmarks_detector.tflite")))
    new_digest = modelstore.hashlib.sha256(other.read_bytes()).hexdigest()
    assert new_digest != modelstore.sha256_file(pose_model)
    real_write_json = modelstore.atomic_write_json

    def crash_when_recording_the_new_bundle(path, obj) -> None:
        if isinstance(obj.get("full"), dict) and obj["full"].get("sha256") == new_digest:
            raise KeyboardInterrupt  # the power cut, just before the manifest names the new bundle
        real_write_json(path, obj)

    monkeypatch.setattr(modelstore, "atomic_write_json", crash_when_recording_the_new_bundle)
    with pytest.raises(KeyboardInterrupt):
        fetch_model("full", source=other, models_dir=models)
    monkeypatch.undo()
    assert verified_bundle("full", models) is None  # not provisioned: the next run provisions it again
    assert fetch_model("full", source=other, models_dir=models).sha256 == new_digest
    assert verified_bundle("full", models).sha256 == new_digest


def test_force_with_if_missing_is_refused_and_the_bundle_kept(tmp_path):
    models = tmp_path / "models"
    proc = run_cli("models", "fetch", "--force", "--if-missing", "--offline", "--dir", models)
    assert_one_line_error(proc, "choose one")
    assert not models.exists()


# --- which variant a bundle is -------------------------------------------------------------

def _tflite_of_size(size: int) -> bytes:
    """Bytes that pass the TFLite check (``TFL3`` at bytes 4-8), ``size`` long."""
    return (b"\0\0\0\0TFL3").ljust(size, b"\0")


@pytest.mark.parametrize("asked", ["lite", "heavy"])
def test_the_full_bundle_is_refused_under_another_variant_name(pose_model: Path, tmp_path: Path, asked: str) -> None:
    """``--variant lite --from pose_landmarker_full.task`` had been provisioned as lite (exit 0,
    then ``list`` said "lite ok"): a user asking for lite silently got the slower full model."""
    models = tmp_path / "mdl"
    proc = run_cli("models", "fetch", "--from", pose_model, "--dir", models, "--variant", asked)
    assert_one_line_error(proc, "'full' pose model", f"not the '{asked}' one",
                          f"models fetch --variant full --from {pose_model} --dir {models}")
    assert not models.exists() or not list(models.iterdir()), "nothing may be written"
    with pytest.raises(ModelError, match=f"'full' pose model.*not the '{asked}' one"):
        fetch_model(asked, source=pose_model, models_dir=models)
    assert verified_bundle(asked, models) is None


@pytest.mark.parametrize(("size", "is_variant"), [(2_818_390, "lite"), (6_438_874, "full"), (27_704_918, "heavy")])
def test_a_bundle_is_told_apart_by_the_size_of_its_landmark_model(pose_model: Path, tmp_path: Path, size: int,
                                                                  is_variant: str) -> None:
    # MediaPipe's three landmark models, at their published sizes; the detector is the same in all three.
    source = tmp_path / "bundle.task"
    source.write_bytes(_bundle_with(_real_member(pose_model, "pose_detector.tflite"), _tflite_of_size(size)))
    for variant in ("lite", "full", "heavy"):
        if variant == is_variant:
            assert fetch_model(variant, source=source, models_dir=tmp_path / variant).variant == variant
        else:
            with pytest.raises(ModelError, match=f"is the '{is_variant}' pose model"):
                fetch_model(variant, source=source, models_dir=tmp_path / variant)


def test_a_landmark_model_of_no_known_size_is_not_guessed_at(pose_model: Path, tmp_path: Path) -> None:
    # Neither lite, full nor heavy by its size: nothing says it is another variant, so it is taken.
    source = tmp_path / "bundle.task"
    source.write_bytes(_bundle_with(_real_member(pose_model, "pose_detector.tflite"), _tflite_of_size(12_000_000)))
    for variant in ("lite", "full", "heavy"):
        assert fetch_model(variant, source=source, models_dir=tmp_path / variant).variant == variant


# --- fix hints name the folder they are about ----------------------------------------------

def _corrupt_full_bundle(pose_model: Path, models: Path) -> None:
    fetch_model("full", source=pose_model, models_dir=models)
    data = bytearray((models / "pose_landmarker_full.task").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (models / "pose_landmarker_full.task").write_bytes(bytes(data))


def test_the_list_hint_names_the_folder_listed(pose_model: Path, tmp_path: Path) -> None:
    """``models list --dir mdl`` had said "run 'mirrorcam models fetch --variant full --force'",
    which, run as printed, acts on the default models folder instead of mdl."""
    _corrupt_full_bundle(pose_model, tmp_path / "mdl")
    proc = run_cli("models", "list", "--dir", "mdl", cwd=tmp_path)
    assert proc.returncode == 1
    assert "run 'mirrorcam models fetch --variant full --force --dir mdl'" in proc.stdout, proc.stdout


def test_a_folder_name_in_a_hint_is_quoted_for_the_shell(pose_model: Path, tmp_path: Path) -> None:
    import shlex

    _corrupt_full_bundle(pose_model, tmp_path / "my models")
    proc = run_cli("models", "list", "--dir", "my models", cwd=tmp_path)
    hint = proc.stdout.split("run ", 1)[1].splitlines()[0]
    assert hint[0] == hint[-1] == '"', hint  # a command holding ' is put between "..."
    assert shlex.split(hint[1:-1]) == ["mirrorcam", "models", "fetch", "--variant", "full", "--force", "--dir", "my models"]


def test_the_list_hint_has_no_dir_for_the_default_folder(pose_model: Path, tmp_path: Path) -> None:
    _corrupt_full_bundle(pose_model, tmp_path / "mdl")
    proc = run_cli("models", "list", env={"MIRRORCAM_MODELS": str(tmp_path / "mdl")})
    assert "run 'mirrorcam models fetch --variant full --force'" in proc.stdout, proc.stdout


def test_every_models_hint_names_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             caplog: pytest.LogCaptureFixture) -> None:
    models = tmp_path / "mdl"
    models.mkdir()
    (models / "manifest.json").write_text('{"full": "x"}')
    (models / "pose_landmarker_full.task").write_bytes(b"not a model")
    with pytest.raises(ModelError, match=re.escape(f"'mirrorcam models fetch --variant full --force --dir {models}'")):
        verified_bundle("full", models)
    (models / "manifest.json").write_text("{not json")
    with pytest.raises(ModelError, match=re.escape(f"delete it and run 'mirrorcam models fetch --dir {models}'")):
        verified_bundle("full", models)
    with pytest.raises(ModelError, match=re.escape(f"run 'mirrorcam models fetch --variant lite --from FILE --dir {models}'")):
        fetch_model("lite", models_dir=models, allow_download=False)
    (models / "manifest.json").unlink()
    monkeypatch.setattr("mirrorcam.modelstore.MODEL_URL", "http://127.0.0.1:9/pose_landmarker_{v}.task")
    monkeypatch.setattr("mirrorcam.modelstore._pip_download_wheel",
                        lambda dest: (_ for _ in ()).throw(ModelError("no registry in this test")))
    caplog.set_level(logging.INFO, logger="mirrorcam")
    with pytest.raises(ModelError):
        ensure_model("full", models_dir=models)
    assert f"'mirrorcam models fetch --variant full --from FILE --dir {models}'" in caplog.records[0].getMessage()
