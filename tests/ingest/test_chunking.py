"""Chunking: offsets, sizes, overlap, sentence boundaries, Chinese."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from rag.ingest.chunking import chunk_document, estimate_tokens, sentence_spans
from rag.types import Document


def _doc(text: str, doc_id: str = "d") -> Document:
    return Document(doc_id=doc_id, text=text, title="t", lang="en", path="d.txt")


def test_sentence_spans_basic() -> None:
    text = "One. Two! Three?"
    assert [text[s:e] for s, e in sentence_spans(text)] == ["One.", "Two!", "Three?"]


def test_sentence_spans_keep_abbreviations_and_numbered_points() -> None:
    text = "1. The purpose, e.g. safety, is set by Art. 5 of the Act. Dr. Smith agreed."
    got = [text[s:e] for s, e in sentence_spans(text)]
    assert got == ["1. The purpose, e.g. safety, is set by Art. 5 of the Act.", "Dr. Smith agreed."]


def test_sentence_spans_chinese_without_spaces() -> None:
    text = "第一条 本规定自公布之日起施行。第二条 算法推荐服务提供者应当遵守法律！是吗？"
    got = [text[s:e] for s, e in sentence_spans(text)]
    assert got == [
        "第一条 本规定自公布之日起施行。",
        "第二条 算法推荐服务提供者应当遵守法律！",
        "是吗？",
    ]


def test_chunks_respect_size_and_identity() -> None:
    sentences = [f"Sentence number {i} talks about rule {i} in some detail." for i in range(200)]
    doc = _doc(" ".join(sentences))
    chunks = chunk_document(doc, max_tokens=60, overlap_tokens=15)
    assert len(chunks) > 5
    for n, c in enumerate(chunks):
        assert doc.text[c.start : c.end] == c.text
        assert c.chunk_id == f"d#{n}" and c.ordinal == n
        assert estimate_tokens([c.text])[0] <= 60 + 2  # +2: sum of parts vs whole rounding
        assert c.text[0].isupper() and c.text.endswith(".")  # whole sentences


def test_chunks_overlap_by_trailing_sentences() -> None:
    doc = _doc(" ".join(f"Point {i} is here." for i in range(60)))
    chunks = chunk_document(doc, max_tokens=40, overlap_tokens=12)
    for a, b in itertools.pairwise(chunks):
        assert b.start < a.end  # overlapping
        assert b.start > a.start  # but always moving forward


def test_no_overlap_across_paragraphs() -> None:
    para = " ".join(f"Claim {i} holds." for i in range(12))
    doc = _doc(para + "\n\n" + para.replace("Claim", "Other"))
    chunks = chunk_document(doc, max_tokens=60, overlap_tokens=20)
    assert any(c.text.startswith("Other 0") for c in chunks)
    assert not any("Claim" in c.text and "Other" in c.text for c in chunks)


def test_overlong_sentence_is_cut_into_pieces() -> None:
    doc = _doc("word " * 1000 + "end.")
    chunks = chunk_document(doc, max_tokens=50, overlap_tokens=0)
    assert len(chunks) > 10
    assert all(estimate_tokens([c.text])[0] <= 50 for c in chunks)
    assert all(doc.text[c.start : c.end] == c.text for c in chunks)


def test_chinese_document_chunks() -> None:
    text = "".join(f"第{i}条 提供者应当依法履行义务，保护用户权益。" for i in range(100))
    doc = _doc(text)
    chunks = chunk_document(doc, max_tokens=80, overlap_tokens=10)
    assert len(chunks) > 5
    assert all(c.text.endswith("。") for c in chunks)
    assert all(doc.text[c.start : c.end] == c.text for c in chunks)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.sampled_from([*"abc DEF.!?。，\n\t ", "\n\n", "Mr.", "1.", "中文", "word "]),
        max_size=300,
    ).map("".join),
    st.integers(min_value=16, max_value=80),
    st.integers(min_value=0, max_value=7),
)
def test_offsets_always_hold(text: str, max_tokens: int, overlap: int) -> None:
    doc = _doc(text)
    chunks = chunk_document(doc, max_tokens=max_tokens, overlap_tokens=overlap)
    for c in chunks:
        assert doc.text[c.start : c.end] == c.text and c.text.strip() == c.text and c.text
    covered = "".join(text[c.start : c.end] for c in chunks)
    assert set(covered) >= set(text.replace(" ", "").replace("\n", "").replace("\t", ""))


def test_text_length_counts_a_cjk_character_as_three_letters() -> None:
    from rag.ingest.chunking import text_length

    assert text_length("in force") == 8
    assert text_length("施行") == 6
    assert text_length("本条例自2022年11月1日起施行。") == 18 + 2 * 10
    assert text_length("") == 0


def test_clause_spans_split_a_legal_enumeration_into_its_items() -> None:
    from rag.ingest.chunking import clause_spans

    text = (
        "1. The following AI practices shall be prohibited: (a) the placing on the market of a "
        "system; (b) the use of an AI system that exploits vulnerabilities; or (c) social "
        "scoring. 2. Member States may (i) allow it."
    )
    parts = [text[s:e] for s, e in clause_spans(text)]
    assert parts == [
        "1. The following AI practices shall be prohibited:",
        "(a) the placing on the market of a system;",
        "(b) the use of an AI system that exploits vulnerabilities;",
        "or (c) social scoring.",
        "2. Member States may (i) allow it.",  # no ';' or ':' before (i): not an item list
    ]


def test_clause_spans_leave_ordinary_sentences_and_references_alone() -> None:
    from rag.ingest.chunking import clause_spans

    for text in (
        "See Article 5(1), point (a); and Regulation (EU) 2016/679 as amended.",
        "Het verbod geldt: voor iedereen. Dat is alles.",
        "第五条 提供者应当：（一）遵守法律；（二）尊重社会公德。",
    ):
        assert clause_spans(text) == sentence_spans(text)


@given(
    st.lists(
        st.sampled_from([*"abc DEF.;:", " (a) ", " (ii) ", "; or (b) ", ": (c) ", "\n\n", "x"]),
        max_size=200,
    ).map("".join)
)
def test_clause_spans_cover_each_sentence_in_order(text: str) -> None:
    from rag.ingest.chunking import clause_spans

    clauses = clause_spans(text)
    for s, e in clauses:
        assert e > s and text[s:e].strip() == text[s:e]
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(clauses))
    for s, e in sentence_spans(text):  # each sentence is its clauses, whitespace between them
        inside = [c for c in clauses if s <= c[0] and c[1] <= e]
        assert inside[0][0] == s and inside[-1][1] == e
        assert all(not text[a[1] : b[0]].strip() for a, b in itertools.pairwise(inside))
