"""The Compare tab: one question answered once per jurisdiction (or document type, or language),
each group with its answer and source cards (the Ask tab's), "no passage found" where the group's
documents do not answer it; the comparison downloads as CSV, JSON or Markdown."""

from __future__ import annotations

import re
from typing import Any

import gradio as gr

from rag.app.ui.cards import sources_html
from rag.app.ui.exports import compare_files
from rag.app.ui.widgets import (
    COPY_CITATION_JS,
    esc,
    filter_problem,
    filters_from,
    warn_and_skip,
)
from rag.service import Assistant
from rag.service.compare import NO_PASSAGE, Comparison, Group, key_choices

BY_CHOICES = [("Jurisdiction", "jurisdiction"), ("Document type", "type"), ("Language", "language")]
EXAMPLES = [
    "Must AI-generated content be labelled?",
    "Who must report serious AI incidents, and to whom?",
    "Which AI practices are prohibited?",
]
_EMPTY = "<p>One answer per jurisdiction appears here, each quoting its own documents.</p>"
# One column per group, as many side by side as fit (the source cards keep the app's CSS).
_CSS = """
.cmp-groups {display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr));
  gap: 14px; align-items: start;}
.cmp-group {border: 1px solid var(--border-color-primary); border-radius: 10px; padding: 10px;}
.cmp-key {font-size: 1.15em; font-weight: 700; margin: 0 0 8px 0;}
.cmp-answer {white-space: pre-wrap; overflow-wrap: anywhere; font-size: 0.92em; line-height: 1.45;
  margin: 0 0 10px 0;}
.cmp-none {color: var(--body-text-color-subdued); font-style: italic; margin: 0;}
"""
_MARKER = re.compile(r"\[(\d+)\]")


def _anchor(key: str) -> str:
    return "cmp-" + (re.sub(r"[^A-Za-z0-9]+", "-", key).strip("-") or "group")


def group_html(assistant: Assistant, group: Group) -> str:
    """One group: its key, then the answer with each [n] linked to its card and the cards (their
    anchors prefixed with the group's, so that [1] of EU and [1] of US stay apart); or
    "no passage found"."""
    gid = _anchor(group.key)
    head = f'<section class="cmp-group" id="{gid}"><h3 class="cmp-key">{esc(group.key)}</h3>'
    if group.abstained:
        return f'{head}<p class="cmp-none">{NO_PASSAGE}</p></section>'
    text = _MARKER.sub(rf'<a class="cmp-n" href="#{gid}-src-\1">[\1]</a>',
                       esc(group.answer.answer.strip()))  # fmt: skip
    cards = sources_html(assistant, group.answer).replace(' id="src-', f' id="{gid}-src-')
    note = f'<p class="cmp-none">{esc(group.answer.note)}</p>' if group.answer.note else ""
    return f'{head}<div class="cmp-answer">{text}</div>{note}{cards}</section>'


def comparison_html(assistant: Assistant, comparison: Comparison) -> str:
    if not comparison.groups:
        return f"<p>No {esc(comparison.by)} to compare: no indexed document has one.</p>"
    groups = "".join(group_html(assistant, g) for g in comparison.groups)
    return f'<div class="cmp-groups">{groups}</div>'


def compare_tab(assistant: Assistant, filters: list[Any], filter_msg: Any) -> None:
    """The tab's components and events; ``filters`` are the shared filter boxes (language,
    source, dates), applied to every group, and ``filter_msg`` the line under them."""

    def choices(by: str) -> list[str]:
        try:
            return key_choices((d for d, _ in assistant.documents()), by)
        except Exception:  # no index yet
            return []

    def run(question: str, by: str, only: list[str], langs: list[str], sources: list[str],
            date_from: str, date_to: str, jurisdictions: list[str] | None = None,
            types: list[str] | None = None,
            progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008  # fmt: skip
        question = (question or "").strip()
        if not question:
            return tuple(gr.skip() for _ in range(5))
        if problem := filter_problem(date_from, date_to):
            return warn_and_skip(problem, 5, filter_msg=True)
        try:
            result = assistant.compare(
                question, by=by, only=only or (),
                filters=filters_from(langs, sources, date_from, date_to, jurisdictions, types),
                progress=lambda key, i, n: progress((i, n), desc=f"Asking {key}…"),
            )  # fmt: skip
        except ValueError as exc:
            return warn_and_skip(str(exc), 5)
        paths = compare_files(result)
        return (comparison_html(assistant, result),
                *(gr.update(visible=True, value=p) for p in paths), "")  # fmt: skip

    with gr.Tab("Compare") as tab:
        gr.Markdown(
            "One question, answered once per jurisdiction from its own documents (US-CA and "
            "US-CO count under US; pick US-CO alone to see one state). Documents without a "
            "jurisdiction are in no group. The filters apply too."
        )
        with gr.Row():
            question = gr.Textbox(placeholder="e.g. Must AI-generated content be labelled?",
                                  show_label=False, scale=5,
                                  elem_id="compare-question")  # fmt: skip
            send = gr.Button("Compare", variant="primary", scale=1, elem_id="compare-btn")
        with gr.Row():
            by = gr.Dropdown(BY_CHOICES, value="jurisdiction", label="Group by",
                             elem_id="compare-by", scale=1)  # fmt: skip
            only = gr.Dropdown(choices("jurisdiction"), value=[], multiselect=True, scale=3,
                               label="Only these groups, in this order (empty: all)",
                               elem_id="compare-only")  # fmt: skip
        gr.Examples(EXAMPLES, inputs=question, label="Examples")
        with gr.Row(elem_id="compare-tools"):
            files = [gr.DownloadButton(f"Export ({label})", size="sm", visible=False,
                                       elem_id=f"export-compare-{ext}")
                     for label, ext in (("CSV", "csv"), ("JSON", "json"),
                                        ("Markdown", "md"))]  # fmt: skip
        out = gr.HTML(_EMPTY, elem_id="compare-out", css_template=_CSS,
                      js_on_load=COPY_CITATION_JS)  # fmt: skip
        io = ([question, by, only, *filters], [out, *files, filter_msg])
        question.submit(run, *io, api_visibility="private")
        send.click(run, *io, api_visibility="private")
        by.change(lambda b: gr.update(choices=choices(b), value=[]), by, only,
                  show_progress="hidden", api_visibility="private")  # fmt: skip

        def refresh(b: str, picked: list[str]) -> Any:  # the corpus may have changed
            now = choices(b)
            return gr.update(choices=now, value=[k for k in picked or [] if k in now])

        tab.select(refresh, [by, only], only, show_progress="hidden", api_visibility="private")
