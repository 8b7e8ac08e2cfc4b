"""The real model: the session's FAISS index of the shipped corpus and a Qdrant copy of it
(qdrant-client local mode) rank and answer the dev questions alike.

The copy (``copy_index``) carries the same vectors, so nothing is embedded twice; the ingest path
into Qdrant is the one the fake-embedder tests compare (``test_stores.py``).
Dense: identical up to exact ties (the EU AI Act's amending articles 102-109 hold chunks with
the same text, so equal scores; the two stores order such ties differently: measured 64 of 66
top-10 lists identical in order, all 66 identical as scores and as chunks per score). Hybrid:
BM25 term ids are 32-bit hashes and the sparse scores go through Qdrant's IDF, so the tolerance
below; measured 65 of 66 top-5 identical, every top 1 and every answer identical.
"""

from __future__ import annotations

import pytest

from rag.evaluate import evaluate_devset, load_devset
from rag.index.copy import copy_index
from rag.index.qdrant.backend import QdrantBackend
from rag.ingest.lang import detect_language
from rag.search.fusion import Fusion
from rag.search.retrieve import Retriever
from rag.service import Assistant
from rag.types import Filters
from tests.conftest import ROOT

pytestmark = pytest.mark.model

DEVSET = ROOT / "tests" / "data" / "devset.jsonl"
HYBRID_TOP5_MIN = 0.95  # share of dev questions whose hybrid top 5 must be identical
ANSWERS_MIN = 0.95  # share of dev questions whose extractive answer must be identical


@pytest.fixture(scope="module")
def qdrant_assistant(
    real_assistant: Assistant, tmp_path_factory: pytest.TempPathFactory
) -> Assistant:
    settings = real_assistant.settings.with_(
        store="qdrant", qdrant_path=tmp_path_factory.mktemp("qdrant") / "local"
    )
    copy_index(real_assistant.settings.index_dir, QdrantBackend.from_settings(settings))
    return Assistant(settings, real_assistant.embedder)


def _ranked(assistant: Assistant, mode: str, k: int) -> list[list[tuple[str, float]]]:
    questions = [q.question for q in load_devset(DEVSET)]
    r = Retriever(assistant.retriever.index, assistant.embedder, Fusion(mode=mode),
                  assistant.centering)  # fmt: skip
    out = []
    for text, vec in zip(questions, assistant.embedder.encode_queries(questions), strict=True):
        rows = r.rank(text, vec, detect_language(text), k, Filters())
        chunks = r.index.chunks(x for x, _ in rows)
        out.append([(chunks[x].chunk_id, score) for x, score in rows])
    return out


def _same_up_to_ties(a: list[tuple[str, float]], b: list[tuple[str, float]]) -> bool:
    """Same scores rank by rank (within float noise), and the same chunks, except that chunks
    with equal scores may come in another order and, at the cut-off, be other equal-scored ones."""
    if len(a) != len(b) or any(abs(x - y) > 1e-5 for (_, x), (_, y) in zip(a, b, strict=True)):
        return False
    cut = a[-1][1] if a else 0.0
    above_a = {c for c, s in a if s > cut + 1e-5}
    above_b = {c for c, s in b if s > cut + 1e-5}
    return above_a == above_b


def test_dense_top10_is_identical_on_the_dev_set(
    real_assistant: Assistant, qdrant_assistant: Assistant
) -> None:
    a, b = _ranked(real_assistant, "dense", 10), _ranked(qdrant_assistant, "dense", 10)
    assert len(a) == 66 and all(len(x) == 10 for x in a)
    assert [
        i for i, (x, y) in enumerate(zip(a, b, strict=True)) if not _same_up_to_ties(x, y)
    ] == []
    in_order = sum([c for c, _ in x] == [c for c, _ in y] for x, y in zip(a, b, strict=True))
    assert in_order >= 60  # the same chunk ids in the same order, ties included


def test_hybrid_top5_agrees_on_the_dev_set(
    real_assistant: Assistant, qdrant_assistant: Assistant
) -> None:
    a, b = _ranked(real_assistant, "hybrid", 5), _ranked(qdrant_assistant, "hybrid", 5)
    ids_a = [[c for c, _ in x] for x in a]
    ids_b = [[c for c, _ in x] for x in b]
    same = sum(x == y for x, y in zip(ids_a, ids_b, strict=True))
    assert same >= HYBRID_TOP5_MIN * len(a), f"{same}/{len(a)} identical"
    assert all(x[0] == y[0] for x, y in zip(ids_a, ids_b, strict=True))
    questions = load_devset(DEVSET)
    assert evaluate_devset(qdrant_assistant.retriever, questions) == evaluate_devset(
        real_assistant.retriever, questions
    )


def test_answers_agree_on_the_dev_set(
    real_assistant: Assistant, qdrant_assistant: Assistant
) -> None:
    questions = [q.question for q in load_devset(DEVSET)]
    same = sum(
        real_assistant.ask(q).to_json() == qdrant_assistant.ask(q).to_json() for q in questions
    )
    assert same >= ANSWERS_MIN * len(questions), f"{same}/{len(questions)} identical"
    answer = qdrant_assistant.ask("Vad sa den kinesiska ambassaden i Storbritannien?")
    assert not answer.abstained and answer.citations
    doc = qdrant_assistant.retriever.index.documents([answer.citations[0].doc_id], with_text=True)
    c = answer.citations[0]
    assert doc[c.doc_id].text[c.start : c.end] == c.quote
