"""Concurrency: many users during a re-index, and concurrent `rag ingest` runs on one index.

The full load test is ``python bench/load.py --seconds 60 --clients 50`` (see README,
Reliability); CI runs the same driver for 15 s against the app serving the real model.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.config import Settings
from rag.service import Assistant
from tests.conftest import ROOT, free_port
from tests.reliability.common import QUERIES_EN, cli_env, fake_assistant, write_text_corpus

LOAD_CLIENTS = 50
LOAD_SECONDS = float(os.environ.get("GOVRAG_LOAD_SECONDS", "15"))


def test_searches_during_reindex_never_fail(tmp_path: Path) -> None:
    """Threads search and ask while the index is rebuilt under them (the app's situation)."""
    corpus, index, cache = tmp_path / "corpus", tmp_path / "index", tmp_path / "cache"
    write_text_corpus(corpus, 20, 4, seed=1, prefix="a")
    assistant = fake_assistant(corpus, index, cache)
    assistant.ingest()
    errors: list[str] = []
    stop = threading.Event()
    counts = [0]

    def user(i: int) -> None:
        while not stop.is_set():
            q = QUERIES_EN[i % len(QUERIES_EN)]
            try:
                hits = assistant.search(q, k=5).hits
                answer = assistant.ask(q)
                assert hits and all(c.quote for c in answer.citations)
                counts[0] += 1
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")

    users = [threading.Thread(target=user, args=(i,)) for i in range(6)]
    for t in users:
        t.start()
    try:
        for round_ in range(4):
            write_text_corpus(corpus, 3, 4, seed=10 + round_, prefix=f"r{round_}_")
            assistant.ingest()
    finally:
        stop.set()
        for t in users:
            t.join(timeout=60)
    assert counts[0] > 0
    assert not errors, errors[:3]


_LOCK_LOGGER = """
import os, sys, time
from rag.index.faiss import folder
real = folder.lock_for
log = open(os.environ["GOVRAG_TEST_LOCK_LOG"], "a", buffering=1)

class Logged:
    def __init__(self, lock):
        self.lock = lock
    def __enter__(self):
        log.write(f"{os.getpid()} want {time.monotonic()}\\n")
        self.lock.acquire()
        log.write(f"{os.getpid()} got {time.monotonic()}\\n")
        return self
    def __exit__(self, *exc):
        log.write(f"{os.getpid()} release {time.monotonic()}\\n")
        self.lock.release()

folder.lock_for = lambda index_dir: Logged(real(index_dir))
from rag.app.cli import main
main(sys.argv[1:])
"""


def test_concurrent_ingests_are_serialised_by_the_lock(tmp_path: Path) -> None:
    corpus, index, cache = tmp_path / "corpus", tmp_path / "index", tmp_path / "cache"
    write_text_corpus(corpus, 40, 6, seed=4, prefix="doc")
    log = tmp_path / "lock.log"
    cmd = [sys.executable, "-c", _LOCK_LOGGER, "ingest", "--json", "--corpus", str(corpus),
           "--index", str(index)]  # fmt: skip
    env = cli_env(cache, GOVRAG_TEST_LOCK_LOG=str(log))
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]  # fmt: skip
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    reports = [json.loads(out) for out, _ in outs]

    events: dict[str, dict[str, float]] = {}
    for line in log.read_text().splitlines():
        pid, what, t = line.split()
        events.setdefault(pid, {})[what] = float(t)
    (a, b) = sorted(events.values(), key=lambda e: e["got"])
    assert b["want"] < a["release"], "the runs did not overlap; the test proves nothing"
    assert a["release"] <= b["got"], "the second run entered while the first held the lock"
    # One run did the work; the other found it done (it read the index after the first commit).
    added = sorted(len(r["files_added"]) for r in reports)
    assert added == [0, 40], added
    assert all(r["documents"] == 40 for r in reports)


# --- the app under load (real model) --------------------------------------------------------


@pytest.fixture
def served_copy(real_assistant: Assistant, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The app over a copy of the session's corpus and index (the upload must not leak into the
    shared session), sharing its loaded model."""
    from rag.app.ui import build_app, launch

    src = real_assistant.settings
    shutil.copytree(src.corpus_dir, tmp_path / "corpus")
    shutil.copytree(src.index_dir, tmp_path / "index")
    settings: Settings = src.with_(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index")
    assistant = Assistant(settings, real_assistant.embedder)
    port = free_port()
    app = build_app(assistant)
    launch(app, "127.0.0.1", port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/", tmp_path / "index"
    app.close()


@pytest.mark.model
def test_50_clients_with_an_upload_midway_see_no_errors(served_copy: tuple[str, Path]) -> None:
    url, index = served_copy
    cmd = [sys.executable, str(ROOT / "bench" / "load.py"), "--url", url, "--index", str(index),
           "--clients", str(LOAD_CLIENTS), "--seconds", str(LOAD_SECONDS)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    report = json.loads(proc.stdout)
    print(
        f"\nload: {report['clients']} clients × {report['seconds']:g} s: {report['requests']} "
        f"requests, {len(report['errors'])} errors, {len(report['bad_citations'])} bad "
        f"citations of {report['citations_checked']}; p50 {report['all_p50_ms']:.0f} ms, "
        f"p95 {report['all_p95_ms']:.0f} ms; upload + re-index {report['upload_seconds']} s"
    )
    assert report["errors"] == [] and report["bad_citations"] == [], report
    assert report["requests"] >= LOAD_CLIENTS and report["citations_checked"] > 0
    assert report["uploaded_doc_found"] and "1 added" in report["upload_log"]
    assert proc.returncode == 0
