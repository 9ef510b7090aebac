"""Allow ``python -m mirrorcam``."""

from mirrorcam.cli import run

raise SystemExit(run())
