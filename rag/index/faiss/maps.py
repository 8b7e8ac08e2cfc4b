"""In-memory maps of a loaded index, read once when it opens (:class:`IndexReader`).

:class:`SentenceMap`: which sentences each chunk holds and the reverse, instead of two SQLite
queries per search. :class:`FlatVectors`: rows of a flat FAISS index straight from its memory,
instead of one ``reconstruct`` call per row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np


@dataclass(frozen=True)
class SentenceMap:
    """Which sentences each chunk holds, and the reverse, read once when the index loads.

    A search asks for both on every query (its candidates' sentences, the chunks of its nearest
    sentences); from SQLite that was two queries per search, here it is a binary search on sorted
    arrays. Arrays ``by_chunk``: (chunk row, sentence row, start, end) sorted by chunk row, then
    start; ``by_sentence``: (sentence row, chunk row) sorted by sentence row.
    """

    by_chunk: np.ndarray
    by_sentence: np.ndarray

    @classmethod
    def load(cls, query: Any) -> SentenceMap:
        got = query(
            "SELECT cs.chunk_row, s.row, s.start, s.end FROM chunk_sentences cs "
            "JOIN sentences s ON s.row = cs.sent_row ORDER BY cs.chunk_row, s.start"
        )
        by_chunk = np.asarray(got, dtype=np.int64).reshape(-1, 4)
        by_sentence = by_chunk[np.lexsort((by_chunk[:, 0], by_chunk[:, 1]))][:, [1, 0]]
        return cls(np.ascontiguousarray(by_chunk), np.ascontiguousarray(by_sentence))

    @staticmethod
    def _groups(table: np.ndarray, keys: Iterable[int]) -> dict[int, np.ndarray]:
        wanted = np.fromiter((int(k) for k in keys), dtype=np.int64)
        lo = np.searchsorted(table[:, 0], wanted, side="left")
        hi = np.searchsorted(table[:, 0], wanted, side="right")
        return {int(k): table[a:b, 1:] for k, a, b in zip(wanted, lo, hi, strict=True) if b > a}

    @staticmethod
    def _members(table: np.ndarray, keys: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """(position of the key in ``keys``, table row) of every row of every key, in key order."""
        wanted = np.asarray(keys, dtype=np.int64)
        lo = np.searchsorted(table[:, 0], wanted, side="left")
        counts = np.searchsorted(table[:, 0], wanted, side="right") - lo
        owner = np.repeat(np.arange(len(wanted)), counts)
        first = np.cumsum(counts) - counts  # where each key's rows begin in the output
        return owner, np.arange(int(counts.sum())) - np.repeat(first - lo, counts)

    def sentence_rows(self, chunk_rows: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        owner, at = self._members(self.by_chunk, chunk_rows)
        return owner, self.by_chunk[at, 1]

    def chunks_holding(self, sent_rows: Sequence[int]) -> np.ndarray:
        """The chunk rows holding each sentence, in the order of ``sent_rows``."""
        return self.by_sentence[self._members(self.by_sentence, sent_rows)[1], 1]

    def sentences_in(self, chunk_rows: Iterable[int]) -> dict[int, list[tuple[int, int, int]]]:
        return {
            k: list(map(tuple, v.tolist()))
            for k, v in self._groups(self.by_chunk, chunk_rows).items()
        }

    def chunks_of(self, sent_rows: Iterable[int]) -> dict[int, list[int]]:
        return {k: v[:, 0].tolist() for k, v in self._groups(self.by_sentence, sent_rows).items()}


class FlatVectors:
    """Rows of a flat FAISS index read straight from its memory (``reconstruct`` is one Python
    call per row: 1.4 ms of a search for ~200 rows). None of this for IVF indexes."""

    def __init__(self, index: Any, flat: Any) -> None:
        n, d = int(flat.ntotal), int(flat.d)
        # A view on the index's own buffer: valid while the (read-only) index lives, which the
        # reader keeps alive beside this object.
        self.matrix = faiss.rev_swig_ptr(flat.get_xb(), n * d).reshape(n, d) if n else (
            np.zeros((0, d), dtype=np.float32))  # fmt: skip
        ids = faiss.vector_to_array(index.id_map).astype(np.int64)
        self.order = np.argsort(ids, kind="stable")
        self.sorted_ids = ids[self.order]

    @classmethod
    def of(cls, index: Any) -> FlatVectors | None:
        if not isinstance(index, faiss.IndexIDMap2):
            return None
        flat = faiss.downcast_index(index.index)
        return cls(index, flat) if isinstance(flat, faiss.IndexFlat) else None

    def get(self, rows: Sequence[int]) -> np.ndarray | None:
        """The vectors of ``rows``, or None if one is not in the index."""
        want = np.asarray(rows, dtype=np.int64)
        pos = np.searchsorted(self.sorted_ids, want)
        if (pos >= len(self.sorted_ids)).any() or (self.sorted_ids[np.minimum(
                pos, len(self.sorted_ids) - 1)] != want).any():  # fmt: skip
            return None
        return self.matrix[self.order[pos]]
