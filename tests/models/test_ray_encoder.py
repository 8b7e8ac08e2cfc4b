"""`rag ingest --ray`: passages embedded by Ray actors (local mode, 2 workers) give the plain
ingest's index; the options and their errors; a failing worker leaves the index as it was.
Throughput (1 vs 2 workers vs plain) is `python -m bench ray`, not a test."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bench.ray_ingest import index_difference
from rag.app.cli import main
from rag.config import Settings
from rag.models.embeddings import HashEmbedder
from rag.models.ray_encoder import EncoderWorker, RayEmbedder
from rag.service import Assistant
from tests.conftest import SHIPPED_CORPUS

ray = pytest.importorskip("ray")  # the dev extra installs it; CI runs these tests


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """One local Ray for the logic tests (a RayEmbedder uses a running Ray and leaves it on)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _fake(tmp_path: Path, **kw: object) -> RayEmbedder:
    kw.setdefault("workers", 2)
    return RayEmbedder(HashEmbedder(64), cache_dir=tmp_path, **kw)  # type: ignore[arg-type]


def test_vectors_come_back_in_input_order_with_progress(local_ray: None, tmp_path: Path) -> None:
    texts = [f"passage {i} " + "word " * (i % 7) for i in range(23)]
    # tasks are cut at the embedder's batch groups (4 batches of 1 here): 3 → 4 texts, 6 tasks
    emb = _fake(tmp_path, task_texts=3, batch_size=1)
    seen: list[int] = []
    got = emb.encode_passages(texts, progress=seen.append)
    assert np.array_equal(got, HashEmbedder(64).encode_passages(texts))
    assert sorted(seen) == [3, 4, 4, 4, 4, 4] and emb.loaded  # one partial group (in any order)
    assert len(ray.get([a.where.remote() for a in emb.start()])) == 2
    # queries, token counts, name and dimension stay in this process
    assert np.array_equal(emb.encode_queries(["q"]), HashEmbedder(64).encode_queries(["q"]))
    assert emb.name == "hash:64" and emb.dim == 64
    emb.close()
    assert not emb.loaded and ray.is_initialized()  # it did not start this Ray: left running


def test_workers_that_do_not_fit_are_refused(local_ray: None, tmp_path: Path) -> None:
    with pytest.raises(
        RuntimeError, match=r"3 Ray workers need 3 CPUs \(1 each\) and the Ray cluster has 2:"
    ):
        _fake(tmp_path, workers=3).encode_passages(["x"])


def test_nothing_to_embed_starts_no_worker(tmp_path: Path) -> None:
    emb = _fake(tmp_path)
    assert emb.encode_passages([]).shape == (0, 64)
    assert not emb.loaded


def test_bad_options_say_which(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--workers must be at least 1, got 0"):
        _fake(tmp_path, workers=0)
    with pytest.raises(ValueError, match="GPU workers need RAG_ENCODER=torch"):
        RayEmbedder(HashEmbedder(64), cache_dir=tmp_path, encoder="onnx", gpus=1)
    runner = CliRunner()
    result = runner.invoke(main, ["ingest", "--workers", "2"])
    assert result.exit_code == 2 and "go with --ray" in result.output
    result = runner.invoke(main, ["ingest", "--ray", "--threads", "0"])
    assert result.exit_code == 2 and "--threads" in result.output


def test_without_ray_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(RuntimeError, match=r"needs Ray: pip install -e '\.\[ray\]'"):
        _fake(tmp_path).encode_passages(["x"])


class _Broken(EncoderWorker):
    """A worker whose model fails on a text (as a node out of memory would, mid-run)."""

    def encode(self, texts: list[str]) -> np.ndarray:
        if any("poison" in t for t in texts):
            raise MemoryError("worker out of memory")
        return super().encode(texts)


def _corpus(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


def test_a_failing_worker_leaves_the_index_as_it_was(local_ray: None, tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "corpus", {
        "a.txt": "AI rules\n\nThe regulation sets duties for providers of AI systems.",
        "b.txt": "Elections\n\nDeepfakes of candidates must be labelled before the vote.",
    })  # fmt: skip
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", model="hash:64",
                        cache_dir=tmp_path / "cache")  # fmt: skip
    emb = RayEmbedder(HashEmbedder(64), cache_dir=tmp_path, workers=2, task_texts=2)
    Assistant(settings, emb).ingest()
    emb.close()  # its two actors hold the two CPUs of this Ray
    before = (tmp_path / "index" / "manifest.json").read_text()
    hits = Assistant(settings, HashEmbedder(64)).search("labelled deepfakes", 2).hits

    (corpus / "c.txt").write_text("Poison\n\nA poison paragraph that kills the worker.")
    (corpus / "a.txt").write_text("AI rules\n\nThe regulation was changed.")
    broken = RayEmbedder(HashEmbedder(64), cache_dir=tmp_path, workers=2, worker=_Broken)
    with pytest.raises(
        RuntimeError,
        match=r"^a Ray worker failed while embedding passages: MemoryError: worker out of memory$",
    ):
        Assistant(settings, broken).ingest()
    broken.close()
    assert (tmp_path / "index" / "manifest.json").read_text() == before
    assert Assistant(settings, HashEmbedder(64)).search("labelled deepfakes", 2).hits == hits

    (corpus / "c.txt").unlink()  # the next ingest embeds only what changed, and commits
    report = Assistant(settings, emb).ingest()
    emb.close()
    assert report.files_changed == ("a.txt",) and report.files_unchanged == 1


def test_into_a_qdrant_store_the_search_is_the_plain_ingests(
    local_ray: None, tmp_path: Path
) -> None:
    pytest.importorskip("qdrant_client")
    corpus = _corpus(tmp_path / "corpus", {
        f"doc{i}.txt": f"Title {i}\n\n" + " ".join(f"word{(i * j) % 17}" for j in range(60))
        for i in range(6)
    })  # fmt: skip
    found = []
    for name, emb in (("plain", HashEmbedder(64)),
                      ("ray", RayEmbedder(HashEmbedder(64), cache_dir=tmp_path, workers=2))):  # fmt: skip
        settings = Settings(corpus_dir=corpus, index_dir=tmp_path / name, model="hash:64",
                            cache_dir=tmp_path / "cache", store="qdrant",
                            qdrant_path=tmp_path / f"q-{name}")  # fmt: skip
        a = Assistant(settings, emb)
        a.ingest()
        found.append([(h.doc_id, h.chunk_id) for h in a.search("word3 word5", 5).hits])
        getattr(emb, "close", lambda: None)()
    assert found[0] == found[1] and len(found[0]) == 5


def _rag(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    rag = Path(sys.executable).with_name("rag")
    return subprocess.run([str(rag), *args], cwd=cwd, capture_output=True, text=True, timeout=900)


def test_real_model_ray_ingest_equals_plain_ingest(tmp_path: Path) -> None:
    """What users run: `rag ingest --ray --workers 2` (Ray started here, then stopped), real model,
    on shipped documents (the seed articles, a Chinese rule, a PDF); then an incremental run
    embeds only the change, and the index answers a plain `rag search`."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    picked = [*sorted(SHIPPED_CORPUS.glob("00[0-4]_*.txt")),
              SHIPPED_CORPUS / "china" / "algorithmic_recommendation_provisions_2021.md",
              SHIPPED_CORPUS / "int" / "INT_g7_hiroshima_code_of_conduct_2023.en.pdf"]  # fmt: skip
    for p in picked:
        shutil.copy(p, corpus / p.name)

    plain = _rag("ingest", "--corpus", str(corpus), "--index", "plain", "--json", cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr
    viaray = _rag("ingest", "--corpus", str(corpus), "--index", "viaray", "--ray", "--workers", "2",
                  "--json", cwd=tmp_path)  # fmt: skip
    assert viaray.returncode == 0, viaray.stderr
    p_rep, r_rep = json.loads(plain.stdout), json.loads(viaray.stdout)
    assert r_rep["chunks"] == p_rep["chunks"] > 20 and r_rep["documents"] == p_rep["documents"]
    diff = index_difference(tmp_path / "plain", tmp_path / "viaray")
    assert diff["same_rows"] and diff["same_ids"], diff
    assert diff["max_abs_diff"] < 1e-5 and diff["min_cosine"] > 0.99999, diff

    first = sorted(corpus.glob("00*.txt"))[0]
    first.write_text(first.read_text(encoding="utf-8") + "\n\nA sentence added later.\n")
    again = _rag("ingest", "--corpus", str(corpus), "--index", "viaray", "--ray", "--json",
                 cwd=tmp_path)  # fmt: skip
    assert again.returncode == 0, again.stderr
    rep = json.loads(again.stdout)
    assert rep["files_changed"] == [first.name] and rep["files_added"] == []
    ask = _rag("search", "AI safety talks between US and Chinese companies", "--corpus",
               str(corpus), "--index", "viaray", "--json", cwd=tmp_path)  # fmt: skip
    assert ask.returncode == 0 and json.loads(ask.stdout)["hits"], ask.stderr


class _Misnamed(HashEmbedder):
    """A local embedder whose model the workers cannot build."""

    @property
    def name(self) -> str:
        return "hash:x"


def test_workers_that_cannot_load_the_model_fail_at_start(local_ray: None, tmp_path: Path) -> None:
    emb = RayEmbedder(_Misnamed(64), cache_dir=tmp_path, workers=2)
    with pytest.raises(RuntimeError, match=r"^Ray workers could not load 'hash:x': .*hash:<dim"):
        emb.encode_passages(["x"])
    assert not emb.loaded
