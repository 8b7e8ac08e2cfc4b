"""A "when" question is answered by a date, not by any number ("de två globala makterna")."""

from __future__ import annotations

import pytest

from rag.answer.answer_type import asks_for_date, asks_for_number, has_date, has_number


@pytest.mark.parametrize(
    ("question", "date"),
    [
        ("And when did they take place?", True),
        ("Ab wann gilt das Verbot?", True),
        ("När hölls samtalen?", True),
        ("深圳的人工智能产业促进条例什么时候开始施行？", True),
        ("Which year was the AI Act adopted?", True),
        ("How many companies took part?", False),  # a number, not a date
        ("What happens when a provider breaks the rules?", False),  # "when" of a condition
    ],
)
def test_date_questions(question: str, date: bool) -> None:
    assert asks_for_date(question) is date
    assert asks_for_number(question) or not date  # every date question asks for a number


@pytest.mark.parametrize(
    ("sentence", "date"),
    [
        ("Dessa sammankomster, som hölls i juli och oktober 2023, har inte rapporterats.", True),
        ("第七十三条 本条例自2022年11月1日起施行。", True),
        ("It shall apply from 2 August 2026.", True),
        ("Sie gilt ab dem 2. Februar 2025.", True),
        ("visar på samarbete mellan de två globala makterna", False),  # "two" is no date
        ("fines of up to 35 000 000 EUR", False),
        ("Article 5 of this Regulation", False),
    ],
)
def test_dates_in_sentences(sentence: str, date: bool) -> None:
    assert has_date(sentence) is date
    assert has_number(sentence) or not date
