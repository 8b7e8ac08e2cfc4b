"""``python -m bench reader``: what the reader costs `rag ask`, on the shipped corpus's index.

Per dev question and round, in the same loop: ask with the reader (the default) and ask without it
(the similarity answerer, the baseline); p50s and their ratio, and the reader's own share (its
batch of at most ``reader_candidates`` sentences). Warm-up first: the model, the index and the
reader load once, lazily, before anything is timed. Uses the index of ``RAG_INDEX_DIR`` (built
from ``RAG_CORPUS_DIR`` first when missing or stale) and ``RAG_READER`` (``govrag-reader`` when
unset: the reader is opt-in).
"""

from __future__ import annotations

import time
from typing import Any

from bench.common import DEVSET, median_ms, rss_mib
from rag.answer.extractive import ExtractiveAnswerer
from rag.config import Settings
from rag.evaluate import load_devset
from rag.service import Assistant


def run(repeat: int = 3, log: Any = print, **_options: Any) -> dict[str, Any]:
    settings = Settings.from_env()
    if settings.reader_name == "none":  # the reader is opt-in; this bench is about it
        settings = settings.with_(reader="govrag-reader")
    assistant = Assistant(settings)
    if not assistant.index_is_current():
        log("building the index first")
        assistant.ingest()
    t = time.perf_counter()
    assistant.warm_up()
    out: dict[str, Any] = {"warm_up_s": round(time.perf_counter() - t, 2)}
    with_reader = assistant.answerer
    reader = with_reader.reader
    if reader is None:
        raise SystemExit("no reader could be loaded: nothing to compare")
    without = ExtractiveAnswerer(with_reader.retriever, with_reader.config)
    questions = [q.question for q in load_devset(DEVSET)]
    for q in questions[:5]:
        with_reader.answer(q)
        without.answer(q)
    calls: list[float] = []
    original = reader.probabilities

    def timed(question: str, sentences: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return original(question, sentences)
        finally:
            calls.append(time.perf_counter() - t0)

    reader.probabilities = timed  # type: ignore[method-assign]
    ask, base = [], []
    try:
        for i in range(repeat):
            for q in questions:
                t0 = time.perf_counter()
                with_reader.answer(q)
                ask.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                without.answer(q)
                base.append(time.perf_counter() - t0)
            log(f"round {i + 1}/{repeat}: ask p50 {median_ms(ask)} ms, without reader "
                f"{median_ms(base)} ms")  # fmt: skip
    finally:
        reader.probabilities = original  # type: ignore[method-assign]
    out.update({
        "questions": len(questions), "asks": len(ask), "ask_p50_ms": median_ms(ask),
        "ask_p90_ms": round(sorted(ask)[int(0.9 * (len(ask) - 1))] * 1000, 2),
        "ask_without_reader_p50_ms": median_ms(base), "reader_p50_ms": median_ms(calls),
        "ratio_vs_without": round(median_ms(ask) / median_ms(base), 3),
        "reader_candidates": with_reader.config.reader_candidates, "rss_mib": rss_mib(),
    })  # fmt: skip
    return out


TARGET_MS = 500.0


def table(out: dict[str, Any]) -> str:
    met = "yes" if out["ask_p50_ms"] <= TARGET_MS else "**no**"
    rows = [
        ("`rag ask` p50, with the reader", f"{out['ask_p50_ms']} ms", f"≤ {TARGET_MS:.0f} ms", met),
        ("`rag ask` p90, with the reader", f"{out['ask_p90_ms']} ms", "", ""),
        ("baseline: ask without the reader p50", f"{out['ask_without_reader_p50_ms']} ms", "", ""),
        ("ratio with / without", out["ratio_vs_without"], "", ""),
        (f"the reader alone p50 (≤ {out['reader_candidates']} sentences)",
         f"{out['reader_p50_ms']} ms", "", ""),
        ("warm-up (model, index, reader)", f"{out['warm_up_s']} s", "", ""),
        ("resident memory", f"{out['rss_mib']} MiB", "", ""),
    ]  # fmt: skip
    lines = ["| figure | value | target | met |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines) + f"\n\n{out['asks']} asks ({out['questions']} dev questions × rounds)."
