"""Allow ``python -m mirrorcam``."""

from mirrorcam.cli import main

raise SystemExit(main())
