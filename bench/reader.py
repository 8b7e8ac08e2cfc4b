"""``python -m bench reader``: what the reader costs `rag ask`, per back end, and whether the faster
back ends judge as PyTorch does (the quality gate), on the shipped corpus's index.

Timing: per dev question and round, in the same loop, ask without the reader (the similarity
answerer, the baseline) and with the reader on each back end of ``RAG_READER_BACKEND``
(``torch``, ``openvino``, ``openvino-bf16``; the order rotates per round); p50s, their ratio to
the baseline, and the reader's own share (its batch of at most ``reader_candidates`` sentences).
Warm-up first: the model, the index and every reader load once, lazily, before anything is timed.

Quality gate against PyTorch (the reader's own metrics, issue #21):

* the dev set: the very sentences the answerer hands the reader, scored by each back end:
  the largest probability difference, whether the same sentences pass the threshold and the same
  one comes first; and `rag eval --answers`' figures with each back end (within 0.01 of PyTorch);
* held-out QA (when ``../shared/data/qa-train`` is there): the questions of the articles the
  reader never trained on (``reader.json``'s held-out split, rebuilt as ``python -m train.reader``
  builds it): answering sentence first, answered and abstained (answer removed) at the shipped
  threshold, within 0.01 of PyTorch.

Uses the index of ``RAG_INDEX_DIR`` (built from ``RAG_CORPUS_DIR`` first when missing or stale)
and ``RAG_READER`` (``govrag-reader`` when unset: the reader is opt-in).
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from bench.common import DEVSET, ROOT, median_ms, rss_mib
from rag.answer.extractive import ExtractiveAnswerer
from rag.config import DEFAULT_MODEL, READER_BACKENDS, Settings
from rag.evaluate import evaluate_answers, load_devset
from rag.models.embeddings import resolve_model
from rag.models.reader import Reader, load_reader
from rag.service import Assistant

BASELINE = "torch"
BACKENDS = (BASELINE, *(b for b in READER_BACKENDS if b != BASELINE))
TARGET_MS = 300.0  # issue #21: `rag ask` with the reader, p50 after warm-up
GATE = 0.01  # the largest allowed change of a rate against PyTorch
QA_TRAIN = ROOT.parent / "shared" / "data" / "qa-train"
ANSWER_KEYS = ("answered_rate", "abstain_rate_unanswerable", "gold_cited_rate",
               "phrase_quoted_rate", "first_quote_phrase_rate", "exact_quote_rate")  # fmt: skip


class _Timed:
    """A reader whose calls are timed (and, optionally, whose inputs are recorded)."""

    def __init__(self, reader: Reader, record: list[tuple[str, list[str]]] | None = None) -> None:
        self.reader, self.threshold, self.record = reader, reader.threshold, record
        self.calls: list[float] = []

    def probabilities(self, question: str, sentences: Sequence[str]) -> np.ndarray:
        if self.record is not None:
            self.record.append((question, list(sentences)))
        t = time.perf_counter()
        try:
            return self.reader.probabilities(question, sentences)
        finally:
            self.calls.append(time.perf_counter() - t)


def run(repeat: int = 3, log: Any = print, held_out: int = 300, **_options: Any) -> dict[str, Any]:
    settings = Settings.from_env()
    if settings.reader_name == "none":  # the reader is opt-in; this bench is about it
        settings = settings.with_(reader="govrag-reader")
    assistant = Assistant(settings)
    if not assistant.index_is_current():
        log("building the index first")
        assistant.ingest()
    t = time.perf_counter()
    assistant.warm_up()
    out: dict[str, Any] = {"warm_up_s": round(time.perf_counter() - t, 2),
                           "default_backend": settings.reader_backend}  # fmt: skip
    base = resolve_model(DEFAULT_MODEL, settings.cache_dir)
    readers: dict[str, Reader] = {}
    out["load_s"] = {}
    for b in BACKENDS:
        t = time.perf_counter()
        r = load_reader(settings.reader_name, base, b, settings.cache_dir, progress=log)
        if r is None:
            raise SystemExit("no reader could be loaded: nothing to compare")
        r.probabilities("warm-up", ["The reader is loaded."])
        out["load_s"][b] = round(time.perf_counter() - t, 2)  # 0 when warm_up loaded it already
        readers[b] = r
    plain = assistant.answerer
    record: list[tuple[str, list[str]]] = []
    timed = {b: _Timed(r, record if b == BASELINE else None) for b, r in readers.items()}
    answerers = {
        b: ExtractiveAnswerer(plain.retriever, plain.config, reader=tr) for b, tr in timed.items()
    }
    without = ExtractiveAnswerer(plain.retriever, plain.config)
    devset = load_devset(DEVSET)
    questions = [q.question for q in devset]
    for q in questions[:5]:
        without.answer(q)
        for a in answerers.values():
            a.answer(q)
    record.clear()
    for tr in timed.values():
        tr.calls.clear()
    ask: dict[str, list[float]] = {b: [] for b in BACKENDS}
    base_ms: list[float] = []
    for i in range(repeat):
        order = list(BACKENDS[i % len(BACKENDS) :] + BACKENDS[: i % len(BACKENDS)])
        for q in questions:
            t0 = time.perf_counter()
            without.answer(q)
            base_ms.append(time.perf_counter() - t0)
            for b in order:
                t0 = time.perf_counter()
                answerers[b].answer(q)
                ask[b].append(time.perf_counter() - t0)
        log(f"round {i + 1}/{repeat}: without reader {median_ms(base_ms)} ms, "
            + ", ".join(f"{b} {median_ms(ask[b])} ms" for b in BACKENDS))  # fmt: skip
    per: dict[str, dict[str, Any]] = {}
    for b in BACKENDS:
        per[b] = {
            "ask_p50_ms": median_ms(ask[b]),
            "ask_p90_ms": round(sorted(ask[b])[int(0.9 * (len(ask[b]) - 1))] * 1000, 2),
            "reader_p50_ms": median_ms(timed[b].calls),
            "ratio_vs_without": round(median_ms(ask[b]) / median_ms(base_ms), 3),
            "speedup_vs_torch": 1.0,
        }
    for b in BACKENDS:
        per[b]["speedup_vs_torch"] = round(
            per[BASELINE]["reader_p50_ms"] / per[b]["reader_p50_ms"], 3
        )
    log("quality gate: the dev set's reader inputs on every back end")
    seen = {(q, tuple(s)) for q, s in record}  # every round hands it the same inputs
    per_gate = dev_gate(readers, sorted(seen))
    log("quality gate: rag eval --answers with every back end")
    index = plain.retriever.index
    answers = {b: evaluate_answers(answerers[b].answer, index, devset).to_json() for b in BACKENDS}
    held: dict[str, dict[str, float]] = {}
    if held_out and (QA_TRAIN / "xquad-0-23").is_dir():
        log(f"quality gate: {held_out} held-out QA questions on every back end")
        held = held_out_gate(readers, held_out)
    for b in BACKENDS:
        per[b]["dev"] = per_gate.get(b, {})
        per[b]["answers"] = {k: answers[b][k] for k in ANSWER_KEYS}
        if held:
            per[b]["held_out"] = held[b]
        worst = max(
            [abs(answers[b][k] - answers[BASELINE][k]) for k in ANSWER_KEYS]
            + [abs(held[b][k] - held[BASELINE][k]) for k in held.get(b, {}) if k != "questions"]
        )
        per[b]["gate_worst_delta"] = round(worst, 4)
        per[b]["passes_gate"] = worst <= GATE
    chosen = settings.reader_backend
    out.update({
        "questions": len(questions), "asks_per_backend": len(ask[BASELINE]),
        "ask_without_reader_p50_ms": median_ms(base_ms), "backends": per,
        "ask_p50_ms": per[chosen]["ask_p50_ms"], "reader_speedup": per[chosen]["speedup_vs_torch"],
        "reader_candidates": plain.config.reader_candidates, "rss_mib": rss_mib(),
    })  # fmt: skip
    return out


def dev_gate(readers: dict[str, Reader], inputs: list[tuple[str, tuple[str, ...]]]) -> dict:
    """Each back end against PyTorch on the same (question, candidate sentences)."""
    ref = {(q, s): readers[BASELINE].probabilities(q, list(s)) for q, s in inputs}
    thr = readers[BASELINE].threshold
    out: dict[str, dict[str, float]] = {}
    for b, r in readers.items():
        diffs, same_pass, same_top = [], 0, 0
        for (q, s), p0 in ref.items():
            p = r.probabilities(q, list(s))
            diffs.append(float(np.max(np.abs(p - p0))))
            same_pass += bool(np.array_equal(p >= thr, p0 >= thr))
            same_top += int(np.argmax(p) == np.argmax(p0))
        n = max(1, len(ref))
        out[b] = {
            "sets": len(ref),
            "max_abs_dp": round(max(diffs, default=0.0), 5),
            "mean_max_abs_dp": round(float(np.mean(diffs)) if diffs else 0.0, 5),
            "same_decisions": round(same_pass / n, 4),
            "same_first": round(same_top / n, 4),
        }
    return out


def held_out_gate(readers: dict[str, Reader], n: int) -> dict[str, dict[str, float]]:
    """Held-out QA questions (the split of ``python -m train.reader``'s defaults): answering
    sentence first, answered, abstained with the answer removed, at the shipped threshold."""
    from train import reader as tr
    from train.reader_eval import held_out_sets

    args = tr.parse([])
    _, xq, others, held = tr.build_pairs(args.qa_train, args.xquad_dev, args)
    sets = held_out_sets(xq, others, held, random.Random(args.seed + 1), n)
    out: dict[str, dict[str, float]] = {}
    for b, r in readers.items():
        first = answered = abstained = 0
        for ans, none in sets:
            p = r.probabilities(ans.question, ans.sentences)  # the answering sentence is first
            first += int(np.argmax(p) == 0)
            answered += bool(p.max() >= r.threshold)
            abstained += bool(r.probabilities(none.question, none.sentences).max() < r.threshold)
        k = max(1, len(sets))
        out[b] = {
            "questions": len(sets),
            "first": round(first / k, 4),
            "answered": round(answered / k, 4),
            "abstained": round(abstained / k, 4),
        }
    return out


def table(out: dict[str, Any]) -> str:
    per = out["backends"]
    lines = [
        f"`rag ask` with the reader on each back end, {out['asks_per_backend']} asks each "
        f"({out['questions']} dev questions × rounds); without the reader: "
        f"{out['ask_without_reader_p50_ms']} ms p50. Default: `{out['default_backend']}`.",
        "",
        "| back end | ask p50 | ask p90 | reader alone p50 | reader speed-up vs torch | "
        f"ask p50 ≤ {TARGET_MS:.0f} ms | ratio to no reader | passes the gate |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for b, f in per.items():
        met = "yes" if f["ask_p50_ms"] <= TARGET_MS else "**no**"
        gate = "(baseline)" if b == BASELINE else ("yes" if f["passes_gate"] else "**no**")
        lines.append(f"| `{b}` | {f['ask_p50_ms']} ms | {f['ask_p90_ms']} ms | "
                     f"{f['reader_p50_ms']} ms | {f['speedup_vs_torch']}× | {met} | "
                     f"{f['ratio_vs_without']} | {gate} |")  # fmt: skip
    lines += ["", "Quality gate against `torch` (rates within ±0.01):", "",
              "| back end | dev inputs: max \\|Δp\\| | same pass/fail | same first | "
              "answered | abstain (unanswerable) | gold cited | phrase quoted | first quote | "
              "held-out first / answered / abstained |",
              "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for b, f in per.items():
        d, a, h = f["dev"], f["answers"], f.get("held_out")
        held = (
            f"{h['first']} / {h['answered']} / {h['abstained']} ({h['questions']} q)" if h else "–"
        )
        lines.append(
            f"| `{b}` | {d.get('max_abs_dp')} | {d.get('same_decisions')} | "
            f"{d.get('same_first')} | {a['answered_rate']} | "
            f"{a['abstain_rate_unanswerable']} | {a['gold_cited_rate']} | "
            f"{a['phrase_quoted_rate']} | {a['first_quote_phrase_rate']} | {held} |"
        )
    loads = ", ".join(f"{b} {s} s" for b, s in out["load_s"].items())
    lines += ["", f"Warm-up (model, index, the default reader): {out['warm_up_s']} s; "
              f"each back end's first load and call: {loads}; resident memory "
              f"{out['rss_mib']} MiB."]  # fmt: skip
    return "\n".join(lines)
