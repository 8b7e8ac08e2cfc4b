"""FAISS index types by size: exact (flat) for small vector sets, IVF beyond a measured threshold.

The policy (:func:`index_spec`) is applied to each vector set of an index (chunks and sentences
are counted apart) when :class:`rag.store.IndexWriter` commits; the chosen type goes into the
manifest. Both types take ids (the SQLite row ids), give a vector back by id (``reconstruct``) and
remove ids, which incremental ingest needs. HNSW is not used: FAISS cannot remove from it.

Why these numbers: ``python -m bench scale`` (README "Performance"). A single-query flat search
scans every vector, so its time grows linearly with N; IVF scans ``nprobe`` of ``nlist`` lists.
Not done here: which rows a search may return (the allowed rows come from ``store.py``).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np

log = logging.getLogger(__name__)

#: Above this many vectors in one set, an IVF index replaces the exact one. Measured on 2 busy
#: cores: a single flat search took 1.7 ms at 10k vectors and 112 ms at 100k, where IVF took
#: 1.9 ms at R@10 1.0 (``python -m bench scale``).
FLAT_MAX_VECTORS = 50_000
#: Vectors used to train the IVF centroids (per list); more costs training time, not recall.
TRAIN_PER_LIST = 64
#: OpenMP threads for a search. One query keeps one thread busy; a second one only waits at a
#: barrier, which on a busy 2-core machine costs more than the search (issue #7: 36 ms with 2
#: threads, 8 ms with 1). Building an index uses every core.
SEARCH_THREADS = 1


@dataclass(frozen=True)
class IndexSpec:
    """``kind`` "flat" (exact inner product) or "ivf" (``nlist`` lists, ``nprobe`` searched)."""

    kind: str = "flat"
    nlist: int = 0
    nprobe: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ("flat", "ivf"):
            raise ValueError(f"index kind must be 'flat' or 'ivf', got {self.kind!r}")
        if self.kind == "ivf" and not 1 <= self.nprobe <= self.nlist:
            raise ValueError(f"ivf needs 1 <= nprobe <= nlist, got {self.nprobe}, {self.nlist}")

    def to_json(self) -> dict[str, Any]:
        if self.kind == "flat":
            return {"kind": "flat"}
        return {"kind": "ivf", "nlist": self.nlist, "nprobe": self.nprobe}

    @classmethod
    def from_json(cls, data: Any) -> IndexSpec | None:
        """The spec a manifest recorded, or None for manifests from before the policy."""
        if not isinstance(data, dict):
            return None
        return cls(str(data.get("kind")), int(data.get("nlist", 0)), int(data.get("nprobe", 0)))


def index_spec(n: int, flat_max: int | None = None) -> IndexSpec:
    """The index type for a set of ``n`` vectors.

    Example: ``index_spec(1000)`` → flat; ``index_spec(1_000_000)`` → ivf, 1024 lists, nprobe 32.
    ``nlist`` is the power of two nearest √n (so it changes, and the index is retrained, only when
    n grows or shrinks about fourfold); ``nprobe`` = nlist/32, at least 16.
    """
    limit = FLAT_MAX_VECTORS if flat_max is None else flat_max
    if n <= limit:
        return IndexSpec("flat")
    nlist = 2 ** round(math.log2(math.sqrt(n)))
    return IndexSpec("ivf", nlist, min(nlist, max(16, nlist // 32)))


def spec_of(index: faiss.Index) -> IndexSpec:
    """What an index is, read off the FAISS object."""
    if isinstance(index, faiss.IndexIVF):
        return IndexSpec("ivf", int(index.nlist), int(index.nprobe))
    return IndexSpec("flat")


def same_layout(a: IndexSpec, b: IndexSpec) -> bool:
    """True if an index of spec ``a`` can serve as ``b`` by changing ``nprobe`` only."""
    return (a.kind, a.nlist) == (b.kind, b.nlist)


def new_index(dim: int, spec: IndexSpec = IndexSpec()) -> faiss.Index:
    """An empty index; an IVF one is untrained (see :func:`build`)."""
    if spec.kind == "flat":
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    quantizer: Any = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, spec.nlist, faiss.METRIC_INNER_PRODUCT)
    index.own_fields = True
    quantizer.this.disown()  # the IVF index frees its quantizer
    direct_map: Any = faiss.DirectMap  # type: ignore[attr-defined]
    index.set_direct_map_type(direct_map.Hashtable)  # reconstruct and remove by id
    index.nprobe = spec.nprobe
    return index


def build(dim: int, spec: IndexSpec, vectors: np.ndarray, ids: np.ndarray) -> faiss.Index:
    """An index of ``spec`` holding ``vectors`` under ``ids``; trains IVF centroids on a sample."""
    index = new_index(dim, spec)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(os.cpu_count() or 1)  # training and assignment are batch work
    try:
        if spec.kind == "ivf":
            n_train = min(len(vectors), spec.nlist * TRAIN_PER_LIST)
            sample = np.random.default_rng(0).choice(len(vectors), n_train, replace=False)
            index.train(vectors[np.sort(sample)])
        if len(vectors):
            index.add_with_ids(vectors, np.ascontiguousarray(ids, dtype=np.int64))
    finally:
        faiss.omp_set_num_threads(threads)
    return index


def contents(index: Any) -> tuple[np.ndarray, np.ndarray]:
    """(vectors, ids) of every vector in a flat or IVF-flat index, in no particular order."""
    if isinstance(index, faiss.IndexIVFFlat):
        invlists: Any = index.invlists
        vecs: list[np.ndarray] = []
        ids: list[np.ndarray] = []
        for lst in range(index.nlist):
            size = invlists.list_size(lst)
            if not size:
                continue
            ids.append(faiss.rev_swig_ptr(invlists.get_ids(lst), size).copy())
            codes = faiss.rev_swig_ptr(invlists.get_codes(lst), size * index.code_size)
            vecs.append(np.frombuffer(codes.copy(), dtype=np.float32).reshape(size, index.d))
        if not ids:
            return np.zeros((0, index.d), dtype=np.float32), np.zeros(0, dtype=np.int64)
        return np.concatenate(vecs), np.concatenate(ids)
    flat = faiss.downcast_index(index.index)
    return flat.reconstruct_n(0, flat.ntotal), faiss.vector_to_array(index.id_map).astype(np.int64)


def conform(index: Any, dim: int, flat_max: int | None = None) -> faiss.Index:
    """``index`` rebuilt to the type the policy wants for its size (or as is, if it fits)."""
    want = index_spec(int(index.ntotal), flat_max)
    have = spec_of(index)
    if same_layout(have, want):
        if want.kind == "ivf":
            index.nprobe = want.nprobe
        return index
    log.info("rebuilding a %d-vector index: %s → %s", index.ntotal, have, want)
    vectors, ids = contents(index)
    return build(dim, want, vectors, ids)


def search(
    index: faiss.Index, query: np.ndarray, k: int, allowed: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(scores, ids) for one query, best first; ``allowed`` (sorted ids) restricts the result.

    On an IVF index a selective filter can leave fewer than ``k`` allowed vectors in the probed
    lists; then the search is repeated over every list, so a filtered search still finds k hits.
    """
    faiss.omp_set_num_threads(SEARCH_THREADS)
    q = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
    sel = None if allowed is None else faiss.IDSelectorBatch(allowed)
    if not isinstance(index, faiss.IndexIVF):
        params = None if sel is None else faiss.SearchParameters(sel=sel)  # type: ignore[call-arg]
        scores, ids = index.search(q, k, params=params)
        return scores[0], ids[0]
    scores, ids = index.search(q, k, params=faiss.SearchParametersIVF(sel=sel, nprobe=index.nprobe))  # type: ignore[call-arg]
    if sel is not None and ids[0][-1] < 0 and index.nprobe < index.nlist:
        params = faiss.SearchParametersIVF(sel=sel, nprobe=index.nlist)  # type: ignore[call-arg]
        scores, ids = index.search(q, k, params=params)
    return scores[0], ids[0]
