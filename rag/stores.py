"""The store protocol the retriever and the ingest pipeline use, and the FAISS implementation.

Two stores hold the same index: the embedded FAISS index folder (``store.py``, the default) and a
Qdrant collection (``qdrant_store.py``, for archives that outgrow one machine). A store answers the
three candidate searches of hybrid retrieval (chunk vectors, sentence vectors, BM25) under the
filters, and gives back chunks, documents, sentence spans and stored vectors by row id. Fusion,
per-document caps, answers and the UI sit above it and do not know which store they talk to.

Not done here: fusion (``retrieve.py``), embedding or chunking (``pipeline.py``).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from rag import store, vector_index
from rag.lexical import tokenize
from rag.types import Chunk, Document

if TYPE_CHECKING:
    import faiss

    from rag.config import Settings
    from rag.retrieve import Filters


@dataclass(frozen=True)
class Candidates:
    """What the store found for one query; the retriever fuses it.

    ``dense``: (chunk row, cosine) best first, at most n, filtered. ``lexical``: chunk row → BM25
    score of the n best-scoring chunks (zero scores left out), filtered. ``from_sentences``: the
    chunks holding the n sentences nearest to the query (searched without filters, then the chunks
    filtered). The last two are empty for a dense-only search.
    """

    dense: list[tuple[int, float]]
    lexical: dict[int, float] = field(default_factory=dict)
    from_sentences: list[int] = field(default_factory=list)


class Store(Protocol):
    """A loaded index, read-only, safe for concurrent searches."""

    manifest: dict[str, Any]

    @property
    def size(self) -> int: ...

    def candidates(
        self, query: str, query_lang: str, vec: np.ndarray, n: int, filters: Filters,
        *, hybrid: bool,
    ) -> Candidates: ...  # fmt: skip

    def vectors_of(self, rows: Sequence[int], *, sentences: bool = False) -> np.ndarray: ...

    def sentences_in(self, chunk_rows: Iterable[int]) -> dict[int, list[tuple[int, int, int]]]: ...

    def lang_of(self, rows: np.ndarray) -> list[str]: ...

    def chunks(self, rows: Iterable[int]) -> dict[int, Chunk]: ...

    def documents(
        self, doc_ids: Iterable[str], *, with_text: bool = False
    ) -> dict[str, Document]: ...

    def all_documents(self) -> list[tuple[Document, int]]: ...

    def close(self) -> None: ...


class Writer(Protocol):
    """Edits an index; nothing is visible to readers before :meth:`commit`."""

    def file_hashes(self) -> dict[str, str]: ...

    def remove_file(self, rel: str) -> int: ...

    def taken_doc_ids(self, doc_ids: Sequence[str]) -> dict[str, str]: ...

    def add_file(self, batch: store.FileBatch) -> None: ...

    def commit(self, extra: dict[str, Any]) -> dict[str, Any]: ...

    def abort(self) -> None: ...


class Backend(Protocol):
    """Where an index lives: opens readers and writers, reads the manifest, serialises writers."""

    @property
    def where(self) -> str:
        """For messages: a folder, or ``qdrant:<url or path>/<collection>``."""
        ...

    def exists(self) -> bool: ...

    def lock(self) -> AbstractContextManager[Any]: ...

    def manifest(self) -> dict[str, Any]: ...

    def check(self, manifest: dict[str, Any], model: str) -> None: ...

    def writer(self, *, model: str, dim: int, rebuild: bool) -> Writer: ...

    def reader(self, *, model: str) -> Store: ...

    def drop(self) -> None: ...


def backend_for(settings: Settings, *, temporary: Path | None = None) -> Backend:
    """The backend the settings select. ``temporary``: a scratch folder for a throw-away index
    (``rag eval --data``); for a Qdrant server a uniquely named collection is used instead."""
    if settings.store == "qdrant":
        from rag.qdrant_store import QdrantBackend

        return QdrantBackend.from_settings(settings, temporary=temporary)
    return FaissBackend(settings.index_dir if temporary is None else temporary / "index")


# --- FAISS -------------------------------------------------------------------------------------


@dataclass
class FaissBackend:
    index_dir: Path

    @property
    def where(self) -> str:
        return str(self.index_dir)

    def exists(self) -> bool:
        return store.exists(self.index_dir)

    def lock(self) -> AbstractContextManager[Any]:
        return store.lock_for(self.index_dir)

    def manifest(self) -> dict[str, Any]:
        store.recover(self.index_dir)
        return store.read_manifest(self.index_dir)

    def check(self, manifest: dict[str, Any], model: str) -> None:
        store.check_compatible(manifest, model, None, self.index_dir)

    def writer(self, *, model: str, dim: int, rebuild: bool) -> Writer:
        return store.IndexWriter(self.index_dir, model=model, dim=dim, rebuild=rebuild)

    def reader(self, *, model: str) -> Store:
        return FaissStore(store.IndexReader(self.index_dir, model=model, dim=None))

    def drop(self) -> None:
        shutil.rmtree(self.index_dir, ignore_errors=True)


class FaissStore:
    """The index folder as a :class:`Store`: FAISS search with id selectors for filters."""

    def __init__(self, reader: store.IndexReader) -> None:
        self.reader = reader
        self.manifest = reader.manifest
        self._filter_cache: dict[Filters, np.ndarray] = {}

    def __getattr__(self, name: str) -> Any:
        # Everything else of the folder reader (``vectors``, ``rows_where``, …) stays reachable,
        # for benchmarks and scripts written against ``IndexReader``.
        if name == "reader":
            raise AttributeError(name)
        return getattr(self.reader, name)

    @property
    def size(self) -> int:
        return self.reader.size

    def allowed_rows(self, filters: Filters) -> np.ndarray | None:
        if not filters.active:
            return None
        if filters not in self._filter_cache:
            cond, args = filters.sql()
            if len(self._filter_cache) > 256:
                self._filter_cache.clear()
            self._filter_cache[filters] = np.sort(self.reader.rows_where(cond, args))
        return self._filter_cache[filters]

    @staticmethod
    def _search(
        index: faiss.Index, vec: np.ndarray, k: int, allowed: np.ndarray | None
    ) -> list[tuple[int, float]]:
        """Flat or IVF (``vector_index.py`` picks the type by size), with the filter applied."""
        if index.ntotal == 0 or (allowed is not None and len(allowed) == 0):
            return []
        k = max(1, min(k, index.ntotal))
        scores, ids = vector_index.search(index, vec, k, allowed)
        return [(int(i), float(s)) for i, s in zip(ids, scores, strict=True) if i >= 0]

    def lexical(
        self, query: str, lang: str, k: int, allowed: np.ndarray | None
    ) -> dict[int, float]:
        """BM25 scores of the top-k chunks (row id → score), zero scores left out."""
        lex = self.reader.lexical
        scores = lex.scores(tokenize(query, lang))
        if allowed is not None:
            scores = np.where(np.isin(lex.rows, allowed), scores, 0.0)
        if not scores.size:
            return {}
        k = min(k, scores.size)
        top = np.argpartition(-scores, k - 1)[:k]
        return {int(lex.rows[i]): float(scores[i]) for i in top if scores[i] > 0}

    def candidates(
        self, query: str, query_lang: str, vec: np.ndarray, n: int, filters: Filters,
        *, hybrid: bool,
    ) -> Candidates:  # fmt: skip
        allowed = self.allowed_rows(filters)
        dense = self._search(self.reader.vectors, vec, n, allowed)
        if not hybrid:
            return Candidates(dense)
        lexical = self.lexical(query, query_lang, n, allowed)
        top_sents = self._search(self.reader.sentence_vectors, vec, n, None)
        from_sents = [
            c
            for cs in self.reader.chunks_of_sentences(r for r, _ in top_sents).values()
            for c in cs
        ]
        if allowed is not None:
            allowed_set = set(allowed.tolist())
            from_sents = [c for c in from_sents if c in allowed_set]
        return Candidates(dense, lexical, from_sents)

    def vectors_of(self, rows: Sequence[int], *, sentences: bool = False) -> np.ndarray:
        return self.reader.vectors_of(rows, sentences=sentences)

    def sentences_in(self, chunk_rows: Iterable[int]) -> dict[int, list[tuple[int, int, int]]]:
        return self.reader.sentences_in(chunk_rows)

    def lang_of(self, rows: np.ndarray) -> list[str]:
        return self.reader.lang_of(rows)

    def chunks(self, rows: Iterable[int]) -> dict[int, Chunk]:
        return self.reader.chunks(rows)

    def documents(self, doc_ids: Iterable[str], *, with_text: bool = False) -> dict[str, Document]:
        return self.reader.documents(doc_ids, with_text=with_text)

    def all_documents(self) -> list[tuple[Document, int]]:
        return self.reader.all_documents()

    def close(self) -> None:
        self.reader.close()
