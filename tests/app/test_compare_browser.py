"""The Compare tab in a real browser (Debian's chromium, headless, Playwright): one question, three
jurisdictions picked in the multiselect, one card group each, the CSV export.

The app serves a small corpus of its own (three short documents in three languages, one per
jurisdiction: EU news in Dutch, the California AI Transparency Act, the Chinese generative AI
measures), so that it starts in a minute. Set GOVRAG_COMPARE_SCREENSHOT=docs/compare.png to refresh
the README's screenshot of the tab.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.app.test_browser import browser, open_page  # noqa: F401  (the module's chromium)

pytestmark = pytest.mark.model

FILES = {
    "000_d6080d44269c3cef.txt": "EU",
    "us/US-CA_sb942_ai_transparency_act_2024.en.pdf": "US-CA",
    "china/genai_interim_measures_2023_selected_provisions.txt": "CN",
}
QUESTION = "Must AI-generated content be labelled?"


@pytest.fixture(scope="module")
def compare_app(real_embedder: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from rag.app.ui import build_app, launch
    from rag.config import Settings
    from rag.service import Assistant
    from tests.conftest import SHIPPED_CORPUS, free_port

    corpus = tmp_path_factory.mktemp("compare") / "corpus"
    lines = []
    for rel in FILES:
        (corpus / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SHIPPED_CORPUS / rel, corpus / rel)
    for line in (SHIPPED_CORPUS / "catalog.jsonl").read_text(encoding="utf-8").splitlines():
        if any(f'"path": "{rel}"' in line for rel in FILES):
            lines.append(line)
    (corpus / "catalog.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    settings = Settings.from_env(corpus_dir=corpus, index_dir=corpus.parent / "index")
    assistant = Assistant(settings, real_embedder)
    report = assistant.ingest()
    assert report.documents == 3 and not report.skipped, report
    app = build_app(assistant)
    port = free_port()
    launch(app, "127.0.0.1", port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    app.close()


@pytest.fixture(scope="module")
def page(browser: Any, compare_app: str) -> Iterator[Any]:  # noqa: F811
    pg = open_page(browser, compare_app)
    pg.get_by_role("tab", name="Compare").click()
    pg.wait_for_selector("#compare-question textarea", timeout=30_000)
    yield pg
    pg.context.close()


def _pick(page: Any, key: str) -> None:
    """Choose ``key`` in the jurisdiction multiselect, as a person does: open it, click it."""
    page.click("#compare-only input")
    page.locator(f"#compare-only [role=option][aria-label='{key}']").click()


def test_three_jurisdictions_side_by_side(page: Any, tmp_path: Path) -> None:
    for key in ("EU", "US", "CN"):
        _pick(page, key)
    page.keyboard.press("Escape")
    page.fill("#compare-question textarea", QUESTION)
    page.click("#compare-btn")
    page.wait_for_selector("#compare-out .cmp-group", timeout=120_000)
    groups = page.locator("#compare-out .cmp-group")
    assert groups.count() == 3
    assert [groups.nth(i).locator(".cmp-key").inner_text() for i in range(3)] == ["EU", "US", "CN"]
    boxes = [groups.nth(i).bounding_box() for i in range(3)]
    assert boxes[0]["y"] == boxes[1]["y"] == boxes[2]["y"]  # side by side, one column each
    assert boxes[0]["x"] < boxes[1]["x"] < boxes[2]["x"]
    for i in range(3):
        group = groups.nth(i)
        cards = group.locator(".src-card")
        if cards.count():  # a quote, highlighted in its passage, with its own [n] anchor
            assert group.locator("mark").first.is_visible()
            marker = group.locator("a.cmp-n").first
            href = marker.get_attribute("href")
            assert href.startswith(f"#cmp-{['EU', 'US', 'CN'][i]}-src-")
            assert page.locator(href).count() == 1
        else:
            assert group.locator(".cmp-none").inner_text() == "no passage found"
    assert groups.nth(1).locator(".src-card").count()  # California's act answers
    assert "California" in groups.nth(1).inner_text()
    shot = Path(os.environ.get("GOVRAG_COMPARE_SCREENSHOT") or tmp_path / "compare.png")
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    with page.expect_download() as info:
        page.click("#export-compare-csv")
    name = info.value.suggested_filename
    assert re.fullmatch(r"govrag-compare-must-ai-generated-content-be-labelled-\d{4}-\d{2}-\d{2}"
                        r"\.csv", name), name  # fmt: skip
    path = tmp_path / name
    info.value.save_as(path)
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    assert [r["group"] for r in rows] == sorted((r["group"] for r in rows),
                                                key=["EU", "US", "CN"].index)  # fmt: skip
    assert {r["group"] for r in rows} == {"EU", "US", "CN"}
    assert all(r["quote"] for r in rows)
