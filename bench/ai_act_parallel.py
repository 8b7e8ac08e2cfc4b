"""The EU AI Act in English and Dutch: parallel-article retrieval and questions in other languages.

    python -m bench.ai_act_parallel [--data ../shared/data/governance]

Indexes the 113 articles of the English text (``eu_ai_act_en/articles.json``) and of the Dutch
Official Journal text (``eu_ai_act_nl/*.md``, split at its ``#### Artikel N`` headings) as 226
documents with the ingest pipeline, then measures, per query-side configuration:

- **parallel R@1**: each Dutch article (its text as the query) must find its English counterpart
  first among the English articles, and the reverse (article-level R@1, language filter on the
  target side);
- **questions**: 30 questions written for this check in sv, de, fr and zh
  (``bench/data/ai_act_questions.jsonl``, each with the article that answers it); both the English
  and the Dutch article must be among the top 5 documents of the pooled index.

Writes ``bench/results/ai_act_parallel_<date>.{json,md}``. ~6 min on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import common
from rag.config import Settings
from rag.evaluate import rank_documents, temporary_index
from rag.search.retrieve import Retriever
from rag.service import Assistant
from rag.types import Document, Filters

QUESTIONS = Path(__file__).parent / "data" / "ai_act_questions.jsonl"
CONFIGS: dict[str, dict[str, Any]] = {
    "no translation": {"translate": False},
    "translation (default)": {"translate": True},
}
_ARTICLE = re.compile(r"^#### Artikel (\d+)\s*$")


def english_articles(folder: Path) -> list[Document]:
    data = json.loads((folder / "articles.json").read_text("utf-8"))
    docs = []
    for key in sorted(data):
        a = data[key]
        n = int(key.rsplit("_", 1)[1])
        docs.append(Document(f"en/{n}", a["text_content"], a["title"], "en", "articles.json"))
    return docs


def dutch_articles(folder: Path) -> list[Document]:
    """The ``#### Artikel N`` sections of the Dutch OJ text, each up to the next heading of any
    level (the last one up to the signatures)."""
    (path,) = sorted(folder.glob("*.md"))
    docs: list[Document] = []
    current, lines = 0, list[str]()
    for line in [*path.read_text("utf-8").splitlines(), "#"]:
        m = _ARTICLE.match(line)
        if m or line.startswith(("#", "Gedaan te Brussel")):  # the signatures end the last one
            if current and lines:
                text = "\n".join(lines).strip()
                title = text.splitlines()[0].strip("* ")
                docs.append(Document(f"nl/{current}", text, f"Artikel {current}: {title}", "nl",
                                     path.name))  # fmt: skip
            current, lines = (int(m.group(1)) if m else 0), []
        elif current:
            lines.append(line)
    return docs


def parallel_r1(retriever: Retriever, queries: list[Document], target: str) -> float:
    ranked = rank_documents(retriever, [d.text for d in queries], 1, Filters(langs=(target,)))
    hits = [bool(r) and r[0].split("/")[1] == q.doc_id.split("/")[1] for q, r in
            zip(queries, ranked, strict=True)]  # fmt: skip
    return round(sum(hits) / len(hits), 4)


def questions_both_in_top5(retriever: Retriever, questions: list[dict[str, Any]]) -> dict:
    ranked = rank_documents(retriever, [q["question"] for q in questions], 5)
    both = [{f"en/{q['article']}", f"nl/{q['article']}"} <= set(r) for q, r in
            zip(questions, ranked, strict=True)]  # fmt: skip
    en = [f"en/{q['article']}" in r for q, r in zip(questions, ranked, strict=True)]
    nl = [f"nl/{q['article']}" in r for q, r in zip(questions, ranked, strict=True)]
    n = len(questions)
    return {"both": round(sum(both) / n, 4), "en": round(sum(en) / n, 4),
            "nl": round(sum(nl) / n, 4), "n": n,
            "missed": [q["id"] for q, ok in zip(questions, both, strict=True)
                       if not ok]}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data/governance"))
    args = ap.parse_args()
    en, nl = (
        english_articles(args.data / "eu_ai_act_en"),
        dutch_articles(args.data / "eu_ai_act_nl"),
    )
    if [d.doc_id.split("/")[1] for d in en] != [d.doc_id.split("/")[1] for d in nl]:
        raise SystemExit(f"articles do not pair up: {len(en)} English, {len(nl)} Dutch")
    questions = [json.loads(x) for x in QUESTIONS.read_text("utf-8").splitlines() if x.strip()]
    assistant = Assistant(Settings.from_env())
    t0 = time.time()
    out: dict[str, Any] = {}
    with temporary_index(assistant, [("articles.en", en), ("articles.nl", nl)]) as reader:
        for name, cfg in CONFIGS.items():
            fusion = replace(assistant.querier.fusion, **cfg)
            r = Retriever(reader, assistant.embedder, fusion, assistant.centering)
            out[name] = {"nl→en": parallel_r1(r, nl, "en"), "en→nl": parallel_r1(r, en, "nl"),
                         "questions": questions_both_in_top5(r, questions)}  # fmt: skip
            print(name, out[name], flush=True)
    lines = ["| configuration | parallel R@1 nl→en | en→nl | questions: en and nl article in top 5 "
             "| en in top 5 | nl in top 5 |", "|---|---|---|---|---|---|"]  # fmt: skip
    for name, r in out.items():
        q = r["questions"]
        lines.append(f"| {name} | {r['nl→en']:.3f} | {r['en→nl']:.3f} | {q['both']:.3f} "
                     f"| {q['en']:.3f} | {q['nl']:.3f} |")  # fmt: skip
    common.save("ai_act_parallel", {"seconds": round(time.time() - t0), **out}, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
