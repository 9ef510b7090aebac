"""``mirrorcam teach NAME --from CLIP[@START-END]``: learn a new action template.

One to five example performances (clips, recordings, or segments of them in seconds)
become one template: the most representative example (closest by DTW to the others),
with a threshold calibrated between its distance to the other examples and to
impostors (synthetic performers of every other built-in action and of everyday
movements such as standing, walking and touching the face).  Which body parts matter is
learnt from what moves in the examples.  The file is written atomically to the user
template folder (or ``--out``); an existing name is kept unless ``--force``.

With ``--add`` the examples become one more style of an existing template NAME, a
built-in or one of the user's: the neuron keeps what it had and fires for the new style
too.  The result is saved under the same name in the user folder, where it takes the
built-in's place.

Example:
    mirrorcam teach salute --from clips/salute.mp4@1.5-3.2 --from clips/salute2.mp4
    mirrorcam teach punch --add --style backfist --from clips/backfist.mp4@2-4
"""

from __future__ import annotations

import argparse
import difflib
import logging
import os
from dataclasses import replace
from pathlib import Path

from mirrorcam.errors import MirrorcamError, TemplateError
from mirrorcam.fileio import is_utf8, writable_destination
from mirrorcam.modes.common import add_pose_arguments, path_arg, pose_options_from_args
from mirrorcam.authoring import impostor_streams
from mirrorcam.teaching import MAX_EXAMPLE_S, add_style, check_style, free_style, parse_clip_spec, teach
from mirrorcam.templates import (
    KINDS, builtin_library, display_name_problem, embed_recording, is_valid_name, load_template, main_person_id, people_seen,
    save_template, user_template_dir,
)

log = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "teach",
        help="learn an action template from example clips",
        description="Learn template NAME from one to five example performances given as CLIP, CLIP@START-END "
        "(seconds) or a landmark recording; calibrate its threshold and save it as JSON.",
    )
    parser.add_argument("name", help="template name: lowercase letters, digits and _")
    parser.add_argument("--from", dest="sources", action="append", required=True, metavar="CLIP[@START-END]",
                        help="an example performance (repeat for up to five)")
    parser.add_argument("--display-name", help="name shown on screen (default: NAME)")
    parser.add_argument("--kind", choices=KINDS, help="a movement (dynamic, default) or a held pose (static)")
    parser.add_argument("--side-specific", action="store_true", help="only this side counts (default: either side matches)")
    parser.add_argument("--out", type=path_arg, help=f"folder to save into (default: {user_template_dir()})")
    parser.add_argument("--force", action="store_true", help="replace an existing template of that name")
    parser.add_argument("--add", action="store_true",
                        help="add the examples as another style of the existing template NAME (a built-in or yours), "
                        "saved under NAME in the output folder")
    parser.add_argument("--style", help="with --add: the new style's label (default: mine, mine2, ...)")
    add_pose_arguments(parser)
    parser.set_defaults(run=run)


def _say_whom(recording, clip: Path, start: float | None, end: float | None, person: int | None) -> None:
    """Say which person is taught (``person``) when the segment shows several."""
    seen = people_seen(recording, start, end)
    if len(seen) > 1:
        where = f" between {start:g} and {end:g} s" if start is not None else ""
        log.info("%s: %d people%s; teaching person %d, seen in %d frames (choose a segment with only the one you mean)",
                 clip, len(seen), where, person, len(seen[person]))


def run(args: argparse.Namespace) -> int:
    from mirrorcam.pipeline import clip_landmarks

    if not is_valid_name(args.name):
        fixed = "_".join(args.name.lower().replace("-", " ").split())  # ("Squat" -> squat, "Arms up" -> arms_up)
        hint = f" (say {fixed!r}; --display-name keeps {args.name!r} for the screen)" if is_valid_name(fixed) else ""
        raise MirrorcamError(f"template name {args.name!r} must use lowercase letters, digits and _ only{hint}")
    if not 1 <= len(args.sources) <= 5:
        raise MirrorcamError(f"teach takes one to five --from examples, got {len(args.sources)}")
    if args.display_name is not None and not is_utf8(args.display_name):
        raise MirrorcamError("--display-name is not valid UTF-8 text (check the terminal's encoding)")
    if args.display_name is not None and not args.display_name.strip():  # (a row without a name had been drawn)
        raise MirrorcamError("--display-name is blank; give the name to show, or leave it out (the screen shows NAME)")
    # The rule a template file's display_name is loaded by (checked as it is saved: stripped).
    problem = display_name_problem(args.display_name.strip()) if args.display_name is not None else None
    if problem:
        raise MirrorcamError(f"--display-name {problem}")
    out_dir = args.out or user_template_dir()
    target = out_dir / f"{args.name}.json"
    writable_destination(target, create=False)  # before the examples' pose runs, which can take minutes
    if args.add:
        existing = _existing_template(args.name, out_dir)
        if args.force:
            raise MirrorcamError("--add keeps the template and adds a style to it; --force would replace it: choose one")
        if (args.kind or existing.kind) != existing.kind or (args.side_specific and not existing.side_specific):
            raise MirrorcamError(f"--add keeps {args.name!r} as it is ({'side-specific ' if existing.side_specific else ''}"
                                 f"{existing.kind}); leave out --kind and --side-specific")
        kind, side_specific = existing.kind, existing.side_specific
        style = args.style or free_style(existing)
        check_style(existing, style)  # before any clip is read
    else:
        if args.style:
            raise MirrorcamError("--style labels a style added with --add")
    # The examples' specs and files before the name's checks: a user told "already exists;
    # use --force" would add --force and only then hear of a typo in the path.
    specs = []
    for spec in args.sources:
        path, start, end = parse_clip_spec(spec)
        if not Path(path).exists():
            raise MirrorcamError(f"no such clip: {path}")
        specs.append((Path(path), start, end))
    if not args.add:
        if target.exists() and not args.force:
            raise TemplateError(f"{target} already exists; use --force to replace it, or --add to add a style to it")
        if not args.force and args.name in {t.name for t in builtin_library().templates}:
            raise TemplateError(f"{args.name!r} is a built-in neuron; use --add to teach it a style of yours, "
                                f"or --force to replace it with yours (saved in {out_dir})")
        kind, side_specific = args.kind or "dynamic", args.side_specific
    options = pose_options_from_args(args)
    examples, performers = [], []  # performers: (recording, person) of each example, for the little figure
    for clip, start, end in specs:
        recording = clip_landmarks(clip, options)
        if start is not None and start >= recording.duration_s:
            raise MirrorcamError(f"segment {start:g}-{end:g} s of {clip} starts after the clip's end ({recording.duration_s:.1f} s)")
        if end is not None and end > recording.duration_s + 0.05:  # (a "15 s" clip at 29.97 fps is 14.98 s)
            # A template taught from less than was asked for had been cut without a word.
            log.warning("segment %g-%g s of %s ends after the clip (at %.1f s); it was cut there",
                        start, end, clip, recording.duration_s)
        person = main_person_id(recording, start, end)  # (the segment's, not the whole clip's; ties: the larger body)
        stream = embed_recording(recording, person=person, start_s=start, end_s=end)
        _say_whom(recording, clip, start, end, person)
        if not stream:
            where = f" between {start:g} and {end:g} s" if start is not None else ""
            raise MirrorcamError(f"no person found in {clip}{where}")
        if len(stream) == 1 and kind != "static":
            raise MirrorcamError(f"{clip}: one picture of a person holds no movement; "
                                 "teach a held pose from it with --kind static, or a movement from a clip")
        examples.append(stream)
        performers.append((recording, person))
    try:
        taught = teach(
            args.name,
            examples,
            impostor_streams(args.name, _own_templates(out_dir)),
            display_name=args.display_name.strip() if args.display_name else None,  # (as a file loads it back)
            kind=kind,
            side_specific=side_specific,
            # (a file name that is not UTF-8 is kept as its escaped bytes: a template is JSON text)
            source="taught from " + ", ".join(os.fsencode(p).decode("utf-8", "backslashreplace") for p in args.sources),
        )
    except ValueError as exc:  # the examples make no valid template (landmarks that are not numbers, ...)
        raise TemplateError(f"cannot teach {args.name!r} from {', '.join(args.sources)}: {exc}") from None
    # The little figure is the performance the template was cut from, not the whole segment.
    template = taught = replace(taught.template, preview=taught.preview(*performers[taught.example]))
    if args.add:
        template = add_style(existing, taught, style)
        if args.display_name:
            template = replace(template, display_name=args.display_name.strip())
    save_template(target, template, force=args.force or args.add)
    c = taught.calibration
    what = f"style {style!r} added to {args.name!r} ({len(template.variants) + 1} styles)" if args.add else f"{len(taught.frames)} frames"
    spread = f"examples' 90th percentile {c['positive_p90']}, " if c.get("positive_p90") is not None else "one example, "
    near = f"impostors' 5th percentile {c['impostor_p05']}" if c.get("impostor_p05") is not None else "no impostors"
    print(f"{target}: {what}, {taught.duration_s:.1f} s, threshold {taught.threshold:.4f} ({spread}{near})")
    if taught.duration_s >= MAX_EXAMPLE_S - 0.1:
        # No repetition was found in a long example, so it fires once for this much of it.
        print(f"mirrorcam: the template is the most moving {MAX_EXAMPLE_S:g} s of an example longer than that; if it "
              "holds several performances, teach from one of them (CLIP@START-END) so that each counts once")
    return 0


def _own_templates(out_dir: Path) -> tuple:
    """The templates already in the output folder: a new one is calibrated against them too."""
    from mirrorcam.templates import TemplateLibrary

    return TemplateLibrary.load([out_dir]).templates if out_dir.is_dir() else ()


def _existing_template(name: str, out_dir: Path):
    """Template ``name`` from the output folder, else the built-in (for ``--add``).

    A malformed file of that name is one error naming it, and it is left as it is.
    """
    path = out_dir / f"{name}.json"
    if path.exists():
        template = load_template(path)
        if template.name != name:
            raise TemplateError(f"{path} holds template {template.name!r}, not {name!r}")
        return template
    library = builtin_library()
    try:
        return library.get(name)
    except KeyError:
        known = [t.name for t in library.templates] + [t.name for t in _own_templates(out_dir)]
        close = difflib.get_close_matches(name, known, n=1)
        if close:  # a typo: teaching it without --add would make a second, misspelled neuron
            raise TemplateError(f"there is no template {name!r} to add a style to: did you mean {close[0]!r}?") from None
        raise TemplateError(f"there is no template {name!r} to add a style to (neither built in nor in {out_dir}); "
                            "teach it without --add") from None

