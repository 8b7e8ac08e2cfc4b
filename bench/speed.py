"""Speed of ingest, search and ask on the shipped corpus, with the floors measured in the same run.

Usage: python bench/speed.py [--json] [--repeat 3]

Every figure that depends on the machine's load is printed next to a baseline measured in the same
run (the model alone encoding the same texts; the raw FAISS search), so ratios stay comparable on a
shared, noisy machine. Medians over ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from rag.config import Settings
from rag.evaluate import load_devset
from rag.pipeline import Assistant

ROOT = Path(__file__).resolve().parent.parent


def _median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 2)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    out: dict[str, float | int | str] = {"date": time.strftime("%Y-%m-%d")}
    tmp = Path(tempfile.mkdtemp(prefix="govrag-bench-"))
    try:
        corpus = tmp / "corpus"
        shutil.copytree(ROOT / "corpus", corpus)
        settings = Settings.from_env(corpus_dir=corpus, index_dir=tmp / "index")

        t = time.perf_counter()
        assistant = Assistant(settings)
        assistant.embedder.warm_up()  # type: ignore[attr-defined]
        out["model_load_s"] = round(time.perf_counter() - t, 2)
        _ = assistant.centering  # language means: cached after the first run, as in production

        ingest_s = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            report = assistant.ingest(rebuild=True)
            ingest_s.append(time.perf_counter() - t)
        out["ingest_s"] = round(statistics.median(ingest_s), 2)
        out["chunks"] = report.chunks
        out["sentences"] = report.sentences_embedded
        texts_per_s = (report.chunks + report.sentences_embedded) / out["ingest_s"]
        out["texts_per_s"] = round(texts_per_s, 1)

        # Floor: the model alone encoding the same texts, same batch size.
        index = assistant.retriever.index
        chunk_texts = [r[0] for r in index._query("SELECT text FROM chunks")]
        rows = index._query("SELECT d.text, s.start, s.end FROM sentences s "
                            "JOIN documents d ON d.doc_id = s.doc_id")  # fmt: skip
        texts = chunk_texts + [text[s:e] for text, s, e in rows]
        floor = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            assistant.embedder.encode_passages(texts)
            floor.append(time.perf_counter() - t)
        out["encode_floor_s"] = round(statistics.median(floor), 2)
        out["ingest_ratio"] = round(out["ingest_s"] / out["encode_floor_s"], 3)

        t = time.perf_counter()
        again = assistant.ingest()
        out["reingest_unchanged_s"] = round(time.perf_counter() - t, 3)
        assert again.chunks_embedded == 0

        questions = [q.question for q in load_devset(ROOT / "tests" / "data" / "devset.jsonl")]
        retriever = assistant.retriever
        for q in questions[:5]:
            assistant.search(q)
            assistant.ask(q)
        search, floor_search, ask = [], [], []
        for _ in range(args.repeat):
            for q in questions:
                t = time.perf_counter()
                assistant.search(q)
                search.append(time.perf_counter() - t)
                t = time.perf_counter()
                vec = retriever.embedder.encode_queries([q])
                retriever.index.vectors.search(np.ascontiguousarray(vec), 5)
                floor_search.append(time.perf_counter() - t)
                t = time.perf_counter()
                assistant.ask(q)
                ask.append(time.perf_counter() - t)
        out["search_p50_ms"] = _median_ms(search)
        out["search_floor_p50_ms"] = _median_ms(floor_search)
        out["search_ratio"] = round(out["search_p50_ms"] / out["search_floor_p50_ms"], 3)
        out["ask_p50_ms"] = _median_ms(ask)
        out["queries"] = len(search)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps(out))
        return
    for key, value in out.items():
        print(f"{key:24} {value}")


if __name__ == "__main__":
    main()
