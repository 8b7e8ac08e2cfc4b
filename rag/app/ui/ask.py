"""The Ask tab: a chat whose answers quote their sources, with the sources panel beside it."""

from __future__ import annotations

from typing import Any

import gradio as gr

from rag.app.ui.widgets import answer_markdown, filters_from, md_escape, sources_html
from rag.service import Assistant

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


def ask_tab(assistant: Assistant, filters: list[Any]) -> None:
    """The tab's components and events; ``filters`` are the shared filter boxes."""

    def respond(
        message: str,
        chat: list[dict[str, Any]],
        turns: list[list[str]],
        langs: list[str],
        sources: list[str],
        date_from: str,
        date_to: str,
        use_llm: bool = False,
    ) -> tuple[Any, ...]:
        message = (message or "").strip()
        if not message:
            return chat, gr.skip(), "", turns
        try:
            answer = assistant.ask(
                message, history=[(q, a) for q, a in turns],
                filters=filters_from(langs, sources, date_from, date_to),
                mode=_mode(use_llm),
            )  # fmt: skip
        except ValueError as exc:
            raise gr.Error(str(exc)) from exc
        chat = [*chat, {"role": "user", "content": md_escape(message)},
                {"role": "assistant", "content": answer_markdown(answer)}]  # fmt: skip
        return chat, sources_html(assistant, answer), "", [*turns, [message, answer.answer]]

    def _mode(use_llm: bool | None) -> str | None:
        if not assistant.llm_label:
            return None
        return "llm" if use_llm else "extractive"

    with gr.Tab("Ask"):
        with gr.Row():
            with gr.Column(scale=3):
                chat = gr.Chatbot(label="Conversation", height=520, elem_id="chat")
                turns = gr.State([])
                with gr.Row():
                    question = gr.Textbox(
                        placeholder="Ask in any language, e.g. What did the EU ask Japan?",
                        show_label=False, scale=5, elem_id="question",
                    )  # fmt: skip
                    send = gr.Button("Ask", variant="primary", scale=1, elem_id="ask-btn")
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
                panel = gr.HTML("<p>Quotes and their passages appear here.</p>",
                                elem_id="sources")  # fmt: skip
        ask_io = (
            [question, chat, turns, *filters, use_llm],
            [chat, panel, question, turns],
        )
        question.submit(respond, *ask_io, api_visibility="private")
        send.click(respond, *ask_io, api_visibility="private")
        clear.click(lambda: ([], [], "<p></p>"), None, [chat, turns, panel],
                    api_visibility="private")  # fmt: skip
