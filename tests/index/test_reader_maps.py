"""The FAISS reader's in-memory maps (chunk ↔ sentences, row → document, flat vectors) against
the SQLite table and FAISS ``reconstruct`` they replace on the search path, after an incremental
ingest has left gaps in the row ids; and a search whose BM25 side ran before its vector
(``Retriever.encode``) ranking exactly as one that did not."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from rag.index.faiss.store import FaissStore
from rag.service import Assistant
from rag.types import Filters

LONG = " ".join(
    f"Sentence {i} of the report says that rule {i} on artificial intelligence applies to "
    f"providers of model {i} from the year {2020 + i}."
    for i in range(40)
)
FILES = {
    "a.txt": LONG,
    "b.txt": "The AI Act bans social scoring. It also limits remote biometric identification.",
    "c.txt": "De AI-verordening verbiedt sociale scoring door overheden. Dat geldt vanaf 2025.",
    "d.txt": "Kina stöder diskussioner om AI-styrning. Ambassaden i London sa det i januari.",
}


@pytest.fixture
def store(make_corpus: Callable[..., Path], fake_assistant: Callable[..., Assistant]) -> Assistant:
    corpus = make_corpus(FILES)
    a = fake_assistant(corpus, chunk_tokens=40, chunk_overlap_tokens=8)
    a.ingest()
    (corpus / "b.txt").unlink()  # its rows leave gaps in the id ranges
    (corpus / "c.txt").write_text(FILES["c.txt"] + " Nieuwe zin over toezicht.", encoding="utf-8")
    a.ingest()
    return a


def test_maps_match_the_table_and_the_vectors(store: Assistant) -> None:
    index = store.retriever.index
    assert isinstance(index, FaissStore)
    reader = index.reader
    q = reader._query
    chunk_rows = [r for (r,) in q("SELECT row FROM chunks ORDER BY row")]
    assert len(chunk_rows) > 8 and chunk_rows != list(range(1, len(chunk_rows) + 1))  # gaps
    asked = [chunk_rows[-1], 10**6, *chunk_rows[:3], chunk_rows[2]]  # unknown and repeated rows

    expected: dict[int, list[tuple[int, int, int]]] = {}
    for chunk, sent, start, end in q(
        "SELECT cs.chunk_row, s.row, s.start, s.end FROM chunk_sentences cs "
        "JOIN sentences s ON s.row = cs.sent_row ORDER BY s.start"
    ):
        expected.setdefault(chunk, []).append((sent, start, end))
    got = reader.sentences_in(asked)
    assert got == {r: expected[r] for r in asked if r in expected}

    owner, sents = reader.sentence_rows(asked)
    pairs = [(asked[o], s) for o, s in zip(owner.tolist(), sents.tolist(), strict=True)]
    assert pairs == [(r, s) for r in asked for s, _, _ in expected.get(r, [])]

    sent_rows = [r for (r,) in q("SELECT row FROM sentences ORDER BY row DESC")][:7]
    holding = {s: sorted(c for c, x in q("SELECT chunk_row, sent_row FROM chunk_sentences")
                         if x == s) for s in sent_rows}  # fmt: skip
    assert reader.chunks_holding(sent_rows).tolist() == [c for s in sent_rows for c in holding[s]]
    assert reader.chunks_of_sentences(sent_rows) == holding

    docs = dict(q("SELECT row, doc_id FROM chunks"))
    assert reader.doc_of(asked) == {r: docs[r] for r in asked if r in docs}

    for sentences, rows in ((False, chunk_rows[::-2]), (True, sent_rows)):
        faiss_index = reader.sentence_vectors if sentences else reader.vectors
        want = np.stack([faiss_index.reconstruct(int(r)) for r in rows])
        assert np.array_equal(reader.vectors_of(rows, sentences=sentences), want)
    with pytest.raises(RuntimeError):  # a row not in the index: FAISS's own error, as before
        reader.vectors_of([10**6])


def test_prefetched_bm25_ranks_like_bm25_in_rank(store: Assistant) -> None:
    r = store.retriever
    for query, filters in (
        ("rule 7 on artificial intelligence providers", Filters()),
        ("sociale scoring overheden", Filters(langs=("nl",))),
        ("AI-styrning London januari", Filters()),
    ):
        lang = "en"
        vec, prefetched = r.encode(query, lang, 5, filters)
        assert prefetched is not None and prefetched.found
        assert np.array_equal(vec, r.embedder.encode_queries([query])[0])
        plain = r.rank(query, vec, lang, 5, filters)
        assert plain and r.rank(query, vec, lang, 5, filters, prefetched=prefetched) == plain
        # Candidates for another k or other filters are not used for this one.
        other = r.rank(query, vec, lang, 20, filters, prefetched=prefetched)
        assert other == r.rank(query, vec, lang, 20, filters)
