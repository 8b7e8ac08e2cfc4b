"""The Assistant facade: ``ingest()``, ``search()``, ``ask()`` — what the CLI, the UI and the tests
call.

One Assistant holds one embedder, one store backend and the language centering, shared by its two
halves: the :class:`~rag.service.indexing.Indexer` (corpus → index) and the
:class:`~rag.service.querying.Querier` (index → hits and answers). After an ingest the querier
loads the new index on its next use.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from rag.answer.extractive import ExtractiveAnswerer
from rag.config import Settings
from rag.index.backends import backend_for
from rag.index.base import Backend
from rag.models.centering import Centering, load_centering
from rag.models.embeddings import Embedder, make_embedder
from rag.models.reader import Reader
from rag.search.fusion import Fusion
from rag.search.retrieve import Retriever
from rag.search.translate import load_all as load_lexicons
from rag.service.indexing import Indexer, Progress, index_settings, no_progress
from rag.service.querying import Querier
from rag.types import Answer, Chunk, Document, Filters, IngestReport, SearchResult


class Assistant:
    """Ingest a corpus folder into an index and search it."""

    indexer_class: type[Indexer] = Indexer  # benchmarks swap the embedding step

    def __init__(
        self,
        settings: Settings | None = None,
        embedder: Embedder | None = None,
        fusion: Fusion | None = None,
        chat_model: Any = None,
        reader: Reader | None = None,
    ) -> None:
        """``chat_model``: a LangChain chat model to use for LLM answers instead of building one
        from ``settings.llm`` (tests pass a fake one); ``reader``: a reader to use instead of
        loading ``settings.reader`` (the same for tests)."""
        self.settings = settings or Settings.from_env()
        fusion = fusion or Fusion(
            mode=self.settings.retrieval,
            lang_penalty=self.settings.lang_spread,
            cross_lang=self.settings.bm25_cross,
            translate=self.settings.query_translation,
        )
        self.embedder: Embedder = embedder or make_embedder(
            self.settings.model,
            cache_dir=self.settings.cache_dir,
            batch_size=self.settings.batch_size,
        )
        self.backend: Backend = backend_for(self.settings)
        self._lock = threading.RLock()
        self._warming = threading.Event()  # set while warm_up runs
        self._centering: Centering | None = None
        get_centering = lambda: self.centering  # noqa: E731  (read lazily, on first use)
        self.indexer = self.indexer_class(self.settings, self.embedder, self.backend, get_centering)
        self.querier = Querier(
            self.settings, self.embedder, self.backend, fusion, get_centering, chat_model, reader
        )

    @property
    def centering(self) -> Centering:
        """Language means to subtract (loaded once; ``centering=0`` switches it off)."""
        with self._lock:
            if self._centering is None:
                beta = self.settings.centering
                self._centering = (
                    load_centering(self.embedder, self.settings.cache_dir, beta)
                    if beta
                    else Centering(0.0, {}, {})
                )
            return self._centering

    def warm_up(self) -> None:
        """Load the model, the language means, the index and the reader, and score one query, so
        that the first question after a start does not wait for them (``rag serve`` runs this in the
        background while the page says so). Errors are left for the first real question."""
        self._warming.set()
        try:
            load = getattr(self.embedder, "warm_up", None)
            if load is not None:
                load()
            self.retriever.embedder.encode_queries(["warm-up"])
            if self.settings.query_translation:
                load_lexicons()
            reader = self.querier.reader
            if reader is not None:
                reader.probabilities("warm-up", ["The reader is loaded."])
        finally:
            self._warming.clear()

    @property
    def ready(self) -> bool:
        """False while :meth:`warm_up` is loading the model and the index."""
        return not self._warming.is_set()

    # --- the index ------------------------------------------------------------------------

    def has_index(self) -> bool:
        return self.backend.exists()

    def index_is_current(self) -> bool:
        """The index exists and was built with this version's chunking and embedding settings."""
        return self.has_index() and (
            self.backend.manifest().get("index_settings") == self.index_settings()
        )

    def index_settings(self) -> dict[str, Any]:
        """Settings baked into the index: changing one re-embeds everything."""
        return index_settings(self.settings)

    def ingest(self, *, rebuild: bool = False, progress: Progress = no_progress) -> IngestReport:
        """Bring the index in line with the corpus; only new or changed files are embedded."""
        report = self.indexer.ingest(rebuild=rebuild, progress=progress)
        self.querier.reset()
        return report

    def chunk(self, doc: Document) -> list[Chunk]:
        return self.indexer.chunk(doc)

    def embedded_text(self, title: str, body: str) -> str:
        """What gets embedded for a chunk or sentence under the current settings."""
        return self.indexer.embedded_text(title, body)

    # --- queries --------------------------------------------------------------------------

    @property
    def fusion(self) -> Fusion:
        """How retrieval fuses its signals; setting it reloads the retriever on next use."""
        return self.querier.fusion

    @fusion.setter
    def fusion(self, value: Fusion) -> None:
        self.querier.fusion = value
        self.querier.reset()

    @property
    def retriever(self) -> Retriever:
        """The loaded index (loaded once; reloaded after an ingest)."""
        return self.querier.retriever

    @property
    def answerer(self) -> ExtractiveAnswerer:
        return self.querier.answerer

    @property
    def llm_label(self) -> str:
        """The configured chat model ("" when LLM mode is not configured)."""
        return self.querier.llm_label

    def ask(
        self,
        question: str,
        *,
        history: Sequence[tuple[str, str]] = (),
        filters: Filters | None = None,
        mode: str | None = None,
    ) -> Answer:
        """A cited answer (or an abstention); see :meth:`Querier.ask`."""
        return self.querier.ask(question, history=history, filters=filters, mode=mode)

    def search(
        self,
        query: str,
        k: int | None = None,
        filters: Filters | None = None,
        *,
        per_doc: int | None = None,
    ) -> SearchResult:
        """Ranked passages; see :meth:`Querier.search`."""
        return self.querier.search(query, k, filters, per_doc=per_doc)

    def documents(self) -> list[tuple[Document, int]]:
        """Every indexed document (without text) with its chunk count."""
        return self.querier.documents()

    def context(self, doc_id: str, start: int, end: int, margin: int = 400) -> tuple[str, str, str]:
        """(text before, the span, text after) around a span of a document, for display."""
        return self.querier.context(doc_id, start, end, margin)
