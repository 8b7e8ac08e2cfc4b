"""Progress of long runs (ingest) on the terminal: tqdm bars on a TTY, plain lines otherwise."""

from __future__ import annotations

import sys
from typing import Any

import click


class ProgressBar:
    """tqdm bars per stage on a terminal; a line per stage otherwise (CI logs stay readable)."""

    def __init__(self) -> None:
        self.stage = ""
        self.bar: Any = None
        self.tty = sys.stderr.isatty()

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage != self.stage:
            self.close()
            self.stage = stage
            if self.tty:
                from tqdm import tqdm

                unit = "file" if stage == "reading" else "text"
                self.bar = tqdm(total=total, desc=f"{stage:9}", unit=unit, file=sys.stderr)
            else:
                what = "files" if stage == "reading" else "chunks and sentences"
                click.echo(f"{stage} {total} {what}…", err=True)
        if self.bar is not None:
            self.bar.total = total
            self.bar.n = done
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
