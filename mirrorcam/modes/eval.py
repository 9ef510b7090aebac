"""``mirrorcam eval MANIFEST``: measure the neurons on labelled clips of real people.

A clip's prediction is the template that fired most often in it (ties by total score),
or ``none`` when nothing fired.  Labels that are template names are positives (``a|b``
lists alternatives); anything else (``stand``, ``walk``, ``other:*``) expects ``none``.

Protocols:
    builtin  the built-in library as shipped (plus ``--templates`` folders).
    loso     leave one subject out: for each subject, every action is taught from clips
             of the *other* subjects only (up to 5 prototypes per action, one per
             training clip, thresholds calibrated against the other actions' clips as
             ``mirrorcam teach`` does), then that subject's clips are classified.  Needs
             every clip's subject, and at least two subjects.
    loso-add as ``loso``, but the taught prototypes join the built-in neuron as styles of
             it, as ``mirrorcam teach --add`` does: the library a user has after teaching
             their own ways of doing its actions.  Not a clean leave-one-subject-out:
             the built-ins were developed while looking at every clip's results.

Besides accuracy and false fires per minute on the negatives, every clip is also run
mirrored (flip consistency) and at half and double speed.  Landmarks come from the
pose cache (``mirrorcam.pipeline.clip_landmarks``): a second run costs only matching.

Example:
    mirrorcam eval ../shared/clips/MANIFEST.tsv --json out/eval.json --report out/eval
"""

from __future__ import annotations

import argparse
import csv
import difflib
import logging
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from mirrorcam.containers import PoseFrame
from mirrorcam.errors import ConfigError, MirrorcamError, SourceError
from mirrorcam.fileio import atomic_write_bytes, atomic_write_json, read_data_file, writable_destination
from mirrorcam.matching import BankOptions, NeuronBank, threshold_ratio
from mirrorcam.modes.common import file_arg, path_arg
from mirrorcam.progress import Progress
from mirrorcam.recording import Recording, is_recording_path, mirrored_recording
from mirrorcam.templates import BUILTIN_NAMES, TemplateLibrary

log = logging.getLogger(__name__)
NONE = "none"
SPEEDS = (0.5, 2.0)
PROTOCOLS = ("builtin", "loso", "loso-add")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="measure the neurons on a manifest of labelled clips",
        description="Classify every clip of MANIFEST (tab- or comma-separated, with path, label and subject "
        "columns) by the neuron that fired most often; report accuracy, false fires per minute on the "
        "negatives, per-class precision/recall, a confusion matrix, flip consistency and speed robustness.",
    )
    parser.add_argument("manifest", type=path_arg, help="MANIFEST.tsv or .csv")
    parser.add_argument("--root", type=path_arg, help="folder the manifest's paths are relative to (default: its folder)")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="builtin", help="library to evaluate (default: builtin)")
    parser.add_argument("--json", type=file_arg, metavar="OUT", help="write the full report as JSON")
    parser.add_argument("--report", type=path_arg, metavar="DIR", help="write report.json and confusion.png here")
    parser.add_argument("--templates", type=path_arg, action="append", metavar="DIR", help="extra template folder (builtin protocol)")
    parser.add_argument("--flip-source", choices=("auto", "video", "landmarks"), default="auto",
                        help="mirrored clips from the pose cache of the flipped video (video), by mirroring the "
                        "landmarks (landmarks), or the cache when present else landmarks (auto, default)")
    parser.add_argument("--no-variants", action="store_true", help="skip the flip and speed runs")
    parser.add_argument("--no-inhibition", action="store_true", help="turn lateral inhibition between neurons off")
    parser.set_defaults(run=run)


@dataclass(frozen=True)
class ClipRow:
    """One manifest row."""

    path: str
    labels: tuple[str, ...]
    subject: str

    @property
    def label(self) -> str:
        return "|".join(self.labels)

    def expected(self, names: tuple[str, ...]) -> tuple[str, ...]:
        """Acceptable predictions: the template names among the labels, else ``none``."""
        hits = tuple(lab for lab in self.labels if lab in names)
        return hits or (NONE,)


def read_manifest(path: Path, need_subjects: bool = False) -> list[ClipRow]:
    """Rows of a tab- or comma-separated manifest with path, label and subject columns.

    Args:
        path: The manifest.
        need_subjects: Refuse a row without a subject (the loso protocols group clips by
            it); otherwise such a clip is its own subject.

    Raises:
        ConfigError: Missing file, missing or repeated columns, a row with no label, an
            empty label alternative, a clip listed twice, or no rows.
    """
    try:
        data = read_data_file(path, "manifest")
        text = data.decode("utf-8-sig")  # (a byte-order mark is not part of the first column's name)
    except OSError as exc:
        raise ConfigError(f"cannot read manifest {path} ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"manifest {path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    lines = text.splitlines()
    blank = 0
    while blank < len(lines) and not lines[blank].strip():  # (blank lines above the header: it is the first line of text)
        blank += 1
    first = lines[blank] if blank < len(lines) else ""
    delimiter = "\t" if "\t" in first else ","
    reader = csv.DictReader(lines[blank:], delimiter=delimiter)
    try:
        # Column names as people write them: "Path, Label, Subject" is the same header.
        reader.fieldnames = [name.strip().lower() for name in reader.fieldnames or []]
        records = list(reader)
    except csv.Error as exc:  # (the csv reader's own count: DictReader's lags behind on an error)
        raise ConfigError(f"manifest {path}: line {blank + reader.reader.line_num}: {exc}") from None
    # DictReader keeps the last of two columns of one name: the other's values were lost unseen.
    repeated = sorted(name for name, n in Counter(reader.fieldnames).items() if name and n > 1)
    if repeated:
        raise ConfigError(f"manifest {path} has the column {repeated[0]!r} twice; keep one")
    missing = {"path", "label", "subject"} - set(reader.fieldnames)
    if missing:
        raise ConfigError(f"manifest {path} lacks the column(s) {', '.join(sorted(missing))}")
    rows = []
    seen: dict[str, int] = {}  # path -> its row (counted under the header), for the messages
    for number, row in enumerate(records, start=1):
        clip = (row.get("path") or "").strip()
        if not clip:
            continue
        where = f"manifest {path}, row {number} ({clip})"
        label = (row.get("label") or "").strip()
        if not label:
            raise ConfigError(f"manifest {path}: clip {clip} has no label")
        labels = tuple(x.strip() for x in label.split("|"))
        # ("bend|" and "other:" had been taken as "bend" and as a negative of no name.)
        if not all(labels):
            raise ConfigError(f"{where}: label {label!r} has an empty alternative; separate labels with one |")
        if "other:" in labels:
            raise ConfigError(f"{where}: label 'other:' lacks its name (other:NAME, e.g. other:dance)")
        subject = (row.get("subject") or "").strip()
        if not subject and need_subjects:
            raise ConfigError(f"{where} has no subject; --protocol loso and loso-add leave one subject out at a time")
        # Results are kept by path: a clip listed twice was counted twice, under one of its
        # rows' labels for both (a bend listed again as walk: a "false fire" on itself).
        if clip in seen:
            raise ConfigError(f"manifest {path} lists {clip} twice (rows {seen[clip]} and {number}); "
                              f"give a clip that shows two actions one row with LABEL1|LABEL2")
        seen[clip] = number
        rows.append(ClipRow(clip, labels, subject or clip))
    if not rows:
        raise ConfigError(f"manifest {path} lists no clips")
    return rows


# ---------------------------------------------------------------------------------------
# Variants of a recording.
# ---------------------------------------------------------------------------------------
def retimed_frames(frames, speed: float) -> list[PoseFrame]:
    """Frames replayed at ``speed`` (2.0 = twice as fast): timestamps divided by it."""
    return [replace(f, timestamp_ms=f.timestamp_ms / speed) for f in frames]


# ---------------------------------------------------------------------------------------
# Classification.
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClipResult:
    """One clip's outcome.

    Attributes:
        prediction: The most-fired template, or ``none``.
        fires: Firings per template.
        firings: How many firings there were in all.
        duration_s: The clip's length.
        closest: Per template, the nearest its match came to its threshold anywhere in
            the clip, as distance / threshold (below 1 it was active; a miss's own
            template at 1.2 was a near miss, an impostor at 1.05 nearly fired), for
            every template that matched at all.
        scores: Per template, the total score of its firings (ties in
            :meth:`prediction_among` go to the higher).
    """

    prediction: str
    fires: dict
    firings: int
    duration_s: float
    closest: dict = field(default_factory=dict)
    scores: dict = field(default_factory=dict)

    def prediction_among(self, names: set[str]) -> str:
        """The prediction counting only the firings of ``names`` (ties by total score), or ``none``."""
        fired = [n for n in self.fires if n in names]
        return max(fired, key=lambda n: (self.fires[n], self.scores.get(n, 0.0))) if fired else NONE


def classify(bank: NeuronBank, frames, duration_s: float) -> ClipResult:
    """Run ``frames`` through ``bank``; the most-fired template (ties: total score) or none."""
    bank.reset()
    counts: Counter = Counter()
    scores: Counter = Counter()
    peak = np.zeros(len(bank.names))  # over everyone in the clip
    for frame in frames:
        for activity in bank.update(frame).values():
            np.maximum(peak, activity.activation, out=peak)
            for f in activity.firings:
                counts[f.template] += 1
                scores[f.template] += f.score
    for firings in bank.finish().values():
        for f in firings:
            counts[f.template] += 1
            scores[f.template] += f.score
    for activation in bank.activations().values():  # the stream's end may end a match short
        np.maximum(peak, activation, out=peak)
    closest = {n: round(float(r), 3) for n, r in zip(bank.names, threshold_ratio(peak)) if np.isfinite(r)}
    if not counts:
        return ClipResult(NONE, {}, 0, duration_s, closest)
    best = max(counts, key=lambda n: (counts[n], scores[n]))
    return ClipResult(best, dict(sorted(counts.items())), int(sum(counts.values())), duration_s, closest,
                      {n: round(float(v), 4) for n, v in sorted(scores.items())})


def summarise(rows: list[ClipRow], results: dict[str, ClipResult], names: tuple[str, ...]) -> dict:
    """Accuracy, false fires per minute, per-class precision/recall and the confusion matrix."""
    classes = list(names) + [NONE]
    confusion = {a: {b: 0 for b in classes} for a in classes}
    pos_total = pos_correct = 0
    neg_fires = 0
    neg_minutes = 0.0
    for row in rows:
        res = results[row.path]
        expected = row.expected(names)
        truth = res.prediction if res.prediction in expected else expected[0]
        pred = res.prediction if res.prediction in classes else NONE
        confusion[truth][pred] += 1
        if expected != (NONE,):
            pos_total += 1
            pos_correct += res.prediction in expected
        else:
            neg_fires += res.firings
            neg_minutes += res.duration_s / 60.0
    per_class = {}
    for c in classes:
        tp = confusion[c][c]
        predicted = sum(confusion[a][c] for a in classes)
        actual = sum(confusion[c].values())
        per_class[c] = {
            "precision": round(tp / predicted, 4) if predicted else None,
            "recall": round(tp / actual, 4) if actual else None,
            "support": actual,
        }
    return {
        "accuracy": round(pos_correct / pos_total, 4) if pos_total else None,
        "action_clips": pos_total,
        "correct": pos_correct,
        "false_fires_per_minute": round(neg_fires / neg_minutes, 4) if neg_minutes else None,
        "negative_clips": sum(1 for r in rows if r.expected(names) == (NONE,)),
        "negative_minutes": round(neg_minutes, 3),
        "negative_fires": neg_fires,
        "per_class": per_class,
        "confusion": {"labels": classes, "matrix": [[confusion[a][b] for b in classes] for a in classes]},
    }


def draw_confusion(confusion: dict, title: str) -> np.ndarray:
    """The confusion matrix as a BGR image (rows: truth, columns: prediction)."""
    labels, matrix = confusion["labels"], np.asarray(confusion["matrix"])
    n = len(labels)
    names = [label if len(label) <= 32 else label[:31] + "~" for label in labels]  # (16 had made user names alike)
    width = max(cv2.getTextSize(f"{n:2d} {name}", cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)[0][0] for name in names)
    cell, left, top = 34, max(150, width + 16), 70
    img = np.full((top + n * cell + 20, left + n * cell + 20, 3), 255, np.uint8)
    cv2.putText(img, title, (10, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, "rows: truth, columns: prediction (numbered as the rows)", (10, 44), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (60, 60, 60), 1, cv2.LINE_AA)
    row_sums = np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    for i in range(n):
        cv2.putText(img, f"{i:2d} {names[i]}", (6, top + i * cell + 22), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(img, f"{i}", (left + i * cell + 10, top - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        for j in range(n):
            # Shaded by the share of the row, but any count at least a quarter: one false fire
            # among 26 negative clips had been all but white.
            frac = max(matrix[i, j] / row_sums[i, 0], 0.25)
            x0, y0 = left + j * cell, top + i * cell
            good = i == j
            shade = int(255 - 180 * frac)
            color = (shade, 255, shade) if good else (shade, shade, 255)
            cv2.rectangle(img, (x0, y0), (x0 + cell - 1, y0 + cell - 1), color if matrix[i, j] else (250, 250, 250), -1)
            cv2.rectangle(img, (x0, y0), (x0 + cell - 1, y0 + cell - 1), (200, 200, 200), 1)
            if matrix[i, j]:
                cv2.putText(img, str(int(matrix[i, j])), (x0 + 8, y0 + 22), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return img


# ---------------------------------------------------------------------------------------
# Loading.
# ---------------------------------------------------------------------------------------
def load_clips(rows: list[ClipRow], root: Path, flip_source: str, with_flip: bool,
               root_given: bool = True) -> tuple[dict, dict, str]:
    """Cached recordings (and mirrored ones) of every row (``root_given``: by ``--root``)."""
    from mirrorcam.pipeline import clip_landmarks, is_cached
    from mirrorcam.pose import PoseEstimatorOptions

    recs, flips = {}, {}
    used = set()
    options = PoseEstimatorOptions()
    with Progress(len(rows), "landmarks") as bar:
        for row in rows:
            path = root / row.path
            if not path.exists():
                raise SourceError(f"clip {row.path} of the manifest is missing under {root}"
                                  f"{'' if root_given else ' (the manifest folder; --root names another)'}")
            recs[row.path] = clip_landmarks(path, options, progress=False)
            if not any(f.persons for f in recs[row.path].frames):  # (replay and teach refuse such a clip)
                log.warning("nobody is found in any of the %d frames of %s: it is scored, but tells nothing "
                            "about the neurons (an action clip can only be a miss, a negative only an empty picture)",
                            len(recs[row.path]), row.path)
            if with_flip:
                # (A recording has no video to flip: its landmarks are mirrored whatever was asked.)
                video = not is_recording_path(path)
                if video and (flip_source == "video" or (flip_source == "auto" and is_cached(path, options, flip=True))):
                    flips[row.path] = clip_landmarks(path, options, flip=True, progress=False)
                    used.add("video")
                else:
                    flips[row.path] = mirrored_recording(recs[row.path])
                    used.add("landmarks")
            bar.update()
    return recs, flips, "+".join(sorted(used)) or "none"


def run_variants(bank_for, rows, recs, flips, variants: bool) -> dict:
    """Results per variant: ``{"normal": {path: ClipResult}, "flip": ..., "0.5": ..., "2.0": ...}``."""
    out = {"normal": {}}
    if variants:
        out.update({"flip": {}, "0.5": {}, "2.0": {}})
    with Progress(len(rows) * len(out), "matching") as bar:
        for row in rows:
            bank = bank_for(row)
            rec = recs[row.path]
            dur = rec.duration_s
            out["normal"][row.path] = classify(bank, rec.frames, dur)
            bar.update()
            if variants:
                out["flip"][row.path] = classify(bank, flips[row.path].frames, dur)
                bar.update()
                for s in SPEEDS:
                    out[str(s)][row.path] = classify(bank, retimed_frames(rec.frames, s), dur / s)
                    bar.update()
    return out


# ---------------------------------------------------------------------------------------
# Leave one subject out.
# ---------------------------------------------------------------------------------------
LOSO_WINDOWS_S = (1.2, 2.0)
LOSO_STRIDE_S = 0.6
LOSO_PER_CLIP = 10
LOSO_PROTOTYPES = 5  # the most examples `mirrorcam teach` accepts
LOSO_IMPOSTOR_MARGIN = 0.9  # 1.0: 51 % accuracy but 13.5 false fires/min and 79 % flip consistency


def candidate_windows(
    stream, rate_hz: float, gap_ms: float = BankOptions().person_timeout_ms
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Windows of a training clip that could be its action's template: ``(frames, weights, start_s)``.

    ``start_s`` counts from the clip's start, as ``mirrorcam teach CLIP@START-END`` does
    (not from the first frame with the person in it).

    Fixed lengths at a fixed stride, keeping the ones that move most (intros, cuts and
    pauses move little) and show the body well.  No window spans an absence of over
    ``gap_ms`` (the bank's ``person_timeout_ms``: there the person has left and their
    stream ends), which would be interpolated frames nobody performed.
    """
    from mirrorcam.matching import split_at_gaps, tick_stream

    parts = [tick_stream(part, rate_hz) for part in split_at_gaps(stream, gap_ms)]
    out = []
    for length in LOSO_WINDOWS_S:
        k = int(round(length * rate_hz))
        stride = max(int(round(LOSO_STRIDE_S * rate_hz)), 1)
        scored = []
        for times, x, w in parts:
            for i in range(0, len(x) - k + 1, stride):
                f, wt = x[i : i + k], w[i : i + k]
                if float(wt.mean()) < 0.3:
                    continue
                motion = float(np.abs(np.diff(f, axis=0)).sum())
                scored.append((motion, f, wt, times[i] / 1000.0))
        scored.sort(key=lambda s: -s[0])
        out += [(f, wt, t0) for _, f, wt, t0 in scored[:LOSO_PER_CLIP]]
    return out


def other_person_ids(rec: Recording, min_frames: int = 15) -> list[int]:
    """Ids of the people besides the main one seen in at least ``min_frames`` frames."""
    from mirrorcam.templates import main_person_id

    counts = Counter(p.id for f in rec.frames for p in f.persons)
    main = main_person_id(rec)
    return [pid for pid, n in sorted(counts.items()) if pid != main and n >= min_frames]


def loso_banks(rows: list[ClipRow], recs: dict, options: BankOptions, add: bool = False) -> tuple[dict, dict]:
    """One bank per subject, taught from the other subjects' clips only.

    Every window of every training clip is a candidate template; one matrix of
    distances (candidate x clip, the best over everyone in the clip) is computed once.
    Each fold keeps, per action, up to ``LOSO_PROTOTYPES`` prototypes: the best window
    of each training clip of the action, ranked by (median distance to the fold's other
    performances) / (10th percentile to the fold's impostor clips).  The prototypes
    become one template with variants (each keeping the feature-group importance of its
    own example, with which its distances were calibrated), so the bank treats them as
    one neuron whose activation is the best of theirs.  Each is calibrated between the two
    (:func:`mirrorcam.authoring.choose_threshold`; the impostors also include the
    generated performers ``mirrorcam teach`` calibrates against) and, with several, also kept below
    ``LOSO_IMPOSTOR_MARGIN`` x the ``0.05 / n``-quantile of the impostor clips (their
    false alarms add up).  An action no other subject shows falls back to the built-in
    template (reported in ``loso_fallbacks``).  With ``add`` (``loso-add``) the prototypes
    are styles added to the built-in neuron instead, which keeps its own.
    """
    from mirrorcam.matching import best_distances
    from mirrorcam.authoring import choose_threshold, is_style_of, synthetic_performances
    from mirrorcam.teaching import auto_groups, taught_velocity_weight
    from mirrorcam.templates import RATE_HZ, Template, Variant, builtin_library, embed_recording

    builtin = {t.name: t for t in builtin_library().templates}
    streams = {r.path: embed_recording(recs[r.path]) for r in rows}
    single = {r.path: r.labels[0] for r in rows if len(r.labels) == 1 and r.labels[0] in BUILTIN_NAMES}
    cands: list[Template] = []
    owner: list[str] = []
    for r in rows:
        if r.path not in single:
            continue
        for f, w, t0 in candidate_windows(streams[r.path], RATE_HZ, options.person_timeout_ms):
            cands.append(Template(single[r.path], single[r.path], "dynamic", False, f, 1.0, weights=w,
                                  groups=auto_groups(f, w), source=f"{r.path}@{t0:.1f}",
                                  velocity_weight=taught_velocity_weight("dynamic")))
            owner.append(r.path)
    paths = [r.path for r in rows]
    # Taught as `mirrorcam teach` teaches: the generated performers of the other actions
    # and of everyday movements are impostors too, beside the fold's real clips (loso
    # 67.6 -> 70.3 %, false fires 7.7 -> 7.2/min; flip consistency 90.5 -> 88.9 %).
    # They are the last columns of the distance matrix.
    synthetic = [(action, s) for action, s in synthetic_performances() if len(s) >= 2] if cands else []
    dist = np.full((len(cands), len(paths) + len(synthetic)), np.inf, np.float32)
    with Progress(len(paths) + len(synthetic), "loso distances") as bar:
        for j, p in enumerate(paths):
            if len(streams[p]) >= 2 and cands:
                dist[:, j] = best_distances(cands, streams[p], options)
            # A clip's distance is the best over everyone in it: a bystander who raises an
            # arm in a group clip is as much an impostor as the main person.
            for pid in other_person_ids(recs[p]):
                extra = embed_recording(recs[p], person=pid)
                if len(extra) >= 2 and cands:
                    dist[:, j] = np.minimum(dist[:, j], best_distances(cands, extra, options))
            bar.update()
        synthetic_cols: dict[str, list[int]] = {}
        for j, (action, stream) in enumerate(synthetic, start=len(paths)):
            dist[:, j] = best_distances(cands, stream, options)
            synthetic_cols.setdefault(action, []).append(j)
            bar.update()
    col = {p: j for j, p in enumerate(paths)}
    banks, fallbacks = {}, {}
    for subject in sorted({r.subject for r in rows}):
        pool = [r for r in rows if r.subject != subject]
        library = []
        for name in BUILTIN_NAMES:
            pos_paths = [r.path for r in pool if r.path in single and single[r.path] == name]
            neg_cols = [col[r.path] for r in pool if name not in r.labels]
            neg_cols += [j for action, js in synthetic_cols.items() if not is_style_of(action, name) for j in js]
            ids = [i for i, o in enumerate(owner) if o in pos_paths]
            if not ids:
                library.append(builtin[name])
                fallbacks.setdefault(subject, []).append(name)
                continue
            # Several prototypes per action (teaching allows 1-5 examples): the best
            # window of each training clip, scored by (median distance to the fold's
            # other performances) / (10th percentile to the fold's impostors); the
            # neuron's activation is the best of its prototypes (one template with variants).
            per_clip: dict[str, tuple[float, int, np.ndarray]] = {}
            for i in ids:
                pos = dist[i, [col[p] for p in pos_paths if p != owner[i]]]
                neg = dist[i, neg_cols]
                neg = neg[np.isfinite(neg)]
                n10 = float(np.quantile(neg, 0.1)) if len(neg) else 1.0
                p50 = float(np.median(pos[np.isfinite(pos)])) if np.isfinite(pos).any() else 0.5 * n10
                score = p50 / max(n10, 1e-6)
                if owner[i] not in per_clip or score < per_clip[owner[i]][0]:
                    per_clip[owner[i]] = (score, i, pos)
            chosen = sorted(per_clip.values(), key=lambda c: c[0])[:LOSO_PROTOTYPES]
            protos = []
            for _, best, best_pos in chosen:
                neg = dist[best, neg_cols]
                thr, facts = choose_threshold(best_pos, neg)
                # Several prototypes add their false alarms up: share the impostor
                # budget (5 % of the fold's impostor clips) between them.
                finite = neg[np.isfinite(neg)]
                if len(chosen) > 1 and len(finite):
                    thr = min(thr, LOSO_IMPOSTOR_MARGIN * float(np.quantile(finite, 0.05 / len(chosen))))
                protos.append(replace(cands[best], threshold=thr, calibration=facts))
            # One neuron per action: the first prototype with the others as its variants, or
            # (loso-add) the built-in with all of them added as styles.
            styles = tuple(Variant(p.source, p.frames, p.threshold, weights=p.weights, calibration=p.calibration,
                                   velocity_weight=p.velocity_weight, groups=p.groups) for p in protos)
            if add:
                library.append(replace(builtin[name], variants=builtin[name].variants + styles))
            else:
                library.append(replace(protos[0], variants=styles[1:]))
        banks[subject] = NeuronBank(library, options)
    fallback_names = sorted({n for v in fallbacks.values() for n in v})
    return banks, {"loso_candidates": len(cands), "loso_fallbacks": {k: v for k, v in sorted(fallbacks.items())},
                   "loso_fallback_actions": fallback_names}


def run(args: argparse.Namespace) -> int:
    if args.templates and args.protocol != "builtin":
        raise ConfigError(f"--templates adds folders to the builtin protocol; {args.protocol} teaches its own library")
    rows = read_manifest(args.manifest, need_subjects=args.protocol != "builtin")
    subjects = {r.subject for r in rows}
    if args.protocol != "builtin" and len(subjects) < 2:
        # With one subject no fold has anyone to learn from: every neuron fell back to the
        # built-in one, and the builtin protocol's result was reported as loso's.
        raise ConfigError(f"--protocol {args.protocol} needs clips of at least two subjects, and every clip here has "
                          f"the subject {next(iter(subjects))!r}: nobody else to teach from (use --protocol builtin)")
    names = BUILTIN_NAMES
    side_specific: set[str] = set()  # (loso teaches the built-in names, none side-specific)
    if args.protocol == "builtin":
        library = TemplateLibrary.load(extra_dirs=args.templates or [])
        if not library.templates:
            raise MirrorcamError("no templates to evaluate (models/templates is empty)")
        unloaded = [n for n in BUILTIN_NAMES if n not in library.names]
        if unloaded:  # (its clips would count as misses no neuron could get: a lower accuracy, unexplained)
            raise MirrorcamError(f"built-in template(s) {', '.join(unloaded)} did not load (see the warnings above); "
                                 "restore models/templates from git")
        names = tuple(dict.fromkeys(BUILTIN_NAMES + library.names))
        side_specific = {t.name for t in library.templates if t.side_specific}
    _check_labels(rows, names)  # before the minutes of work a misspelt label would spoil
    root = args.root or args.manifest.parent
    _check_report_outputs(args, rows, root)  # before the minutes of work a bad output would waste
    started = time.perf_counter()
    recs, flips, flip_used = load_clips(rows, root, args.flip_source, not args.no_variants, root_given=args.root is not None)
    options = BankOptions(inhibition=not args.no_inhibition)
    extra: dict = {}
    if args.protocol == "builtin":
        bank = NeuronBank(library.templates, options)
        results = run_variants(lambda row: bank, rows, recs, flips, not args.no_variants)
    else:
        banks, extra = loso_banks(rows, recs, options, add=args.protocol == "loso-add")
        results = run_variants(lambda row: banks[row.subject], rows, recs, flips, not args.no_variants)
    report = summarise(rows, results["normal"], names)
    report["protocol"] = args.protocol
    if not args.no_variants:
        # Over the templates that are not side-specific: "raise the right arm" must not fire
        # on its mirror image, and every other template must give the same result.
        free = set(names) - side_specific
        same = sum(results["flip"][r.path].prediction_among(free) == results["normal"][r.path].prediction_among(free)
                   for r in rows)
        report["flip_consistency"] = round(same / len(rows), 4)
        report["flip_source"] = flip_used
        at_speed = {str(s): summarise(rows, results[str(s)], names) for s in SPEEDS}
        report["speed_accuracy"] = {s: r["accuracy"] for s, r in at_speed.items()}
        report["speed_false_fires_per_minute"] = {s: r["false_fires_per_minute"] for s, r in at_speed.items()}
    else:  # (the same keys either way: a reader of the JSON need not know how it was run)
        report["flip_consistency"] = None
        report["flip_source"] = None
        report["speed_accuracy"] = {str(s): None for s in SPEEDS}
        report["speed_false_fires_per_minute"] = {str(s): None for s in SPEEDS}
    report["clips"] = [
        {
            "path": r.path, "label": r.label, "subject": r.subject,
            "prediction": results["normal"][r.path].prediction,
            "correct": results["normal"][r.path].prediction in r.expected(names),
            "fires": results["normal"][r.path].fires,
            "closest": _closest(results["normal"][r.path].closest, r.expected(names)),
            **({"flip_prediction": results["flip"][r.path].prediction,
                "speed_predictions": {str(s): results[str(s)][r.path].prediction for s in SPEEDS}} if not args.no_variants else {}),
        }
        for r in rows
    ]
    report.update(extra)
    report["seconds"] = round(time.perf_counter() - started, 1)
    if args.json:
        atomic_write_json(args.json, report)
    if args.report:
        atomic_write_json(args.report / "report.json", report)
        ok, png = cv2.imencode(".png", draw_confusion(report["confusion"], f"mirrorcam eval ({args.protocol})"))
        if ok:
            atomic_write_bytes(args.report / "confusion.png", png.tobytes())
    print_report(report)  # after the files: a closed pipe on stdout must not lose them
    return 0


def _check_report_outputs(args: argparse.Namespace, rows: list[ClipRow], root: Path) -> None:
    """Refuse, before any work, outputs that cannot be written or would replace an input.

    Raises:
        MirrorcamError: ``--json`` or ``--report``'s files are a folder, a device, under a
            file or unwritable, are the manifest or one of its clips (``--json m.tsv``
            had replaced the manifest with the report), or are one another.
    """
    outputs = [args.json] if args.json else []
    if args.report:
        if args.report.exists() and not args.report.is_dir():
            raise MirrorcamError(f"--report {args.report} is a file; it names a folder for report.json and confusion.png")
        outputs += [args.report / "report.json", args.report / "confusion.png"]
    inputs = {args.manifest.resolve(): "the manifest", **{(root / r.path).resolve(): f"the clip {r.path}" for r in rows}}
    written: set[Path] = set()
    for out in outputs:
        writable_destination(out, create=False)  # (a run refused later leaves no empty folder)
        if out.resolve() in inputs:
            raise MirrorcamError(f"{out} would overwrite {inputs[out.resolve()]}")
        # (--json rep/report.json with --report rep: the same file written twice)
        if out.resolve() in written:
            raise MirrorcamError(f"--json {args.json} would overwrite the {out.name} --report {args.report} writes; "
                                 "give one or the other")
        written.add(out.resolve())


NEGATIVE_LABELS = ("stand", "walk", "run")
"""Labels that expect nothing to fire, besides ``other:*``."""


def _check_labels(rows: list[ClipRow], names: tuple[str, ...]) -> None:
    """Refuse a label that is nearly a template's name; say which other labels count as
    expecting ``none``.

    Raises:
        ConfigError: A label such as ``wave_onehand``: its clips would have been scored as
            negatives, and the report would have been wrong without a word.
    """
    other = Counter(lab for r in rows for lab in r.labels
                    if lab not in names and lab not in NEGATIVE_LABELS and not lab.startswith("other:"))
    for lab in sorted(other):
        # (lower-cased too: "Bend" is "bend" misspelt, though only 0.75 alike to difflib)
        near = [n for n in names if n == lab.lower()] or difflib.get_close_matches(lab, names, n=1, cutoff=0.8)
        if near:
            raise ConfigError(f"label {lab!r} of the manifest is not a template: did you mean {near[0]!r}? "
                              f"(a label for clips that should fire nothing: stand, walk, run or other:NAME)")
    if other:
        log.info("labels that are no template, so their clips expect nothing to fire: %s",
                 ", ".join(f"{lab} ({n} clip{'s' if n > 1 else ''})" for lab, n in sorted(other.items())))


def print_report(report: dict) -> None:
    acc = report["accuracy"]
    n_act, n_neg = report['action_clips'], report['negative_clips']
    print(f"protocol {report['protocol']}: accuracy {_pct(acc)} on {n_act} action clip{'s' * (n_act != 1)}, "
          f"{_rate(report['false_fires_per_minute'])} false fires/min on {n_neg} negative clip{'s' * (n_neg != 1)} "
          f"({report['negative_minutes']} min)")
    if report.get("flip_consistency") is not None:
        sp = report["speed_accuracy"]
        print(f"flip consistency {_pct(report['flip_consistency'])} ({report.get('flip_source')}), "
              f"speed 0.5x {_pct(sp['0.5'])}, 2.0x {_pct(sp['2.0'])}")
    print(f"{'class':18s} {'precision':>9s} {'recall':>7s} {'n':>3s}")
    for name, pc in report["per_class"].items():
        if pc["support"] or pc["precision"] is not None:
            print(f"{name:18s} {_pct(pc['precision']):>9s} {_pct(pc['recall']):>7s} {pc['support']:3d}")
    for clip in report["clips"]:
        if not clip["correct"]:
            near = ", ".join(f"{n} {r:.2f}x" for n, r in clip["closest"].items())
            print(f"  miss: {clip['path']} [{clip['label']}] -> {clip['prediction']} {clip['fires']}"
                  + (f" (closest to threshold: {near})" if near else ""))


def _closest(closest: dict, expected: tuple[str, ...], rivals: int = 2) -> dict:
    """A clip's expected templates and its ``rivals`` nearest others, by distance / threshold."""
    own = {n: closest[n] for n in expected if n in closest}
    others = sorted((r, n) for n, r in closest.items() if n not in expected)[:rivals]
    return {**own, **{n: r for r, n in others}}


def _rate(v) -> str:
    return "-" if v is None else f"{v:.2f}"


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"
