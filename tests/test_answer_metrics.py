"""The answer metrics of `rag eval --answers`, against hand-computed cases."""

from __future__ import annotations

from dataclasses import dataclass

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
