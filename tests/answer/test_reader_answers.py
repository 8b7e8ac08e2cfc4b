"""The answerer with a reader: evidence is what the reader says answers, best first; nothing else
is quoted; "the corpus does not say" is the reader's judgement; quotes are whole sentences; a
source's own "[10]" never reads as a citation. The reader here is a fake (the logic); the shipped
one is tested in tests/models/test_reader.py."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.answer.compose import Evidence, compose, render_quote
from rag.answer.extractive import ExtractiveAnswerer, _whole_sentence
from rag.types import Hit

ROOT = Path(__file__).resolve().parents[2]
CITATION = re.compile(r"\[(\d+)\]")


class KeywordReader:
    """Answers (0.9) when the sentence holds one of ``words``, else 0.1; records its calls."""

    threshold = 0.5

    def __init__(self, *words: str) -> None:
        self.words = words
        self.calls: list[tuple[str, int]] = []

    def probabilities(self, question: str, sentences: Sequence[str]) -> np.ndarray:
        self.calls.append((question, len(sentences)))
        return np.array([0.9 if any(w in s for w in self.words) else 0.1 for s in sentences])


CORPUS = {
    "a.txt": "Audit rules for AI providers are strict and public. The audit office in Lyon "
    "checks every provider once a year.",
    "b.txt": "Audit rules for AI providers differ by country and by sector.",
    "c.txt": "Weather in Lyon is mild in spring and the city hosts many audits of food safety.",
}


def _answerer(make_corpus: Callable[..., Path], fake_assistant: Callable[..., Any],
              reader: KeywordReader) -> ExtractiveAnswerer:  # fmt: skip
    assistant = fake_assistant(make_corpus(CORPUS))
    assistant.ingest()
    return ExtractiveAnswerer(assistant.retriever, reader=reader)


def test_only_the_sentences_the_reader_says_answer_are_quoted(
    make_corpus: Callable[..., Path], fake_assistant: Callable[..., Any]
) -> None:
    reader = KeywordReader("once a year")
    answerer = _answerer(make_corpus, fake_assistant, reader)
    answer = answerer.answer("How often are AI providers audited under the audit rules?")
    assert not answer.abstained
    assert [c.quote for c in answer.citations] == [
        "The audit office in Lyon checks every provider once a year."
    ]  # the similar sentences of a.txt and b.txt are not appended as padding
    assert answer.answer.count("[") == 1 and "1 source" in answer.answer
    assert reader.calls and all(n <= answerer.config.reader_candidates for _, n in reader.calls)


def test_without_an_answering_sentence_the_answer_abstains_whatever_the_similarity(
    make_corpus: Callable[..., Path], fake_assistant: Callable[..., Any]
) -> None:
    plain = _answerer(make_corpus, fake_assistant, KeywordReader())
    question = "Audit rules for AI providers are strict and public"  # matches a.txt exactly
    no_reader = ExtractiveAnswerer(plain.retriever)
    assert not no_reader.answer(question).abstained  # cosine alone would answer
    answer = plain.answer(question)
    assert answer.abstained and answer.closest and not answer.citations


def test_the_reader_orders_the_evidence(
    make_corpus: Callable[..., Path], fake_assistant: Callable[..., Any]
) -> None:
    answerer = _answerer(make_corpus, fake_assistant, KeywordReader("differ by country"))
    r = answerer.retrieve("Where do audit rules for AI providers differ?")
    evidence = answerer.evidence(r.query, r.query_lang, r.query_vec, r.ranked, r.hits)
    assert evidence[0].quote == CORPUS["b.txt"] and evidence[0].score == 0.9
    assert all(ev.score == 0.1 for ev in evidence[1:])


def _ev(quote: str, start: int = 0) -> Evidence:
    hit = Hit(1, 1.0, "eu_ai_act/recital_009", "c#0", "Recital 9", "en", "", "", quote, start,
              start + len(quote))  # fmt: skip
    return Evidence(0, hit, start, start + len(quote), quote, 0.9)


def test_a_footnote_marker_in_recital_9_is_not_a_citation() -> None:
    recitals = json.loads((ROOT / "corpus" / "eu_ai_act" / "recitals.json").read_text("utf-8"))
    text = next(iter(r for r in recitals.values() if r.get("id") == "recital_009"))["text_content"]
    sentence = next(s for s in re.split(r"(?<=\.) ", text) if "[10]" in s)
    answer = compose("What stays unaffected?", "en", [_ev(sentence)])
    assert "[10]" not in answer.answer and "⁽¹⁰⁾" in answer.answer
    assert [int(n) for n in CITATION.findall(answer.answer)] == [1]
    assert answer.citations[0].quote == sentence  # the citation keeps the exact source text
    assert "[10]" in answer.citations[0].quote


def test_render_quote_changes_only_bracketed_numbers() -> None:
    assert render_quote("[45] Commission Decision of 2021 [a] and [12b]") == (
        "⁽⁴⁵⁾ Commission Decision of 2021 [a] and [12b]"
    )


def test_a_quote_runs_on_to_the_end_of_a_sentence_cut_for_length() -> None:
    text = "The rule, which is long, applies to all providers, and it ends here. Next one."
    cut = text.index("applies") - 1  # a piece ends before "applies" (split at a space)
    end_piece = text.index(" Next")
    following = [(1, cut + 1, end_piece, 0.0), (2, end_piece + 1, len(text), 0.0)]
    assert _whole_sentence(text, 0, cut, following) == end_piece
    assert _whole_sentence(text, 0, end_piece, following[1:]) == end_piece  # ended with "."
    heading = "Article 5\nProhibited practices."
    assert _whole_sentence(heading, 0, 9, [(1, 10, len(heading), 0.0)]) == 9  # a line break


def test_the_langchain_retriever_puts_what_the_reader_says_answers_first(
    make_corpus: Callable[..., Path], tmp_path: Path
) -> None:
    from rag.app.langchain_retriever import GovragRetriever
    from rag.config import Settings
    from rag.models.embeddings import HashEmbedder
    from rag.service import Assistant

    settings = Settings(corpus_dir=make_corpus(CORPUS), index_dir=tmp_path / "index",
                        model="hash:64", cache_dir=tmp_path / "cache")  # fmt: skip
    assistant = Assistant(settings, HashEmbedder(64), reader=KeywordReader("Weather in Lyon"))
    assistant.ingest()
    query = "Audit rules for AI providers"
    plain = GovragRetriever(assistant=assistant, k=3, rerank=False).invoke(query)
    docs = GovragRetriever(assistant=assistant, k=3).invoke(query)
    assert plain[0].metadata["doc_id"] != "c"  # by similarity c.txt is not first
    assert docs[0].metadata["doc_id"] == "c" and docs[0].metadata["reader_score"] == 0.9
    assert [d.metadata["rank"] for d in docs] == [1, 2, 3]
    assert {d.id for d in docs} == {d.id for d in plain}  # the same passages, reordered
