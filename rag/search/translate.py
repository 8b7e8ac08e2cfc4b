"""Dictionary query translation for the lexical side: query words → weighted BM25 terms in other
languages, so that BM25 can match a Swedish question against an English passage.

The lexicons (``rag/search/lexicon/{src}-{tgt}.json.gz``) are derived from FreeDict dictionaries
by ``python -m train.lexicon`` and hold, for each single-word headword, keyed by its Snowball
stem and by the headword itself, up to five translations already tokenised for the target
language; a query word is looked up by its stem, then as written. A query
word with ``n`` translations adds each translation's terms with weight ``1/n`` (a flattened
structured query, after Pirkola 1998); the query's own terms keep weight 1, so passages in the
question's language score as before. Measurements and licences: README, "Cross-lingual retrieval
2.0", and ``rag/search/lexicon/README.md``.

Not done here: BM25 itself (``rag/index/lexical``), fusion (``fusion.py``).
"""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Mapping
from functools import cache
from pathlib import Path

from rag.index.lexical import _HAN, _TOKEN, _jieba, _stemmer, stopwords, tokenize

LEXICON_DIR = Path(__file__).parent / "lexicon"
MAX_TRANSLATIONS = 5
_lock = threading.Lock()


def source_key(word: str, lang: str) -> str:
    """The lookup key of a source word: its lower-cased Snowball stem (the word itself where the
    language has no stemmer)."""
    low = word.lower()
    stem = _stemmer(lang)
    return stem.stemWord(low) if stem else low


def source_words(text: str) -> list[str]:
    """The words of a query: runs of letters, with Chinese runs segmented by jieba."""
    out: list[str] = []
    for m in _TOKEN.finditer(text):
        word = m.group()
        if _HAN.match(word):
            out.extend(w for w in _jieba().cut(word) if w.strip())
        else:
            out.append(word)
    return out


@cache
def pairs() -> tuple[tuple[str, str], ...]:
    """The (source, target) language pairs that have a shipped lexicon (listed once)."""
    out = []
    for path in sorted(LEXICON_DIR.glob("*-*.json.gz")):
        src, tgt = path.name.removesuffix(".json.gz").split("-")
        out.append((src, tgt))
    return tuple(out)


@cache
def lexicon(src: str, tgt: str) -> Mapping[str, list[list[str]]]:
    """Key → translations (each a list of target-language BM25 terms); empty when not shipped."""
    path = LEXICON_DIR / f"{src}-{tgt}.json.gz"
    if not path.exists():
        return {}
    with _lock, gzip.open(path, "rt", encoding="utf-8") as f:
        data = json.load(f)
    entries: dict[str, list[list[str]]] = data["entries"]
    return entries


def load_all() -> int:
    """Read every shipped lexicon now (the app's warm-up); returns how many entries they hold."""
    return sum(len(lexicon(s, t)) for s, t in pairs())


def _norm(lang: str) -> str:
    return "no" if lang == "nb" else lang


def translated_terms(query: str, lang: str, targets: list[str] | None = None) -> dict[str, float]:
    """The query's own BM25 terms (weight 1 each occurrence) plus its words' dictionary
    translations into every target language with a lexicon (``targets`` limits them).

    Example: ``translated_terms("Vem vann valet?", "sv")`` holds ``vann``/``valet``'s own stems
    and English terms such as ``won`` (weights 1/n per translation)."""
    terms: dict[str, float] = {}
    for t in tokenize(query, lang):
        terms[t] = terms.get(t, 0.0) + 1.0
    src = _norm(lang)
    wanted = [t for s, t in pairs() if s == src and (targets is None or t in targets)]
    if not wanted:
        return terms
    stop = stopwords(src)
    words = [w for w in source_words(query) if len(w) >= 2 and w.lower() not in stop]
    for tgt in wanted:
        lex = lexicon(src, tgt)
        for word in words:
            found = lex.get(source_key(word, src)) or lex.get(word.lower())
            if not found:
                continue
            w = 1.0 / len(found)
            for translation in found:
                for term in translation:
                    terms[term] = terms.get(term, 0.0) + w
    return terms
