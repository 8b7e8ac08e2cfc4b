"""Queries: a loaded index → hits (search) and cited answers (extractive or LLM).

:class:`Querier` loads the index once and keeps it until :meth:`Querier.reset` (after an ingest);
every method is safe to call from the app's threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from rag.answer.extractive import ExtractiveAnswerer
from rag.answer.llm import LLMAnswerer, LLMConfig, LLMError, make_chat_model
from rag.config import DEFAULT_MODEL, MAX_K, Settings
from rag.index.base import Backend, IndexError_
from rag.models.centering import Centering
from rag.models.embeddings import Embedder, resolve_model
from rag.models.reader import Reader, load_reader
from rag.search.fusion import Fusion
from rag.search.query_syntax import parse
from rag.search.retrieve import Retriever
from rag.service.indexing import index_settings
from rag.types import Answer, Document, Filters, SearchResult


class Querier:
    """Search and ask over the index of ``backend``."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder,
        backend: Backend,
        fusion: Fusion,
        centering: Callable[[], Centering],
        chat_model: Any = None,
        reader: Reader | None = None,
    ) -> None:
        """``reader``: use this reader instead of loading ``settings.reader`` on first use."""
        self.settings = settings
        self.embedder = embedder
        self.backend = backend
        self.fusion = fusion
        self.centering = centering
        self._chat_model = chat_model
        self._lock = threading.RLock()
        self._retriever: Retriever | None = None
        self._stamp: int | None = None
        self._answerer: ExtractiveAnswerer | None = None
        self._llm_answerer: LLMAnswerer | None = None
        self._reader: Reader | None = reader
        self._reader_loaded = reader is not None

    def reset(self) -> None:
        """Load the index afresh on next use (after an ingest changed it).

        The old one is not closed here: searches still running on it (other threads of the app)
        would fail with "closed database". Its connection closes when the last one is done.
        """
        with self._lock:
            self._retriever = None

    def _changed_elsewhere(self) -> bool:
        """Another process (``rag ingest``) committed since the index was loaded (FAISS folder;
        a Qdrant collection is read live and needs no reload)."""
        if self._retriever is None:
            return False
        now = self.backend.stamp()
        return now is not None and now != self._stamp

    @property
    def retriever(self) -> Retriever:
        """The loaded index (loaded once; reloaded after :meth:`reset` or after another process
        changed it)."""
        with self._lock:
            if self._changed_elsewhere():
                self._retriever = None
            if self._retriever is None:
                self._stamp = self.backend.stamp()
                reader = self.backend.reader(model=self.embedder.name)
                built = reader.manifest.get("index_settings")
                current = index_settings(self.settings)
                if built != current:
                    reader.close()
                    raise IndexError_(
                        f"index {self.backend.where} was built with settings {built}, "
                        f"current settings are {current}: run `rag ingest` to rebuild"
                    )
                self._retriever = Retriever(reader, self.embedder, self.fusion, self.centering())
            return self._retriever

    @property
    def reader(self) -> Reader | None:
        """The reader (``Settings.reader``), loaded once, on first use."""
        with self._lock:
            if not self._reader_loaded:
                name = self.settings.reader_name
                base = (
                    "" if name == "none" else resolve_model(DEFAULT_MODEL, self.settings.cache_dir)
                )
                self._reader = load_reader(
                    name, base, self.settings.reader_backend, self.settings.cache_dir
                )
                self._reader_loaded = True
            return self._reader

    @property
    def answerer(self) -> ExtractiveAnswerer:
        with self._lock:
            retriever = self.retriever
            if self._answerer is None or self._answerer.retriever is not retriever:
                self._answerer = ExtractiveAnswerer(retriever, reader=self.reader)
            return self._answerer

    @property
    def llm_label(self) -> str:
        """The configured chat model ("" when LLM mode is not configured)."""
        if self._chat_model is not None:
            return self.settings.llm or type(self._chat_model).__name__
        return self.settings.llm

    def _llm(self) -> LLMAnswerer:
        with self._lock:
            extractive = self.answerer
            if self._llm_answerer is None or self._llm_answerer.extractive is not extractive:
                s = self.settings
                config = LLMConfig(self.llm_label, s.llm_base_url, s.llm_api_key, s.llm_timeout)
                if self._chat_model is None:
                    self._chat_model = make_chat_model(config)
                self._llm_answerer = LLMAnswerer(extractive, self._chat_model, config)
            return self._llm_answerer

    def ask(
        self,
        question: str,
        *,
        history: Sequence[tuple[str, str]] = (),
        filters: Filters | None = None,
        mode: str | None = None,
    ) -> Answer:
        """A cited answer (or an abstention). ``history``: earlier (question, answer) pairs.

        ``mode``: "extractive", "llm", or None for LLM mode when one is configured. An LLM
        answer that fails its checks, or a model that cannot be reached, falls back to the
        extractive answer with a ``note`` saying why.
        """
        if mode not in (None, "extractive", "llm"):
            raise ValueError(f"mode must be 'extractive' or 'llm', got {mode!r}")
        use_llm = mode == "llm" or (mode is None and bool(self.llm_label))
        if use_llm and not self.llm_label:
            raise ValueError(
                "LLM mode is not configured: set RAG_LLM (e.g. ollama:llama3.1) or pass --llm"
            )
        if not use_llm:
            return self.answerer.answer(question, history=history, filters=filters)
        try:
            llm = self._llm()
        except LLMError as exc:
            answer = self.answerer.answer(question, history=history, filters=filters)
            return replace(answer, note=f"Extractive answer shown because {exc}.")
        return llm.answer(question, history=history, filters=filters)

    def documents(self) -> list[tuple[Document, int]]:
        """Every indexed document (without text) with its chunk count."""
        return self.retriever.index.all_documents()

    def document(self, doc_id: str) -> Document | None:
        """One indexed document with its text, or None."""
        return self.retriever.index.documents([doc_id], with_text=True).get(doc_id)

    def context(self, doc_id: str, start: int, end: int, margin: int = 400) -> tuple[str, str, str]:
        """(text before, the span, text after) around a span of a document, for display."""
        doc = self.retriever.index.documents([doc_id], with_text=True).get(doc_id)
        if doc is None:
            raise KeyError(f"no document {doc_id!r} in the index")
        lo = max(0, start - margin)
        hi = min(len(doc.text), end + margin)
        return doc.text[lo:start], doc.text[start:end], doc.text[end:hi]

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
        """``k``: passages (default ``settings.top_k``; below 1 is refused, never replaced);
        ``per_doc``: at most this many per document (default 3). ``query`` is in the search
        syntax (``rag/search/query_syntax.py``: phrases, -exclusions, OR, field filters, which
        narrow ``filters``); bad syntax raises QuerySyntaxError (a ValueError) saying what is
        wrong. ``cross_lingual=False``: only passages in the query's language. A phrase no
        passage holds is searched as words and the result's ``note`` says so, unless
        ``strict_phrases`` (then: no hits)."""
        k = self._k(k)
        parsed = parse(query)
        if parsed.plain and cross_lingual:
            return self.retriever.search(query, k, filters, per_doc=per_doc)
        return self.retriever.search_parsed(parsed, k, filters, per_doc=per_doc,
                                            cross_lingual=cross_lingual,
                                            strict_phrases=strict_phrases)  # fmt: skip

    def _k(self, k: int | None) -> int:
        """``k`` passages (default ``settings.top_k``); outside 1..MAX_K refused, not replaced."""
        k = self.settings.top_k if k is None else k
        if not 1 <= k <= MAX_K:
            raise ValueError(f"k (the number of passages) must be between 1 and {MAX_K}, got {k}")
        return k

    def reranked(
        self, query: str, k: int | None = None, filters: Filters | None = None
    ) -> tuple[SearchResult, dict[str, float]]:
        """``search``, with the passages the reader says answer ``query`` moved first, and the
        reader's best sentence probability per chunk id (empty without a reader)."""
        k = self._k(k)
        answerer = self.answerer
        if answerer.reader is None:
            return self.search(query, k, filters), {}
        r = answerer.retrieve(query, filters=filters, k=k)
        hits, scores = answerer.rerank(r)
        return SearchResult(r.query, r.query_lang, tuple(hits)), scores
