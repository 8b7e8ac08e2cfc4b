"""Language-aware BM25: tokenise per language (Snowball stems, stopwords, jieba for Chinese), score.

Besides stems, every name-like token (a number, an acronym, CamelCase, a capitalised word) is also
kept verbatim, lower-cased, with a ``#`` prefix. Stems differ between languages; ``#g7``,
``#chatrhino`` and ``#160`` do not, so they are the part of lexical evidence that can match across
languages.

The BM25 matrix is stored as plain ``.npz`` arrays (``allow_pickle=False``) plus a JSON vocabulary,
and rebuilt from the per-chunk terms kept in the chunk table, so updates stay incremental.
Not done here: fusion with dense scores (see ``rag/search``).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

log = logging.getLogger(__name__)

LEXICAL_NPZ = "lexical.npz"
LEXICAL_VOCAB = "lexical_vocab.json"
K1 = 1.2
B = 0.75

_STEMMERS = {
    "en": "english", "nl": "dutch", "sv": "swedish", "de": "german", "fr": "french",
    "es": "spanish", "it": "italian", "pt": "portuguese", "da": "danish", "no": "norwegian",
    "nb": "norwegian", "fi": "finnish", "ru": "russian", "ro": "romanian", "hu": "hungarian",
    "el": "greek", "tr": "turkish", "ar": "arabic", "pl": "polish", "cs": "czech",
}  # fmt: skip
_STOPWORD_LISTS = {
    "en": "STOPWORDS_EN_PLUS", "nl": "STOPWORDS_DUTCH", "sv": "STOPWORDS_SWEDISH",
    "de": "STOPWORDS_GERMAN", "fr": "STOPWORDS_FRENCH", "es": "STOPWORDS_SPANISH",
    "it": "STOPWORDS_ITALIAN", "pt": "STOPWORDS_PORTUGUESE", "da": "STOPWORDS_DANISH",
    "no": "STOPWORDS_NORWEGIAN", "nb": "STOPWORDS_NORWEGIAN", "ru": "STOPWORDS_RUSSIAN",
    "tr": "STOPWORDS_TURKISH", "zh": "STOPWORDS_CHINESE",
}  # fmt: skip
_TOKEN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]+|[^\W_]+(?:[-'’][^\W_]+)*")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
_ZH_PUNCT_WORDS = {
    "的",
    "了",
    "和",
    "与",
    "及",
    "或",
    "等",
    "在",
    "对",
    "是",
    "为",
    "其",
    "之",
    "将",
}


@lru_cache(maxsize=32)
def _stemmer(lang: str) -> Any:
    import Stemmer

    name = _STEMMERS.get(lang)
    return Stemmer.Stemmer(name) if name else None


@lru_cache(maxsize=32)
def stopwords(lang: str) -> frozenset[str]:
    import bm25s.stopwords as sw

    name = _STOPWORD_LISTS.get(lang)
    words = set(getattr(sw, name)) if name else set()
    if lang == "zh":
        words |= _ZH_PUNCT_WORDS
    return frozenset(w.lower() for w in words)


@lru_cache(maxsize=1)
def _jieba() -> Any:
    import jieba

    jieba.setLogLevel(logging.WARNING)
    return jieba


def _name_like(token: str) -> bool:
    """Numbers, acronyms, CamelCase and capitalised words: the same in every language."""
    return (
        any(ch.isdigit() for ch in token)
        or token[0].isupper()
        or any(ch.isupper() for ch in token[1:])
    )


def tokenize(text: str, lang: str) -> list[str]:
    """Terms for BM25. Example: ``tokenize("The G7 leaders met", "en")``
    gives ``['#g7', 'g7', 'leader', 'met']``.
    """
    stem = _stemmer(lang)
    stop = stopwords(lang)
    out: list[str] = []
    for m in _TOKEN.finditer(text):
        tok = m.group()
        if _HAN.match(tok):
            out.extend(w for w in _jieba().cut_for_search(tok) if w not in stop and w.strip())
            continue
        low = tok.lower()
        if low in stop or (len(low) == 1 and not low.isdigit()):
            continue
        if _name_like(tok):
            out.append("#" + low)
        out.append(stem.stemWord(low) if stem else low)
    return out


def terms_to_text(terms: Sequence[str]) -> str:
    """Store terms in the chunk table (space is never inside a term)."""
    return " ".join(terms)


class LexicalIndex:
    """BM25 over chunk rows. ``rows[i]`` is the chunk row id of matrix row ``i``."""

    def __init__(self, matrix: sparse.csc_matrix, rows: np.ndarray, vocab: dict[str, int]) -> None:
        self.matrix = matrix  # (n_chunks, n_terms) BM25 weights
        self.rows = rows
        self.vocab = vocab

    @classmethod
    def build(cls, items: Iterable[tuple[int, str]]) -> LexicalIndex:
        """From ``(row id, space-joined terms)`` pairs."""
        vocab: dict[str, int] = {}
        rows: list[int] = []
        indptr = [0]
        indices: list[int] = []
        counts: list[int] = []
        for row, text in items:
            rows.append(row)
            tf: dict[int, int] = {}
            for term in text.split():
                tid = vocab.setdefault(term, len(vocab))
                tf[tid] = tf.get(tid, 0) + 1
            indices.extend(tf)
            counts.extend(tf.values())
            indptr.append(len(indices))
        n, v = len(rows), max(1, len(vocab))
        tfm = sparse.csr_matrix(
            (np.asarray(counts, dtype=np.float32), np.asarray(indices, dtype=np.int32), indptr),
            shape=(n, v),
        )
        doc_len = np.asarray(tfm.sum(axis=1)).ravel()
        avg = float(doc_len.mean()) if n else 1.0
        df = np.bincount(tfm.indices, minlength=v).astype(np.float32)
        idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5)).astype(np.float32)
        # BM25 weight per (chunk, term), computed on the non-zeros only.
        norm = K1 * (1 - B + B * doc_len / (avg or 1.0))
        row_of = np.repeat(np.arange(n), np.diff(tfm.indptr))
        data = tfm.data * (K1 + 1) / (tfm.data + norm[row_of]) * idf[tfm.indices]
        weights = sparse.csr_matrix(
            (data.astype(np.float32), tfm.indices, tfm.indptr), shape=(n, v)
        )
        return cls(weights.tocsc(), np.asarray(rows, dtype=np.int64), vocab)

    def scores(self, terms: Sequence[str] | Mapping[str, float]) -> np.ndarray:
        """BM25 score of every chunk (aligned with ``self.rows``) for the query terms: a sequence
        (each occurrence weighs 1) or term → weight (translated terms weigh less)."""
        weighted = terms.items() if isinstance(terms, Mapping) else ((t, 1.0) for t in terms)
        found = [(self.vocab[t], w) for t, w in weighted if t in self.vocab]
        if not found or self.matrix.shape[0] == 0:
            return np.zeros(len(self.rows), dtype=np.float32)
        q = np.zeros(self.matrix.shape[1], dtype=np.float32)
        for tid, w in found:
            q[tid] += w
        cols = np.nonzero(q)[0]
        return np.asarray(self.matrix[:, cols] @ q[cols]).ravel()

    def save(self, folder: Path) -> None:
        m = self.matrix
        np.savez(
            folder / LEXICAL_NPZ,
            data=m.data, indices=m.indices, indptr=m.indptr, shape=np.asarray(m.shape),
            rows=self.rows,
        )  # fmt: skip
        (folder / LEXICAL_VOCAB).write_text(json.dumps(self.vocab, ensure_ascii=False), "utf-8")

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex:
        with np.load(folder / LEXICAL_NPZ, allow_pickle=False) as z:
            shape = tuple(int(x) for x in z["shape"])
            matrix = sparse.csc_matrix((z["data"], z["indices"], z["indptr"]), shape=shape)
            rows = z["rows"]
        vocab = json.loads((folder / LEXICAL_VOCAB).read_text("utf-8"))
        return cls(matrix, rows, vocab)
