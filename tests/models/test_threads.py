"""Thread settings for single queries: torch on QUERY_THREADS inside, restored after; FAISS
searches on SEARCH_THREADS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faiss
import numpy as np
import torch

from rag.index.faiss import vectors
from rag.index.faiss.vectors import IndexSpec
from rag.models import embeddings
from rag.models.embeddings import SentenceTransformerEmbedder


class FakeModel:
    """Records torch's thread count at each encode call."""

    def __init__(self) -> None:
        self.prompts = {"query": "query: ", "passage": "passage: "}
        self.threads: list[int] = []

    def get_embedding_dimension(self) -> int:
        return 4

    def encode(self, texts: list[str], **kwargs: Any) -> np.ndarray:
        self.threads.append(torch.get_num_threads())
        return np.ones((len(texts), 4), dtype=np.float32) / 2


def _embedder(tmp_path: Path) -> tuple[SentenceTransformerEmbedder, FakeModel]:
    emb = SentenceTransformerEmbedder("fake", cache_dir=tmp_path)
    model = FakeModel()
    emb._model = model
    return emb, model


def test_a_single_query_runs_on_query_threads_and_restores_the_count(tmp_path: Path) -> None:
    emb, model = _embedder(tmp_path)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        emb.encode_queries(["one question"])
        assert model.threads == [embeddings.QUERY_THREADS]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_a_batch_of_queries_and_passages_keep_every_thread(tmp_path: Path) -> None:
    emb, model = _embedder(tmp_path)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        emb.encode_queries([f"q{i}" for i in range(10)])
        emb.encode_passages(["a passage"])
        assert model.threads == [2, 2]
    finally:
        torch.set_num_threads(before)


def test_faiss_search_runs_on_search_threads() -> None:
    x = np.eye(8, dtype=np.float32)
    index = vectors.build(8, IndexSpec("flat"), x, np.arange(8, dtype=np.int64))
    faiss.omp_set_num_threads(2)
    _, ids = vectors.search(index, x[3], 1)
    assert ids.tolist() == [3]
    assert faiss.omp_get_max_threads() == vectors.SEARCH_THREADS
