"""``mirrorcam models``: provision and check the pose model bundles."""

from __future__ import annotations

import argparse

from mirrorcam.errors import ModelError
from mirrorcam.modelstore import DEFAULT_VARIANT, VARIANTS, check_source, default_models_dir, fetch_model, verified_bundle
from mirrorcam.modes.common import path_arg


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="provision and check the pose model (.task bundles)")
    sub = parser.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    fetch = sub.add_parser(
        "fetch",
        help="download or build a pose model bundle into models/",
        description="Provision models/pose_landmarker_VARIANT.task: from --from (a .task or a mediapipe "
        "wheel), else MediaPipe's published bundle, else built from the mediapipe 0.10.21 wheel on PyPI.",
    )
    fetch.add_argument("--variant", choices=VARIANTS, default=DEFAULT_VARIANT)
    fetch.add_argument("--from", dest="source", metavar="PATH", help="local .task bundle or mediapipe .whl")
    fetch.add_argument("--force", action="store_true", help="replace a bundle that is already provisioned")
    fetch.add_argument("--if-missing", action="store_true",
                       help="provision only what is missing or damaged (a bundle failing its check is replaced, "
                       "not refused: what `make` runs); a verified bundle is kept either way")
    fetch.add_argument("--offline", action="store_true", help="skip the download; build from the wheel")
    fetch.add_argument("--dir", type=path_arg, help="models folder (default: models/ or $MIRRORCAM_MODELS)")
    fetch.set_defaults(run=run)
    listing = sub.add_parser("list", help="show provisioned bundles and verify their checksums")
    listing.add_argument("--dir", type=path_arg, help="models folder")
    listing.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    models_dir = args.dir or default_models_dir()
    if args.models_command == "list":
        bad = 0
        for variant in VARIANTS:
            try:
                bundle = verified_bundle(variant, models_dir)
                state = f"ok  sha256 {bundle.sha256[:16]}  from {bundle.origin}" if bundle else "not provisioned"
            except ModelError as exc:
                state, bad = f"BAD {exc}", bad + 1
            print(f"{variant:6s} {state}")
        return 1 if bad else 0  # (a script checking the models must see a damaged bundle)
    if args.force and args.if_missing:
        raise ModelError("--force replaces the bundle and --if-missing keeps a verified one: choose one")
    # Before the "already provisioned" answer: a mistyped --from had been accepted silently.
    if args.source is not None:
        check_source(args.source)
    if not args.force:
        existing = None
        try:
            existing = verified_bundle(args.variant, models_dir)
        except ModelError:
            if args.if_missing:
                existing = None  # corrupt: rebuild it
            else:
                raise
        if existing is not None:
            print(f"{args.variant}: already provisioned at {existing.path} (use --force to replace)")
            return 0
    bundle = fetch_model(args.variant, args.source, models_dir, allow_download=not args.offline)
    print(f"{bundle.variant}: {bundle.path} (sha256 {bundle.sha256[:16]}, from {bundle.origin})")
    return 0
