"""The catalog: jurisdiction/type/status/licence metadata, translation links, and the shipped
corpus's catalog read against the files in ``corpus/``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from rag.ingest.corpus import (
    CATALOG_NAME,
    CorpusFile,
    find_files,
    load_file,
    read_catalog,
    translation_links,
)
from tests.conftest import SHIPPED_CORPUS

JURISDICTIONS = {"EU", "US", "US-CO", "US-CA", "CN", "JP", "KR", "BR", "AU", "INT"}
TYPES = {
    "law", "bill", "regulation", "executive order", "memorandum", "guidelines", "framework",
    "declaration", "resolution", "code of conduct", "code of practice", "discussion paper",
    "news", "opinion",
}  # fmt: skip


def _catalog(entries: list[dict[str, str]]) -> str:
    return "\n".join(json.dumps(e) for e in entries)


def test_metadata_fields_and_aliases(make_corpus: Callable[..., Path]) -> None:
    corpus = make_corpus({
        "co.txt": "Colorado requires developers of high-risk AI systems to use reasonable care.",
        "old.txt": "An older catalog line with a country key.",
        CATALOG_NAME: _catalog([
            {"path": "co.txt", "jurisdiction": "us-co", "type": "Law", "status": "enacted",
             "license": "public domain", "source": "Colorado General Assembly"},
            {"path": "old.txt", "country": "se"},
        ]),
    })  # fmt: skip
    catalog = read_catalog(corpus)
    [co] = load_file(CorpusFile(corpus / "co.txt", "co.txt"), catalog)
    assert (co.jurisdiction, co.doc_type, co.status, co.licence) == (
        "US-CO", "law", "enacted", "public domain")  # fmt: skip
    [old] = load_file(CorpusFile(corpus / "old.txt", "old.txt"), catalog)
    assert old.jurisdiction == "SE"


@pytest.mark.parametrize("bad", ["Sweden", "U", "US-", "EUROPE", "12"])
def test_bad_jurisdiction_names_the_line(make_corpus: Callable[..., Path], bad: str) -> None:
    corpus = make_corpus({"a.txt": "text", CATALOG_NAME: _catalog([{"path": "a.txt",
                                                                     "jurisdiction": bad}])})  # fmt: skip
    with pytest.raises(ValueError, match=rf"catalog\.jsonl:1: jurisdiction '{bad.upper()}' is not"):
        read_catalog(corpus)


def test_translation_links_both_ways(make_corpus: Callable[..., Path]) -> None:
    entries = {"a1": {"text_content": "Article one."}, "a2": {"text_content": "Article two."}}
    corpus = make_corpus({
        "en/articles.json": json.dumps(entries),
        "nl/articles.json": json.dumps({"a1": {"text_content": "Artikel een."}}),
        CATALOG_NAME: _catalog([
            {"path": "en/articles.json", "id": "act"},
            {"path": "nl/articles.json", "id": "act_nl", "translation_of": "act"},
        ]),
    })  # fmt: skip
    catalog = read_catalog(corpus)
    assert translation_links(catalog) == {"act": ("act_nl",), "act_nl": ("act",)}
    en = load_file(CorpusFile(corpus / "en/articles.json", "en/articles.json"), catalog)
    nl = load_file(CorpusFile(corpus / "nl/articles.json", "nl/articles.json"), catalog)
    assert {d.doc_id: d.translations for d in en} == {
        "act/a1": ("act_nl/a1",), "act/a2": ("act_nl/a2",)}  # fmt: skip
    assert [(d.doc_id, d.translations) for d in nl] == [("act_nl/a1", ("act/a1",))]


# --- the shipped corpus ---------------------------------------------------------------------


def test_every_shipped_file_has_complete_catalog_metadata() -> None:
    files, refused = find_files(SHIPPED_CORPUS)
    assert not refused
    catalog = read_catalog(SHIPPED_CORPUS)
    rels = {cf.rel for cf in files}
    assert rels == set(catalog), rels ^ set(catalog)
    for rel, meta in catalog.items():
        for key in ("title", "lang", "date", "jurisdiction", "type", "source", "licence"):
            assert meta.get(key), f"{rel}: no {key}"
        assert meta["jurisdiction"] in JURISDICTIONS, rel
        assert meta["type"] in TYPES, (rel, meta["type"])
        if meta["type"] not in ("news", "opinion"):
            assert meta.get("url", "").startswith("https://"), f"{rel}: no official URL"


def test_shipped_corpus_covers_the_jurisdictions_and_links_the_dutch_ai_act() -> None:
    catalog = read_catalog(SHIPPED_CORPUS)
    assert {m["jurisdiction"] for m in catalog.values()} == JURISDICTIONS
    links = translation_links(catalog)
    assert links["eu_ai_act"] == ("eu_ai_act_nl",)
    en = json.loads((SHIPPED_CORPUS / "eu_ai_act/articles.json").read_text("utf-8"))
    nl = json.loads((SHIPPED_CORPUS / "eu_ai_act_nl/articles.json").read_text("utf-8"))
    assert set(en) == set(nl) and len(nl) == 113  # one Dutch article per English one
    assert nl["article_005"]["title"] == "Artikel 5: Verboden AI-praktijken"
    assert "de sociale score" in nl["article_005"]["text_content"]  # Art. 5(1)(c), social scoring


def test_every_shipped_file_is_attributed() -> None:
    attribution = (SHIPPED_CORPUS / "ATTRIBUTION.md").read_text("utf-8")
    for rel in read_catalog(SHIPPED_CORPUS):
        folder, name = rel.rsplit("/", 1) if "/" in rel else ("", rel)
        named = name in attribution or (folder and f"`{folder}/" in attribution)
        assert named, f"{rel} is not in corpus/ATTRIBUTION.md"
