"""Retrieval over a loaded index: query encoding, filters, dense + BM25 fusion, hit assembly.

Filters run inside the store (FAISS id selectors, or Qdrant payload filters), so a filtered search
still returns k hits when k exist. Not done here: answering, loading or writing, the candidate
searches themselves (``rag/index``), the fusion arithmetic (``fusion.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice

import numpy as np

from rag.index.base import Store
from rag.ingest.lang import detect_language
from rag.models.centering import Centering
from rag.models.embeddings import Embedder
from rag.search.fusion import Fusion, cap_per_doc, fused_scores, iter_spread
from rag.search.operators import PassageScan, rank_parsed
from rag.search.query_syntax import ParsedQuery
from rag.search.translate import translated_terms
from rag.types import Filters, Hit, SearchResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LexicalPrefetch:
    """BM25 candidates found for a query before its vector (:meth:`Retriever.encode`);
    :meth:`Retriever.rank` uses them when its pool size and filters are the same."""

    n: int
    filters: Filters
    found: Mapping[int, float]


@dataclass
class Retriever:
    """Hybrid retrieval with filters; ``search`` is safe to call from threads."""

    index: Store
    embedder: Embedder
    fusion: Fusion = field(default_factory=Fusion)
    centering: Centering = field(default_factory=lambda: Centering(0.0, {}, {}))
    scan: PassageScan = field(default_factory=PassageScan, repr=False)  # phrase lookups

    def sentence_scores(
        self, query_vec: np.ndarray, chunk_rows: list[int]
    ) -> dict[int, list[tuple[int, int, int, float]]]:
        """Chunk row → [(sentence row, start, end, cosine with the query)] in text order."""
        inside = self.index.sentences_in(chunk_rows)
        sent_rows = list(dict.fromkeys(r for sents in inside.values() for r, _, _ in sents))
        cos = (self.index.vectors_of(sent_rows, sentences=True) @ query_vec).tolist()
        sims = dict(zip(sent_rows, cos, strict=True))
        return {chunk: [(r, s, e, sims[r]) for r, s, e in sents] for chunk, sents in inside.items()}

    def query_vector(self, query_vec: np.ndarray, query_lang: str) -> np.ndarray:
        return self.centering.query_vec(query_vec, query_lang)

    def pool_size(self, k: int, drop: Collection[int] = ()) -> int:
        """Candidates fetched per search for ``k`` hits."""
        return max(self.fusion.candidates, k * 3) + len(drop)  # dropped rows cannot crowd out k

    def lexical_candidates(
        self, query: str, query_lang: str, n: int, filters: Filters
    ) -> Mapping[int, float]:
        terms = translated_terms(query, query_lang) if self.fusion.translate else None
        return self.index.lexical_candidates(query, query_lang, n, filters, terms)

    def encode(
        self, query: str, query_lang: str, k: int, filters: Filters
    ) -> tuple[np.ndarray, LexicalPrefetch | None]:
        """The query's raw vector and, for a hybrid search, its BM25 candidates for
        ``rank(query, …, k, filters)``. An encoder that can start a query and be waited for
        (``start_queries``: OpenVINO, whose threads run without the GIL) encodes while BM25
        (dictionary translation, tokenising, scoring: ~1 ms) runs here; others encode first."""
        start = getattr(self.embedder, "start_queries", None)
        wait = start([query]) if start is not None else None
        lexical = None
        try:
            if self.fusion.mode == "hybrid":
                n = self.pool_size(k)
                found = self.lexical_candidates(query, query_lang, n, filters)
                lexical = LexicalPrefetch(n, filters, found)
        finally:  # always collect the started request
            vecs = wait() if wait is not None else self.embedder.encode_queries([query])
        return vecs[0], lexical

    def rank(
        self,
        query: str,
        query_vec: np.ndarray,
        query_lang: str,
        k: int,
        filters: Filters,
        *,
        per_doc: int | None = None,
        only: Collection[int] | None = None,
        drop: Collection[int] = (),
        prefetched: LexicalPrefetch | None = None,
    ) -> list[tuple[int, float]]:
        """Fused (chunk row id, score) list, best first, at most ``k`` long.

        ``query_vec`` is the raw query embedding; centering is applied here. ``per_doc``: at most
        this many passages of one document (default: the fusion's ``per_doc``). ``only``: rank
        exactly these rows (the passages holding a phrase, however low retrieval would rank them);
        ``drop``: leave these rows out (passages holding an excluded phrase); both come from the
        query syntax (``rag/search/operators.py``). ``prefetched``: the BM25 candidates
        :meth:`encode` found for this query (used if they match ``k`` and ``filters``;
        computed here otherwise).
        """
        f = self.fusion
        q = self.query_vector(query_vec, query_lang)
        drop = set(drop)
        n = self.pool_size(k, drop)
        if only is not None:
            n = min(max(n, 4 * len(only)), max(self.index.size, 1))
        hybrid = f.mode == "hybrid"
        pre = prefetched
        if hybrid and pre is not None and (pre.n, pre.filters) == (n, filters) and not drop:
            found = self.index.candidates(query, query_lang, q, n, filters, hybrid=True,
                                          lexical=pre.found)  # fmt: skip
        else:
            terms = translated_terms(query, query_lang) if hybrid and f.translate else None
            found = self.index.candidates(query, query_lang, q, n, filters, hybrid=hybrid,
                                          terms=terms)  # fmt: skip
        dense = {r: s for r, s in found.dense if r not in drop}
        if f.mode == "dense" and only is None:
            while True:  # one document can fill the pool: widen it until k survive the cap
                out = self._cap_per_doc(sorted(dense.items(), key=lambda x: -x[1]), k, per_doc)
                if len(out) >= k or len(found.dense) < n:
                    return out
                n *= 4
                found = self.index.candidates(query, query_lang, q, n, filters, hybrid=False)
                dense = {r: s for r, s in found.dense if r not in drop}
        lexical = {r: s for r, s in found.lexical.items() if r not in drop}
        lex_pool = found.lexical  # normalised by the best before exclusions: they only remove
        rows = list(dict.fromkeys([*dense, *lexical, *found.from_sentences]))
        if only is not None:
            rows = [r for r in sorted(set(only)) if r not in drop]
            dense = {r: s for r, s in dense.items() if r in only}
            lexical = lex_pool = {r: s for r, s in lexical.items() if r in only}
            if not rows:
                return []
        rows = [r for r in rows if r not in drop]
        missing = [r for r in rows if r not in dense]
        if missing:
            dense.update(zip(missing, (self.index.vectors_of(missing) @ q).tolist(), strict=True))
        arr = np.asarray(rows, dtype=np.int64)
        chunk_cos = np.asarray([dense[r] for r in rows])
        owner, sent_rows = self.index.sentence_rows(rows)
        best_sent = np.full(len(rows), -np.inf)
        np.maximum.at(
            best_sent, owner, self.index.vectors_of(sent_rows.tolist(), sentences=True) @ q
        )
        best_sent = np.where(np.isneginf(best_sent), chunk_cos, best_sent)  # chunks without any
        doc_langs = self.index.lang_of(arr)
        same = np.asarray([lang == query_lang for lang in doc_langs])
        top_lex = max(lex_pool.values(), default=0.0) or 1.0
        lex = np.asarray([lexical.get(r, 0.0) for r in rows]) / top_lex
        fused = fused_scores(f, chunk_cos, best_sent, same, lex)
        scored = sorted(zip(rows, fused.tolist(), strict=True), key=lambda x: -x[1])
        if f.lang_penalty <= 0:
            return self._cap_per_doc(scored, k, per_doc)
        spread = iter_spread(scored, dict(zip(rows, doc_langs, strict=True)), f.lang_penalty)
        return self._cap_per_doc(spread, k, per_doc, rows=rows)

    def _cap_per_doc(
        self, scored: Iterable[tuple[int, float]], k: int, per_doc: int | None = None,
        *, rows: Sequence[int] | None = None,
    ) -> list[tuple[int, float]]:  # fmt: skip
        """The first ``k`` of ``scored`` (read lazily) with at most ``per_doc`` of a document;
        ``rows``: every row ``scored`` can yield (needed when it is an iterator)."""
        per_doc = self.fusion.per_doc if per_doc is None else per_doc
        if per_doc >= k:
            return list(islice(scored, k))
        if rows is None:
            scored = list(scored)
            rows = [r for r, _ in scored]
        return cap_per_doc(scored, self.index.doc_of(rows), per_doc, k)

    def search(
        self, query: str, k: int = 5, filters: Filters | None = None, *, per_doc: int | None = None
    ) -> SearchResult:
        """The ``k`` best passages; ``per_doc`` caps passages per document (default: the
        fusion's, 3; pass ``k`` for no cap)."""
        if k < 1:
            raise ValueError(f"k must be > 0, got {k}")
        if per_doc is not None and per_doc < 1:
            raise ValueError(f"per_doc must be > 0, got {per_doc}")
        query = query.strip()
        if not query:
            raise ValueError("the query is empty")
        query_lang = detect_language(query)
        filters = filters or Filters()
        qvec, lexical = self.encode(query, query_lang, k, filters)
        ranked = self.rank(query, qvec, query_lang, k, filters, per_doc=per_doc, prefetched=lexical)
        return SearchResult(query, query_lang, tuple(self.hits(ranked)))

    def search_parsed(
        self, parsed: ParsedQuery, k: int = 5, filters: Filters | None = None, *,
        per_doc: int | None = None, cross_lingual: bool = True, strict_phrases: bool = False,
    ) -> SearchResult:  # fmt: skip
        """:meth:`search` for a query in the search syntax (``operators.py`` says how each
        operator is searched); ``cross_lingual=False``: passages in the query's language only;
        ``strict_phrases``: a phrase no passage holds gives no hits (else: searched as words,
        with a note)."""
        if k < 1:
            raise ValueError(f"k must be > 0, got {k}")
        if per_doc is not None and per_doc < 1:
            raise ValueError(f"per_doc must be > 0, got {per_doc}")
        ranked, query_lang, note = rank_parsed(self, self.scan, parsed, k, filters or Filters(),
                                               per_doc=per_doc, cross_lingual=cross_lingual,
                                               strict_phrases=strict_phrases)  # fmt: skip
        return SearchResult(parsed.query, query_lang, tuple(self.hits(ranked)), note)

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
                    jurisdiction=d.jurisdiction,
                    doc_type=d.doc_type,
                    status=d.status,
                    file=d.path,
                    page=d.page_at(c.start),
                    ocr=d.ocr,
                    translations=d.translations,
                    page_starts=d.pages,
                )
            )
        return out


class QueryVectors:
    """Each text of one question's reading encoded once; ``with_lexical`` also gives the BM25
    candidates, found while the text encodes (:meth:`Retriever.encode`)."""

    def __init__(self, retriever: Retriever) -> None:
        self.retriever = retriever
        self.memo: dict[str, np.ndarray] = {}

    def __call__(self, text: str) -> np.ndarray:
        if text not in self.memo:
            self.memo[text] = self.retriever.embedder.encode_queries([text])[0]
        return self.memo[text]

    def with_lexical(
        self, text: str, lang: str, k: int, filters: Filters
    ) -> tuple[np.ndarray, LexicalPrefetch | None]:
        if text in self.memo:
            return self.memo[text], None  # rank finds the BM25 candidates itself
        self.memo[text], lexical = self.retriever.encode(text, lang, k, filters)
        return self.memo[text], lexical
