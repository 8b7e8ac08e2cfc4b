"""`rag compare` on the shipped corpus: does each jurisdiction's answer cite the right document, and
does it say "no passage found" where that jurisdiction's documents do not address the question?

Usage: RAG_INDEX_DIR=… python -m bench.compare [--questions tests/data/compare_questions.jsonl]
                                               [--json] [--no-save]

``tests/data/compare_questions.jsonl``: one comparative question a line, ``{"id", "question",
"expected": {"EU": [doc ids], "US": [...], "KR": null, …}, "note"}``, written from the documents
(grep and read), not from the system's answers. A list names the documents that answer the
question for that jurisdiction; ``null`` says none of its documents addresses it. Each question is
compared over the jurisdictions of ``expected`` (``only``, in that order) with the index of the
current settings (``RAG_INDEX_DIR``), exactly as ``rag compare QUESTION --only EU,US,…`` does.

Reported: **cited right**: of the answerable cells, the share answered with at least one
citation from an expected document (and, stricter, with the first citation from one); **no
passage**: of the unaddressed cells, the share that abstained. Quality only, no timings.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rag.service.compare import Comparison

QUESTIONS = Path(__file__).resolve().parent.parent / "tests" / "data" / "compare_questions.jsonl"


def load_questions(path: Path = QUESTIONS) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def cells(question: dict[str, Any], comparison: Comparison) -> list[dict[str, Any]]:
    """One row per (question, jurisdiction): what was expected and what the group answered."""
    by_key = {g.key: g for g in comparison.groups}
    rows = []
    for key, expected in question["expected"].items():
        g = by_key[key]
        cited = [c.doc_id for c in g.answer.citations]
        rows.append({
            "question": question["id"], "jurisdiction": key, "expected": expected,
            "abstained": g.abstained, "cited": list(dict.fromkeys(cited)),
            "right": bool(expected) and not g.abstained and any(d in expected for d in cited),
            "first_right": bool(expected) and not g.abstained and bool(cited)
            and cited[0] in expected,
        })  # fmt: skip
    return rows


def _rate(n: int, d: int) -> float | None:
    return round(n / d, 4) if d else None


def score(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The two targets over the cells: cited right (answerable cells), no passage (the others)."""
    rows = list(rows)
    answerable = [r for r in rows if r["expected"]]
    unaddressed = [r for r in rows if r["expected"] is None]
    return {
        "cells": len(rows),
        "answerable": len(answerable),
        "cited_right": _rate(sum(r["right"] for r in answerable), len(answerable)),
        "first_cited_right": _rate(sum(r["first_right"] for r in answerable), len(answerable)),
        "abstained_on_answerable": _rate(sum(r["abstained"] for r in answerable), len(answerable)),
        "unaddressed": len(unaddressed),
        "no_passage": _rate(sum(r["abstained"] for r in unaddressed), len(unaddressed)),
    }


def run(assistant: Any, questions: Sequence[dict[str, Any]]) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for q in questions:
        comparison = assistant.compare(q["question"], only=list(q["expected"]))
        rows += cells(q, comparison)
    by_jurisdiction = {
        key: score(r for r in rows if r["jurisdiction"] == key)
        for key in dict.fromkeys(r["jurisdiction"] for r in rows)
    }
    return {**score(rows), "by_jurisdiction": by_jurisdiction, "rows": rows}


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f} %"


def table(out: dict[str, Any]) -> str:
    lines = ["| jurisdiction | answerable | cited right | first cited right | unaddressed | "
             "no passage found |", "|---|---|---|---|---|---|"]  # fmt: skip
    for key, s in [*out["by_jurisdiction"].items(), ("all", out)]:
        lines.append(f"| {key} | {s['answerable']} | {_pct(s['cited_right'])} | "
                     f"{_pct(s['first_cited_right'])} | {s['unaddressed']} | "
                     f"{_pct(s['no_passage'])} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--questions", type=Path, default=QUESTIONS)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--no-save", action="store_true", help="do not write bench/results/")
    args = ap.parse_args()
    from bench.common import machine, save
    from rag.service import Assistant

    t0 = time.time()
    assistant = Assistant()
    out = {"bench": "compare", "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "machine": machine(), "index": assistant.backend.where,
           **run(assistant, load_questions(args.questions))}  # fmt: skip
    out["seconds"] = round(time.time() - t0, 1)
    text = table(out)
    if not args.no_save:
        save("compare", out, text)
    print(json.dumps(out, ensure_ascii=False, indent=2) if args.json else text)


if __name__ == "__main__":
    main()
