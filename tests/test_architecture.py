"""The house rules of ARCHITECTURE.md, checked: imports flow one way (import-linter's contracts in
pyproject.toml, each shown to fail on a planted violation), and no module or function outgrows
the size a reader can hold in mind."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on the package under ``root`` with the contracts of its pyproject.toml."""
    code = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    env = {**os.environ, "PYTHONPATH": str(root)}  # ``root/rag`` before the installed one
    return subprocess.run(
        [sys.executable, "-c", code, "--no-cache", "--no-logo"],
        cwd=root, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_the_contracts_hold() -> None:
    run = lint_imports(ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "3 kept, 0 broken" in run.stdout


# (file, line to plant, contract that must break, the import it must name)
PLANTED = {
    "ingest imports the service (upward)": (
        "rag/ingest/lang.py", "from rag.service import Assistant", "Stages import one way",
        "rag.ingest.lang -> rag.service",
    ),
    "the store protocol imports a store": (
        "rag/index/base.py", "from rag.index.faiss import store", "Inside the index",
        "rag.index.base -> rag.index.faiss.store",
    ),
    "one store imports the other": (
        "rag/index/qdrant/store.py", "from rag.index.faiss import folder", "Inside the index",
        "rag.index.qdrant.store -> rag.index.faiss.folder",
    ),
    "search imports gradio": (
        "rag/search/retrieve.py", "import gradio", "Only the UI imports gradio",
        "rag.search.retrieve -> gradio",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", PLANTED)
def test_a_planted_violation_breaks_its_contract(case: str, tmp_path: Path) -> None:
    path, line, contract, named = PLANTED[case]
    shutil.copytree(ROOT / "rag", tmp_path / "rag", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / path
    target.write_text(target.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")
    run = lint_imports(tmp_path)
    out = " ".join(run.stdout.split())  # import-linter wraps long lines
    assert run.returncode != 0, out
    assert f"{contract}" in out and "BROKEN" in out
    assert named in out, out


def _python_files() -> list[Path]:
    return sorted((ROOT / "rag").rglob("*.py"))


def test_no_module_outgrows_its_room() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in _python_files()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_no_function_outgrows_a_screen() -> None:
    long = []
    for p in _python_files():
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{p.relative_to(ROOT)}:{node.lineno} {node.name} ({n} lines)")
    assert not long, long
