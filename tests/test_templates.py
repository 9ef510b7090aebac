"""Templates: the built-in library, the file format, malformed files, saving."""

from __future__ import annotations

import json
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
    ("variant_importance_list", json.dumps({**_good(), "variants": [{**_good()["variants"][0], "importance": [1, 2]}]}), "importance"),
    ("other_rate", json.dumps({**_good(), "rate_hz": 30}), "30 Hz"),  # would have played at half speed
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


@pytest.mark.parametrize("spec", ["clip.mp4@3", "clip.mp4@a-b", "clip.mp4@4-2"])
def test_parse_clip_spec_rejects_bad_segments(spec):
    with pytest.raises(TemplateError):
        parse_clip_spec(spec)


def test_template_validation():
    with pytest.raises(ValueError, match="frames"):
        Template("x", "x", "dynamic", False, np.zeros((3, 5)), 0.1)
    with pytest.raises(ValueError, match="finite"):
        Template("x", "x", "dynamic", False, np.full((3, DIM), np.nan), 0.1)
