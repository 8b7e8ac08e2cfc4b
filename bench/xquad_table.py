"""Run `rag eval` on every xquad-dev pair the README reports, dense baseline vs hybrid.

Usage: python bench/xquad_table.py [--data DIR] [--out bench/results/xquad.json]
Prints a markdown table; writes the raw numbers as JSON. Takes ~20 min on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PAIRS = [
    ("en", ["en"]), ("sv", ["sv"]), ("nl", ["nl"]), ("zh", ["zh"]),
    ("sv", ["en"]), ("nl", ["en"]), ("en", ["sv"]), ("en", ["nl"]), ("zh", ["en"]), ("en", ["zh"]),
    ("en", ["en", "nl", "sv", "de", "zh"]),
]  # fmt: skip
MODES = {
    # The plain baseline: chunk vectors only; no language centering, titles, sentences or BM25.
    "dense": {"RAG_RETRIEVAL": "dense", "RAG_CENTERING": "0", "RAG_TITLE_CONTEXT": "0"},
    "hybrid": {"RAG_RETRIEVAL": "hybrid"},
}


def run(data: Path, q: str, corpus: list[str], env: dict[str, str]) -> dict[str, float]:
    cmd = [sys.executable, "-m", "rag.app.cli", "eval", "--data", str(data), "--queries-lang", q]
    for c in corpus:
        cmd += ["--corpus-lang", c]
    out = subprocess.run(
        [*cmd, "--json"], env={**os.environ, **env}, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path("../shared/data/xquad-dev"))
    ap.add_argument("--out", type=Path, default=Path("bench/results/xquad.json"))
    ap.add_argument("--only", nargs="*", help="pairs to run, e.g. sv→en en→zh (default: all)")
    args = ap.parse_args()
    results = []
    t0 = time.time()
    for q, corpus in PAIRS:
        row: dict[str, Any] = {"pair": f"{q}→{'+'.join(corpus)}"}
        if args.only and row["pair"] not in args.only:
            continue
        for mode, env in MODES.items():
            row[mode] = run(args.data, q, corpus, env)
        results.append(row)
        d, h = row["dense"], row["hybrid"]
        print(f"| {row['pair']} | {d['recall@1']:.3f} | {h['recall@1']:.3f} | "
              f"{d['mrr@10']:.3f} | {h['mrr@10']:.3f} | {d['ndcg@10']:.3f} | {h['ndcg@10']:.3f} |",
              flush=True)  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "seconds": round(
        time.time() - t0), "results": results}, indent=2, ensure_ascii=False))  # fmt: skip


if __name__ == "__main__":
    main()
