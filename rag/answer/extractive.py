"""Cited answers without an LLM: pick evidence sentences from the top passages, quote them verbatim.

Each quote is an exact span of the cleaned document text (``quote == text[start:end]``), stays in
its source language, and carries an ``[n]`` marker pointing at ``citations[n-1]``. When the best
evidence is too weak, the answer abstains in the question's language and lists the closest passages.

Not done here: generating prose (see ``llm.py`` for the optional LLM path), retrieval itself.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from rag.answer.answer_type import (
    NO_NUMBER_NOTE,
    asks_for_date,
    asks_for_number,
    has_date,
    has_number,
)
from rag.answer.compose import (
    Evidence,
    Retrieval,
    abstention,
    compose,
    overlaps,
)
from rag.answer.follow_up import resolve
from rag.index.lexical import tokenize
from rag.ingest.chunking import CJK_ENDS, CJK_FULL_STOPS, LATIN_ENDS, text_length
from rag.ingest.lang import detect_language
from rag.models.reader import Reader
from rag.search.retrieve import QueryVectors, Retriever
from rag.types import Answer, Filters, Hit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnswerConfig:
    """Evidence selection knobs; the defaults were calibrated on ``tests/data/devset.jsonl``."""

    passages: int = 6  # top passages whose sentences compete as evidence
    max_quotes: int = 4
    margin: float = 0.04  # a quote must score within this of the best one
    source_margin: float = 0.06  # ... or, as its document's best sentence, within this
    min_score: float = 0.43  # below this best evidence score the answer abstains
    duplicate_cos: float = 0.95  # sentences this similar to a chosen one are dropped
    name_weight: float = 0.05  # bonus for covering the question's names/numbers/acronyms
    passage_weight: float = 0.5  # share of the passage's fused score added to a sentence's
    min_chars: int = 25  # shortest quotable sentence, in Latin-letter equivalents (CJK char = 3)
    # A question asking for a number or a date abstains unless a sentence within this of the best
    # holds one (``None`` switches the check off).
    number_margin: float | None = 0.04
    # Chat follow-ups (follow_up.py): a question that does not stand alone and has no cue is read
    # against the conversation's subject when their vectors are at least this close; evidence for
    # a follow-up is scored with the subject's vector mixed in at this weight.
    follow_up_cos: float = 0.8
    subject_weight: float = 0.5
    # The reader (rag/models/reader): the best sentences by the scores above are re-scored by it,
    # at most this many; with a reader, evidence is what it says answers (probability at least
    # its calibrated threshold), best first, and nothing else is quoted.
    reader_candidates: int = 24


class ExtractiveAnswerer:
    """Question → evidence sentences from the top passages → cited Answer (or abstention)."""

    def __init__(
        self,
        retriever: Retriever,
        config: AnswerConfig | None = None,
        reader: Reader | None = None,
    ) -> None:
        self.retriever = retriever
        self.config = config or AnswerConfig()
        self.reader = reader
        self._alone: dict[tuple[str, Filters], bool] = {}  # does a question stand alone

    def evidence(
        self,
        question: str,
        question_lang: str,
        query_vec: np.ndarray,
        ranked: list[tuple[int, float]],
        hits: list[Hit],
    ) -> list[Evidence]:
        """Candidate sentences (:meth:`candidates`), re-scored by the reader when there is one:
        then each score is the reader's probability that the sentence answers ``question``."""
        found = self.candidates(question, question_lang, query_vec, ranked, hits)
        if self.reader is None or not found:
            return found
        found = found[: self.config.reader_candidates]
        probs = self.reader.probabilities(question, [ev.quote for ev in found])
        order = sorted(range(len(found)), key=lambda i: (-float(probs[i]), i))
        return [replace(found[i], score=float(probs[i])) for i in order]

    @property
    def floor(self) -> float:
        """The best evidence must score at least this for an answer (else: abstain)."""
        return self.reader.threshold if self.reader is not None else self.config.min_score

    def candidates(
        self,
        question: str,
        question_lang: str,
        query_vec: np.ndarray,
        ranked: list[tuple[int, float]],
        hits: list[Hit],
    ) -> list[Evidence]:
        """Sentences of the top passages (vectors from the index), scored and sorted best first.

        ``query_vec`` is the centered query vector; ``ranked`` and ``hits`` are aligned.
        """
        cfg = self.config
        rows = [r for r, _ in ranked[: cfg.passages]]
        by_row = dict(zip(rows, hits, strict=False))
        sentences = self.retriever.sentence_scores(query_vec, rows)
        names = {t for t in tokenize(question, question_lang) if t.startswith("#")}
        best_passage = max((h.score for h in hits[: cfg.passages]), default=0.0)
        seen: set[tuple[str, int, int]] = set()
        out = []
        for row in rows:
            hit = by_row[row]
            doc_text_offset = hit.start
            in_chunk = sentences.get(row, [])
            for i, (sent_row, start, end, sim) in enumerate(in_chunk):
                key = (hit.doc_id, start, end)
                if key in seen:
                    continue
                seen.add(key)
                end = _through_items(hit.text, doc_text_offset, start, end, in_chunk[i + 1 :])
                end = _whole_sentence(hit.text, doc_text_offset, end, in_chunk[i + 1 :])
                quote = hit.text[start - doc_text_offset : end - doc_text_offset]
                if text_length(quote) < cfg.min_chars:
                    continue
                if _is_heading(quote, hit.title):
                    continue  # the document's heading names its subject; it answers nothing
                cover = 0.0
                if names:
                    have = {t for t in tokenize(quote, hit.lang) if t.startswith("#")}
                    cover = len(names & have) / len(names)
                score = (
                    sim + cfg.name_weight * cover + cfg.passage_weight * (hit.score - best_passage)
                )
                out.append(Evidence(sent_row, hit, start, end, quote, score))
        out.sort(key=lambda ev: -ev.score)
        return out

    def select(self, evidence: list[Evidence]) -> list[Evidence]:
        """The best sentence; then the best sentence of each other document within
        ``source_margin`` of it (so a source in another language is heard even when its
        passage ranks lower); then the next best within ``margin``. No near-duplicates."""
        cfg = self.config
        if not evidence:
            return []
        if self.reader is not None:  # the sentences the reader says answer, and only those
            return self._distinct([ev for ev in evidence if ev.score >= self.reader.threshold])
        best = evidence[0].score
        first_of_doc: dict[str, Evidence] = {}
        for ev in evidence:
            if ev.score >= best - cfg.source_margin:
                first_of_doc.setdefault(ev.hit.doc_id, ev)
        order = [evidence[0], *first_of_doc.values()]
        order += [ev for ev in evidence if ev.score >= best - cfg.margin]
        return self._distinct(list({id(ev): ev for ev in order}.values()))

    def _distinct(self, order: list[Evidence]) -> list[Evidence]:
        """At most ``max_quotes`` of ``order``, in order, none a near-duplicate of or overlapping
        an earlier one."""
        cfg = self.config
        pool = order[: cfg.max_quotes * 3]
        vecs = self.retriever.index.vectors_of([ev.sentence_row for ev in pool], sentences=True)
        chosen: list[int] = []
        for i in range(len(pool)):
            if len(chosen) == cfg.max_quotes:
                break
            if all(
                float(vecs[i] @ vecs[j]) <= cfg.duplicate_cos and not overlaps(pool[i], pool[j])
                for j in chosen
            ):
                chosen.append(i)
        return [pool[i] for i in chosen]

    def retrieve(
        self,
        question: str,
        *,
        history: Sequence[tuple[str, str]] = (),
        filters: Filters | None = None,
        k: int = 8,
    ) -> Retrieval:
        """The question's language, its reading against the chat history (``follow_up.py``)
        and its ranked passages, shared by the extractive and the LLM answerer."""
        question = question.strip()
        if not question:
            raise ValueError("the question is empty")
        filters = filters or Filters()
        vec = QueryVectors(self.retriever)

        if not history:
            return self._retrieve(question, question, filters, k, vec)
        probes: dict[str, Retrieval] = {}

        def stands_alone(q: str) -> bool:
            key = (q, filters)
            if key not in self._alone:
                probes[q] = r = self._retrieve(q, q, filters, k, vec)
                ev = self.evidence(r.query, r.query_lang, r.query_vec, r.ranked, r.hits)
                if len(self._alone) > 512:
                    self._alone.clear()
                self._alone[key] = bool(ev) and ev[0].score >= self.floor
            return self._alone[key]

        def similarity(a: str, b: str) -> float:
            return float(vec(a) @ vec(b))

        res = resolve(question, history, stands_alone, similarity, self.config.follow_up_cos)
        if not res.is_follow_up:
            return probes.get(question) or self._retrieve(question, question, filters, k, vec)
        return self._retrieve(question, res.query, filters, k, vec, subject=res.subject)

    def _retrieve(
        self,
        question: str,
        query: str,
        filters: Filters,
        k: int,
        vec: QueryVectors,
        subject: str = "",
    ) -> Retrieval:
        """Passages for ``query``. For a follow-up (``subject`` given) the passages come from
        the subject and the question together, and their sentences are scored against the
        question with the subject's vector mixed in at ``subject_weight``, so the evidence
        answers the follow-up rather than repeating the answer to the subject."""
        query_lang = detect_language(query)
        raw, lexical = vec.with_lexical(query, query_lang, k, filters)
        ranked = self.retriever.rank(query, raw, query_lang, k, filters, prefetched=lexical)
        lang = detect_language(question)
        query_vec = topic_vec = self.retriever.query_vector(raw, query_lang)
        if subject:
            mixed = vec(question) + self.config.subject_weight * vec(subject)
            query_vec = self.retriever.query_vector(mixed / np.linalg.norm(mixed), lang)
        return Retrieval(
            question, lang, query, query_lang, query_vec, ranked, self.retriever.hits(ranked),
            filters, topic_vec if subject else None,
        )  # fmt: skip

    def answer(
        self,
        question: str,
        *,
        history: Sequence[tuple[str, str]] = (),
        filters: Filters | None = None,
        k: int = 8,
    ) -> Answer:
        return self.answer_from(self.retrieve(question, history=history, filters=filters, k=k))

    def answer_from(self, r: Retrieval) -> Answer:
        """Evidence sentences of retrieved passages → a cited Answer, or an abstention."""
        evidence = self.evidence(r.query, r.query_lang, r.query_vec, r.ranked, r.hits)
        judged = evidence
        if r.topic_vec is not None:  # a follow-up: is its subject and question answered at all
            judged = self.evidence(r.query, r.query_lang, r.topic_vec, r.ranked, r.hits)
        if not judged or judged[0].score < self.floor:
            return abstention(r, "extractive")
        # With a reader, whether a sentence answers is the reader's judgement alone.
        if self.reader is None and self.lacks_number(r.question, evidence):
            return abstention(r, "extractive", NO_NUMBER_NOTE)
        return compose(r.question, r.lang, self.select(self.number_first(r.question, evidence)),
                       r.query)  # fmt: skip

    def rerank(self, r: Retrieval) -> tuple[list[Hit], dict[str, float]]:
        """The hits with the passages whose sentences the reader says answer first (by their best
        sentence's probability), the others after them in retrieval order; and the best reader
        probability per chunk id (only the sentences it was shown). Without a reader: unchanged."""
        if self.reader is None or not r.hits:
            return list(r.hits), {}
        best: dict[str, float] = {}
        for ev in self.evidence(r.query, r.query_lang, r.query_vec, r.ranked, r.hits):
            best[ev.hit.chunk_id] = max(best.get(ev.hit.chunk_id, 0.0), ev.score)
        floor = self.reader.threshold
        order = sorted(
            range(len(r.hits)),
            key=lambda i: (
                (-best.get(r.hits[i].chunk_id, 0.0), i)
                if best.get(r.hits[i].chunk_id, 0.0) >= floor
                else (0.0, i)
            ),
        )
        hits = [replace(r.hits[i], rank=n + 1) for n, i in enumerate(order)]
        return hits, best

    def _typed(self, question: str, evidence: Sequence[Evidence]) -> tuple[bool, Evidence | None]:
        """(does the number check apply, the best sentence within ``number_margin`` of the best
        that holds what the question asks for: a date for a "when" question, else a number)."""
        margin = self.config.number_margin
        if margin is None or not evidence or not asks_for_number(question):
            return False, None
        # With a reader the candidates are the sentences it says answer; else those near the best.
        floor = self.floor if self.reader is not None else evidence[0].score - margin
        holds = has_date if asks_for_date(question) else has_number
        return True, next((ev for ev in evidence if ev.score >= floor and holds(ev.quote)), None)

    def number_first(self, question: str, evidence: list[Evidence]) -> list[Evidence]:
        """For a question asking for a number or a date, the best sentence that holds one (within
        ``number_margin`` of the best) leads the evidence: the answer's type comes first."""
        _, first = self._typed(question, evidence)
        if first is None or first is evidence[0]:
            return evidence
        return [first, *(ev for ev in evidence if ev is not first)]

    def lacks_number(self, question: str, evidence: Sequence[Evidence]) -> bool:
        """The question asks for a number or a date and no sentence within ``number_margin`` of
        the best evidence (sorted best first) holds one — a date for a "when" question, not
        just any number (False when the check is off)."""
        applies, first = self._typed(question, evidence)
        return applies and first is None


def _is_heading(quote: str, title: str) -> bool:
    """The quote is the document's title line, or the start of a longer catalog title (a
    Chinese heading line under the title "原题 (English name)"). A title taken from a first
    *sentence* that ends like one stays quotable: it may be the only thing the document says."""
    words, title_words = quote.split(), title.split()
    return (
        bool(words)
        and title_words[: len(words)] == words
        and not quote.rstrip().endswith(_SENTENCE_ENDS)
    )


_SENTENCE_ENDS = tuple(LATIN_ENDS + CJK_ENDS)


# An enumeration's lead-in ("The following AI practices shall be prohibited:") names the topic of
# its items but answers nothing alone: its quote runs on through the following items of the same
# passage, up to this many characters (and at least one item).
ITEMS_QUOTE_CHARS = 600
_FULL_STOPS = LATIN_ENDS + CJK_FULL_STOPS  # not "；", which separates Chinese items


def _through_items(
    text: str, offset: int, start: int, end: int, following: Sequence[tuple[int, int, int, float]]
) -> int:
    """End of the quote that starts at ``start``: ``end``, or past the items of an enumeration
    when the sentence introduces one (ends with a colon). Offsets are the document's; ``text``
    is the passage starting at ``offset``; ``following`` are the passage's later sentences."""
    if not text[start - offset : end - offset].endswith((":", "：")):
        return end
    lead_end = end
    for _, s, e, _ in following:
        if s < end:
            continue
        if end > lead_end and e - start > ITEMS_QUOTE_CHARS:
            break  # at least one item, then as many as fit
        end = e
        if text[e - offset - 1] in _FULL_STOPS:
            break  # the enumeration's sentence is over
    return end


_TERMINAL = LATIN_ENDS + CJK_ENDS + ":：;\"'”’»)]）」』"


def _whole_sentence(
    text: str, offset: int, end: int, following: Sequence[tuple[int, int, int, float]]
) -> int:
    """End of a quote that would stop mid-sentence: a sentence too long for one piece was cut at
    a space or comma (``chunking._split_long``); the quote runs on through the following pieces
    of the passage (separated by spaces, no line break) until the sentence ends."""
    for _, s, e, _ in following:
        if s < end:
            continue
        tail = text[end - offset - 1] if end - offset >= 1 else ""
        gap = text[end - offset : s - offset]
        if tail in _TERMINAL or "\n" in gap or gap.strip(" ,，、"):
            break
        end = e
    return end
