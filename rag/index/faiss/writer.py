"""Writing the index folder: :class:`IndexWriter` edits a copy and swaps it in on commit.

The folder's layout and the reading side are in ``folder.py``. A writer works on a copy in a
sibling temporary folder; :meth:`IndexWriter.commit` swaps it into place with two renames (the
previous version is kept as ``<index>.old`` until the swap is done, and
:func:`~rag.index.faiss.folder.recover` puts it back if a crash hit between the renames).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from rag import __version__
from rag.index.base import FileBatch, IndexError_
from rag.index.faiss import folder
from rag.index.faiss.folder import (
    DATA_FILES,
    MANIFEST,
    README_TEXT,
    SCHEMA_SQL,
    SCHEMA_VERSION,
    SENTENCES,
    TABLE,
    VECTORS,
    check_compatible,
    old_dir,
    read_manifest,
    recover,
    verify_files,
)
from rag.index.faiss.vectors import conform, new_index, spec_of
from rag.index.lexical import LexicalIndex
from rag.ingest.corpus import file_sha256

log = logging.getLogger(__name__)


class IndexWriter:
    """Edits a copy of the index; :meth:`commit` swaps it in. Use under :func:`lock_for`."""

    def __init__(self, index_dir: Path, *, model: str, dim: int, rebuild: bool = False) -> None:
        self.dir = index_dir
        self.model = model
        self.dim = dim
        index_dir.parent.mkdir(parents=True, exist_ok=True)
        recover(index_dir)
        for stale in index_dir.parent.glob(f".{index_dir.name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)  # left by a killed run; we hold the lock
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{index_dir.name}.tmp-", dir=index_dir.parent))
        has_old = (index_dir / MANIFEST).exists() and not rebuild
        if has_old:
            old_manifest = read_manifest(index_dir)
            check_compatible(old_manifest, model, dim, index_dir)
            try:  # never carry damage into a new version whose checksums would then match
                verify_files(index_dir, old_manifest)
            except IndexError_ as exc:
                log.warning("%s; rebuilding the index from scratch", exc)
                has_old = False
        if has_old:
            shutil.copy2(index_dir / TABLE, self.tmp / TABLE)
            self.vectors = faiss.read_index(str(index_dir / VECTORS))
            self.sentence_vectors = faiss.read_index(str(index_dir / SENTENCES))
        else:
            self.vectors = new_index(dim)
            self.sentence_vectors = new_index(dim)
        self.db = sqlite3.connect(self.tmp / TABLE)
        if not has_old:
            self.db.executescript(SCHEMA_SQL)

    def file_hashes(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT path, sha256 FROM files").fetchall())

    def remove_file(self, rel: str) -> int:
        """Drop a source file's documents, chunks, sentences and vectors; returns chunks removed."""
        docs = "SELECT doc_id FROM documents WHERE path = ?"
        rows = [r[0] for r in self.db.execute(f"SELECT row FROM chunks WHERE doc_id IN ({docs})",
                                              (rel,))]  # fmt: skip
        sents = [r[0] for r in self.db.execute(
            f"SELECT row FROM sentences WHERE doc_id IN ({docs})", (rel,)
        )]  # fmt: skip
        if rows:
            self.vectors.remove_ids(np.asarray(rows, dtype=np.int64))  # type: ignore[arg-type]
        if sents:
            self.sentence_vectors.remove_ids(np.asarray(sents, dtype=np.int64))  # type: ignore[arg-type]
        self.db.execute(
            f"DELETE FROM chunk_sentences WHERE chunk_row IN "
            f"(SELECT row FROM chunks WHERE doc_id IN ({docs}))",
            (rel,),
        )
        self.db.execute(f"DELETE FROM sentences WHERE doc_id IN ({docs})", (rel,))
        self.db.execute(f"DELETE FROM chunks WHERE doc_id IN ({docs})", (rel,))
        self.db.execute("DELETE FROM documents WHERE path = ?", (rel,))
        self.db.execute("DELETE FROM files WHERE path = ?", (rel,))
        return len(rows)

    def taken_doc_ids(self, doc_ids: Sequence[str]) -> dict[str, str]:
        """Which of these ids already belong to a document, and to which file."""
        marks = ",".join("?" * len(doc_ids))
        got = self.db.execute(
            f"SELECT doc_id, path FROM documents WHERE doc_id IN ({marks})", list(doc_ids)
        ).fetchall()
        return dict(got)

    def add_file(self, batch: FileBatch) -> None:
        self.db.execute(
            "INSERT INTO files(path, sha256) VALUES (?, ?)", (batch.rel, batch.fingerprint)
        )
        self.db.executemany(
            f"INSERT INTO documents({folder.DOC_COLUMNS}, text) VALUES ({','.join('?' * 15)})",
            [folder.document_row(d, batch.rel) for d in batch.docs],
        )
        sent_rows = []
        for doc_id, start, end in batch.sentences:
            cur = self.db.execute(
                "INSERT INTO sentences(doc_id, start, end) VALUES (?,?,?)", (doc_id, start, end)
            )
            assert cur.lastrowid is not None
            sent_rows.append(cur.lastrowid)
        rows = []
        for c, t, members in zip(batch.chunks, batch.terms, batch.chunk_sentences, strict=True):
            cur = self.db.execute(
                "INSERT INTO chunks(chunk_id, doc_id, ordinal, start, end, text, terms) "
                "VALUES (?,?,?,?,?,?,?)",
                (c.chunk_id, c.doc_id, c.ordinal, c.start, c.end, c.text, t),
            )
            assert cur.lastrowid is not None
            rows.append(cur.lastrowid)
            self.db.executemany(
                "INSERT INTO chunk_sentences VALUES (?, ?)",
                [(cur.lastrowid, sent_rows[i]) for i in members],
            )
        for index, vecs, ids in (
            (self.vectors, batch.chunk_vectors, rows),
            (self.sentence_vectors, batch.sentence_vectors, sent_rows),
        ):
            if ids:
                index.add_with_ids(
                    np.ascontiguousarray(vecs, dtype=np.float32), np.asarray(ids, dtype=np.int64)
                )

    def commit(self, extra: dict[str, Any]) -> dict[str, Any]:
        """Write all to the temporary folder, then swap it into place; return the manifest."""
        self.db.commit()
        counts = {
            name: self.db.execute(f"SELECT COUNT(*) FROM {name}").fetchone()[0]
            for name in ("files", "documents", "chunks", "sentences")
        }
        files = self.file_hashes()
        lexical = LexicalIndex.build(self.db.execute("SELECT row, terms FROM chunks ORDER BY row"))
        self.db.close()
        lexical.save(self.tmp)
        # The index type follows the size of each vector set (rag/index/faiss/vectors.py).
        self.vectors = conform(self.vectors, self.dim)
        self.sentence_vectors = conform(self.sentence_vectors, self.dim)
        faiss.write_index(self.vectors, str(self.tmp / VECTORS))
        faiss.write_index(self.sentence_vectors, str(self.tmp / SENTENCES))
        (self.tmp / "README.md").write_text(README_TEXT, encoding="utf-8")
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "govrag_version": __version__,
            "model": {"name": self.model, "dim": self.dim},
            "index_type": {
                "chunks": spec_of(self.vectors).to_json(),
                "sentences": spec_of(self.sentence_vectors).to_json(),
            },
            "counts": counts,
            "files": files,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **extra,
            "checksums": {name: file_sha256(self.tmp / name) for name in DATA_FILES},
        }
        tmp_manifest = self.tmp / (MANIFEST + ".part")
        tmp_manifest.write_text(
            json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8"
        )
        for name in (*DATA_FILES, tmp_manifest.name):
            fd = os.open(self.tmp / name, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
        os.rename(tmp_manifest, self.tmp / MANIFEST)
        old = old_dir(self.dir)
        if self.dir.exists():
            os.rename(self.dir, old)
        os.rename(self.tmp, self.dir)
        shutil.rmtree(old, ignore_errors=True)
        return manifest

    def abort(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.db.close()
        shutil.rmtree(self.tmp, ignore_errors=True)
