"""``python -m bench ray [--files N]``: `rag ingest --ray` with 1 and 2 local workers against the
plain ingest, on (the first N files of) the shipped corpus, and whether the indexes are the same.

Each run is a fresh ``--rebuild`` of a copy of the corpus into its own FAISS folder, in one
process, in this order: plain, Ray with 1 worker, Ray with 2 workers (one torch thread each; the
plain ingest uses the machine's threads, as ``rag ingest`` does). A Ray run is timed twice: the
workers' start (Ray itself, one model per actor) and the ingest after it; texts/s and the ratio to
plain are of the ingest. :func:`index_difference` compares a Ray index with the plain one: the
same files, documents, chunks and sentences row for row, the same vector ids, and how far the
vectors are apart (float summation order differs with the thread count: ~2e-7 seen).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from bench.common import ROOT
from rag.config import Settings
from rag.index.faiss.vectors import contents
from rag.models.embeddings import make_embedder
from rag.models.ray_encoder import RayEmbedder
from rag.service import Assistant

TABLES = ("files", "documents", "chunks", "sentences", "chunk_sentences")


def index_difference(a: Path, b: Path) -> dict[str, Any]:
    """How the FAISS index folders ``a`` and ``b`` differ: ``same_rows`` (every table of
    ``chunks.sqlite`` equal row for row, the manifests' files and counts equal), ``same_ids``, and
    for the vectors the largest absolute difference and the smallest cosine."""
    out: dict[str, Any] = {"same_ids": True, "max_abs_diff": 0.0, "min_cosine": 1.0}
    for name in ("vectors.faiss", "sentences.faiss"):
        va, ia = contents(faiss.read_index(str(a / name)))
        vb, ib = contents(faiss.read_index(str(b / name)))
        oa, ob = np.argsort(ia), np.argsort(ib)
        if len(ia) != len(ib) or not np.array_equal(ia[oa], ib[ob]):
            out["same_ids"] = False
            continue
        if len(ia):
            va, vb = va[oa], vb[ob]
            out["max_abs_diff"] = max(out["max_abs_diff"], float(np.abs(va - vb).max()))
            out["min_cosine"] = min(out["min_cosine"], float((va * vb).sum(axis=1).min()))
    with sqlite3.connect(a / "chunks.sqlite") as ca, sqlite3.connect(b / "chunks.sqlite") as cb:
        rows = [ca.execute(f"SELECT * FROM {t}").fetchall()
                == cb.execute(f"SELECT * FROM {t}").fetchall() for t in TABLES]  # fmt: skip
    ma, mb = (json.loads((d / "manifest.json").read_text(encoding="utf-8")) for d in (a, b))
    same_manifest = all(ma.get(k) == mb.get(k) for k in ("files", "counts", "model"))
    out["same_rows"] = all(rows) and same_manifest
    return out


def _ingest(settings: Settings, embedder: Any = None) -> tuple[Assistant, float, int]:
    assistant = Assistant(settings, embedder)
    t = time.perf_counter()
    report = assistant.ingest(rebuild=True)
    return assistant, time.perf_counter() - t, report.chunks_embedded + report.sentences_embedded


def run(log: Any = print, files: int = 0, **_options: Any) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="govrag-bench-ray-"))
    try:
        corpus = tmp / "corpus"
        shutil.copytree(ROOT / "corpus", corpus)
        if files:  # keep the first N document files (sorted paths) and the catalog
            keep = ("catalog.jsonl", "README.md", "ATTRIBUTION.md")
            docs = sorted(p for p in corpus.rglob("*") if p.is_file() and p.name not in keep)
            for p in docs[files:]:
                p.unlink()
        base = Settings.from_env(corpus_dir=corpus, index_dir=tmp / "plain")
        local = make_embedder(base.model, cache_dir=base.cache_dir, batch_size=base.batch_size,
                              encoder=base.encoder)  # fmt: skip
        local.encode_passages(["warm-up"])  # the model loads outside the timings
        log("plain ingest …")
        _, plain_s, texts = _ingest(base, local)
        out: dict[str, Any] = {"files": files or "all", "texts": texts, "encoder": base.encoder,
                               "batch_size": base.batch_size,
                               "plain": {"seconds": round(plain_s, 1),
                                         "texts_per_s": round(texts / plain_s, 1)}}  # fmt: skip
        for workers in (1, 2):
            log(f"ray ingest, {workers} worker(s) …")
            settings = base.with_(index_dir=tmp / f"ray{workers}")
            emb = RayEmbedder(local, cache_dir=base.cache_dir, batch_size=base.batch_size,
                              encoder=base.encoder, workers=workers)  # fmt: skip
            try:
                t = time.perf_counter()
                emb.start()
                start_s = time.perf_counter() - t
                _, seconds, n = _ingest(settings, emb)
            finally:
                emb.close()
            assert n == texts, (n, texts)
            out[f"ray_{workers}"] = {
                "start_s": round(start_s, 1), "seconds": round(seconds, 1),
                "texts_per_s": round(texts / seconds, 1),
                "ratio_to_plain": round(plain_s / seconds, 3),
                "same_as_plain": index_difference(tmp / "plain", tmp / f"ray{workers}"),
            }  # fmt: skip
        out["ray_2_over_ray_1"] = round(out["ray_1"]["seconds"] / out["ray_2"]["seconds"], 3)
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def table(out: dict[str, Any]) -> str:
    rows = [
        f"# rag ingest --ray ({out['date']}; {out['files']} files of the shipped corpus, "
        f"{out['texts']} texts, encoder {out['encoder']}, batch {out['batch_size']})",
        "",
        "| run | workers' start s | ingest s | texts/s | × plain | same rows and ids | "
        "max abs diff | min cosine |",
        "|---|---:|---:|---:|---:|---|---:|---:|",
        f"| plain `rag ingest` | – | {out['plain']['seconds']} | {out['plain']['texts_per_s']} "
        "| 1.000 | – | – | – |",
    ]
    for w in (1, 2):
        r = out[f"ray_{w}"]
        same = r["same_as_plain"]
        ok = "yes" if same["same_rows"] and same["same_ids"] else "NO"
        rows.append(
            f"| `--ray --workers {w}` | {r['start_s']} | {r['seconds']} | {r['texts_per_s']} | "
            f"{r['ratio_to_plain']:.3f} | {ok} | {same['max_abs_diff']:.1e} | "
            f"{same['min_cosine']:.7f} |"
        )
    rows += ["", f"2 workers ÷ 1 worker: {out['ray_2_over_ray_1']}×"]
    return "\n".join(rows)
