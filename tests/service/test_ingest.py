"""Index lifecycle with the fake embedder: incremental updates, crash safety, mismatches, filters."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from rag.config import Settings
from rag.index.base import IndexError_
from rag.index.faiss import folder
from rag.models.embeddings import HashEmbedder
from rag.service import Assistant
from rag.service.indexing import MAX_TITLE_CHARS, with_title
from rag.types import Filters

DOCS = {
    "en.txt": "The European Union adopted the AI Act. It bans social scoring by public authorities.",
    "sv.txt": "Kinas ambassad i London sa att Kina stöder diskussioner om AI-styrning och normer.",
    "nl.txt": "De EU lobbyt bij Aziatische landen om haar regels voor kunstmatige intelligentie te volgen.",
    "catalog.jsonl": "\n".join(json.dumps(x) for x in [
        {"path": "en.txt", "title": "AI Act", "date": "2024-06-13", "jurisdiction": "EU",
         "source": "EUR-Lex", "type": "Regulation"},
        {"path": "sv.txt", "title": "Ambassad", "date": "2024-01-11", "source": "DailyAI",
         "jurisdiction": "us-co", "type": "news"},
        {"path": "nl.txt", "title": "Lobby", "date": "2023", "country": "EU", "source": "Reuters"},
    ]),
}  # fmt: skip


class CountingEmbedder(HashEmbedder):
    """Counts how many passages were embedded; can be told to fail."""

    def __init__(self) -> None:
        super().__init__(64)
        self.embedded = 0
        self.fail = False
        self.texts: list[str] = []

    def encode_passages(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        if self.fail:
            raise RuntimeError("embedding failed on purpose")
        self.embedded += len(texts)
        self.texts.extend(texts)
        return super().encode_passages(texts, progress)


@pytest.fixture
def corpus(make_corpus: Callable[..., Path]) -> Path:
    return make_corpus(dict(DOCS))


@pytest.fixture
def assistant(corpus: Path, tmp_path: Path) -> Assistant:
    settings = Settings(
        corpus_dir=corpus, index_dir=tmp_path / "index", model="hash:64", cache_dir=tmp_path / "c"
    )
    return Assistant(settings, CountingEmbedder())


def test_first_ingest_indexes_everything(assistant: Assistant) -> None:
    report = assistant.ingest()
    assert report.documents == 3 and report.chunks == 3
    assert sorted(report.files_added) == ["en.txt", "nl.txt", "sv.txt"]
    manifest = folder.read_manifest(assistant.settings.index_dir)
    assert manifest["model"] == {"name": "hash:64", "dim": 64}
    assert manifest["schema_version"] == folder.SCHEMA_VERSION
    assert set(manifest["files"]) == {"en.txt", "nl.txt", "sv.txt"}
    assert (
        manifest["index_settings"]["max_tokens"] == 200
        and manifest["index_settings"]["overlap_tokens"] == 40
    )
    assert (assistant.settings.index_dir / "README.md").exists()


def test_unchanged_corpus_embeds_nothing(assistant: Assistant) -> None:
    assistant.ingest()
    embedder = assistant.embedder
    assert isinstance(embedder, CountingEmbedder)
    before = embedder.embedded
    report = assistant.ingest()
    assert (
        embedder.embedded == before and report.chunks_embedded == 0 and report.files_unchanged == 3
    )


def test_changed_added_removed_files(assistant: Assistant, corpus: Path) -> None:
    assistant.ingest()
    (corpus / "en.txt").write_text(
        "The AI Act entered into force in August 2024.", encoding="utf-8"
    )
    (corpus / "nl.txt").unlink()
    (corpus / "de.txt").write_text(
        "Die EU verabschiedet Regeln für künstliche Intelligenz.", encoding="utf-8"
    )
    report = assistant.ingest()
    assert report.files_changed == ("en.txt",) and report.files_removed == ("nl.txt",)
    assert report.files_added == ("de.txt",) and report.chunks_embedded == 2
    hits = assistant.search("entered into force August", k=3).hits
    assert hits[0].doc_id == "en" and "August 2024" in hits[0].text
    assert all(h.doc_id != "nl" for h in assistant.search("lobbyt Aziatische", k=3).hits)


def test_metadata_change_reindexes_that_file(assistant: Assistant, corpus: Path) -> None:
    assistant.ingest()
    (corpus / "sv.txt.meta.json").write_text('{"country": "CN"}', encoding="utf-8")
    report = assistant.ingest()
    assert report.files_changed == ("sv.txt",)
    assert (
        assistant.search("ambassad", k=1, filters=Filters(jurisdictions=("CN",))).hits[0].doc_id
        == "sv"
    )


def test_failed_ingest_keeps_previous_index(assistant: Assistant, corpus: Path) -> None:
    assistant.ingest()
    before = assistant.search("social scoring", k=3).to_json()
    (corpus / "new.txt").write_text(
        "A new document about AI audits and their results.", encoding="utf-8"
    )
    embedder = assistant.embedder
    assert isinstance(embedder, CountingEmbedder)
    embedder.fail = True
    with pytest.raises(RuntimeError, match="on purpose"):
        assistant.ingest()
    assert assistant.search("social scoring", k=3).to_json() == before
    assert not list(assistant.settings.index_dir.parent.glob(".index.tmp-*"))
    embedder.fail = False
    assert assistant.ingest().files_added == ("new.txt",)


def test_broken_file_is_skipped_and_rest_indexed(assistant: Assistant, corpus: Path) -> None:
    (corpus / "junk.txt").write_bytes(bytes(range(256)) * 10)
    (corpus / "empty.txt").write_bytes(b"")
    report = assistant.ingest()
    assert report.documents == 3
    reasons = {s.path: s.reason for s in report.skipped}
    assert "binary" in reasons["junk.txt"] and "empty" in reasons["empty.txt"]


def test_file_turning_bad_keeps_its_indexed_version(assistant: Assistant, corpus: Path) -> None:
    assistant.ingest()
    (corpus / "sv.txt").write_bytes(b"\x00\x01\x02" * 100)
    report = assistant.ingest()
    assert "previously indexed version is kept" in report.skipped[0].reason
    assert report.documents == 3


def test_index_from_another_model_is_refused(assistant: Assistant) -> None:
    assistant.ingest()
    other = Assistant(assistant.settings.with_(model="hash:32"), HashEmbedder(32))
    with pytest.raises(IndexError_, match=r"built with model 'hash:64'.*rag ingest --rebuild"):
        other.search("anything")
    with pytest.raises(IndexError_, match="rag ingest --rebuild"):
        other.ingest()
    assert other.ingest(rebuild=True).documents == 3


def test_missing_index_says_run_ingest(assistant: Assistant) -> None:
    with pytest.raises(IndexError_, match="run `rag ingest` first"):
        assistant.search("anything")


def test_tampered_index_is_detected(assistant: Assistant) -> None:
    assistant.ingest()
    vectors = assistant.settings.index_dir / folder.VECTORS
    data = bytearray(vectors.read_bytes())
    data[-5] ^= 0xFF
    vectors.write_bytes(bytes(data))
    fresh = Assistant(assistant.settings, HashEmbedder(64))
    with pytest.raises(IndexError_, match="checksum"):
        fresh.search("anything")


def test_interrupted_swap_is_recovered(assistant: Assistant) -> None:
    assistant.ingest()
    index_dir = assistant.settings.index_dir
    index_dir.rename(index_dir.with_name("index.old"))  # as if killed between the two renames
    fresh = Assistant(assistant.settings, HashEmbedder(64))
    assert fresh.search("social scoring", k=1).hits[0].doc_id == "en"


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (Filters(langs=("sv",)), {"sv"}),
        (Filters(jurisdictions=("eu",)), {"en", "nl"}),  # nl.txt: the old "country" key
        (Filters(jurisdictions=("US",)), {"sv"}),  # a country matches its subdivisions
        (Filters(jurisdictions=("US-CO", "EU")), {"en", "nl", "sv"}),
        (Filters(jurisdictions=("US-CA",)), set()),
        (Filters(types=("regulation",)), {"en"}),
        (Filters(types=("news",), jurisdictions=("EU",)), set()),
        (Filters(docs=("nl",)), {"nl"}),
        (Filters(sources=("reut",)), {"nl"}),
        (Filters(date_from="2024"), {"en", "sv"}),
        (Filters(date_to="2023-12-31"), {"nl"}),
        (Filters(date_from="2024-01-01", date_to="2024-03"), {"sv"}),
        (Filters(langs=("fr",)), set()),
    ],
)
def test_filters(assistant: Assistant, filters: Filters, expected: set[str]) -> None:
    assistant.ingest()
    hits = assistant.search("AI", k=10, filters=filters).hits
    assert {h.doc_id for h in hits} == expected


def test_filters_reject_bad_dates() -> None:
    with pytest.raises(ValueError, match="date_from must be YYYY"):
        Filters(date_from="last week")


def test_title_goes_into_vectors_not_into_text(assistant: Assistant) -> None:
    embedder = assistant.embedder
    assert isinstance(embedder, CountingEmbedder)
    assistant.ingest()
    body = DOCS["en.txt"]
    # The chunk and each of its sentences are embedded with the document title in front ...
    assert f"AI Act\n\n{body}" in embedder.texts
    assert "AI Act\n\nIt bans social scoring by public authorities." in embedder.texts
    assert body not in embedder.texts
    # ... while the stored text, offsets and search hits stay the document's own words.
    hit = assistant.search("social scoring", k=3).hits
    en = next(h for h in hit if h.doc_id.startswith("en"))
    assert en.text == body and (en.start, en.end) == (0, len(body))
    assert folder.read_manifest(assistant.settings.index_dir)["index_settings"]["title_context"]


def test_switching_title_context_re_embeds_everything(assistant: Assistant) -> None:
    on = assistant.ingest()
    embedder = assistant.embedder
    assert isinstance(embedder, CountingEmbedder)
    first = len(embedder.texts)
    off = Assistant(assistant.settings.with_(title_context=False), embedder)
    report = off.ingest()
    assert (
        (report.chunks_embedded, report.sentences_embedded)
        == (3, 4)
        == (on.chunks_embedded, on.sentences_embedded)
    )
    assert DOCS["en.txt"] in embedder.texts[first:]
    assert not any(t.startswith(("AI Act\n", "Lobby\n")) for t in embedder.texts[first:])


def test_with_title_edge_cases() -> None:
    assert with_title("", "Body.") == "Body."
    assert with_title("AI Act", "AI Act\n\nArticle 1") == "AI Act\n\nArticle 1"
    assert with_title("  A\n title  ", "Body.") == "A title\n\nBody."
    long = "word " * 100
    assert with_title(long, "Body.") == long.strip()[:MAX_TITLE_CHARS] + "\n\nBody."


def test_settings_validate() -> None:
    with pytest.raises(ValueError, match=r"chunk_tokens must be in 16\.\.510, got 600"):
        Settings(chunk_tokens=600)
    with pytest.raises(ValueError, match="top_k must be > 0, got 0"):
        Settings(top_k=0)


def test_settings_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RAG_INDEX_DIR", str(tmp_path / "i"))
    monkeypatch.setenv("RAG_MODEL", "hash:16")
    monkeypatch.setenv("RAG_TOP_K", "7")
    s = Settings.from_env(corpus_dir=tmp_path / "c")
    assert (s.index_dir, s.model, s.top_k, s.corpus_dir) == (
        tmp_path / "i",
        "hash:16",
        7,
        tmp_path / "c",
    )
    monkeypatch.setenv("RAG_TITLE_CONTEXT", "0")
    assert Settings.from_env().title_context is False
    monkeypatch.setenv("RAG_TOP_K", "many")
    with pytest.raises(ValueError, match="RAG_TOP_K='many'"):
        Settings.from_env()


def test_reader_loading_across_a_swap_loads_the_new_index(
    assistant: Assistant, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit that replaces the folder while a reader checks its files is not damage: the
    reader loads again (the app reloads while a re-index commits)."""
    assistant.ingest()
    index_dir = assistant.settings.index_dir
    real_verify = folder.verify_files
    calls = []

    def verify_during_a_commit(where: Path, manifest: dict) -> None:
        calls.append(manifest["counts"]["chunks"])
        if len(calls) == 1:  # another process commits between our manifest read and file check
            (corpus / "new.txt").write_text("A new file about audit rules for AI.", "utf-8")
            assistant.ingest()
        real_verify(where, manifest)

    monkeypatch.setattr(folder, "verify_files", verify_during_a_commit)
    reader = folder.IndexReader(index_dir, model=assistant.embedder.name)
    assert calls[-1] == calls[0] + 1  # the retry checked the new index (one more chunk)
    assert reader.manifest == folder.read_manifest(index_dir) and reader.size == calls[-1]
    reader.close()
    # Damage is still damage: no retry hides a checksum mismatch of an unchanged manifest.
    monkeypatch.setattr(folder, "verify_files", real_verify)
    (index_dir / "vectors.faiss").write_bytes(b"broken")
    with pytest.raises(IndexError_, match="does not match its checksum"):
        folder.IndexReader(index_dir, model=assistant.embedder.name)


def test_index_from_other_settings_is_refused_and_rebuilt_by_serve(
    assistant: Assistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An index built with other chunking settings (or by an older version) is not searched with
    the new ones; `rag serve` (`python app.py`) rebuilds it from the corpus on start."""
    from click.testing import CliRunner

    from rag.app import ui
    from rag.app.cli import main

    assistant.ingest()
    other = Assistant(assistant.settings.with_(chunk_tokens=96), HashEmbedder(64))
    assert other.has_index() and not other.index_is_current()
    with pytest.raises(IndexError_, match="run `rag ingest` to rebuild"):
        other.search("anything")
    launched: list[object] = []
    monkeypatch.setattr(ui, "launch", lambda app, host, port, **kw: launched.append(app))
    s = assistant.settings
    result = CliRunner().invoke(
        main,
        ["serve", "--corpus", str(s.corpus_dir), "--index", str(s.index_dir), "--model", "hash:64"],
        env={"RAG_CHUNK_TOKENS": "96", "RAG_CACHE_DIR": str(s.cache_dir)},
    )
    assert result.exit_code == 0, result.output
    assert "was built with other chunking settings: rebuilding it from" in result.output
    assert launched, "the app was not started"
    for thread in threading.enumerate():  # the app started at once; the rebuild runs behind it
        if thread.name == "govrag-indexing":
            thread.join(60)
    fresh = Assistant(assistant.settings.with_(chunk_tokens=96), HashEmbedder(64))
    assert fresh.index_is_current() and fresh.search("social scoring", k=1).hits
    assert folder.read_manifest(s.index_dir)["counts"]["documents"] == 3
