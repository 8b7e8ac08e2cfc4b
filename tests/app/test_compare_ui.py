"""The Compare tab with the fake embedder: its exports (CSV row by row, JSON, Markdown), one card
group per jurisdiction with anchors of its own, the tab's button and the /compare endpoint."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rag.app.ui.compare import comparison_html
from rag.app.ui.exports import (
    COMPARE_COLUMNS,
    compare_csv,
    compare_files,
    compare_json,
    compare_markdown,
)
from rag.service import Assistant
from rag.service.compare import Comparison, Group
from rag.types import Answer, Citation, Filters
from tests.service.test_compare import DOCS, QUESTION

DAY = dt.date(2026, 12, 1)


def _citation(n: int, quote: str, page: int | None, start: int) -> Citation:
    return Citation(n=n, doc_id="eu_ai_act/article_050", chunk_id="eu_ai_act/article_050#1",
                    title="EU AI Act", lang="en", source="EUR-Lex", date="2024-06-13", quote=quote,
                    start=start, end=start + len(quote), url="https://eur-lex.europa.eu/x",
                    jurisdiction="EU", page=page)  # fmt: skip


def _comparison() -> Comparison:
    cites = (_citation(1, "Deployers shall disclose it.", 12, 100),
             _citation(2, 'Label "deep fakes", clearly.', None, 300))  # fmt: skip
    text = ("According to 1 source in the corpus:\n\nEU AI Act (en, 2024-06-13):\n"
            "“Deployers shall disclose it.” [1] … “Label \"deep fakes\", clearly.” [2]")  # fmt: skip
    eu = Answer(QUESTION, "en", text, False, "extractive", cites)
    cn = Answer(QUESTION, "en", "The documents in the corpus do not answer.", True, "extractive")
    return Comparison(QUESTION, "jurisdiction", (
        Group("EU", eu, Filters(jurisdictions=("EU",))),
        Group("CN", cn, Filters(jurisdictions=("CN",))),
    ))  # fmt: skip


def test_compare_csv_row_by_row() -> None:
    rows = list(csv.reader(io.StringIO(compare_csv(_comparison(), DAY))))
    assert rows[0] == list(COMPARE_COLUMNS) == [
        "group", "n", "title", "doc_id", "jurisdiction", "lang", "page", "quote", "start", "end",
        "url", "question", "by", "exported"]  # fmt: skip
    tail = [QUESTION, "jurisdiction", "2026-12-01"]
    assert rows[1] == ["EU", "1", "EU AI Act", "eu_ai_act/article_050", "EU", "en", "12",
                       "Deployers shall disclose it.", "100", "128", "https://eur-lex.europa.eu/x",
                       *tail]  # fmt: skip
    assert rows[2] == ["EU", "2", "EU AI Act", "eu_ai_act/article_050", "EU", "en", "",
                       'Label "deep fakes", clearly.', "300", "328", "https://eur-lex.europa.eu/x",
                       *tail]  # fmt: skip
    assert rows[3] == ["CN", "", "", "", "", "", "", "no passage found", "", "", "", *tail]
    assert len(rows) == 4


def test_compare_json_is_the_cli_object_with_the_day() -> None:
    c = _comparison()
    assert json.loads(compare_json(c, DAY)) == {**c.to_json(), "exported": "2026-12-01"}


def test_compare_markdown_story_file() -> None:
    md = compare_markdown(_comparison(), DAY)
    assert md == (
        f"# {QUESTION}\n\n"
        "_Compared by jurisdiction: EU, CN_\n\n"
        "## EU\n\n"
        "According to 1 source in the corpus:\n\n"
        "EU AI Act (en, 2024-06-13):  \n"
        '“Deployers shall disclose it.” [1] … “Label "deep fakes", clearly.” [2]\n\n'
        "[1] “Deployers shall disclose it.” — EU AI Act, EUR-Lex, 2024-06-13, p. 12. "
        "https://eur-lex.europa.eu/x  \n"
        '[2] “Label "deep fakes", clearly.” — EU AI Act, EUR-Lex, 2024-06-13. '
        "https://eur-lex.europa.eu/x\n\n"
        "## CN\n\n"
        "no passage found\n\n"
        "_Answered by govrag: extractive (verbatim quotes); exported 2026-12-01_\n"
    )


def test_compare_files_are_named_after_the_question() -> None:
    paths = [Path(p) for p in compare_files(_comparison())]
    assert [p.suffix for p in paths] == [".csv", ".json", ".md"]
    assert paths[0].name.startswith("govrag-compare-must-deepfakes-be-labelled-as-artificially")
    assert paths[0].read_bytes().startswith(b"\xef\xbb\xbf")  # a BOM, for Excel
    assert not paths[1].read_bytes().startswith(b"\xef\xbb\xbf")


@pytest.fixture
def assistant(
    make_corpus: Callable[..., Path], fake_assistant: Callable[..., Assistant]
) -> Assistant:
    a = fake_assistant(make_corpus(dict(DOCS)))
    a.ingest()
    return a


def test_one_card_group_per_jurisdiction_with_its_own_anchors(assistant: Assistant) -> None:
    result = assistant.compare(QUESTION, only=["EU", "CN", "JP"])
    html = comparison_html(assistant, result)
    assert html.count('<section class="cmp-group"') == 3
    eu, cn, jp = html.split('<section class="cmp-group"')[1:]
    assert 'id="cmp-EU"' in eu and 'class="src-card"' in eu and "<mark>" in eu
    assert 'href="#cmp-EU-src-1">[1]</a>' in eu and 'id="cmp-EU-src-1"' in eu
    assert ' id="src-' not in html  # [1] of EU and [1] of another group stay apart
    assert 'id="cmp-JP"' in jp and "no passage found" in jp and "src-card" not in jp
    assert 'id="cmp-CN"' in cn


def _dependency(app: Any, elem_id: str, event: str = "click") -> dict[str, Any]:
    config = app.get_config_file()
    ids = {c["id"]: c.get("props", {}).get("elem_id") for c in config["components"]}
    return next(d for d in config["dependencies"]
                if any(ids.get(t[0]) == elem_id and t[1] == event for t in d["targets"]))  # fmt: skip


def test_the_tab_compares_and_offers_the_exports(assistant: Assistant) -> None:
    from rag.app.ui import build_app

    app = build_app(assistant)
    dep = _dependency(app, "compare-btn")
    out = app.fns[dep["id"]].fn(QUESTION, "jurisdiction", ["EU", "JP"], [], [], "", "")
    html, csv_file, json_file, md_file, msg = out
    assert 'id="cmp-EU"' in html and "no passage found" in html and msg == ""
    assert csv_file["visible"] and csv_file["value"].endswith(".csv")
    data = json.loads(Path(json_file["value"]).read_text(encoding="utf-8"))
    assert [g["key"] for g in data["groups"]] == ["EU", "JP"]
    assert Path(md_file["value"]).read_text(encoding="utf-8").startswith(f"# {QUESTION}")
    with pytest.warns(UserWarning, match="From date"):  # a toast, not an error
        bad = app.fns[dep["id"]].fn(QUESTION, "jurisdiction", [], [], [], "last year", "")
    assert "From date" in bad[-1]
    by_type = app.fns[_dependency(app, "compare-by", "change")["id"]].fn("type")
    assert by_type["choices"] == ["declaration", "executive order", "law", "news", "regulation"]
    assert by_type["value"] == []
    api = next(d for d in app.get_config_file()["dependencies"] if d.get("api_name") == "compare")
    got = app.fns[api["id"]].fn(QUESTION, "jurisdiction", ["CN", "EU"])
    assert got == assistant.compare(QUESTION, only=["CN", "EU"]).to_json()


def test_api_compare_through_gradio_client(assistant: Assistant) -> None:
    """/compare for scripts: the `rag compare --json` object; a wrong grouping is refused."""
    from gradio_client import Client

    from rag.app.ui import build_app, launch
    from tests.conftest import free_port

    app = build_app(assistant)
    port = free_port()
    launch(app, "127.0.0.1", port, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        got = client.predict(QUESTION, "jurisdiction", ["EU", "JP"], [], "", api_name="/compare")
        assert got == assistant.compare(QUESTION, only=["EU", "JP"]).to_json()
        assert [g["key"] for g in client.predict(QUESTION, api_name="/compare")["groups"]] == [
            "CN", "EU", "US", "INT"]  # fmt: skip
        with pytest.raises(Exception, match="compare by must be one of"):
            client.predict(QUESTION, "country", api_name="/compare")
    finally:
        app.close()
