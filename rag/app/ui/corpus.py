"""The Corpus tab: the indexed documents, upload and removal of files, incremental re-indexing."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import gradio as gr

from rag.app.ui.widgets import DOC_HEADERS, status
from rag.ingest.formats import LoadError
from rag.ingest.uploads import UPLOAD_SUFFIXES, remove_file, save_upload
from rag.service import Assistant


def corpus_table(assistant: Assistant) -> list[list[Any]]:
    """One row per indexed document: id, title, language, source, date, country, file, passages."""
    try:
        docs = assistant.documents()
    except Exception:
        return []
    return [[d.doc_id, d.title, d.lang, d.source, d.date, d.country, d.path, n]
            for d, n in docs]  # fmt: skip


def file_choices(assistant: Assistant) -> list[str]:
    """The corpus files that can be removed."""
    return sorted({row[6] for row in corpus_table(assistant)})


def corpus_tab(assistant: Assistant, status_md: gr.Markdown) -> None:
    """The tab's components and events; ``status_md`` is the page's status line, updated after
    every change."""
    index_lock = threading.Lock()

    def reindex(progress: gr.Progress) -> str:
        def tick(stage: str, done: int, total: int) -> None:
            progress((done, max(total, 1)), desc=stage)

        with index_lock:
            report = assistant.ingest(progress=tick)
        lines = [
            f"Indexed {report.documents} documents, {report.chunks} passages "
            f"({len(report.files_added)} added, {len(report.files_changed)} changed, "
            f"{len(report.files_removed)} removed) in {report.seconds:.1f} s."
        ]
        lines += [f"Skipped {s.path}: {s.reason}" for s in report.skipped]
        return "\n".join(lines)

    def upload(files: list[Any] | None, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008
        if not files:
            raise gr.Error("Choose one or more files first.")
        saved, refused = [], []
        for f in files:
            path = Path(getattr(f, "name", f))
            original = getattr(f, "orig_name", None) or path.name
            try:
                saved.append(save_upload(assistant.settings.corpus_dir, path, original,
                                         assistant.settings.max_upload_mb))  # fmt: skip
            except LoadError as exc:
                refused.append(str(exc))
        msg = "\n".join([f"Saved {s}" for s in saved] + [f"Refused {r}" for r in refused])
        if saved:
            msg += "\n" + reindex(progress)
        choices = gr.update(choices=file_choices(assistant))
        return msg, corpus_table(assistant), choices, status(assistant)

    def remove(rel: str, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008
        if not rel:
            raise gr.Error("Choose a file to remove.")
        try:
            remove_file(assistant.settings.corpus_dir, rel)
        except LoadError as exc:
            raise gr.Error(str(exc)) from exc
        msg = f"Removed {rel}\n" + reindex(progress)
        choices = gr.update(choices=file_choices(assistant), value=None)
        return msg, corpus_table(assistant), choices, status(assistant)

    with gr.Tab("Corpus"):
        docs_table = gr.Dataframe(
            value=corpus_table(assistant),
            headers=DOC_HEADERS,
            interactive=False,
            wrap=True,
            column_widths=["20%", "32%", "5%", "15%", "9%", "6%", "9%", "4%"],
        )
        gr.Markdown(
            "Add documents (.txt, .md, .html, .pdf, .docx; at most "
            f"{assistant.settings.max_upload_mb:g} MB each). They are saved under "
            "`corpus/uploads/` and indexed incrementally."
        )
        with gr.Row():
            files = gr.File(
                file_count="multiple", label="Upload", file_types=list(UPLOAD_SUFFIXES),
                elem_id="upload",
            )  # fmt: skip
            with gr.Column():
                add_btn = gr.Button("Add and re-index", variant="primary", elem_id="add-btn")
                to_remove = gr.Dropdown(file_choices(assistant), value=None, label="Remove a file")
                rm_btn = gr.Button("Remove and re-index", variant="stop")
        corpus_log = gr.Textbox(label="Log", lines=4, interactive=False, elem_id="corpus-log")
        add_btn.click(upload, files, [corpus_log, docs_table, to_remove, status_md],
                      api_visibility="private", concurrency_id="index")  # fmt: skip
        rm_btn.click(remove, to_remove, [corpus_log, docs_table, to_remove, status_md],
                     api_visibility="private", concurrency_id="index")  # fmt: skip
