"""Metric code against hand-computed cases; tokenisation; fusion logic with the fake embedder."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from rag.app.cli import main
from rag.evaluate import compute_metrics
from rag.index.lexical import LexicalIndex, tokenize
from rag.search.fusion import Fusion, spread_languages


def test_metrics_single_question_hand_computed() -> None:
    m = compute_metrics([[False, False, True, False]], [1])
    assert (m.recall_at_1, m.recall_at_5, m.recall_at_10) == (0.0, 1.0, 1.0)
    assert m.mrr_at_10 == round(1 / 3, 4)
    assert m.ndcg_at_10 == round((1 / math.log2(4)) / 1.0, 4)  # 0.5


def test_metrics_average_and_miss() -> None:
    m = compute_metrics([[True], [False] * 10 + [True]], [1, 1])
    assert m.n == 2 and m.recall_at_1 == 0.5 and m.recall_at_10 == 0.5  # 11th place is a miss
    assert m.mrr_at_10 == 0.5


def test_ndcg_with_several_relevant_documents() -> None:
    # Two relevant (pooled translations); found at ranks 1 and 3.
    m = compute_metrics([[True, False, True]], [2])
    dcg = 1 + 1 / math.log2(4)
    ideal = 1 + 1 / math.log2(3)
    assert m.ndcg_at_10 == round(dcg / ideal, 4)


def test_metrics_reject_mismatched_input() -> None:
    with pytest.raises(ValueError, match="2 rankings but 1"):
        compute_metrics([[True], [True]], [1])


def test_tokenize_stems_drops_stopwords_and_keeps_names() -> None:
    assert tokenize("The G7 leaders met in Hiroshima", "en") == [
        "#g7",
        "g7",
        "leader",
        "met",
        "#hiroshima",
        "hiroshima",
    ]
    sv = tokenize("Företagen OpenAI och Anthropic deltog", "sv")
    assert "#openai" in sv and "#anthropic" in sv and "och" not in sv


def test_tokenize_chinese_segments_words() -> None:
    terms = tokenize("生成式人工智能服务提供者应当依法开展预训练", "zh")
    assert "人工智能" in terms and "提供者" in terms


def test_bm25_ranks_the_matching_chunk_first() -> None:
    idx = LexicalIndex.build([
        (10, " ".join(tokenize("Rules for chatbots and deepfakes", "en"))),
        (11, " ".join(tokenize("Penalties for breaching the rules on prohibited practices", "en"))),
        (12, " ".join(tokenize("A ministerial forum called the Hiroshima AI process", "en"))),
    ])  # fmt: skip
    scores = idx.scores(tokenize("what penalties apply?", "en"))
    assert int(idx.rows[scores.argmax()]) == 11 and scores[0] == 0 and scores[2] == 0


def test_lexical_index_round_trips(tmp_path: Path) -> None:
    idx = LexicalIndex.build([(1, "a b b"), (2, "b c")])
    idx.save(tmp_path)
    back = LexicalIndex.load(tmp_path)
    assert back.vocab == idx.vocab and back.rows.tolist() == [1, 2]
    assert (back.scores(["b", "c"]) == idx.scores(["b", "c"])).all()


def test_fusion_rejects_bad_mode() -> None:
    with pytest.raises(ValueError, match="'hybrid' or 'dense', got 'magic'"):
        Fusion(mode="magic")


def test_language_spread_hand_computed() -> None:
    """Scores 0.90 en, 0.89 en, 0.88 en, 0.875 zh, 0.70 sv with penalty 0.02: the second en
    competes at 0.89 - 0.02 = 0.87 < 0.875, so zh moves up to second; sv never gets close."""
    scored = [(1, 0.90), (2, 0.89), (3, 0.88), (4, 0.875), (5, 0.70)]
    lang = {1: "en", 2: "en", 3: "en", 4: "zh", 5: "sv"}
    assert [r for r, _ in spread_languages(scored, lang, 0.02)] == [1, 4, 2, 3, 5]
    # Scores are kept (they are the passages' own), and no penalty means no change.
    assert dict(spread_languages(scored, lang, 0.02)) == dict(scored)
    assert spread_languages(scored, lang, 0.0) == scored
    with pytest.raises(ValueError, match="lang_penalty must be >= 0"):
        Fusion(lang_penalty=-0.1)


def test_per_document_cap(
    make_corpus: Callable[..., Path], fake_assistant: Callable[..., object]
) -> None:
    long_doc = "\n\n".join(
        f"Paragraph {i} is about audits of AI systems and audit rules." * 3 for i in range(20)
    )
    corpus = make_corpus(
        {"long.txt": long_doc, "short.txt": "An audit of AI systems is required by law."}
    )
    assistant = fake_assistant(corpus, chunk_tokens=40, chunk_overlap_tokens=0)
    assistant.ingest()  # type: ignore[attr-defined]
    hits = assistant.search("audit AI systems", k=5).hits  # type: ignore[attr-defined]
    assert sum(h.doc_id == "long" for h in hits) <= 3 and any(h.doc_id == "short" for h in hits)


def test_cli_eval_on_a_tiny_beir_folder(tmp_path: Path) -> None:
    data = tmp_path / "beir"
    data.mkdir()
    corpus = [
        ("p1", "Cats sleep most of the day in warm places."),
        ("p2", "Rockets need fuel and oxygen to fly."),
    ]
    (data / "corpus.en.jsonl").write_text(
        "\n".join(json.dumps({"_id": i, "title": "", "text": t}) for i, t in corpus)
    )
    queries = [("q1", "where do cats sleep"), ("q2", "what do rockets need")]
    (data / "queries.en.jsonl").write_text(
        "\n".join(json.dumps({"_id": i, "text": t}) for i, t in queries)
    )
    (data / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tp1\t1\nq2\tp2\t1\n")
    env = {
        "RAG_MODEL": "hash:64",
        "RAG_INDEX_DIR": str(tmp_path / "unused"),
        "RAG_CACHE_DIR": str(tmp_path / "c"),
    }
    out = CliRunner().invoke(
        main,
        ["eval", "--data", str(data), "--queries-lang", "en", "--corpus-lang", "en", "--json"],
        env=env,
    )
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)
    assert result == {
        "recall@1": 1.0,
        "recall@5": 1.0,
        "recall@10": 1.0,
        "mrr@10": 1.0,
        "ndcg@10": 1.0,
        "n": 2,
    }


def test_cli_eval_needs_a_source() -> None:
    out = CliRunner().invoke(main, ["eval"])
    assert out.exit_code == 2 and "either --data" in out.output


def test_langchain_retriever_returns_documents_with_hit_metadata(
    make_corpus: Callable[..., Path], fake_assistant: Callable[..., object]
) -> None:
    from rag.app.langchain_retriever import GovragRetriever

    corpus = make_corpus(
        {"a.txt": "Audit rules for AI systems are strict.", "b.txt": "Rockets need fuel."}
    )
    assistant = fake_assistant(corpus)
    assistant.ingest()  # type: ignore[attr-defined]
    docs = GovragRetriever(assistant=assistant, k=1).invoke("audit rules AI")
    assert len(docs) == 1 and docs[0].page_content == "Audit rules for AI systems are strict."
    meta = docs[0].metadata
    assert meta["doc_id"] == "a" and meta["chunk_id"] == "a#0" and meta["rank"] == 1
    assert {"score", "title", "lang", "source", "date", "start", "end"} <= set(meta)
