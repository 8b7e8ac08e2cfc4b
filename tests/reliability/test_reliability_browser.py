"""Hostile documents in a real browser: no script runs, no markup renders, links stay anchors,
copying a hostile quote runs nothing.

The app serves a small corpus of hostile files (real model, sharing the session's loaded one);
chromium asks a question whose answer quotes them and we inspect the live page.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rag.service import Assistant
from tests.app.test_browser import ARGS, CHROMIUM
from tests.conftest import free_port
from tests.reliability.test_reliability_hostile import HOSTILE_DOC

pytestmark = pytest.mark.model

QUESTION = "What are the rules for AI audits?"


@pytest.fixture(scope="module")
def hostile_url(
    real_assistant: Assistant, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    from rag.app.ui import build_app, launch

    root = tmp_path_factory.mktemp("hostile-app")
    corpus = root / "corpus"
    corpus.mkdir()
    # The 120,000-character line is left short here: embedding it with the real model takes minutes.
    doc = HOSTILE_DOC.replace("audit-" * 20_000, "audit-" * 300)
    (corpus / "evil.md").write_text(doc, encoding="utf-8")
    (corpus / "plain.txt").write_text(
        "Rules for AI audits: every provider files an audit report with the registry each year.",
        encoding="utf-8",
    )
    settings = real_assistant.settings.with_(corpus_dir=corpus, index_dir=root / "index")
    assistant = Assistant(settings, real_assistant.embedder)
    assert assistant.ingest().skipped == ()
    port = free_port()
    app = build_app(assistant)
    launch(app, "127.0.0.1", port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    app.close()
    shutil.rmtree(root, ignore_errors=True)


_INSPECT = """() => {
  const scope = [...document.querySelectorAll('#chat, #sources')];
  const all = scope.flatMap(el => [...el.querySelectorAll('*')]);
  return {
    bad_tags: all.filter(e => ['SCRIPT', 'IMG', 'IFRAME', 'STYLE', 'OBJECT', 'EMBED']
                                  .includes(e.tagName)).map(e => e.outerHTML.slice(0, 80)),
    handlers: all.flatMap(e => [...e.attributes].filter(a => a.name.startsWith('on'))
                                  .map(a => e.tagName + ' ' + a.name)),
    links: all.filter(e => e.tagName === 'A').map(e => e.getAttribute('href')),
    sources_text: document.querySelector('#sources').innerText,
    chat_text: document.querySelector('#chat').innerText,
  };
}"""


def test_hostile_quotes_are_inert_in_the_browser(hostile_url: str) -> None:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "chromium is not installed: apt-get install chromium"
    dialogs: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1400, "height": 1000},
                                      permissions=["clipboard-read", "clipboard-write"])  # fmt: skip
        page: Any = context.new_page()
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(hostile_url)
        page.wait_for_selector("#question textarea", timeout=60_000)
        page.fill("#question textarea", QUESTION)
        page.click("#ask-btn")
        page.wait_for_selector("#sources .src-card", timeout=60_000)
        page.locator("#sources .copy-cite").first.click()  # copies the hostile quote as text
        page.wait_for_timeout(500)  # let any injected handler fire if it could
        seen = page.evaluate(_INSPECT)
        copied = page.evaluate("navigator.clipboard.readText()")
        browser.close()
    assert dialogs == [], f"a script ran: {dialogs}"
    assert seen["bad_tags"] == [] and seen["handlers"] == [], seen
    # anchors, the app's read-only /corpus/ route for the files themselves, the Document tab
    assert all((href or "").startswith(("#src-", "corpus/", "?doc=")) for href in seen["links"]), (
        seen["links"]
    )
    assert copied.startswith("“") and "” — " in copied, copied  # the citation, as plain text
    shown = seen["sources_text"] + seen["chat_text"]
    assert "<script>" in shown or "onerror" in shown or "javascript:" in shown, (
        "the hostile passage was not quoted, so the test checked nothing"
    )
