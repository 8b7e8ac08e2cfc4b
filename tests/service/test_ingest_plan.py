"""An ingest looks at the corpus before it loads anything: nothing to do costs no model load, a
missing corpus folder is reported before "Loading model…", and long runs report progress in logs."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from rag.app.cli import main
from rag.app.progress import ProgressBar
from rag.config import Settings
from rag.models.embeddings import HashEmbedder
from rag.service import Assistant

DOCS = {
    "a.txt": "The European Union adopted the AI Act. It bans social scoring by public authorities.",
    "b.txt": "Kinas ambassad i London sa att Kina stöder diskussioner om AI-styrning och normer.",
}


class LazyEmbedder(HashEmbedder):
    """A fake that says whether its "model" was needed: ``loaded`` turns True on first use of
    anything but the name (dimension, token counts, encoding), like the real embedder."""

    def __init__(self) -> None:
        super().__init__(64)
        self.loaded = False
        self.uses: list[str] = []

    def _use(self, what: str) -> None:
        self.loaded = True
        self.uses.append(what)

    @property
    def dim(self) -> int:
        self._use("dim")
        return 64

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        self._use("count_tokens")
        return super().count_tokens(texts)

    def encode_passages(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        self._use("encode_passages")
        return super().encode_passages(texts, progress)


@pytest.fixture
def lazy(make_corpus: Callable[..., Path], tmp_path: Path) -> tuple[Assistant, LazyEmbedder]:
    corpus = make_corpus(dict(DOCS))
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", model="hash:64",
                        cache_dir=tmp_path / "c", centering=0.0)  # fmt: skip
    embedder = LazyEmbedder()
    return Assistant(settings, embedder=embedder), embedder


def test_an_ingest_with_nothing_to_do_never_loads_the_model(
    lazy: tuple[Assistant, LazyEmbedder],
) -> None:
    assistant, _ = lazy
    assistant.ingest()
    fresh = LazyEmbedder()  # a new process: nothing loaded yet
    again = Assistant(assistant.settings, embedder=fresh).ingest()
    assert fresh.uses == []
    assert again.files_unchanged == 2 and again.chunks_embedded == 0
    assert again.documents == 2 and again.chunks > 0  # the counts still come from the index


def test_a_change_loads_the_model_and_says_so_first(lazy: tuple[Assistant, LazyEmbedder]) -> None:
    assistant, _ = lazy
    assistant.ingest()
    (assistant.settings.corpus_dir / "c.txt").write_text("Japan published AI guidelines.", "utf-8")
    fresh = LazyEmbedder()
    stages: list[str] = []
    report = Assistant(assistant.settings, embedder=fresh).ingest(
        progress=lambda stage, done, total: stages.append(stage)
    )
    assert report.files_added == ("c.txt",)
    assert "encode_passages" in fresh.uses
    assert stages.index("loading model") < stages.index("embedding")


def test_only_unreadable_changes_load_nothing_and_report_the_file(
    lazy: tuple[Assistant, LazyEmbedder],
) -> None:
    assistant, _ = lazy
    assistant.ingest()
    (assistant.settings.corpus_dir / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    fresh = LazyEmbedder()
    report = Assistant(assistant.settings, embedder=fresh).ingest()
    assert fresh.uses == []
    assert [s.path for s in report.skipped] == ["broken.pdf"]


def test_a_removed_file_is_removed_without_loading_the_model(
    lazy: tuple[Assistant, LazyEmbedder],
) -> None:
    assistant, _ = lazy
    assistant.ingest()
    (assistant.settings.corpus_dir / "b.txt").unlink()
    fresh = LazyEmbedder()
    fresh_assistant = Assistant(assistant.settings, embedder=fresh)
    report = fresh_assistant.ingest()
    assert report.files_removed == ("b.txt",) and report.documents == 1
    assert fresh.uses == []  # the index's manifest knows its dimension
    assert [d.doc_id for d, _ in fresh_assistant.documents()] == ["a"]


def test_cli_reports_a_missing_corpus_before_any_model_line(tmp_path: Path) -> None:
    env = {"RAG_MODEL": "hash:64", "RAG_CACHE_DIR": str(tmp_path / "c")}
    result = CliRunner().invoke(
        main, ["ingest", "--corpus", str(tmp_path / "nope"), "--index", str(tmp_path / "i")],
        env=env,
    )  # fmt: skip
    assert result.exit_code == 1
    assert "does not exist" in result.output and "nope" in result.output
    assert "Loading model" not in result.output


def test_progress_in_a_log_shows_done_rate_and_time_left() -> None:
    now = [0.0]
    lines: list[str] = []
    bar = ProgressBar(tty=False, every=10, clock=lambda: now[0], echo=lines.append, model="m")
    bar("loading model", 0, 0)
    for t, done in ((0, 0), (5, 50), (12, 120), (15, 150), (24, 240), (100, 1000)):
        now[0] = t
        bar("embedding", done, 1000)
    assert lines == [
        "Loading model m…",
        "embedding 1000 chunks and sentences…",
        "embedding: 120/1000 (12 %, 10.0/s, 1:28 left)",
        "embedding: 240/1000 (24 %, 10.0/s, 1:16 left)",
    ]


def test_an_unreadable_file_logs_one_line_and_the_trace_only_when_verbose(
    make_corpus: Callable[..., Path], tmp_path: Path, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from rag.ingest import corpus as corpus_module
    from rag.ingest.corpus import find_files, iter_documents

    def explode(path: Path) -> list[tuple[str, str, str]]:
        raise KeyError("xref table")

    monkeypatch.setitem(corpus_module.LOADERS, ".txt", explode)
    folder = make_corpus({"odd.txt": "text"})
    files, _ = find_files(folder)
    with caplog.at_level(logging.WARNING):
        [(_, result)] = list(iter_documents(files, {}))
    assert "could not be read (KeyError" in str(result)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and warnings[0].exc_info is None
    assert "odd.txt" in warnings[0].getMessage()
    caplog.clear()
    with caplog.at_level(logging.INFO):  # what -v shows
        list(iter_documents(files, {}))
    assert any(r.exc_info for r in caplog.records)


def test_the_app_sees_an_ingest_made_by_another_process(
    lazy: tuple[Assistant, LazyEmbedder],
) -> None:
    """The app kept the index it loaded until its own next ingest: a `rag ingest` from the
    command line never reached the page's status line, table or search."""
    app, _ = lazy
    app.ingest()
    assert len(app.documents()) == 2
    (app.settings.corpus_dir / "c.txt").write_text("Japan published AI guidelines.", "utf-8")
    Assistant(app.settings, embedder=LazyEmbedder()).ingest()  # "another process"
    assert sorted(d.doc_id for d, _ in app.documents()) == ["a", "b", "c"]
    assert any(h.doc_id == "c" for h in app.search("Japan AI guidelines", 5).hits)
