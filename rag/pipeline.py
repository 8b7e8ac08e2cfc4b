"""The Assistant facade: ``ingest()``, ``search()`` — what the CLI, the UI and the tests call.

One Assistant holds one embedder and one loaded index, shared by every caller in the process.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from rag import store, stores
from rag.answer import ExtractiveAnswerer
from rag.centering import Centering, load_centering
from rag.chunking import chunk_document, clause_spans
from rag.config import Settings
from rag.corpus import LoadError, find_files, iter_documents, read_catalog
from rag.embeddings import Embedder, make_embedder
from rag.lexical import terms_to_text, tokenize
from rag.llm import LLMAnswerer, LLMConfig, LLMError, make_chat_model
from rag.retrieve import Filters, Fusion, Retriever
from rag.types import Answer, Chunk, Document, IngestReport, SearchResult, SkippedFile

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (stage, done, total)
MIN_SENTENCE_CHARS = 15
MAX_TITLE_CHARS = 200  # a title longer than this (a first sentence taken as title) is cut


def with_title(title: str, body: str) -> str:
    """The text embedded for a chunk or sentence: its document's title, a blank line, the text.

    A passage alone often lacks what it is about ("This Regulation shall enter into force on…"
    in a Chinese ordinance, a sentence deep in a news story); the title carries the document's
    subject and name into every vector of the document. Nothing is added when the text already
    starts with the title (the first chunk of most documents).
    """
    title = " ".join(title.split())[:MAX_TITLE_CHARS]
    if not title or body.startswith(title):
        return body
    return f"{title}\n\n{body}"


@dataclass(frozen=True)
class _Prepared:
    rel: str
    docs: list[Document]
    chunks: list[Chunk]
    terms: list[str]
    sentences: list[tuple[str, int, int]]
    chunk_sentences: list[list[int]]
    texts: list[str]  # chunk texts, then sentence texts: what gets embedded
    text_langs: list[str]


def _noop(stage: str, done: int, total: int) -> None:
    return None


class Assistant:
    """Ingest a corpus folder into an index folder and search it."""

    def __init__(
        self,
        settings: Settings | None = None,
        embedder: Embedder | None = None,
        fusion: Fusion | None = None,
        chat_model: Any = None,
    ) -> None:
        """``chat_model``: a LangChain chat model to use for LLM answers instead of building one
        from ``settings.llm`` (tests pass a fake one)."""
        self.settings = settings or Settings.from_env()
        self.fusion = fusion or Fusion(
            mode=self.settings.retrieval, lang_penalty=self.settings.lang_spread
        )
        self.embedder: Embedder = embedder or make_embedder(
            self.settings.model,
            cache_dir=self.settings.cache_dir,
            batch_size=self.settings.batch_size,
        )
        self._retriever: Retriever | None = None
        self._lock = threading.RLock()
        self._answerer: ExtractiveAnswerer | None = None
        self._centering: Centering | None = None
        self._chat_model = chat_model
        self._llm_answerer: LLMAnswerer | None = None
        self.backend: stores.Backend = stores.backend_for(self.settings)

    # --- index lifecycle ---------------------------------------------------------------------

    def has_index(self) -> bool:
        return self.backend.exists()

    def index_is_current(self) -> bool:
        """The index exists and was built with this version's chunking and embedding settings."""
        return self.has_index() and (
            self.backend.manifest().get("index_settings") == self.index_settings()
        )

    @property
    def retriever(self) -> Retriever:
        """The loaded index (loaded once; reloaded after an ingest)."""
        with self._lock:
            if self._retriever is None:
                reader = self.backend.reader(model=self.embedder.name)
                built = reader.manifest.get("index_settings")
                if built != self.index_settings():
                    reader.close()
                    raise store.IndexError_(
                        f"index {self.backend.where} was built with settings {built}, "
                        f"current settings are {self.index_settings()}: run `rag ingest` to rebuild"
                    )
                self._retriever = Retriever(reader, self.embedder, self.fusion, self.centering)
            return self._retriever

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

    def index_settings(self) -> dict[str, Any]:
        """Settings baked into the index: changing one re-embeds everything."""
        return {
            "max_tokens": self.settings.chunk_tokens,
            "overlap_tokens": self.settings.chunk_overlap_tokens,
            "centering": self.settings.centering,
            "title_context": self.settings.title_context,
            "min_sentence_chars": MIN_SENTENCE_CHARS,
            "sentence_units": "clauses",  # enumeration items are sentences of their own
        }

    def ingest(self, *, rebuild: bool = False, progress: Progress = _noop) -> IngestReport:
        """Bring the index in line with the corpus; only new or changed files are embedded."""
        t0 = time.perf_counter()
        s = self.settings
        corpus_dir, backend = s.corpus_dir, self.backend
        with backend.lock():
            files, refused = find_files(corpus_dir, self.settings.max_file_mb)
            catalog = read_catalog(corpus_dir)
            skipped = [SkippedFile(rel, why) for rel, why in refused]
            if not rebuild and backend.exists():
                old = backend.manifest()
                backend.check(old, self.embedder.name)
                if old.get("index_settings") != self.index_settings():
                    log.info("chunking settings changed; re-embedding everything")
                    rebuild = True
            writer = backend.writer(
                model=self.embedder.name, dim=self.embedder.dim, rebuild=rebuild
            )
            try:
                report = self._update(writer, files, catalog, skipped, progress)
                if report.files_added or report.files_changed or report.files_removed or rebuild:
                    writer.commit({
                        "index_settings": self.index_settings(),
                        "build_seconds": round(time.perf_counter() - t0, 2),
                        "skipped": [str(x) for x in report.skipped],
                    })  # fmt: skip
                else:
                    writer.abort()
            except BaseException:
                writer.abort()
                raise
        with self._lock:
            # Not closed here: searches still running on the old index (other threads of the app)
            # would fail with "closed database". Its connection closes when the last one is done.
            self._retriever = None
        counts = backend.manifest()["counts"]
        return IngestReport(
            documents=counts["documents"], chunks=counts["chunks"],
            files_added=report.files_added, files_changed=report.files_changed,
            files_removed=report.files_removed, files_unchanged=report.files_unchanged,
            chunks_embedded=report.chunks_embedded, sentences_embedded=report.sentences_embedded,
            skipped=report.skipped,
            seconds=round(time.perf_counter() - t0, 2),
        )  # fmt: skip

    def _update(
        self,
        writer: stores.Writer,
        files: list,  # list[CorpusFile]
        catalog: dict[str, dict[str, str]],
        skipped: list[SkippedFile],
        progress: Progress,
    ) -> IngestReport:
        known = writer.file_hashes()
        current = {cf.rel: _fingerprint(cf.sha256(), catalog.get(cf.rel), cf.path) for cf in files}
        removed = sorted(set(known) - set(current))
        for rel in removed:
            writer.remove_file(rel)
        todo = [cf for cf in files if known.get(cf.rel) != current[cf.rel]]
        unchanged = len(files) - len(todo)

        # Load and chunk everything first (fast), then embed all chunks in length-sorted batches.
        pending: list[tuple[str, list[Document]]] = []
        claimed: dict[str, str] = {}
        for n, (cf, result) in enumerate(iter_documents(todo, catalog), 1):
            progress("reading", n, len(todo))
            if isinstance(result, LoadError):
                kept = " (the previously indexed version is kept)" if cf.rel in known else ""
                skipped.append(SkippedFile(cf.rel, f"{result}{kept}"))
                continue
            clash = self._id_clash(writer, cf.rel, result, claimed)
            if clash:
                skipped.append(SkippedFile(cf.rel, clash))
                continue
            pending.append((cf.rel, result))
        added, n_chunks, n_sentences = self.write_documents(writer, pending, current, progress)
        return IngestReport(
            documents=0, chunks=0, files_added=tuple(r for r in added if r not in known),
            files_changed=tuple(r for r in added if r in known), files_removed=tuple(removed),
            files_unchanged=unchanged, chunks_embedded=n_chunks, sentences_embedded=n_sentences,
            skipped=tuple(skipped),
        )  # fmt: skip

    def chunk(self, doc: Document) -> list[Chunk]:
        return chunk_document(
            doc,
            max_tokens=self.settings.chunk_tokens,
            overlap_tokens=self.settings.chunk_overlap_tokens,
            count_tokens=self.embedder.count_tokens,
        )

    def write_documents(
        self,
        writer: stores.Writer,
        groups: list[tuple[str, list[Document]]],
        fingerprints: dict[str, str],
        progress: Progress = _noop,
    ) -> tuple[list[str], int, int]:
        """Chunk, split into sentences, tokenise and embed groups of documents (one group per
        source file) and add them to ``writer``, replacing a file's earlier version.
        Returns (files written, chunks embedded, sentences embedded).

        The one path from documents to index rows: ``ingest`` and ``rag eval`` both use it.
        """
        prepared = [self._prepare(rel, docs) for rel, docs in groups]
        vectors = self.embed_prepared(prepared, progress)
        known = writer.file_hashes()
        written = []
        offset = 0
        for p in prepared:
            if p.rel in known:
                writer.remove_file(p.rel)
            vecs = self.centering.passages(vectors[offset : offset + len(p.texts)], p.text_langs)
            n_chunks = len(p.chunks)
            writer.add_file(
                store.FileBatch(
                    rel=p.rel,
                    fingerprint=fingerprints[p.rel],
                    docs=p.docs,
                    chunks=p.chunks,
                    chunk_vectors=vecs[:n_chunks],
                    terms=p.terms,
                    sentences=p.sentences,
                    sentence_vectors=vecs[n_chunks:],
                    chunk_sentences=p.chunk_sentences,
                )
            )
            written.append(p.rel)
            offset += len(p.texts)
        n_chunks = sum(len(p.chunks) for p in prepared)
        return written, n_chunks, offset - n_chunks

    def embed_prepared(self, prepared: list[_Prepared], progress: Progress = _noop) -> np.ndarray:
        """Raw (not yet centered) vectors of every prepared file's ``texts``, files in order."""
        texts = [t for p in prepared for t in p.texts]
        done = 0

        def tick(n: int) -> None:
            nonlocal done
            done += n
            progress("embedding", done, len(texts))

        progress("embedding", 0, len(texts))
        return self.embedder.encode_passages(texts, progress=tick) if texts else np.zeros((0, 1))

    def _prepare(self, rel: str, docs: list[Document]) -> _Prepared:
        """Chunks, their BM25 terms and their sentences (each sentence once per document)."""
        lang = {d.doc_id: d.lang for d in docs}
        text = {d.doc_id: d.text for d in docs}
        chunks = [c for d in docs for c in self.chunk(d)]
        sentences: list[tuple[str, int, int]] = []
        where: dict[tuple[str, int, int], int] = {}
        members: list[list[int]] = []
        for c in chunks:
            inside = []
            for s, e in clause_spans(c.text):
                if e - s < MIN_SENTENCE_CHARS and (s, e) != (0, len(c.text)):
                    continue  # "1." or a dateline: too short to judge a passage by
                key = (c.doc_id, c.start + s, c.start + e)
                if key not in where:
                    where[key] = len(sentences)
                    sentences.append(key)
                inside.append(where[key])
            members.append(inside)
        terms = [terms_to_text(tokenize(c.text, lang[c.doc_id])) for c in chunks]
        title = {d.doc_id: d.title for d in docs}
        texts = [self.embedded_text(title[c.doc_id], c.text) for c in chunks]
        texts += [self.embedded_text(title[d], text[d][s:e]) for d, s, e in sentences]
        langs = [lang[c.doc_id] for c in chunks] + [lang[d] for d, _, _ in sentences]
        return _Prepared(rel, docs, chunks, terms, sentences, members, texts, langs)

    def embedded_text(self, title: str, body: str) -> str:
        """What gets embedded for a chunk or sentence under the current settings."""
        return with_title(title, body) if self.settings.title_context else body

    @staticmethod
    def _id_clash(
        writer: stores.Writer, rel: str, docs: list[Document], claimed: dict[str, str]
    ) -> str:
        ids = [d.doc_id for d in docs]
        taken = {k: v for k, v in writer.taken_doc_ids(ids).items() if v != rel}
        taken.update({i: claimed[i] for i in ids if i in claimed and claimed[i] != rel})
        if taken:
            doc_id, other = next(iter(taken.items()))
            return (
                f"document id {doc_id!r} is already used by {other}; "
                'give one of them an "id" in the catalog'
            )
        claimed.update(dict.fromkeys(ids, rel))
        return ""

    # --- queries -----------------------------------------------------------------------------

    @property
    def answerer(self) -> ExtractiveAnswerer:
        with self._lock:
            retriever = self.retriever
            if self._answerer is None or self._answerer.retriever is not retriever:
                self._answerer = ExtractiveAnswerer(retriever)
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

    def context(self, doc_id: str, start: int, end: int, margin: int = 400) -> tuple[str, str, str]:
        """(text before, the span, text after) around a span of a document, for display."""
        doc = self.retriever.index.documents([doc_id], with_text=True).get(doc_id)
        if doc is None:
            raise KeyError(f"no document {doc_id!r} in the index")
        lo = max(0, start - margin)
        hi = min(len(doc.text), end + margin)
        return doc.text[lo:start], doc.text[start:end], doc.text[end:hi]

    def search(
        self, query: str, k: int | None = None, filters: Filters | None = None
    ) -> SearchResult:
        return self.retriever.search(query, k or self.settings.top_k, filters)


def _fingerprint(file_sha: str, meta: dict[str, str] | None, path: Path) -> str:
    """A file's identity for incremental ingest: its bytes plus its metadata (catalog + sidecar)."""
    sidecar = path.with_name(path.name + ".meta.json")
    extra = json.dumps(meta or {}, sort_keys=True) + (
        sidecar.read_text(encoding="utf-8", errors="replace") if sidecar.exists() else ""
    )
    if extra in ("{}", ""):
        return file_sha
    return f"{file_sha}+meta:{hashlib.sha256(extra.encode()).hexdigest()[:16]}"
