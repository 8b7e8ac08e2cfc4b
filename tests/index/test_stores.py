"""The Qdrant store (qdrant-client local mode, no server) against the FAISS folder, fake embedder.

The store-agnostic ingest, filter and retrieval tests of ``test_ingest.py`` and
``test_retrieval_logic.py`` run here again with the Qdrant store (the ``assistant`` and
``fake_assistant`` fixtures below replace theirs); the parity tests build both stores over one
corpus and compare hits, answers and CLI output.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from rag.app.cli import main
from rag.config import Settings
from rag.index.base import IndexError_
from rag.index.copy import copy_index
from rag.index.qdrant.backend import QdrantBackend
from rag.index.qdrant.collection import date_num, to_filter
from rag.index.qdrant.store import QdrantStore
from rag.models.embeddings import HashEmbedder
from rag.search.fusion import Fusion
from rag.service import Assistant
from rag.types import Filters, Hit
from tests.search.test_retrieval_logic import (  # noqa: F401
    test_langchain_retriever_returns_documents_with_hit_metadata,
    test_per_document_cap,
)
from tests.service.test_ingest import (  # noqa: F401  (collected again with the Qdrant fixtures below)
    DOCS,
    CountingEmbedder,
    test_broken_file_is_skipped_and_rest_indexed,
    test_changed_added_removed_files,
    test_failed_ingest_keeps_previous_index,
    test_file_turning_bad_keeps_its_indexed_version,
    test_filters,
    test_index_from_another_model_is_refused,
    test_metadata_change_reindexes_that_file,
    test_missing_index_says_run_ingest,
    test_unchanged_corpus_embeds_nothing,
)
from tests.service.test_search_syntax import (  # noqa: F401  (again, on the Qdrant store)
    syntax_assistant,
    test_a_phrase_is_found_however_low_retrieval_ranks_it,
    test_exclusion_removes_the_passages_that_hold_it,
    test_field_filters_narrow_and_conflicts_are_reported,
    test_or_is_the_union_of_both_sides,
)

MORE = {
    "eu/act/article_005.txt": "Article 5 prohibits social scoring and manipulative AI practices. "
    "Real-time remote biometric identification in public spaces is banned with exceptions.",
    "eu/act/article_099.txt": "Penalties: fines up to 35 million euro or 7% of turnover for "
    "prohibited AI practices under Article 5.",
    "g7.txt": "The G7 leaders launched the Hiroshima AI process in 2023.\n\nThe OECD and GPAI "
    "support the Hiroshima process with a code of conduct for advanced AI systems.",
}
QUERIES = ["social scoring", "Kinas ambassad London", "G7 Hiroshima process", "fines Article 5",
           "AI governance rules", "biometric identification", "kunstmatige intelligentie"]  # fmt: skip
FILTERS = [Filters(), Filters(langs=("en",)), Filters(docs=("eu",)), Filters(docs=("eu/act/",)),
           Filters(sources=("daily",)), Filters(jurisdictions=("eu",)), Filters(date_from="2024-01"),
           Filters(jurisdictions=("US",)), Filters(types=("news", "regulation")),
           Filters(date_to="2023"), Filters(langs=("sv", "nl"), date_from="2023")]  # fmt: skip


def _qdrant_settings(corpus: Path, tmp_path: Path, **more: object) -> Settings:
    return Settings(
        corpus_dir=corpus, model="hash:64", cache_dir=tmp_path / "c", store="qdrant",
        qdrant_path=tmp_path / "qdrant", **more,  # type: ignore[arg-type]
    )  # fmt: skip


@pytest.fixture
def assistant(corpus: Path, tmp_path: Path) -> Assistant:
    """``test_ingest``'s fixture, on the Qdrant store."""
    return Assistant(_qdrant_settings(corpus, tmp_path), CountingEmbedder())


@pytest.fixture
def fake_assistant(tmp_path: Path) -> Callable[..., Assistant]:
    """conftest's fixture, on the Qdrant store."""

    def make(corpus: Path, **settings: object) -> Assistant:
        return Assistant(_qdrant_settings(corpus, tmp_path, **settings), HashEmbedder(64))

    return make


@pytest.fixture
def corpus(make_corpus: Callable[..., Path]) -> Path:
    return make_corpus(dict(DOCS))


@pytest.fixture
def pair(make_corpus: Callable[..., Path], tmp_path: Path) -> tuple[Assistant, Assistant]:
    """The same corpus ingested into a FAISS folder and into a Qdrant local-mode folder."""
    corpus = make_corpus({**DOCS, **MORE})
    faiss = Assistant(
        Settings(corpus_dir=corpus, index_dir=tmp_path / "index", model="hash:64",
                 cache_dir=tmp_path / "c"), HashEmbedder(64),
    )  # fmt: skip
    qdrant = Assistant(_qdrant_settings(corpus, tmp_path), HashEmbedder(64))
    assert faiss.ingest().chunks == qdrant.ingest().chunks > 5
    return faiss, qdrant


def assert_same_ranking(a: tuple[Hit, ...], b: tuple[Hit, ...]) -> None:
    """Same scores rank by rank, and the same chunks, except that chunks with equal scores may
    come in another order (the hash embedder makes ties; the stores break them differently)."""
    assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-4)
    if not a:
        return
    last = a[-1].score
    groups_a: dict[float, set[str]] = {}
    groups_b: dict[float, set[str]] = {}
    for hits, groups in ((a, groups_a), (b, groups_b)):
        for h in hits:
            if abs(h.score - last) > 1e-4:  # a tie at the cut-off may keep different chunks
                groups.setdefault(round(h.score, 3), set()).add(h.chunk_id)
    assert groups_a == groups_b
    for x, y in zip(a, b, strict=True):
        if x.chunk_id == y.chunk_id:
            assert x == y  # every field: text, offsets, metadata


@pytest.mark.parametrize("mode", ["dense", "hybrid"])
def test_both_stores_rank_alike(pair: tuple[Assistant, Assistant], mode: str) -> None:
    faiss, qdrant = pair
    for assistant in pair:
        assistant.fusion = Fusion(mode=mode)
    compared = 0
    for query in QUERIES:
        for filters in FILTERS:
            a = faiss.search(query, 6, filters).hits
            assert_same_ranking(a, qdrant.search(query, 6, filters).hits)
            compared += bool(a)
    assert compared > len(QUERIES) * 5


def test_both_stores_answer_alike(pair: tuple[Assistant, Assistant]) -> None:
    faiss, qdrant = pair
    for question in ["What are the fines for prohibited practices?", "Vad sa ambassaden?",
                     "What is the Hiroshima AI process?"]:  # fmt: skip
        a, b = faiss.ask(question), qdrant.ask(question)
        assert a.to_json() == b.to_json()
        assert a.citations or a.abstained
    assert faiss.documents() == qdrant.documents()
    doc = "eu/act/article_005"
    assert faiss.context(doc, 10, 30) == qdrant.context(doc, 10, 30)


def test_filter_translation_matches_the_sql_meaning() -> None:
    assert to_filter(Filters()) is None
    assert date_num("2023") == 20230000 and date_num("2023-05") == 20230500
    assert date_num("2023-05-07") == 20230507 and date_num("") is None
    assert date_num("May 2023") is None
    flt = to_filter(Filters(date_from="2023-05", date_to="2024"))
    assert flt is not None and flt.must is not None
    rng = flt.must[0].range  # type: ignore[union-attr]
    assert (rng.gte, rng.lt) == (20230500, 20250000)  # "2024-12-31" <= "2024" as a prefix


def test_prefix_filter_needs_a_path_boundary(
    make_corpus: Callable[..., Path], tmp_path: Path
) -> None:
    corpus = make_corpus(
        {"eu/a.txt": "AI rules for audits.", "eu_b.txt": "AI rules for audits too."}
    )
    qdrant = Assistant(_qdrant_settings(corpus, tmp_path), HashEmbedder(64))
    qdrant.ingest()
    got = {h.doc_id for h in qdrant.search("AI rules", 5, Filters(docs=("eu",))).hits}
    assert got == {"eu/a"}
    got = {h.doc_id for h in qdrant.search("AI rules", 5, Filters(docs=("eu/a",))).hits}
    assert got == {"eu/a"}


def test_the_collection_holds_every_kind_of_point(pair: tuple[Assistant, Assistant]) -> None:
    faiss, qdrant = pair
    manifest = qdrant.backend.manifest()
    assert manifest["store"] == "qdrant" and manifest["model"] == {"name": "hash:64", "dim": 64}
    assert manifest["index_settings"] == faiss.index_settings()
    f = faiss.backend.manifest()["counts"]
    assert manifest["counts"] == {k: f[k] for k in ("files", "documents", "chunks", "sentences")}
    assert manifest["lexical"]["avglen"] > 1


def test_engine_side_rrf_fuses_both_vectors(pair: tuple[Assistant, Assistant]) -> None:
    _, qdrant = pair
    index = qdrant.retriever.index
    assert isinstance(index, QdrantStore)
    vec = qdrant.embedder.encode_queries(["fines turnover"])[0]
    ranked = index.hybrid_rrf("fines turnover", "en", vec, 5, Filters())
    chunks = index.chunks(r for r, _ in ranked)
    assert chunks[ranked[0][0]].doc_id == "eu/act/article_099"
    assert all(b <= a for (_, a), (_, b) in itertools.pairwise(ranked))
    only_sv = index.hybrid_rrf("fines turnover", "en", vec, 5, Filters(langs=("sv",)))
    assert {index.chunks([r])[r].doc_id for r, _ in only_sv} == {"sv"}


def test_copy_of_a_faiss_index_ranks_alike(
    pair: tuple[Assistant, Assistant], tmp_path: Path
) -> None:
    faiss, _ = pair
    settings = faiss.settings.with_(store="qdrant", qdrant_path=tmp_path / "copy")
    manifest = copy_index(faiss.settings.index_dir, QdrantBackend.from_settings(settings))
    assert manifest["counts"]["chunks"] == faiss.backend.manifest()["counts"]["chunks"]
    copied = Assistant(settings, HashEmbedder(64))
    for query in QUERIES:
        assert_same_ranking(faiss.search(query, 6).hits, copied.search(query, 6).hits)


def test_settings_select_the_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs exactly one of --qdrant-url URL"):
        Settings(store="qdrant")
    with pytest.raises(ValueError, match="store must be 'faiss' or 'qdrant', got 'milvus'"):
        Settings(store="milvus")
    with pytest.raises(ValueError, match="use --store qdrant"):
        Settings(qdrant_url="http://localhost:6333")
    monkeypatch.setenv("RAG_QDRANT_PATH", str(tmp_path / "q"))
    s = Settings.from_env()
    assert s.store == "qdrant" and s.qdrant_path == tmp_path / "q"
    monkeypatch.setenv("RAG_QDRANT_ON_DISK", "maybe")
    with pytest.raises(ValueError, match="RAG_QDRANT_ON_DISK='maybe' is not a valid flag"):
        Settings.from_env()


def _cli(args: list[str], tmp_path: Path, corpus: Path) -> dict:
    env = {"RAG_MODEL": "hash:64", "RAG_CACHE_DIR": str(tmp_path / "c"),
           "RAG_CORPUS_DIR": str(corpus), "RAG_INDEX_DIR": str(tmp_path / "index")}  # fmt: skip
    out = CliRunner().invoke(main, [*args, "--json"], env=env)
    assert out.exit_code == 0, out.output
    return json.loads(out.stdout)


def test_cli_on_qdrant_local_mode_matches_faiss(
    make_corpus: Callable[..., Path], tmp_path: Path
) -> None:
    corpus = make_corpus({**DOCS, **MORE})
    flags = ["--store", "qdrant", "--qdrant-path", str(tmp_path / "qdrant")]
    report = _cli(["ingest", *flags], tmp_path, corpus)
    assert report["chunks"] > 5 and len(report["files_added"]) == 6
    assert not (tmp_path / "index").exists()  # the FAISS folder is not touched
    assert _cli(["ingest", *flags], tmp_path, corpus)["chunks_embedded"] == 0
    assert _cli(["ingest"], tmp_path, corpus)["chunks"] == report["chunks"]
    for cmd in (["search", "G7 Hiroshima"], ["search", "fines", "--doc", "eu"],
                ["ask", "What are the fines under Article 5?"]):  # fmt: skip
        assert _cli([*cmd, *flags], tmp_path, corpus) == _cli(cmd, tmp_path, corpus)


def test_cli_eval_builds_a_temporary_qdrant_index(tmp_path: Path) -> None:
    data = tmp_path / "beir"
    data.mkdir()
    (data / "corpus.en.jsonl").write_text(
        '{"_id": "p1", "text": "Cats sleep most of the day."}\n'
        '{"_id": "p2", "text": "Rockets need fuel and oxygen."}\n'
    )
    (data / "queries.en.jsonl").write_text('{"_id": "q1", "text": "what do rockets need"}\n')
    (data / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tp2\t1\n")
    flags = ["--qdrant-path", str(tmp_path / "qdrant")]
    got = _cli(["eval", "--data", str(data), "--queries-lang", "en", "--corpus-lang", "en", *flags],
               tmp_path, tmp_path)  # fmt: skip
    assert got["recall@1"] == 1.0 and got["n"] == 1


def test_interrupted_qdrant_ingest_leaves_the_collection(
    assistant: Assistant, corpus: Path
) -> None:
    assistant.ingest()
    (corpus / "en.txt").write_text("Rewritten: nothing about scoring.", encoding="utf-8")
    writer = assistant.backend.writer(model="hash:64", dim=64, rebuild=False)
    writer.remove_file("en.txt")
    writer.abort()  # buffered: nothing reached the collection
    fresh = Assistant(assistant.settings, HashEmbedder(64))
    assert fresh.search("social scoring", k=1).hits[0].doc_id == "en"
    assert assistant.ingest().files_changed == ("en.txt",)


def test_damaged_manifest_says_rebuild(assistant: Assistant) -> None:
    assistant.ingest()
    backend = assistant.backend
    assert isinstance(backend, QdrantBackend)
    client, _ = backend.connection()
    from rag.index.qdrant.collection import MANIFEST_ID

    client.set_payload(backend.collection, {"json": "{not json"}, points=[MANIFEST_ID])
    with pytest.raises(IndexError_, match=r"damaged.*rag ingest --rebuild"):
        Assistant(assistant.settings, HashEmbedder(64)).search("x")


def test_the_app_serves_a_qdrant_index_like_a_faiss_one(pair: tuple[Assistant, Assistant]) -> None:
    """`rag serve --qdrant-path …`: the app's /search and /ask over Qdrant match FAISS."""
    from gradio_client import Client

    from rag.app.ui import build_app, launch
    from tests.conftest import free_port

    results = []
    for assistant in pair:
        app = build_app(assistant)
        port = free_port()
        launch(app, "127.0.0.1", port, prevent_thread_lock=True, quiet=True)
        try:
            client = Client(f"http://127.0.0.1:{port}/", verbose=False)
            hits = client.predict("G7 Hiroshima process", 3, [], api_name="/search")["hits"]
            answer = client.predict("fines Article 5", [], [], "", api_name="/ask")
        finally:
            app.close()
        results.append((hits, answer))
    (faiss_hits, faiss_answer), (qdrant_hits, qdrant_answer) = results
    assert faiss_hits and [h["chunk_id"] for h in faiss_hits] == [
        h["chunk_id"] for h in qdrant_hits
    ]
    assert faiss_answer["answer"] == qdrant_answer["answer"]
    assert faiss_answer["citations"] == qdrant_answer["citations"]


SYNTAX_QUERIES = ['"social scoring"', "AI rules -Hiroshima", '"Article 5" OR G7 process',
                  "AI lang:en date:2023..2024", "rules jurisdiction:EU -fines", '"AI" type:news']  # fmt: skip


def test_both_stores_answer_the_search_syntax_alike(pair: tuple[Assistant, Assistant]) -> None:
    faiss, qdrant = pair
    for query in SYNTAX_QUERIES:
        a = faiss.search(query, 6).hits
        b = qdrant.search(query, 6).hits
        assert {h.chunk_id for h in a} == {h.chunk_id for h in b}, query
