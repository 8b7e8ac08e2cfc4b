"""How the candidate signals combine into one ranking: the :class:`Fusion` weights, the fused
score, the language spread and the per-document cap (pure functions over scored rows)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Fusion:
    """How the evidence combines (the measurements behind the defaults: README, "Retrieval").

    For each candidate passage ``c`` (the union of the top chunks, the chunks of the top sentences
    and the top BM25 chunks)::

        score = (1 - sentence) * cos(q, c) + sentence * max cos(q, s in c) + w * bm25 / max bm25

    where ``w`` is ``same_lang`` when the chunk is in the question's language and ``cross_lang``
    otherwise (across languages only names, numbers and acronyms match, and, with ``translate``,
    the query words' dictionary translations). Vectors are
    language-centered (see ``centering.py``). ``per_doc`` caps how many chunks of one document
    reach the result list, so one long document cannot fill it. ``lang_penalty`` spreads the list
    over document languages: each passage pays it once for every passage of its language ranked
    above it. ``mode="dense"`` uses the chunk vectors alone.
    """

    mode: str = "hybrid"  # or "dense"
    sentence: float = 0.7
    same_lang: float = 0.02
    cross_lang: float = 0.02
    # BM25 also gets the query words' dictionary translations (``translate.py``), so across
    # languages more than names can match; weights: README "Cross-lingual retrieval 2.0".
    translate: bool = False
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
        if self.same_lang < 0 or self.cross_lang < 0:
            raise ValueError(f"BM25 weights must be >= 0, got {self.same_lang}, {self.cross_lang}")
        if self.lang_penalty < 0:
            raise ValueError(f"lang_penalty must be >= 0, got {self.lang_penalty}")


def fused_scores(
    f: Fusion, chunk_cos: np.ndarray, best_sent: np.ndarray, same: np.ndarray, lex: np.ndarray
) -> np.ndarray:
    """The fused score of each candidate (see :class:`Fusion`); ``lex`` is BM25 / max BM25 and
    ``same`` says whether the passage is in the question's language."""
    return (
        (1 - f.sentence) * chunk_cos
        + f.sentence * best_sent
        + np.where(same, f.same_lang, f.cross_lang) * lex
    )


def spread_languages(
    scored: list[tuple[int, float]], lang: dict[int, str], penalty: float
) -> list[tuple[int, float]]:
    """Reorder so that each further passage in a language already listed pays ``penalty`` per
    passage of that language above it (the best passage stays first).

    Multilingual encoders favour passages in the question's language; a small, steady
    penalty lets the best passage of another language into the first places when it is
    nearly as good (README, "Shipped corpus dev set", for what it gains and costs).
    """
    if penalty <= 0:
        return scored
    return list(iter_spread(scored, lang, penalty))


def iter_spread(
    scored: list[tuple[int, float]], lang: dict[int, str], penalty: float
) -> Iterator[tuple[int, float]]:
    """:func:`spread_languages` one passage at a time, so a caller that needs the first few
    (the per-document cap stops at k) does not order the whole pool."""
    queues: dict[str, deque[tuple[int, float]]] = {}
    for item in scored:  # best first within each language
        queues.setdefault(lang[item[0]], deque()).append(item)
    used = dict.fromkeys(queues, 0)
    while queues:
        best = max(queues, key=lambda x: queues[x][0][1] - penalty * used[x])
        yield queues[best].popleft()
        used[best] += 1
        if not queues[best]:
            del queues[best]


def cap_per_doc(
    scored: Iterable[tuple[int, float]], doc_of: dict[int, str], per_doc: int, k: int
) -> list[tuple[int, float]]:
    """The first ``k`` of ``scored`` with at most ``per_doc`` rows of one document."""
    out: list[tuple[int, float]] = []
    seen: dict[str, int] = {}
    for row, score in scored:
        doc = doc_of.get(row, "")
        if seen.get(doc, 0) < per_doc:
            seen[doc] = seen.get(doc, 0) + 1
            out.append((row, score))
        if len(out) == k:
            break
    return out
