"""Helpers for the reliability tests: generated corpora and `rag` in a subprocess (fake embedder)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

from rag.config import Settings
from rag.models.embeddings import HashEmbedder
from rag.service import Assistant
from tests.conftest import ROOT

WORDS = [
    "regulator",
    "rules",
    "model",
    "audit",
    "provider",
    "risk",
    "system",
    "public",
    "authority",
    "market",
    "innovation",
    "safety",
    "transparency",
    "oversight",
    "register",
    "penalty",
    "fine",
    "court",
    "ministry",
    "parliament",
    "data",
    "privacy",
    "chip",
    "export",
    "control",
    "standard",
    "testing",
    "evaluation",
    "incident",
    "report",
    "liability",
    "copyright",
    "labour",
]


def write_text_corpus(corpus: Path, n_files: int, paragraphs: int, seed: int, prefix: str) -> None:
    """``n_files`` deterministic English-like files of ``paragraphs`` paragraphs each."""
    rng = random.Random(seed)
    corpus.mkdir(parents=True, exist_ok=True)
    for i in range(n_files):
        paras = []
        for _ in range(paragraphs):
            sents = [
                " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 16))).capitalize() + "."
                for _ in range(rng.randint(3, 6))
            ]
            paras.append(" ".join(sents))
        (corpus / f"{prefix}{i:03d}.txt").write_text("\n\n".join(paras), encoding="utf-8")


def fake_assistant(corpus: Path, index: Path, cache: Path) -> Assistant:
    """The same settings as `rag` with :func:`cli_env` (hash:64), in this process."""
    settings = Settings(corpus_dir=corpus, index_dir=index, model="hash:64", cache_dir=cache)
    return Assistant(settings, HashEmbedder(64))


def cli_env(cache: Path, **extra: str) -> dict[str, str]:
    """Environment for `rag` in a subprocess: the fake embedder, caches in ``cache``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(RAG_MODEL="hash:64", RAG_CACHE_DIR=str(cache), PYTHONPATH=str(ROOT), **extra)
    return env


def rag_cmd(*args: str) -> list[str]:
    """`rag ARGS` with the interpreter running the tests (works in CI's .venv and elsewhere)."""
    return [sys.executable, "-m", "rag.app.cli", *args]


def run_rag(args: list[str], cache: Path, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        rag_cmd(*args), capture_output=True, text=True, env=cli_env(cache), timeout=300, **kw
    )


def answers(assistant: Assistant, queries: list[str]) -> list[Any]:
    """Everything a user sees for these queries: search hits and cited answers, as JSON."""
    out: list[Any] = []
    for q in queries:
        out.append(assistant.search(q, k=5).to_json())
        out.append(assistant.ask(q).to_json())
    return out


QUERIES_EN = [
    "audit penalty regulator",
    "export control chip",
    "privacy data court",
    "safety testing",
]
