"""What the benches share: timing helpers, the shipped corpus's texts, result files."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DEVSET = ROOT / "tests" / "data" / "devset.jsonl"


def median_ms(samples: Sequence[float]) -> float:
    return round(statistics.median(samples) * 1000, 2)


def machine() -> dict[str, Any]:
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(mem_gib, 1),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
    }


def rss_mib() -> float:
    """Resident memory of this process now (Linux)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


def save(name: str, out: dict[str, Any], table: str) -> Path:
    """Write ``bench/results/<name>_<date>.json`` and the printed table next to it (``.md``).

    A later run on the same day gets ``<date>b``, ``<date>c``, …: earlier results are kept.
    """
    RESULTS.mkdir(parents=True, exist_ok=True)
    day = time.strftime("%Y-%m-%d")
    stem = RESULTS / f"{name}_{day}"
    for suffix in "bcdefghijklmnopqrstuvwxyz":
        if not stem.with_suffix(".json").exists():
            break
        stem = RESULTS / f"{name}_{day}{suffix}"
    stem.with_suffix(".json").write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    stem.with_suffix(".md").write_text(table + "\n")
    return stem.with_suffix(".json")
