"""Index types from 1k to 1M vectors: build time, memory, single-query p50 and R@10 against exact.

The vectors are synthetic but shaped like real ones: each is a random mix of two real passage
vectors of the shipped corpus (embedded with the real model at the start) plus Gaussian noise,
renormalised; queries are other real passage vectors plus noise. Exact top-10 (brute force) is the
reference for recall. Flat (exact) and the type the policy picks (``rag.vector_index``) are both
measured at each N; the last rows build what govrag holds at 1M chunks: the chunk set and the
sentence set (sentences per chunk as in the shipped corpus), searched once each per question, as
``rag search`` does.

Searches run one query at a time with FAISS on one OpenMP thread, as in the app.
"""

from __future__ import annotations

import gc
import hashlib
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from bench.common import median_ms, rss_mib
from rag.index.faiss import vectors
from rag.index.faiss.vectors import IndexSpec, index_spec

SIZES = (1_000, 10_000, 30_000, 100_000, 1_000_000)
SENTENCES_PER_CHUNK = 2.38  # shipped corpus: 2,220 sentences in 933 chunks
NOISE = 0.025  # per dimension: a synthetic vector keeps cos ≈ 0.85 with its real parents
N_QUERIES = 200  # for recall
N_TIMED = 50  # single-query latency samples
BLOCK = 100_000


def real_vectors(log: Any) -> np.ndarray:
    """Passage vectors of the shipped corpus's chunks, from the real model.

    Cached in the govrag cache folder under a hash of the model name and the texts, so later runs
    skip the ~1 min of embedding.
    """
    from bench.speed import corpus_chunks
    from rag.config import Settings
    from rag.service import Assistant

    t = time.perf_counter()
    assistant = Assistant(Settings.from_env())
    texts = corpus_chunks(assistant)
    key = hashlib.sha256("\n".join([assistant.embedder.name, *texts]).encode()).hexdigest()
    cache = assistant.settings.cache_dir / f"bench_real_vectors-{key[:16]}.npy"
    if cache.exists():
        return np.load(cache)
    vecs = assistant.embedder.encode_passages(texts)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, vecs)
    log(f"embedded {len(texts)} real chunks in {time.perf_counter() - t:.0f}s")
    return vecs


def synthetic(real: np.ndarray, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, real.shape[1]), dtype=np.float32)
    for lo in range(0, n, BLOCK):
        m = min(BLOCK, n - lo)
        a, b = rng.integers(len(real), size=(2, m))
        w = rng.random((m, 1), dtype=np.float32)
        x = w * real[a] + (1 - w) * real[b]
        x += rng.normal(0, NOISE, x.shape).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[lo : lo + m] = x
    return out


def queries(real: np.ndarray, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q = real[rng.integers(len(real), size=n)] + rng.normal(0, NOISE, (n, real.shape[1]))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return q.astype(np.float32)


def exact_top(x: np.ndarray, q: np.ndarray, k: int = 10) -> np.ndarray:
    """Brute-force top-k ids (rows of ``x``) per query."""
    best_s = np.full((len(q), 0), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(q), 0), dtype=np.int64)
    for lo in range(0, len(x), BLOCK):
        s = q @ x[lo : lo + BLOCK].T
        top = np.argpartition(-s, k - 1, axis=1)[:, :k]
        best_s = np.hstack([best_s, np.take_along_axis(s, top, 1)])
        best_i = np.hstack([best_i, top + lo])
        keep = np.argsort(-best_s, axis=1)[:, :k]
        best_s = np.take_along_axis(best_s, keep, 1)
        best_i = np.take_along_axis(best_i, keep, 1)
    return best_i


def measure(x: np.ndarray, q: np.ndarray, truth: np.ndarray, spec: IndexSpec) -> dict[str, Any]:
    """Build an index of ``spec`` over ``x`` and time single queries; recall@10 vs ``truth``."""
    gc.collect()
    before = rss_mib()
    t = time.perf_counter()
    index = vectors.build(x.shape[1], spec, x, np.arange(len(x), dtype=np.int64))
    build_s = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "i.faiss"
        faiss.write_index(index, str(path))
        file_mib = path.stat().st_size / 2**20
    row = {"index": spec.to_json(), "build_s": round(build_s, 2),
           "memory_mib": round(rss_mib() - before, 1), "file_mib": round(file_mib, 1)}  # fmt: skip
    times, hits = [], 0
    # Exact search is the reference: time it on N_TIMED queries only (at 1M each takes ~0.1 s+).
    n_q = N_TIMED if spec.kind == "flat" else len(q)
    for i, vec in enumerate(q[:n_q]):
        t = time.perf_counter()
        _, ids = vectors.search(index, vec, 10)
        if i < N_TIMED:
            times.append(time.perf_counter() - t)
        hits += len(set(ids.tolist()) & set(truth[i].tolist()))
    row["p50_ms"] = median_ms(times)
    row["recall@10"] = round(hits / (n_q * truth.shape[1]), 4)
    if spec.kind == "ivf":
        row["nprobe_sweep"] = sweep(index, q, truth)
    del index
    return row


def sweep(index: Any, q: np.ndarray, truth: np.ndarray) -> list[dict[str, float]]:
    """Recall and latency at other nprobe values (the policy's choice is one of them)."""
    out = []
    keep = index.nprobe
    for nprobe in (4, 8, 16, 32, 64):
        if nprobe > index.nlist:
            break
        index.nprobe = nprobe
        times, hits = [], 0
        for i, vec in enumerate(q):
            t = time.perf_counter()
            _, ids = vectors.search(index, vec, 10)
            times.append(time.perf_counter() - t)
            hits += len(set(ids.tolist()) & set(truth[i].tolist()))
        out.append({"nprobe": nprobe, "recall@10": round(hits / truth.size, 4),
                    "p50_ms": median_ms(times[:N_TIMED])})  # fmt: skip
    index.nprobe = keep
    return out


def run(max_n: int = 1_000_000, log: Any = print, **_: Any) -> dict[str, Any]:
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    t0 = time.perf_counter()
    try:
        real = real_vectors(log)
        q = queries(real, N_QUERIES, seed=1)
        rows = []
        for n in [s for s in SIZES if s <= max_n]:
            t = time.perf_counter()
            x = synthetic(real, n, seed=n)
            gen_s = time.perf_counter() - t
            truth = exact_top(x, q)
            flat = measure(x, q, truth, IndexSpec("flat"))
            row: dict[str, Any] = {"n": n, "generate_s": round(gen_s, 1), "flat": flat}
            spec = index_spec(n)
            if spec.kind == "flat":  # below the threshold: also show what IVF would give
                spec = index_spec(n, flat_max=0)
            row["ivf"] = measure(x, q, truth, spec)
            row["policy"] = index_spec(n).kind
            rows.append(row)
            log(json.dumps(row))  # the whole row, so an interrupted run still leaves its data
            del x
        out: dict[str, Any] = {"faiss_threads": 1, "noise": NOISE, "queries": N_QUERIES,
                               "real_vectors": len(real), "sizes": rows}  # fmt: skip
        if max_n >= 1_000_000:
            out["govrag_1m"] = full_index(real, q, 1_000_000, log)
        out["scale_seconds"] = round(time.perf_counter() - t0)
    finally:
        faiss.omp_set_num_threads(threads)
    return out


def full_index(real: np.ndarray, q: np.ndarray, n_chunks: int, log: Any) -> dict[str, Any]:
    """Both vector sets of a 1M-chunk govrag index, policy types; one search in each per query."""
    gc.collect()
    start = rss_mib()
    sets: dict[str, dict[str, Any]] = {}
    for name, n, seed in (("chunks", n_chunks, 7), ("sentences",
                          int(n_chunks * SENTENCES_PER_CHUNK), 8)):  # fmt: skip
        x = synthetic(real, n, seed)
        truth = exact_top(x, q)
        spec = index_spec(n)
        t = time.perf_counter()
        index = vectors.build(x.shape[1], spec, x, np.arange(n, dtype=np.int64))
        sets[name] = {"n": n, "spec": spec.to_json(), "index": index, "truth": truth,
                      "build_s": round(time.perf_counter() - t, 1)}  # fmt: skip
        del x
        gc.collect()
        log(f"built {name}: {n} vectors, {spec} in {sets[name]['build_s']} s")
    times, hits = [], {"chunks": 0, "sentences": 0}
    for i, vec in enumerate(q):
        t = time.perf_counter()
        found = {name: vectors.search(s["index"], vec, 50)[1] for name, s in sets.items()}
        times.append(time.perf_counter() - t)
        for name, ids in found.items():
            hits[name] += len(set(ids[:10].tolist()) & set(sets[name]["truth"][i].tolist()))
    out: dict[str, Any] = {}
    for name, s in sets.items():
        out[name] = {"n": s["n"], "index": s["spec"], "build_s": s["build_s"],
                     "recall@10": round(hits[name] / s["truth"].size, 4)}  # fmt: skip
    out["memory_mib"] = round(rss_mib() - start, 1)
    out["p50_ms_both_sets_k50"] = median_ms(times)
    out["p90_ms_both_sets_k50"] = round(float(np.percentile(times, 90)) * 1000, 2)
    del sets
    gc.collect()
    return out


def table(out: dict[str, Any]) -> str:
    lines = [
        "| N | flat build s | flat p50 ms | flat MiB | ivf (nlist/nprobe) | ivf build s | "
        "ivf p50 ms | ivf MiB | ivf R@10 | policy |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in out["sizes"]:
        f, v = r["flat"], r["ivf"]
        spec = f"{v['index']['nlist']}/{v['index']['nprobe']}"
        lines.append(f"| {r['n']:,} | {f['build_s']} | {f['p50_ms']} | {f['file_mib']} | {spec} | "
                     f"{v['build_s']} | {v['p50_ms']} | {v['file_mib']} | {v['recall@10']} | "
                     f"{r['policy']} |")  # fmt: skip
    g = out.get("govrag_1m")
    if g:
        lines += [
            "",
            "| govrag at 1M chunks | vectors | build s | R@10 vs exact |",
            "|---|---|---|---|",
        ]
        for name in ("chunks", "sentences"):
            s = g[name]
            lines.append(f"| {name} | {s['n']:,} | {s['build_s']} | {s['recall@10']} |")
        p50, p90 = g["p50_ms_both_sets_k50"], g["p90_ms_both_sets_k50"]
        lines.append(f"| both sets, one query (k=50 each) | p50 {p50} ms, p90 {p90} ms | "
                     f"memory {g['memory_mib']} MiB | |")  # fmt: skip
    return "\n".join(lines)
