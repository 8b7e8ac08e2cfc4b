"""Retrieval over a loaded index: query encoding, filters, dense + BM25 fusion, hit assembly.

Filters run inside FAISS (an id selector built from the chunk table) and on the BM25 scores, so a
filtered search still returns k hits when k exist. Not done here: answering, loading or writing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import faiss
import numpy as np

from rag.embeddings import Embedder
from rag.lang import detect_language
from rag.lexical import tokenize
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


@dataclass(frozen=True)
class Fusion:
    """How dense and lexical evidence combine (see README, "Retrieval", for the measurements).

    ``score = cos(q, c) + w * bm25(q, c) / max bm25`` where ``w`` is ``same_lang`` when the chunk
    is in the question's language and ``cross_lang`` otherwise (across languages only names,
    numbers and acronyms can match, and stems of unrelated words sometimes collide). ``per_doc``
    caps how many chunks of one document reach the result list, so one long document cannot fill
    it.
    """

    mode: str = "hybrid"  # or "dense"
    same_lang: float = 0.10
    cross_lang: float = 0.05
    candidates: int = 50
    per_doc: int = 3

    def __post_init__(self) -> None:
        if self.mode not in ("hybrid", "dense"):
            raise ValueError(f"fusion mode must be 'hybrid' or 'dense', got {self.mode!r}")
        if self.candidates < 1 or self.per_doc < 1:
            raise ValueError(
                f"candidates and per_doc must be > 0, got {self.candidates}, {self.per_doc}"
            )


@dataclass
class Retriever:
    """Hybrid (dense + BM25) retrieval with filters; ``search`` is safe to call from threads."""

    index: IndexReader
    embedder: Embedder
    fusion: Fusion = field(default_factory=Fusion)
    _filter_cache: dict[Filters, np.ndarray] = field(default_factory=dict, repr=False)

    def allowed_rows(self, filters: Filters) -> np.ndarray | None:
        if not filters.active:
            return None
        if filters not in self._filter_cache:
            cond, args = filters.sql()
            if len(self._filter_cache) > 256:
                self._filter_cache.clear()
            self._filter_cache[filters] = np.sort(self.index.rows_where(cond, args))
        return self._filter_cache[filters]

    def dense(
        self, query_vec: np.ndarray, k: int, allowed: np.ndarray | None
    ) -> list[tuple[int, float]]:
        """(row id, cosine) pairs, best first."""
        if allowed is not None and len(allowed) == 0:
            return []
        params = None
        if allowed is not None:
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(allowed))  # type: ignore[call-arg]
        k = max(1, min(k, self.index.size if allowed is None else len(allowed)))
        scores, ids = self.index.vectors.search(query_vec.reshape(1, -1), k, params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def lexical(
        self, query: str, lang: str, k: int, allowed: np.ndarray | None
    ) -> dict[int, float]:
        """BM25 scores of the top-k chunks (row id → score), zero scores left out."""
        lex = self.index.lexical
        scores = lex.scores(tokenize(query, lang))
        if allowed is not None:
            mask = np.isin(lex.rows, allowed)
            scores = np.where(mask, scores, 0.0)
        if not scores.size:
            return {}
        k = min(k, scores.size)
        top = np.argpartition(-scores, k - 1)[:k]
        return {int(lex.rows[i]): float(scores[i]) for i in top if scores[i] > 0}

    def rank(
        self, query: str, query_vec: np.ndarray, query_lang: str, k: int, filters: Filters
    ) -> list[tuple[int, float]]:
        """Fused (row id, score) list, best first, at most ``k`` long."""
        f = self.fusion
        allowed = self.allowed_rows(filters)
        n = max(f.candidates, k * 3)
        dense = dict(self.dense(query_vec, n, allowed))
        if f.mode == "hybrid":
            lexical = self.lexical(query, query_lang, n, allowed)
            missing = [r for r in lexical if r not in dense]
            if missing:
                sims = self.index.vectors_of(missing) @ query_vec
                dense.update(zip(missing, (float(x) for x in sims), strict=True))
            rows = np.fromiter(dense, dtype=np.int64, count=len(dense))
            top_lex = max(lexical.values(), default=0.0) or 1.0
            same = np.asarray([lang == query_lang for lang in self.index.lang_of(rows)])
            weight = np.where(same, f.same_lang, f.cross_lang)
            lex = np.asarray([lexical.get(int(r), 0.0) for r in rows]) / top_lex
            fused = np.asarray(list(dense.values())) + weight * lex
            scored = sorted(zip(rows.tolist(), fused.tolist(), strict=True), key=lambda x: -x[1])
        else:
            scored = sorted(dense.items(), key=lambda x: -x[1])
        return self._cap_per_doc(scored, k)

    def _cap_per_doc(self, scored: list[tuple[int, float]], k: int) -> list[tuple[int, float]]:
        if self.fusion.per_doc >= k:
            return scored[:k]
        chunks = self.index.chunks(r for r, _ in scored)
        out: list[tuple[int, float]] = []
        seen: dict[str, int] = {}
        for row, score in scored:
            doc = chunks[row].doc_id if row in chunks else ""
            if seen.get(doc, 0) < self.fusion.per_doc:
                seen[doc] = seen.get(doc, 0) + 1
                out.append((row, score))
            if len(out) == k:
                break
        return out

    def search(self, query: str, k: int = 5, filters: Filters | None = None) -> SearchResult:
        if k < 1:
            raise ValueError(f"k must be > 0, got {k}")
        query = query.strip()
        if not query:
            raise ValueError("the query is empty")
        query_lang = detect_language(query)
        qvec = self.embedder.encode_queries([query])[0]
        ranked = self.rank(query, qvec, query_lang, k, filters or Filters())
        return SearchResult(query, query_lang, tuple(self.hits(ranked)))

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
