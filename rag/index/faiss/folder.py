"""The index folder: FAISS vectors + SQLite chunk table + manifest.json. No pickle anywhere.

Layout of ``index/``::

    manifest.json    schema, model + dim, chunking, sha256 of every source file, counts, checksums
    vectors.faiss    FAISS index, flat or IVF by size (vectors.py); ids: chunk row ids
    sentences.faiss  the same for the sentences inside chunks (ids: sentence row ids)
    chunks.sqlite    tables files, documents (with the cleaned text) and chunks (offsets + text)
    lexical.npz      BM25 weights (CSC arrays) + lexical_vocab.json; rebuilt from chunk terms
    README.md        what this folder is

This module reads the folder (:class:`IndexReader`), its manifest and checksums, and recovers
from an interrupted write (:func:`recover`). Writes never touch the live folder: the
:class:`~rag.index.faiss.writer.IndexWriter` (``writer.py``) works on a copy and swaps it in.
Writers are serialised by a lock file next to the folder (:func:`lock_for`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from filelock import FileLock

from rag.index.base import IndexError_
from rag.index.faiss.maps import FlatVectors, SentenceMap
from rag.index.faiss.vectors import IndexSpec
from rag.index.lexical import LEXICAL_NPZ, LEXICAL_VOCAB, LexicalIndex
from rag.ingest.corpus import file_sha256
from rag.types import Chunk, Document

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2  # 2: jurisdiction, type, status, licence, pages, OCR, translations
MANIFEST = "manifest.json"
VECTORS = "vectors.faiss"
SENTENCES = "sentences.faiss"
TABLE = "chunks.sqlite"
DATA_FILES = (VECTORS, SENTENCES, TABLE, LEXICAL_NPZ, LEXICAL_VOCAB)
README_TEXT = """# index/

Built by `rag ingest` from `corpus/`; not committed (only this README is). Delete the folder, or run
`rag ingest --rebuild`, to build it from scratch.

- `manifest.json`: schema version, embedding model and dimension, index settings (chunking,
  centering), the sha256 of every source file (with its metadata), counts, build time, govrag
  version and checksums of the files below.
- `vectors.faiss`: the FAISS vector index (exact, or IVF for large sets: `index_type` in the
  manifest); vector ids are the row ids of the chunk table.
- `sentences.faiss`: vectors of the sentences inside chunks (ids: rows of the `sentences` table),
  used to rescore passages by their best sentence and to pick quotes.
- `chunks.sqlite`: tables `files`, `documents` (metadata and cleaned text), `chunks`
  (`chunk_id`, `doc_id`, `start`, `end`, `text`, with `documents.text[start:end] == chunks.text`,
  and the chunk's BM25 `terms`), `sentences` (`doc_id`, `start`, `end`) and `chunk_sentences`.
- `lexical.npz` + `lexical_vocab.json`: the BM25 matrix (plain arrays) and its vocabulary.

No pickle is used: a downloaded index cannot run code.
"""

SCHEMA_SQL = """
CREATE TABLE files (path TEXT PRIMARY KEY, sha256 TEXT NOT NULL);
CREATE TABLE documents (
    doc_id TEXT PRIMARY KEY, path TEXT NOT NULL, title TEXT, lang TEXT, source TEXT, url TEXT,
    date TEXT, jurisdiction TEXT, doc_type TEXT, status TEXT, licence TEXT, pages TEXT,
    ocr INTEGER, translations TEXT, text TEXT NOT NULL);
CREATE TABLE chunks (
    row INTEGER PRIMARY KEY AUTOINCREMENT, chunk_id TEXT UNIQUE NOT NULL, doc_id TEXT NOT NULL,
    ordinal INTEGER NOT NULL, start INTEGER NOT NULL, end INTEGER NOT NULL, text TEXT NOT NULL,
    terms TEXT NOT NULL DEFAULT '');
CREATE INDEX chunks_doc ON chunks(doc_id);
CREATE TABLE sentences (
    row INTEGER PRIMARY KEY AUTOINCREMENT, doc_id TEXT NOT NULL, start INTEGER NOT NULL,
    end INTEGER NOT NULL);
CREATE INDEX sentences_doc ON sentences(doc_id);
CREATE TABLE chunk_sentences (chunk_row INTEGER NOT NULL, sent_row INTEGER NOT NULL);
CREATE INDEX chunk_sentences_chunk ON chunk_sentences(chunk_row);
CREATE INDEX chunk_sentences_sent ON chunk_sentences(sent_row);
CREATE INDEX documents_path ON documents(path);
"""


DOC_COLUMNS = (
    "doc_id, title, lang, path, source, url, date, jurisdiction, doc_type, status, licence, "
    "pages, ocr, translations"
)


def document_row(d: Document, rel: str) -> tuple[Any, ...]:
    """A document as a row of the ``documents`` table (``DOC_COLUMNS``, then ``text``)."""
    return (d.doc_id, d.title, d.lang, rel, d.source, d.url, d.date, d.jurisdiction, d.doc_type,
            d.status, d.licence, json.dumps(list(d.pages)), int(d.ocr),
            json.dumps(list(d.translations)), d.text)  # fmt: skip


def row_document(r: Sequence[Any], text: str = "") -> Document:
    """A row selected as ``DOC_COLUMNS`` → Document."""
    return Document(
        doc_id=r[0], text=text, title=r[1], lang=r[2], path=r[3], source=r[4], url=r[5],
        date=r[6], jurisdiction=r[7] or "", doc_type=r[8] or "", status=r[9] or "",
        licence=r[10] or "", pages=tuple(json.loads(r[11] or "[]")), ocr=bool(r[12]),
        translations=tuple(json.loads(r[13] or "[]")),
    )  # fmt: skip


def _read_faiss(path: Path) -> faiss.Index:
    try:
        return faiss.read_index(str(path))
    except RuntimeError as exc:
        raise IndexError_(f"{path} is unreadable: run `rag ingest --rebuild`") from exc


def old_dir(index_dir: Path) -> Path:
    return index_dir.with_name(index_dir.name + ".old")


def lock_for(index_dir: Path) -> FileLock:
    """The writer lock: one ingest at a time per index folder."""
    index_dir.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(index_dir.with_name(f".{index_dir.name}.lock")))


def recover(index_dir: Path) -> None:
    """If a crash hit between the two renames of a commit, put the previous index back."""
    old = old_dir(index_dir)
    if old.exists() and not (index_dir / MANIFEST).exists():
        if index_dir.exists():
            shutil.rmtree(index_dir)
        os.rename(old, index_dir)
        log.warning("restored the previous index from %s after an interrupted write", old)
    elif old.exists():
        shutil.rmtree(old, ignore_errors=True)


def exists(index_dir: Path) -> bool:
    return (index_dir / MANIFEST).exists() or (old_dir(index_dir) / MANIFEST).exists()


def read_manifest(index_dir: Path) -> dict[str, Any]:
    path = index_dir / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise IndexError_(f"no index in {index_dir}: run `rag ingest` first") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IndexError_(f"{path} is damaged ({exc}): run `rag ingest --rebuild`") from exc
    if not isinstance(data, dict):
        raise IndexError_(f"{path} is damaged (not an object): run `rag ingest --rebuild`")
    return data


def check_compatible(manifest: dict[str, Any], model: str, dim: int | None, where: Path) -> None:
    """Refuse an index from another schema or model, saying what to run."""
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise IndexError_(
            f"index {where} has schema {manifest.get('schema_version')!r}, this govrag reads "
            f"{SCHEMA_VERSION}: run `rag ingest --rebuild`"
        )
    built = manifest.get("model", {})
    if built.get("name") != model or (dim is not None and built.get("dim") != dim):
        raise IndexError_(
            f"index {where} was built with model {built.get('name')!r} (dim {built.get('dim')}), "
            f"but the current model is {model!r}" + (f" (dim {dim})" if dim else "") + ": run "
            f"`rag ingest --rebuild` to re-embed, or set RAG_MODEL={built.get('name')}"
        )


def verify_files(index_dir: Path, manifest: dict[str, Any]) -> None:
    """Every data file is present and matches its sha256 in the manifest, or IndexError_."""
    checksums = manifest.get("checksums")
    if not isinstance(checksums, dict) or set(checksums) != set(DATA_FILES):
        raise IndexError_(
            f"{index_dir / MANIFEST} lacks the checksums of {', '.join(DATA_FILES)} (damaged or "
            "edited): run `rag ingest --rebuild`"
        )
    for name, digest in checksums.items():
        path = index_dir / name
        if not path.is_file() or file_sha256(path) != digest:
            raise IndexError_(
                f"index file {path} is missing or does not match its checksum in "
                f"{MANIFEST} (damaged or edited): run `rag ingest --rebuild`"
            )


@dataclass(frozen=True)
class ChunkRow:
    row: int
    chunk: Chunk


class IndexReader:
    """A loaded, verified index. Thread-safe for concurrent searches."""

    def __init__(self, index_dir: Path, *, model: str, dim: int | None = None, verify: bool = True):
        self.dir = index_dir
        for attempt in range(3):
            if not (index_dir / MANIFEST).exists() and old_dir(index_dir).exists():
                # A crashed write, or a writer between its two renames: recovering is a write,
                # so it waits for any writer to finish.
                with lock_for(index_dir):
                    recover(index_dir)
            try:
                self._open(index_dir, model, dim, verify)
                return
            except IndexError_:
                if attempt == 2 or not self._replaced():
                    raise
                log.info("index %s was replaced while loading; loading it again", index_dir)

    def _replaced(self) -> bool:
        """Did a commit swap the folder while we read it (so a mismatch is not damage)?"""
        db = getattr(self, "_db", None)
        if db is not None:
            db.close()
            del self._db
        try:
            return read_manifest(self.dir) != getattr(self, "manifest", None)
        except IndexError_:  # gone (mid-swap: retry) or damaged (not a swap)
            return not (self.dir / MANIFEST).exists() and old_dir(self.dir).exists()

    def _open(self, index_dir: Path, model: str, dim: int | None, verify: bool) -> None:
        self.manifest = read_manifest(index_dir)
        check_compatible(self.manifest, model, dim, index_dir)
        if verify:
            verify_files(index_dir, self.manifest)
        self.vectors = _read_faiss(index_dir / VECTORS)
        self.sentence_vectors = _read_faiss(index_dir / SENTENCES)
        self._flat = {False: FlatVectors.of(self.vectors),
                      True: FlatVectors.of(self.sentence_vectors)}  # fmt: skip
        types = self.manifest.get("index_type")
        for key, index in (("chunks", self.vectors), ("sentences", self.sentence_vectors)):
            spec = IndexSpec.from_json(types.get(key) if isinstance(types, dict) else None)
            if spec is not None and spec.kind == "ivf" and isinstance(index, faiss.IndexIVF):
                index.nprobe = spec.nprobe  # FAISS does not store nprobe in the file
        try:
            self.lexical = LexicalIndex.load(index_dir)
        except (OSError, ValueError, KeyError) as exc:
            raise IndexError_(
                f"lexical index in {index_dir} is unreadable ({exc}): run `rag ingest --rebuild`"
            ) from exc
        uri = (index_dir / TABLE).resolve().as_uri() + "?mode=ro"
        self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
        self._lock = threading.Lock()
        # Row id → document language and document, for language-aware fusion and the
        # per-document cap (small arrays, so a search asks SQLite only for the texts it shows).
        pairs = self._query(
            "SELECT c.row, d.lang, c.doc_id FROM chunks c JOIN documents d ON d.doc_id = c.doc_id "
            "ORDER BY c.row"
        )
        self.langs = sorted({lang for _, lang, _ in pairs})
        self.row_ids = np.fromiter((r for r, _, _ in pairs), dtype=np.int64, count=len(pairs))
        code = {lang: i for i, lang in enumerate(self.langs)}
        self.row_lang = np.fromiter(
            (code[x] for _, x, _ in pairs), dtype=np.int16, count=len(pairs)
        )
        self.row_doc = [d for _, _, d in pairs]
        n_rows = len(pairs)
        self._spans = SentenceMap.load(self._query)
        n_sents = self._query("SELECT COUNT(*) FROM sentences")[0][0]
        if n_sents != self.sentence_vectors.ntotal:
            raise IndexError_(
                f"index {index_dir} is inconsistent ({n_sents} sentences, "
                f"{self.sentence_vectors.ntotal} sentence vectors): run `rag ingest --rebuild`"
            )
        if n_rows != self.vectors.ntotal:
            raise IndexError_(
                f"index {index_dir} is inconsistent ({n_rows} chunks, {self.vectors.ntotal} "
                "vectors): run `rag ingest --rebuild`"
            )
        if self.vectors.d != self.manifest["model"].get("dim"):
            raise IndexError_(
                f"index {index_dir} is inconsistent ({MANIFEST} says dimension "
                f"{self.manifest['model'].get('dim')}, the vectors have {self.vectors.d}): "
                "run `rag ingest --rebuild`"
            )
        counts = self.manifest.get("counts", {})
        if (counts.get("chunks"), counts.get("sentences")) != (n_rows, n_sents):
            raise IndexError_(
                f"index {index_dir} is inconsistent ({MANIFEST} counts {counts} but the table "
                f"holds {n_rows} chunks and {n_sents} sentences): run `rag ingest --rebuild`"
            )

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    @property
    def size(self) -> int:
        return int(self.vectors.ntotal)

    def lang_of(self, rows: np.ndarray) -> list[str]:
        """Document language of each chunk row id."""
        pos = np.searchsorted(self.row_ids, rows)
        return [self.langs[int(c)] for c in self.row_lang[pos]]

    def vectors_of(self, rows: Sequence[int], *, sentences: bool = False) -> np.ndarray:
        index = self.sentence_vectors if sentences else self.vectors
        if not len(rows):
            return np.zeros((0, index.d), dtype=np.float32)
        flat = self._flat[sentences]
        got = flat.get(rows) if flat is not None else None
        if got is not None:
            return got
        return np.stack([index.reconstruct(int(r)) for r in rows])  # IVF, or a row not there

    def sentences_in(self, chunk_rows: Iterable[int]) -> dict[int, list[tuple[int, int, int]]]:
        """Chunk row → [(sentence row, start, end)] in document offsets, in text order."""
        return self._spans.sentences_in(chunk_rows)

    def sentence_rows(self, chunk_rows: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """(position in ``chunk_rows``, sentence row) of every sentence of those chunks."""
        return self._spans.sentence_rows(chunk_rows)

    def chunks_holding(self, sent_rows: Sequence[int]) -> np.ndarray:
        """The chunk rows holding each of ``sent_rows``, in their order."""
        return self._spans.chunks_holding(sent_rows)

    def chunks_of_sentences(self, sent_rows: Iterable[int]) -> dict[int, list[int]]:
        """Sentence row → the chunk rows holding it."""
        return self._spans.chunks_of(sent_rows)

    def doc_of(self, rows: Iterable[int]) -> dict[int, str]:
        """Chunk row → its document id (rows not in the index left out)."""
        want = np.fromiter((int(r) for r in rows), dtype=np.int64)
        pos = np.searchsorted(self.row_ids, want)
        ok = pos < len(self.row_ids)
        ok[ok] = self.row_ids[pos[ok]] == want[ok]
        return {int(r): self.row_doc[int(p)] for r, p, o in zip(want, pos, ok, strict=True) if o}

    def chunks(self, rows: Iterable[int]) -> dict[int, Chunk]:
        rows = [int(r) for r in rows if r >= 0]
        if not rows:
            return {}
        marks = ",".join("?" * len(rows))
        got = self._query(
            "SELECT row, chunk_id, doc_id, ordinal, start, end, text FROM chunks "
            f"WHERE row IN ({marks})",
            rows,
        )
        return {r[0]: Chunk(r[1], r[2], r[3], r[4], r[5], r[6]) for r in got}

    def documents(self, doc_ids: Iterable[str], *, with_text: bool = False) -> dict[str, Document]:
        ids = list(dict.fromkeys(doc_ids))
        if not ids:
            return {}
        text_col = "text" if with_text else "''"
        marks = ",".join("?" * len(ids))
        got = self._query(
            f"SELECT {DOC_COLUMNS}, {text_col} FROM documents WHERE doc_id IN ({marks})", ids
        )
        return {r[0]: row_document(r, r[-1]) for r in got}

    def all_documents(self) -> list[tuple[Document, int]]:
        """Every document (without text) with its chunk count, in path order."""
        got = self._query(
            f"SELECT {DOC_COLUMNS}, (SELECT COUNT(*) FROM chunks c WHERE c.doc_id = "
            "documents.doc_id) FROM documents ORDER BY path, doc_id"
        )
        return [(row_document(r), int(r[-1])) for r in got]

    def rows_where(self, sql_filter: str, args: Sequence[Any]) -> np.ndarray:
        """Chunk row ids whose document matches a SQL condition on ``documents d``."""
        got = self._query(
            "SELECT c.row FROM chunks c JOIN documents d ON d.doc_id = c.doc_id "
            f"WHERE {sql_filter}",
            args,
        )
        return np.fromiter((r[0] for r in got), dtype=np.int64, count=len(got))

    def close(self) -> None:
        with self._lock:
            self._db.close()
