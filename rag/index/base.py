"""The store protocol the retriever and the ingest pipeline use, and the values that cross it.

Two stores hold the same index: the embedded FAISS index folder (``faiss/``, the default) and a
Qdrant collection (``qdrant/``, for archives that outgrow one machine); ``backends.py`` picks one
from the settings. This module imports neither. A store answers the three candidate searches of
hybrid retrieval (chunk vectors, sentence vectors, BM25) under the
filters, and gives back chunks, documents, sentence spans and stored vectors by row id. Fusion,
per-document caps, answers and the UI sit above it and do not know which store they talk to.

Not done here: fusion (``rag/search``), embedding or chunking (``rag/service/indexing.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from rag.types import Chunk, Document, Filters


class IndexError_(Exception):
    """The index folder is missing, from another model/schema, or damaged. Message says the fix."""


@dataclass(frozen=True)
class FileBatch:
    """Everything one source file adds to the index.

    ``sentences`` are ``(doc_id, start, end)`` spans in the document text; ``chunk_sentences[i]``
    lists the positions in ``sentences`` of the sentences inside ``chunks[i]``.
    """

    rel: str
    fingerprint: str
    docs: Sequence[Document]
    chunks: Sequence[Chunk]
    chunk_vectors: np.ndarray
    terms: Sequence[str]
    sentences: Sequence[tuple[str, int, int]]
    sentence_vectors: np.ndarray
    chunk_sentences: Sequence[Sequence[int]]

    def __post_init__(self) -> None:
        n = len(self.chunks)
        if not n == len(self.chunk_vectors) == len(self.terms) == len(self.chunk_sentences):
            raise ValueError(f"{self.rel}: chunk, vector, term and sentence-map counts differ")
        if len(self.sentences) != len(self.sentence_vectors):
            raise ValueError(f"{self.rel}: {len(self.sentences)} sentences but "
                             f"{len(self.sentence_vectors)} sentence vectors")  # fmt: skip


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
        *, hybrid: bool, terms: Mapping[str, float] | None = None,
        lexical: Mapping[int, float] | None = None,
    ) -> Candidates:  # fmt: skip
        """Dense, BM25 and sentence candidates. BM25 uses ``terms`` (term → weight, e.g. with
        dictionary translations) when given, else the query's own terms; ``lexical``: BM25
        candidates already found by :meth:`lexical_candidates` (not searched again)."""
        ...

    def lexical_candidates(
        self, query: str, query_lang: str, n: int, filters: Filters,
        terms: Mapping[str, float] | None = None,
    ) -> dict[int, float]:  # fmt: skip
        """The BM25 part of :meth:`candidates` alone (it needs no query vector, so it can run
        while the query is encoded)."""
        ...

    def rows_for(self, filters: Filters) -> np.ndarray:
        """Every chunk row the filters allow (all rows without filters), for the query syntax's
        exact phrase scan."""
        ...

    def vectors_of(self, rows: Sequence[int], *, sentences: bool = False) -> np.ndarray: ...

    def sentences_in(self, chunk_rows: Iterable[int]) -> dict[int, list[tuple[int, int, int]]]: ...

    def sentence_rows(self, chunk_rows: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """``(owner, sentence row)`` arrays: every sentence of the chunks, ``owner`` its chunk's
        position in ``chunk_rows`` (what ranking needs, without spans)."""
        ...

    def lang_of(self, rows: np.ndarray) -> list[str]: ...

    def chunks(self, rows: Iterable[int]) -> dict[int, Chunk]: ...

    def doc_of(self, rows: Iterable[int]) -> dict[int, str]:
        """Chunk row → document id, without the texts (the per-document cap needs only this)."""
        ...

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

    def add_file(self, batch: FileBatch) -> None: ...

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

    def verify(self, manifest: dict[str, Any]) -> None:
        """The stored data matches the manifest, or IndexError_ (the FAISS folder's checksums)."""
        ...

    def stamp(self) -> int | None:
        """Changes whenever a writer of any process commits; None: nothing to compare (a Qdrant
        collection is read live, so a reader never holds an old version)."""
        ...

    def writer(self, *, model: str, dim: int, rebuild: bool) -> Writer: ...

    def reader(self, *, model: str) -> Store: ...

    def drop(self) -> None: ...
