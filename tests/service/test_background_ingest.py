"""`rag serve`'s background build: a staged ingest commits in batches, questions are answered from
what is committed (with a note), an interrupted build resumes with the rest (fake embedder)."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag.app.ui.widgets import status
from rag.config import Settings
from rag.index.faiss import folder
from rag.models.embeddings import HashEmbedder
from rag.service import Assistant, staging
from rag.service.assistant import IndexNotReady
from rag.service.staging import INCOMPLETE, Indexing, StagedIngest, batches
from tests.reliability.common import WORDS

N_FILES = 20
SENTENCES = 8  # a file: one chunk of 8 sentences, 9 texts to embed
FIRST, CAP = 3 * (SENTENCES + 1), 6 * (SENTENCES + 1)  # texts per batch: 3 files, then 6


def corpus_files(n: int = N_FILES) -> dict[str, str]:
    """``n`` files, each one chunk of ``SENTENCES`` sentences with its own token
    ``t<i>x`` that BM25 finds."""
    files = {}
    for i in range(n):
        sents = [
            " ".join(WORDS[(i * 7 + s * 3 + w) % len(WORDS)] for w in range(9)).capitalize()
            + f" t{i:02d}x."
            for s in range(SENTENCES)
        ]
        files[f"doc{i:02d}.txt"] = " ".join(sents)
    return files


class GatedEmbedder(HashEmbedder):
    """Counts what it embeds; can fail on, or wait before, its n-th ``encode_passages`` call."""

    def __init__(self, fail_on: int = 0, wait_on: int = 0) -> None:
        super().__init__(64)
        self.calls = 0
        self.embedded = 0
        self.fail_on, self.wait_on = fail_on, wait_on
        self.waiting, self.go = threading.Event(), threading.Event()

    def encode_passages(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        self.calls += 1
        if self.calls == self.fail_on:
            raise RuntimeError("the embedder failed on purpose")
        if self.calls == self.wait_on:
            self.waiting.set()
            assert self.go.wait(20)
        self.embedded += len(texts)
        return super().encode_passages(texts, progress)

    def next_wait(self, call: int) -> None:
        """Let the held call go on and hold call ``call`` instead."""
        self.waiting.clear()
        self.wait_on, (go, self.go) = call, (self.go, threading.Event())
        go.set()


@pytest.fixture(autouse=True)
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(staging, "FIRST_BATCH_TEXTS", FIRST)
    monkeypatch.setattr(staging, "MAX_BATCH_TEXTS", CAP)


@pytest.fixture
def settings(make_corpus: Callable[..., Path], tmp_path: Path) -> Settings:
    # No centering: the fakes count the embedder's calls, and its means would be calls too.
    return Settings(corpus_dir=make_corpus(corpus_files()), index_dir=tmp_path / "index",
                    model="hash:64", cache_dir=tmp_path / "cache", centering=0.0)  # fmt: skip


def answers(assistant: Assistant) -> list[Any]:
    qs = ["t03x audit", "t17x", "regulator rules penalty"]
    return [assistant.search(q, k=5).to_json() for q in qs] + [
        assistant.ask(q).to_json() for q in qs
    ]


def reference(settings: Settings, tmp_path: Path, files: Sequence[str] | None = None) -> list[Any]:
    """The answers of a single-commit ingest (of ``files`` only, when given)."""
    corpus = tmp_path / "ref-corpus"
    shutil.copytree(settings.corpus_dir, corpus)
    for p in corpus.iterdir():
        if files is not None and p.name not in files:
            p.unlink()
    ref = Assistant(settings.with_(corpus_dir=corpus, index_dir=tmp_path / "ref-index"),
                    HashEmbedder(64))  # fmt: skip
    ref.ingest()
    out = answers(ref)
    shutil.rmtree(tmp_path / "ref-index")
    shutil.rmtree(corpus)
    return out


def test_batches_start_small_and_double_up_to_the_cap() -> None:
    def prepared(n: int) -> Any:
        return type("P", (), {"texts": [""] * n})()

    sizes = [[len(p.texts) for p in b] for b in batches([prepared(10)] * 30 + [prepared(500)],
                                                       first=40, cap=80)]  # fmt: skip
    assert sizes[:3] == [[10] * 4, [10] * 8, [10] * 8] and sizes[-1] == [500]
    assert [len(p.texts) for p in batches([prepared(500), prepared(1)], 40, 80)[0]] == [500]
    assert batches([], 40, 80) == []


def test_staged_ingest_commits_batches_that_queries_see_between_commits(
    settings: Settings, tmp_path: Path
) -> None:
    assistant = Assistant(settings, HashEmbedder(64))
    seen: list[tuple[int, int, bool]] = []

    def between_commits(state: Indexing) -> None:  # another reader, as the app's querier
        reader = Assistant(settings, HashEmbedder(64))
        docs = len(reader.documents())
        manifest = folder.read_manifest(settings.index_dir)
        seen.append((state.indexed, docs, INCOMPLETE in manifest))
        assert state.indexed == manifest["counts"]["chunks"] == docs  # one chunk a file
        assert reader.search("t00x", k=1).hits[0].doc_id == "doc00"

    report = StagedIngest(assistant.indexer, on_commit=between_commits).run()
    assert len(seen) == 4 and [s[1] for s in seen] == [3, 9, 15, 20]
    assert [s[2] for s in seen] == [True, True, True, False]  # the last commit is complete
    assert report.documents == N_FILES and len(report.files_added) == N_FILES
    assert report.chunks_embedded == N_FILES and report.sentences_embedded == SENTENCES * N_FILES
    # The same index as one commit: same rows, same answers.
    assert answers(Assistant(settings, HashEmbedder(64))) == reference(settings, tmp_path)
    assert not assistant.needs_indexing()


def test_removals_and_a_rebuild_go_with_the_first_batch(settings: Settings) -> None:
    Assistant(settings.with_(chunk_tokens=96), HashEmbedder(64)).ingest()  # other settings
    firsts: list[set[str]] = []

    def first(state: Indexing) -> None:
        if state.commits == 1:
            firsts.append(set(folder.read_manifest(settings.index_dir)["files"]))

    assistant = Assistant(settings, HashEmbedder(64))
    assert assistant.needs_indexing()
    StagedIngest(assistant.indexer, on_commit=first).run()
    assert firsts[-1] == {"doc00.txt", "doc01.txt", "doc02.txt"}  # the old index is gone
    assert len(assistant.documents()) == N_FILES and not assistant.needs_indexing()
    # Removed files leave with the first batch of the next build.
    (settings.corpus_dir / "doc19.txt").unlink()
    for i in range(6):
        (settings.corpus_dir / f"new{i}.txt").write_text(corpus_files(30)[f"doc{20 + i}.txt"])
    report = StagedIngest(assistant.indexer, on_commit=first).run()
    assert set(firsts[-1]) == {f"doc{i:02d}.txt" for i in range(19)} | {"new0.txt", "new1.txt",
                                                                       "new2.txt"}  # fmt: skip
    assert report.files_removed == ("doc19.txt",) and len(report.files_added) == 6
    assert len(assistant.documents()) == N_FILES + 5


def test_an_interrupted_build_keeps_its_first_batch_and_the_next_ingest_embeds_the_rest(
    settings: Settings, tmp_path: Path
) -> None:
    embedder = GatedEmbedder(fail_on=2)  # batch 2
    assistant = Assistant(settings, embedder)
    with pytest.raises(RuntimeError, match="on purpose"):
        assistant.ingest_staged()
    state = assistant.indexing
    assert not state.running and "on purpose" in state.error and state.indexed == 3
    assert "Indexing stopped: the embedder failed on purpose" in status(assistant)
    assert "answers come from the 3 passages indexed so far" in status(assistant)
    # A readable index holding batch 1, which says it is unfinished.
    fresh = Assistant(settings, HashEmbedder(64))
    assert sorted(d.doc_id for d, _ in fresh.documents()) == ["doc00", "doc01", "doc02"]
    assert answers(fresh) == reference(settings, tmp_path, ["doc00.txt", "doc01.txt", "doc02.txt"])
    manifest = folder.read_manifest(settings.index_dir)
    assert manifest[INCOMPLETE] == {"files_left": N_FILES - 3} and fresh.needs_indexing()
    # The next build (the app restarted) embeds only the rest and ends complete.
    again = GatedEmbedder()
    resumed = Assistant(settings, again)
    report = resumed.ingest_staged()
    assert report.files_added == tuple(f"doc{i:02d}.txt" for i in range(3, N_FILES))
    assert again.embedded == (SENTENCES + 1) * (N_FILES - 3)
    assert not resumed.needs_indexing() and INCOMPLETE not in folder.read_manifest(
        settings.index_dir
    )
    assert answers(resumed) == reference(settings, tmp_path)
    assert status(resumed).startswith(f"{N_FILES} documents")


def test_a_plain_ingest_finishes_an_interrupted_build(settings: Settings) -> None:
    with pytest.raises(RuntimeError):
        Assistant(settings, GatedEmbedder(fail_on=3)).ingest_staged()
    embedder = GatedEmbedder()
    assistant = Assistant(settings, embedder)
    assert len(assistant.documents()) == 9 and assistant.needs_indexing()
    report = assistant.ingest()
    assert len(report.files_added) == N_FILES - 9
    assert embedder.embedded == (SENTENCES + 1) * (N_FILES - 9)
    assert not assistant.needs_indexing()


def test_questions_while_the_index_is_built_in_the_background(settings: Settings) -> None:
    embedder = GatedEmbedder(wait_on=1)  # holds batch 1 until told
    assistant = Assistant(settings, embedder)
    worker = threading.Thread(target=assistant.ingest_staged)
    worker.start()
    try:
        assert embedder.waiting.wait(10)
        # Before the first commit: a clear message, never a trace.
        with pytest.raises(IndexNotReady, match="index is being built"):
            assistant.ask("t03x audit")
        with pytest.raises(IndexNotReady, match="first passages are searchable in a few"):
            assistant.search("t03x")
        assert status(assistant).startswith("⏳ Building the index: embedding the first passages")
        # Batch 1 committed, batch 2 held: answers from what is in, saying so.
        embedder.next_wait(2)
        assert embedder.waiting.wait(10)
        answer = assistant.ask("t01x audit")
        assert answer.citations and answer.citations[0].doc_id == "doc01"
        assert f"Indexing is still running: this answer comes from the 3 of {N_FILES}" in (
            answer.note
        )
        assert assistant.search("t01x", k=1).hits[0].doc_id == "doc01"
        assert status(assistant) == (
            f"⏳ Indexing 3 / {N_FILES} passages… answers come from the 3 passages indexed so far."
        )
    finally:
        embedder.go.set()
        worker.join(20)
    assert not assistant.indexing.running and not assistant.indexing.error
    assert assistant.ask("t17x").note == "" and status(assistant).startswith("20 documents")


def test_an_upload_during_the_build_waits_for_it(settings: Settings) -> None:
    embedder = GatedEmbedder(wait_on=2)
    assistant = Assistant(settings, embedder)
    worker = threading.Thread(target=assistant.ingest_staged)
    worker.start()
    assert embedder.waiting.wait(10)
    (settings.corpus_dir / "new.txt").write_text("An uploaded file about zz99 audits.", "utf-8")
    stages: list[str] = []
    threading.Timer(1.0, embedder.go.set).start()
    report = assistant.ingest(progress=lambda stage, done, total: stages.append(stage))
    worker.join(10)
    assert stages[0] == "waiting for the index build" and report.files_added == ("new.txt",)
    assert len(assistant.documents()) == N_FILES + 1 and not assistant.needs_indexing()


def test_another_ingest_between_batches_is_not_undone(settings: Settings) -> None:
    """`rag ingest` in a terminal while the app builds: the build plans the rest again."""
    assistant = Assistant(settings, HashEmbedder(64))
    other = Assistant(settings, HashEmbedder(64))
    done = []

    def meanwhile(state: Indexing) -> None:
        if state.commits == 1:
            (settings.corpus_dir / "doc10.txt").unlink()
            done.append(other.ingest())

    report = StagedIngest(assistant.indexer, on_commit=meanwhile).run()
    assert len(done[0].files_added) == N_FILES - 4  # the rest, in one commit
    assert "doc10.txt" not in folder.read_manifest(settings.index_dir)["files"]
    assert len(assistant.documents()) == N_FILES - 1 and not assistant.needs_indexing()
    assert report.files_added == ("doc00.txt", "doc01.txt", "doc02.txt")


def test_the_app_answers_over_http_before_the_build_is_done(settings: Settings) -> None:
    from gradio_client import Client

    from rag.app.ui import build_app, launch
    from tests.conftest import free_port

    embedder = GatedEmbedder(wait_on=1)
    assistant = Assistant(settings, embedder)
    worker = threading.Thread(target=assistant.ingest_staged)
    worker.start()
    app = build_app(assistant)
    port = free_port()
    launch(app, "127.0.0.1", port, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        assert embedder.waiting.wait(10)
        with pytest.raises(Exception, match="index is being built"):
            client.predict("t01x audit", [], [], "", api_name="/ask")
        embedder.next_wait(2)
        assert embedder.waiting.wait(10)
        answer = client.predict("t01x audit", [], [], "", api_name="/ask")
        assert answer["citations"][0]["doc_id"] == "doc01"
        assert "Indexing is still running" in answer["note"]
    finally:
        embedder.go.set()
        worker.join(20)
        app.close()


def test_a_qdrant_collection_is_built_in_batches_and_resumed_too(
    settings: Settings, tmp_path: Path
) -> None:
    qdrant = settings.with_(store="qdrant", qdrant_path=tmp_path / "qdrant")
    with pytest.raises(RuntimeError, match="on purpose"):
        Assistant(qdrant, GatedEmbedder(fail_on=2)).ingest_staged()
    embedder = GatedEmbedder()
    assistant = Assistant(qdrant, embedder)
    assert len(assistant.documents()) == 3 and assistant.needs_indexing()
    assert assistant.search("t02x", k=1).hits[0].doc_id == "doc02"
    report = assistant.ingest_staged()
    assert len(report.files_added) == N_FILES - 3 and report.documents == N_FILES
    assert embedder.embedded == (SENTENCES + 1) * (N_FILES - 3) and not assistant.needs_indexing()
    assert assistant.search("t17x", k=1).hits[0].doc_id == "doc17"
