"""The hand-written cross-lingual dev set (tests/data/devset.jsonl) is well-formed and its gold
phrases really occur in the cleaned text of the cited documents."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

from rag.ingest.corpus import find_files, iter_documents, read_catalog
from tests.conftest import SHIPPED_CORPUS

DEVSET = Path(__file__).parent / "data" / "devset.jsonl"
LANGS = {"en", "nl", "sv", "de", "fr", "es", "zh"}


SCAN = "china/CN_genai_interim_measures_2023_scan.zh"  # indexed only where Tesseract reads it


def test_devset_is_valid() -> None:
    files, _ = find_files(SHIPPED_CORPUS)
    catalog = read_catalog(SHIPPED_CORPUS)
    docs = {
        d.doc_id: d
        for _, res in iter_documents(files, catalog)
        if isinstance(res, list)
        for d in res
    }
    rows = [
        json.loads(line) for line in DEVSET.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    # a document's language as the catalog states it (not detected)
    lang_of = {d.doc_id: catalog[d.path]["lang"] for d in docs.values()}

    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), [i for i, n in Counter(ids).items() if n > 1]
    for r in rows:
        assert r["lang"] in LANGS, r["id"]
        assert r["question"].strip(), r["id"]
        if not r["answerable"]:
            assert r["gold"] == [], r["id"]
            continue
        assert r["gold"] and r["answer"].strip(), r["id"]
        for g in r["gold"]:
            if g["doc_id"] == SCAN and shutil.which("tesseract") is None:
                continue  # the scan is skipped without OCR (its skip is tested in test_pdf)
            assert g["doc_id"] in docs, (r["id"], g["doc_id"])
            assert g["phrase"] in docs[g["doc_id"]].text, (r["id"], g["doc_id"], g["phrase"])
            assert lang_of[g["doc_id"]] == docs[g["doc_id"]].lang, g["doc_id"]
            assert lang_of[g["doc_id"]] != r["lang"], (
                r["id"],
                "gold doc in the question's language",
            )

    answerable = [r for r in rows if r["answerable"]]
    assert len(answerable) >= 36 and len(rows) - len(answerable) >= 12
    assert len({r["lang"] for r in answerable}) >= 6
