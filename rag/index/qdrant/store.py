"""Searching a Qdrant collection: :class:`QdrantStore`, the reader behind the Store protocol
(layout: ``collection.py``)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from qdrant_client import models

from rag.index.base import Candidates, IndexError_
from rag.index.lexical import tokenize
from rag.index.qdrant.collection import (
    CHUNK_FIELDS,
    DENSE,
    DOC_FIELDS,
    SENTENCE,
    SPARSE,
    Collection,
    kind_is,
    point_id,
    query_sparse,
    scroll_all,
    to_filter,
)
from rag.types import Chunk, Document, Filters

log = logging.getLogger(__name__)


class QdrantStore:
    """A Qdrant collection as a :class:`~rag.index.base.Store`."""

    def __init__(self, backend: Collection, manifest: dict[str, Any]) -> None:
        self.backend = backend
        self.name = backend.collection
        self.client, self._lock = backend.connection()
        self.manifest = manifest
        self.dim = int(manifest["model"]["dim"])
        with self._lock:  # the distinct sources, to resolve --source substrings
            facets = self.client.facet(self.name, key="source", facet_filter=kind_is("chunk"),
                                       limit=1_000_000, exact=True)  # fmt: skip
        self.sources = [str(h.value) for h in facets.hits]

    @property
    def size(self) -> int:
        return int(self.manifest.get("counts", {}).get("chunks", 0))

    def _retrieve(
        self, ids: Iterable[int], payload: list[str] | bool = False, vector: str | None = None
    ) -> dict[int, models.Record]:
        ids = list(dict.fromkeys(int(i) for i in ids))
        if not ids:
            return {}
        with self._lock:
            got = self.client.retrieve(self.name, ids, with_payload=payload,
                                       with_vectors=[vector] if vector else False)  # fmt: skip
        return {int(p.id): p for p in got}

    def lexical_candidates(
        self, query: str, query_lang: str, n: int, filters: Filters,
        terms: Mapping[str, float] | None = None,
    ) -> dict[int, float]:  # fmt: skip
        """BM25 alone (its own request: the retriever sends it while the query is encoded)."""
        sparse = query_sparse(tokenize(query, query_lang) if terms is None else terms)
        if not sparse.indices:
            return {}
        flt = to_filter(filters, self.sources)
        with self._lock:
            got = self.client.query_points(self.name, query=sparse, using=SPARSE, limit=n,
                                           query_filter=flt)  # fmt: skip
        return {int(p.id): float(p.score) for p in got.points if p.score > 0}

    def candidates(
        self, query: str, query_lang: str, vec: np.ndarray, n: int, filters: Filters,
        *, hybrid: bool, terms: Mapping[str, float] | None = None,
        lexical: Mapping[int, float] | None = None,
    ) -> Candidates:  # fmt: skip
        """One batched request: chunk vectors and BM25 under the filter (``terms`` when given,
        else the query's own; not searched when ``lexical`` is given), sentence vectors."""
        flt = to_filter(filters, self.sources)
        q = np.asarray(vec, dtype=np.float32).tolist()
        requests = [models.QueryRequest(query=q, using=DENSE, limit=n, filter=flt)]
        sparse = (
            query_sparse(tokenize(query, query_lang) if terms is None else terms)
            if hybrid and lexical is None
            else None
        )
        if hybrid:
            requests.append(models.QueryRequest(query=q, using=SENTENCE, limit=n,
                                                with_payload=["chunks"]))  # fmt: skip
        if sparse is not None and sparse.indices:
            requests.append(models.QueryRequest(query=sparse, using=SPARSE, limit=n, filter=flt))
        with self._lock:
            results = self.client.query_batch_points(self.name, requests=requests)
        dense = [(int(p.id), float(p.score)) for p in results[0].points]
        if not hybrid:
            return Candidates(dense)
        from_sents = [int(c) for p in results[1].points for c in (p.payload or {})["chunks"]]
        found = dict(lexical or {})
        if len(results) > 2:
            found = {int(p.id): float(p.score) for p in results[2].points if p.score > 0}
        if flt is not None and from_sents:
            ids = list(dict.fromkeys(from_sents))
            keep = models.Filter(must=[models.HasIdCondition(has_id=list(ids)), flt])
            with self._lock:
                allowed, _ = self.client.scroll(self.name, scroll_filter=keep, limit=len(ids))
            allowed_ids = {int(p.id) for p in allowed}
            from_sents = [c for c in from_sents if c in allowed_ids]
        return Candidates(dense, found, from_sents)

    def hybrid_rrf(
        self, query: str, query_lang: str, vec: np.ndarray, k: int, filters: Filters, n: int = 50
    ) -> list[tuple[int, float]]:
        """Engine-side hybrid: prefetch the chunk vector and BM25 (n each) under the filter and
        fuse them with Reciprocal Rank Fusion in Qdrant. (chunk row, RRF score), best first.

        Everything runs in the engine, so it scales with the cluster, but RRF keeps only ranks:
        no sentence rescoring and no calibrated weights. The retriever does not use it; see
        README "Scaling out" for how it compares on the dev set.
        """
        flt = to_filter(filters, self.sources)
        q = np.asarray(vec, dtype=np.float32).tolist()
        prefetch = [models.Prefetch(query=q, using=DENSE, limit=n, filter=flt)]
        sparse = query_sparse(tokenize(query, query_lang))
        if sparse.indices:
            prefetch.append(models.Prefetch(query=sparse, using=SPARSE, limit=n, filter=flt))
        with self._lock:
            got = self.client.query_points(
                self.name, prefetch=prefetch, query=models.FusionQuery(fusion=models.Fusion.RRF),
                limit=k,
            )  # fmt: skip
        return [(int(p.id), float(p.score)) for p in got.points]

    def rows_for(self, filters: Filters) -> np.ndarray:
        flt = to_filter(filters, self.sources)
        kind = kind_is("chunk")
        both = kind if flt is None else models.Filter(must=[kind, flt])
        ids = [int(p.id) for p in scroll_all(self.client, self._lock, self.name, both, False)]
        return np.asarray(sorted(ids), dtype=np.int64)

    def vectors_of(self, rows: Sequence[int], *, sentences: bool = False) -> np.ndarray:
        if not rows:
            return np.zeros((0, self.dim), dtype=np.float32)
        name = SENTENCE if sentences else DENSE
        got = self._retrieve(rows, vector=name)
        try:
            vecs: list[Any] = [got[int(r)].vector[name] for r in rows]  # type: ignore[call-overload,index]
            return np.asarray(vecs, dtype=np.float32)
        except KeyError as exc:
            raise IndexError_(f"{self.backend.where} has no {name} vector for point {exc}: run "
                              "`rag ingest --rebuild`") from exc  # fmt: skip

    def sentences_in(self, chunk_rows: Iterable[int]) -> dict[int, list[tuple[int, int, int]]]:
        got = self._retrieve(chunk_rows, ["sentences"])
        return {
            row: [(int(s), int(a), int(b)) for s, a, b in (p.payload or {}).get("sentences", [])]
            for row, p in got.items()
        }

    def sentence_rows(self, chunk_rows: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        inside = self.sentences_in(chunk_rows)
        pairs = [(i, s) for i, row in enumerate(chunk_rows) for s, _, _ in inside.get(int(row), [])]
        got = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        return got[:, 0], got[:, 1]

    def lang_of(self, rows: np.ndarray) -> list[str]:
        got = self._retrieve(rows.tolist(), ["lang"])
        return [(got[int(r)].payload or {})["lang"] for r in rows]

    def chunks(self, rows: Iterable[int]) -> dict[int, Chunk]:
        got = self._retrieve((r for r in rows if r >= 0), CHUNK_FIELDS)
        return {
            row: Chunk(*(p.payload[f] for f in CHUNK_FIELDS))  # type: ignore[index]
            for row, p in got.items()
        }

    def doc_of(self, rows: Iterable[int]) -> dict[int, str]:
        got = self._retrieve((r for r in rows if r >= 0), ["doc_id"])
        return {row: (p.payload or {})["doc_id"] for row, p in got.items()}

    def documents(self, doc_ids: Iterable[str], *, with_text: bool = False) -> dict[str, Document]:
        fields = DOC_FIELDS + (["text"] if with_text else [])
        got = self._retrieve((point_id("doc", d) for d in doc_ids), fields)
        return {(p.payload or {})["doc_id"]: _document(p.payload or {}) for p in got.values()}

    def all_documents(self) -> list[tuple[Document, int]]:
        docs = [
            (_document(p.payload or {}), int((p.payload or {})["n_chunks"]))
            for p in scroll_all(self.client, self._lock, self.name, kind_is("document"),
                             [*DOC_FIELDS, "n_chunks"])
        ]  # fmt: skip
        return sorted(docs, key=lambda x: (x[0].path, x[0].doc_id))

    def close(self) -> None:
        """The client is shared per location and process; nothing to release here."""


def _document(p: dict[str, Any]) -> Document:
    return Document(
        doc_id=p["doc_id"], text=p.get("text", ""), title=p["title"], lang=p["lang"],
        path=p["path"], source=p["source"], url=p["url"], date=p["date"],
        jurisdiction=p.get("jurisdiction", ""), doc_type=p.get("doc_type", ""),
        status=p.get("status", ""), licence=p.get("licence", ""),
        pages=tuple(p.get("pages") or ()), ocr=bool(p.get("ocr")),
        translations=tuple(p.get("translations") or ()),
    )  # fmt: skip
