"""Writing a govrag index into a Qdrant collection (layout: ``collection.py``).

:class:`QdrantWriter` buffers an ingest and writes it in :meth:`~QdrantWriter.commit`: a file's
old points are deleted by its ``path``, then its documents, chunks and sentences are upserted and
its ``file`` point last, so an interrupted commit is redone by the next ingest.
Copying a FAISS index folder into a collection is ``rag/index/copy.py``.
Not done here: reading (``store.py``), embedding (``rag/service/indexing.py``).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from qdrant_client import models

from rag import __version__
from rag.index.base import FileBatch
from rag.index.lexical import K1, B
from rag.index.qdrant.collection import (
    CHUNK_FIELDS,
    DENSE,
    DOC_FIELDS,
    MANIFEST_ID,
    SCHEMA_VERSION,
    SENTENCE,
    SPARSE,
    Collection,
    date_num,
    doc_sparse,
    kind_is,
    match_any,
    point_id,
    read_manifest,
    scroll_all,
)  # fmt: skip
from rag.types import Document

UPSERT_BATCH = 256


def _parents(doc_id: str) -> list[str]:
    """``a/b/c`` → ``["a", "a/b"]``: what a ``--doc`` prefix filter matches."""
    parts = doc_id.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


class QdrantWriter:
    """Buffers an ingest and writes it in :meth:`commit` (see the module docstring)."""

    def __init__(self, backend: Collection, *, model: str, dim: int, rebuild: bool) -> None:
        self.backend = backend
        self.model, self.dim = model, dim
        self.client, self._lock = backend.connection()
        old = None if rebuild else read_manifest(self.client, self._lock, backend.collection)
        if old is not None:
            backend.check(old, model)
        self.old = old
        self.rebuild = old is None
        self.files: dict[str, str] = {}
        self.doc_owner: dict[str, str] = {}
        if not self.rebuild:
            name = backend.collection
            conn = (self.client, self._lock, name)
            for p in scroll_all(*conn, kind_is("file"), ["path", "sha256"]):
                self.files[p.payload["path"]] = p.payload["sha256"]  # type: ignore[index]
            for p in scroll_all(*conn, kind_is("document"), ["doc_id", "path"]):
                self.doc_owner[p.payload["doc_id"]] = p.payload["path"]  # type: ignore[index]
        self.removed: list[str] = []
        self.batches: dict[str, FileBatch] = {}

    def file_hashes(self) -> dict[str, str]:
        return dict(self.files)

    def remove_file(self, rel: str) -> int:
        """Forget a file's points (deleted at commit). Returns 0: the chunk count is not known."""
        self.files.pop(rel, None)
        self.batches.pop(rel, None)
        self.doc_owner = {d: p for d, p in self.doc_owner.items() if p != rel}
        self.removed.append(rel)
        return 0

    def taken_doc_ids(self, doc_ids: Sequence[str]) -> dict[str, str]:
        return {d: self.doc_owner[d] for d in doc_ids if d in self.doc_owner}

    def add_file(self, batch: FileBatch) -> None:
        if batch.rel in self.files:
            self.remove_file(batch.rel)
        self.batches[batch.rel] = batch
        self.files[batch.rel] = batch.fingerprint
        self.doc_owner.update({d.doc_id: batch.rel for d in batch.docs})

    def abort(self) -> None:
        """Nothing reached the collection yet."""
        self.batches.clear()

    def commit(self, extra: dict[str, Any]) -> dict[str, Any]:
        b, name = self.backend, self.backend.collection
        if self.rebuild:
            b.create(self.dim)
            lengths = [len(t.split()) for batch in self.batches.values() for t in batch.terms]
            avglen = float(np.mean(lengths)) if lengths else 1.0
        else:
            avglen = float(self.old["lexical"]["avglen"])  # type: ignore[index]
            for rel in dict.fromkeys([*self.removed, *self.batches]):
                with self._lock:
                    self.client.delete(name, points_selector=models.FilterSelector(
                        filter=models.Filter(must=[match_any("path", [rel])])))  # fmt: skip
        for batch in self.batches.values():
            points = _points(batch, avglen)
            for i in range(0, len(points), UPSERT_BATCH):
                with self._lock:
                    self.client.upsert(name, points[i : i + UPSERT_BATCH], wait=True)
        with self._lock:
            counts = {
                kind: self.client.count(name, count_filter=kind_is(kind), exact=True).count
                for kind in ("file", "document", "chunk", "sentence")
            }
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "store": "qdrant",
            "govrag_version": __version__,
            "model": {"name": self.model, "dim": self.dim},
            "counts": {"files": counts["file"], "documents": counts["document"],
                       "chunks": counts["chunk"], "sentences": counts["sentence"]},
            "lexical": {"avglen": avglen, "k1": K1, "b": B, "term_ids": "blake2b-32"},
            "files": dict(sorted(self.files.items())),  # what an ingest compares before loading
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **extra,
        }  # fmt: skip
        with self._lock:
            self.client.upsert(name, [models.PointStruct(
                id=MANIFEST_ID, vector={},
                payload={"kind": "manifest", "json": json.dumps(manifest, ensure_ascii=False)})],
                wait=True)  # fmt: skip
        return manifest


def _points(batch: FileBatch, avglen: float) -> list[models.PointStruct]:
    """A file's points: documents, chunks, sentences, and last the file point."""
    docs = {d.doc_id: d for d in batch.docs}
    sent_ids = [point_id("sentence", f"{d}:{s}:{e}") for d, s, e in batch.sentences]
    sent_chunks: dict[int, list[int]] = {}
    points = []
    n_chunks = Counter(c.doc_id for c in batch.chunks)
    for d in batch.docs:
        meta = doc_payload(d)
        points.append(models.PointStruct(id=point_id("doc", d.doc_id), vector={}, payload={
            "kind": "document", **meta, "path": batch.rel, "text": d.text,
            "n_chunks": n_chunks[d.doc_id]}))  # fmt: skip
    for c, vec, terms, members in zip(batch.chunks, batch.chunk_vectors, batch.terms,
                                      batch.chunk_sentences, strict=True):  # fmt: skip
        d = docs[c.doc_id]
        cid = point_id("chunk", c.chunk_id)
        for i in members:
            sent_chunks.setdefault(i, []).append(cid)
        spans = sorted((batch.sentences[i][1], batch.sentences[i][2], sent_ids[i]) for i in members)
        payload = {
            "kind": "chunk", **doc_payload(d), "path": batch.rel,
            **{f: getattr(c, f) for f in CHUNK_FIELDS},
            "sentences": [[sid, s, e] for s, e, sid in spans],
            "doc_parents": _parents(c.doc_id),
            "jurisdiction_parents": _jurisdiction_parents(d.jurisdiction),
            "doc_type_lc": d.doc_type.lower(),
            "n_terms": len(terms.split()),
        }  # fmt: skip
        if date_num(d.date) is not None:
            payload["date_num"] = date_num(d.date)
        vectors = {DENSE: np.asarray(vec, dtype=np.float32).tolist(),
                   SPARSE: doc_sparse(terms.split(), avglen)}  # fmt: skip
        points.append(models.PointStruct(id=cid, vector=vectors, payload=payload))
    for i, ((doc_id, s, e), vec) in enumerate(zip(batch.sentences, batch.sentence_vectors,
                                                  strict=True)):  # fmt: skip
        points.append(models.PointStruct(
            id=sent_ids[i], vector={SENTENCE: np.asarray(vec, dtype=np.float32).tolist()},
            payload={"kind": "sentence", "path": batch.rel, "doc_id": doc_id, "start": s,
                     "end": e, "chunks": sent_chunks.get(i, [])}))  # fmt: skip
    points.append(models.PointStruct(id=point_id("file", batch.rel), vector={},
                                     payload={"kind": "file", "path": batch.rel,
                                              "sha256": batch.fingerprint}))  # fmt: skip
    return points


def doc_payload(d: Document) -> dict[str, Any]:
    """A document's metadata fields as JSON-able payload values (tuples as lists)."""
    return {f: list(v) if isinstance(v := getattr(d, f), tuple) else v for f in DOC_FIELDS}


def _jurisdiction_parents(code: str) -> list[str]:
    """``US-CO`` → ``["US-CO", "US"]``: a filter on a country also matches its subdivisions."""
    code = code.upper()
    return [code, code.split("-")[0]] if "-" in code else ([code] if code else [])
