"""A staged ingest: the files to embed are cut into batches that are committed one by one.

``rag serve`` builds the index this way in the background so that the app answers within a minute
of a fresh start: files are read (a scanned PDF's OCR takes half a minute) only until the first
batch is full, and that batch is small (:data:`FIRST_BATCH_TEXTS`: its passages are searchable
after a few seconds of embedding); then the rest is read, which makes the number of passages to
come known, and committed in batches that double up to :data:`MAX_BATCH_TEXTS`. Each batch is a
writer session of its own, committed like a whole ingest (the FAISS folder swaps in a copy, the
Qdrant writer writes file by file), so an interrupted build leaves the batches committed before it
and the next ingest, staged or not, embeds only the rest: the manifest lists the committed files.
Until the last batch the manifest says how many files are left (``incomplete``).

Removals, and a rebuild (other chunking settings), go with the first batch. Embedding runs outside
the writer lock, so a reader that meets a commit's swap, or another process's ingest, waits for
one commit at most; when another process committed in between, the rest is planned again.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from rag.index.base import Backend, IndexError_
from rag.service.indexing import Indexer, Prepared, Progress, _Plan, no_progress
from rag.types import Document, IngestReport

log = logging.getLogger(__name__)

#: Texts (chunks and sentences) in the first batch: about 10 s of embedding on 2 busy cores.
FIRST_BATCH_TEXTS = 128
#: The largest batch: every commit rewrites the FAISS folder, so batches grow as the index does.
MAX_BATCH_TEXTS = 4096
#: The manifest key of an index whose staged build has not committed its last batch yet.
INCOMPLETE = "incomplete"


@dataclass(frozen=True)
class Indexing:
    """How far a staged ingest is, in passages (chunks), for a status line."""

    running: bool = False
    stage: str = ""  # "loading model", "reading", "language means", "embedding"
    indexed: int = 0  # passages searchable now (committed)
    embedded: int = 0  # passages embedded so far, committed or not (indexed ≤ embedded ≤ total)
    total: int = 0  # passages the index holds when the ingest is done (0: not known yet)
    files_read: int = 0  # of the files to read (new or changed)
    files: int = 0
    commits: int = 0
    error: str = ""  # why the ingest stopped ("" while it runs and after it finished)


def batches(prepared: Sequence[Prepared], first: int, cap: int) -> list[list[Prepared]]:
    """Consecutive files in batches of at most ``first`` texts, then twice as many each time up to
    ``cap`` (a file bigger than its batch's size is a batch of its own)."""
    out: list[list[Prepared]] = []
    size, limit = 0, first
    for p in prepared:
        if out and out[-1] and size + len(p.texts) > limit:
            out.append([])
            size, limit = 0, min(cap, limit * 2)
        if not out:
            out.append([])
        out[-1].append(p)
        size += len(p.texts)
    return out


def _version(backend: Backend) -> str:
    """What tells one commit from the next: the manifest's files, counts and time."""
    try:
        m = backend.manifest()
    except IndexError_:
        return ""
    return json.dumps([m.get("files"), m.get("counts"), m.get("built_at")], sort_keys=True)


@dataclass
class _Job:
    """A planned staged ingest: the files to embed (read as they are needed) and what it knows."""

    plan: _Plan
    files: Iterator[tuple[str, list[Document]]]
    rebuild: bool  # the first commit starts a new index
    marked: bool  # the index is an unfinished build: its last commit is still due
    dim: int
    version: str  # the index as this job last saw it (its plan, then its own commits)
    kept: int  # passages of the index that the run keeps (before the first commit: a guess)
    commits: int = 0
    added: list[str] = field(default_factory=list)
    chunks: int = 0
    sentences: int = 0

    def report(self) -> IngestReport:
        return self.plan.report(self.added, (self.chunks, self.sentences))

    def left(self) -> int:
        """Files still to commit (read or not)."""
        done = {*self.added, *(s.path for s in self.plan.skipped)}
        return sum(cf.rel not in done for cf in self.plan.todo)


class StagedIngest:
    """``run()`` brings the index in line with the corpus in batches (see the module docstring);
    ``on_stage`` hears how far it is, ``on_commit`` after every commit (outside the lock)."""

    def __init__(
        self,
        indexer: Indexer,
        progress: Progress = no_progress,
        on_stage: Callable[[Indexing], None] | None = None,
        on_commit: Callable[[Indexing], None] | None = None,
        first: int | None = None,
        cap: int | None = None,
    ) -> None:
        self.indexer, self._progress = indexer, progress
        self.on_stage = on_stage or (lambda s: None)
        self.on_commit = on_commit or (lambda s: None)
        self.first = first or FIRST_BATCH_TEXTS
        self.cap = max(cap or MAX_BATCH_TEXTS, self.first)
        self.state = Indexing(running=True)
        self.commits = 0
        self._centered = False

    def progress(self, stage: str, done: int, total: int) -> None:
        """The ingest's progress callback; a new stage also goes to ``on_stage``."""
        if stage == "reading":
            self._stage(stage=stage, files_read=done, files=total)
        elif stage != self.state.stage:
            self._stage(stage=stage)
        self._progress(stage, done, total)

    def run(self, *, rebuild: bool = False) -> IngestReport:
        """Ingest in batches; the report covers the whole run (as :meth:`Indexer.ingest`'s)."""
        t0 = time.perf_counter()
        reports: list[IngestReport] = []
        while True:
            job, report = self._plan(rebuild)
            if job is None:
                reports.append(report)
                break
            finished = self._build(job, t0)
            reports.append(job.report())
            if finished:
                break
            log.info("the index changed while a staged ingest ran; planning the rest again")
            rebuild = rebuild and not self.commits
        return self.indexer.finish(_merge(reports), t0)

    def _plan(self, rebuild: bool) -> tuple[_Job | None, IngestReport]:
        """Under the lock: the corpus against the index. Files are read later, as needed."""
        ix, progress = self.indexer, self.progress
        with ix.backend.lock():
            start = ix.start(rebuild)
            plan, marked = start.plan, INCOMPLETE in start.manifest
            if start.idle and not marked:
                return None, plan.report((), ())
            if start.ask_writer:  # the index does not list its files: its writer knows them
                writer, plan, loaded = ix.open_writer(start, [], progress)
                writer.abort()
                files: Iterator[tuple[str, list[Document]]] = iter(loaded)
            else:
                if plan.todo and not getattr(ix.embedder, "loaded", True):
                    progress("loading model", 0, 0)
                files = plan.reading(start.catalog, progress)
            kept = 0 if start.rebuild or start.ask_writer else _chunks(start.manifest)
            dim = start.dim or ix.embedder.dim
            job = _Job(plan, files, start.rebuild, marked, dim, _version(ix.backend), kept)
        return job, plan.report((), ())

    def _build(self, job: _Job, t0: float) -> bool:
        """Read until the first batch is full, commit it; then read the rest (the passages to
        come are known from here on) and commit it in growing batches. False: another process
        committed in between."""
        first: list[Prepared] = []
        rest: list[Prepared] = []
        for rel, docs in job.files:
            p = self.indexer.prepare(rel, docs)
            size = sum(len(x.texts) for x in first)
            if rest or (first and size + len(p.texts) > self.first):
                rest.append(p)
                if len(rest) == 1 and not self._commit(job, first, self._embed(job, first), t0):
                    return False  # (the first batch is committed as soon as it is complete)
            else:
                first.append(p)
        if not rest:  # everything fitted in the first batch
            return self._commit(job, first, self._embed(job, first), t0, last=True)
        run = [*first, *rest]
        self._stage(total=job.kept + sum(len(p.chunks) for p in run))
        cut = batches(rest, min(self.first * 2, self.cap), self.cap)
        offset = sum(len(p.texts) for p in first)
        for i, batch in enumerate(cut):
            vectors = self._embed(job, batch, offset, run)
            offset += sum(len(p.texts) for p in batch)
            if not self._commit(job, batch, vectors, t0, last=i == len(cut) - 1):
                return False
        return True

    def _commit(
        self, job: _Job, batch: list[Prepared], vectors: np.ndarray, t0: float, last: bool = False
    ) -> bool:
        """Commit ``batch`` with its own writer (the first one also removes what is gone); False
        when another process committed since this job last looked."""
        ix = self.indexer
        if last and not (batch or job.commits or job.rebuild or job.plan.removed or job.marked):
            return True  # only unreadable files changed: nothing to write
        with ix.backend.lock():
            if _version(ix.backend) != job.version:
                return False
            writer = ix.backend.writer(model=ix.embedder.name, dim=job.dim,
                                       rebuild=job.rebuild and not job.commits)  # fmt: skip
            try:
                free = {r for r, _ in ix.claim(writer, job.plan, [(p.rel, p.docs) for p in batch],
                                               remove=not job.commits)}  # fmt: skip
                at = np.cumsum([0, *(len(p.texts) for p in batch)])
                keep = [i for i, p in enumerate(batch) if p.rel in free]
                rows = np.concatenate([vectors[at[i] : at[i + 1]] for i in keep] or [vectors[:0]])
                job.added += ix.add_prepared(writer, [batch[i] for i in keep], rows,
                                             job.plan.fingerprints)  # fmt: skip
                extra = ix.commit_extra(t0, job.plan.skipped)
                if left := job.left():
                    extra[INCOMPLETE] = {"files_left": left}
                manifest = writer.commit(extra)
            except BaseException:
                writer.abort()
                raise
            job.version = _version(ix.backend)
        chunks = sum(len(batch[i].chunks) for i in keep)
        job.chunks += chunks
        job.sentences += sum(len(batch[i].texts) for i in keep) - chunks
        if not job.commits:  # now known: what the index holds besides this run's files
            job.kept = _chunks(manifest) - chunks
        job.commits += 1
        self.commits += 1
        self._stage(indexed=_chunks(manifest), commits=self.commits)
        self._embedded(job.kept + job.chunks)
        self.on_commit(self.state)
        return True

    def _embed(
        self, job: _Job, batch: list[Prepared], offset: int = 0, run: Sequence[Prepared] = ()
    ) -> np.ndarray:
        """The batch's raw vectors; progress over the texts of ``run`` (the whole run, once it is
        known) or of the batch."""
        if not batch:
            return np.zeros((0, 1), dtype=np.float32)
        if not self._centered:  # computed once per model and machine (minutes), then read
            self._stage(stage="language means")
            self.indexer.centering()
            self._centered = True
        run = run or batch
        n_texts, n_chunks = sum(len(p.texts) for p in run), sum(len(p.chunks) for p in run)

        def tick(stage: str, done: int, total: int) -> None:
            self.progress(stage, offset + done, n_texts)
            if self.state.total:
                self._embedded(job.kept + int(n_chunks * (offset + done) / max(n_texts, 1)))

        return self.indexer.embed_prepared(batch, tick)

    def _embedded(self, n: int) -> None:
        """Passages embedded so far: never fewer than before, never more than the total."""
        n = max(n, self.state.embedded)
        self._stage(embedded=min(n, self.state.total) if self.state.total else n)

    def _stage(self, **changes: Any) -> None:
        self.state = replace(self.state, **changes)
        self.on_stage(self.state)


def _chunks(manifest: dict[str, Any]) -> int:
    counts = manifest.get("counts")
    return int(counts.get("chunks") or 0) if isinstance(counts, dict) else 0


def _merge(reports: list[IngestReport]) -> IngestReport:
    """One report for a run that was planned more than once (the last plan's skipped files)."""
    last = reports[-1]
    if len(reports) == 1:
        return last

    def union(name: str) -> tuple[str, ...]:
        return tuple(dict.fromkeys(x for r in reports for x in getattr(r, name)))

    return replace(
        last, files_added=union("files_added"), files_changed=union("files_changed"),
        files_removed=union("files_removed"),
        chunks_embedded=sum(r.chunks_embedded for r in reports),
        sentences_embedded=sum(r.sentences_embedded for r in reports),
    )  # fmt: skip
