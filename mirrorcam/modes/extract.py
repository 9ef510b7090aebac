"""``mirrorcam extract CLIP -o REC``: pose landmarks of a clip into a recording file."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from mirrorcam.errors import MirrorcamError
from mirrorcam.fileio import writable_destination
from mirrorcam.modes.common import add_pose_arguments, file_arg, nonempty_arg, pose_options_from_args
from mirrorcam.pipeline import clip_landmarks
from mirrorcam.recording import save_recording
from mirrorcam.sources import require_clip_path

log = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "extract",
        help="write a clip's pose landmarks to a recording (.npz)",
        description="Run a video clip or image folder through the pose model once and save the landmarks "
        "as a versioned recording that replays without MediaPipe. Results are cached.",
    )
    # Text, not a Path: Path("rtsp://host/x") is "rtsp:/host/x", which the error would quote.
    parser.add_argument("clip", type=nonempty_arg, help="video file or folder of images")
    parser.add_argument("-o", "--output", type=file_arg, required=True, help="recording to write (.npz; added to a name without a suffix)")
    add_pose_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not args.output.name:
        raise MirrorcamError(f"cannot write to {str(args.output)!r}: not a file name")
    if args.output.is_dir():  # checked before the name gets its suffix: -o /tmp must not write /tmp.npz
        raise MirrorcamError(f"cannot write to {args.output}: it is a folder; give a file name such as {args.output / 'clip.npz'}")
    if args.output.suffix.lower() not in ("", ".npz"):  # (.NPZ too, as replay reads it)
        raise MirrorcamError(f"a recording is an .npz file; {args.output} would be written as "
                             f"{args.output.name}.npz: name it {args.output.with_suffix('.npz').name}")
    output = args.output if args.output.suffix else args.output.with_name(args.output.name + ".npz")
    clip = Path(args.clip)
    # A camera index or a stream URL would have been opened as one (camera 0 recorded
    # until Ctrl+C): a recording is made of a clip that has an end.
    require_clip_path(clip, " (extract reads a video file or a folder of images, not a camera or a stream)", args.clip)
    writable_destination(output, create=False)  # before the work, not after it (its folder is made when written)
    recording = clip_landmarks(clip, pose_options_from_args(args))
    found = sum(1 for f in recording.frames if f.persons)
    if found == 0:  # (and an earlier recording under that name is kept)
        raise MirrorcamError(f"no person found in any of the {len(recording)} frames of {args.clip}; nothing written")
    save_recording(output, recording)
    print(f"{output}: {len(recording)} frames at {recording.fps:g} fps, a person in {found}")
    return 0
