"""A minimal progress bar on stderr, shown only when stderr is a terminal."""

from __future__ import annotations

import sys
import time


class Progress:
    """``with Progress(total, "label") as bar: bar.update()``; silent off a terminal."""

    def __init__(self, total: int | None, label: str = "", stream=None, enabled: bool | None = None) -> None:
        self.total = total if total and total > 0 else None
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.count = 0
        self._start = time.perf_counter()
        self._last_draw = 0.0

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.count += n
        now = time.perf_counter()
        if self.enabled and (now - self._last_draw > 0.1 or self.count == self.total):
            self._last_draw = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        rate = self.count / max(now - self._start, 1e-6)
        if self.total:
            frac = min(self.count / self.total, 1.0)
            bar = "#" * int(frac * 30)
            text = f"\r{self.label} [{bar:<30}] {self.count}/{self.total} {rate:5.1f}/s"
        else:
            text = f"\r{self.label} {self.count} {rate:5.1f}/s"
        self.stream.write(text)
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.count:
            self._draw(time.perf_counter())
            self.stream.write("\n")
            self.stream.flush()
