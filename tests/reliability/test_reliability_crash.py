"""Crash safety and tampering: SIGKILL `rag ingest` mid-run; damage the index files.

After any kill the index answers exactly as before the run (or, if the kill came after the swap,
exactly as the finished run), and the next ingest completes. A damaged or edited index file is
refused on load with one line that says to run `rag ingest`, never a wrong answer or a trace.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rag.index.base import IndexError_
from rag.index.faiss import folder
from rag.ingest.corpus import file_sha256
from rag.service.staging import StagedIngest
from tests.reliability.common import (
    QUERIES_EN,
    answers,
    cli_env,
    fake_assistant,
    rag_cmd,
    run_rag,
    write_text_corpus,
)

QUERIES = QUERIES_EN
RANDOM_KILLS = 4
# Kill points random times rarely hit: when embedding starts, between the FAISS writes of the
# commit, before each of its three renames, and after the swap (before the old copy is deleted).
AIMED_KILLS = ("embed:1", "write:2", "rename:1", "rename:2", "rename:3", "rmtree-old")

_KILLER = """
import os, shutil, signal, sys
kind, _, nth = os.environ["GOVRAG_TEST_KILL_AT"].partition(":")
calls = {}

def killing(name, real):
    def wrapper(*args, **kw):
        calls[name] = calls.get(name, 0) + 1
        if kind == name and calls[name] == int(nth or 1):
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kw)
    return wrapper

def rmtree(path, *a, **kw):
    if kind == "rmtree-old" and str(path).endswith(".old"):
        os.kill(os.getpid(), signal.SIGKILL)
    return real_rmtree(path, *a, **kw)

import faiss
from rag.models.embeddings import HashEmbedder
real_rmtree = shutil.rmtree
os.rename, shutil.rmtree = killing("rename", os.rename), rmtree
faiss.write_index = killing("write", faiss.write_index)
HashEmbedder.encode_passages = killing("embed", HashEmbedder.encode_passages)
from rag.app.cli import main
main(sys.argv[1:])
"""


def _stage(stderr: str) -> str:
    """How far a killed run got, from its progress lines."""
    for word, stage in (("embedding", "embedding"), ("reading", "reading"), ("Loading", "start")):
        if word in stderr:
            return stage
    return "start-up"


def test_sigkill_during_ingest_keeps_previous_index(tmp_path: Path) -> None:
    corpus, index, cache = tmp_path / "corpus", tmp_path / "index", tmp_path / "cache"
    write_text_corpus(corpus, 40, 6, seed=1, prefix="old")
    fake_assistant(corpus, index, cache).ingest()
    before = answers(fake_assistant(corpus, index, cache), QUERIES)
    baseline = tmp_path / "baseline-index"
    shutil.copytree(index, baseline)

    # Work for the next ingest: 60 new files, 5 changed, 5 removed.
    write_text_corpus(corpus, 60, 8, seed=2, prefix="new")
    for i in range(5):
        (corpus / f"old{i:03d}.txt").write_text(f"Changed file {i} about audit rules.", "utf-8")
        (corpus / f"old{i + 5:03d}.txt").unlink()

    # The finished run, on a copy: its answers and its duration set the kill times.
    ref = tmp_path / "ref-index"
    shutil.copytree(baseline, ref)
    t0 = time.perf_counter()
    done = run_rag(["ingest", "--corpus", str(corpus), "--index", str(ref)], cache)
    full_seconds = time.perf_counter() - t0
    assert done.returncode == 0, done.stderr
    after = answers(fake_assistant(corpus, ref, cache), QUERIES)
    assert after != before

    rng = random.Random(6)
    plan: list[tuple[str, float]] = [("random", rng.uniform(0.15, 0.95) * full_seconds)
                                     for _ in range(RANDOM_KILLS)]  # fmt: skip
    plan += [(point, 0.0) for point in AIMED_KILLS]
    outcomes: list[tuple[str, str, str]] = []
    for kind, delay in plan:
        args = ["ingest", "--corpus", str(corpus), "--index", str(index)]
        if kind == "random":
            cmd, env = rag_cmd(*args), cli_env(cache)
        else:
            cmd = [sys.executable, "-c", _KILLER, *args]
            env = cli_env(cache, GOVRAG_TEST_KILL_AT=kind)
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)  # fmt: skip
        if kind == "random":
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=120)
        if proc.returncode != -signal.SIGKILL:  # finished before the kill: start again from old
            assert proc.returncode == 0, err
            outcomes.append((kind, "finished first", "new"))
            shutil.rmtree(index)
            shutil.copytree(baseline, index)
            continue
        got = answers(fake_assistant(corpus, index, cache), QUERIES)
        assert got in (before, after), f"kill {kind} after {delay:.2f} s left a mixed index"
        version = "old" if got == before else "new"
        # An aimed kill before the swap must leave the old version, one after it the new; a random
        # kill may land on either side of the swap (the mixed-index check above is what matters).
        if kind != "random":
            assert version == ("new" if kind == "rmtree-old" else "old"), (kind, version)
        outcomes.append((kind, _stage(err) if kind == "random" else "aimed", version))
        if version == "new":
            shutil.rmtree(index)
            shutil.copytree(baseline, index)

    killed = [o for o in outcomes if o[1] != "finished first"]
    print(f"\n{len(killed)} kills survived of {len(plan)} runs (full run {full_seconds:.1f} s): "
          + ", ".join(f"{k}@{s}->{v}" for k, s, v in outcomes))  # fmt: skip
    assert len(killed) >= len(AIMED_KILLS) + RANDOM_KILLS // 2

    final = run_rag(["ingest", "--corpus", str(corpus), "--index", str(index)], cache)
    assert final.returncode == 0, final.stderr
    assert answers(fake_assistant(corpus, index, cache), QUERIES) == after
    leftovers = [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name or p.name.endswith(".old")]
    assert not leftovers, leftovers


# --- the app's staged first build ------------------------------------------------------------

STAGED_BATCHES = (60, 240)  # texts: the first batch (about 2 files), then doubling up to 240
# `rag serve`'s background build in a subprocess, with the kill points above; it prints its report.
_STAGED = _KILLER[: _KILLER.index("from rag.app.cli import main")] + f"""
import json
from pathlib import Path
from rag.service import staging
staging.FIRST_BATCH_TEXTS, staging.MAX_BATCH_TEXTS = {STAGED_BATCHES}
from rag.service import Assistant
from tests.reliability.common import fake_assistant
Assistant.warm_up = lambda self: None  # the query side's warm-up: seconds, and not tested here
report = fake_assistant(*(Path(a) for a in sys.argv[1:4])).ingest_staged()
print(json.dumps(report.to_json()))
"""  # fmt: skip
# Kill point → batches committed before it. Each batch is embedded in one call; batch 1 commits
# with two renames (no index to move aside), the next ones with three; a commit writes two FAISS
# files and then removes the previous version.
STAGED_KILLS = {"embed:2": 1, "write:3": 1, "rename:3": 1, "rename:4": 1, "rename:5": 1,
                "rmtree-old": 1, "embed:4": 3, "rename:10": 3}  # fmt: skip


def _run_staged(corpus: Path, index: Path, cache: Path, kill: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _STAGED, str(corpus), str(index), str(cache)],
        env=cli_env(cache, GOVRAG_TEST_KILL_AT=kill), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _answers_of_only(files: list[str], corpus: Path, root: Path) -> list[Any]:
    """The answers of a one-commit ingest of ``files`` alone."""
    part, index = root / "part-corpus", root / "part-index"
    for p in (part, index):
        shutil.rmtree(p, ignore_errors=True)
    part.mkdir()
    for rel in files:
        shutil.copy2(corpus / rel, part / rel)
    fake_assistant(part, index, root / "cache").ingest()
    return answers(fake_assistant(part, index, root / "cache"), QUERIES)


def test_sigkill_during_the_staged_first_build_leaves_its_batches_and_resumes(
    tmp_path: Path,
) -> None:
    """A killed first build of the app leaves no index or the batches committed before the kill,
    each readable and answering exactly as an index of those files; the next build embeds only
    the rest and ends where an uninterrupted one does."""
    import json

    corpus, index, cache = tmp_path / "corpus", tmp_path / "index", tmp_path / "cache"
    write_text_corpus(corpus, 30, 6, seed=4, prefix="doc")
    files = sorted(p.name for p in corpus.iterdir())
    full = fake_assistant(corpus, tmp_path / "full-index", cache)
    full.ingest()  # one commit: the answers every finished build must give
    after = answers(full, QUERIES)
    chunks = {d.path: n for d, n in full.documents()}
    bounds = [0]  # files committed after each batch

    def count(state: Any) -> None:
        bounds.append(len(folder.read_manifest(tmp_path / "bounds-index")["files"]))

    staged = fake_assistant(corpus, tmp_path / "bounds-index", cache)
    StagedIngest(staged.indexer, on_commit=count, first=STAGED_BATCHES[0],
                 cap=STAGED_BATCHES[1]).run()  # fmt: skip
    assert len(bounds) > 4 and bounds[-1] == len(files) and answers(staged, QUERIES) == after
    t0 = time.perf_counter()
    ref = _run_staged(corpus, tmp_path / "staged-index", cache, "none")
    out, err = ref.communicate(timeout=120)
    seconds = time.perf_counter() - t0
    assert ref.returncode == 0, err
    assert answers(fake_assistant(corpus, tmp_path / "staged-index", cache), QUERIES) == after
    assert json.loads(out)["files_added"] == files

    rng = random.Random(8)
    plan = list(STAGED_KILLS.items()) + [("random", 0) for _ in range(2)]
    outcomes = []
    for kill, committed in plan:
        proc = _run_staged(corpus, index, cache, "none" if kill == "random" else kill)
        if kill == "random":
            time.sleep(rng.uniform(0.3, 0.95) * seconds)
            proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=120)
        if proc.returncode == 0:  # finished before the kill
            outcomes.append((kill, "finished"))
            shutil.rmtree(index)
            continue
        assert proc.returncode == -signal.SIGKILL, err
        fresh = fake_assistant(corpus, index, cache)
        done = sorted(fresh.backend.manifest()["files"]) if fresh.has_index() else []
        assert done == files[: len(done)], f"kill {kill}: not whole batches in order: {done}"
        assert len(done) in bounds and (kill == "random" or len(done) == bounds[committed])
        if done:
            assert answers(fresh, QUERIES) == _answers_of_only(done, corpus, tmp_path), kill
            unfinished = len(done) < len(files)  # a random kill may hit after the last commit
            marked = "incomplete" in fresh.backend.manifest()
            assert fresh.needs_indexing() == unfinished == marked, kill
        # The app's next start resumes: only the rest is embedded.
        resume = _run_staged(corpus, index, cache, "none")
        out, err = resume.communicate(timeout=120)
        assert resume.returncode == 0, err
        report = json.loads(out)
        assert report["files_added"] == files[len(done) :], kill
        assert report["chunks_embedded"] == sum(chunks[f] for f in files[len(done) :])
        final = fake_assistant(corpus, index, cache)
        assert answers(final, QUERIES) == after and not final.needs_indexing(), kill
        outcomes.append((kill, f"{len(done)} files kept"))
        shutil.rmtree(index)
    print(f"\nstaged build ({seconds:.1f} s): " + ", ".join(f"{k}->{o}" for k, o in outcomes))
    assert sum(o != "finished" for _, o in outcomes) >= len(STAGED_KILLS)
    leftovers = [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name or p.name.endswith(".old")]
    assert not leftovers, leftovers


# --- tampering -------------------------------------------------------------------------------


def _flip(name: str, at: float = 0.5) -> Callable[[Path], None]:
    def tamper(index: Path) -> None:
        data = bytearray((index / name).read_bytes())
        pos = int(len(data) * at)
        data[pos : pos + 8] = bytes(b ^ 0x5A for b in data[pos : pos + 8])
        (index / name).write_bytes(bytes(data))

    return tamper


def _truncate(name: str) -> Callable[[Path], None]:
    def tamper(index: Path) -> None:
        data = (index / name).read_bytes()
        (index / name).write_bytes(data[: len(data) // 2])

    return tamper


def _delete_chunk_row(index: Path) -> None:
    with sqlite3.connect(index / folder.TABLE) as db:
        db.execute("DELETE FROM chunks WHERE row = (SELECT MIN(row) FROM chunks)")


def _refresh_checksum(index: Path, name: str) -> None:
    """What a careful editor would do: make the manifest agree with the edited file."""
    manifest = folder.read_manifest(index)
    manifest["checksums"][name] = file_sha256(index / name)
    _write_manifest(index, manifest)


def _write_manifest(index: Path, manifest: dict[str, Any]) -> None:
    import json

    (index / folder.MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")


def _edit_manifest(edit: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    def tamper(index: Path) -> None:
        manifest = folder.read_manifest(index)
        edit(manifest)
        _write_manifest(index, manifest)

    return tamper


def _delete_row_and_fix_checksum(index: Path) -> None:
    _delete_chunk_row(index)
    _refresh_checksum(index, folder.TABLE)


TAMPERS: dict[str, Callable[[Path], None]] = {
    "flip bytes in vectors.faiss": _flip(folder.VECTORS),
    "flip bytes in the FAISS header": _flip(folder.VECTORS, 0.0),
    "flip bytes in sentences.faiss": _flip(folder.SENTENCES),
    "truncate vectors.faiss": _truncate(folder.VECTORS),
    "truncate chunks.sqlite": _truncate(folder.TABLE),
    "flip bytes in lexical.npz": _flip("lexical.npz"),
    "delete a chunk row": _delete_chunk_row,
    "delete a chunk row, fix its checksum": _delete_row_and_fix_checksum,
    "delete lexical_vocab.json": lambda index: (index / "lexical_vocab.json").unlink(),
    "edit a checksum in the manifest": _edit_manifest(
        lambda m: m["checksums"].update({folder.VECTORS: "0" * 64})
    ),
    "drop the checksums from the manifest": _edit_manifest(lambda m: m.pop("checksums")),
    "edit the counts in the manifest": _edit_manifest(
        lambda m: m["counts"].update(chunks=m["counts"]["chunks"] + 1)
    ),
    "edit the model in the manifest": _edit_manifest(lambda m: m["model"].update(dim=32)),
    "edit the index settings in the manifest": _edit_manifest(
        lambda m: m["index_settings"].update(max_tokens=100)
    ),
    "truncate the manifest": _truncate(folder.MANIFEST),
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Any]]:
    root = tmp_path_factory.mktemp("tamper")
    write_text_corpus(root / "corpus", 12, 4, seed=3, prefix="doc")
    assistant = fake_assistant(root / "corpus", root / "index", root / "cache")
    assistant.ingest()
    return root, answers(assistant, QUERIES)


@pytest.mark.parametrize("what", list(TAMPERS))
def test_tampered_index_is_refused_with_rerun_ingest_hint(
    what: str, built: tuple[Path, list[Any]], tmp_path: Path
) -> None:
    root, expected = built
    index = tmp_path / "index"
    shutil.copytree(root / "index", index)
    TAMPERS[what](index)

    with pytest.raises(IndexError_, match=r"run `rag ingest"):
        answers(fake_assistant(root / "corpus", index, root / "cache"), QUERIES)

    # The CLI: exit code 1 and one line that names the fix, no trace (click's runner, in-process).
    from click.testing import CliRunner

    from rag.app.cli import main

    env = {k: None for k in os.environ if k.startswith("RAG_")}
    env |= {"RAG_MODEL": "hash:64", "RAG_CACHE_DIR": str(root / "cache")}
    result = CliRunner().invoke(
        main,
        ["search", QUERIES[0], "--corpus", str(root / "corpus"), "--index", str(index)],
        env=env,
    )
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "rag ingest" in lines[0], lines

    # The advice works: the command named in the message repairs the index.
    assistant = fake_assistant(root / "corpus", index, root / "cache")
    assistant.ingest(rebuild="--rebuild" in lines[0])
    assert answers(fake_assistant(root / "corpus", index, root / "cache"), QUERIES) == expected


def test_damaged_index_in_a_real_subprocess_gives_one_line_and_exit_1(
    built: tuple[Path, list[Any]], tmp_path: Path
) -> None:
    root, _ = built
    index = tmp_path / "index"
    shutil.copytree(root / "index", index)
    _flip(folder.VECTORS)(index)
    proc = run_rag(["ask", QUERIES[0], "--corpus", str(root / "corpus"), "--index", str(index)],
                   root / "cache")  # fmt: skip
    assert proc.returncode == 1 and proc.stdout == "" and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "run `rag ingest" in proc.stderr
    # A plain `rag ingest` notices the damage and rebuilds instead of carrying it forward.
    fixed = run_rag(["ingest", "--corpus", str(root / "corpus"), "--index", str(index)],
                    root / "cache")  # fmt: skip
    assert fixed.returncode == 0 and "rebuilding the index from scratch" in fixed.stderr
    assert run_rag(["ask", QUERIES[0], "--corpus", str(root / "corpus"), "--index", str(index)],
                   root / "cache").returncode == 0  # fmt: skip
