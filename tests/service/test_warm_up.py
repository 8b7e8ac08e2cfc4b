"""The app warms the model and the index up in the background so the first question does not
wait ~10 s; the page can tell whether that is done (``Assistant.ready``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rag.service import Assistant
from tests.service.test_ingest_plan import DOCS, LazyEmbedder


class WarmableEmbedder(LazyEmbedder):
    def warm_up(self) -> None:
        self._use("warm_up")


def test_warm_up_loads_model_and_index_before_the_first_question(
    make_corpus: Callable[..., Path], fake_assistant: Callable[..., Assistant]
) -> None:
    built = fake_assistant(make_corpus(dict(DOCS)))
    built.ingest()
    embedder = WarmableEmbedder()
    fresh = Assistant(built.settings, embedder=embedder)
    assert not fresh.ready and not embedder.loaded
    fresh.warm_up()
    assert fresh.ready and embedder.uses[0] == "warm_up"
    assert fresh.querier._retriever is not None  # the index is loaded too
