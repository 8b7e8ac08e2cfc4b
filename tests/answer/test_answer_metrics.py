"""The answer metrics of `rag eval --answers`, against hand-computed cases; evidence choice."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag.evaluate import DevQuestion, evaluate_answers, quote_is_gold
from rag.types import Answer, Citation, Document

TEXT = "Intro paragraph.\n\nThe fine is 35 million euro. It applies from 2026.\n\nOther topic here."


def _q(qid: str, answerable: bool) -> DevQuestion:
    gold = (("d", "35 million euro"),) if answerable else ()
    return DevQuestion(qid, f"question {qid}", "en", answerable, gold)


def _cite(start: int, end: int, doc: str = "d") -> Citation:
    return Citation(1, doc, f"{doc}#0", "T", "en", "", "", TEXT[start:end], start, end)


def test_quote_is_gold_means_same_paragraph_as_the_phrase() -> None:
    q = _q("a", True)
    para = TEXT.index("It applies")
    assert quote_is_gold(q, "d", TEXT, para, para + 10)  # same paragraph, not the phrase itself
    assert not quote_is_gold(q, "d", TEXT, 0, 16)  # the intro paragraph
    assert not quote_is_gold(q, "other", TEXT, para, para + 10)  # another document


@dataclass
class _Index:
    def documents(self, ids: object, with_text: bool = False) -> dict[str, Document]:
        return {"d": Document("d", TEXT, "T", "en", "d.txt")}


def test_evaluate_answers_hand_computed() -> None:
    gold_at = TEXT.index("The fine")
    replies = {
        "question 1": Answer(
            "q", "en", "x [1]", False, "extractive", (_cite(gold_at, gold_at + 8),)
        ),
        "question 2": Answer("q", "en", "x [1]", False, "extractive", (_cite(0, 16),)),
        "question 3": Answer("q", "en", "none", True, "extractive"),  # answerable, abstained
        "question 4": Answer("q", "en", "none", True, "extractive"),  # unanswerable, abstained
        "question 5": Answer(  # unanswerable but answered, with a quote that is not exact
            "q",
            "en",
            "x [1]",
            False,
            "extractive",
            (Citation(1, "d", "d#0", "T", "en", "", "", "not the text", 0, 5),),
        ),
    }
    questions = [_q("1", True), _q("2", True), _q("3", True), _q("4", False), _q("5", False)]
    m = evaluate_answers(lambda text: replies[text], _Index(), questions).to_json()
    assert (m["answerable"], m["unanswerable"]) == (3, 2)
    assert m["answered_rate"] == round(2 / 3, 4)
    assert m["abstain_rate_unanswerable"] == 0.5 == m["abstain_recall"]
    assert m["abstain_precision"] == 0.5  # 2 abstentions, 1 of them on an unanswerable question
    assert m["gold_cited_rate"] == round(1 / 3, 4)
    assert m["citations"] == 3 and m["exact_quote_rate"] == round(2 / 3, 4)


def test_heading_is_never_quoted_but_a_first_sentence_title_is(
    make_corpus: Callable[..., Path], fake_assistant: Callable[..., Any]
) -> None:
    """A heading line restates the question's words but answers nothing; a document without a
    catalog title is titled by its first sentence, which stays quotable."""
    corpus = make_corpus({
        "a.md": "Audit rules for AI providers\n\nAudit rules for AI providers are strict and "
                "public in the union.\n\nThe registry is open on weekdays.",
        "b.txt": "Audit rules for AI providers are strict and public in Sweden too.",
    })  # fmt: skip
    assistant = fake_assistant(corpus)
    assistant.ingest()
    question = "audit rules for AI providers"
    r = assistant.answerer.retrieve(question)
    evidence = assistant.answerer.evidence(r.query, r.query_lang, r.query_vec, r.ranked, r.hits)
    quotes = {(e.hit.doc_id, e.quote) for e in evidence}
    assert ("a", "Audit rules for AI providers") not in quotes
    assert ("b", "Audit rules for AI providers are strict and public in Sweden too.") in quotes
    assert not assistant.ask(question).abstained


def test_heading_rule_covers_a_title_with_a_translation() -> None:
    """A catalog title "原题 (English name)" starts with the document's heading line: the heading
    is still not evidence; a sentence that merely begins like the title is."""
    from rag.answer.extractive import _is_heading

    title = "深圳经济特区人工智能产业促进条例 (Regulations of the Shenzhen SEZ on Promoting AI)"
    assert _is_heading("深圳经济特区人工智能产业促进条例", title)
    assert _is_heading("Audit rules for AI providers", "Audit rules for AI providers")
    assert not _is_heading("深圳经济特区人工智能产业促进条例。", title)
    assert not _is_heading("Audit rules for AI providers are strict.", "Audit rules for AI")
    assert not _is_heading("", title)


@pytest.mark.parametrize(
    "question, asks",
    [
        ("How many executives signed the letter?", True),
        ("From what date does the law apply?", True),
        ("When did the talks start?", True),
        ("And when did Japan sign?", True),
        ("What happens when a provider breaks the rules?", False),
        ("Who chaired the talks?", False),
        ("Hoeveel tijd krijgen de platforms?", True),
        ("Wat gebeurt er wanneer een aanbieder de regels breekt?", False),
        ("Inom hur lång tid ska modellerna registreras?", True),
        ("Vad händer när en leverantör bryter mot reglerna?", False),
        ("Bis wann muss das Reallabor laufen?", True),
        ("Wer leitete die Gespräche?", False),
        ("À quelles dates se sont tenues les rencontres ?", True),
        ("Que se passe-t-il quand un fournisseur enfreint les règles ?", False),
        ("¿Con cuántos países han hablado?", True),
        ("¿Quién medió en las conversaciones?", False),
        ("提供者最迟须在几天内上报？", True),
        ("日本是在什么时候通过的？", True),
        ("哪几家公司参加了对话？", False),
    ],
)
def test_questions_that_ask_for_a_number_or_a_date(question: str, asks: bool) -> None:
    from rag.answer.answer_type import asks_for_number

    assert asks_for_number(question) is asks


@pytest.mark.parametrize(
    "sentence, has",
    [
        ("The rules apply from 2 August 2026.", True),
        ("Platforms must file within ten working days.", True),
        ("De boete bedraagt maximaal zeven procent.", True),
        ("应当在十个工作日内办理备案手续。", True),
        ("第十二条 提供者应当对生成内容进行标识。", False),  # an article label, no quantity
        ("第七十三条 本条例自2022年11月1日起施行。", True),
        ("应当在变更之日起十个工作日内办理变更手续。", True),
        ("Providers must label generated content.", False),
        ("En leverantör ska informera användarna.", False),
        ("Sex discrimination is prohibited.", False),
        ("进一步完善人工智能伦理安全规范。", False),
    ],
)
def test_sentences_that_hold_a_number(sentence: str, has: bool) -> None:
    from rag.answer.answer_type import has_number

    assert has_number(sentence) is has


def test_a_number_question_answered_only_by_a_sentence_with_a_number(
    make_corpus: Callable[..., Path], fake_assistant: Callable[..., Any]
) -> None:
    """ "How many …?" over sentences without any number abstains (saying why); once a document
    gives the number, the same question is answered with it; the check can be switched off."""
    from dataclasses import replace

    from rag.answer.answer_type import NO_NUMBER_NOTE

    question = "How many audit rules for AI providers are there?"
    corpus = make_corpus({"a.txt": "Audit rules for AI providers are strict and public there."})
    assistant = fake_assistant(corpus)
    assistant.ingest()
    answer = assistant.ask(question)
    assert answer.abstained and answer.note == NO_NUMBER_NOTE and answer.closest
    unchecked = assistant.answerer
    unchecked.config = replace(unchecked.config, number_margin=None)
    assert not unchecked.answer(question).abstained

    make_corpus({"b.txt": "There are twelve audit rules for AI providers."})
    assistant = fake_assistant(corpus)
    assistant.ingest()
    answer = assistant.ask(question)
    assert not answer.abstained
    assert any("twelve" in c.quote for c in answer.citations)


def test_a_short_chinese_sentence_is_quotable(
    make_corpus: Callable[..., Path], fake_assistant: Callable[..., Any]
) -> None:
    """The shortest quotable sentence is measured in Latin-letter equivalents: 23 characters of
    Chinese ("this regulation takes effect on 1 November 2022") carry a whole answer."""
    from rag.ingest.chunking import text_length

    effective = "第七十三条 本条例自2022年11月1日起施行。"
    assert len(effective) < 25 <= text_length(effective)
    corpus = make_corpus({
        "reg.txt": "第一条 为了促进人工智能产业高质量发展，根据有关法律，结合本市实际，制定本条例。"
                   "\n\n" + effective,
    })  # fmt: skip
    assistant = fake_assistant(corpus)
    assistant.ingest()
    r = assistant.answerer.retrieve("本条例自2022年11月1日起施行")
    evidence = assistant.answerer.evidence(r.query, r.query_lang, r.query_vec, r.ranked, r.hits)
    assert evidence[0].quote == effective


def test_each_close_source_is_quoted() -> None:
    """Best sentence first; then each other document's best within source_margin, even when
    sentences of the first document score between them."""
    from rag.answer.compose import Evidence
    from rag.answer.extractive import AnswerConfig, ExtractiveAnswerer
    from rag.types import Hit

    def ev(doc: str, row: int, score: float) -> Evidence:
        hit = Hit(1, score, doc, f"{doc}#0", doc, "en", "", "", "text", 0, 4)
        return Evidence(row, hit, row * 10, row * 10 + 4, f"q{row}", score)  # own spans

    class Index:
        def vectors_of(self, rows: list[int], sentences: bool = False) -> np.ndarray:
            return np.eye(10, dtype=np.float32)[rows]  # no near-duplicates

    class Ret:
        index = Index()

    evidence = [ev("a", 0, 0.70), ev("a", 1, 0.69), ev("a", 2, 0.68), ev("a", 3, 0.67),
                ev("a", 4, 0.665), ev("b", 5, 0.65), ev("c", 6, 0.60)]  # fmt: skip
    config = AnswerConfig(margin=0.04, source_margin=0.06, max_quotes=4)
    chosen = ExtractiveAnswerer(Ret(), config).select(evidence)  # type: ignore[arg-type]
    assert [e.sentence_row for e in chosen] == [0, 5, 1, 2]  # c is 0.10 behind: not heard


def test_an_enumeration_lead_in_is_quoted_with_its_items(
    make_corpus: Callable[..., Path], fake_assistant: Callable[..., Any]
) -> None:
    """A sentence ending in a colon ("…are prohibited:") restates the question's topic and answers
    nothing alone: its quote runs on through the items that follow (an exact span still), and an
    item already inside it is not quoted a second time."""
    lead = "The following audit practices for AI providers are prohibited:"
    items = "(a) secret scoring of citizens; (b) hidden emotion tracking at work."
    text = f"{lead} {items} Other rules apply from 2026 onwards."
    corpus = make_corpus({"law.txt": text})
    assistant = fake_assistant(corpus)
    assistant.ingest()
    answer = assistant.ask("Which audit practices for AI providers are prohibited?")
    assert not answer.abstained
    quotes = [c.quote for c in answer.citations]
    assert quotes[0] == f"{lead} {items}"
    assert text[answer.citations[0].start : answer.citations[0].end] == quotes[0]
    assert not any(q.startswith(("(a)", "(b)")) for q in quotes)  # not again on their own


def test_an_enumeration_quote_stops_after_enough_items() -> None:
    """At least one item follows the lead-in, then more only while the quote stays within
    ``ITEMS_QUOTE_CHARS``."""
    from rag.answer.extractive import ITEMS_QUOTE_CHARS, _through_items

    item = "(x) " + "word " * 40  # ~200 characters per item
    text = "Banned are:" + "".join(f" {item.strip()};" for _ in range(5))
    spans, at = [], len("Banned are:") + 1
    for _ in range(5):
        spans.append((0, at, at + len(item.strip()) + 1, 0.0))
        at += len(item.strip()) + 2
    end = _through_items(text, 0, 0, len("Banned are:"), spans)
    assert end == spans[1][2] and end <= ITEMS_QUOTE_CHARS < spans[2][2]
    one = _through_items("Too long:" + " x" * 400, 0, 0, 9, [(0, 10, 809, 0.0)])
    assert one == 809  # one item even when it alone is longer
    assert _through_items("A sentence.", 0, 0, 11, spans) == 11  # no colon, no change
