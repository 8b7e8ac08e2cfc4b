"""Copy an existing FAISS index folder into a Qdrant collection without embedding anything again
(``rag ingest --store qdrant`` from scratch re-embeds; this moves what is already built)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rag.index.base import FileBatch
from rag.index.faiss import folder
from rag.index.qdrant.backend import QdrantBackend
from rag.index.qdrant.writer import QdrantWriter
from rag.types import Chunk


def _faiss_batches(reader: folder.IndexReader) -> Iterator[FileBatch]:
    """Every source file of a FAISS index folder as the batch ingest would have written."""
    q = reader._query
    for rel, fingerprint in q("SELECT path, sha256 FROM files ORDER BY path"):
        docs = [folder.row_document(r, r[-1]) for r in q(
            f"SELECT {folder.DOC_COLUMNS}, text FROM documents WHERE path = ? ORDER BY doc_id",
            (rel,))]  # fmt: skip
        ids = [d.doc_id for d in docs]
        marks = ",".join("?" * len(ids))
        chunk_rows = q(
            "SELECT row, chunk_id, doc_id, ordinal, start, end, text, terms FROM chunks "
            f"WHERE doc_id IN ({marks}) ORDER BY row", ids)  # fmt: skip
        sent_rows = q(f"SELECT row, doc_id, start, end FROM sentences WHERE doc_id IN ({marks}) "
                      "ORDER BY row", ids)  # fmt: skip
        position = {r[0]: i for i, r in enumerate(sent_rows)}
        inside = reader.sentences_in(r[0] for r in chunk_rows)
        yield FileBatch(
            rel=rel, fingerprint=fingerprint, docs=docs,
            chunks=[Chunk(*r[1:7]) for r in chunk_rows],
            chunk_vectors=reader.vectors_of([r[0] for r in chunk_rows]),
            terms=[r[7] for r in chunk_rows],
            sentences=[(d, s, e) for _, d, s, e in sent_rows],
            sentence_vectors=reader.vectors_of([r[0] for r in sent_rows], sentences=True),
            chunk_sentences=[[position[s] for s, _, _ in inside.get(r[0], [])] for r in chunk_rows],
        )  # fmt: skip


def copy_index(index_dir: Path, backend: QdrantBackend) -> dict[str, Any]:
    """Copy a FAISS index folder into the backend's collection (replacing it); no re-embedding.

    Example: ``copy_index(Path("index"), QdrantBackend.from_settings(settings))``.
    """
    manifest = folder.read_manifest(index_dir)
    model = manifest["model"]
    reader = folder.IndexReader(index_dir, model=model["name"], dim=model["dim"])
    try:
        writer = QdrantWriter(backend, model=model["name"], dim=model["dim"], rebuild=True)
        for batch in _faiss_batches(reader):
            writer.add_file(batch)
        return writer.commit({
            "index_settings": manifest.get("index_settings"),
            "copied_from": {"index": str(index_dir), "built_at": manifest.get("built_at")},
        })  # fmt: skip
    finally:
        reader.close()
