"""Progress of long runs (ingest) on the terminal: tqdm bars on a TTY, plain lines otherwise.

In a log file (stderr not a terminal) each stage gets a start line and then a line every
``RAG_PROGRESS_SECONDS`` (default 10) with done/total, rate and time left, so a ten-minute
embedding run shows that it is alive and when it will finish.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

import click

UNITS = {
    "reading": ("file", "files"),
    "embedding": ("text", "chunks and sentences"),
    "searching": ("term", "terms"),
}


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"{seconds} s"


class ProgressBar:
    """The ``progress(stage, done, total)`` callback of an ingest, for the CLI."""

    def __init__(
        self,
        *,
        tty: bool | None = None,
        every: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        echo: Callable[[str], None] = lambda line: click.echo(line, err=True),
        model: str = "",
    ) -> None:
        self.stage = ""
        self.bar: Any = None
        self.tty = sys.stderr.isatty() if tty is None else tty
        self.every = float(os.environ.get("RAG_PROGRESS_SECONDS", 10)) if every is None else every
        self.clock, self.echo, self.model = clock, echo, model
        self.started = self.last = 0.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage == "loading model":  # no bar: one line, unless ``model`` is "" (--json)
            self.close()
            self.stage = stage
            if self.model:
                self.echo(f"Loading model {self.model}…")
            return
        if stage != self.stage:
            self.close()
            self.stage = stage
            self.started = self.last = self.clock()
            one, many = UNITS.get(stage, ("item", "items"))
            if self.tty:
                from tqdm import tqdm

                self.bar = tqdm(total=total, desc=f"{stage:9}", unit=one, file=sys.stderr)
            else:
                self.echo(f"{stage} {total} {many}…")
        if self.bar is not None:
            self.bar.total = total
            self.bar.n = done
            self.bar.refresh()
        elif not self.tty and done < total and self.clock() - self.last >= self.every:
            self.last = now = self.clock()
            rate = done / max(now - self.started, 1e-9)
            left = f", {_duration((total - done) / rate)} left" if rate > 0 else ""
            self.echo(f"{stage}: {done}/{total} ({100 * done / max(total, 1):.0f} %, "
                      f"{rate:.1f}/s{left})")  # fmt: skip

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
