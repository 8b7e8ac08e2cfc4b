"""The app warms the model and the index up in the background so the first question does not
wait ~10 s; the page can tell whether that is running (``Assistant.ready``)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from rag.app.ui.widgets import status
from rag.service import Assistant
from tests.service.test_ingest_plan import DOCS, LazyEmbedder


class WarmableEmbedder(LazyEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.inside = threading.Event()
        self.release = threading.Event()

    def warm_up(self) -> None:
        self._use("warm_up")
        self.inside.set()
        assert self.release.wait(10)


def test_warm_up_loads_model_and_index_and_the_page_says_so_meanwhile(
    make_corpus: Callable[..., Path], fake_assistant: Callable[..., Assistant]
) -> None:
    built = fake_assistant(make_corpus(dict(DOCS)))
    built.ingest()
    embedder = WarmableEmbedder()
    fresh = Assistant(built.settings, embedder=embedder)
    assert fresh.ready and "2 documents" in status(fresh)  # no warm-up running: nothing to say
    worker = threading.Thread(target=fresh.warm_up)
    worker.start()
    assert embedder.inside.wait(10)
    assert not fresh.ready and "Loading the model" in status(fresh)
    embedder.release.set()
    worker.join(10)
    assert fresh.ready and embedder.uses[0] == "warm_up"
    assert fresh.querier._retriever is not None  # the index is loaded too
    assert "2 documents" in status(fresh)
