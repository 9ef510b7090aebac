"""Matching cost per frame: the 12 built-ins and 1,000 templates of 60 frames.

Feeds a synthetic performer through :class:`mirrorcam.matching.NeuronBank` at the
matcher's tick rate (every frame is a full DP step) and reports milliseconds per frame
for the matching alone (embedding included separately): the median of a few passes (and
the fastest), as the machines here are shared.  Prints one JSON object on its last line.

    python benchmarks/matching.py
"""

from __future__ import annotations

import json
import time
from dataclasses import replace

import numpy as np

from mirrorcam.embedding import DIM
from mirrorcam.matching import BankOptions, NeuronBank
from mirrorcam.performer import PerformerOptions, perform
from mirrorcam.authoring import VELOCITY_WEIGHT
from mirrorcam.templates import builtin_library, embed_recording

RUNS = 5


def per_frame_ms(bank: NeuronBank, stream, repeat: int = 1) -> float:
    bank.reset()
    n = 0
    start = time.perf_counter()
    for r in range(repeat):
        offset = r * (stream[-1][0] + 1000.0)
        for t, emb in stream:
            bank.update_embedding(0, emb, t + offset)
            n += 1
    return (time.perf_counter() - start) * 1000.0 / n


def median_ms(bank: NeuronBank, stream, runs: int = RUNS, repeat: int = 1) -> tuple[float, float]:
    """Median and fastest of ``runs`` timed passes (a shared machine's other work inflates
    single passes: one pass of the built-ins measured 0.60 and 1.02 ms on the same machine
    a minute apart)."""
    times = [per_frame_ms(bank, stream, repeat) for _ in range(runs)]
    return float(np.median(times)), min(times)


def dp_cells(bank: NeuronBank) -> int:
    """DP cells a tick updates: every row's template frames and its slowed copy's (padded to the longest)."""
    return sum(len(b.rows) * b.k for b in bank._m.blocks)


def products_ms(bank: NeuronBank, ticks: int = 40, runs: int = RUNS) -> tuple[float, float]:
    """Median milliseconds a tick of the template-matrix products alone, and the megabytes
    they read: the floor this machine's memory puts under a tick (each product reads its
    whole matrix once, see ``mirrorcam.frame_distance.products``)."""
    from mirrorcam.frame_distance import products

    m = bank._m
    mats = [a for a in (m.a, getattr(m, "a_vel", None), getattr(m, "a_seg", None), getattr(m, "a_vel_slowed", None))
            if a is not None]
    rng = np.random.default_rng(1)
    inputs = [rng.normal(0, 1, (2, a.shape[1])).astype(np.float32) for a in mats]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(ticks):
            for a, b in zip(mats, inputs):
                products(a, b, m.split)
        times.append((time.perf_counter() - start) * 1000.0 / ticks)
    return float(np.median(times)), sum(a.nbytes for a in mats) / 1e6


def main() -> None:
    rate = 15.0
    rec = perform("jumping_jack", PerformerOptions(fps=rate, repeats=4, seed=3))
    t0 = time.perf_counter()
    stream = embed_recording(rec)
    embed_ms = (time.perf_counter() - t0) * 1000.0 / len(stream)
    library = builtin_library()
    builtin_ms, builtin_min = median_ms(NeuronBank(library.templates), stream, repeat=3)

    rng = np.random.default_rng(0)
    base = library.templates[0]
    # The worst case: every template also uses the velocity channel.
    many = [
        replace(base, name=f"random_{i}", frames=rng.normal(0, 0.5, (60, DIM)).astype(np.float32),
                weights=np.ones((60, DIM), np.float32), side_specific=bool(i % 2), variants=(),
                velocity_weight=VELOCITY_WEIGHT)
        for i in range(1000)
    ]
    bank = NeuronBank(many)
    thousand_ms, thousand_min = median_ms(bank, stream[:40])
    # The same in one thread (BankOptions.workers): what the bank's threads gain here.
    one_thread_ms, _ = median_ms(NeuronBank(many, BankOptions(workers=1)), stream[:40])
    floor_ms, matrix_mb = products_ms(bank)
    # Half of them are side-specific (no mirrored row); the same 1,000 with none
    # side-specific is the upper bound (every template also matched mirrored).
    all_mirrored = NeuronBank([replace(t, side_specific=False) for t in many])
    all_mirrored_ms, all_mirrored_min = median_ms(all_mirrored, stream[:40])
    result = {
        "frames": len(stream),
        "embedding_ms_per_frame": round(embed_ms, 3),
        "builtin_templates": len(library.templates),
        "runs": RUNS,
        "builtin_ms_per_frame": round(builtin_ms, 3),
        "builtin_fastest_ms": round(builtin_min, 3),
        "templates_1000x60_rows": bank._m.n_rows,
        "templates_1000x60_dp_cells": dp_cells(bank),
        "templates_1000x60_ms_per_frame": round(thousand_ms, 3),
        "templates_1000x60_fastest_ms": round(thousand_min, 3),
        "templates_1000x60_workers": bank._m.split.workers,
        "templates_1000x60_one_thread_ms": round(one_thread_ms, 3),
        # The part of a tick no numpy rewrite of the matcher can shave: reading the
        # template matrices (idle, alone; in a tick they share the caches with the DP).
        "templates_1000x60_matrix_mb": round(matrix_mb, 1),
        "templates_1000x60_products_ms": round(floor_ms, 3),
        "templates_1000x60_none_side_specific_rows": all_mirrored._m.n_rows,
        "templates_1000x60_none_side_specific_dp_cells": dp_cells(all_mirrored),
        "templates_1000x60_none_side_specific_ms_per_frame": round(all_mirrored_ms, 3),
        "templates_1000x60_none_side_specific_fastest_ms": round(all_mirrored_min, 3),
        "targets_ms": {"builtin": 1.0, "templates_1000x60": 10.0},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
