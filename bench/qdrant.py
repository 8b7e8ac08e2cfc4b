"""FAISS folder vs Qdrant (qdrant-client local mode): agreement on the dev set and search latency.

    python bench/qdrant.py                      # copies ./index into a temporary local collection
    python bench/qdrant.py --qdrant-path DIR    # or uses a collection built by
                                                #   rag ingest --store qdrant --qdrant-path DIR

Needs a FAISS index of the shipped corpus (``rag ingest``). Prints one JSON object:

- agreement over the 66 dev questions: dense-only top 10 identical, hybrid top 5 identical and
  top 1 identical, extractive answers identical; the dev-set metrics of both stores; and how
  Qdrant's engine-side RRF (prefetch on the chunk vector and BM25, no sentence rescoring) ranks;
- latency p50 after warm-up: ``search`` end to end (query encoding included) and the retrieval
  alone (``Retriever.rank`` on a precomputed query vector, so the ratio isolates the store).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.config import Settings  # noqa: E402
from rag.evaluate import chunk_is_gold, evaluate_devset, load_devset  # noqa: E402
from rag.index.copy import copy_index  # noqa: E402
from rag.index.qdrant.backend import QdrantBackend  # noqa: E402
from rag.index.qdrant.store import QdrantStore  # noqa: E402
from rag.ingest.lang import detect_language  # noqa: E402
from rag.search.fusion import Fusion  # noqa: E402
from rag.search.retrieve import Retriever  # noqa: E402
from rag.service import Assistant  # noqa: E402
from rag.types import Filters  # noqa: E402


def _p50_ms(xs: list[float]) -> float:
    return round(statistics.median(xs) * 1000, 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path, default=ROOT / "index")
    ap.add_argument("--qdrant-path", type=Path, default=None)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    faiss = Assistant(Settings.from_env(index_dir=args.index, store="faiss"))
    tmp = None
    out: dict[str, object] = {}
    if args.qdrant_path is None:
        tmp = tempfile.TemporaryDirectory(prefix="govrag-qdrant-bench-")
        args.qdrant_path = Path(tmp.name) / "qdrant"
        t = time.perf_counter()
        copy_index(args.index, QdrantBackend.from_settings(
            faiss.settings.with_(store="qdrant", qdrant_path=args.qdrant_path)))  # fmt: skip
        out["copy_s"] = round(time.perf_counter() - t, 2)
    qdrant = Assistant(
        faiss.settings.with_(store="qdrant", qdrant_path=args.qdrant_path), faiss.embedder
    )
    questions = load_devset(ROOT / "tests" / "data" / "devset.jsonl")
    texts = [q.question for q in questions]
    vecs = faiss.embedder.encode_queries(texts)
    langs = [detect_language(t) for t in texts]

    def ranked(a: Assistant, mode: str, k: int) -> list[list[str]]:
        r = Retriever(a.retriever.index, a.embedder, Fusion(mode=mode), a.centering)
        got = []
        for text, vec, lang in zip(texts, vecs, langs, strict=True):
            rows = r.rank(text, vec, lang, k, Filters())
            chunks = r.index.chunks(x for x, _ in rows)
            got.append([chunks[x].chunk_id for x, _ in rows])
        return got

    n = len(questions)
    dense_f, dense_q = ranked(faiss, "dense", 10), ranked(qdrant, "dense", 10)
    hyb_f, hyb_q = ranked(faiss, "hybrid", 5), ranked(qdrant, "hybrid", 5)
    answers_same = sum(
        faiss.ask(t).to_json() == qdrant.ask(t).to_json() for t in texts
    )  # fmt: skip
    out["questions"] = n
    out["dense_top10_identical"] = sum(a == b for a, b in zip(dense_f, dense_q, strict=True))
    out["hybrid_top5_identical"] = sum(a == b for a, b in zip(hyb_f, hyb_q, strict=True))
    out["hybrid_top1_identical"] = sum(a[:1] == b[:1] for a, b in zip(hyb_f, hyb_q, strict=True))
    out["answers_identical"] = answers_same
    out["devset_faiss"] = evaluate_devset(faiss.retriever, questions).to_json()
    out["devset_qdrant"] = evaluate_devset(qdrant.retriever, questions).to_json()

    # Engine-side RRF (the Qdrant-only hybrid): overlap with govrag's fusion and gold@5.
    store = qdrant.retriever.index
    assert isinstance(store, QdrantStore)
    centering = qdrant.centering
    overlap, gold5, gold5_fused, answerable = 0, 0, 0, 0
    for q, text, vec, lang, fused in zip(questions, texts, vecs, langs, hyb_q, strict=True):
        rows = store.hybrid_rrf(text, lang, centering.query_vec(vec, lang), 5, Filters())
        chunks = store.chunks(r for r, _ in rows)
        rrf = [chunks[r] for r, _ in rows]
        overlap += len({c.chunk_id for c in rrf} & set(fused))
        if q.answerable:
            answerable += 1
            gold5 += any(chunk_is_gold(q, c.doc_id, c.text) for c in rrf)
            fchunks = qdrant.retriever.index.chunks(
                r for r, _ in qdrant.retriever.rank(text, vec, lang, 5, Filters())
            )
            gold5_fused += any(chunk_is_gold(q, c.doc_id, c.text) for c in fchunks.values())
    out["engine_rrf_top5_overlap_with_fused"] = round(overlap / (5 * n), 3)
    out["engine_rrf_recall@5"] = round(gold5 / answerable, 3)
    out["fused_recall@5"] = round(gold5_fused / answerable, 3)

    lat: dict[str, float] = {}
    for name, a in (("faiss", faiss), ("qdrant", qdrant)):
        for text in texts[:5]:
            a.search(text)
        search, rank = [], []
        r = a.retriever
        for _ in range(args.repeat):
            for text, vec, lang in zip(texts, vecs, langs, strict=True):
                t0 = time.perf_counter()
                a.search(text)
                search.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                r.hits(r.rank(text, vec, lang, 5, Filters()))
                rank.append(time.perf_counter() - t0)
        lat[f"{name}_search_p50_ms"] = _p50_ms(search)
        lat[f"{name}_retrieval_p50_ms"] = _p50_ms(rank)
    out.update(lat)
    out["search_ratio"] = round(lat["qdrant_search_p50_ms"] / lat["faiss_search_p50_ms"], 2)
    out["retrieval_ratio"] = round(
        lat["qdrant_retrieval_p50_ms"] / lat["faiss_retrieval_p50_ms"], 2
    )
    print(json.dumps(out, indent=2))
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
