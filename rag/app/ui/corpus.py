"""The Corpus tab: the indexed documents, upload (with a metadata form) and removal of files,
incremental re-indexing; and the views of the corpus every page refreshes from the index (on load,
after each change, and when another session changed it)."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import gradio as gr

from rag.app.ui.widgets import DOC_HEADERS, choices, status
from rag.ingest.formats import LoadError
from rag.ingest.uploads import (
    UPLOAD_SUFFIXES,
    DuplicateUpload,
    discard_failed,
    remove_file,
    save_upload,
    upload_metadata,
    write_sidecar,
)
from rag.service import Assistant
from rag.types import Document


def corpus_table(
    assistant: Assistant, docs: list[tuple[Document, int]] | None = None
) -> list[list[Any]]:
    """One row per indexed document: id, title, language, jurisdiction, type, source, date, file,
    passages."""
    try:
        docs = assistant.documents() if docs is None else docs
    except Exception:
        return []
    return [[d.doc_id, d.title, d.lang, d.jurisdiction, d.doc_type, d.source, d.date, d.path, n]
            for d, n in docs]  # fmt: skip


def file_choices(assistant: Assistant, docs: list[tuple[Document, int]] | None = None) -> list[str]:
    """The corpus files that can be removed."""
    return sorted({row[DOC_HEADERS.index("file")] for row in corpus_table(assistant, docs)})


def corpus_views(
    assistant: Assistant, langs: list[str] | None, sources: list[str] | None, removal: str | None,
    jurisdictions: list[str] | None = None, types: list[str] | None = None,
) -> tuple[Any, ...]:  # fmt: skip
    """The status line, the language and source filters, the table, the removal list and the
    jurisdiction and type filters, read from the index now; the filter values and the file chosen
    for removal are kept where they still exist."""
    try:  # read once for all five views
        docs: list[tuple[Document, int]] | None = assistant.documents()
    except Exception:  # no index yet: each view says so in its own way
        docs = None
    lang_choices, source_choices, j_choices, type_choices = choices(assistant, docs)
    table, files = corpus_table(assistant, docs), file_choices(assistant, docs)
    return (
        status(assistant, docs),
        gr.update(choices=lang_choices, value=[x for x in langs or [] if x in lang_choices]),
        gr.update(choices=source_choices, value=[x for x in sources or [] if x in source_choices]),
        table,
        gr.update(choices=files, value=removal if removal in files else None),
        gr.update(choices=j_choices, value=[x for x in jurisdictions or [] if x in j_choices]),
        gr.update(choices=type_choices, value=[x for x in types or [] if x in type_choices]),
    )


class Changes:
    """Counts the index changes made from this app, so that other open pages refresh."""

    def __init__(self) -> None:
        self._count = itertools.count(1)
        self.seen = 0

    def bump(self) -> None:
        self.seen = next(self._count)


def reindex(
    assistant: Assistant, progress: Callable[..., Any], saved: Collection[str] = ()
) -> list[str]:
    """Ingest (``progress``: a ``gr.Progress``); log lines: the summary, the files skipped, the
    uploads deleted because they could not be indexed, and the new files (``saved``) without a
    date."""

    def tick(stage: str, done: int, total: int) -> None:
        progress((done, max(total, 1)), desc=stage)

    report = assistant.ingest(progress=tick)
    docs = [d for d, _ in assistant.documents()]
    skipped = [(s.path, s.reason) for s in report.skipped]
    gone = discard_failed(assistant.settings.corpus_dir, skipped, {d.path for d in docs})
    lines = [
        f"Indexed {report.documents} documents, {report.chunks} passages "
        f"({len(report.files_added)} added, {len(report.files_changed)} changed, "
        f"{len(report.files_removed)} removed) in {report.seconds:.1f} s."
    ]
    lines += [f"Skipped {s.path}: {s.reason}" for s in report.skipped
              if s.path not in {rel for rel, _ in gone}]  # fmt: skip
    lines += [f"Not kept {rel}: it could not be indexed ({why}), so it was deleted from the "
              "corpus; fix the file and upload it again." for rel, why in gone]  # fmt: skip
    undated = sorted({d.path for d in docs if d.path in saved and not d.date})
    lines += [f"No date for {rel}: date filters will leave it out (to give it one, remove it "
              "and upload it again with a date)." for rel in undated]  # fmt: skip
    return lines


def save_files(
    assistant: Assistant, files: list[Any], meta: dict[str, str]
) -> tuple[list[str], list[str]]:
    """Save each upload (and its sidecar); the saved rels and a log line per file."""
    corpus, saved, lines = assistant.settings.corpus_dir, [], []
    for f in files:
        path = Path(getattr(f, "name", f))
        original = getattr(f, "orig_name", None) or path.name
        try:
            rel = save_upload(corpus, path, original, assistant.settings.max_upload_mb)
        except DuplicateUpload as exc:
            lines.append(f"Not saved {exc}")
            continue
        except LoadError as exc:
            lines.append(f"Refused {exc}")
            continue
        if meta:
            write_sidecar(corpus, rel, meta)
        saved.append(rel)
        lines.append(f"Saved {rel}" + (" with its metadata" if meta else ""))
    return saved, lines


def corpus_tab(assistant: Assistant, changes: Changes) -> tuple[Any, Any, list[Any]]:
    """The tab's components and events; returns the table and the removal list (two of the views
    ``corpus_views`` refreshes) and the events after which the page's views are refreshed."""
    index_lock = threading.Lock()

    def upload(files: list[Any] | None, title: str, source: str, date: str, lang: str,
               jurisdiction: str, doc_type: str,
               progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008  # fmt: skip
        """The log; then the file box, emptied once its files are handled, and the form, emptied
        once it described a saved file (each left as it is otherwise)."""
        keep = tuple(gr.skip() for _ in range(7))
        if not files:
            return "Choose one or more files first.", *keep
        try:
            meta = upload_metadata(title, source, date, lang, jurisdiction, doc_type)
        except LoadError as exc:
            return f"Nothing saved. {exc}", *keep
        if meta.get("title") and len(files) > 1:
            return "Nothing saved. Title: upload one file at a time to give it a title.", *keep
        with index_lock:
            saved, lines = save_files(assistant, files, meta)
            if saved:
                lines += reindex(assistant, progress, saved)
                changes.bump()
        form_after = ("",) * 6 if saved else keep[1:]
        return "\n".join(lines), None, *form_after

    def remove(rel: str, progress: gr.Progress = gr.Progress()) -> str:  # noqa: B008
        if not rel:
            return "Choose a file to remove."
        with index_lock:
            try:
                remove_file(assistant.settings.corpus_dir, rel)
            except LoadError as exc:
                return str(exc)
            lines = [f"Removed {rel}", *reindex(assistant, progress)]
            changes.bump()
        return "\n".join(lines)

    with gr.Tab("Corpus"):
        docs_table = gr.Dataframe(
            value=corpus_table(assistant),
            headers=DOC_HEADERS,
            interactive=False,
            wrap=True,
            column_widths=["20%", "32%", "5%", "15%", "9%", "6%", "9%", "4%"],
            elem_id="corpus-table",
        )
        gr.Markdown(
            "Add documents (.txt, .md, .html, .pdf, .docx; at most "
            f"{assistant.settings.max_upload_mb:g} MB each). They are saved under "
            "`corpus/uploads/` and indexed incrementally; a file already in the corpus is not "
            "saved twice, and one that cannot be indexed is not kept."
        )
        with gr.Row():
            with gr.Column():
                files = gr.File(
                    file_count="multiple", label="Upload", file_types=list(UPLOAD_SUFFIXES),
                    elem_id="upload",
                )  # fmt: skip
                form = _metadata_form()
            with gr.Column():
                add_btn = gr.Button("Add and re-index", variant="primary", elem_id="add-btn")
                to_remove = gr.Dropdown(file_choices(assistant), value=None,
                                        label="Remove a file", elem_id="to-remove")  # fmt: skip
                rm_btn = gr.Button("Remove and re-index", variant="stop")
        corpus_log = gr.Textbox(label="Log", lines=4, interactive=False, elem_id="corpus-log")
        added = add_btn.click(upload, [files, *form], [corpus_log, files, *form],
                              api_visibility="private", concurrency_id="index")  # fmt: skip
        removed = rm_btn.click(remove, to_remove, corpus_log, api_visibility="private",
                               concurrency_id="index")  # fmt: skip
    return docs_table, to_remove, [added, removed]


def _metadata_form() -> list[Any]:
    """Title, source, date, language, jurisdiction, type: written next to the file as its
    sidecar."""
    with gr.Accordion("Describe the upload (optional; applies to every file of this upload)",
                      open=True):  # fmt: skip
        title = gr.Textbox(label="Title", elem_id="meta-title")
        with gr.Row():
            source = gr.Textbox(label="Source", placeholder="publisher or outlet",
                                elem_id="meta-source")  # fmt: skip
            date = gr.Textbox(label="Date", placeholder="YYYY[-MM[-DD]]", elem_id="meta-date")
        with gr.Row():
            lang = gr.Textbox(label="Language", placeholder="en, sv, zh … (empty: detected)",
                              elem_id="meta-lang")  # fmt: skip
            jurisdiction = gr.Textbox(label="Jurisdiction", placeholder="SE, US-CO, EU or INT",
                                      elem_id="meta-jurisdiction")  # fmt: skip
            doc_type = gr.Textbox(label="Type", placeholder="law, bill, guidelines, news …",
                                  elem_id="meta-type")  # fmt: skip
    return [title, source, date, lang, jurisdiction, doc_type]
