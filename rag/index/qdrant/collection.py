"""The layout of a govrag index in a Qdrant collection, and the shared clients.

One collection per index holds every kind of point, told apart by the ``kind`` payload field:

- ``chunk``: named vectors ``dense`` (cosine) and ``bm25`` (sparse, Qdrant's IDF modifier), and a
  payload with every chunk and document field, the chunk's sentence spans and filter helpers
  (``doc_parents``, ``jurisdiction_parents``, ``doc_type_lc``, ``date_num``);
- ``sentence``: named vector ``sentence`` and the ids of the chunks that contain it;
- ``document`` (cleaned text, metadata, chunk count), ``file`` (the fingerprint incremental ingest
  compares) and one ``manifest`` point (JSON): no vectors.

The sparse vector is govrag's own tokenizer (``lexical.tokenize``): term ids are 32-bit hashes of
the terms, values are BM25's saturated term frequency ``tf·(k1+1) / (tf + k1·(1-b+b·len/avglen))``,
and the engine multiplies in the IDF, so the score equals ``lexical.py``'s BM25. ``avglen`` is
fixed when the collection is built (like fastembed's BM25) and kept by incremental updates.
Point ids are hashes of the chunk id / sentence span / document id, so re-ingesting a file
overwrites its points and several writers agree on ids without a counter.

The writer (``writer.py``) buffers everything until :meth:`QdrantWriter.commit`; a file's
``file`` point is written after its chunks, so an interrupted commit is redone by the next
ingest. Not atomic for readers: during a commit they see the collection change file by file.
``backend.py`` opens readers
(``store.py``) and writers; not done here: fusion (the retriever fuses the candidates exactly as
with FAISS).
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import os
import threading
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, Protocol

from qdrant_client import QdrantClient, models

from rag.index.base import IndexError_
from rag.index.lexical import K1, B
from rag.types import Filters

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2  # 2: jurisdiction, type, status, licence, pages, OCR, translations
DENSE, SENTENCE, SPARSE = "dense", "sentence", "bm25"
CHUNK_FIELDS = ["chunk_id", "doc_id", "ordinal", "start", "end", "text"]
DOC_FIELDS = ["doc_id", "title", "lang", "path", "source", "url", "date", "jurisdiction",
              "doc_type", "status", "licence", "pages", "ocr", "translations"]  # fmt: skip
KEYWORD_INDEXES = ("kind", "path", "lang", "doc_id", "doc_parents", "jurisdiction_parents",
                   "doc_type_lc", "source")  # fmt: skip


def point_id(kind: str, key: str) -> int:
    """A stable 63-bit point id. Example: ``point_id("chunk", "eu_ai_act/article_005#0")``."""
    digest = hashlib.blake2b(f"{kind}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


MANIFEST_ID = point_id("manifest", "")


def term_id(term: str) -> int:
    """A term's sparse index: 32 bits of its hash (a collision merges two rare terms)."""
    return int.from_bytes(hashlib.blake2b(term.encode(), digest_size=4).digest(), "big")


def query_sparse(terms: Sequence[str] | Mapping[str, float]) -> models.SparseVector:
    """Query terms → term ids with their counts, or with the given weights (the engine applies
    the IDF)."""
    weighted = terms.items() if isinstance(terms, Mapping) else ((t, 1.0) for t in terms)
    counts: dict[int, float] = {}
    for t, w in weighted:
        counts[term_id(t)] = counts.get(term_id(t), 0.0) + w
    return models.SparseVector(indices=list(counts), values=[float(v) for v in counts.values()])


def doc_sparse(terms: Sequence[str], avglen: float) -> models.SparseVector:
    """A chunk's terms → term ids with BM25's saturated term frequency."""
    counts = Counter(term_id(t) for t in terms)
    norm = K1 * (1 - B + B * len(terms) / (avglen or 1.0))
    return models.SparseVector(
        indices=list(counts), values=[tf * (K1 + 1) / (tf + norm) for tf in counts.values()]
    )


def date_num(date: str) -> int | None:
    """ISO date → a sortable number: ``2023`` → 20230000, ``2023-05`` → 20230500."""
    parts = date.split("-")
    if not date or len(parts) > 3 or not all(p.isdigit() for p in parts) or len(parts[0]) != 4:
        return None
    y, m, d = (int(p) for p in [*parts, "0", "0"][:3])
    return y * 10000 + m * 100 + d


def _date_after(value: str) -> int:
    """The first number past ``value`` at its own precision (``2024`` → 20250000)."""
    n = date_num(value)
    assert n is not None  # Filters validated the format
    return n + {4: 10000, 7: 100}.get(len(value), 1)


def to_filter(filters: Filters, sources: Sequence[str] = ()) -> models.Filter | None:
    """The retriever's filters as a Qdrant filter, with the same meaning as ``Filters.sql``.

    ``sources``: the distinct source values in the collection. Qdrant matches text by tokens,
    not substrings, so ``--source reut`` is resolved here to the sources containing it.
    """
    if not filters.active:
        return None
    must: list[models.Condition] = []
    if filters.langs:
        must.append(match_any("lang", [x.lower() for x in filters.langs]))
    if filters.jurisdictions:  # jurisdiction_parents of US-CO: ["US-CO", "US"]
        must.append(match_any("jurisdiction_parents", [x.upper() for x in filters.jurisdictions]))
    if filters.types:
        must.append(match_any("doc_type_lc", [x.lower() for x in filters.types]))
    if filters.docs:
        parents = [d.rstrip("/") for d in filters.docs]
        should: list[models.Condition] = [
            match_any("doc_id", list(filters.docs)),
            match_any("doc_parents", parents),
        ]
        must.append(models.Filter(should=should))
    if filters.sources:
        wanted = [x.lower() for x in filters.sources]
        must.append(
            match_any("source", [s for s in sources if any(w in s.lower() for w in wanted)])
        )
    if filters.date_from or filters.date_to:
        lo = date_num(filters.date_from) if filters.date_from else None
        hi = _date_after(filters.date_to) if filters.date_to else None
        must.append(models.FieldCondition(key="date_num", range=models.Range(gte=lo, lt=hi)))
    return models.Filter(must=must)


def match_any(key: str, values: list[str]) -> models.FieldCondition:
    return models.FieldCondition(key=key, match=models.MatchAny(any=values))


def kind_is(kind: str) -> models.Filter:
    return models.Filter(must=[match_any("kind", [kind])])


# --- clients: one per location and process (local mode allows one client per folder) ---------

_clients: dict[str, tuple[QdrantClient, AbstractContextManager[Any]]] = {}
_clients_lock = threading.Lock()


def client_for(url: str, path: Path | None) -> tuple[QdrantClient, AbstractContextManager[Any]]:
    """The shared client and the lock its calls take (local mode is not thread-safe)."""
    key = url or (":memory:" if str(path) == ":memory:" else str(Path(str(path)).resolve()))
    with _clients_lock:
        if key not in _clients:
            if url:
                api_key = os.environ.get("RAG_QDRANT_API_KEY") or None
                _clients[key] = (QdrantClient(url=url, api_key=api_key), nullcontext())
            else:
                if key != ":memory:":
                    Path(key).mkdir(parents=True, exist_ok=True)
                _clients[key] = (QdrantClient(path=key), threading.RLock())
        return _clients[key]


@atexit.register
def _close_all() -> None:
    """Close local-mode clients before interpreter teardown (their __del__ fails late)."""
    with _clients_lock:
        got = list(_clients.values())
        _clients.clear()
    for client, _ in got:
        client.close()


def release(url: str, path: Path | None) -> None:
    key = url or str(Path(str(path)).resolve())
    with _clients_lock:
        got = _clients.pop(key, None)
    if got is not None:
        got[0].close()


class Collection(Protocol):
    """What the reader and the writer need of where the collection lives (``QdrantBackend``)."""

    collection: str

    @property
    def where(self) -> str: ...

    def connection(self) -> tuple[QdrantClient, AbstractContextManager[Any]]: ...

    def check(self, manifest: dict[str, Any], model: str) -> None: ...

    def create(self, dim: int) -> None: ...


def read_manifest(
    client: QdrantClient, lock: AbstractContextManager[Any], name: str
) -> dict[str, Any] | None:
    with lock:
        if not client.collection_exists(name):
            return None
        got = client.retrieve(name, [MANIFEST_ID], with_payload=True)
    if not got or not got[0].payload:
        return None
    try:
        data = json.loads(got[0].payload["json"])
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise IndexError_(f"the manifest of qdrant collection {name} is damaged ({exc}): run "
                          "`rag ingest --rebuild`") from exc  # fmt: skip
    return data if isinstance(data, dict) else None


def scroll_all(
    client: QdrantClient, lock: AbstractContextManager[Any], name: str, flt: models.Filter,
    payload: list[str] | models.PayloadSelectorExclude | bool,
) -> Iterator[models.Record]:  # fmt: skip
    offset = None
    while True:
        with lock:
            points, offset = client.scroll(name, scroll_filter=flt, limit=1024, offset=offset,
                                           with_payload=payload, with_vectors=False)  # fmt: skip
        yield from points
        if offset is None:
            return
