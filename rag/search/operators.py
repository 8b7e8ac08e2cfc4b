"""Search with the query syntax (``query_syntax.py``): phrases, exclusions, OR, field filters and
the "match across languages" switch, over a :class:`~rag.search.retrieve.Retriever`.

- A clause with phrases ranks exactly the passages that hold every phrase (found by scanning the
  folded text of every passage its filters allow, so a phrase in one sentence of one Swedish
  passage is found however low retrieval would rank it), by the usual hybrid score of the
  clause's text. If no passage holds them (a term quoted in a question, “高影响能力”, asked of a
  corpus that says it in English), the clause is searched as words (semantically, so in any
  language the filters allow) and the result's note says so; ``strict_phrases`` (saved
  searches and alerts) keeps it empty instead.
- Exclusions drop the passages that hold them before the top k is taken (the candidate pool
  widens by as many passages as were dropped, so k still come back when k exist).
- ``a OR b``: each clause is searched on its own and the hits are interleaved by rank (first of
  each clause, then second of each, …), without duplicates; the per-document cap and k apply to
  the union. Scores of different clauses are not compared.
- ``cross_lingual=False``: a clause without a ``lang:`` filter (in the query or outside it) is
  restricted to passages in its text's detected language.

The passage texts are folded once per loaded index and kept (a few MB for the shipped corpus).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from rag.index.base import Store
from rag.ingest.lang import detect_language
from rag.search.matching import contains, fold
from rag.search.query_syntax import Clause, ParsedQuery, merge_filters
from rag.types import Filters

if TYPE_CHECKING:
    from rag.search.retrieve import Retriever

BATCH = 2000  # passages read from the store at once while folding


class PassageScan:
    """Exact phrase lookup over every passage of one loaded index (thread-safe)."""

    def __init__(self) -> None:
        self._folded: dict[int, str] = {}
        self._lock = threading.Lock()

    def _texts(self, store: Store, rows: np.ndarray) -> dict[int, str]:
        with self._lock:
            missing = [int(r) for r in rows if int(r) not in self._folded]
            for i in range(0, len(missing), BATCH):
                for row, chunk in store.chunks(missing[i : i + BATCH]).items():
                    self._folded[row] = fold(chunk.text)
            return {int(r): self._folded.get(int(r), "") for r in rows}

    def rows_with_all(self, store: Store, filters: Filters, phrases: Iterable[str]) -> set[int]:
        """Rows (allowed by ``filters``) whose passage holds every phrase."""
        needles = [fold(p).strip() for p in phrases]
        texts = self._texts(store, store.rows_for(filters))
        return {r for r, t in texts.items() if all(contains(t, n) for n in needles)}

    def rows_with_any(self, store: Store, filters: Filters, phrases: Iterable[str]) -> set[int]:
        """Rows (allowed by ``filters``) whose passage holds at least one of the phrases."""
        needles = [fold(p).strip() for p in phrases]
        if not needles:
            return set()
        texts = self._texts(store, store.rows_for(filters))
        return {r for r, t in texts.items() if any(contains(t, n) for n in needles)}


def clause_filters(clause: Clause, base: Filters, cross_lingual: bool) -> tuple[Filters, str]:
    """The clause's filters merged with ``base``, and the clause text's language; without
    ``cross_lingual``, restricted to that language unless a language filter is set."""
    f = merge_filters(base, clause.filters)
    lang = detect_language(clause.text)
    if not cross_lingual and not f.langs:
        f = Filters(langs=(lang,), docs=f.docs, sources=f.sources, jurisdictions=f.jurisdictions,
                    types=f.types, date_from=f.date_from, date_to=f.date_to)  # fmt: skip
    return f, lang


def interleave(ranked: list[list[tuple[int, float]]]) -> list[tuple[int, float]]:
    """First of each list, then second of each, …, each row once."""
    out: list[tuple[int, float]] = []
    seen: set[int] = set()
    for i in range(max((len(r) for r in ranked), default=0)):
        for r in ranked:
            if i < len(r) and r[i][0] not in seen:
                seen.add(r[i][0])
                out.append(r[i])
    return out


def quoted(phrases: Iterable[str]) -> str:
    """``“a”, “b”`` as a note names them."""
    return ", ".join(f"“{p}”" for p in phrases)


def phrase_note(missing: list[tuple[str, ...]]) -> str:
    """The note for clauses whose phrases no passage holds (searched as words instead)."""
    if not missing:
        return ""
    names = "; ".join(quoted(m) + (" together" if len(m) > 1 else "") for m in missing)
    return (
        f"No passage holds {names}: showing the passages closest to the words instead "
        "(exact phrases only match text in the phrase's own language)."
    )


def rank_parsed(
    retriever: Retriever, scan: PassageScan, parsed: ParsedQuery, k: int, filters: Filters,
    *, per_doc: int | None, cross_lingual: bool, strict_phrases: bool = False,
) -> tuple[list[tuple[int, float]], str, str]:  # fmt: skip
    """(row, score) best first for ``parsed``, the query language (of the first clause) and a
    note (empty, or which phrases no passage holds and were searched as words)."""
    prepared = [(c, *clause_filters(c, filters, cross_lingual)) for c in parsed.clauses]
    vecs = retriever.embedder.encode_queries([c.text for c, _, _ in prepared])
    ranked: list[list[tuple[int, float]]] = []
    missing: list[tuple[str, ...]] = []
    for (clause, f, lang), vec in zip(prepared, vecs, strict=True):
        store = retriever.index
        only = scan.rows_with_all(store, f, clause.phrases) if clause.phrases else None
        if only == set() and not strict_phrases:
            missing.append(clause.phrases)
            only = None
        drop = scan.rows_with_any(store, f, clause.excluded)
        if only is not None and not only - drop:
            ranked.append([])
            continue
        ranked.append(retriever.rank(clause.text, vec, lang, k, f, per_doc=per_doc,
                                     only=only, drop=drop))  # fmt: skip
    merged = ranked[0] if len(ranked) == 1 else retriever._cap_per_doc(interleave(ranked), k,
                                                                       per_doc)  # fmt: skip
    return merged[:k], prepared[0][2], phrase_note(missing)
