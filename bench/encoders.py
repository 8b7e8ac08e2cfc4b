"""Embedding back ends on this machine: throughput, single-query latency and agreement with the
default (PyTorch) path, plus retrieval quality on xquad-dev pairs (``--pairs``, default sv→en) for
the ones that differ.

Back ends, measured round-robin on the same texts (a length-stratified sample of what an ingest of
the shipped corpus embeds) so machine load hits them alike: sentence-transformers on PyTorch with
2 and 1 intra-op threads (and at batch 32, the default before 2026-12-03), ``RAG_ENCODER=onnx-int8``
/ ``onnx`` (``rag.models.onnx_encoder``) and ``RAG_ENCODER=openvino-bf16`` / ``openvino``
(``rag.models.openvino_encoder``). ``encoder_speedup`` is the chosen back end's (``RAG_ENCODER``)
passage texts/s ÷ PyTorch's at the same batch size, same texts, same run; ``speedup_vs_batch_32``
the same against the old default. The quality gate (``--gate``, default ``openvino-bf16``) runs
each named back end and PyTorch through the hybrid pipeline on the ``--pairs`` of xquad-dev.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.common import median_ms
from rag.config import ENCODERS, Settings
from rag.models.embeddings import Embedder, make_embedder
from rag.service import Assistant

SAMPLE = 300
QUERIES = ["What did the Chinese embassy in the UK say?",
           "Vad sa den kinesiska ambassaden i Storbritannien?",
           "Welke sancties staan er in de AI-verordening?",
           "生成式人工智能服务提供者应当履行哪些义务？"]  # fmt: skip
OLD = "torch, 2 threads, batch 32 (the default before 2026-12-03)"
TORCH = "torch, 2 threads"
XQUAD = Path(os.environ.get("GOVRAG_XQUAD", Path(__file__).resolve().parents[2] / "shared" /
                            "data" / "xquad-dev"))  # fmt: skip


def _in_child(encoder: str, batch: int, threads: int, texts: Path, vectors: Path) -> dict:
    """Time one back end in a fresh process (``python -m bench.encoders SPEC``): no other
    runtime's threads share it (OpenVINO's and ONNX Runtime's pools slowed PyTorch by up to 2×
    when all were loaded in one process)."""
    spec = {"encoder": encoder, "batch": batch, "threads": threads, "texts": str(texts),
            "vectors": str(vectors)}  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "bench.encoders", json.dumps(spec)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode:
        raise RuntimeError(f"bench encoders child {spec} failed:\n{done.stderr[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def child(spec_json: str) -> None:
    """The child of :func:`_in_child`: load, warm up, encode the texts once, time 12 queries."""
    spec = json.loads(spec_json)
    torch.set_num_threads(spec["threads"])
    settings = Settings.from_env()
    emb = make_embedder(settings.model, cache_dir=settings.cache_dir, batch_size=spec["batch"],
                        encoder=spec["encoder"])  # fmt: skip
    texts = json.loads(Path(spec["texts"]).read_text(encoding="utf-8"))
    emb.encode_passages(texts[:8])
    emb.encode_queries(["warm-up"])
    t = time.perf_counter()
    vecs = emb.encode_passages(texts)
    seconds = time.perf_counter() - t
    query_s = []
    for q in QUERIES * 3:
        t = time.perf_counter()
        emb.encode_queries([q])
        query_s.append(time.perf_counter() - t)
    np.save(spec["vectors"], vecs)
    print(json.dumps({"seconds": seconds, "query_s": query_s}))


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
    gate_backends: Sequence[str] = ("openvino-bf16",),
    **_: Any,
) -> dict[str, Any]:
    settings = Settings.from_env()
    base = Assistant(settings.with_(encoder="torch"))
    texts = _sample(base)
    bs = settings.batch_size
    made = {enc: make_embedder(settings.model, cache_dir=settings.cache_dir, batch_size=bs,
                               encoder=enc) for enc in ENCODERS if enc != "torch"}  # fmt: skip
    for emb in made.values():  # builds the graphs on first use, outside the timings
        emb.warm_up(log)  # type: ignore[attr-defined]
    specs = {OLD: ("torch", 32, 2), TORCH: ("torch", bs, 2), "torch, 1 thread": ("torch", bs, 1),
             "onnx (float)": ("onnx", bs, 2),
             "onnx-int8 (passages int8, queries float)": ("onnx-int8", bs, 2),
             "openvino (float)": ("openvino", bs, 2),
             "openvino-bf16 (passages bf16, queries float)": ("openvino-bf16", bs, 2)}  # fmt: skip
    seconds: dict[str, list[float]] = {k: [] for k in specs}
    query_s: dict[str, list[float]] = {k: [] for k in specs}
    cos: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory(prefix="govrag-bench-enc-") as tmp:
        sample = Path(tmp) / "texts.json"
        sample.write_text(json.dumps(texts), encoding="utf-8")
        reference: np.ndarray | None = None
        for r in range(repeat):  # round-robin, each back end alone in a fresh process
            for name, (enc, batch, threads) in specs.items():
                got = _in_child(enc, batch, threads, sample, Path(tmp) / "vecs.npy")
                seconds[name].append(got["seconds"])
                query_s[name] += got["query_s"]
                vecs = np.load(Path(tmp) / "vecs.npy")
                reference = vecs if reference is None else reference  # PyTorch, batch 32
                cos[name] = (vecs * reference).sum(1)
            log(f"round {r + 1}/{repeat}: "
                + ", ".join(f"{k} {v[-1]:.1f}s" for k, v in seconds.items()))  # fmt: skip
    rows = {}
    ref = statistics.median(seconds[TORCH])
    for name in specs:
        s = statistics.median(seconds[name])
        rows[name] = {"texts_per_s": round(len(texts) / s, 1), "relative": round(ref / s, 2),
                      "query_p50_ms": median_ms(query_s[name]),
                      "cos_min": round(float(cos[name].min()), 6),
                      "cos_mean": round(float(cos[name].mean()), 6)}  # fmt: skip
    out: dict[str, Any] = {"texts": len(texts), "torch_default_threads": torch.get_num_threads(),
                           "backends": rows}  # fmt: skip
    out["batch_size"] = bs
    out["precision"] = {k: getattr(e, "precision", "") for k, e in made.items()}
    enc = settings.encoder  # the back end the settings choose (the default unless RAG_ENCODER)
    out["chosen"] = TORCH if enc == "torch" else next(k for k in specs if k.split()[0] == enc)
    out["encoder_speedup"] = rows[out["chosen"]]["relative"]
    old = rows[OLD]["texts_per_s"]
    out["speedup_vs_batch_32"] = {k: round(r["texts_per_s"] / old, 2) for k, r in rows.items()}
    if quality and XQUAD.is_dir():
        embs = {"torch": base.embedder, **{g: made[g] for g in gate_backends}}
        out["xquad"] = xquad_quality(settings, pairs, embs, log)
        out["gate"] = gate(out["xquad"])
    return out


def xquad_quality(
    settings: Settings, pairs: Sequence[str], embedders: dict[str, Embedder], log: Any
) -> dict[str, dict[str, Any]]:
    """Hybrid R@1 and MRR@10 on each xquad-dev pair (``"sv→en"``) with each embedder: the
    numbers of ``rag eval --data`` (``evaluate_beir``'s functions), with one temporary index per
    corpus language and embedder shared by the pairs that search it."""
    from rag.evaluate import compute_metrics, load_beir, rank_documents, temporary_index
    from rag.search.retrieve import Retriever

    by_corpus: dict[str, list[str]] = {}
    for pair in pairs:
        q, _, c = pair.replace("->", "→").partition("→")
        if not q or not c:
            raise ValueError(f"a pair is queries→corpus, e.g. sv→en or sv->en, got {pair!r}")
        by_corpus.setdefault(c, []).append(q)
    out: dict[str, dict[str, Any]] = {}
    for c, query_langs in by_corpus.items():
        groups, _, qrels = load_beir(XQUAD, query_langs[0], [c])
        for name, emb in embedders.items():
            assistant = Assistant(settings, embedder=emb)
            t = time.perf_counter()
            with temporary_index(assistant, groups) as reader:
                retriever = Retriever(reader, emb, assistant.fusion, assistant.centering)
                for q in query_langs:
                    _, queries, _ = load_beir(XQUAD, q, [c])
                    queries = [(i, text) for i, text in queries if i in qrels]
                    ranked = rank_documents(retriever, [text for _, text in queries], 10)
                    rankings = [[d.split("/", 1)[1] in qrels[i] for d in docs]
                                for (i, _), docs in zip(queries, ranked, strict=True)]  # fmt: skip
                    m = compute_metrics(rankings, [len(qrels[i]) for i, _ in queries])
                    out.setdefault(f"{q}→{c}", {})[name] = {
                        "recall@1": m.recall_at_1, "mrr@10": m.mrr_at_10,
                    }  # fmt: skip
                    log(f"xquad {q}→{c} {name}: R@1 {m.recall_at_1}")
            log(f"  ({name}, corpus {c}: {time.perf_counter() - t:.0f} s)")
    return out


def gate(xquad: dict[str, dict[str, Any]], reference: str = "torch") -> dict[str, dict[str, Any]]:
    """Per back end: R@1 differences to ``reference`` over the pairs (mean, worst, how many pairs
    are more than 0.005 below), and whether every pair is within 0.005 (issue #21's gate)."""
    names = {n for by in xquad.values() for n in by} - {reference}
    out = {}
    for name in sorted(names):
        d = [by[name]["recall@1"] - by[reference]["recall@1"] for by in xquad.values()]
        out[name] = {"pairs": len(d), "mean_delta": round(float(np.mean(d)), 4),
                     "worst_delta": round(min(d), 4), "best_delta": round(max(d), 4),
                     "pairs_below_0.005": sum(x < -0.005 for x in d),
                     "passes": all(abs(x) <= 0.005 for x in d)}  # fmt: skip
    return out


def table(out: dict[str, Any]) -> str:
    lines = [f"encoder_speedup ({out['chosen']} ÷ torch 2 threads, batch {out.get('batch_size')}):"
             f" {out['encoder_speedup']}×", "",
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
    if out.get("gate"):
        lines += ["", "| back end | pairs | mean ΔR@1 | worst | best | pairs < −0.005 | "
                  "every pair within 0.005 |", "|---|---|---|---|---|---|---|"]  # fmt: skip
        for name, g in out["gate"].items():
            ok = "yes" if g["passes"] else "no"
            lines.append(f"| {name} | {g['pairs']} | {g['mean_delta']:+.4f} | "
                         f"{g['worst_delta']:+.4f} | {g['best_delta']:+.4f} | "
                         f"{g['pairs_below_0.005']} | {ok} |")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    child(sys.argv[1])
