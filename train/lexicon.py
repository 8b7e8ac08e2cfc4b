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
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
from pathlib import Path

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dictd", type=Path, default=Path("/usr/share/dictd"))
    ap.add_argument("--out", type=Path, default=LEXICON_DIR)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for src, tgt in PAIRS:
        entries = build_pair(args.dictd, src, tgt)
        name = f"{ISO3[src]}-{ISO3[tgt]}"
        doc = {
            "source": f"FreeDict {name} (Debian dict-freedict-{name})",
            "licence": "GPL-2.0-or-later (FreeDict contributors)",
            "entries": entries,
        }
        path = args.out / f"{src}-{tgt}.json.gz"
        with gzip.GzipFile(path, "wb", mtime=0) as f:
            f.write(json.dumps(doc, ensure_ascii=False, sort_keys=True).encode("utf-8"))
        print(f"{path}: {len(entries)} keys, {path.stat().st_size / 1e6:.2f} MB", flush=True)


if __name__ == "__main__":
    main()
