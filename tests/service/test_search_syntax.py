"""The search syntax through ``Assistant.search`` on a small corpus (hash embedder): phrases are
found wherever they are, exclusions remove, OR is a union, field filters narrow the flags' filters,
the cross-language switch, and bad syntax is a ValueError that says what is wrong."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from rag.search.matching import find_spans
from rag.service import Assistant
from rag.types import Filters

FILLER = "The regulation sets obligations for providers of high-risk AI systems. " * 3
SYNTAX_DOCS = {
    **{
        f"en/doc_{i:02d}.md": f"# Rules {i}\n\n{FILLER}Section {i} covers logging duties."
        for i in range(14)
    },
    "en/chatbots.md": "# Chatbots\n\nChatGPT and other chatbots must disclose that they are AI. "
    + FILLER,
    "sv/lag.md": "# Lag om AI\n\nRegeringen föreslår en ny lag om artificiell intelligens. "
    "Tillsynsmyndigheten ska granska riskfyllda system och får besluta om sanktionsavgifter.",
    "zh/rules.md": "# 办法\n\n人工智能生成合成内容标识办法。服务提供者应当对生成合成内容添加显式标识。",
}
SYNTAX_DOCS["catalog.jsonl"] = "\n".join(json.dumps(x, ensure_ascii=False) for x in [
    {"path": "sv/lag.md", "title": "Lag om AI", "jurisdiction": "SE", "type": "bill",
     "date": "2024-03-01"},
    {"path": "zh/rules.md", "title": "办法", "jurisdiction": "CN", "type": "regulation",
     "date": "2023-09-01"},
])  # fmt: skip


@pytest.fixture
def syntax_assistant(
    make_corpus: Callable[..., Path], fake_assistant: Callable[..., Assistant]
) -> Assistant:
    a = fake_assistant(make_corpus(SYNTAX_DOCS))
    a.ingest()
    return a


def test_a_phrase_is_found_however_low_retrieval_ranks_it(syntax_assistant: Assistant) -> None:
    # "sanktionsavgifter" sits in one Swedish sentence; the English filler outnumbers it
    result = syntax_assistant.search('providers "får besluta om sanktionsavgifter"', 1)
    assert [h.doc_id for h in result.hits] == ["sv/lag"]
    hit = result.hits[0]
    (start, end), = find_spans(hit.text, "får besluta om sanktionsavgifter")  # fmt: skip
    assert hit.text[start:end] == "får besluta om sanktionsavgifter"


def test_a_phrase_no_passage_holds_is_searched_as_words_and_says_so(
    syntax_assistant: Assistant,
) -> None:  # fmt: skip
    # a question quoting a term that no passage holds (as a Chinese question quotes a term the
    # corpus says in English)
    plain = syntax_assistant.search("logging duties sanktionsböter", 5)
    result = syntax_assistant.search("logging duties “sanktionsböter”", 5)
    assert result.note.startswith("No passage holds “sanktionsböter”: showing")
    assert [h.chunk_id for h in result.hits] == [h.chunk_id for h in plain.hits] != []
    assert plain.note == "" and result.to_json()["note"] == result.note
    # strict (saved searches, alerts): nothing, and no note
    strict = syntax_assistant.search('logging duties "sanktionsböter"', 5, strict_phrases=True)
    assert strict.hits == () and strict.note == ""
    # a phrase that is found is not loosened; two phrases that never meet are named together
    assert syntax_assistant.search('"logging duties"', 5).note == ""
    both = syntax_assistant.search('"logging duties" "får besluta"', 5)
    assert both.note.startswith("No passage holds “logging duties”, “får besluta” together")
    # an OR side that is found keeps its phrase; only the other side is loosened
    either = syntax_assistant.search('"logging duties" OR "sanktionsböter"', 5)
    assert "“sanktionsböter”" in either.note and "logging duties" not in either.note


def test_every_passage_holding_a_phrase_and_only_those(syntax_assistant: Assistant) -> None:
    hits = syntax_assistant.search('"logging duties"', 50, per_doc=50).hits
    assert len(hits) == 14 and all("logging duties" in h.text for h in hits)


def test_exclusion_removes_the_passages_that_hold_it(syntax_assistant: Assistant) -> None:
    plain = syntax_assistant.search("chatbots disclose AI", 20, per_doc=20).hits
    assert any("ChatGPT" in h.text for h in plain)
    for query in ("chatbots disclose AI -ChatGPT", 'chatbots disclose AI -"chatgpt and"'):
        hits = syntax_assistant.search(query, 20, per_doc=20).hits
        assert hits and not any("ChatGPT" in h.text for h in hits)
        assert len(hits) == len(plain) - sum("ChatGPT" in h.text for h in plain)
        top = syntax_assistant.search(query, 3).hits
        assert len(top) == 3 and not any("ChatGPT" in h.text for h in top)  # still k


def test_or_is_the_union_of_both_sides(syntax_assistant: Assistant) -> None:
    a = {h.chunk_id for h in syntax_assistant.search('"sanktionsavgifter"', 5).hits}
    b = {h.chunk_id for h in syntax_assistant.search('"显式标识"', 5).hits}
    both = syntax_assistant.search('"sanktionsavgifter" OR "显式标识"', 5).hits
    assert a and b and {h.chunk_id for h in both} == a | b
    assert [h.rank for h in both] == list(range(1, len(both) + 1))


def test_field_filters_narrow_and_conflicts_are_reported(syntax_assistant: Assistant) -> None:
    hits = syntax_assistant.search("AI rules lang:zh date:2023", 10).hits
    assert hits and all(h.lang == "zh" and h.date.startswith("2023") for h in hits)
    assert syntax_assistant.search("AI rules lang:zh date:2024", 10).hits == ()
    hits = syntax_assistant.search("AI jurisdiction:se", 10, Filters(langs=("sv", "en"))).hits
    assert {h.doc_id for h in hits} == {"sv/lag"}
    assert {h.doc_id for h in syntax_assistant.search("AI type:bill", 10).hits} == {"sv/lag"}
    hits = syntax_assistant.search("duties doc:en/doc_03", 10).hits
    assert {h.doc_id for h in hits} == {"en/doc_03"}
    with pytest.raises(ValueError, match="exclude each other"):
        syntax_assistant.search("AI lang:sv", 5, Filters(langs=("en",)))


def test_cross_lingual_off_keeps_the_query_language(syntax_assistant: Assistant) -> None:
    query = "Regeringen föreslår en ny lag om artificiell intelligens"
    on = syntax_assistant.search(query, 10, per_doc=10)
    assert len({h.lang for h in on.hits}) > 1
    off = syntax_assistant.search(query, 10, per_doc=10, cross_lingual=False)
    assert off.query_lang == "sv" and off.hits and {h.lang for h in off.hits} == {"sv"}
    # an explicit language wins over the detected one
    off = syntax_assistant.search(query + " lang:en", 3, cross_lingual=False)
    assert {h.lang for h in off.hits} == {"en"}


@pytest.mark.parametrize("query", ['"unclosed', "lang:sv", "foo:bar x", "date:2023-99 x", "x OR"])
def test_bad_syntax_is_a_value_error_with_a_message(
    syntax_assistant: Assistant, query: str
) -> None:
    with pytest.raises(ValueError) as exc:
        syntax_assistant.search(query, 5)
    assert len(str(exc.value)) > 10


def test_plain_queries_rank_as_before(syntax_assistant: Assistant) -> None:
    r = syntax_assistant.retriever
    for query in ("high-risk obligations", "lag om AI", "10:30 https://example.org"):
        assert syntax_assistant.search(query, 5).hits == r.search(query, 5).hits


def test_the_cli_takes_the_syntax_and_the_switch(
    make_corpus: Callable[..., Path], tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from rag.app.cli import main

    corpus = make_corpus(SYNTAX_DOCS)
    env = {"RAG_MODEL": "hash:64", "RAG_CACHE_DIR": str(tmp_path / "c"),
           "RAG_CORPUS_DIR": str(corpus), "RAG_INDEX_DIR": str(tmp_path / "index")}  # fmt: skip
    run = lambda *a: CliRunner().invoke(main, list(a), env=env)  # noqa: E731
    assert run("ingest").exit_code == 0
    out = run("search", '"besluta om sanktionsavgifter"', "--json")
    assert out.exit_code == 0, out.output
    assert [h["doc_id"] for h in json.loads(out.stdout)["hits"]] == ["sv/lag"]
    query = "Regeringen föreslår en ny lag om artificiell intelligens"
    out = run("search", query, "-k", "10", "--per-doc", "10", "--no-cross-lingual", "--json")
    assert {h["lang"] for h in json.loads(out.stdout)["hits"]} == {"sv"}
    out = run("search", "country:CN AI")
    assert out.exit_code == 1 and "unknown field country:" in out.output
    assert "Traceback" not in out.output
