"""Abstention threshold sweep on the shipped corpus's dev set (the README's answers table).

Usage: python -m bench.abstain [--devset tests/data/devset.jsonl] [--thresholds 0.45 0.47 ...]
                               [--no-number-check]

Runs the extractive answerer on every dev question once per threshold (``AnswerConfig.min_score``)
on the index of the current settings (``RAG_INDEX_DIR``) and prints one markdown row per
threshold: answered answerable, abstained unanswerable, abstention precision, gold among the
citations. ``--no-number-check`` switches off the abstention of number/date questions whose
evidence holds no number (``AnswerConfig.number_margin``). Quality only, no timings.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from rag.answer.extractive import AnswerConfig, ExtractiveAnswerer
from rag.evaluate import evaluate_answers, load_devset
from rag.service import Assistant

DEFAULT_THRESHOLDS = [0.40, 0.42, 0.43, 0.44, 0.45, 0.48, 0.50, 0.52, 0.54, 0.56]


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
    args = ap.parse_args()
    assistant = Assistant()
    questions = load_devset(args.devset)
    default = AnswerConfig().min_score
    if not args.json:
        print("| abstain below | answered (answerable) | abstained (unanswerable) "
              "| abstention precision | gold among citations |")  # fmt: skip
        print("|---|---|---|---|---|")
    for t in args.thresholds:
        config = replace(AnswerConfig(), min_score=t)
        if args.no_number_check:
            config = replace(config, number_margin=None)
        answerer = ExtractiveAnswerer(assistant.retriever, config)
        m = evaluate_answers(answerer.answer, assistant.retriever.index, questions).to_json()
        if args.json:
            print(json.dumps({"min_score": t, **m}))
            continue
        mark = " (default)" if t == default else ""
        cells = [
            f"{t:.2f}{mark}",
            f"{m['answered_rate']:.0%}",
            f"{m['abstain_rate_unanswerable']:.0%}",
            f"{m['abstain_precision']:.2f}",
            f"{m['gold_cited_rate']:.0%}",
        ]
        print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
