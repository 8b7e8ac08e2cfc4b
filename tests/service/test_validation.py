"""One validation for every entry point: the service refuses what the CLI refuses, so the API and
the app cannot silently answer something else than what was asked."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from rag.config import MAX_K
from rag.service import Assistant

LONG = " ".join(
    f"Article {i}. The provider shall keep the logs of the high-risk AI system for {i} months."
    for i in range(1, 40)
)


@pytest.fixture
def ingested(
    make_corpus: Callable[..., Path], fake_assistant: Callable[..., Assistant]
) -> Assistant:
    corpus = make_corpus({"long.txt": LONG, "other.txt": "The AI Act bans social scoring."})
    assistant = fake_assistant(corpus, chunk_tokens=40, chunk_overlap_tokens=0)
    assistant.ingest()
    return assistant


@pytest.mark.parametrize("k", [0, -3, MAX_K + 1])
def test_search_refuses_k_out_of_range_instead_of_answering_with_5(
    ingested: Assistant, k: int
) -> None:
    with pytest.raises(ValueError, match=rf"between 1 and {MAX_K}, got {k}"):
        ingested.search("logs of high-risk AI systems", k)


def test_search_default_k_is_the_setting(ingested: Assistant) -> None:
    assert len(ingested.search("logs", per_doc=50).hits) == ingested.settings.top_k == 5


def test_search_can_return_every_passage_of_one_document(ingested: Assistant) -> None:
    capped = ingested.search("logs of high-risk AI systems", 10)
    uncapped = ingested.search("logs of high-risk AI systems", 10, per_doc=10)
    assert sum(h.doc_id == "long" for h in capped.hits) == 3  # the default cap
    assert sum(h.doc_id == "long" for h in uncapped.hits) >= 9
    with pytest.raises(ValueError, match="per_doc must be > 0"):
        ingested.search("logs", 5, per_doc=0)


@pytest.mark.model
def test_the_api_refuses_k_0_with_the_same_message_and_logs_one_line(
    served: str, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """k=0 used to return 5 hits silently; a refused request printed a full traceback in the
    server log."""
    from gradio_client import Client

    client = Client(served, verbose=False)
    capfd.readouterr()
    with (
        caplog.at_level(logging.WARNING),
        pytest.raises(Exception, match=r"between 1 and 1000, got 0"),
    ):
        client.predict("Hiroshima AI process", 0, [], api_name="/search")
    assert "Traceback" not in capfd.readouterr().err
    assert [r.getMessage() for r in caplog.records if "got 0" in r.getMessage()] == [
        "refused: k (the number of passages) must be between 1 and 1000, got 0"
    ]
    hits = client.predict("Hiroshima AI process", 2, [], api_name="/search")["hits"]
    assert len(hits) == 2


def test_cli_search_per_doc(ingested: Assistant) -> None:
    from click.testing import CliRunner

    from rag.app.cli import main

    s = ingested.settings
    env = {
        "RAG_MODEL": "hash:64",
        "RAG_CACHE_DIR": str(s.cache_dir),
        "RAG_CHUNK_TOKENS": "40",
        "RAG_CHUNK_OVERLAP_TOKENS": "0",
    }
    args = ["search", "logs of high-risk AI systems", "-k", "10", "--json",
            "--corpus", str(s.corpus_dir), "--index", str(s.index_dir)]  # fmt: skip
    import json

    capped = json.loads(CliRunner().invoke(main, args, env=env).output)
    every = json.loads(CliRunner().invoke(main, [*args, "--per-doc", "10"], env=env).output)
    assert sum(h["doc_id"] == "long" for h in capped["hits"]) == 3
    assert sum(h["doc_id"] == "long" for h in every["hits"]) >= 9
