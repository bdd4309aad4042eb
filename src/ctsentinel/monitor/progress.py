"""Progress of `ctsentinel run` on a terminal: one line per log, redrawn in place, never in a pipe."""

from __future__ import annotations

import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TextIO

from ctsentinel.terminal import safe_text
from ctsentinel.timefmt import duration

_WINDOW = 10.0  # seconds of history behind the rate, so it follows speed changes within a few seconds


@dataclass
class LogProgress:
    label: str
    position: int = 0
    size: int = 0
    status: str = ""
    samples: deque[tuple[float, int]] = field(default_factory=deque)

    def update(self, position: int, size: int, now: float) -> None:
        self.position, self.size = position, max(size, position)
        self.samples.append((now, position))
        while len(self.samples) > 2 and now - self.samples[0][0] > _WINDOW:
            self.samples.popleft()

    def rate(self) -> float:
        if len(self.samples) < 2:
            return 0.0
        (t0, p0), (t1, p1) = self.samples[0], self.samples[-1]
        return (p1 - p0) / (t1 - t0) if t1 > t0 else 0.0


def format_line(progress: LogProgress, width: int = 60) -> str:
    rate = progress.rate()
    backlog = progress.size - progress.position
    if backlog <= 0:
        eta = "caught up"
    elif rate > 0:
        eta = "ETA " + duration(backlog / rate)
    else:
        eta = "ETA ?"
    label = safe_text(progress.label)
    if len(label) > width:
        label = label[: width - 1] + "…"
    pct = 100.0 * progress.position / progress.size if progress.size else 100.0
    status = f"  {safe_text(progress.status)}" if progress.status else ""
    return (
        f"{label:<{width}} {progress.position:>12,}/{progress.size:<12,} {pct:5.1f}% "
        f"{rate:>9,.0f}/s  {eta}{status}"
    )


class Progress:
    """Collects per-log positions; draw() repaints the block of lines when the stream is a terminal."""

    def __init__(self, stream: TextIO | None = None, min_interval: float = 0.25) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.min_interval = min_interval
        self.logs: dict[str, LogProgress] = {}
        self._drawn_lines = 0
        self._last_draw = 0.0

    def log(self, key: str, label: str) -> LogProgress:
        entry = self.logs.get(key)
        if entry is None:
            entry = self.logs[key] = LogProgress(label)
        return entry

    def update(self, key: str, position: int, size: int, status: str = "") -> None:
        entry = self.logs.get(key)
        if entry is not None:
            entry.update(position, size, time.monotonic())
            entry.status = status

    # Hand-written rather than rich.live: rich redraws with its own sequences (the cursor moved up line by
    # line and hidden until it stops, the last line left open), so what a terminal receives would change,
    # for the sake of the dozen lines below.
    def draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last_draw < self.min_interval:
            return
        self._last_draw = now
        lines = [format_line(p) for p in self.logs.values()]
        # Up to the first line of the previous block, then each line cleared and rewritten.
        out = [f"\x1b[{self._drawn_lines}F" if self._drawn_lines else ""]
        out.extend(f"\x1b[2K{line}\n" for line in lines)
        self.stream.write("".join(out))
        self.stream.flush()
        self._drawn_lines = len(lines)
