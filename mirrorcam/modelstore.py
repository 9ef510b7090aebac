"""Provisioning of MediaPipe pose model bundles (``.task`` files) into ``models/``.

Weights are never committed.  :func:`ensure_model` finds a verified bundle or makes
one, trying in order:

1. a local ``.task`` file or mediapipe wheel given with ``--from``;
2. MediaPipe's published bundle, downloaded over HTTPS;
3. the weights inside the ``mediapipe==0.10.21`` wheel from the package registry
   (the last release that ships them), wrapped with the TFLite metadata the Tasks API
   requires and zipped into a ``.task`` bundle.

Every bundle is written atomically and its sha256 is recorded in
``models/manifest.json``; the hash is verified each time the bundle is loaded.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import io
import json
import logging
import os
import shlex
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mirrorcam.errors import ModelError
from mirrorcam.fileio import atomic_write_bytes, atomic_write_json, sha256_file

log = logging.getLogger(__name__)

VARIANTS = ("lite", "full", "heavy")
DEFAULT_VARIANT = "full"
MODEL_URL = (
    "https://storage.googleapis.com/mediapipe-models/pose_landmarker/"
    "pose_landmarker_{v}/float16/latest/pose_landmarker_{v}.task"
)
# The last mediapipe release whose wheel carries the BlazePose .tflite weights.
WEIGHTS_WHEEL = "mediapipe==0.10.21"
WHEEL_MEMBERS = {
    "full": (
        "mediapipe/modules/pose_detection/pose_detection.tflite",
        "mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
    ),
}
MANIFEST_NAME = "manifest.json"
# Bytes of each variant's landmark model (the bundle's pose_landmarks_detector.tflite); the
# detector is the same ~3.0 MB model in all three, so this is what tells the variants apart.
# Full: 6,438,476 measured in the bundle built here from the 0.10.21 wheel, 6,438,874 as
# published; lite and heavy as published (MediaPipe's model card: 3, 6 and 26 MiB).
LANDMARK_MODEL_BYTES = {"lite": 2_818_390, "full": 6_438_874, "heavy": 27_704_918}
# A landmark model within this factor of one variant's size is that variant (the bands do not
# overlap: lite 2.3-3.5 MB, full 5.2-8.0 MB, heavy 22-35 MB); metadata adds only kilobytes.
# A size in none of the bands tells nothing, and such a bundle is taken as named.
LANDMARK_SIZE_TOLERANCE = 1.25
TFLITE_IDENTIFIER = b"TFL3"  # a .tflite flatbuffer's file identifier, at bytes 4-8


def default_models_dir() -> Path:
    """``$MIRRORCAM_MODELS`` or the ``models/`` folder of this checkout."""
    env = os.environ.get("MIRRORCAM_MODELS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "models"


@dataclass(frozen=True)
class ModelBundle:
    """A verified ``.task`` bundle on disk.

    Attributes:
        variant: ``lite``, ``full`` or ``heavy``.
        path: Location of the ``.task`` file.
        sha256: Hex digest recorded in the manifest and verified on load.
        origin: How the bundle was provisioned (URL, wheel or local path).
    """

    variant: str
    path: Path
    sha256: str
    origin: str


def fetch_command(models_dir: Path | None, *options: str) -> str:
    """``'mirrorcam models fetch OPTIONS'``, quoted as a message shows it, for ``models_dir``.

    ``--dir`` is named unless ``models_dir`` is the default folder: the hints had left it out,
    so a hint about ``--dir mdl``, run as printed, acted on the default models folder.  Each
    word is quoted for the shell, and a command that then holds a ``'`` is put between ``"``.
    """
    words = ["mirrorcam", "models", "fetch", *options]
    if models_dir is not None and Path(models_dir).resolve() != default_models_dir().resolve():
        words += ["--dir", str(models_dir)]
    command = " ".join(shlex.quote(word) for word in words)
    quote = '"' if "'" in command else "'"
    return f"{quote}{command}{quote}"


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {variant!r}")


def bundle_path(variant: str, models_dir: Path | None = None) -> Path:
    _check_variant(variant)
    return (models_dir or default_models_dir()) / f"pose_landmarker_{variant}.task"


def _read_manifest(models_dir: Path) -> dict:
    path = models_dir / MANIFEST_NAME
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path} is not valid JSON ({exc}); delete it and run {fetch_command(models_dir)}") from exc
    return data if isinstance(data, dict) else {}


def recorded_sha256(variant: str = DEFAULT_VARIANT, models_dir: Path | None = None) -> str | None:
    """The sha256 the manifest records for ``variant``'s bundle, or None if it is not provisioned.

    Reads the manifest only (no hashing of the bundle): cheap enough to ask on every
    cache lookup.  :func:`verified_bundle` checks the file against it when the model loads.
    """
    _check_variant(variant)
    entry = _read_manifest(models_dir or default_models_dir()).get(variant)
    digest = entry.get("sha256") if isinstance(entry, dict) else None
    return digest if isinstance(digest, str) else None


def verified_bundle(variant: str = DEFAULT_VARIANT, models_dir: Path | None = None) -> ModelBundle | None:
    """The provisioned bundle if it exists and matches its recorded hash, else None.

    Raises:
        ModelError: The bundle exists but its hash does not match the manifest.
    """
    models_dir = models_dir or default_models_dir()
    path = bundle_path(variant, models_dir)
    entry = _read_manifest(models_dir).get(variant)
    if not path.exists() or not entry:
        return None
    if not isinstance(entry, dict):
        raise ModelError(f"{models_dir / 'manifest.json'}: the entry for {variant!r} is not an object; "
                         f"run {fetch_command(models_dir, '--variant', variant, '--force')}")
    actual = sha256_file(path)
    if actual != entry.get("sha256"):
        raise ModelError(
            f"{path} does not match its recorded sha256 (corrupt or replaced); "
            f"run {fetch_command(models_dir, '--variant', variant, '--force')}"
        )
    return ModelBundle(variant, path, actual, str(entry.get("origin", "")))


def ensure_model(variant: str = DEFAULT_VARIANT, models_dir: Path | None = None) -> ModelBundle:
    """Return a verified bundle, provisioning it first if it is missing."""
    bundle = verified_bundle(variant, models_dir)
    if bundle is not None:
        return bundle
    path = bundle_path(variant, models_dir or default_models_dir())
    if path.exists():
        # A bundle copied in by hand has no recorded hash to verify it by: it is replaced,
        # and said so (it had been, silently).
        log.warning("%s is not in the models manifest, so it is replaced; to use a bundle of yours, %s", path,
                    fetch_command(models_dir, "--variant", variant, "--from", "FILE"))
    else:
        log.warning("pose model '%s' is not provisioned yet; fetching it now (one-off, about 10 s)", variant)
    return fetch_model(variant, models_dir=models_dir)


def check_source(source: str | os.PathLike[str]) -> Path:
    """``source`` (``models fetch --from``) as a path to an existing file.

    Raises:
        ModelError: There is no such file.
    """
    path = Path(source)
    if path.is_dir():
        raise ModelError(f"--from {path}: a folder, not a .task bundle or a mediapipe wheel")
    if not path.is_file():
        raise ModelError(f"--from {path}: no such file")
    return path


def fetch_model(
    variant: str = DEFAULT_VARIANT,
    source: str | os.PathLike[str] | None = None,
    models_dir: Path | None = None,
    allow_download: bool = True,
) -> ModelBundle:
    """Provision a bundle into ``models_dir`` and record it in the manifest.

    Args:
        variant: Model variant to provision.
        source: A local ``.task`` bundle or mediapipe ``.whl`` (air-gapped machines).
        models_dir: Destination folder (default: :func:`default_models_dir`).
        allow_download: Try MediaPipe's published URL before the registry wheel.

    Raises:
        ModelError: No source worked; the message names the fix.
    """
    _check_variant(variant)
    models_dir = models_dir or default_models_dir()
    attempts: list[str] = []
    data: bytes | None = None
    origin = ""
    if source is not None:
        source = check_source(source)
        data, origin = _bundle_from_local(source, variant), str(source)
    else:
        if allow_download:
            url = MODEL_URL.format(v=variant)
            try:
                data, origin = _download(url), url
            except ModelError as exc:
                attempts.append(str(exc))
                # Said here, or the registry fetch that follows looks like the plan all along.
                if variant in WHEEL_MEMBERS:
                    log.warning("%s; building the model from the %s wheel instead", exc, WEIGHTS_WHEEL)
        if data is None and variant in WHEEL_MEMBERS:
            try:
                with tempfile.TemporaryDirectory() as tmp:
                    wheel = _pip_download_wheel(Path(tmp))
                    data, origin = build_bundle_from_wheel(wheel, variant), WEIGHTS_WHEEL
            except ModelError as exc:
                attempts.append(str(exc))
    if data is None:
        hint = "" if variant in WHEEL_MEMBERS else f" (only 'full' can be built offline; the '{variant}' weights are download-only)"
        # (With no download and no wheel to try, nothing was attempted: said as such, not
        # as an empty list of reasons.)
        reasons = "; ".join(attempts) or "the download was skipped (--offline)"
        fix = "connect to the internet" if allow_download else "run it without --offline"
        # (The command names the variant: without it, it provisions 'full' whatever was asked.)
        raise ModelError(
            f"could not provision the '{variant}' pose model{hint}: {reasons}. "
            f"Fix: {fix}, or run {fetch_command(models_dir, '--variant', variant, '--from', 'FILE')} with a "
            "pose_landmarker .task bundle or a mediapipe 0.10.21 wheel"
        )
    _check_bundle_bytes(data, origin)
    if source is not None:
        # Only a bundle of the user's own can be another variant: the URL and the wheel's
        # members are the requested variant's by construction.
        _check_bundle_variant(data, variant, source, models_dir)
    path = bundle_path(variant, models_dir)
    digest = hashlib.sha256(data).hexdigest()
    entry = {"file": path.name, "sha256": digest, "origin": origin, "bytes": len(data)}
    manifest_path = models_dir / MANIFEST_NAME
    manifest = _read_manifest(models_dir)
    previous = manifest.pop(variant, None)
    unlisted = previous is not None and not (isinstance(previous, dict) and previous.get("sha256") == digest)
    if unlisted:
        # Unlisted while its bundle is replaced: a crash between the two writes then leaves
        # a bundle the next run provisions again, not one reported as "corrupt or replaced".
        atomic_write_json(manifest_path, manifest)
    try:
        atomic_write_bytes(path, data)
    except BaseException:
        if unlisted:
            # The old bundle is still in place (the write is atomic): listed again, it stays
            # usable.  A second failure here must not hide the first.
            with contextlib.suppress(Exception):
                atomic_write_json(manifest_path, {**manifest, variant: previous})
        raise
    manifest[variant] = entry
    atomic_write_json(manifest_path, manifest)
    log.info("pose model '%s' provisioned from %s (%d bytes, sha256 %s)", variant, origin, len(data), digest[:12])
    return ModelBundle(variant, path, digest, origin)


def _check_bundle_bytes(data: bytes, origin: str) -> None:
    """Refuse ``data`` unless it is a zip of the two pose models, each a TFLite model."""
    needed = ("pose_detector.tflite", "pose_landmarks_detector.tflite")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as bundle:
            missing = sorted(set(needed) - set(bundle.namelist()))
            if missing:
                raise ModelError(f"{origin} is not a pose landmarker bundle (missing {missing})")
            # The names alone had let 100 bytes of junk replace a working bundle.  A TFLite
            # model is a flatbuffer whose file identifier (bytes 4 to 8) is "TFL3".
            for name in needed:
                with bundle.open(name) as member:
                    if member.read(8)[4:8] != TFLITE_IDENTIFIER:
                        raise ModelError(f"{origin} is not a pose landmarker bundle ({name} is not a TFLite model)")
    except (zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError) as exc:  # (a member cut short, garbled, compressed oddly)
        raise ModelError(f"{origin} is not a .task bundle (not a zip archive, or a damaged one)") from exc


def bundle_variant(data: bytes) -> tuple[str | None, int]:
    """The variant a bundle's landmark model is by its size, or None if no variant's; and that size.

    The size is the only mark of the variant a bundle is sure to carry: the file names inside
    are the same in all three, the detector is the same model, and the metadata of a bundle
    built here from the wheel names no variant.  (``data`` has passed :func:`_check_bundle_bytes`.)
    """
    with zipfile.ZipFile(io.BytesIO(data)) as bundle:
        size = bundle.getinfo("pose_landmarks_detector.tflite").file_size
    for variant, nominal in LANDMARK_MODEL_BYTES.items():
        if nominal / LANDMARK_SIZE_TOLERANCE <= size <= nominal * LANDMARK_SIZE_TOLERANCE:
            return variant, size
    return None, size


def _check_bundle_variant(data: bytes, variant: str, source: Path, models_dir: Path) -> None:
    """Refuse a bundle whose landmark model is another variant's.

    ``--variant lite --from pose_landmarker_full.task`` had been provisioned as lite: a user
    asking for the fast model silently got the slower one, and ``models list`` said "lite ok".
    """
    actual, size = bundle_variant(data)
    if actual is not None and actual != variant:
        raise ModelError(
            f"--from {source}: its landmark model ({size / 1e6:.1f} MB) is the '{actual}' pose model, "
            f"not the '{variant}' one ({LANDMARK_MODEL_BYTES[variant] / 1e6:.1f} MB); nothing written. "
            f"To provision it as '{actual}', run {fetch_command(models_dir, '--variant', actual, '--from', str(source))}"
        )


def _bundle_from_local(source: Path, variant: str) -> bytes:
    if source.suffix == ".whl":
        return build_bundle_from_wheel(source, variant)
    return source.read_bytes()


def _download(url: str, timeout: float = 15.0) -> bytes:
    log.info("downloading %s", url)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (fixed https URL)
            return response.read()
    except (urllib.error.URLError, OSError, TimeoutError, http.client.HTTPException) as exc:
        # HTTPException: a transfer cut short (IncompleteRead) or a garbled reply is no
        # OSError, and had ended the command instead of falling back to the wheel.
        reason = getattr(exc, "reason", exc)
        raise ModelError(f"download from MediaPipe failed ({reason})") from exc


def _pip_download_wheel(dest: Path) -> Path:
    """Fetch the weights wheel with pip; any platform's wheel holds the same .tflite files."""
    base = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(dest), "-q"]
    tries = [
        base + [WEIGHTS_WHEEL],
        # Newer Pythons have no 0.10.21 wheel of their own: ask for a cp311 one explicitly.
        base + ["--platform", "manylinux_2_28_x86_64", "--python-version", "311", WEIGHTS_WHEEL],
    ]
    errors = []
    for cmd in tries:
        log.info("fetching %s from the package registry", WEIGHTS_WHEEL)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wheels = sorted(dest.glob("mediapipe-*.whl"))
        if proc.returncode == 0 and wheels:
            return wheels[0]
        errors.append((proc.stderr.strip().splitlines() or ["pip failed"])[-1])
    raise ModelError(f"pip could not fetch {WEIGHTS_WHEEL} ({errors[-1]})")


def build_bundle_from_wheel(wheel: Path, variant: str = "full") -> bytes:
    """Build a Tasks API ``.task`` bundle from the .tflite files inside a mediapipe wheel.

    The legacy graphs' models carry no TFLite metadata, and the Tasks API refuses a
    model without ``NormalizationOptions``; so each model gets the metadata MediaPipe's
    own bundles carry (RGB image input, its normalisation, its output count) before the
    two are zipped under the names the PoseLandmarker graph looks for.
    """
    if variant not in WHEEL_MEMBERS:
        raise ModelError(f"the mediapipe wheel has no '{variant}' weights; only 'full' can be built offline")
    detector_name, landmarker_name = WHEEL_MEMBERS[variant]
    try:
        with zipfile.ZipFile(wheel) as whl:
            detector = whl.read(detector_name)
            landmarker = whl.read(landmarker_name)
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise ModelError(f"{wheel} is not a mediapipe wheel with pose weights ({exc})") from exc
    detector = add_image_metadata(detector, "pose_detector", mean=127.5, std=127.5, num_outputs=2)
    landmarker = add_image_metadata(landmarker, "pose_landmarks_detector", mean=0.0, std=255.0, num_outputs=5)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as bundle:
        for member, data in (("pose_detector.tflite", detector), ("pose_landmarks_detector.tflite", landmarker)):
            # A fixed timestamp makes the bundle, and so its sha256, reproducible.
            bundle.writestr(zipfile.ZipInfo(member, date_time=(1980, 1, 1, 0, 0, 0)), data)
    return out.getvalue()


def add_image_metadata(model: bytes, name: str, mean: float, std: float, num_outputs: int) -> bytes:
    """Return ``model`` (a .tflite flatbuffer) with TFLite image-input metadata attached."""
    # Only the generated flatbuffer classes are used: mediapipe's metadata writer needs a
    # compiled extension the current wheel does not ship.
    import flatbuffers
    from mediapipe.tasks.metadata import metadata_schema_py_generated as meta
    from mediapipe.tasks.metadata import schema_py_generated as schema

    norm = meta.NormalizationOptionsT()
    norm.mean, norm.std = [mean], [std]
    unit = meta.ProcessUnitT()
    unit.optionsType = meta.ProcessUnitOptions.NormalizationOptions
    unit.options = norm
    props = meta.ImagePropertiesT()
    props.colorSpace = meta.ColorSpaceType.RGB
    content = meta.ContentT()
    content.contentPropertiesType = meta.ContentProperties.ImageProperties
    content.contentProperties = props
    image_in = meta.TensorMetadataT()
    image_in.name = "image"
    image_in.content = content
    image_in.processUnits = [unit]
    outputs = []
    for i in range(num_outputs):
        tensor = meta.TensorMetadataT()
        tensor.name = f"output_{i}"
        outputs.append(tensor)
    subgraph = meta.SubGraphMetadataT()
    subgraph.inputTensorMetadata = [image_in]
    subgraph.outputTensorMetadata = outputs
    model_meta = meta.ModelMetadataT()
    model_meta.name = name
    model_meta.description = "BlazePose weights from the mediapipe 0.10.21 wheel, metadata by mirrorcam"
    model_meta.subgraphMetadata = [subgraph]
    model_meta.minParserVersion = "1.0.0"
    builder = flatbuffers.Builder(1024)
    builder.Finish(model_meta.Pack(builder), file_identifier=b"M001")
    metadata_bytes = bytes(builder.Output())

    try:
        tflite = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model, 0))
    except Exception as exc:  # flatbuffers raises assorted errors on garbage
        raise ModelError(f"{name}: not a TFLite model ({exc})") from exc
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(metadata_bytes, dtype=np.uint8)
    tflite.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = "TFLITE_METADATA"
    entry.buffer = len(tflite.buffers) - 1
    tflite.metadata = [m for m in (tflite.metadata or []) if m.name != b"TFLITE_METADATA"] + [entry]
    builder = flatbuffers.Builder(len(model) + len(metadata_bytes) + 1024)
    builder.Finish(tflite.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())

