"""Every template frame's distance to the input, one tick at a time: the matcher's arithmetic.

:class:`TemplateMatrices` lays a bank's templates out as a few matrices, so that a tick's
distances from the input and the mirrored input to every frame of every template are one
product per matrix (the two inputs as its two columns), plus element-wise work.  The distance is a weighted squared
distance, expanded (``|x - y|^2 = |x|^2 - 2 x.y + |y|^2``) so that the template side is
precomputed; the input's trust is one per body part (:func:`part_trust`); what the input
does not show costs a prior (:func:`unseen_weights`); a template may add a velocity
channel (:func:`velocity_features`).  :class:`mirrorcam.matching.NeuronBank` runs the
DP over these distances.

Reading the template matrices is most of a large bank's tick (49 MB for 1,000 templates
of 60 frames), so the products run in cache-sized chunks (:func:`products`) that a
large bank spreads over threads (:class:`RowSplit`).

Example:
    >>> import numpy as np
    >>> from mirrorcam.embedding import DIM, FEATURES
    >>> trust = np.zeros(DIM, np.float32)
    >>> trust[FEATURES.index("l_forearm.x")] = 0.9
    >>> shared = part_trust(trust)  # a body part's x, y and z share one trust
    >>> round(float(shared[FEATURES.index("l_forearm.z")]), 3)
    0.3
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mirrorcam.embedding import DIM, FEATURES, GROUPS, group_mask

if TYPE_CHECKING:
    from mirrorcam.matching import BankOptions


def _stem_matrix() -> np.ndarray:
    """``(DIM, G)`` indicator of which features belong to one body part (``l_thigh.x/.y/.z``)."""
    stems = list(dict.fromkeys(n.split(".")[0] for n in FEATURES))
    return np.array([[n.split(".")[0] == g for g in stems] for n in FEATURES], np.float32)


_STEMS = _stem_matrix()
_STEM_SIZE = _STEMS.sum(axis=0)  # (G,) features per body part
_GROUP_MASKS = tuple(group_mask(g) for g in GROUPS)


def part_trust(weight: np.ndarray) -> np.ndarray:
    """Features' trust made one per body part (the mean of its components), shape kept.

    An embedding's components of one body part (a limb direction's x, y, z) come from the
    same landmarks and already share one weight; the matcher relies on that: the
    template side of the distance then needs one squared-value column per body part
    instead of one per feature (62 columns instead of 84, see :class:`TemplateMatrices`).
    """
    return ((np.asarray(weight, np.float32) @ _STEMS) / _STEM_SIZE) @ _STEMS.T


def velocity_features(change_per_tick: np.ndarray, scale: float) -> np.ndarray:
    """Which way each body part is moving: its change per tick over ``sqrt(|change|^2 + scale^2)``.

    Why a direction and not a speed: at half or double speed a movement changes half or
    twice as fast, but the same way; which way it changes is what a wave (the forearm
    swinging back and forth) or a jump (hips up, then down) has and a still pose near
    them has not (a part moving much less than ``scale`` per tick counts as still).
    A body part's components (a limb direction's x, y, z) share one norm.
    """
    change = np.asarray(change_per_tick, np.float32)
    norm = np.sqrt((change * change) @ _STEMS + np.float32(scale) ** 2) @ _STEMS.T
    return (change / norm).astype(np.float32)


def unseen_weights(frames: np.ndarray, weight: np.ndarray, context: float) -> tuple[np.ndarray, np.ndarray]:
    """``(DIM,)`` per-feature weights of what a template charges when the input hides it:
    ``(hidden in the picture, outside it)``.

    A feature group (``embedding.GROUPS``: torso, arms, legs, lift) for the first, a
    body part (a forearm) for the second, counts by how much the template moves it,
    relative to its most moving one: ``context + (1 - context) * relative movement``,
    times the feature's weight.  Why: the unseen cost exists so that a side view whose
    far arm is hidden does not match a wave of that arm on everything else, and the
    waving arm still costs in full; but the legs of a person waving at a laptop camera
    carry nothing a wave is about, and at full cost they took a quarter of the wave's
    threshold.  Per group for what is hidden inside the picture (a punch's hidden guard
    arm is still the punch's business); per part for what is outside it (the still arm
    of a one-hand wave, below a laptop camera's frame).  A template that moves nothing
    (a held pose) charges everything in full.

    Args:
        frames: ``(K, DIM)`` template frames.
        weight: ``(DIM,)`` the template's feature weights (importance times trust).
        context: Share charged for a group or part the template does not move, in [0, 1].
    """
    frames = np.asarray(frames, np.float32)
    weight = np.asarray(weight, np.float32)
    dev = frames - frames.mean(axis=0)
    part_move = np.sqrt(((dev * dev) @ _STEMS).mean(axis=0))  # (G,) RMS movement per body part
    part_move = np.where(weight @ _STEMS > 0, part_move, 0.0)  # parts the template ignores
    by_part = np.ones(DIM, np.float32)
    if len(frames) > 1 and part_move.max() > 1e-6:
        by_part = ((part_move / part_move.max()) @ _STEMS.T).astype(np.float32)
    by_group = by_part.copy()
    for mask in _GROUP_MASKS:
        by_group[mask] = by_part[mask].max()
    return tuple((weight * (context + (1.0 - context) * r)).astype(np.float32) for r in (by_group, by_part))


@dataclass(frozen=True, eq=False)
class Block:
    """One rectangle of DP cells: a row per template (as stored, or its slowed copy).

    Attributes:
        rows: ``(R,)`` the row of :class:`TemplateMatrices` each row here matches for.
        lengths: ``(R,)`` template frames per row (cells past them are padding).
        motion: ``(R,)`` each row's template movement (the motion gate).
        open_share: ``BankOptions.open_share``.
        k: Cells per row.
    """

    rows: np.ndarray
    lengths: np.ndarray
    motion: np.ndarray
    open_share: float
    k: int

    @property
    def end_col(self) -> np.ndarray:
        return self.lengths - 1

    @property
    def open_entry(self) -> np.ndarray:
        """``(R, k)``: the frames a stream's first tick may enter (0..j)."""
        return np.arange(self.k)[None, :] <= (self.open_share * self.lengths)[:, None]

    @property
    def open_end(self) -> np.ndarray:
        """``(R,)``: the first frame a match may end on when the stream ends."""
        return np.maximum(np.ceil((1.0 - self.open_share) * self.lengths - 1e-9).astype(np.int64) - 1, 0)


class TemplateMatrices:
    """Template data laid out for the per-tick distance and the DP.

    Rows of the DP are ``N + M``: every template against the input (rows ``0..N-1``)
    and the ``M`` templates that are not side-specific (``mirror_idx``) against the
    mirrored input (rows ``N..N+M-1``; comparing the mirrored input with a template
    equals comparing the input with the mirrored template).  Side-specific templates
    have no mirrored row at all, so they cost no DP step there (their column of the
    mirrored input's product is computed and dropped: one product for both is cheaper).
    A template's feature weights are constant over its frames (importance times the
    frames' mean trust), which keeps the distance to one matrix product.
    """

    def __init__(self, templates: Sequence, options: BankOptions) -> None:
        n = len(templates)
        self.n_prototypes = n
        self.mirror_idx = np.flatnonzero([not bool(t.side_specific) for t in templates])
        row_template = np.concatenate([np.arange(n), self.mirror_idx])
        self.row_template = row_template  # (N + M,) the prototype each DP row matches
        self.n_rows = len(row_template)
        lengths = np.array([len(t.frames) for t in templates], np.int64)
        row_lengths = lengths[row_template]
        k = int(lengths.max())
        self.k = k
        w = np.stack([np.asarray(t.importance, np.float32) * np.asarray(t.weights, np.float32).mean(axis=0) for t in templates])
        y = np.zeros((n, k, DIM), np.float32)
        for i, t in enumerate(templates):
            y[i, : len(t.frames)] = np.asarray(t.frames, np.float32)
        self.w = w  # (N, D)
        self.wsum = np.maximum(w.sum(axis=1), 1e-6)  # (N,)
        # One (N*K, D+G) matrix: [w*y | w*y^2 summed per body part]; times
        # [-2 v x ; v per body part] it gives the cross and template terms of the expanded
        # weighted squared distance (the input's trust v is one per body part).  Rows are
        # pre-divided by the template's total weight (the distance is a weighted mean).
        # Why the per-part sum: reading this matrix is most of a tick's cost (80 -> 58
        # columns, with session 6's 40 features, took 1,000 templates x 60 frames, none
        # side-specific, from 10.5-13.5 to 8.1-9.2 ms a tick; 84 -> 62 with today's 42;
        # pose and velocity matrices together now fit a 32 MB L3 cache).
        self.a = _distance_matrix(w, y, self.wsum)
        # The mirrored input is compared with the same matrix (one product for both, see
        # products), then the rows of the templates that are not side-specific are kept.
        self.mirror_rows = slice(None) if len(self.mirror_idx) == n else self.mirror_idx
        self.unseen_cost = float(options.unseen_cost)
        ctx = options.unseen_context
        hidden, outside = zip(*(unseen_weights(y[i, :length], w[i], ctx) for i, length in enumerate(lengths)))
        self.w_unseen, self.w_unseen_out = np.stack(hidden), np.stack(outside)
        # Every template's frame-to-frame changes, once: its movement (the motion gate) and,
        # for the templates that use it, the velocity channel (the first frame takes the
        # second's change).
        dy = np.zeros_like(y)
        motion = np.zeros(n, np.float32)
        for i, length in enumerate(lengths):
            if length > 1:
                step = np.diff(y[i, :length], axis=0)
                dy[i, 1:length] = step
                dy[i, 0] = step[0]
                motion[i] = float(np.sqrt((step**2) @ w[i] / self.wsum[i]).sum())
        row_motion = motion[row_template]
        lam = np.array([float(getattr(t, "velocity_weight", 0.0)) for t in templates], np.float32)
        self.uses_velocity = bool((lam > 0).any())
        self.velocity_scale = float(options.velocity_scale)
        if self.uses_velocity:
            vy = velocity_features(dy, self.velocity_scale)
            self.w_vel = lam[:, None] * w  # (N, D)
            self.a_vel = _distance_matrix(self.w_vel, vy, self.wsum)
        self.thresholds = np.array([float(t.threshold) for t in templates], np.float32)
        share = float(options.open_share)
        self.blocks = (Block(np.arange(self.n_rows), row_lengths, row_motion, share, k),)
        # The slowed copies (BankOptions.slowed_copies) of the rows that move: frame 2i is
        # the template's frame i, frame 2i+1 halfway to frame i+1.  Their distances come
        # from the template's own (the weighted squared distance to a midpoint is the mean
        # of the distances to its ends less a quarter of the ends' own, see
        # frame_distance), so the copies cost no matrix product of their pose, only
        # (template frames - 1) x body parts for the ends' distances.
        self.slowed = None
        if options.slowed_copies:
            kinds = np.array([t.kind != "static" for t in templates])[row_template]
            rows = np.flatnonzero(kinds & (row_lengths > 1))
            if len(rows):
                self.slowed = Block(rows, 2 * row_lengths[rows] - 1, row_motion[rows], share, 2 * k - 1)
                self.blocks += (self.slowed,)
                seg = (w[:, None, :] * dy[:, 1:] ** 2) @ _STEMS / self.wsum[:, None, None]  # (N, K-1, G): each step's own distance
                self.a_seg = np.ascontiguousarray(seg.reshape(n * (k - 1), -1), np.float32)
                # A copy frame's velocity is its half of the template's change: frame q
                # lies on the template's step ceil(q / 2) (frame 0 takes step 1's, as above).
                self.slowed_step = (np.arange(2 * k - 1) + 1) // 2
                if self.uses_velocity:
                    self.a_vel_slowed = _distance_matrix(self.w_vel, velocity_features(dy / 2, self.velocity_scale), self.wsum)
        cells = sum(len(b.rows) * b.k for b in self.blocks)
        workers = options.workers or (min(cores(), MAX_WORKERS) if cells >= PARALLEL_CELLS else 1)
        self.split = RowSplit(workers)

    def _split(self, both: np.ndarray, k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(N, k)`` for the input and ``(M, k)`` for the mirrored input from a
        :func:`products` result of ``k`` frames a template (``K`` unless given)."""
        k = self.k if k is None else k
        return both[:, 0].reshape(self.n_prototypes, k), both[:, 1].reshape(self.n_prototypes, k)[self.mirror_rows]

    def to_rows(self, per_template: np.ndarray) -> np.ndarray:
        """``(N + M,)`` row values from ``(N, 2)`` per-template values for the input and the mirrored input."""
        return np.concatenate([per_template[:, 0], per_template[self.mirror_idx, 1]])

    def frame_distance(
        self, xs: np.ndarray, vs: np.ndarray, dxs: np.ndarray | None = None, dvs: np.ndarray | None = None,
        ins: np.ndarray | None = None,
    ) -> tuple[np.ndarray, ...]:
        """Distances of the input (``xs[0]``) and mirrored input (``xs[1]``) to every row's
        template frames, one array per block: ``(N + M, K)`` and, with slowed copies,
        ``(S, 2K - 1)`` for theirs.

        ``dxs``/``dvs``: the input's change per tick and its trust (the velocity channel).
        ``ins``: which features are inside the picture (``Embedding.in_view``; all if None).
        """
        n, k, mi = self.n_prototypes, self.k, self.mirror_idx
        vs = part_trust(vs)
        b = _input_vector(xs, vs)
        own = self.w @ (vs * xs * xs).T  # (N, 2)
        # What is not seen is not free: the template's unseen share costs a prior
        # distance (in full for the groups it moves, see unseen_weights).  Without it a
        # side view whose far arm is hidden "matches" a wave of that arm on everything
        # else.  (N, 2) per template and side: the input's own squared term and the
        # unseen share, hidden in the picture or outside it.
        missing = np.clip(1.0 - vs, 0.0, 1.0)
        if ins is None:
            unseen = self.w_unseen @ missing.T
        else:
            ins = part_trust(ins)
            unseen = self.w_unseen @ (missing * ins).T + self.w_unseen_out @ (missing * (1.0 - ins)).T
        input_term = ((own + self.unseen_cost * unseen) / self.wsum[:, None]).astype(np.float32)
        d = np.empty((self.n_rows, k), np.float32)
        direct, mirrored = d[:n], d[n:]
        pose, pose_mirrored = self._split(products(self.a, b, self.split))
        np.add(pose, input_term[:, 0:1], out=direct)
        np.add(pose_mirrored, input_term[mi, 1:2], out=mirrored)
        slowed = None if self.slowed is None else self._slowed_pose(d, b)
        if self.uses_velocity and dxs is not None and dvs is not None:
            vx = velocity_features(dxs, self.velocity_scale)
            dvs = part_trust(dvs)
            bv = _input_vector(vx, dvs)
            own_vel = ((self.w_vel @ (dvs * vx * vx).T) / self.wsum[:, None]).astype(np.float32)
            vel, vel_mirrored = self._split(products(self.a_vel, bv, self.split))
            direct += vel
            direct += own_vel[:, 0:1]
            mirrored += vel_mirrored
            mirrored += own_vel[mi, 1:2]
            if slowed is not None:
                vel, vel_mirrored = self._split(products(self.a_vel_slowed, bv, self.split))
                vel = np.concatenate([vel + own_vel[:, 0:1], vel_mirrored + own_vel[mi, 1:2]])
                slowed += vel[self.slowed.rows][:, self.slowed_step]
        np.maximum(d, 0.0, out=d)
        if slowed is None:
            return (d,)
        np.maximum(slowed, 0.0, out=slowed)
        return d, slowed

    def _slowed_pose(self, d: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``(S, 2K - 1)`` pose distances of the slowed copies, from the rows' own ``d`` (N + M, K).

        For a weighted squared distance, the distance to the midpoint of two frames is
        the mean of the distances to them less a quarter of their distance to each other
        (``|x - (a + b) / 2|^2 = (|x - a|^2 + |x - b|^2) / 2 - |a - b|^2 / 4``, term by
        term); the latter weighs the template's step per body part by the input's trust
        in it (``b[:, DIM:]``).  The costs of unseen parts are the row's, as a constant.
        """
        k, rows = self.k, self.slowed.rows
        own = d[rows]
        out = np.empty((len(rows), 2 * k - 1), np.float32)
        out[:, 0::2] = own
        if k > 1:
            steps = np.concatenate(self._split(products(self.a_seg, b[:, DIM:], self.split), k - 1))
            out[:, 1::2] = 0.5 * (own[:, :-1] + own[:, 1:]) - 0.25 * steps[rows]
        return out

    def steps(self, dx2: np.ndarray, vv: np.ndarray) -> np.ndarray:
        """``(N + M,)`` input movement per row from squared feature changes ``dx2`` (2, D) and trust ``vv`` (2, D)."""
        num = self.w @ (dx2 * vv).T  # (N, 2)
        den = self.w @ vv.T
        return self.to_rows(np.sqrt(num / np.maximum(den, 1e-6)))


def _distance_matrix(w: np.ndarray, y: np.ndarray, wsum: np.ndarray) -> np.ndarray:
    """``(N*K, D+G)`` template side of the weighted squared distance (see :class:`TemplateMatrices`)."""
    n, k, _ = y.shape
    wy = w[:, None, :] * y
    a = np.concatenate([wy, (wy * y) @ _STEMS], axis=2) / wsum[:, None, None]
    return np.ascontiguousarray(a.reshape(n * k, -1), np.float32)


BLAS_ROWS = 2048
"""Rows of a template matrix multiplied in one call (see :func:`products`)."""


def products(a: np.ndarray, b: np.ndarray, split: RowSplit | None = None) -> np.ndarray:
    """``(R, 2)``: a ``(R, C)`` template matrix times the input and the mirrored input
    ``b`` (2, C), each column one of them.

    One product for both reads the matrix once (reading it is most of the cost; two
    matrix-vector products read it twice).  It runs in chunks of ``BLAS_ROWS`` rows, since
    OpenBLAS splits a larger product over threads, which on two cores already busy (pose
    inference, or the eval's other process) waited for each other: 60,000 rows x 62 took
    27 ms as two matrix-vector products and 0.85-1.1 ms in chunks of 2,048-4,096 rows, on
    the same busy machine; chunks of 8,192 were threaded again (48 ms).  A large bank
    gives the chunks to its own threads instead (``split``, see ``BankOptions.workers``):
    the same chunks, so the same result to the bit.
    """
    out = np.empty((len(a), 2), np.float32)
    bt = np.ascontiguousarray(b.T, np.float32)

    def chunks(lo: int, hi: int) -> None:
        for start in range(lo, hi, BLAS_ROWS):
            end = min(start + BLAS_ROWS, hi)
            np.matmul(a[start:end], bt, out=out[start:end])

    if split is None:
        chunks(0, len(a))
    else:
        split.run(chunks, len(a), BLAS_ROWS)
    return out


MAX_WORKERS = 4
"""Most threads a bank splits its tick over (``BankOptions.workers`` = 0)."""
PARALLEL_CELLS = 100_000
"""DP cells from which a bank splits its tick over threads (``BankOptions.workers`` = 0)."""


def cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # (not on Linux)
        return os.cpu_count() or 1


class RowSplit:
    """Runs work on contiguous row ranges of a bank's arrays, one range per thread.

    The calling thread takes the last range itself (one handoff fewer); with one worker
    it is a plain call.  The pool's threads end with the bank (the executor's own
    clean-up when it is collected, or at exit).
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool = ThreadPoolExecutor(workers - 1, thread_name_prefix="mirrorcam-match") if workers > 1 else None

    def run(self, fn: Callable[[int, int], None], n_rows: int, align: int = 1) -> None:
        """Call ``fn(lo, hi)`` on ranges that cover rows ``0..n_rows``, their edges multiples of ``align``."""
        per = -(-n_rows // self.workers)
        per = -(-per // align) * align
        if self._pool is None or per >= n_rows:
            fn(0, n_rows)
            return
        edges = [*range(0, n_rows, per), n_rows]
        futures = [self._pool.submit(fn, lo, hi) for lo, hi in zip(edges[:-2], edges[1:-1])]
        try:
            fn(edges[-2], edges[-1])
        finally:
            wait(futures)  # (no thread may still write to the arrays when this returns)
        for future in futures:
            future.result()  # (raises a worker's exception here)


def _input_vector(xs: np.ndarray, vs: np.ndarray) -> np.ndarray:
    """``(2, D+G)`` input side: ``[-2 v x | v per body part]`` for the input and the mirrored input."""
    return np.concatenate([-2.0 * vs * xs, (vs @ _STEMS) / _STEM_SIZE], axis=1).astype(np.float32)


__all__ = ["BLAS_ROWS", "MAX_WORKERS", "PARALLEL_CELLS", "Block", "RowSplit", "TemplateMatrices", "cores", "part_trust",
           "products", "unseen_weights", "velocity_features"]
