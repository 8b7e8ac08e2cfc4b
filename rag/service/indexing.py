"""Ingest: corpus files → documents → chunks and sentences → vectors → a store's writer.

:class:`Indexer` brings an index in line with the corpus folder; only new or changed files (by
content and metadata) are read and embedded. The query side is ``querying.py``; ``assistant.py``
puts both behind one facade.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from rag.config import Settings
from rag.index.base import Backend, FileBatch, IndexError_, Writer
from rag.index.lexical import terms_to_text, tokenize
from rag.ingest.chunking import chunk_document, clause_spans
from rag.ingest.corpus import CorpusFile, find_files, iter_documents, read_catalog
from rag.ingest.formats import LoadError
from rag.models.centering import Centering
from rag.models.embeddings import Embedder
from rag.types import Chunk, Document, IngestReport, SkippedFile

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
class Prepared:
    rel: str
    docs: list[Document]
    chunks: list[Chunk]
    terms: list[str]
    sentences: list[tuple[str, int, int]]
    chunk_sentences: list[list[int]]
    texts: list[str]  # chunk texts, then sentence texts: what gets embedded
    text_langs: list[str]


def no_progress(stage: str, done: int, total: int) -> None:
    return None


def index_settings(settings: Settings) -> dict[str, Any]:
    """Settings baked into the index: changing one re-embeds everything."""
    return {
        "max_tokens": settings.chunk_tokens,
        "overlap_tokens": settings.chunk_overlap_tokens,
        "centering": settings.centering,
        "title_context": settings.title_context,
        "min_sentence_chars": MIN_SENTENCE_CHARS,
        "sentence_units": "clauses",  # enumeration items are sentences of their own
    }


class Indexer:
    """Ingest a corpus folder into a store; ``centering`` gives the (lazily loaded) language
    means that passage vectors are centered with."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder,
        backend: Backend,
        centering: Callable[[], Centering],
    ) -> None:
        self.settings = settings
        self.embedder = embedder
        self.backend = backend
        self.centering = centering

    def ingest(self, *, rebuild: bool = False, progress: Progress = no_progress) -> IngestReport:
        """Bring the index in line with the corpus; only new or changed files are embedded.

        The corpus is compared with the index before anything heavy happens: when no file is
        new, changed or removed, the model is never loaded (an ingest with nothing to do takes
        as long as hashing the files). Everything is written in one commit (``staging.py``
        commits in batches instead)."""
        t0 = time.perf_counter()
        with self.backend.lock():
            start = self.start(rebuild)
            report = start.plan.report((), ()) if start.idle else self._write(start, t0, progress)
        return self.finish(report, t0)

    def start(self, rebuild: bool) -> Start:
        """The corpus against the index (call under ``backend.lock()``): what is to be done."""
        s, backend = self.settings, self.backend
        files, refused = find_files(s.corpus_dir, s.max_file_mb)
        catalog = read_catalog(s.corpus_dir)
        known: dict[str, str] | None = {}
        dim, old = 0, {}  # the index's own dimension: removing files needs no model
        if not rebuild and backend.exists():
            old = backend.manifest()
            dim = int(old.get("model", {}).get("dim") or 0)
            backend.check(old, self.embedder.name)
            if old.get("index_settings") != index_settings(s):
                log.info("chunking settings changed; re-embedding everything")
                rebuild = True
            elif not self._intact(old):  # damaged: the writer rebuilds, and says so
                known = None
            else:  # an index written before manifests listed their files: ask the writer
                known = old.get("files") if isinstance(old.get("files"), dict) else None
        plan = _Plan.of(files, catalog, known or {}, refused)
        return Start(plan, catalog, rebuild, known is None, dim, old)

    def finish(self, report: IngestReport, t0: float) -> IngestReport:
        """``report`` with the index's counts after the run and the time it took."""
        counts = self.backend.manifest()["counts"]
        return replace(
            report, documents=counts["documents"], chunks=counts["chunks"],
            seconds=round(time.perf_counter() - t0, 2),
        )  # fmt: skip

    def _intact(self, manifest: dict[str, Any]) -> bool:
        """The index's files match their checksums (FAISS folder: ~20 ms for the shipped
        corpus). A damaged index must not pass for an up-to-date one because nothing changed."""
        try:
            self.backend.verify(manifest)
        except IndexError_:
            return False
        return True

    def _write(self, start: Start, t0: float, progress: Progress) -> IngestReport:
        """Read what changed; if anything is to be embedded, load the model; write, commit."""
        plan = start.plan
        loaded = [] if start.ask_writer else plan.read(start.catalog, progress)
        if not (start.rebuild or start.ask_writer or plan.removed or loaded):
            return plan.report((), ())  # only unreadable files changed: nothing to write
        writer, plan, loaded = self.open_writer(start, loaded, progress)
        try:
            pending = self.claim(writer, plan, loaded)
            added, n_chunks, n_sentences = self.write_documents(
                writer, pending, plan.fingerprints, progress
            )
            report = plan.report(added, (n_chunks, n_sentences))
            if report.files_added or report.files_changed or report.files_removed or start.rebuild:
                writer.commit(self.commit_extra(t0, report.skipped))
            else:
                writer.abort()
        except BaseException:
            writer.abort()
            raise
        return report

    def commit_extra(self, t0: float, skipped: Sequence[SkippedFile]) -> dict[str, Any]:
        """What a commit adds to the manifest besides the store's own fields."""
        return {"index_settings": index_settings(self.settings),
                "build_seconds": round(time.perf_counter() - t0, 2),
                "skipped": [str(x) for x in skipped]}  # fmt: skip

    def open_writer(
        self, start: Start, loaded: list[tuple[str, list[Document]]], progress: Progress
    ) -> tuple[Writer, _Plan, list[tuple[str, list[Document]]]]:
        """A writer for ``start``, and the plan and loaded files, which the writer makes when the
        index does not list its files (damaged, or written before manifests listed them)."""
        if (loaded or not start.dim) and not getattr(self.embedder, "loaded", True):
            progress("loading model", 0, 0)
        writer = self.backend.writer(
            model=self.embedder.name, dim=start.dim or self.embedder.dim, rebuild=start.rebuild
        )
        if not start.ask_writer:
            return writer, start.plan, loaded
        try:
            plan = _Plan.of(start.plan.files, start.catalog, writer.file_hashes(),
                            start.plan.refused)  # fmt: skip
            return writer, plan, plan.read(start.catalog, progress)
        except BaseException:
            writer.abort()
            raise

    def claim(self, writer: Writer, plan: _Plan, loaded: list[tuple[str, list[Document]]],
              remove: bool = True) -> list[tuple[str, list[Document]]]:  # fmt: skip
        """Remove the files gone from the corpus; return the loaded files whose document ids are
        free (one whose id another file holds joins ``plan.skipped``)."""
        for rel in plan.removed if remove else ():
            writer.remove_file(rel)
        pending: list[tuple[str, list[Document]]] = []
        claimed: dict[str, str] = {}
        for rel, docs in loaded:
            clash = self._id_clash(writer, rel, docs, claimed)
            if clash:
                plan.skipped.append(SkippedFile(rel, clash))
                continue
            pending.append((rel, docs))
        return pending

    def chunk(self, doc: Document) -> list[Chunk]:
        return chunk_document(
            doc,
            max_tokens=self.settings.chunk_tokens,
            overlap_tokens=self.settings.chunk_overlap_tokens,
            count_tokens=self.embedder.count_tokens,
        )

    def write_documents(
        self,
        writer: Writer,
        groups: list[tuple[str, list[Document]]],
        fingerprints: dict[str, str],
        progress: Progress = no_progress,
    ) -> tuple[list[str], int, int]:
        """Chunk, split into sentences, tokenise and embed groups of documents (one group per
        source file) and add them to ``writer``, replacing a file's earlier version.
        Returns (files written, chunks embedded, sentences embedded).

        The one path from documents to index rows: ``ingest`` and ``rag eval`` both use it.
        """
        prepared = [self.prepare(rel, docs) for rel, docs in groups]
        vectors = self.embed_prepared(prepared, progress)
        written = self.add_prepared(writer, prepared, vectors, fingerprints)
        n_chunks = sum(len(p.chunks) for p in prepared)
        return written, n_chunks, sum(len(p.texts) for p in prepared) - n_chunks

    def add_prepared(self, writer: Writer, prepared: Sequence[Prepared], vectors: np.ndarray,
                     fingerprints: dict[str, str]) -> list[str]:  # fmt: skip
        """Center ``vectors`` (``embed_prepared``'s, files in order) and add each file to
        ``writer``, replacing its earlier version; returns the files written."""
        known = writer.file_hashes()
        offset = 0
        for p in prepared:
            if p.rel in known:
                writer.remove_file(p.rel)
            vecs = self.centering().passages(vectors[offset : offset + len(p.texts)], p.text_langs)
            n = len(p.chunks)
            writer.add_file(FileBatch(
                rel=p.rel, fingerprint=fingerprints[p.rel], docs=p.docs, chunks=p.chunks,
                chunk_vectors=vecs[:n], terms=p.terms, sentences=p.sentences,
                sentence_vectors=vecs[n:], chunk_sentences=p.chunk_sentences,
            ))  # fmt: skip
            offset += len(p.texts)
        return [p.rel for p in prepared]

    def embed_prepared(
        self, prepared: list[Prepared], progress: Progress = no_progress
    ) -> np.ndarray:
        """Raw (not yet centered) vectors of every prepared file's ``texts``, files in order."""
        texts = [t for p in prepared for t in p.texts]
        done = 0

        def tick(n: int) -> None:
            nonlocal done
            done += n
            progress("embedding", done, len(texts))

        progress("embedding", 0, len(texts))
        return self.embedder.encode_passages(texts, progress=tick) if texts else np.zeros((0, 1))

    def prepare(self, rel: str, docs: list[Document]) -> Prepared:
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
        return Prepared(rel, docs, chunks, terms, sentences, members, texts, langs)

    def embedded_text(self, title: str, body: str) -> str:
        """What gets embedded for a chunk or sentence under the current settings."""
        return with_title(title, body) if self.settings.title_context else body

    @staticmethod
    def _id_clash(writer: Writer, rel: str, docs: list[Document], claimed: dict[str, str]) -> str:
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


@dataclass(frozen=True)
class Start:
    """Where an ingest starts (:meth:`Indexer.start`): the plan, and how to open the writer."""

    plan: _Plan
    catalog: dict[str, dict[str, str]]
    rebuild: bool
    ask_writer: bool  # the manifest does not list the indexed files: the writer knows them
    dim: int  # the index's dimension (0: none yet, or rebuilt: the model's)
    manifest: dict[str, Any]  # the index's manifest before the run ({} for none or a rebuild)

    @property
    def idle(self) -> bool:
        """Nothing to do: no file is new, changed or removed."""
        return not (self.ask_writer or self.rebuild or self.plan.removed or self.plan.todo)


@dataclass
class _Plan:
    """What an ingest has to do: the corpus files against what the index holds."""

    files: list[CorpusFile]
    refused: list[tuple[str, str]]
    fingerprints: dict[str, str]  # every current file
    known: dict[str, str]  # what the index holds
    removed: list[str]
    todo: list[CorpusFile]  # new or changed
    skipped: list[SkippedFile] = field(default_factory=list)

    @classmethod
    def of(
        cls,
        files: list[CorpusFile],
        catalog: dict[str, dict[str, str]],
        known: dict[str, str],
        refused: list[tuple[str, str]],
    ) -> _Plan:
        current = {cf.rel: _fingerprint(cf.sha256(), catalog.get(cf.rel), cf.path) for cf in files}
        return cls(
            files, refused, current, known, sorted(set(known) - set(current)),
            [cf for cf in files if known.get(cf.rel) != current[cf.rel]],
            [SkippedFile(rel, why) for rel, why in refused],
        )  # fmt: skip

    def read(
        self, catalog: dict[str, dict[str, str]], progress: Progress
    ) -> list[tuple[str, list[Document]]]:
        """Load the new and changed files (no model); unreadable ones join ``skipped``."""
        return list(self.reading(catalog, progress))

    def reading(
        self, catalog: dict[str, dict[str, str]], progress: Progress
    ) -> Iterator[tuple[str, list[Document]]]:
        """:meth:`read`, one file at a time (a scanned PDF's OCR takes a while)."""
        self.skipped = [SkippedFile(rel, why) for rel, why in self.refused]
        for n, (cf, result) in enumerate(iter_documents(self.todo, catalog), 1):
            progress("reading", n, len(self.todo))
            if isinstance(result, LoadError):
                kept = " (the previously indexed version is kept)" if cf.rel in self.known else ""
                self.skipped.append(SkippedFile(cf.rel, f"{result}{kept}"))
            else:
                yield cf.rel, result

    def report(self, added: Sequence[str], embedded: tuple[int, int] | tuple[()]) -> IngestReport:
        n_chunks, n_sentences = embedded or (0, 0)
        return IngestReport(
            documents=0, chunks=0, files_added=tuple(r for r in added if r not in self.known),
            files_changed=tuple(r for r in added if r in self.known),
            files_removed=tuple(self.removed), files_unchanged=len(self.files) - len(self.todo),
            chunks_embedded=n_chunks, sentences_embedded=n_sentences, skipped=tuple(self.skipped),
        )  # fmt: skip


def _fingerprint(file_sha: str, meta: dict[str, str] | None, path: Path) -> str:
    """A file's identity for incremental ingest: its bytes plus its metadata (catalog + sidecar)."""
    sidecar = path.with_name(path.name + ".meta.json")
    extra = json.dumps(meta or {}, sort_keys=True) + (
        sidecar.read_text(encoding="utf-8", errors="replace") if sidecar.exists() else ""
    )
    if extra in ("{}", ""):
        return file_sha
    return f"{file_sha}+meta:{hashlib.sha256(extra.encode()).hexdigest()[:16]}"
