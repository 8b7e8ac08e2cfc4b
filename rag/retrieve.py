"""Retrieval over a loaded index: query encoding, filters, dense + BM25 fusion, hit assembly.

Filters run inside the store (FAISS id selectors, or Qdrant payload filters), so a filtered search
still returns k hits when k exist. Not done here: answering, loading or writing, the candidate
searches themselves (``stores.py``).
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from rag.centering import Centering
from rag.embeddings import Embedder
from rag.lang import detect_language
from rag.stores import Store
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
    """How the evidence combines (the measurements behind the defaults: README, "Retrieval").

    For each candidate passage ``c`` (the union of the top chunks, the chunks of the top sentences
    and the top BM25 chunks)::

        score = (1 - sentence) * cos(q, c) + sentence * max cos(q, s in c) + w * bm25 / max bm25

    where ``w`` is ``same_lang`` when the chunk is in the question's language and ``cross_lang``
    otherwise (across languages only names, numbers and acronyms can match). Vectors are
    language-centered (see ``centering.py``). ``per_doc`` caps how many chunks of one document
    reach the result list, so one long document cannot fill it. ``lang_penalty`` spreads the list
    over document languages: each passage pays it once for every passage of its language ranked
    above it. ``mode="dense"`` uses the chunk vectors alone.
    """

    mode: str = "hybrid"  # or "dense"
    sentence: float = 0.7
    same_lang: float = 0.02
    cross_lang: float = 0.02
    candidates: int = 50
    per_doc: int = 3
    lang_penalty: float = 0.02

    def __post_init__(self) -> None:
        if self.mode not in ("hybrid", "dense"):
            raise ValueError(f"fusion mode must be 'hybrid' or 'dense', got {self.mode!r}")
        if self.candidates < 1 or self.per_doc < 1:
            raise ValueError(
                f"candidates and per_doc must be > 0, got {self.candidates}, {self.per_doc}"
            )
        if not 0 <= self.sentence <= 1:
            raise ValueError(f"sentence weight must be in 0..1, got {self.sentence}")
        if self.lang_penalty < 0:
            raise ValueError(f"lang_penalty must be >= 0, got {self.lang_penalty}")


@dataclass
class Retriever:
    """Hybrid retrieval with filters; ``search`` is safe to call from threads."""

    index: Store
    embedder: Embedder
    fusion: Fusion = field(default_factory=Fusion)
    centering: Centering = field(default_factory=lambda: Centering(0.0, {}, {}))

    def sentence_scores(
        self, query_vec: np.ndarray, chunk_rows: list[int]
    ) -> dict[int, list[tuple[int, int, int, float]]]:
        """Chunk row → [(sentence row, start, end, cosine with the query)] in text order."""
        inside = self.index.sentences_in(chunk_rows)
        sent_rows = list(dict.fromkeys(r for sents in inside.values() for r, _, _ in sents))
        sims = dict(
            zip(sent_rows, (self.index.vectors_of(sent_rows, sentences=True) @ query_vec).tolist(),
                strict=True)
        )  # fmt: skip
        return {chunk: [(r, s, e, sims[r]) for r, s, e in sents] for chunk, sents in inside.items()}

    def query_vector(self, query_vec: np.ndarray, query_lang: str) -> np.ndarray:
        return self.centering.query_vec(query_vec, query_lang)

    def rank(
        self, query: str, query_vec: np.ndarray, query_lang: str, k: int, filters: Filters
    ) -> list[tuple[int, float]]:
        """Fused (chunk row id, score) list, best first, at most ``k`` long.

        ``query_vec`` is the raw query embedding; centering is applied here.
        """
        f = self.fusion
        q = self.query_vector(query_vec, query_lang)
        n = max(f.candidates, k * 3)
        found = self.index.candidates(query, query_lang, q, n, filters, hybrid=f.mode == "hybrid")
        dense = dict(found.dense)
        if f.mode == "dense":
            return self._cap_per_doc(sorted(dense.items(), key=lambda x: -x[1]), k)
        lexical = found.lexical
        rows = list(dict.fromkeys([*dense, *lexical, *found.from_sentences]))
        missing = [r for r in rows if r not in dense]
        if missing:
            dense.update(zip(missing, (self.index.vectors_of(missing) @ q).tolist(), strict=True))
        sent = self.sentence_scores(q, rows)
        arr = np.asarray(rows, dtype=np.int64)
        chunk_cos = np.asarray([dense[r] for r in rows])
        best_sent = np.asarray(
            [max((x[3] for x in sent.get(r, [])), default=dense[r]) for r in rows]
        )
        doc_langs = self.index.lang_of(arr)
        same = np.asarray([lang == query_lang for lang in doc_langs])
        top_lex = max(lexical.values(), default=0.0) or 1.0
        lex = np.asarray([lexical.get(r, 0.0) for r in rows]) / top_lex
        fused = (
            (1 - f.sentence) * chunk_cos
            + f.sentence * best_sent
            + np.where(same, f.same_lang, f.cross_lang) * lex
        )
        scored = sorted(zip(rows, fused.tolist(), strict=True), key=lambda x: -x[1])
        if f.lang_penalty > 0:
            scored = self._spread_languages(scored, dict(zip(rows, doc_langs, strict=True)))
        return self._cap_per_doc(scored, k)

    def _spread_languages(
        self, scored: list[tuple[int, float]], lang: dict[int, str]
    ) -> list[tuple[int, float]]:
        """Reorder so that each further passage in a language already listed pays
        ``lang_penalty`` per passage of that language above it (the best passage stays first).

        Multilingual encoders favour passages in the question's language; a small, steady
        penalty lets the best passage of another language into the first places when it is
        nearly as good (README, "Shipped corpus dev set", for what it gains and costs).
        """
        pen = self.fusion.lang_penalty
        queues: dict[str, deque[tuple[int, float]]] = {}
        for item in scored:  # best first within each language
            queues.setdefault(lang[item[0]], deque()).append(item)
        used = dict.fromkeys(queues, 0)
        out: list[tuple[int, float]] = []
        while queues:
            best = max(queues, key=lambda x: queues[x][0][1] - pen * used[x])
            out.append(queues[best].popleft())
            used[best] += 1
            if not queues[best]:
                del queues[best]
        return out

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
