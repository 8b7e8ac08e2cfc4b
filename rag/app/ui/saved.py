"""Saved searches and alerts in the Search tab: save the current query with its filters; after
an ingest (from this app, another page or ``rag ingest``) the panel lists the saved searches that
find passages not seen before, within ``CHECK_SECONDS``. **Open in Search** runs one in the
tab; **Mark seen** makes its new hits old (with none picked: every saved search's). The
searches are those of the index, shared by every session (``rag alerts`` reads the same file:
``rag/service/saved.py``).
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from rag.app.ui.batch import PER_DOC_CHOICES
from rag.app.ui.cards import highlight
from rag.app.ui.exports import filters_line
from rag.app.ui.widgets import esc, filter_problem, filters_from, warn_and_skip
from rag.service import Assistant
from rag.service.saved import Alert, SavedSearches, searches_path, with_new_hits

CHECK_SECONDS = 10  # how soon an open page shows the alerts of a new ingest
MAX_SLIDER_K = 50  # the Search tab's Passages slider
TABLE_HEADERS = ["name", "query", "filters", "k", "new hits", "last seen (UTC)"]
RUN_SEARCH_JS = "(pick) => { if (pick) document.querySelector('#search-btn')?.click(); }"


def alerts_html(alerts: list[Alert]) -> str:
    """The alerts: each saved search with new hits, its new passages (new documents marked)."""
    found = with_new_hits(alerts)
    if not alerts:
        return "<p>No saved searches yet: run a search, then <b>Save current search</b>.</p>"
    if not found:
        return f"<p>No new hits for the {len(alerts)} saved search(es).</p>"
    out = [f"<p><b>New hits for {len(found)} saved search(es)</b></p>"]
    for a in found:
        head = (f'<div class="src-head">{esc(a.search.name)} — “{esc(a.search.query)}”: '
                f"{len(a.new)} new of {len(a.hits)}</div>")  # fmt: skip
        if a.error:
            out.append(f'<div class="src-card alert">{head}<p>⚠️ {esc(a.error)}</p></div>')
            continue
        items = []
        for h in a.new:
            new_doc = '<span class="badge badge-o">new document</span>' if (
                h.doc_id in a.new_docs) else ""  # fmt: skip
            where = " · ".join(x for x in (h.lang, h.jurisdiction, h.date, h.doc_id,
                                           f"p. {h.page}" if h.page else "") if x)  # fmt: skip
            text = highlight(h.text[:300] + ("…" if len(h.text) > 300 else ""), a.search.query,
                             h.lang)  # fmt: skip
            items.append(f"<li>{new_doc}<b>{esc(h.title)}</b> <small>{esc(where)}</small>"
                         f'<div class="src-text">{text}</div></li>')  # fmt: skip
        out.append(f'<div class="src-card alert">{head}<ul>{"".join(items)}</ul></div>')
    return "\n".join(out)


def saved_rows(alerts: list[Alert]) -> list[list[Any]]:
    return [[a.search.name, a.search.query,
             filters_line({"filters": a.search.to_json()["filters"]}), a.search.k,
             "error" if a.error else len(a.new), a.search.seen_at.replace("T", " ")[:16]]
            for a in alerts]  # fmt: skip


class _Panel:
    """The panel's handlers over one index's saved searches."""

    def __init__(self, assistant: Assistant, n_filters: int) -> None:
        self.assistant, self.n_filters = assistant, n_filters
        self.store = SavedSearches(searches_path(assistant.settings))

    def version(self) -> str:
        """Changes when the index or the saved searches change (any process)."""
        try:
            mtime = self.store.path.stat().st_mtime_ns if self.store.path.exists() else 0
        except OSError:
            mtime = 0
        return f"{self.assistant.backend.stamp()}.{self.assistant.indexing.commits}.{mtime}"

    def views(self, pick: str | None = None) -> tuple[Any, ...]:
        """(version, alerts, table, the picker, the accordion's label)."""
        try:
            alerts = self.store.check(self.assistant.search) if self.store.path.exists() else []
        except Exception as exc:  # no index yet: say so, try again on the next change
            return self.version(), f"<p>⚠️ {esc(str(exc))}</p>", [], gr.update(), gr.update()
        names = [a.search.name for a in alerts]
        n_new = len(with_new_hits(alerts))
        label = "Saved searches and alerts" + (f" — {n_new} with new hits" if n_new else "")
        return (self.version(), alerts_html(alerts), saved_rows(alerts),
                gr.update(choices=names, value=pick if pick in names else None),
                gr.update(label=label))  # fmt: skip

    def tick(self, last: str, pick: str | None) -> tuple[Any, ...]:
        if last == self.version():
            return (gr.skip(),) * 5 + (gr.Timer(CHECK_SECONDS),)
        return (*self.views(pick), gr.Timer(CHECK_SECONDS))

    def save(self, name: str, q: str, n: float, cap: str, across: bool, langs: list[str],
             sources: list[str], date_from: str, date_to: str, jurisdictions: list[str] | None,
             types: list[str] | None) -> tuple[Any, ...]:  # fmt: skip
        if problem := filter_problem(date_from, date_to):
            return warn_and_skip(problem, 5)
        f = filters_from(langs, sources, date_from, date_to, jurisdictions, types)
        k = int(n)
        try:
            saved = self.store.save(self.assistant.search, q or "", f, name=name, k=k,
                                    per_doc=k if not cap or cap == "all" else int(cap),
                                    cross_lingual=bool(across))  # fmt: skip
        except ValueError as exc:
            return warn_and_skip(str(exc), 5)
        gr.Info(f"Saved “{saved.name}”: its {k} best passages now count as seen.")
        return self.views(saved.name)

    def open_saved(self, pick: str | None) -> tuple[Any, ...]:
        """The Search tab's boxes set to the saved search (its Search button is pressed next)."""
        s = self.store.get(pick or "")
        if s is None:
            return warn_and_skip("Pick a saved search first.", 4 + self.n_filters)
        f = s.filters
        cap = "all" if s.per_doc == s.k else str(s.per_doc or 3)
        cap = cap if cap in PER_DOC_CHOICES else "all"
        if f.docs:
            gr.Info(f"“{s.name}” also filters documents {', '.join(f.docs)}: the Search tab has "
                    "no such box, so run it with `rag alerts` for that filter.")  # fmt: skip
        return (s.query, min(s.k, MAX_SLIDER_K), cap, s.cross_lingual, list(f.langs),
                list(f.sources), f.date_from, f.date_to, list(f.jurisdictions),
                list(f.types))  # fmt: skip

    def mark_seen(self, pick: str | None) -> tuple[Any, ...]:
        alerts = self.store.check(self.assistant.search, [pick] if pick else [])
        gr.Info(f"{self.store.mark_seen(alerts)} new passage(s) marked seen.")
        return self.views(pick)

    def delete(self, pick: str | None) -> tuple[Any, ...]:
        if not pick or not self.store.delete(pick):
            return warn_and_skip("Pick a saved search first.", 5)
        return self.views()


def saved_panel(
    assistant: Assistant, query: Any, k: Any, per_doc: Any, filters: list[Any], go: Any = None,
    cross: Any = None,
) -> None:  # fmt: skip
    """The accordion; ``query``, ``k``, ``per_doc``, ``cross`` ("Match across languages") and
    ``filters`` are the Search tab's boxes (saved from, and set by **Open in Search**, which then
    presses ``go``, its Search button)."""
    panel = _Panel(assistant, len(filters))
    with gr.Accordion("Saved searches and alerts", open=False, elem_id="saved") as box:
        alerts = gr.HTML("<p>Checking the saved searches…</p>", elem_id="alerts")
        with gr.Row():
            name = gr.Textbox(label="Name for the current search", placeholder="default: the "
                              "query", scale=3, elem_id="saved-name")  # fmt: skip
            save_btn = gr.Button("Save current search", scale=1, elem_id="save-search")
        table = gr.Dataframe(headers=TABLE_HEADERS, interactive=False, wrap=True,
                             elem_id="saved-table")  # fmt: skip
        with gr.Row():
            pick = gr.Dropdown([], label="Saved search", scale=3, elem_id="saved-pick")
            open_btn = gr.Button("Open in Search", elem_id="saved-open")
            seen_btn = gr.Button("Mark seen", elem_id="saved-seen")
            delete_btn = gr.Button("Delete", variant="stop", elem_id="saved-delete")
            check_btn = gr.Button("Check now", elem_id="saved-check")
    last = gr.State("")
    outputs = [last, alerts, table, pick, box]
    private: dict[str, Any] = {"api_visibility": "private"}
    timer = gr.Timer(0.5)  # the first tick fills the panel, then every CHECK_SECONDS
    timer.tick(panel.tick, [last, pick], [*outputs, timer], show_progress="hidden", **private)
    across = gr.State(True) if cross is None else cross
    save_btn.click(panel.save, [name, query, k, per_doc, across, *filters], outputs, **private)
    opened = open_btn.click(panel.open_saved, pick, [query, k, per_doc, across, *filters],
                            **private)  # fmt: skip
    if go is not None:
        opened.success(None, pick, None, js=RUN_SEARCH_JS, **private)
    seen_btn.click(panel.mark_seen, pick, outputs, **private)
    delete_btn.click(panel.delete, pick, outputs, **private)
    check_btn.click(panel.views, pick, outputs, **private)
