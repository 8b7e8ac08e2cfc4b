"""The index in a Qdrant collection: the store for archives that outgrow one machine.

One collection per index holds every kind of point, told apart by the ``kind`` payload field:

- ``chunk``: named vectors ``dense`` (cosine) and ``bm25`` (sparse, Qdrant's IDF modifier), and a
  payload with every chunk and document field, the chunk's sentence spans and filter helpers
  (``doc_parents``, ``country_uc``, ``date_num``);
- ``sentence``: named vector ``sentence`` and the ids of the chunks that contain it;
- ``document`` (cleaned text, metadata, chunk count), ``file`` (the fingerprint incremental ingest
  compares) and one ``manifest`` point (JSON): no vectors.

The sparse vector is govrag's own tokenizer (``lexical.tokenize``): term ids are 32-bit hashes of
the terms, values are BM25's saturated term frequency ``tf·(k1+1) / (tf + k1·(1-b+b·len/avglen))``,
and the engine multiplies in the IDF, so the score equals ``lexical.py``'s BM25. ``avglen`` is
fixed when the collection is built (like fastembed's BM25) and kept by incremental updates.
Point ids are hashes of the chunk id / sentence span / document id, so re-ingesting a file
overwrites its points and several writers agree on ids without a counter.

A writer buffers everything until :meth:`QdrantWriter.commit`; a file's ``file`` point is written
after its chunks, so an interrupted commit is redone by the next ingest. Not atomic for readers:
during a commit they see the collection change file by file. Not done here: fusion (the retriever
fuses the candidates exactly as with FAISS).
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import os
import tempfile
import threading
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from filelock import FileLock
from qdrant_client import QdrantClient, models

from rag.lexical import K1, B, tokenize
from rag.store import IndexError_
from rag.stores import Candidates, Store, Writer
from rag.types import Chunk, Document

if TYPE_CHECKING:
    from rag.config import Settings
    from rag.retrieve import Filters

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
DENSE, SENTENCE, SPARSE = "dense", "sentence", "bm25"
CHUNK_FIELDS = ["chunk_id", "doc_id", "ordinal", "start", "end", "text"]
DOC_FIELDS = ["doc_id", "title", "lang", "path", "source", "url", "date", "country"]
_KEYWORD_INDEXES = ("kind", "path", "lang", "doc_id", "doc_parents", "country_uc", "source")


def point_id(kind: str, key: str) -> int:
    """A stable 63-bit point id. Example: ``point_id("chunk", "eu_ai_act/article_005#0")``."""
    digest = hashlib.blake2b(f"{kind}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


MANIFEST_ID = point_id("manifest", "")


def term_id(term: str) -> int:
    """A term's sparse index: 32 bits of its hash (a collision merges two rare terms)."""
    return int.from_bytes(hashlib.blake2b(term.encode(), digest_size=4).digest(), "big")


def query_sparse(terms: Sequence[str]) -> models.SparseVector:
    """Query terms → term ids with their counts (the engine applies the IDF)."""
    counts = Counter(term_id(t) for t in terms)
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
    if filters.countries:
        must.append(match_any("country_uc", [x.upper() for x in filters.countries]))
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


def _client(url: str, path: Path | None) -> tuple[QdrantClient, AbstractContextManager[Any]]:
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


def _release(url: str, path: Path | None) -> None:
    key = url or str(Path(str(path)).resolve())
    with _clients_lock:
        got = _clients.pop(key, None)
    if got is not None:
        got[0].close()


@dataclass
class QdrantBackend:
    """A collection on a Qdrant server/cluster (``url``) or in local mode (``path``)."""

    url: str
    path: Path | None
    collection: str
    shards: int = 1
    replicas: int = 1
    on_disk: bool = False
    quantization: str = "none"
    lock_dir: Path = Path(tempfile.gettempdir())
    temporary: bool = False

    @classmethod
    def from_settings(cls, s: Settings, *, temporary: Path | None = None) -> QdrantBackend:
        url, path, name = s.qdrant_url, s.qdrant_path, s.qdrant_collection
        if temporary is not None:
            if url:
                name = f"{name}-tmp-{uuid.uuid4().hex[:8]}"
            else:
                path = temporary / "qdrant"
        return cls(url, path, name, s.qdrant_shards, s.qdrant_replicas, s.qdrant_on_disk,
                   s.qdrant_quantization, s.cache_dir, temporary is not None)  # fmt: skip

    @property
    def where(self) -> str:
        return f"qdrant:{self.url or self.path}/{self.collection}"

    @property
    def local(self) -> bool:
        return not self.url

    def _conn(self) -> tuple[QdrantClient, AbstractContextManager[Any]]:
        return _client(self.url, self.path)

    def exists(self) -> bool:
        return read_manifest(*self._conn(), self.collection) is not None

    def lock(self) -> AbstractContextManager[Any]:
        """Serialises writers on this machine (a cluster has no lock: run one ingest at a time)."""
        if self.path is not None and str(self.path) != ":memory:":
            folder = Path(self.path).resolve().parent
        else:
            folder = self.lock_dir
        folder.mkdir(parents=True, exist_ok=True)
        key = hashlib.sha256(self.where.encode()).hexdigest()[:16]
        return FileLock(str(folder / f".govrag-qdrant-{key}.lock"))

    def manifest(self) -> dict[str, Any]:
        got = read_manifest(*self._conn(), self.collection)
        if got is None:
            raise IndexError_(
                f"no index in {self.where}: run `rag ingest` first (with the same --store flags)"
            )
        return got

    def check(self, manifest: dict[str, Any], model: str) -> None:
        if manifest.get("schema_version") != SCHEMA_VERSION or manifest.get("store") != "qdrant":
            raise IndexError_(
                f"index {self.where} has schema {manifest.get('schema_version')!r}, this govrag "
                f"reads {SCHEMA_VERSION}: run `rag ingest --rebuild` (with the same --store flags)"
            )
        built = manifest.get("model", {})
        if built.get("name") != model:
            raise IndexError_(
                f"index {self.where} was built with model {built.get('name')!r} (dim "
                f"{built.get('dim')}), but the current model is {model!r}: run `rag ingest "
                f"--rebuild` (with the same --store flags) to re-embed, or set "
                f"RAG_MODEL={built.get('name')}"
            )

    def writer(self, *, model: str, dim: int, rebuild: bool) -> Writer:
        from rag.qdrant_writer import QdrantWriter

        return QdrantWriter(self, model=model, dim=dim, rebuild=rebuild)

    def reader(self, *, model: str) -> Store:
        manifest = self.manifest()
        self.check(manifest, model)
        return QdrantStore(self, manifest)

    def drop(self) -> None:
        client, lock = self._conn()
        with lock:
            if client.collection_exists(self.collection):
                client.delete_collection(self.collection)
        if self.temporary and self.local:
            _release(self.url, self.path)

    def create(self, dim: int) -> None:
        """(Re)create the collection with the configured shards, replicas, storage, indexes."""
        client, lock = self._conn()
        vec = models.VectorParams(size=dim, distance=models.Distance.COSINE, on_disk=self.on_disk)
        quant = None
        if self.quantization == "int8":
            quant = models.ScalarQuantization(scalar=models.ScalarQuantizationConfig(
                type=models.ScalarType.INT8, quantile=0.99, always_ram=True))  # fmt: skip
        with lock:
            if client.collection_exists(self.collection):
                client.delete_collection(self.collection)
            client.create_collection(
                self.collection,
                vectors_config={DENSE: vec, SENTENCE: vec},
                sparse_vectors_config={SPARSE: models.SparseVectorParams(
                    modifier=models.Modifier.IDF,
                    index=models.SparseIndexParams(on_disk=self.on_disk))},
                shard_number=self.shards, replication_factor=self.replicas,
                on_disk_payload=self.on_disk, quantization_config=quant,
            )  # fmt: skip
            if self.local:
                return  # local mode has no payload indexes (it scans)
            for key in _KEYWORD_INDEXES:
                client.create_payload_index(self.collection, key, models.PayloadSchemaType.KEYWORD)
            client.create_payload_index(
                self.collection, "date_num", models.PayloadSchemaType.INTEGER
            )


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


class QdrantStore:
    """A Qdrant collection as a :class:`~rag.stores.Store`."""

    def __init__(self, backend: QdrantBackend, manifest: dict[str, Any]) -> None:
        self.backend = backend
        self.name = backend.collection
        self.client, self._lock = backend._conn()
        self.manifest = manifest
        self.dim = int(manifest["model"]["dim"])
        with self._lock:  # the distinct sources, to resolve --source substrings
            facets = self.client.facet(self.name, key="source", facet_filter=kind_is("chunk"),
                                       limit=1_000_000, exact=True)  # fmt: skip
        self.sources = [str(h.value) for h in facets.hits]

    @property
    def size(self) -> int:
        return int(self.manifest.get("counts", {}).get("chunks", 0))

    def _retrieve(
        self, ids: Iterable[int], payload: list[str] | bool = False, vector: str | None = None
    ) -> dict[int, models.Record]:
        ids = list(dict.fromkeys(int(i) for i in ids))
        if not ids:
            return {}
        with self._lock:
            got = self.client.retrieve(self.name, ids, with_payload=payload,
                                       with_vectors=[vector] if vector else False)  # fmt: skip
        return {int(p.id): p for p in got}

    def candidates(
        self, query: str, query_lang: str, vec: np.ndarray, n: int, filters: Filters,
        *, hybrid: bool,
    ) -> Candidates:  # fmt: skip
        """One batched request: chunk vectors and BM25 under the filter, sentence vectors."""
        flt = to_filter(filters, self.sources)
        q = np.asarray(vec, dtype=np.float32).tolist()
        requests = [models.QueryRequest(query=q, using=DENSE, limit=n, filter=flt)]
        sparse = query_sparse(tokenize(query, query_lang)) if hybrid else None
        if hybrid:
            requests.append(models.QueryRequest(query=q, using=SENTENCE, limit=n,
                                                with_payload=["chunks"]))  # fmt: skip
        if sparse is not None and sparse.indices:
            requests.append(models.QueryRequest(query=sparse, using=SPARSE, limit=n, filter=flt))
        with self._lock:
            results = self.client.query_batch_points(self.name, requests=requests)
        dense = [(int(p.id), float(p.score)) for p in results[0].points]
        if not hybrid:
            return Candidates(dense)
        from_sents = [int(c) for p in results[1].points for c in (p.payload or {})["chunks"]]
        lexical = {}
        if len(results) > 2:
            lexical = {int(p.id): float(p.score) for p in results[2].points if p.score > 0}
        if flt is not None and from_sents:
            ids = list(dict.fromkeys(from_sents))
            keep = models.Filter(must=[models.HasIdCondition(has_id=list(ids)), flt])
            with self._lock:
                allowed, _ = self.client.scroll(self.name, scroll_filter=keep, limit=len(ids))
            allowed_ids = {int(p.id) for p in allowed}
            from_sents = [c for c in from_sents if c in allowed_ids]
        return Candidates(dense, lexical, from_sents)

    def hybrid_rrf(
        self, query: str, query_lang: str, vec: np.ndarray, k: int, filters: Filters, n: int = 50
    ) -> list[tuple[int, float]]:
        """Engine-side hybrid: prefetch the chunk vector and BM25 (n each) under the filter and
        fuse them with Reciprocal Rank Fusion in Qdrant. (chunk row, RRF score), best first.

        Everything runs in the engine, so it scales with the cluster, but RRF keeps only ranks:
        no sentence rescoring and no calibrated weights. The retriever does not use it; see
        README "Scaling out" for how it compares on the dev set.
        """
        flt = to_filter(filters, self.sources)
        q = np.asarray(vec, dtype=np.float32).tolist()
        prefetch = [models.Prefetch(query=q, using=DENSE, limit=n, filter=flt)]
        sparse = query_sparse(tokenize(query, query_lang))
        if sparse.indices:
            prefetch.append(models.Prefetch(query=sparse, using=SPARSE, limit=n, filter=flt))
        with self._lock:
            got = self.client.query_points(
                self.name, prefetch=prefetch, query=models.FusionQuery(fusion=models.Fusion.RRF),
                limit=k,
            )  # fmt: skip
        return [(int(p.id), float(p.score)) for p in got.points]

    def vectors_of(self, rows: Sequence[int], *, sentences: bool = False) -> np.ndarray:
        if not rows:
            return np.zeros((0, self.dim), dtype=np.float32)
        name = SENTENCE if sentences else DENSE
        got = self._retrieve(rows, vector=name)
        try:
            vecs: list[Any] = [got[int(r)].vector[name] for r in rows]  # type: ignore[call-overload,index]
            return np.asarray(vecs, dtype=np.float32)
        except KeyError as exc:
            raise IndexError_(f"{self.backend.where} has no {name} vector for point {exc}: run "
                              "`rag ingest --rebuild`") from exc  # fmt: skip

    def sentences_in(self, chunk_rows: Iterable[int]) -> dict[int, list[tuple[int, int, int]]]:
        got = self._retrieve(chunk_rows, ["sentences"])
        return {
            row: [(int(s), int(a), int(b)) for s, a, b in (p.payload or {}).get("sentences", [])]
            for row, p in got.items()
        }

    def lang_of(self, rows: np.ndarray) -> list[str]:
        got = self._retrieve(rows.tolist(), ["lang"])
        return [(got[int(r)].payload or {})["lang"] for r in rows]

    def chunks(self, rows: Iterable[int]) -> dict[int, Chunk]:
        got = self._retrieve((r for r in rows if r >= 0), CHUNK_FIELDS)
        return {
            row: Chunk(*(p.payload[f] for f in CHUNK_FIELDS))  # type: ignore[index]
            for row, p in got.items()
        }

    def documents(self, doc_ids: Iterable[str], *, with_text: bool = False) -> dict[str, Document]:
        fields = DOC_FIELDS + (["text"] if with_text else [])
        got = self._retrieve((point_id("doc", d) for d in doc_ids), fields)
        return {(p.payload or {})["doc_id"]: _document(p.payload or {}) for p in got.values()}

    def all_documents(self) -> list[tuple[Document, int]]:
        docs = [
            (_document(p.payload or {}), int((p.payload or {})["n_chunks"]))
            for p in scroll_all(self.client, self._lock, self.name, kind_is("document"),
                             [*DOC_FIELDS, "n_chunks"])
        ]  # fmt: skip
        return sorted(docs, key=lambda x: (x[0].path, x[0].doc_id))

    def close(self) -> None:
        """The client is shared per location and process; nothing to release here."""


def _document(p: dict[str, Any]) -> Document:
    return Document(p["doc_id"], p.get("text", ""), p["title"], p["lang"], p["path"],
                    p["source"], p["url"], p["date"], p["country"])  # fmt: skip
