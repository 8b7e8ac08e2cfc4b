"""Shared fixtures: a fast fake embedder for logic tests, and one real index of the shipped corpus."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rag.config import Settings
from rag.models.embeddings import Embedder, HashEmbedder, make_embedder
from rag.service import Assistant

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_CORPUS = ROOT / "corpus"


@pytest.fixture
def make_corpus(tmp_path: Path) -> Callable[[dict[str, str | bytes]], Path]:
    """Write ``{relative path: content}`` into a fresh corpus folder and return it."""

    def make(files: dict[str, str | bytes]) -> Path:
        root = tmp_path / "corpus"
        root.mkdir(exist_ok=True)
        for rel, content in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")
        return root

    return make


@pytest.fixture
def fake_assistant(tmp_path: Path) -> Callable[[Path], Assistant]:
    """An Assistant over a given corpus folder with the deterministic hash embedder."""

    def make(corpus: Path, **settings: object) -> Assistant:
        s = Settings(
            corpus_dir=corpus, index_dir=tmp_path / "index", model="hash:64",
            cache_dir=tmp_path / "cache", **settings,  # type: ignore[arg-type]
        )  # fmt: skip
        return Assistant(s, HashEmbedder(64))

    return make


@pytest.fixture(scope="session")
def real_embedder() -> Embedder:
    """The real default model on the back end users get (``RAG_ENCODER``, default
    openvino-bf16), loaded once per test session."""
    s = Settings.from_env()
    return make_embedder(s.model, cache_dir=s.cache_dir, batch_size=s.batch_size, encoder=s.encoder)


@pytest.fixture(scope="session")
def torch_embedder() -> Embedder:
    """The real default model on float PyTorch: the reference the other back ends are held to."""
    settings = Settings.from_env()
    return make_embedder(settings.model, cache_dir=settings.cache_dir, encoder="torch")


@pytest.fixture(scope="session")
def real_assistant(tmp_path_factory: pytest.TempPathFactory, real_embedder: Embedder) -> Assistant:
    """The real default model over a copy of the shipped corpus, ingested once per test session."""
    corpus = tmp_path_factory.mktemp("shipped") / "corpus"
    shutil.copytree(SHIPPED_CORPUS, corpus)
    settings = Settings.from_env(corpus_dir=corpus, index_dir=corpus.parent / "index")
    assistant = Assistant(settings, real_embedder)
    report = assistant.ingest()
    assert report.skipped == (), report.skipped
    return assistant


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def served(real_assistant: Assistant) -> Iterator[str]:
    """The app on a free loopback port, serving the real index (one server per test session)."""
    from rag.app.ui import build_app, launch

    port = free_port()
    app = build_app(real_assistant)
    launch(app, "127.0.0.1", port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    app.close()
