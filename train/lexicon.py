"""Build the query-translation lexicons (``rag/search/lexicon/``) from FreeDict dictionaries.

    apt-get install dict-freedict-swe-eng dict-freedict-eng-swe dict-freedict-nld-eng \
        dict-freedict-eng-nld dict-freedict-deu-eng dict-freedict-eng-deu \
        dict-freedict-fra-eng dict-freedict-eng-fra dict-freedict-spa-eng dict-freedict-eng-spa
    python -m train.lexicon [--dictd /usr/share/dictd] [--out rag/search/lexicon]

FreeDict ships each dictionary in dictd format (``.index`` of base-64 offsets into a dictzip'd
``.dict.dz``). For every single-word headword the first translations are kept (parenthesised
notes, ``[domain]`` and ``<grammar>`` tags, "see:"/"Synonyms:"/"Note:" lines dropped), tokenised
with the BM25 tokenizer of the target language, keyed by the headword's stem
(``rag.search.translate.source_key``). Deterministic: the same dictionaries give the same files.

Chinese has no FreeDict dictionary in Debian, so ``zh-en`` and ``en-zh`` are *induced* from the
bundled encoder (``induce_zh``): the 15,000 most frequent 2–4-character words of jieba's
dictionary and the single-word headwords of the English–{sv,nl,fr,es} FreeDicts are embedded as
queries, language-centered with the shipped calibration means, and paired by CSLS (Conneau et
al. 2018, k = 10): mutual nearest neighbours with cosine ≥ 0.68, and any of a word's two best
CSLS candidates with cosine ≥ 0.72 (thresholds set by reading samples of pairs, not by a
benchmark). ``--no-zh`` skips it (it needs the model, ~4 min on 2 cores).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
from pathlib import Path

import numpy as np

from rag.index.lexical import tokenize
from rag.search.translate import LEXICON_DIR, MAX_TRANSLATIONS, source_key

ISO3 = {"en": "eng", "sv": "swe", "nl": "nld", "de": "deu", "fr": "fra", "es": "spa"}
PAIRS = [(x, "en") for x in ("sv", "nl", "de", "fr", "es")] + [
    ("en", x) for x in ("sv", "nl", "de", "fr", "es")
]
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_SKIP = re.compile(r"^(see|synonyms?|note|antonyms?|also)\s*:", re.IGNORECASE)
_NOTES = re.compile(r"<[^>]*>|\[[^\]]*\]|\([^)]*\)|\{[^}]*\}|/[^/]*/")
MAX_TERMS = 2  # a longer "translation" is a paraphrase or an explanation, not a term


def _b64(s: str) -> int:
    n = 0
    for ch in s:
        n = n * 64 + _B64.index(ch)
    return n


def read_dictd(index: Path, data: Path) -> dict[str, list[str]]:
    """Headword → translations (plain strings, in dictionary order, no duplicates)."""
    with gzip.open(data) as f:
        raw = f.read()
    out: dict[str, list[str]] = {}
    for line in index.read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) < 3 or parts[0].startswith("00database"):
            continue
        head, off, size = parts[0].strip(), _b64(parts[1]), _b64(parts[2])
        body = raw[off : off + size].decode("utf-8", "replace").split("\n")[1:]
        found = out.setdefault(head, [])
        for text in body:
            text = text.strip()
            if not text or _SKIP.match(text):
                continue
            text = re.sub(r"^\d+\.\s*", "", _NOTES.sub(" ", text))
            for t in re.split(r"[,;]", text):
                t = " ".join(t.split())
                if t and len(t) <= 40 and t not in found:
                    found.append(t)
    return out


def build_pair(dictd: Path, src: str, tgt: str) -> dict[str, list[list[str]]]:
    name = f"freedict-{ISO3[src]}-{ISO3[tgt]}"
    raw = read_dictd(dictd / f"{name}.index", dictd / f"{name}.dict.dz")
    entries: dict[str, list[list[str]]] = {}
    for head in sorted(raw):
        if " " in head or not raw[head]:
            continue
        found: list[list[str]] = []
        for t in raw[head]:
            terms = [x for x in tokenize(t, tgt) if not x.startswith("#")]
            if terms and len(terms) <= MAX_TERMS and terms not in found:
                found.append(terms)
        # Under the headword's stem and, where it differs, the headword itself: Snowball is not
        # idempotent ("försvarets" → "försvar", but "försvar" → "försv"), so an inflected query
        # word's stem often equals the bare headword.
        for key in dict.fromkeys([source_key(head, src), head.lower()]):
            have = entries.setdefault(key, [])
            for terms in found:
                if terms not in have and len(have) < MAX_TRANSLATIONS:
                    have.append(terms)
    return {k: v for k, v in entries.items() if v}


ZH_WORDS = 15000
MUTUAL_COS, ANY_COS, CSLS_K = 0.68, 0.72, 10


def _zh_vocabulary() -> list[str]:
    import jieba

    found = []
    with open(os.path.join(os.path.dirname(jieba.__file__), "dict.txt"), encoding="utf-8") as f:
        for line in f:
            word, freq, *_ = line.split()
            if 2 <= len(word) <= 4 and re.fullmatch(r"[\u4e00-\u9fff]+", word):
                found.append((-int(freq), word))
    return [w for _, w in sorted(found)[:ZH_WORDS]]


def _en_vocabulary(dictd: Path) -> list[str]:
    words: set[str] = set()
    for tgt in ("swe", "nld", "fra", "spa"):
        name = f"freedict-eng-{tgt}"
        for head in read_dictd(dictd / f"{name}.index", dictd / f"{name}.dict.dz"):
            head = head.strip().lower()
            if re.fullmatch(r"[a-z]{3,}", head):
                words.add(head)
    return sorted(words)


def _pairs(cos: np.ndarray) -> list[tuple[int, int]]:
    """(row, column) pairs of a cosine matrix kept by the CSLS rule in the module docstring."""
    k = CSLS_K
    r_rows = np.sort(cos, 1)[:, -k:].mean(1)
    r_cols = np.sort(cos, 0)[-k:, :].mean(0)
    csls = 2 * cos - r_rows[:, None] - r_cols[None, :]
    best_col, best_row = csls.argmax(1), csls.argmax(0)
    out = []
    for i in range(cos.shape[0]):
        for j in np.argsort(-csls[i])[:2]:
            mutual = best_row[j] == i and best_col[i] == j
            if (mutual and cos[i, j] >= MUTUAL_COS) or cos[i, j] >= ANY_COS:
                out.append((i, int(j)))
    return out


def induce_zh(dictd: Path) -> dict[str, dict[str, list[list[str]]]]:
    """``{"zh-en": entries, "en-zh": entries}`` induced from the bundled encoder."""
    from rag.config import Settings
    from rag.models.centering import load_centering
    from rag.models.embeddings import make_embedder

    settings = Settings.from_env()
    emb = make_embedder(settings.model, cache_dir=settings.cache_dir)
    centering = load_centering(emb, settings.cache_dir)
    zh, en = _zh_vocabulary(), _en_vocabulary(dictd)
    zv = np.stack([centering.query_vec(v, "zh") for v in emb.encode_queries(zh)])
    ev = np.stack([centering.query_vec(v, "en") for v in emb.encode_queries(en)])
    cos = zv @ ev.T
    out: dict[str, dict[str, list[list[str]]]] = {"zh-en": {}, "en-zh": {}}
    for i, j in _pairs(cos):
        terms = [x for x in tokenize(en[j], "en") if not x.startswith("#")]
        have = out["zh-en"].setdefault(zh[i], [])
        if terms and terms not in have:
            have.append(terms)
    for j, i in _pairs(cos.T):
        terms = tokenize(zh[i], "zh")[:MAX_TERMS]
        for key in dict.fromkeys([source_key(en[j], "en"), en[j]]):
            have = out["en-zh"].setdefault(key, [])
            if terms and terms not in have and len(have) < MAX_TRANSLATIONS:
                have.append(terms)
    return {pair: {k: v for k, v in entries.items() if v} for pair, entries in out.items()}


def _write(path: Path, source: str, licence: str, entries: dict[str, list[list[str]]]) -> None:
    doc = {"source": source, "licence": licence, "entries": entries}
    with gzip.GzipFile(path, "wb", mtime=0) as f:
        f.write(json.dumps(doc, ensure_ascii=False, sort_keys=True).encode("utf-8"))
    print(f"{path}: {len(entries)} keys, {path.stat().st_size / 1e6:.2f} MB", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dictd", type=Path, default=Path("/usr/share/dictd"))
    ap.add_argument("--out", type=Path, default=LEXICON_DIR)
    ap.add_argument("--no-zh", action="store_true", help="skip the induced Chinese lexicons")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for src, tgt in PAIRS:
        name = f"{ISO3[src]}-{ISO3[tgt]}"
        source = f"FreeDict {name} (Debian dict-freedict-{name})"
        licence = "GPL-2.0-or-later (FreeDict contributors)"
        _write(args.out / f"{src}-{tgt}.json.gz", source, licence, build_pair(args.dictd, src, tgt))
    if not args.no_zh:
        for pair, entries in induce_zh(args.dictd).items():
            _write(args.out / f"{pair}.json.gz",
                   "induced from multilingual-e5-small (CSLS over jieba's dictionary words and "
                   "FreeDict English headwords, train/lexicon.py)",
                   "GPL-2.0-or-later (English headwords from FreeDict); jieba dictionary MIT",
                   entries)  # fmt: skip


if __name__ == "__main__":
    main()
