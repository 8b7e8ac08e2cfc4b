"""The Assistant facade: ``ingest()``, ``search()``, ``ask()`` — what the CLI, the UI and the tests
call.

One Assistant holds one embedder, one store backend and the language centering, shared by its two
halves: the :class:`~rag.service.indexing.Indexer` (corpus → index) and the
:class:`~rag.service.querying.Querier` (index → hits and answers). After an ingest the querier
loads the new index on its next use. ``ingest_staged`` (``rag serve``'s background build) commits
in batches; meanwhile questions are answered from what is committed, with a note, and
:attr:`Assistant.indexing` says how far it is.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from rag.answer.extractive import ExtractiveAnswerer
from rag.config import Settings
from rag.index.backends import backend_for
from rag.index.base import Backend, IndexError_
from rag.index.lexical import tokenize
from rag.models.centering import Centering, load_centering
from rag.models.embeddings import Embedder, make_embedder
from rag.models.reader import Reader
from rag.search.fusion import Fusion
from rag.search.retrieve import Retriever
from rag.search.translate import load_all as load_lexicons
from rag.service.compare import Comparison, compare
from rag.service.indexing import Indexer, Progress, index_settings, no_progress
from rag.service.querying import Querier
from rag.service.staging import INCOMPLETE, Indexing, StagedIngest
from rag.types import Answer, Chunk, Document, Filters, IngestReport, SearchResult

log = logging.getLogger(__name__)


class IndexNotReady(ValueError):
    """A question or search before the background build committed its first passages."""


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
            encoder=self.settings.encoder,
        )
        self.backend: Backend = backend_for(self.settings)
        self._lock = threading.RLock()
        self._warming = threading.Event()  # set while warm_up runs
        self._indexing = Indexing()  # the background build (ingest_staged), for the status line
        self._no_build = threading.Event()  # set unless ingest_staged runs
        self._no_build.set()
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
            tokenize("人工智能", "zh")  # jieba's dictionary: 0.7 s on the first Chinese query else
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

    def needs_indexing(self) -> bool:
        """No index yet, one built with other settings, or one whose staged build stopped
        before its last batch (the next ingest embeds the rest)."""
        return not self.index_is_current() or INCOMPLETE in self.backend.manifest()

    def ingest(self, *, rebuild: bool = False, progress: Progress = no_progress) -> IngestReport:
        """Bring the index in line with the corpus; only new or changed files are embedded.

        In one commit; while a background :meth:`ingest_staged` runs, this waits for it first
        (``progress`` shows its passages)."""
        while not self._no_build.wait(0.5):
            progress("waiting for the index build", self._indexing.embedded, self._indexing.total)
        report = self.indexer.ingest(rebuild=rebuild, progress=progress)
        self.querier.reset()
        if self._indexing.error:  # this run finished what the background build left
            self._indexing = Indexing()
        return report

    @property
    def indexing(self) -> Indexing:
        """How far the background build is (``running`` False when none runs; ``error``: why
        the last one stopped)."""
        return self._indexing

    def ingest_staged(
        self, *, rebuild: bool = False, progress: Progress = no_progress
    ) -> IngestReport:
        """:meth:`ingest` in batches committed one by one (``rag/service/staging.py``), for a
        background thread: searches and answers use each batch as soon as it is committed, and
        the first commit warms up the query side. An error is kept in :attr:`indexing` and
        raised."""
        self._no_build.clear()
        self._indexing = Indexing(running=True)

        def committed(state: Indexing) -> None:
            self.querier.reset()
            if state.commits == 1:
                try:
                    self.warm_up()
                except Exception as exc:  # the first question reports it
                    log.warning("warm-up failed: %s", exc)

        def staged(state: Indexing) -> None:
            self._indexing = state

        try:
            report = StagedIngest(self.indexer, progress, staged, committed).run(rebuild=rebuild)
        except BaseException as exc:
            self._indexing = replace(self._indexing, running=False,
                                     error=str(exc) or type(exc).__name__)  # fmt: skip
            raise
        finally:
            self.querier.reset()
            self._no_build.set()
        self._indexing = replace(self._indexing, running=False, indexed=report.chunks,
                                 embedded=report.chunks, total=report.chunks)  # fmt: skip
        return report

    def _while_indexing(self, exc: IndexError_) -> None:
        """Raise :class:`IndexNotReady` instead of ``exc`` while the background build has not
        committed its first passages yet."""
        if self._indexing.running:
            raise IndexNotReady(
                "The index is being built: the first passages are searchable in a few seconds "
                "(the status line says how far it is). Ask again then."
            ) from exc

    def _noted(self, answer: Answer) -> Answer:
        """``answer`` with a note that says the background build is still running."""
        s = self._indexing
        if not s.running:
            return answer
        of = f" of {s.total:,}" if s.total else ""
        note = (f"Indexing is still running: this answer comes from the {s.indexed:,}{of} "
                "passages indexed so far.")  # fmt: skip
        return replace(answer, note=f"{answer.note} {note}".strip())

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
        """A cited answer (or an abstention); see :meth:`Querier.ask`. While the background
        build runs: from what is indexed, with a note (before its first commit: IndexNotReady)."""
        try:
            answer = self.querier.ask(question, history=history, filters=filters, mode=mode)
        except IndexError_ as exc:
            self._while_indexing(exc)
            raise
        return self._noted(answer)

    def compare(
        self,
        question: str,
        *,
        by: str = "jurisdiction",
        only: Sequence[str] = (),
        filters: Filters | None = None,
        mode: str | None = None,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> Comparison:
        """:meth:`ask` once per jurisdiction, document type or language, restricted to that
        group's documents; see :func:`rag.service.compare.compare`."""
        try:
            return compare(self, question, by=by, only=only, filters=filters, mode=mode,
                           progress=progress)  # fmt: skip
        except IndexError_ as exc:
            self._while_indexing(exc)
            raise

    def search(
        self,
        query: str,
        k: int | None = None,
        filters: Filters | None = None,
        *,
        per_doc: int | None = None,
        cross_lingual: bool = True,
        strict_phrases: bool = False,
    ) -> SearchResult:
        """Ranked passages for a query in the search syntax (phrases, -exclusions, OR, field
        filters); see :meth:`Querier.search` (while the background build runs: from what is
        indexed; before its first commit: IndexNotReady)."""
        try:
            return self.querier.search(query, k, filters, per_doc=per_doc,
                                       cross_lingual=cross_lingual,
                                       strict_phrases=strict_phrases)  # fmt: skip
        except IndexError_ as exc:
            self._while_indexing(exc)
            raise

    def documents(self) -> list[tuple[Document, int]]:
        """Every indexed document (without text) with its chunk count."""
        return self.querier.documents()

    def document(self, doc_id: str) -> Document | None:
        """One indexed document with its cleaned text (None if there is no such document)."""
        return self.querier.document(doc_id)

    def context(self, doc_id: str, start: int, end: int, margin: int = 400) -> tuple[str, str, str]:
        """(text before, the span, text after) around a span of a document, for display."""
        return self.querier.context(doc_id, start, end, margin)
