"""Embedding back ends on this machine: throughput, single-query latency and agreement with the
default (PyTorch) path, plus retrieval quality on xquad-dev pairs (``--pairs``, default sv→en) for
the ones that differ.

Back ends, measured round-robin on the same texts (a length-stratified sample of what an ingest of
the shipped corpus embeds) so machine load hits them alike: sentence-transformers on PyTorch with
2 and 1 intra-op threads, and ``RAG_ENCODER=onnx-int8`` (``rag.models.onnx_encoder``: ONNX Runtime,
int8 per-channel passages, float queries) and ``RAG_ENCODER=onnx`` (the same graph, all float).
``encoder_speedup`` is the int8 back end's passage texts/s ÷ PyTorch's with 2 threads, same texts,
same run.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.common import median_ms
from rag.config import Settings
from rag.models import embeddings
from rag.models.embeddings import Embedder, SentenceTransformerEmbedder
from rag.models.onnx_encoder import OnnxEmbedder
from rag.service import Assistant

SAMPLE = 300
QUERIES = ["What did the Chinese embassy in the UK say?",
           "Vad sa den kinesiska ambassaden i Storbritannien?",
           "Welke sancties staan er in de AI-verordening?",
           "生成式人工智能服务提供者应当履行哪些义务？"]  # fmt: skip
XQUAD = Path(os.environ.get("GOVRAG_XQUAD", Path(__file__).resolve().parents[2] / "shared" /
                            "data" / "xquad-dev"))  # fmt: skip


class TorchThreads:
    """The default embedder with torch's intra-op threads set for its calls."""

    def __init__(self, embedder: Any, threads: int) -> None:
        self.embedder, self.threads = embedder, threads

    def __getattr__(self, name: str) -> Any:
        return getattr(self.embedder, name)

    def _call(self, fn: Any, *args: Any) -> Any:
        keep = torch.get_num_threads(), embeddings.QUERY_THREADS
        torch.set_num_threads(self.threads)
        embeddings.QUERY_THREADS = self.threads  # the embedder's own setting for single queries
        try:
            return fn(*args)
        finally:
            torch.set_num_threads(keep[0])
            embeddings.QUERY_THREADS = keep[1]

    def encode_passages(self, texts: Any, progress: Any = None) -> np.ndarray:
        return self._call(self.embedder.encode_passages, texts)

    def encode_queries(self, texts: Any) -> np.ndarray:
        return self._call(self.embedder.encode_queries, texts)


def _sample(assistant: Assistant) -> list[str]:
    from bench.speed import corpus_documents

    docs = corpus_documents(assistant.settings)
    texts = [t for d in docs for t in assistant.indexer.prepare(d.path, [d]).texts]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    step = len(order) / SAMPLE
    return [texts[order[int(i * step)]] for i in range(SAMPLE)]


def run(
    repeat: int = 3,
    quality: bool = True,
    log: Any = print,
    pairs: Sequence[str] = ("sv→en",),
    **_: Any,
) -> dict[str, Any]:
    settings = Settings.from_env()
    base = Assistant(settings)
    texts = _sample(base)
    onnx = OnnxEmbedder(settings.model, cache_dir=settings.cache_dir,
                        batch_size=settings.batch_size)  # fmt: skip
    onnx.warm_up(log)  # builds the graphs on first use (~2 minutes), outside the timings
    floating = OnnxEmbedder(settings.model, cache_dir=settings.cache_dir,
                            batch_size=settings.batch_size, int8=False)  # fmt: skip
    before = SentenceTransformerEmbedder(settings.model, cache_dir=settings.cache_dir,
                                         batch_size=32)  # fmt: skip
    before._model = base.embedder.model  # type: ignore[attr-defined]  # same weights
    backends: dict[str, Embedder] = {
        "torch, 2 threads, batch 32 (the default before 2026-12-03)": TorchThreads(before, 2),
        "torch, 2 threads": TorchThreads(base.embedder, 2),
        "torch, 1 thread": TorchThreads(base.embedder, 1),
        "onnx (float)": floating,
        "onnx-int8 (passages int8, queries float)": onnx,
    }
    for emb in backends.values():  # load every model and session before the timings
        emb.encode_passages(texts[:8])
    reference = base.embedder.encode_passages(texts)
    seconds: dict[str, list[float]] = {k: [] for k in backends}
    query_s: dict[str, list[float]] = {k: [] for k in backends}
    cos: dict[str, np.ndarray] = {}
    for r in range(repeat):
        for name, emb in backends.items():
            t = time.perf_counter()
            vecs = emb.encode_passages(texts)
            seconds[name].append(time.perf_counter() - t)
            cos[name] = (vecs * reference).sum(1)
            for q in QUERIES * 3:
                t = time.perf_counter()
                emb.encode_queries([q])
                query_s[name].append(time.perf_counter() - t)
        log(
            f"round {r + 1}/{repeat}: " + ", ".join(f"{k} {v[-1]:.1f}s" for k, v in seconds.items())
        )
    rows = {}
    ref = statistics.median(seconds["torch, 2 threads"])
    for name in backends:
        s = statistics.median(seconds[name])
        rows[name] = {"texts_per_s": round(len(texts) / s, 1), "relative": round(ref / s, 2),
                      "query_p50_ms": median_ms(query_s[name]),
                      "cos_min": round(float(cos[name].min()), 4),
                      "cos_mean": round(float(cos[name].mean()), 5)}  # fmt: skip
    out: dict[str, Any] = {"texts": len(texts), "torch_default_threads": torch.get_num_threads(),
                           "backends": rows}  # fmt: skip
    out["batch_size"] = settings.batch_size
    out["encoder_speedup"] = rows["onnx-int8 (passages int8, queries float)"]["relative"]
    old = rows["torch, 2 threads, batch 32 (the default before 2026-12-03)"]["texts_per_s"]
    out["speedup_vs_batch_32"] = {k: round(r["texts_per_s"] / old, 2) for k, r in rows.items()}
    if quality and XQUAD.is_dir():
        out["xquad"] = xquad_quality(settings, pairs, {"torch": base.embedder, "onnx-int8": onnx},
                                     log)  # fmt: skip
    return out


def xquad_quality(
    settings: Settings, pairs: Sequence[str], embedders: dict[str, Embedder], log: Any
) -> dict[str, dict[str, Any]]:
    """``rag eval`` (hybrid) on each xquad-dev pair (``"sv→en"``) with each embedder."""
    from rag.evaluate import evaluate_beir

    out: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        q, _, c = pair.replace("->", "→").partition("→")
        if not q or not c:
            raise ValueError(f"a pair is queries→corpus, e.g. sv→en or sv->en, got {pair!r}")
        for name, emb in embedders.items():
            t = time.perf_counter()
            metrics = evaluate_beir(Assistant(settings, embedder=emb), XQUAD, q, [c])
            out.setdefault(f"{q}→{c}", {})[name] = {
                "recall@1": metrics.recall_at_1, "mrr@10": metrics.mrr_at_10,
                "seconds": round(time.perf_counter() - t),
            }  # fmt: skip
            log(f"xquad {q}→{c} {name}: R@1 {metrics.recall_at_1}")
    return out


def table(out: dict[str, Any]) -> str:
    lines = [f"encoder_speedup (onnx-int8 ÷ torch 2 threads, batch {out.get('batch_size')}): "
             f"{out['encoder_speedup']}×", "",
             "| back end | texts/s | vs torch 2 threads | vs batch 32 | query p50 ms | "
             "cos to torch min / mean |", "|---|---|---|---|---|---|"]  # fmt: skip
    vs32 = out.get("speedup_vs_batch_32", {})
    for name, r in out["backends"].items():
        lines.append(f"| {name} | {r['texts_per_s']} | {r['relative']}× | {vs32.get(name, '')}× | "
                     f"{r['query_p50_ms']} | {r['cos_min']} / {r['cos_mean']} |")  # fmt: skip
    if out.get("xquad"):
        lines += ["", "| xquad-dev pair, hybrid | back end | R@1 | MRR@10 |", "|---|---|---|---|"]
        for pair, by_name in out["xquad"].items():
            for name, r in by_name.items():
                lines.append(f"| {pair} | {name} | {r['recall@1']} | {r['mrr@10']} |")
    return "\n".join(lines)
