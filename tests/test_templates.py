"""Templates: the built-in library, the file format, malformed files, saving."""

from __future__ import annotations

import json
import logging
from dataclasses import replace

import numpy as np
import pytest

from mirrorcam.embedding import DIM
from mirrorcam.errors import TemplateError
from mirrorcam.teaching import parse_clip_spec
from mirrorcam.templates import BUILTIN_NAMES, Template, TemplateLibrary, builtin_library, load_template, save_template


def test_builtin_library_has_the_public_names_in_order():
    lib = builtin_library()
    assert lib.names[: len(BUILTIN_NAMES)] == BUILTIN_NAMES
    assert not lib.errors
    for t in lib.templates:
        assert t.frames.shape[1] == DIM and len(t.frames) >= 4
        assert t.preview.shape[1:] == (33, 3) and len(t.preview) >= 5, t.name
        assert t.threshold > 0 and t.display_name and t.description
        assert not t.side_specific
        assert "keyframes" in t.source


def _good(name="salute") -> dict:
    t = builtin_library().get("clap")  # has a "wide" variant
    obj = t.to_json()
    obj["name"] = name
    return obj


def test_round_trip(tmp_path):
    t = builtin_library().get("squat")
    path = save_template(tmp_path / "squat.json", t)
    back = load_template(path)
    assert back.name == t.name and back.kind == t.kind and back.groups == t.groups
    np.testing.assert_allclose(back.frames, t.frames, atol=1e-4)
    np.testing.assert_allclose(back.threshold, t.threshold, rtol=1e-4)


@pytest.mark.parametrize("threshold", [0.125, 0.04369, 0.00123, 4.2e-6, 3.3e-9, 2.5e5])
def test_a_threshold_round_trips_to_three_significant_digits(tmp_path, threshold: float):
    """Five decimals alone had saved a threshold under 5e-6 as 0, a file loading refuses."""
    clap = builtin_library().get("clap")
    t = replace(clap, threshold=threshold, variants=(replace(clap.variants[0], threshold=threshold / 2),))
    back = load_template(save_template(tmp_path / "clap.json", t))
    assert back.threshold == pytest.approx(threshold, rel=5e-3)
    assert back.variants[0].threshold == pytest.approx(threshold / 2, rel=5e-3)


def test_variants_round_trip_and_expand_to_prototypes(tmp_path):
    t = builtin_library().get("arms_up")
    assert [v.style for v in t.variants] == ["press"]
    back = load_template(save_template(tmp_path / "arms_up.json", t))
    assert len(back.variants) == 1 and back.variants[0].style == "press"
    np.testing.assert_allclose(back.variants[0].frames, t.variants[0].frames, atol=1e-4)
    protos = back.prototypes()
    assert [p.name for p in protos] == ["arms_up", "arms_up"] and all(not p.variants for p in protos)
    assert protos[1].threshold == pytest.approx(t.variants[0].threshold, rel=1e-4)
    assert protos[1].groups == t.groups and "[press]" in protos[1].source


def test_a_variant_keeps_its_own_importance_through_the_file_and_the_matcher(tmp_path):
    """A prototype taught from its own example was calibrated with that example's
    importance; it must be matched with it too, not with the main prototype's."""
    from mirrorcam.matching import best_distances
    from mirrorcam.performer import PerformerOptions, perform
    from mirrorcam.templates import Variant, embed_recording

    t = builtin_library().get("arms_up")
    own = {"torso": 0.1, "arms": 1.0, "legs": 0.1, "lift": 0.1}
    assert t.groups != own
    styled = replace(t, variants=(replace(t.variants[0], groups=own), Variant("plain", t.variants[0].frames, 0.1)))
    saved = json.loads(save_template(tmp_path / "arms_up.json", styled).read_text())
    assert saved["variants"][0]["importance"] == own and "importance" not in saved["variants"][1]
    back = load_template(tmp_path / "arms_up.json")
    main, mine, inherited = back.prototypes()
    assert mine.groups == own and inherited.groups == main.groups == t.groups
    stream = embed_recording(perform("arms_up:press", PerformerOptions(repeats=1, seed=2)))
    # In banks of the same shape: float rounding differs with the padded template length.
    plain = replace(t, frames=mine.frames, weights=mine.weights, groups=own, velocity_weight=mine.velocity_weight, variants=())
    want = best_distances([plain, inherited], stream)
    got = best_distances([mine, inherited], stream)
    np.testing.assert_array_equal(got, want)
    assert abs(got[1] - got[0]) > 0.1 * got[0]  # the importance matters to the distance


def _as_older_embedding(obj: dict, version: int) -> dict:
    """A template object as an older embedding wrote it: without the features added since."""
    from mirrorcam.embedding import FEATURES

    missing = [FEATURES.index(f) for f in ("airborne", "travel")[version - 1:]]

    def narrow(part: dict) -> dict:
        return {**part, **{k: [[x for j, x in enumerate(row) if j not in missing] for row in part[k]]
                           for k in ("frames", "weights") if k in part}}

    return {**narrow(obj), "embedding_version": version, "variants": [narrow(v) for v in obj.get("variants", [])]}


@pytest.mark.parametrize(("version", "added"), [(1, ("airborne", "travel")), (2, ("travel",))])
def test_a_template_of_an_older_embedding_loads_and_ignores_the_new_features(tmp_path, version, added):
    """Templates taught before a feature existed still load (a user's taught actions
    survive the upgrade); the new features get weight 0, so they neither help nor cost them."""
    from mirrorcam.embedding import FEATURES
    from mirrorcam.matching import best_distances
    from mirrorcam.performer import PerformerOptions, perform
    from mirrorcam.templates import embed_recording

    new = [FEATURES.index(f) for f in added]
    path = tmp_path / "hop.json"
    path.write_text(json.dumps(_as_older_embedding(builtin_library().get("jump_in_place").to_json(), version)))
    old = load_template(path)
    for p in old.prototypes():
        assert p.frames.shape[1] == DIM and not p.frames[:, new].any() and not p.weights[:, new].any()
        assert p.weights[:, [i for i in range(DIM) if i not in new]].all()  # the rest keep their trust
    # Whatever the template says about the new features, a jump (in the air on every rep) matches the same.
    stream = embed_recording(perform("jump_in_place", PerformerOptions(repeats=2, seed=3)))
    assert max(e.vector[FEATURES.index("airborne")] for _, e in stream) > 0.8
    shifted = replace(old, frames=old.frames + 5.0 * np.isin(np.arange(DIM), new), variants=())
    np.testing.assert_array_equal(best_distances([replace(old, variants=()), old], stream),
                                  best_distances([shifted, old], stream))
    broken = json.loads(path.read_text())
    path.write_text(json.dumps({**broken, "weights": broken["weights"][:-1]}))  # a row short: reported, not replaced
    with pytest.raises(TemplateError, match="hop.json"):
        load_template(path)
    path.write_text(json.dumps({**broken, "embedding_version": 7}))
    with pytest.raises(TemplateError, match="embedding version 7; re-teach it"):
        load_template(path)


def test_velocity_weight_round_trips_per_prototype(tmp_path):
    t = builtin_library().get("wave_one_hand")
    # Chosen per prototype at build time: the waves are better off with the velocity channel.
    assert t.velocity_weight > 0 and all(v.velocity_weight > 0 for v in t.variants)
    assert builtin_library().get("squat").velocity_weight == 0
    back = load_template(save_template(tmp_path / "wave.json", t))
    assert [p.velocity_weight for p in back.prototypes()] == [p.velocity_weight for p in t.prototypes()]
    plain = load_template(save_template(tmp_path / "squat.json", builtin_library().get("squat")))
    assert "velocity_weight" not in json.loads((tmp_path / "squat.json").read_text()) and plain.velocity_weight == 0


def test_save_refuses_to_overwrite_without_force(tmp_path):
    t = builtin_library().get("clap")
    save_template(tmp_path / "clap.json", t)
    with pytest.raises(TemplateError, match="--force"):
        save_template(tmp_path / "clap.json", t)
    save_template(tmp_path / "clap.json", t, force=True)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


BAD = [
    ("not_json", "{ this is not json", "not valid JSON"),
    ("list", "[1, 2, 3]", "JSON object"),
    ("foreign", json.dumps({"format": "something.else", "version": 1}), "not a mirrorcam template"),
    ("future", json.dumps({**_good(), "version": 99}), "version"),
    ("missing_frames", json.dumps({k: v for k, v in _good().items() if k != "frames"}), "missing frames"),
    ("short_rows", json.dumps({**_good(), "frames": [[0.0, 1.0]], "weights": None}), "frames"),
    ("neg_threshold", json.dumps({**_good(), "threshold": -1}), "threshold"),
    ("huge_threshold", json.dumps({**_good(), "threshold": 1e308}), "threshold"),  # overflowed float32
    ("deep", "[" * 100_000 + "]" * 100_000, "not valid JSON"),                    # RecursionError
    ("huge_int", '{"threshold": ' + "9" * 5000 + "}", "not valid JSON"),
    ("bad_kind", json.dumps({**_good(), "kind": "wobbly"}), "kind"),
    ("bad_side", json.dumps({**_good(), "side_specific": "yes"}), "side_specific"),
    ("bad_name", json.dumps({**_good("Bad Name!")}), "name"),
    ("non_ascii_name", json.dumps({**_good("café")}), "name"),  # it is a file name (the display name may be any script)
    ("bad_group", json.dumps({**_good(), "importance": {"tail": 1.0}}), "tail"),
    ("variants_not_list", json.dumps({**_good(), "variants": {"style": "x"}}), "variants must be a list"),
    ("variant_no_frames", json.dumps({**_good(), "variants": [{"style": "x", "threshold": 0.1}]}), "variant needs"),
    ("variant_bad_threshold", json.dumps({**_good(), "variants": [{**_good()["variants"][0], "threshold": 0}]}), "threshold"),
    ("bad_velocity", json.dumps({**_good(), "velocity_weight": -1}), "velocity_weight"),
    ("velocity_text", json.dumps({**_good(), "velocity_weight": "fast"}), "fast"),
    ("variant_bad_velocity", json.dumps({**_good(), "variants": [{**_good()["variants"][0], "velocity_weight": 9}]}), "velocity_weight"),
    ("variant_bad_group", json.dumps({**_good(), "variants": [{**_good()["variants"][0], "importance": {"tail": 1}}]}), "tail"),
    # (the style named: which of a template's styles is wrong)
    ("variant_bad_frames", json.dumps({**_good(), "variants": [{**_good()["variants"][0], "frames": [[1.0]]}]}),
     f"variant {_good()['variants'][0]['style']!r}: template frames must have shape"),
    ("variant_importance_list", json.dumps({**_good(), "variants": [{**_good()["variants"][0], "importance": [1, 2]}]}), "importance"),
    ("other_rate", json.dumps({**_good(), "rate_hz": 30}), "30 Hz"),  # would have played at half speed
]


def _with_value(key: str, value, variant: bool = False) -> str:
    """The good template with one value replaced (in its first variant when ``variant``)."""
    obj = _good()
    part = obj["variants"][0] if variant else obj
    if key in ("frames", "weights"):
        part[key][0][0] = value
    elif key == "preview":
        part[key][0][0][0] = value
    elif key.startswith("importance."):
        part["importance"] = {**(part.get("importance") or obj["importance"]), key.split(".")[1]: value}
    else:
        part[key] = value
    return json.dumps(obj)  # (Python's json writes NaN and Infinity, and reads them back)


# Numbers that are not real, finite and in range had loaded: a NaN importance spoiled the
# activations of the other neurons of the bank, 1e20 in a frame gave numpy overflow
# warnings, and "0.2" was taken as a threshold.
BAD += [
    ("importance_nan", _with_value("importance.arms", float("nan")), "importance"),
    ("importance_inf", _with_value("importance.legs", float("inf")), "importance"),
    ("importance_huge", _with_value("importance.torso", 1e300), "importance"),
    ("importance_bool", _with_value("importance.arms", True), "importance"),
    ("importance_text", _with_value("importance.arms", "1"), "importance"),
    ("variant_importance_nan", _with_value("importance.arms", float("nan"), variant=True), "importance"),
    # (a list, a string or a number had given Python's own words: "'int' object is not iterable")
    ("importance_list", _with_value("importance", [1, 2]),
     'template importance must be an object of group weights such as {"arms": 1.0}, got [1, 2]'),
    ("importance_string", _with_value("importance", "arms"), "template importance must be an object of group weights"),
    ("importance_number", _with_value("importance", 3), "template importance must be an object of group weights such as {\"arms\": 1.0}, got 3"),
    ("importance_false", _with_value("importance", False), "template importance must be an object of group weights"),
    ("threshold_text", _with_value("threshold", "0.2"), "threshold must be a number"),
    ("threshold_bool", _with_value("threshold", True), "threshold"),
    ("threshold_nan", _with_value("threshold", float("nan")), "threshold"),
    ("velocity_text_number", _with_value("velocity_weight", "0.25"), "velocity_weight must be a number"),
    ("velocity_bool", _with_value("velocity_weight", True), "velocity_weight"),
    ("variant_threshold_text", _with_value("threshold", "0.1", variant=True), "threshold must be a number"),
    ("frame_huge", _with_value("frames", 1e20), "frames must be within"),
    ("frame_beyond_float32", _with_value("frames", 1e300), "frames must be within"),
    ("frame_text", _with_value("frames", "0.1"), "frames must be lists of numbers"),
    ("frame_true", _with_value("frames", True), "frames must be lists of numbers"),  # (read as 1.0 by numpy)
    ("weight_huge", _with_value("weights", 1e20), "weights must be finite, within 0..1"),
    ("variant_frame_huge", _with_value("frames", 1e20, variant=True), "frames must be within"),
    ("variant_weight_text", _with_value("weights", "1", variant=True), "weights must be lists of numbers"),
    # (the figure the live screen draws: "0.1", true and NaN had loaded as 0.1, 1.0 and nan)
    ("preview_text", _with_value("preview", "0.1"), "preview must be lists of numbers"),
    ("preview_true", _with_value("preview", True), "preview must be lists of numbers"),
    ("preview_nan", _with_value("preview", float("nan")), "preview must be finite"),
    ("preview_huge", _with_value("preview", 1e300), "preview must be finite"),
    # (a row cut short by hand: numpy's "inhomogeneous shape after 1 dimensions" named no row)
    ("frame_row_short", json.dumps({**_good(), "frames": [*_good()["frames"][:3], _good()["frames"][3][:-1], *_good()["frames"][4:]]}),
     "frames must be rows of equal length: row 4 has 41 numbers, row 1 has 42"),
]


def _with_styles(*styles) -> str:
    """The good template with its variant given under each of ``styles``."""
    obj = _good()
    obj["variants"] = [{**obj["variants"][0], "style": style} for style in styles]
    return json.dumps(obj)


# Names, labels and display names of a file edited by hand: 5 had loaded as the template
# "5", two styles "wide" as two prototypes no one could tell apart, and a display name
# with a newline or of 100,000 characters as it was (the screen draws it as one line).
BAD += [
    ("name_number", json.dumps({**_good(), "name": 5}), "template name must be a string of lowercase letters, digits and '_', got 5"),
    ("name_list", json.dumps({**_good(), "name": ["salute"]}), "template name must be a string"),
    ("name_null", json.dumps({**_good(), "name": None}), "template name must be a string"),
    ("style_number", _with_styles(5), "variant style 5 must be a string of lowercase letters, digits and '_'"),
    ("style_spaces", _with_styles("Arms Wide"), "variant style 'Arms Wide' must be a string of lowercase letters"),
    ("style_twice", _with_styles("wide", "low", "wide"), "style 'wide' is given twice; each style of a template needs its own label"),
    ("display_number", _with_value("display_name", 7), "display_name must be a string, got 7"),
    ("display_newline", _with_value("display_name", "Wave\nnow"),
     "display_name holds a control character (U+000A at character 5); the screen shows a display name as one line of text"),
    ("display_tab", _with_value("display_name", "Wave\tnow"), "display_name holds a control character (U+0009 at character 5)"),
    ("display_escape", _with_value("display_name", "\x1b[31mRed"), "display_name holds a control character (U+001B at character 1)"),
    ("display_line_separator", _with_value("display_name", "Wave\u2028now"), "(U+2028 at character 5)"),
    ("display_lone_surrogate", _with_value("display_name", "Wave\ud800"), "(U+D800 at character 5)"),  # (no UTF-8 holds it)
    ("display_long", _with_value("display_name", "x" * 100_000),
     "display_name is 100000 characters long; at most 40 fit a neuron's row on the screen"),
    ("display_41", _with_value("display_name", "x" * 41), "display_name is 41 characters long"),
]


@pytest.mark.parametrize("stem, text, reason", BAD, ids=[b[0] for b in BAD])
def test_malformed_file_is_reported_with_name_and_reason_and_the_rest_load(tmp_path, stem, text, reason):
    (tmp_path / f"{stem}.json").write_text(text)
    (tmp_path / "salute.json").write_text(json.dumps(_good()))
    with pytest.raises(TemplateError) as info:
        load_template(tmp_path / f"{stem}.json")
    assert stem in str(info.value) and reason.lower() in str(info.value).lower()
    lib = TemplateLibrary.load([tmp_path])
    assert lib.names == ("salute",)
    assert len(lib.errors) == 1 and stem in lib.errors[0][0]


@pytest.mark.parametrize(
    ("given", "shown"),
    [("Wave (one hand)", "Wave (one hand)"), ("x" * 40, "x" * 40), ("  Clap\n", "Clap"),  # (stripped, as before)
     ("Salut à toi", "Salut à toi"), ("挥手", "挥手"), ("नमस्ते", "नमस्ते"),
     ("\U0001F469\u200d\U0001F680 wave", "\U0001F469\u200d\U0001F680 wave")],  # (a zero-width joiner is no control)
    ids=["builtin", "40-characters", "newline-at-the-end", "latin", "chinese", "devanagari", "emoji-joined"],
)
def test_a_display_name_of_one_line_in_any_script_loads(tmp_path, given, shown):
    (tmp_path / "salute.json").write_text(_with_value("display_name", given))
    assert load_template(tmp_path / "salute.json").display_name == shown


@pytest.mark.parametrize("styles", [("wide",), ("wide", "low", "mine2")])
def test_styles_with_labels_of_their_own_load(tmp_path, styles):
    (tmp_path / "salute.json").write_text(_with_styles(*styles))
    assert [v.style for v in load_template(tmp_path / "salute.json").variants] == list(styles)


@pytest.mark.parametrize(("folder", "how"), [(folder, how) for folder in ("extra", "user") for how in ("mode-000", "listing-refused")])
def test_a_folder_that_cannot_be_read_is_said_in_one_line_and_the_others_load(tmp_path, caplog, monkeypatch, request, folder, how):
    """A folder of mode 000 (--templates, or the user's) had loaded nothing without a word.

    Root reads any folder: there the listing's refusal is made by hand (``listing-refused``),
    as the operating system makes it for anyone else (``mode-000``).
    """
    import errno
    import os
    from pathlib import Path

    caplog.set_level(logging.WARNING, logger="mirrorcam")
    locked, readable = tmp_path / "locked", tmp_path / "readable"
    locked.mkdir()
    readable.mkdir()
    (locked / "salute.json").write_text(json.dumps(_good()))
    (readable / "bow.json").write_text(json.dumps(_good("bow")))
    if how == "mode-000":
        if os.geteuid() == 0:
            pytest.skip("root reads a folder of mode 000 (listing-refused tests the same path)")
        locked.chmod(0)
        request.addfinalizer(lambda: locked.chmod(0o755))  # (so that pytest can remove it)
    else:
        listdir = os.listdir

        def refused(path="."):
            if Path(path) == locked:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
            return listdir(path)

        monkeypatch.setattr(os, "listdir", refused)
    if folder == "user":
        monkeypatch.setenv("MIRRORCAM_TEMPLATES", str(locked))
        lib = TemplateLibrary.load(extra_dirs=[readable], include_user=True)
    else:
        lib = TemplateLibrary.load(extra_dirs=[locked, readable])
    said = f"template folder {locked} cannot be read (Permission denied); none of its templates are loaded"
    assert _warnings(caplog) == [said]
    assert lib.errors == ((str(locked), said),)
    assert "bow" in lib.names and "salute" not in lib.names and lib.names[: len(BUILTIN_NAMES)] == BUILTIN_NAMES


@pytest.mark.parametrize("shown", ["", "   ", None])
def test_a_blank_display_name_shows_the_template_name(tmp_path, shown):
    """(A file with "   " had loaded as it was, and its row was drawn without a name.)"""
    (tmp_path / "salute.json").write_text(_with_value("display_name", shown))
    assert load_template(tmp_path / "salute.json").display_name == "salute"


def test_user_folder_adds_and_overrides(tmp_path):
    (tmp_path / "salute.json").write_text(json.dumps(_good()))
    lib = TemplateLibrary.load(extra_dirs=[tmp_path])
    assert lib.names[: len(BUILTIN_NAMES)] == BUILTIN_NAMES and lib.names[-1] == "salute"
    with pytest.raises(TemplateError, match="does not exist"):
        TemplateLibrary.load(extra_dirs=[tmp_path / "nope"])


@pytest.mark.parametrize(
    "spec, expected",
    [("clip.mp4", ("clip.mp4", None, None)), ("a/b.mp4@1.5-3", ("a/b.mp4", 1.5, 3.0)), ("x@y.mp4@0-2", ("x@y.mp4", 0.0, 2.0))],
)
def test_parse_clip_spec(spec, expected):
    assert parse_clip_spec(spec) == expected


@pytest.mark.parametrize(
    "spec, said",
    [
        ("clip.mp4@3", "START-END"),
        ("clip.mp4@a-b", "START-END"),
        ("clip.mp4@4-2", "START < END"),
        ("clip.mp4@1,5-3", "a point for decimals"),  # (a user audit: no hint for the decimal comma...)
        ("clip.mp4@-1-2", "START is 0 or more"),  # (...nor for a negative start)
        ("clip.mp4@0-1e309", "finite"),  # (echoed as "0-inf")
    ],
)
def test_parse_clip_spec_rejects_bad_segments(spec, said):
    with pytest.raises(TemplateError, match=said):
        parse_clip_spec(spec)


def test_template_validation():
    with pytest.raises(ValueError, match="frames"):
        Template("x", "x", "dynamic", False, np.zeros((3, 5)), 0.1)
    with pytest.raises(ValueError, match="finite"):
        Template("x", "x", "dynamic", False, np.full((3, DIM), np.nan), 0.1)


@pytest.mark.parametrize(
    ("what", "reason"),
    [("fifo", "not a regular file"), ("dev_zero_link", "not a regular file"), ("folder", "not a regular file"),
     ("oversized", "more than a template can be"), ("dangling_link", "cannot be read")],
)
def test_only_regular_files_of_a_sane_size_are_read(tmp_path, what, reason):
    """A FIFO named x.json had hung the load for ever, a link to /dev/zero had eaten all
    memory: each is now reported like any malformed file, and the rest load."""
    import os
    import signal

    from mirrorcam.templates import MAX_FILE_BYTES

    path = tmp_path / f"{what}.json"
    if what == "fifo":
        os.mkfifo(path)
    elif what == "dev_zero_link":
        path.symlink_to("/dev/zero")
    elif what == "folder":
        path.mkdir()
    elif what == "oversized":
        with path.open("wb") as handle:
            handle.truncate(MAX_FILE_BYTES + 1)  # sparse: no disk used
    else:
        path.symlink_to(tmp_path / "gone.json")
    (tmp_path / "salute.json").write_text(json.dumps(_good()))

    def hung(*_args):
        raise TimeoutError("the template load did not end")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    try:
        lib = TemplateLibrary.load([tmp_path])
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert lib.names == ("salute",)
    assert len(lib.errors) == 1 and lib.errors[0][0] == str(path) and reason in lib.errors[0][1], lib.errors


def test_the_largest_template_teaching_makes_is_under_the_size_cap():
    from mirrorcam.templates import MAX_FILE_BYTES, MAX_VARIANTS, Variant

    t = builtin_library().get("clap")
    rng = np.random.default_rng(0)
    frames, weights = rng.uniform(-1.4, 2.8, (600, DIM)), rng.uniform(0, 1, (600, DIM))
    big = replace(t, frames=frames, weights=weights, preview=rng.normal(size=(400, 33, 3)),
                  variants=tuple(Variant(f"s{i}", frames, 0.1, weights=weights, groups=dict(t.groups)) for i in range(MAX_VARIANTS)))
    assert len(json.dumps(big.to_json(), indent=2, ensure_ascii=False).encode()) < MAX_FILE_BYTES


def test_saving_refuses_nan_and_writes_nothing(tmp_path):
    # Python's json had written NaN, which is not JSON: other readers of the file choke on it.
    t = replace(builtin_library().get("clap"), calibration={"margin": float("nan")})
    with pytest.raises(TemplateError, match="clap.json: not written"):
        save_template(tmp_path / "clap.json", t)
    assert list(tmp_path.iterdir()) == []


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_a_template_that_takes_anothers_place_is_said_to(tmp_path, caplog):
    """A user file not_squat.json holding "squat" had replaced the built-in squat without a
    word, and of two user files named "dupe" the later had won silently."""
    from mirrorcam.templates import BUILTIN_DIR

    caplog.set_level(logging.WARNING, logger="mirrorcam")
    (tmp_path / "not_squat.json").write_text(json.dumps(builtin_library().get("squat").to_json()))
    (tmp_path / "dupe_a.json").write_text(json.dumps(_good("dupe")))
    (tmp_path / "dupe_b.json").write_text(json.dumps(_good("dupe")))
    lib = TemplateLibrary.load(extra_dirs=[tmp_path])
    assert lib.names.count("squat") == 1 and "dupe" in lib.names
    said = _warnings(caplog)
    assert len(said) == 5, said  # three files named otherwise, two replacements
    assert f"template 'squat' of {tmp_path / 'not_squat.json'} replaces the one of {BUILTIN_DIR / 'squat.json'}" in "\n".join(said)
    assert f"template 'dupe' of {tmp_path / 'dupe_b.json'} replaces the one of {tmp_path / 'dupe_a.json'}" in "\n".join(said)
    assert f"template file {tmp_path / 'not_squat.json'} holds the template 'squat'" in "\n".join(said)
    assert all("\n" not in m for m in said)


def test_a_template_of_its_own_name_in_its_own_file_loads_without_a_word(tmp_path, caplog):
    # (at INFO, the CLI's level: a user audit saw the built-in's replacement said on every run)
    caplog.set_level(logging.INFO, logger="mirrorcam")
    (tmp_path / "salute.json").write_text(json.dumps(_good()))
    # ...nor a built-in's own file name: what `teach --add` saves, loaded on every run.
    (tmp_path / "squat.json").write_text(json.dumps(builtin_library().get("squat").to_json()))
    assert "salute" in TemplateLibrary.load(extra_dirs=[tmp_path]).names
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO] == []
