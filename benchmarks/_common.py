"""Helpers shared by the benchmark scripts (not part of the package)."""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def shared_clips() -> Path:
    root = Path(os.environ.get("MIRRORCAM_SHARED", REPO.parent / "shared")) / "clips"
    if not root.is_dir():
        raise SystemExit(f"benchmark needs the shared clips at {root} (set MIRRORCAM_SHARED)")
    return root


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def machine() -> dict:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "machine": platform.machine()}


def emit(figures: dict) -> None:
    """Print the figures as one JSON object on the last line (compared from run to run)."""
    print(json.dumps(figures, sort_keys=True))
