"""Retrieval metrics over BEIR-style folders and over the shipped corpus's dev set.

``recall@k`` here is success@k: the share of questions with at least one relevant passage in the
top k (the usual reading when each question has one gold passage). ``ndcg@10`` uses binary
relevance over every relevant document (all translations of the gold paragraph in a pooled run).
Not done here: answer quality (see the answer tests).
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.index.backends import backend_for
from rag.search.retrieve import Retriever
from rag.service import Assistant
from rag.types import Document, Filters


@dataclass(frozen=True)
class Metrics:
    recall_at_1: float
    recall_at_5: float
    recall_at_10: float
    mrr_at_10: float
    ndcg_at_10: float
    n: int

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        return {
            "recall@1": d["recall_at_1"], "recall@5": d["recall_at_5"],
            "recall@10": d["recall_at_10"], "mrr@10": d["mrr_at_10"],
            "ndcg@10": d["ndcg_at_10"], "n": d["n"],
        }  # fmt: skip


def compute_metrics(rankings: Sequence[Sequence[bool]], n_relevant: Sequence[int]) -> Metrics:
    """From per-question relevance flags of the ranked list (best first).

    Example: ``compute_metrics([[False, True]], [1])`` → recall@1 0, recall@5 1, mrr@10 0.5.
    """
    if len(rankings) != len(n_relevant):
        raise ValueError(f"{len(rankings)} rankings but {len(n_relevant)} relevance counts")
    n = len(rankings)
    if n == 0:
        return Metrics(0.0, 0.0, 0.0, 0.0, 0.0, 0)
    r1 = r5 = r10 = mrr = ndcg = 0.0
    for flags, n_rel in zip(rankings, n_relevant, strict=True):
        top = list(flags[:10])
        r1 += any(top[:1])
        r5 += any(top[:5])
        r10 += any(top[:10])
        first = next((i for i, f in enumerate(top) if f), None)
        mrr += 0.0 if first is None else 1.0 / (first + 1)
        dcg = sum(1.0 / math.log2(i + 2) for i, f in enumerate(top) if f)
        ideal = sum(1.0 / math.log2(i + 2) for i in range(min(n_rel, 10)))
        ndcg += dcg / ideal if ideal else 0.0
    r1, r5, r10, mrr, ndcg = (round(x / n, 4) for x in (r1, r5, r10, mrr, ndcg))
    return Metrics(r1, r5, r10, mrr, ndcg, n)


# --- BEIR-style folders ------------------------------------------------------------------------


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        raise FileNotFoundError(f"{path} not found (expected a BEIR-style folder)")
    out = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from exc
    return out


def load_beir(
    data_dir: Path, queries_lang: str, corpus_langs: Sequence[str]
) -> tuple[list[tuple[str, list[Document]]], list[tuple[str, str]], dict[str, set[str]]]:
    """(document groups per corpus file, (query id, text) pairs, qrels query id → corpus ids)."""
    groups = []
    for lang in corpus_langs:
        rows = _read_jsonl(data_dir / f"corpus.{lang}.jsonl")
        docs = [
            Document(
                doc_id=f"{lang}/{r['_id']}",
                text=r["text"],
                title=r.get("title", ""),
                lang=r.get("lang", lang),
                path=f"corpus.{lang}.jsonl",
            )
            for r in rows
        ]
        groups.append((f"corpus.{lang}.jsonl", docs))
    queries = [
        (q["_id"], q["text"]) for q in _read_jsonl(data_dir / f"queries.{queries_lang}.jsonl")
    ]
    qrels: dict[str, set[str]] = {}
    qrels_path = data_dir / "qrels.tsv"
    if not qrels_path.exists():
        raise FileNotFoundError(f"{qrels_path} not found (expected a BEIR-style folder)")
    for line in qrels_path.read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) >= 2 and parts[0] != "query-id" and (len(parts) < 3 or parts[2] != "0"):
            qrels.setdefault(parts[0], set()).add(parts[1])
    return groups, queries, qrels


def rank_documents(
    retriever: Retriever, queries: Sequence[str], k: int, filters: Filters | None = None
) -> list[list[str]]:
    """Top-k distinct document ids per query (queries encoded in one batch)."""
    from rag.ingest.lang import detect_language

    vecs = retriever.embedder.encode_queries(list(queries))
    out = []
    for text, vec in zip(queries, vecs, strict=True):
        ranked = retriever.rank(text, vec, detect_language(text), k * 3, filters or Filters())
        chunks = retriever.index.chunks(r for r, _ in ranked)
        docs = list(dict.fromkeys(chunks[r].doc_id for r, _ in ranked if r in chunks))
        out.append(docs[:k])
    return out


@contextmanager
def temporary_index(
    assistant: Assistant, groups: list[tuple[str, list[Document]]]
) -> Iterator[Any]:
    """Index ``(file name, documents)`` groups with the ingest pipeline into a temporary store of
    the assistant's backend; yields the opened store, dropped afterwards."""
    with tempfile.TemporaryDirectory(prefix="rag-eval-") as tmp:
        backend = backend_for(assistant.settings, temporary=Path(tmp))
        writer = backend.writer(
            model=assistant.embedder.name, dim=assistant.embedder.dim, rebuild=True
        )
        fingerprints = {rel: rel for rel, _ in groups}
        assistant.indexer.write_documents(writer, groups, fingerprints)
        writer.commit({"index_settings": assistant.index_settings()})
        reader = backend.reader(model=assistant.embedder.name)
        try:
            yield reader
        finally:
            reader.close()
            backend.drop()


def evaluate_beir(
    assistant: Assistant,
    data_dir: Path,
    queries_lang: str,
    corpus_langs: Sequence[str],
    k: int = 10,
) -> Metrics:
    """Index the named corpora in a temporary folder with the ingest pipeline and score queries."""
    groups, queries, qrels = load_beir(data_dir, queries_lang, corpus_langs)
    queries = [(qid, text) for qid, text in queries if qid in qrels]
    with temporary_index(assistant, groups) as reader:
        retriever = Retriever(reader, assistant.embedder, assistant.fusion, assistant.centering)
        ranked = rank_documents(retriever, [t for _, t in queries], k)
    rankings = [
        [doc.split("/", 1)[1] in qrels[qid] for doc in docs]
        for (qid, _), docs in zip(queries, ranked, strict=True)
    ]
    # A relevant document per corpus language: every translation of the gold paragraph counts.
    n_rel = [len(qrels[qid]) * len(corpus_langs) for qid, _ in queries]
    return compute_metrics(rankings, n_rel)


# --- the shipped corpus's dev set ----------------------------------------------------------------


@dataclass(frozen=True)
class DevQuestion:
    id: str
    question: str
    lang: str
    answerable: bool
    gold: tuple[tuple[str, str], ...]  # (doc_id, phrase that the answering chunk contains)


def load_devset(path: Path) -> list[DevQuestion]:
    return [
        DevQuestion(
            id=r["id"],
            question=r["question"],
            lang=r["lang"],
            answerable=bool(r["answerable"]),
            gold=tuple((g["doc_id"], g["phrase"]) for g in r.get("gold", [])),
        )
        for r in _read_jsonl(path)
    ]


def chunk_is_gold(q: DevQuestion, doc_id: str, text: str) -> bool:
    return any(doc_id == d and phrase in text for d, phrase in q.gold)


def evaluate_devset(retriever: Retriever, questions: Sequence[DevQuestion], k: int = 10) -> Metrics:
    """Answerable questions only: a hit is relevant if in a gold document and holding its phrase."""
    qs = [q for q in questions if q.answerable]
    vecs = retriever.embedder.encode_queries([q.question for q in qs])
    return compute_metrics(devset_rankings(retriever, qs, vecs, k), [1] * len(qs))


def evaluate_devset_reranked(rerank: Any, questions: Sequence[DevQuestion], k: int = 10) -> Metrics:
    """As :func:`evaluate_devset`, over ``rerank(question, k) -> hits`` (the passages the reader
    says answer moved first: ``Querier.reranked``)."""
    qs = [q for q in questions if q.answerable]
    rankings = [[chunk_is_gold(q, h.doc_id, h.text) for h in rerank(q.question, k)] for q in qs]
    return compute_metrics(rankings, [1] * len(qs))


def devset_rankings(
    retriever: Retriever, questions: Sequence[DevQuestion], vecs: np.ndarray, k: int
) -> list[list[bool]]:
    """Per question (with its raw query vector), whether each of the top ``k`` hits is gold."""
    from rag.ingest.lang import detect_language

    rankings = []
    for q, vec in zip(questions, vecs, strict=True):
        ranked = retriever.rank(q.question, vec, detect_language(q.question), k, Filters())
        chunks = retriever.index.chunks(r for r, _ in ranked)
        rankings.append([chunk_is_gold(q, chunks[r].doc_id, chunks[r].text) for r, _ in ranked])
    return rankings


@dataclass(frozen=True)
class AnswerMetrics:
    """Answers on a dev set: abstention as a classifier, gold passages among the citations."""

    answerable: int
    unanswerable: int
    answered_answerable: int  # answerable questions that got an answer
    abstained_unanswerable: int  # unanswerable questions that abstained
    gold_cited: int  # answerable questions with a citation inside a gold passage
    citations: int
    exact_quotes: int  # citations with quote == document.text[start:end]
    phrase_quoted: int = 0  # answerable questions with a quote holding (part of) a gold phrase
    first_quote_phrase: int = 0  # ... where citation [1] is that quote

    def to_json(self) -> dict[str, float | int]:
        abstained = self.abstained_unanswerable + (self.answerable - self.answered_answerable)
        return {
            "answerable": self.answerable,
            "unanswerable": self.unanswerable,
            "answered_rate": _ratio(self.answered_answerable, self.answerable),
            "abstain_rate_unanswerable": _ratio(self.abstained_unanswerable, self.unanswerable),
            "abstain_precision": _ratio(self.abstained_unanswerable, abstained),
            "abstain_recall": _ratio(self.abstained_unanswerable, self.unanswerable),
            "gold_cited_rate": _ratio(self.gold_cited, self.answerable),
            "phrase_quoted_rate": _ratio(self.phrase_quoted, self.answerable),
            "first_quote_phrase_rate": _ratio(self.first_quote_phrase, self.answerable),
            "exact_quote_rate": _ratio(self.exact_quotes, self.citations),
            "citations": self.citations,
        }


def _ratio(a: int, b: int) -> float:
    return round(a / b, 4) if b else 0.0


def _gold_occurrences(q: DevQuestion, doc_id: str, text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of every occurrence of a gold phrase of ``q`` in gold document ``doc_id``."""
    for gold_doc, phrase in q.gold:
        if gold_doc != doc_id:
            continue
        at = text.find(phrase)
        while at >= 0:
            yield at, at + len(phrase)
            at = text.find(phrase, at + 1)


def quote_holds_phrase(q: DevQuestion, doc_id: str, text: str, start: int, end: int) -> bool:
    """``text[start:end]`` overlaps an occurrence of a gold phrase in a gold document: the
    sentence that answers is the one quoted (stricter than :func:`quote_is_gold`)."""
    return any(a < b and start < b and end > a for a, b in _gold_occurrences(q, doc_id, text))


def quote_is_gold(q: DevQuestion, doc_id: str, text: str, start: int, end: int) -> bool:
    """``text[start:end]`` lies in the paragraph of a gold document that holds a gold phrase."""
    for at, phrase_end in _gold_occurrences(q, doc_id, text):
        lo = text.rfind("\n\n", 0, at) + 1
        hi = text.find("\n\n", phrase_end)
        hi = len(text) if hi < 0 else hi
        if start < hi and end > lo:
            return True
    return False


def evaluate_answers(ask: Any, index: Any, questions: Sequence[DevQuestion]) -> AnswerMetrics:
    """Run ``ask(question) -> Answer`` on every dev question and score abstention and citations.

    A citation counts as gold when its quote lies in the paragraph of a gold document that holds
    the gold phrase (see :func:`quote_is_gold`).
    """
    answered = abstained = gold = n_cit = exact = phrase = first = 0
    for q in questions:
        answer = ask(q.question)
        if answer.abstained:
            abstained += not q.answerable
            continue
        answered += q.answerable
        docs = index.documents({c.doc_id for c in answer.citations}, with_text=True)
        hit = quoted = False
        for i, c in enumerate(answer.citations):
            text = docs[c.doc_id].text
            n_cit += 1
            exact += text[c.start : c.end] == c.quote
            hit = hit or quote_is_gold(q, c.doc_id, text, c.start, c.end)
            holds = quote_holds_phrase(q, c.doc_id, text, c.start, c.end)
            quoted = quoted or holds
            first += q.answerable and i == 0 and holds
        gold += q.answerable and hit
        phrase += q.answerable and quoted
    n_ans = sum(q.answerable for q in questions)
    return AnswerMetrics(
        answerable=n_ans, unanswerable=len(questions) - n_ans, answered_answerable=answered,
        abstained_unanswerable=abstained, gold_cited=gold, citations=n_cit, exact_quotes=exact,
        phrase_quoted=phrase, first_quote_phrase=first,
    )  # fmt: skip
