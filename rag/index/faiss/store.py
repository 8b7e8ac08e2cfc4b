"""The FAISS index folder as a :class:`~rag.index.base.Store` and its :class:`Backend`.

Reading and writing the folder itself is ``folder.py`` and ``writer.py``; this module adapts them
to the protocol: candidate searches under filters (FAISS id selectors from an SQL condition on the
documents table), BM25 over the chunk terms, and rows → chunks, documents, sentences, vectors.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from rag.index.base import Candidates, Store, Writer
from rag.index.faiss import folder, vectors
from rag.index.faiss.writer import IndexWriter
from rag.index.lexical import tokenize
from rag.types import Chunk, Document, Filters


def filters_sql(filters: Filters) -> tuple[str, list[str]]:
    """The filters as an SQL condition on ``documents d`` and its arguments."""
    parts: list[str] = []
    args: list[str] = []
    if filters.langs:
        parts.append(f"d.lang IN ({','.join('?' * len(filters.langs))})")
        args += [x.lower() for x in filters.langs]
    if filters.jurisdictions:  # a code and its subdivisions: US matches US-CO
        parts.append(
            "(" + " OR ".join(["UPPER(d.jurisdiction) = ? OR UPPER(d.jurisdiction) LIKE ?"]
                              * len(filters.jurisdictions)) + ")"
        )  # fmt: skip
        for j in filters.jurisdictions:
            args += [j.upper(), j.upper() + "-%"]
    if filters.types:
        parts.append(f"LOWER(d.doc_type) IN ({','.join('?' * len(filters.types))})")
        args += [x.lower() for x in filters.types]
    if filters.docs:
        parts.append(
            "(" + " OR ".join(["d.doc_id = ? OR d.doc_id LIKE ?"] * len(filters.docs)) + ")"
        )
        for doc in filters.docs:
            args += [doc, doc.rstrip("/") + "/%"]
    if filters.sources:
        parts.append("(" + " OR ".join(["LOWER(d.source) LIKE ?"] * len(filters.sources)) + ")")
        args += [f"%{s.lower()}%" for s in filters.sources]
    if filters.date_from:
        parts.append("d.date != '' AND d.date >= ?")
        args.append(filters.date_from)
    if filters.date_to:
        parts.append("d.date != '' AND substr(d.date, 1, ?) <= ?")
        args += [str(len(filters.date_to)), filters.date_to]
    return (" AND ".join(parts) or "1"), args


@dataclass
class FaissBackend:
    index_dir: Path

    @property
    def where(self) -> str:
        return str(self.index_dir)

    def exists(self) -> bool:
        return folder.exists(self.index_dir)

    def lock(self) -> AbstractContextManager[Any]:
        return folder.lock_for(self.index_dir)

    def stamp(self) -> int | None:
        """Changes whenever an ingest (of any process) commits: the manifest's mtime."""
        try:
            return (self.index_dir / folder.MANIFEST).stat().st_mtime_ns
        except OSError:
            return None  # mid-swap or no index: keep what is loaded

    def verify(self, manifest: dict[str, Any]) -> None:
        """Every data file matches its checksum in ``manifest``, or IndexError_."""
        folder.verify_files(self.index_dir, manifest)

    def manifest(self) -> dict[str, Any]:
        folder.recover(self.index_dir)
        return folder.read_manifest(self.index_dir)

    def check(self, manifest: dict[str, Any], model: str) -> None:
        folder.check_compatible(manifest, model, None, self.index_dir)

    def writer(self, *, model: str, dim: int, rebuild: bool) -> Writer:
        return IndexWriter(self.index_dir, model=model, dim=dim, rebuild=rebuild)

    def reader(self, *, model: str) -> Store:
        return FaissStore(folder.IndexReader(self.index_dir, model=model, dim=None))

    def drop(self) -> None:
        shutil.rmtree(self.index_dir, ignore_errors=True)


class FaissStore:
    """The index folder as a :class:`Store`: FAISS search with id selectors for filters."""

    def __init__(self, reader: folder.IndexReader) -> None:
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
        got = self._filter_cache.get(filters)  # searches run on several threads: no check-then-get
        if got is None:
            cond, args = filters_sql(filters)
            got = np.sort(self.reader.rows_where(cond, args))
            if len(self._filter_cache) > 256:
                self._filter_cache.clear()
            self._filter_cache[filters] = got
        return got

    @staticmethod
    def _search(
        index: faiss.Index, vec: np.ndarray, k: int, allowed: np.ndarray | None
    ) -> list[tuple[int, float]]:
        """Flat or IVF (``vectors.py`` picks the type by size), with the filter applied."""
        if index.ntotal == 0 or (allowed is not None and len(allowed) == 0):
            return []
        k = max(1, min(k, index.ntotal))
        scores, ids = vectors.search(index, vec, k, allowed)
        return [(int(i), float(s)) for i, s in zip(ids, scores, strict=True) if i >= 0]

    def lexical(
        self, query: str, lang: str, k: int, allowed: np.ndarray | None,
        terms: Mapping[str, float] | None = None,
    ) -> dict[int, float]:  # fmt: skip
        """BM25 scores of the top-k chunks (row id → score), zero scores left out; ``terms``
        (weighted) replace the query's own terms when given."""
        lex = self.reader.lexical
        scores = lex.scores(tokenize(query, lang) if terms is None else terms)
        if allowed is not None:
            scores = np.where(np.isin(lex.rows, allowed), scores, 0.0)
        if not scores.size:
            return {}
        k = min(k, scores.size)
        top = np.argpartition(-scores, k - 1)[:k]
        return {int(lex.rows[i]): float(scores[i]) for i in top if scores[i] > 0}

    def lexical_candidates(
        self, query: str, query_lang: str, n: int, filters: Filters,
        terms: Mapping[str, float] | None = None,
    ) -> dict[int, float]:  # fmt: skip
        return self.lexical(query, query_lang, n, self.allowed_rows(filters), terms)

    def candidates(
        self, query: str, query_lang: str, vec: np.ndarray, n: int, filters: Filters,
        *, hybrid: bool, terms: Mapping[str, float] | None = None,
        lexical: Mapping[int, float] | None = None,
    ) -> Candidates:  # fmt: skip
        allowed = self.allowed_rows(filters)
        dense = self._search(self.reader.vectors, vec, n, allowed)
        if not hybrid:
            return Candidates(dense)
        if lexical is None:
            lexical = self.lexical(query, query_lang, n, allowed, terms)
        top_sents = self._search(self.reader.sentence_vectors, vec, n, None)
        from_sents = self.reader.chunks_holding([r for r, _ in top_sents]).tolist()
        if allowed is not None:
            allowed_set = set(allowed.tolist())
            from_sents = [c for c in from_sents if c in allowed_set]
        return Candidates(dense, dict(lexical), from_sents)

    def rows_for(self, filters: Filters) -> np.ndarray:
        allowed = self.allowed_rows(filters)
        return self.reader.row_ids if allowed is None else allowed

    def vectors_of(self, rows: Sequence[int], *, sentences: bool = False) -> np.ndarray:
        return self.reader.vectors_of(rows, sentences=sentences)

    def sentences_in(self, chunk_rows: Iterable[int]) -> dict[int, list[tuple[int, int, int]]]:
        return self.reader.sentences_in(chunk_rows)

    def sentence_rows(self, chunk_rows: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        return self.reader.sentence_rows(chunk_rows)

    def lang_of(self, rows: np.ndarray) -> list[str]:
        return self.reader.lang_of(rows)

    def chunks(self, rows: Iterable[int]) -> dict[int, Chunk]:
        return self.reader.chunks(rows)

    def doc_of(self, rows: Iterable[int]) -> dict[int, str]:
        return self.reader.doc_of(rows)

    def documents(self, doc_ids: Iterable[str], *, with_text: bool = False) -> dict[str, Document]:
        return self.reader.documents(doc_ids, with_text=with_text)

    def all_documents(self) -> list[tuple[Document, int]]:
        return self.reader.all_documents()

    def close(self) -> None:
        self.reader.close()
