"""UI helpers (escaping, uploads, the corpus views, the filter boxes) with fakes, and the served
app through gradio_client (real model)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from rag.app.ui.cards import highlight, sources_html
from rag.app.ui.corpus import corpus_views, reindex, save_files
from rag.app.ui.widgets import DOC_HEADERS, answer_markdown, filter_problem, md_escape
from rag.ingest.formats import LoadError
from rag.ingest.uploads import (
    DuplicateUpload,
    remove_file,
    safe_name,
    save_upload,
    upload_metadata,
)
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
    other = tmp_path / "y.txt"
    other.write_text("Other text about AI rules.", encoding="utf-8")
    assert save_upload(corpus, other, "note.txt", 1) == "uploads/note-1.txt"  # never overwrites
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


def _no_progress(*args: Any, **kwargs: Any) -> None:
    return None


def _files(*paths: Path) -> list[Any]:
    """What gradio hands the upload handler: temp files with their original names."""
    return [SimpleNamespace(name=str(p), orig_name=p.name) for p in paths]


def test_the_same_bytes_are_not_saved_twice(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    (corpus / "reports").mkdir(parents=True)
    (corpus / "reports" / "oecd.txt").write_bytes(b"OECD report on AI rules.")
    (corpus / "README.md").write_bytes(b"Notes on AI rules.")  # never indexed: not "in the corpus"
    src = tmp_path / "upload.txt"
    src.write_bytes(b"OECD report on AI rules.")
    with pytest.raises(DuplicateUpload, match=r"already in the corpus as reports/oecd\.txt"):
        save_upload(corpus, src, "renamed copy.txt", 1)
    readme_copy = tmp_path / "notes.md"
    readme_copy.write_bytes(b"Notes on AI rules.")
    first = save_upload(corpus, readme_copy, "notes.md", 1)
    with pytest.raises(DuplicateUpload) as err:
        save_upload(corpus, readme_copy, "notes again.md", 1)
    assert err.value.existing == first == "uploads/notes.md"
    assert sorted(p.name for p in (corpus / "uploads").iterdir()) == ["notes.md"]


def test_upload_handler_says_a_duplicate_is_already_in_the_corpus(
    make_corpus: Callable[..., Path], fake_assistant: Callable[..., Assistant], tmp_path: Path
) -> None:
    corpus = make_corpus({"a.txt": "Rules for AI audits in Sweden are strict."})
    assistant = fake_assistant(corpus)
    src = tmp_path / "same.txt"
    src.write_text("Rules for AI audits in Sweden are strict.", encoding="utf-8")
    saved, lines = save_files(assistant, _files(src), {})
    assert saved == [] and lines == ["Not saved same.txt: already in the corpus as a.txt"]
    assert not (corpus / "uploads").exists()


def test_upload_metadata_form_is_checked_and_written_as_a_sidecar(
    make_corpus: Callable[..., Path], fake_assistant: Callable[..., Assistant], tmp_path: Path
) -> None:
    with pytest.raises(LoadError, match=r"^Date: use YYYY, YYYY-MM or YYYY-MM-DD, e\.g\. 2024-05"):
        upload_metadata(date="last year")
    with pytest.raises(LoadError, match="Date: 2024-13 is not a real month"):
        upload_metadata(date="2024-13")
    with pytest.raises(LoadError, match="Language: use a two-letter"):
        upload_metadata(lang="Swedish")
    with pytest.raises(LoadError, match="Jurisdiction: use a two-letter"):
        upload_metadata(jurisdiction="Sweden")
    meta = upload_metadata(" Council  report ", "Region Skåne", "2024-05-02", "SV", "se")
    assert meta == {"title": "Council report", "source": "Region Skåne", "date": "2024-05-02",
                    "lang": "sv", "jurisdiction": "SE"}  # fmt: skip
    assert upload_metadata("", " ", "", "", "") == {}

    corpus = make_corpus({"a.txt": "Rules for AI audits in Sweden are strict."})
    assistant = fake_assistant(corpus)
    assistant.ingest()
    dated, undated = tmp_path / "council.txt", tmp_path / "memo.txt"
    dated.write_text("The council audits algorithms every year.", encoding="utf-8")
    undated.write_text("A memo on algorithm registers and oversight.", encoding="utf-8")
    saved, lines = save_files(assistant, _files(dated), meta)
    assert saved == ["uploads/council.txt"] and lines == [
        "Saved uploads/council.txt with its metadata"
    ]
    sidecar = corpus / "uploads" / "council.txt.meta.json"
    assert json.loads(sidecar.read_text(encoding="utf-8")) == meta
    log = reindex(assistant, _no_progress, saved)
    assert not any(line.startswith("No date") for line in log), log
    doc = next(d for d, _ in assistant.documents() if d.path == "uploads/council.txt")
    assert (doc.title, doc.source, doc.date, doc.lang, doc.jurisdiction) == (
        "Council report", "Region Skåne", "2024-05-02", "sv", "SE")  # fmt: skip
    saved, _ = save_files(assistant, _files(undated), {})
    log = reindex(assistant, _no_progress, saved)
    assert "No date for uploads/memo.txt: date filters will leave it out" in "\n".join(log)


def test_an_upload_that_cannot_be_indexed_is_not_kept(
    make_corpus: Callable[..., Path], fake_assistant: Callable[..., Assistant], tmp_path: Path
) -> None:
    corpus = make_corpus({"a.txt": "Rules for AI audits in Sweden are strict."})
    assistant = fake_assistant(corpus)
    assistant.ingest()
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4 this is not really a pdf")
    saved, _ = save_files(assistant, _files(broken), {"date": "2024"})
    assert saved == ["uploads/broken.pdf"]
    log = "\n".join(reindex(assistant, _no_progress, saved))
    assert "Not kept uploads/broken.pdf: it could not be indexed (" in log, log
    assert "Skipped uploads/broken.pdf" not in log
    assert not (corpus / "uploads" / "broken.pdf").exists()
    assert not (corpus / "uploads" / "broken.pdf.meta.json").exists()  # its sidecar went too
    again = "\n".join(reindex(assistant, _no_progress))
    assert "broken.pdf" not in again  # not re-reported on every ingest
    (corpus / "by_hand.pdf").write_bytes(b"%PDF-1.4 not a pdf either")  # not an upload: kept
    assert "Skipped by_hand.pdf" in "\n".join(reindex(assistant, _no_progress))
    assert (corpus / "by_hand.pdf").exists()


def test_every_page_load_reads_the_current_corpus(
    make_corpus: Callable[..., Path], fake_assistant: Callable[..., Assistant]
) -> None:
    from rag.app.ui import build_app

    corpus = make_corpus({"a.txt": "Rules for AI audits in Sweden are strict."})
    assistant = fake_assistant(corpus)
    assistant.ingest()
    app = build_app(assistant)
    (corpus / "b.txt").write_text("Die Regeln für KI-Prüfungen in Deutschland sind streng.",
                                  encoding="utf-8")  # fmt: skip
    (corpus / "b.txt.meta.json").write_text('{"source": "Bundesamt", "lang": "de"}', "utf-8")
    assistant.ingest()  # as an upload from another page does
    config = app.get_config_file()
    status_id = next(c["id"] for c in config["components"]
                     if c.get("props", {}).get("elem_id") == "status")  # fmt: skip
    # the corpus views' load (the other one opens a ?doc=… deep link in the Document tab)
    loads = [d for d in config["dependencies"] if any(t[1] == "load" for t in d["targets"])
             and status_id in d["outputs"]]  # fmt: skip
    assert len(loads) == 1
    out = app.fns[loads[0]["id"]].fn([], [], None)
    views = dict(zip(loads[0]["outputs"], out, strict=True))
    assert views[status_id].startswith("2 documents")
    status, langs, sources, table, removal, _, _ = corpus_views(
        assistant, ["en", "xx"], [], "a.txt"
    )
    assert status.startswith("2 documents") and langs["choices"] == ["de", "en"]
    assert langs["value"] == ["en"] and sources["choices"] == ["Bundesamt"]
    assert [row[DOC_HEADERS.index("file")] for row in table] == ["a.txt", "b.txt"]
    assert removal["choices"] == ["a.txt", "b.txt"] and removal["value"] == "a.txt"


@pytest.mark.parametrize(
    ("date_from", "date_to", "message"),
    [("last year", "", "From date: use YYYY, YYYY-MM or YYYY-MM-DD, e.g. 2024-05"),
     ("2024", "2024-02-30", "To date: 2024-02-30 is not a real day; use YYYY"),
     ("2023-05", " 2024-05-01 ", ""), ("", "", "")],
)  # fmt: skip
def test_filter_dates_are_explained_in_words(date_from: str, date_to: str, message: str) -> None:
    got = filter_problem(date_from, date_to)
    assert got.startswith(message) if message else got == ""
    assert "date_from" not in got and "date_to" not in got


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
