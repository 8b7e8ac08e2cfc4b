"""Abstention threshold sweep on the shipped corpus's dev set (the README's answers table).

Usage: python -m bench.abstain [--devset tests/data/devset.jsonl] [--thresholds 0.45 0.47 ...]
                               [--no-number-check] [--reader]

Runs the extractive answerer on every dev question once per threshold (``AnswerConfig.min_score``)
on the index of the current settings (``RAG_INDEX_DIR``) and prints one markdown row per
threshold: answered answerable, abstained unanswerable, abstention precision, gold among the
citations. ``--no-number-check`` switches off the abstention of number/date questions whose
evidence holds no number (``AnswerConfig.number_margin``). ``--reader`` sweeps the reader's
probability threshold instead (the shipped one is calibrated on held-out data, not on this dev set:
this is the curve, not the tuning); its probabilities are computed once per question and reused.
Quality only, no timings.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from rag.answer.extractive import AnswerConfig, ExtractiveAnswerer
from rag.config import Settings
from rag.evaluate import evaluate_answers, load_devset
from rag.models.reader import Reader
from rag.service import Assistant

DEFAULT_THRESHOLDS = [0.40, 0.42, 0.43, 0.44, 0.45, 0.48, 0.50, 0.52, 0.54, 0.56]
READER_THRESHOLDS = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]


class _AtThreshold:
    """The reader with another threshold; probabilities memoised across thresholds."""

    def __init__(self, reader: Reader, threshold: float, memo: dict[Any, np.ndarray]) -> None:
        self.reader, self.threshold, self.memo = reader, threshold, memo

    def probabilities(self, question: str, sentences: Any) -> np.ndarray:
        key = (question, tuple(sentences))
        if key not in self.memo:
            self.memo[key] = self.reader.probabilities(question, sentences)
        return self.memo[key]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devset", type=Path, default=Path("tests/data/devset.jsonl"))
    ap.add_argument("--thresholds", type=float, nargs="*", default=DEFAULT_THRESHOLDS)
    ap.add_argument("--json", action="store_true", help="one JSON object per threshold")
    ap.add_argument(
        "--no-number-check",
        action="store_true",
        help="do not abstain on number/date questions whose evidence holds no number",
    )
    ap.add_argument("--reader", action="store_true", help="sweep the reader's threshold")
    args = ap.parse_args()
    settings = Settings.from_env()
    if args.reader and settings.reader_name == "none":  # opt-in: the shipped one unless named
        settings = settings.with_(reader="govrag-reader")
    assistant = Assistant(settings)
    questions = load_devset(args.devset)
    default = AnswerConfig().min_score
    reader = assistant.querier.reader if args.reader else None
    memo: dict[Any, np.ndarray] = {}
    if args.reader:
        if reader is None:
            raise SystemExit("--reader: no reader could be loaded")
        default = reader.threshold
        if args.thresholds == DEFAULT_THRESHOLDS:
            args.thresholds = sorted({*READER_THRESHOLDS, reader.threshold})
    if not args.json:
        print("| abstain below | answered (answerable) | abstained (unanswerable) "
              "| abstention precision | gold among citations | answer phrase quoted "
              "| first quote holds it |")  # fmt: skip
        print("|---|---|---|---|---|---|---|")
    for t in args.thresholds:
        config = replace(AnswerConfig(), min_score=t)
        if args.no_number_check:
            config = replace(config, number_margin=None)
        at = _AtThreshold(reader, t, memo) if reader is not None else None
        answerer = ExtractiveAnswerer(assistant.retriever, config, reader=at)
        m = evaluate_answers(answerer.answer, assistant.retriever.index, questions).to_json()
        if args.json:
            print(json.dumps({"threshold" if reader else "min_score": t, **m}))
            continue
        mark = " (default)" if t == default else ""
        cells = [
            f"{t:.2f}{mark}",
            f"{m['answered_rate']:.0%}",
            f"{m['abstain_rate_unanswerable']:.0%}",
            f"{m['abstain_precision']:.2f}",
            f"{m['gold_cited_rate']:.0%}",
            f"{m['phrase_quoted_rate']:.0%}",
            f"{m['first_quote_phrase_rate']:.0%}",
        ]
        print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
