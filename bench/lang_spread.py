"""What spreading results over languages costs when the answer is in the question's language.

Usage: python -m bench.lang_spread [--data ../shared/data/xquad-dev] [--spread 0 0.02 0.03]

Builds a mixed BEIR folder from xquad-dev: the English paragraphs of all articles, plus the de,
zh, sv and nl paragraphs of the *other half* of the articles only (so no translation of a gold
paragraph is present: every other-language passage is a distractor). English questions then
have their answer in their own language, German questions in English with German and other
distractors. Prints R@1/R@5/MRR@10 per ``RAG_LANG_SPREAD`` value (passage vectors embedded once).
Quality only, no timings.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from rag.evaluate import evaluate_beir
from rag.models.embeddings import Embedder
from rag.search.fusion import Fusion
from rag.service import Assistant

OTHER = ["de", "zh", "sv", "nl"]


class CachedEmbedder:
    """Embeds each passage text once across the runs (only the ordering differs between them)."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.cache: dict[str, np.ndarray] = {}

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    def encode_passages(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        new = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if new:
            self.cache.update(zip(new, self.inner.encode_passages(new), strict=True))
        return np.stack([self.cache[t] for t in texts])

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.encode_queries(texts)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.inner.count_tokens(texts)


def _rows(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def mixed_folder(src: Path, dst: Path) -> None:
    """Write the mixed folder (qrels only for questions whose article is in the gold half)."""
    en = _rows(src / "corpus.en.jsonl")
    articles = sorted({r["_id"].split("_")[0] for r in en})
    gold_half = set(articles[: len(articles) // 2])
    (dst / "corpus.en.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in en), encoding="utf-8"
    )
    for lang in OTHER:
        rows = [
            r
            for r in _rows(src / f"corpus.{lang}.jsonl")
            if r["_id"].split("_")[0] not in gold_half
        ]
        (dst / f"corpus.{lang}.jsonl").write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
        )
    for lang in ("en", "de"):
        (dst / f"queries.{lang}.jsonl").write_bytes((src / f"queries.{lang}.jsonl").read_bytes())
    lines = (src / "qrels.tsv").read_text(encoding="utf-8").splitlines()
    kept = [x for x in lines[1:] if x.split("\t")[1].split("_")[0] in gold_half]
    (dst / "qrels.tsv").write_text("\n".join([lines[0], *kept]) + "\n", encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data/xquad-dev"))
    ap.add_argument("--spread", type=float, nargs="*", default=[0.0, 0.02, 0.03])
    args = ap.parse_args()
    base = Assistant()
    assistant = Assistant(base.settings, embedder=CachedEmbedder(base.embedder))
    print("| questions → corpus | spread | R@1 | R@5 | MRR@10 | n |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="rag-spread-") as tmp:
        mixed_folder(args.data, Path(tmp))
        for q in ("en", "de"):
            for spread in args.spread:
                assistant.fusion = replace(Fusion(), lang_penalty=spread)
                m = evaluate_beir(assistant, Path(tmp), q, ["en", *OTHER]).to_json()
                print(f"| {q} → en + other-article {'/'.join(OTHER)} | {spread:.2f} | "
                      f"{m['recall@1']:.3f} | {m['recall@5']:.3f} | {m['mrr@10']:.3f} | {m['n']} |",
                      flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
