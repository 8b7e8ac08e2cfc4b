"""The Ask tab: a chat whose answers quote their sources, with the sources panel beside it; the
last answer can be copied as clean text or downloaded with its citations (Markdown, JSON)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from rag.app.ui.cards import sources_html
from rag.app.ui.exports import answer_files, answer_plain
from rag.app.ui.widgets import (
    COPY_CITATION_JS,
    COPY_TEXT_JS,
    answer_markdown,
    filter_problem,
    filters_from,
    md_escape,
    warn_and_skip,
)
from rag.service import Assistant
from rag.types import Answer

# One per language, each answered from a document in another language except the Chinese one
# (checked against the shipped corpus: tests/test_real_model.py).
EXAMPLES = [
    "What did the Chinese embassy in the UK say?",
    "Welk AI-taalmodel bracht JD.com op de markt?",
    "Hur ser Singapore på EU:s AI-regler?",
    "Welche KI-Praktiken verbietet der AI Act der EU?",
    "Quel est le montant maximal des amendes pour les pratiques d'IA interdites ?",
    "深圳的人工智能产业促进条例什么时候开始施行？",
]
_EMPTY_PANEL = "<p>Quotes and their passages appear here.</p>"


def answer_tools(answer: Answer | None) -> tuple[Any, ...]:
    """The plain text to copy and the two download buttons, for ``answer`` (None: hidden)."""
    if answer is None:
        hide = gr.update(visible=False, value=None)
        return "", gr.update(visible=False), hide, hide
    md_path, json_path = answer_files(answer)
    show = gr.update(visible=True)
    return (answer_plain(answer), show, gr.update(visible=True, value=md_path),
            gr.update(visible=True, value=json_path))  # fmt: skip


def ask_tab(assistant: Assistant, filters: list[Any], filter_msg: Any) -> None:
    """The tab's components and events; ``filters`` are the shared filter boxes and
    ``filter_msg`` the line under them that says what is wrong with them."""

    def respond(
        message: str,
        chat: list[dict[str, Any]],
        turns: list[list[str]],
        use_llm: bool,
        langs: list[str],
        sources: list[str],
        date_from: str,
        date_to: str,
        jurisdictions: list[str] | None = None,
        types: list[str] | None = None,
    ) -> tuple[Any, ...]:
        message = (message or "").strip()
        if not message:
            return tuple(gr.skip() for _ in range(9))
        if problem := filter_problem(date_from, date_to):
            return warn_and_skip(problem, 9, filter_msg=True)
        try:
            answer = assistant.ask(
                message, history=[(q, a) for q, a in turns],
                filters=filters_from(langs, sources, date_from, date_to, jurisdictions, types),
                mode=_mode(use_llm),
            )  # fmt: skip
        except ValueError as exc:
            return warn_and_skip(str(exc), 9)
        chat = [*chat, {"role": "user", "content": md_escape(message)},
                {"role": "assistant", "content": answer_markdown(answer)}]  # fmt: skip
        return (chat, sources_html(assistant, answer), "", [*turns, [message, answer.answer]],
                *answer_tools(answer), "")  # fmt: skip

    def _mode(use_llm: bool | None) -> str | None:
        if not assistant.llm_label:
            return None
        return "llm" if use_llm else "extractive"

    with gr.Tab("Ask"):
        with gr.Row():
            with gr.Column(scale=3):
                gr.Markdown("### Conversation")
                # No label over the messages (it covered them when scrolled) and no built-in copy
                # button (it copies the escaped markdown): "Copy answer" copies clean text.
                chat = gr.Chatbot(show_label=False, height=520, elem_id="chat", buttons=[])
                turns = gr.State([])
                with gr.Row():
                    question = gr.Textbox(
                        placeholder="Ask in any language, e.g. What did the EU ask Japan?",
                        show_label=False, scale=5, elem_id="question",
                    )  # fmt: skip
                    send = gr.Button("Ask", variant="primary", scale=1, elem_id="ask-btn")
                tools = _tools_row()
                gr.Examples(EXAMPLES, inputs=question, label="Examples")
                with gr.Row():
                    use_llm = gr.Checkbox(
                        value=bool(assistant.llm_label),
                        visible=bool(assistant.llm_label),
                        label=f"Write answers with the LLM ({assistant.llm_label}); "
                        "checked against the sources, verbatim quotes if a check fails",
                        elem_id="use-llm",
                    )
                    clear = gr.Button("New conversation", size="sm")
            with gr.Column(scale=2):
                gr.Markdown("### Sources")
                panel = gr.HTML(_EMPTY_PANEL, elem_id="sources", js_on_load=COPY_CITATION_JS)
        ask_io = (
            [question, chat, turns, use_llm, *filters],
            [chat, panel, question, turns, *tools, filter_msg],
        )
        question.submit(respond, *ask_io, api_visibility="private")
        send.click(respond, *ask_io, api_visibility="private")
        clear.click(lambda: ([], [], _EMPTY_PANEL, *answer_tools(None)), None,
                    [chat, turns, panel, *tools], api_visibility="private")  # fmt: skip
        chat.clear(lambda: ([], _EMPTY_PANEL, *answer_tools(None)), None,
                   [turns, panel, *tools], api_visibility="private")  # fmt: skip
        tools[1].click(None, tools[0], None, js=COPY_TEXT_JS)


def _tools_row() -> list[Any]:
    """[the last answer as plain text (hidden), Copy answer, Export Markdown, Export JSON]."""
    text = gr.Textbox(visible=False, elem_id="answer-text")
    with gr.Row(elem_id="answer-tools"):
        copy = gr.Button("Copy answer", size="sm", visible=False, elem_id="copy-answer")
        md = gr.DownloadButton("Export answer (Markdown)", size="sm", visible=False,
                               elem_id="export-answer-md")  # fmt: skip
        js = gr.DownloadButton("Export answer (JSON)", size="sm", visible=False,
                               elem_id="export-answer-json")  # fmt: skip
    return [text, copy, md, js]
