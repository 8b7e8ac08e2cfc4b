"""Chat follow-ups decided on evidence (cues in the question, whether it stands alone, closeness
to the subject), the subject kept across turns, and "no documents match these filters"."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from rag.answer.compose import ABSTAIN, NO_MATCH
from rag.answer.follow_up import cue, elliptical, resolve
from rag.service import Assistant
from rag.types import Filters


@pytest.mark.parametrize(
    ("question", "why"),
    [
        ("And when did they take place?", "connective"),
        ("What about Japan?", "connective"),
        ("Och Japan?", "connective"),
        ("En wat zei Singapore?", "connective"),
        ("Und was ist mit China?", "connective"),
        ("Et la Chine ?", "connective"),
        ("那美国呢？", "connective"),
        ("Who enforces them?", "pronoun"),
        ("What are the fines for that?", "pronoun"),
        ("Vad sa dessa företag?", "pronoun"),
        ("Wann haben sie sich getroffen?", "pronoun"),
        ("他们什么时候开会？", "pronoun"),
        # Full questions that name their subject are no follow-ups, however short:
        ("Wat vroeg de EU aan Japan?", ""),
        ("Which countries signed the Bletchley declaration?", ""),
        ("What did Japan say?", ""),
        ("Welche KI-Praktiken verbietet der AI Act?", ""),
        # "it" and "there" are often dummies: such questions are judged by the evidence instead.
        ("Is it legal to use facial recognition in public?", ""),
        ("Are there fines for deepfakes?", ""),
        ("Vilka är de största riskerna med AI?", ""),
    ],
)
def test_cues_in_the_question_itself(question: str, why: str) -> None:
    assert cue(question) == why


def test_elliptical_means_few_content_words_and_no_name() -> None:
    assert (
        elliptical("Who took part?") and elliptical("When?") and elliptical("Wat zijn de boetes?")
    )
    assert not elliptical("What did Japan say?")  # a name
    assert not elliptical("Which Chinese companies stayed away from the talks?")


def _resolve(question: str, history: list[str], alone: set[str], close: set[str] = frozenset()):  # type: ignore[no-untyped-def, assignment]
    """``alone``: questions that retrieve well by themselves; ``close``: those near any subject."""
    return resolve(
        question, [(q, "an answer") for q in history],
        stands_alone=lambda q: q in alone,
        similarity=lambda q, subject: 0.9 if q in close else 0.5,
        min_similarity=0.8,
    )  # fmt: skip


TALKS = "Did US and Chinese AI companies hold secret safety talks?"


def test_no_history_no_follow_up() -> None:
    r = _resolve("Who took part?", [], alone=set())
    assert r.query == "Who took part?" and not r.is_follow_up


def test_a_short_question_that_stands_alone_is_not_glued_to_the_last_one() -> None:
    """Every question of six words or fewer used to be a follow-up."""
    r = _resolve("Wat vroeg de EU aan Japan?", ["Hur ser Singapore på EU:s AI-regler?"],
                 alone={"Hur ser Singapore på EU:s AI-regler?", "Wat vroeg de EU aan Japan?"})  # fmt: skip
    assert r.query == "Wat vroeg de EU aan Japan?" and not r.is_follow_up


def test_a_question_far_from_the_subject_stays_itself_even_when_weak() -> None:
    r = _resolve("Which countries signed the Bletchley declaration?", ["深圳的条例什么时候施行？"],
                 alone={"深圳的条例什么时候施行？"})  # fmt: skip
    assert not r.is_follow_up


def test_the_subject_survives_a_second_and_a_third_follow_up() -> None:
    history = [TALKS, "Who took part?", "Which Chinese companies stayed away?"]
    alone = {TALKS}
    close = {"Which Chinese companies stayed away?"}
    second = _resolve(history[2], history[:2], alone, close)
    assert second.subject == TALKS and second.reason == "weak alone"
    assert second.query == f"{TALKS} Which Chinese companies stayed away?"
    third = _resolve("And when did they take place?", history, alone, close)
    assert third.subject == TALKS and third.reason == "connective"
    assert third.query == f"{TALKS} And when did they take place?"


def test_a_new_standalone_question_becomes_the_subject() -> None:
    history = [TALKS, "What does the EU AI Act prohibit?"]
    r = _resolve("Who enforces them?", history, alone=set(history))
    assert r.subject == "What does the EU AI Act prohibit?"


# --- through the answerer, with the fake embedder ------------------------------------------------

DOCS = {
    "talks.txt": "Secret AI safety talks between US and Chinese companies took place in Geneva. "
    "OpenAI, Anthropic and Cohere took part in the secret AI safety talks.",
    "act.txt": "The AI Act bans social scoring by public authorities in the European Union.",
}


@pytest.fixture
def assistant(
    make_corpus: Callable[..., Path], fake_assistant: Callable[..., Assistant]
) -> Assistant:
    a = fake_assistant(make_corpus(dict(DOCS)))
    a.ingest()
    return a


def test_the_answer_says_what_was_searched_for(assistant: Assistant) -> None:
    history = [("Who held secret AI safety talks?", "…")]
    answer = assistant.ask("And who took part?", history=history)
    assert answer.retrieval_query == "Who held secret AI safety talks? And who took part?"
    assert answer.to_json()["retrieval_query"] == answer.retrieval_query
    fresh = assistant.ask("Who took part in the secret AI safety talks?", history=history)
    assert fresh.retrieval_query == fresh.question  # no cue, stands alone


def test_filters_that_exclude_everything_say_so(assistant: Assistant) -> None:
    none = Filters(langs=("xx",))
    answer = assistant.ask("Who took part in the secret AI safety talks?", filters=none)
    assert answer.abstained and answer.answer == NO_MATCH["en"] and not answer.closest
    sv = assistant.ask("Vem deltog i de hemliga samtalen om AI-säkerhet?", filters=none)
    assert sv.answer == NO_MATCH["sv"]
    unanswered = assistant.ask("What is the capital of Peru in the year 1700?")
    assert unanswered.abstained and unanswered.answer == ABSTAIN["en"]


def test_filters_that_exclude_everything_say_so_in_llm_mode(assistant: Assistant) -> None:
    llm = Assistant(assistant.settings.with_(llm="fake:list"), assistant.embedder,
                    chat_model=FakeListChatModel(responses=["unused"]))  # fmt: skip
    answer = llm.ask("Who took part in the talks?", filters=Filters(langs=("xx",)))
    assert answer.abstained and answer.answer == NO_MATCH["en"]
