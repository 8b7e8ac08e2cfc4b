"""Where a Qdrant index lives (a server or cluster, or local mode) and how it is opened: the
:class:`QdrantBackend` that ``rag.index.backends`` returns for ``store = qdrant``."""

from __future__ import annotations

import hashlib
import logging
import tempfile
import uuid
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock
from qdrant_client import QdrantClient, models

from rag.config import Settings
from rag.index.base import IndexError_, Store, Writer
from rag.index.qdrant.collection import (
    DENSE,
    KEYWORD_INDEXES,
    SCHEMA_VERSION,
    SENTENCE,
    SPARSE,
    client_for,
    read_manifest,
    release,
)
from rag.index.qdrant.store import QdrantStore
from rag.index.qdrant.writer import QdrantWriter

log = logging.getLogger(__name__)


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

    def connection(self) -> tuple[QdrantClient, AbstractContextManager[Any]]:
        return client_for(self.url, self.path)

    def exists(self) -> bool:
        return read_manifest(*self.connection(), self.collection) is not None

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
        got = read_manifest(*self.connection(), self.collection)
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

    def verify(self, manifest: dict[str, Any]) -> None:
        """Nothing to check locally: the server keeps its own data consistent."""

    def stamp(self) -> int | None:
        return None  # read live: no loaded copy to refresh

    def writer(self, *, model: str, dim: int, rebuild: bool) -> Writer:
        return QdrantWriter(self, model=model, dim=dim, rebuild=rebuild)

    def reader(self, *, model: str) -> Store:
        manifest = self.manifest()
        self.check(manifest, model)
        return QdrantStore(self, manifest)

    def drop(self) -> None:
        client, lock = self.connection()
        with lock:
            if client.collection_exists(self.collection):
                client.delete_collection(self.collection)
        if self.temporary and self.local:
            release(self.url, self.path)

    def create(self, dim: int) -> None:
        """(Re)create the collection with the configured shards, replicas, storage, indexes."""
        client, lock = self.connection()
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
            for key in KEYWORD_INDEXES:
                client.create_payload_index(self.collection, key, models.PayloadSchemaType.KEYWORD)
            client.create_payload_index(
                self.collection, "date_num", models.PayloadSchemaType.INTEGER
            )
