"""How far the current features can go on the dev set: upper bounds, not results.

Usage: python -m bench.ceiling [--devset tests/data/devset.jsonl] [--json] [--quick]

On the index of the current settings (``RAG_INDEX_DIR``), for the answerable dev questions:

1. **Candidate pool**: the share whose gold passage is anywhere among the fused candidates (the
   union of the top chunks, the chunks of the top sentences and the top BM25 chunks), before the
   per-document cap and the language spread. No reordering of these candidates can do better.
2. **Fusion oracle**: R@5 for every combination in a grid of the fusion knobs (sentence weight,
   language spread, BM25 weights, per-document cap, candidates per list), the best one chosen
   *on the dev set itself*.
   Deliberately over-fitted: it says what re-weighting the current evidence can reach at most,
   never a setting to ship.
3. **Answers**: the share whose gold passage is among the passages the extractive answerer reads,
   and the share with a quotable gold sentence among its evidence (a perfect sentence chooser's
   gold-citation rate), for the default fusion and for the oracle's.
4. **Abstention**: a threshold on the best evidence score is the extractive answerer's only
   signal (besides the number check); for each threshold, answered answerable and abstained
   unanswerable, and the most answerable questions still answered when 90 % of the unanswerable
   ones abstain.

Writes ``bench/results/ceiling_<date>.{json,md}``. Quality only, no timings.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.common import DEVSET, save
from rag.answer.extractive import ExtractiveAnswerer
from rag.evaluate import (
    DevQuestion,
    chunk_is_gold,
    compute_metrics,
    devset_rankings,
    load_devset,
    quote_is_gold,
)
from rag.ingest.lang import detect_language
from rag.search.retrieve import Retriever
from rag.service import Assistant
from rag.types import Filters

GRID: dict[str, list[Any]] = {
    "sentence": [0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
    "lang_penalty": [0.0, 0.02, 0.04, 0.06, 0.08, 0.12],
    "cross_lang": [0.0, 0.02, 0.05],
    "same_lang": [0.0, 0.02, 0.05],
    "per_doc": [3, 4, 5],
    "candidates": [50, 100],
}
QUICK_GRID: dict[str, list[Any]] = {
    "sentence": [0.5, 0.7, 0.9],
    "lang_penalty": [0.0, 0.02, 0.04, 0.08],
    "cross_lang": [0.0, 0.02],
    "same_lang": [0.02],
    "per_doc": [3, 4],
    "candidates": [50],
}


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class Questions:
    """The answerable dev questions with their query vectors (encoded once)."""

    def __init__(self, retriever: Retriever, questions: list[DevQuestion]) -> None:
        self.items = questions
        self.langs = [detect_language(q.question) for q in questions]
        self.vecs = retriever.embedder.encode_queries([q.question for q in questions])


def gold_flags(retriever: Retriever, qs: Questions, k: int) -> list[list[bool]]:
    return devset_rankings(retriever, qs.items, qs.vecs, k)


@contextmanager
def fusion(retriever: Retriever, **knobs: Any) -> Iterator[None]:
    """Retrieve with these fusion knobs inside the block, with the retriever's own after it."""
    base = retriever.fusion
    retriever.fusion = replace(base, **knobs)
    try:
        yield
    finally:
        retriever.fusion = base


def pool_recall(retriever: Retriever, qs: Questions) -> tuple[float, list[str]]:
    """Share of questions whose gold passage is among the fused candidates (any rank, no caps)."""
    n = retriever.fusion.candidates
    missing = []
    for q, v, lang in zip(qs.items, qs.vecs, qs.langs, strict=True):
        vec = retriever.query_vector(v, lang)
        found = retriever.index.candidates(q.question, lang, vec, n, Filters(), hybrid=True)
        rows = {*dict(found.dense), *found.lexical, *found.from_sentences}
        chunks = retriever.index.chunks(rows)
        if not any(chunk_is_gold(q, c.doc_id, c.text) for c in chunks.values()):
            missing.append(q.id)
    return round(1 - len(missing) / len(qs.items), 4), missing


def oracle(retriever: Retriever, qs: Questions, grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """R@5 / MRR@10 of every grid point, best first."""
    rows = []
    combos = list(itertools.product(*grid.values()))
    for i, values in enumerate(combos, 1):
        knobs = dict(zip(grid, values, strict=True))
        with fusion(retriever, **knobs):
            m = compute_metrics(gold_flags(retriever, qs, 10), [1] * len(qs.items)).to_json()
        rows.append({**knobs, "recall@5": m["recall@5"], "mrr@10": m["mrr@10"]})
        if i % 50 == 0:
            _log(f"  oracle grid {i}/{len(combos)}")
    rows.sort(key=lambda r: (-r["recall@5"], -r["mrr@10"]))
    return rows


def answer_bounds(answerer: ExtractiveAnswerer, questions: list[DevQuestion]) -> dict[str, Any]:
    """Gold passage read / gold sentence quotable (answerable); best evidence score (all)."""
    index = answerer.retriever.index
    read = quotable = 0
    scores: list[tuple[bool, float, bool]] = []  # (answerable, best score, number check fails)
    for q in questions:
        r = answerer.retrieve(q.question)
        ev = answerer.evidence(r.query, r.query_lang, r.query_vec, r.ranked, r.hits)
        best = ev[0].score if ev else -1.0
        scores.append((q.answerable, best, answerer.lacks_number(q.question, ev)))
        if not q.answerable:
            continue
        hits = r.hits[: answerer.config.passages]
        read += any(chunk_is_gold(q, h.doc_id, h.text) for h in hits)
        docs = index.documents({e.hit.doc_id for e in ev}, with_text=True)
        quotable += any(
            quote_is_gold(q, e.hit.doc_id, docs[e.hit.doc_id].text, e.start, e.end) for e in ev
        )
    n = sum(q.answerable for q in questions)
    return {
        "gold_passage_read": round(read / n, 4),
        "gold_sentence_quotable": round(quotable / n, 4),
        "scores": scores,
    }


def abstention_curve(scores: list[tuple[bool, float, bool]]) -> list[dict[str, float]]:
    """Answered answerable / abstained unanswerable for every threshold that changes them."""
    n_ans = sum(a for a, _, _ in scores)
    n_un = len(scores) - n_ans
    out = []
    for t in sorted({round(s + 1e-6, 6) for _, s, _ in scores} | {0.0}):
        answered = sum(a and s >= t and not fail for a, s, fail in scores)
        abstained = sum((not a) and (s < t or fail) for a, s, fail in scores)
        out.append({"threshold": round(t, 4), "answered": round(answered / n_ans, 4),
                    "abstained_unanswerable": round(abstained / n_un, 4)})  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devset", type=Path, default=DEVSET)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument(
        "--quick", action="store_true", help="a 48-point grid instead of 1,944 (a test run)"
    )
    args = ap.parse_args()
    assistant = Assistant()
    retriever = assistant.retriever
    all_qs = load_devset(args.devset)
    qs = Questions(retriever, [q for q in all_qs if q.answerable])
    default = compute_metrics(gold_flags(retriever, qs, 10), [1] * len(qs.items)).to_json()
    pool, pool_missing = pool_recall(retriever, qs)
    _log("fusion oracle …")
    grid = oracle(retriever, qs, QUICK_GRID if args.quick else GRID)
    best = grid[0]
    knobs = {k: best[k] for k in GRID}
    answerer = assistant.answerer
    bounds_default = answer_bounds(answerer, all_qs)
    with fusion(retriever, **knobs):
        bounds_oracle = answer_bounds(answerer, all_qs)
    curve = abstention_curve(bounds_default.pop("scores"))
    bounds_oracle.pop("scores")
    at_90 = max((c["answered"] for c in curve if c["abstained_unanswerable"] >= 0.9), default=0.0)
    out = {
        "devset": str(args.devset),
        "answerable": len(qs.items),
        "default_fusion": {k: getattr(retriever.fusion, k) for k in GRID},
        "default_recall@5": default["recall@5"],
        "candidate_pool_recall": pool,
        "not_in_pool": pool_missing,
        "grid_points": len(grid),
        "oracle": best,
        "oracle_top5": grid[:5],
        "answers_default_fusion": bounds_default,
        "answers_oracle_fusion": bounds_oracle,
        "abstention_curve": curve,
        "max_answered_with_90pct_abstention": at_90,
    }
    lines = [
        f"Dev set {args.devset.name}: {len(qs.items)} answerable questions "
        f"(upper bounds for the current features; the oracle is fitted to these questions)",
        "",
        "| measure | default fusion | fusion oracle |",
        "|---|---|---|",
        f"| R@5 | {default['recall@5']:.3f} | {best['recall@5']:.3f} |",
        f"| gold passage among the candidates (any rank) | {pool:.3f} | {pool:.3f} |",
        f"| gold passage among the passages the answerer reads | "
        f"{bounds_default['gold_passage_read']:.3f} | {bounds_oracle['gold_passage_read']:.3f} |",
        f"| a quotable gold sentence among the evidence | "
        f"{bounds_default['gold_sentence_quotable']:.3f} | "
        f"{bounds_oracle['gold_sentence_quotable']:.3f} |",
        "",
        f"Oracle fusion ({len(grid)} grid points): "
        + ", ".join(f"{k}={best[k]}" for k in GRID)
        + f"; not among the candidates at all: {', '.join(pool_missing) or 'none'}.",
        f"Abstention by the best evidence score (default fusion, number check on): at most "
        f"{at_90:.0%} of the answerable questions are still answered when ≥ 90 % of the "
        f"unanswerable ones abstain.",
    ]
    table = "\n".join(lines)
    save("ceiling", out, table)
    print(json.dumps(out) if args.json else table)


if __name__ == "__main__":
    main()
