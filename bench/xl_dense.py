"""The dense-side trials of cross-lingual retrieval 2.0 (issue #19), on raw e5 vectors.

    python -m bench.xl_dense [--data ../shared/data]

Encodes xquad-dev (passages and questions in en, nl, sv, de, zh), the shipped calibration
sentences and Tatoeba (16 languages ↔ English, from qa-train), then scores dense paragraph R@1
for every pair under: language centering (the shipped method), language-information removal
(top-k principal directions of the per-language means, or of translation-pair differences, projected
out after centering), per-language orthogonal Procrustes maps onto English (fitted on Tatoeba),
Rocchio pseudo-relevance feedback on the query vector, and with ``--adapter`` a shared linear
adapter trained contrastively on Tatoeba and/or xquad questions of one half of the articles,
scored on the other half (two folds). Nothing here is fitted on the questions it scores.
Prints one line per method: mean same-language R@1, mean and min cross-lingual R@1, the largest
gap, and zh→en / en→zh / sv→en. Results of 2026-12-02: README "Cross-lingual retrieval 2.0".
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rag.config import Settings
from rag.models.embeddings import make_embedder

LANGS = ["en", "nl", "sv", "de", "zh"]
Transform = Callable[[np.ndarray, str], np.ndarray]
T3 = {"nl": "nld", "sv": "swe", "de": "deu", "zh": "cmn", "es": "spa", "da": "dan", "fr": "fra"}


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def remove(v: np.ndarray, basis: np.ndarray) -> np.ndarray:
    return v - (v @ basis.T) @ basis


def projected(f: Transform, basis: np.ndarray) -> Transform:
    return lambda v, lg: unit(remove(f(v, lg), basis))


class Trials:
    def __init__(self, data: Path) -> None:
        s = Settings.from_env()
        emb = make_embedder(s.model, cache_dir=s.cache_dir)
        xq = data / "xquad-dev"
        rows = lambda p: [json.loads(x) for x in p.open(encoding="utf-8")]  # noqa: E731
        corpus_ids = [r["_id"] for r in rows(xq / "corpus.en.jsonl")]
        qrels = dict(
            line.split("\t")[:2] for line in (xq / "qrels.tsv").read_text().splitlines()[1:]
        )
        self.query_ids = [r["_id"] for r in rows(xq / "queries.en.jsonl")]
        self.gold = np.array([corpus_ids.index(qrels[q]) for q in self.query_ids])
        self.art = np.array([int(c[1:3]) for c in corpus_ids])
        self.P = {
            lg: emb.encode_passages([r["text"] for r in rows(xq / f"corpus.{lg}.jsonl")])
            for lg in LANGS
        }
        self.Q = {
            lg: emb.encode_queries([r["text"] for r in rows(xq / f"queries.{lg}.jsonl")])
            for lg in LANGS
        }
        cal = json.loads((Path("rag/models/data/calibration_sentences.json")).read_text("utf-8"))[
            "sentences"
        ]
        self.mp = {lg: emb.encode_passages(v).mean(0) for lg, v in cal.items()}
        self.mq = {lg: emb.encode_queries(v).mean(0) for lg, v in cal.items()}
        tat = data / "qa-train" / "tatoeba"
        self.tat = {}
        for lg, c in T3.items():
            eng = (tat / f"tatoeba.{c}-eng.eng").read_text("utf-8").splitlines()[:1000]
            oth = (tat / f"tatoeba.{c}-eng.{c}").read_text("utf-8").splitlines()[:1000]
            self.tat[lg] = (
                self.cen(emb.encode_passages(oth), lg, "p"),
                self.cen(emb.encode_passages(eng), "en", "p"),
            )

    def cen(self, v: np.ndarray, lang: str, kind: str, beta: float = 0.8) -> np.ndarray:
        return unit(v - beta * (self.mq if kind == "q" else self.mp)[lang])

    def report(self, name: str, fq: Transform, fp: Transform, q_mask: Any = None) -> None:
        qm = np.ones(len(self.gold), bool) if q_mask is None else q_mask
        res = {}
        for a in LANGS:
            q = fq(self.Q[a][qm], a)
            for b in LANGS:
                res[a, b] = float(((q @ fp(self.P[b], b).T).argmax(1) == self.gold[qm]).mean())
        cross = [res[a, b] for a in LANGS for b in LANGS if a != b]
        gap = max(res[b, b] - res[a, b] for a in LANGS for b in LANGS if a != b)
        same = np.mean([res[a, a] for a in LANGS])
        print(f"{name:42s} same {same:.3f} cross {np.mean(cross):.3f} min {min(cross):.3f} "
              f"gap {gap:.3f} zh→en {res['zh', 'en']:.3f} en→zh {res['en', 'zh']:.3f} "
              f"sv→en {res['sv', 'en']:.3f}", flush=True)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    args = ap.parse_args()
    t = Trials(args.data)
    raw = lambda v, lg: unit(v)  # noqa: E731
    fq = lambda v, lg: t.cen(v, lg, "q")  # noqa: E731
    fp = lambda v, lg: t.cen(v, lg, "p")  # noqa: E731
    t.report("raw e5", raw, raw)
    t.report("centering 0.8 (shipped)", fq, fp)
    means = np.stack([*t.mp.values(), *t.mq.values()])
    _, _, vt = np.linalg.svd(means - means.mean(0), full_matrices=False)
    diffs = np.concatenate([o - e for o, e in t.tat.values()])
    _, _, dt = np.linalg.svd(diffs, full_matrices=False)
    for k in (1, 2, 4, 8, 16):
        for label, basis in (
            ("LIR of language means", vt[:k]),
            ("LIR of translation differences", dt[:k]),
        ):
            t.report(f"centering + {label} k={k}", projected(fq, basis), projected(fp, basis))
    maps = {}
    for lg, (o, e) in t.tat.items():
        u, _, w = np.linalg.svd(o.T @ e)
        maps[lg] = u @ w
    for alpha in (0.3, 1.0):

        def mapped(v: np.ndarray, lg: str, kind: str, a: float = alpha) -> np.ndarray:
            x = t.cen(v, lg, kind)
            return unit((1 - a) * x + a * (x @ maps[lg])) if lg in maps else x

        t.report(f"centering + Procrustes→en alpha={alpha}",
                 lambda v, lg: mapped(v, lg, "q"), lambda v, lg: mapped(v, lg, "p"))  # fmt: skip
    for m, g in ((1, 0.3), (3, 0.3), (10, 0.5)):
        res = []
        for a in LANGS:
            for b in LANGS:
                q, p = fq(t.Q[a], a), fp(t.P[b], b)
                top = np.argsort(-(q @ p.T), 1)[:, :m]
                q2 = unit(q + g * p[top].mean(1))
                res.append(((q2 @ p.T).argmax(1) == t.gold).mean())
        print(f"centering + vector PRF m={m} g={g}: mean R@1 over all 25 pairs {np.mean(res):.3f}")


if __name__ == "__main__":
    main()
