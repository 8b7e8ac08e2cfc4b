"""The index-type policy: flat below the threshold, IVF above, and the IVF index doing what the
flat one does for the store (ids, reconstruct, remove, filters, manifest)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from rag.config import Settings
from rag.index.faiss import folder, vectors
from rag.index.faiss.vectors import IndexSpec, index_spec
from rag.models.embeddings import HashEmbedder
from rag.service import Assistant
from rag.types import Filters


def _unit(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_index_spec_is_flat_up_to_the_threshold() -> None:
    assert index_spec(vectors.FLAT_MAX_VECTORS) == IndexSpec("flat")
    assert index_spec(0) == IndexSpec("flat")


def test_index_spec_above_threshold_is_ivf_with_sqrt_lists() -> None:
    assert index_spec(1_000_000) == IndexSpec("ivf", 1024, 32)
    assert index_spec(2_380_000) == IndexSpec("ivf", 2048, 64)
    assert index_spec(300, flat_max=100) == IndexSpec("ivf", 16, 16)


@pytest.mark.parametrize("kind, nlist, nprobe", [("hnsw", 0, 0), ("ivf", 4, 8), ("ivf", 4, 0)])
def test_index_spec_rejects_bad_values(kind: str, nlist: int, nprobe: int) -> None:
    with pytest.raises(ValueError, match=kind if kind == "hnsw" else "nprobe"):
        IndexSpec(kind, nlist, nprobe)


def test_index_spec_json_round_trip() -> None:
    spec = IndexSpec("ivf", 64, 16)
    assert IndexSpec.from_json(spec.to_json()) == spec
    assert IndexSpec.from_json("flat-ip") is None  # manifests from before the policy


def test_ivf_probing_every_list_equals_exact_search() -> None:
    x = _unit(400)
    ids = np.arange(1000, 1400, dtype=np.int64)
    flat = vectors.build(16, IndexSpec("flat"), x, ids)
    ivf = vectors.build(16, IndexSpec("ivf", 8, 8), x, ids)
    for q in _unit(5, seed=1):
        assert vectors.search(ivf, q, 10)[1].tolist() == vectors.search(flat, q, 10)[1].tolist()
    assert np.allclose(ivf.reconstruct(1007), x[7])


def test_ivf_removes_ids_and_gives_back_its_contents() -> None:
    x = _unit(300)
    ivf = vectors.build(16, IndexSpec("ivf", 8, 2), x, np.arange(300, dtype=np.int64))
    ivf.remove_ids(np.array([0, 5], dtype=np.int64))
    vecs, ids = vectors.contents(ivf)
    assert sorted(ids.tolist()) == [i for i in range(300) if i not in (0, 5)]
    assert np.allclose(vecs[np.argsort(ids)], np.delete(x, [0, 5], axis=0))


def test_filtered_ivf_search_still_finds_k_allowed_vectors() -> None:
    x = _unit(300)
    ivf = vectors.build(16, IndexSpec("ivf", 16, 1), x, np.arange(300, dtype=np.int64))
    q = x[0]
    # The vectors least like the query sit in lists that one probe does not reach.
    allowed = np.sort(np.argsort(x @ q)[:5]).astype(np.int64)
    _scores, ids = vectors.search(ivf, q, 5, allowed)
    assert sorted(ids.tolist()) == allowed.tolist()


def test_conform_switches_type_with_size_and_keeps_every_vector() -> None:
    x = _unit(300)
    ids = np.arange(300, dtype=np.int64) * 3
    flat = vectors.build(16, IndexSpec("flat"), x, ids)
    ivf = vectors.conform(flat, 16, flat_max=100)
    assert vectors.spec_of(ivf) == IndexSpec("ivf", 16, 16)
    back = vectors.conform(ivf, 16, flat_max=1000)
    assert vectors.spec_of(back) == IndexSpec("flat")
    for index in (ivf, back):
        vecs, got = vectors.contents(index)
        assert sorted(got.tolist()) == ids.tolist()
        assert np.allclose(vecs[np.argsort(got)], x)
    assert vectors.conform(flat, 16, flat_max=1000) is flat


def test_store_records_the_policy_and_serves_an_ivf_index(
    make_corpus: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vectors, "FLAT_MAX_VECTORS", 10)
    words = [
        "ai",
        "act",
        "law",
        "rules",
        "china",
        "sweden",
        "data",
        "model",
        "risk",
        "court",
        "audit",
        "bank",
    ]
    files = {
        f"doc{i}.txt": ". ".join(f"Sentence {j} about {words[(i + j) % 12]} and {words[j % 12]} "
                                 f"number {i * 100 + j}" for j in range(12)) + "."
        for i in range(6)
    }  # fmt: skip
    corpus = make_corpus(files)
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", model="hash:64",
                        cache_dir=tmp_path / "c", chunk_tokens=32, chunk_overlap_tokens=4)  # fmt: skip
    assistant = Assistant(settings, HashEmbedder(64))
    report = assistant.ingest()
    manifest = json.loads((tmp_path / "index" / folder.MANIFEST).read_text())
    sentences = manifest["counts"]["sentences"]
    assert sentences > 10
    assert manifest["index_type"]["sentences"] == index_spec(sentences, flat_max=10).to_json()
    assert manifest["index_type"]["sentences"]["kind"] == "ivf"
    reader = assistant.retriever.index
    assert vectors.spec_of(reader.sentence_vectors) == index_spec(sentences, flat_max=10)

    query = "Sentence 4 about model and china number 304"  # a sentence of doc3
    hits = assistant.search(query, k=3).hits
    assert hits and hits[0].doc_id == "doc3"
    only = assistant.search(query, k=2, filters=Filters(docs=("doc5",))).hits
    assert [h.doc_id for h in only] == ["doc5", "doc5"]

    (corpus / "doc3.txt").unlink()  # incremental: removing from an IVF index
    again = assistant.ingest()
    assert again.files_removed == ("doc3.txt",)
    assert again.chunks < report.chunks
    reader = assistant.retriever.index
    assert reader.sentence_vectors.ntotal == json.loads(
        (tmp_path / "index" / folder.MANIFEST).read_text())["counts"]["sentences"]  # fmt: skip
    assert all(h.doc_id != "doc3" for h in assistant.search(query, k=5).hits)
