"""UI helpers (escaping, uploads) with fakes, and the served app through gradio_client (real model)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from rag.app.ui.widgets import answer_markdown, highlight, md_escape, sources_html
from rag.ingest.formats import LoadError
from rag.ingest.uploads import remove_file, safe_name, save_upload
from rag.service import Assistant
from rag.types import Answer, Citation

HOSTILE = '<script>alert(1)</script> <img src=x onerror="alert(2)"> [x](javascript:alert(3))'


def test_md_escape_neutralises_html_and_markdown() -> None:
    out = md_escape(HOSTILE)
    assert "<script>" not in out and "<img" not in out and "](javascript" not in out
    assert "&lt;script&gt;" in out


def test_answer_markdown_escapes_quotes_and_links_markers() -> None:
    c = Citation(1, "d", "d#0", "T <b>", "en", "S", "2024", HOSTILE, 0, len(HOSTILE))
    a = Answer("q", "en", "According to 1 source in the corpus:\n\n…", False, "extractive", (c,))
    md = answer_markdown(a)
    assert "<script>" not in md and "<b>" not in md
    assert "(#src-1)" in md and "According to 1 source" in md


def test_llm_answer_markdown_links_markers_escapes_prose_and_names_the_mode() -> None:
    c = Citation(1, "d", "d#0", "T", "sv", "S", "2024", "quote", 0, 5)
    prose = f"The minister said {HOSTILE} [1]. Both agree [1][2]."
    md = answer_markdown(Answer("q", "en", prose, False, "llm", (c, c), note="Answered by x:y."))
    assert "<script>" not in md and "](javascript" not in md
    assert md.count("(#src-1)") == 2 and "(#src-2)" in md
    assert "_Answered by: LLM_" in md and "Answered by x:y" in md
    fallback = Answer(
        "q",
        "en",
        "According to 1 source in the corpus:\n\n…",
        False,
        "extractive",
        (c,),
        note="Extractive answer shown because the model could not be reached.",
    )
    md = answer_markdown(fallback)
    assert "_Answered by: extractive (verbatim quotes)_" in md and "could not be reached" in md


def test_sources_panel_renders_hostile_document_inert(
    make_corpus: Callable[..., Path], fake_assistant: Callable[..., Assistant]
) -> None:
    corpus = make_corpus(
        {"evil.txt": f"Rules for AI audits are strict. {HOSTILE} More rules follow here."}
    )
    assistant = fake_assistant(corpus)
    assistant.ingest()
    hit = assistant.search("AI audits rules", k=1).hits[0]
    c = Citation(
        1, hit.doc_id, hit.chunk_id, hit.title, hit.lang, "", "", hit.text, hit.start, hit.end
    )
    html_out = sources_html(assistant, Answer("q", "en", "x", False, "extractive", (c,)))
    assert "<script>" not in html_out and "<img" not in html_out
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html_out and 'id="src-1"' in html_out


def test_highlight_marks_query_terms_and_escapes() -> None:
    out = highlight("The <b>regulators</b> published rules", "regulator rules", "en")
    assert "<mark>regulators</mark>" in out and "<mark>rules</mark>" in out and "&lt;b&gt;" in out


@pytest.mark.parametrize(
    ("name", "safe"),
    [("../../etc/passwd.txt", "passwd.txt"), ("a b?.PDF", "a_b.pdf"), ("..hidden.md", "hidden.md"),
     ("Ünïcødé 文件.docx", "Ünïcødé_文件.docx"), ("C:\\\\x\\\\evil.html", "evil.html"),
     ("..x" + "a" * 300, "x" + "a" * 99),  # after the last dot is no suffix: capped like a name
     ("notes.v2", "notes.v2")],
)  # fmt: skip
def test_safe_name(name: str, safe: str) -> None:
    assert safe_name(name) == safe


def test_upload_rules(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    src = tmp_path / "x.txt"
    src.write_text("Some text about AI rules.", encoding="utf-8")
    assert save_upload(corpus, src, "../note.txt", 1) == "uploads/note.txt"
    assert save_upload(corpus, src, "note.txt", 1) == "uploads/note-1.txt"  # never overwrites
    with pytest.raises(LoadError, match="not accepted"):
        save_upload(corpus, src, "tool.exe", 1)
    big = tmp_path / "big.txt"
    big.write_bytes(b"a" * 2_000_000)
    with pytest.raises(LoadError, match="over the 1 MB limit"):
        save_upload(corpus, big, "big.txt", 1)
    with pytest.raises(LoadError, match="not inside the corpus"):
        remove_file(corpus, "../x.txt")
    remove_file(corpus, "uploads/note.txt")
    assert not (corpus / "uploads/note.txt").exists()


@pytest.mark.model
def test_api_ask_english_question_cites_swedish_article(served: str) -> None:
    from gradio_client import Client

    client = Client(served, verbose=False)
    answer = client.predict("What did the Chinese embassy in the UK say?", [], [], api_name="/ask")
    assert answer["abstained"] is False and answer["mode"] == "extractive"
    first = answer["citations"][0]
    assert first["lang"] == "sv" and "ambassaden i Storbritannien" in first["quote"]
    assert "[1]" in answer["answer"]


@pytest.mark.model
def test_api_search_with_language_filter(served: str) -> None:
    from gradio_client import Client

    client = Client(served, verbose=False)
    result = client.predict("Hiroshima AI process", 4, ["nl"], api_name="/search")
    assert result["hits"] and all(h["lang"] == "nl" for h in result["hits"])


@pytest.mark.model
def test_api_export_csv_and_json_carry_full_citations(served: str) -> None:
    import csv
    import io
    import json

    from gradio_client import Client

    client = Client(served, verbose=False)
    text = client.predict("kinesiska ambassaden", 3, ["sv"], "csv", api_name="/export")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    data = json.loads(client.predict("kinesiska ambassaden", 3, ["sv"], "json", api_name="/export"))
    assert len(rows) == len(data["hits"]) == 3
    for row, hit in zip(rows, data["hits"], strict=True):
        assert row["chunk_id"] == hit["chunk_id"] and row["lang"] == hit["lang"] == "sv"
        assert int(row["start"]) == hit["start"] and row["text"] == hit["text"]
