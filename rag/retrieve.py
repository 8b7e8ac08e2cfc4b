"""Retrieval over a loaded index: query encoding, filters, dense top-k, hit assembly.

Filters run inside FAISS (an id selector built from the chunk table), so a filtered search still
returns k hits when k exist. Not done here: answering, loading or writing the index.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import faiss
import numpy as np

from rag.embeddings import Embedder
from rag.lang import detect_language
from rag.store import IndexReader
from rag.types import Hit, SearchResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Filters:
    """Restrict a search. Empty fields do not filter.

    ``docs`` match a document id or an id prefix (``eu_ai_act`` matches ``eu_ai_act/article_005``);
    ``sources`` match the source field case-insensitively as a substring; dates are ISO strings
    compared as text, so ``2023`` sorts before ``2023-05-01``; documents without a date are left out
    by a date filter.
    """

    langs: tuple[str, ...] = ()
    docs: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    date_from: str = ""
    date_to: str = ""

    def __post_init__(self) -> None:
        for name in ("date_from", "date_to"):
            value = getattr(self, name)
            if value and not (len(value) in (4, 7, 10) and value[:4].isdigit()):
                raise ValueError(f"{name} must be YYYY, YYYY-MM or YYYY-MM-DD, got {value!r}")

    @property
    def active(self) -> bool:
        return bool(
            self.langs or self.docs or self.sources or self.countries or self.date_from
            or self.date_to
        )  # fmt: skip

    def sql(self) -> tuple[str, list[str]]:
        """A condition on ``documents d`` and its arguments."""
        parts: list[str] = []
        args: list[str] = []
        if self.langs:
            parts.append(f"d.lang IN ({','.join('?' * len(self.langs))})")
            args += [x.lower() for x in self.langs]
        if self.countries:
            parts.append(f"UPPER(d.country) IN ({','.join('?' * len(self.countries))})")
            args += [x.upper() for x in self.countries]
        if self.docs:
            parts.append(
                "(" + " OR ".join(["d.doc_id = ? OR d.doc_id LIKE ?"] * len(self.docs)) + ")"
            )
            for doc in self.docs:
                args += [doc, doc.rstrip("/") + "/%"]
        if self.sources:
            parts.append("(" + " OR ".join(["LOWER(d.source) LIKE ?"] * len(self.sources)) + ")")
            args += [f"%{s.lower()}%" for s in self.sources]
        if self.date_from:
            parts.append("d.date != '' AND d.date >= ?")
            args.append(self.date_from)
        if self.date_to:
            parts.append("d.date != '' AND substr(d.date, 1, ?) <= ?")
            args += [str(len(self.date_to)), self.date_to]
        return (" AND ".join(parts) or "1"), args


@dataclass
class Retriever:
    """Dense retrieval with filters. ``search`` is safe to call from several threads."""

    index: IndexReader
    embedder: Embedder
    overfetch: int = 3
    _filter_cache: dict[Filters, np.ndarray] = field(default_factory=dict, repr=False)

    def allowed_rows(self, filters: Filters) -> np.ndarray | None:
        if not filters.active:
            return None
        if filters not in self._filter_cache:
            cond, args = filters.sql()
            if len(self._filter_cache) > 256:
                self._filter_cache.clear()
            self._filter_cache[filters] = self.index.rows_where(cond, args)
        return self._filter_cache[filters]

    def dense(self, query_vec: np.ndarray, k: int, filters: Filters) -> list[tuple[int, float]]:
        """(row id, cosine) pairs, best first."""
        allowed = self.allowed_rows(filters)
        if allowed is not None and len(allowed) == 0:
            return []
        params = None
        if allowed is not None:
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(allowed))  # type: ignore[call-arg]
        k = max(1, min(k, self.index.size if allowed is None else len(allowed)))
        scores, ids = self.index.vectors.search(query_vec.reshape(1, -1), k, params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def search(self, query: str, k: int = 5, filters: Filters | None = None) -> SearchResult:
        if k < 1:
            raise ValueError(f"k must be > 0, got {k}")
        query = query.strip()
        if not query:
            raise ValueError("the query is empty")
        filters = filters or Filters()
        qvec = self.embedder.encode_queries([query])[0]
        ranked = self.dense(qvec, k, filters)
        return SearchResult(query, detect_language(query), tuple(self.hits(ranked)))

    def hits(self, ranked: list[tuple[int, float]]) -> list[Hit]:
        chunks = self.index.chunks(r for r, _ in ranked)
        docs = self.index.documents(c.doc_id for c in chunks.values())
        out: list[Hit] = []
        for row, score in ranked:
            c = chunks.get(row)
            if c is None:
                continue
            d = docs[c.doc_id]
            out.append(
                Hit(
                    rank=len(out) + 1,
                    score=round(score, 4),
                    doc_id=c.doc_id,
                    chunk_id=c.chunk_id,
                    title=d.title,
                    lang=d.lang,
                    source=d.source,
                    date=d.date,
                    text=c.text,
                    start=c.start,
                    end=c.end,
                    url=d.url,
                    country=d.country,
                )
            )
        return out
