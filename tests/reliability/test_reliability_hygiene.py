"""Dependency hygiene: no code path that deserialises executable data, and the audit verdicts."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import ROOT

# Patterns are split so this file does not match itself.
FORBIDDEN = {
    "pickle": re.compile(
        r"\b(import\s+(cP" + r"ickle|pi" + r"ckle|dill|cloudpi" + r"ckle)\b"
        r"|from\s+(pi" + r"ckle|dill|cloudpi" + r"ckle)\s+import"
        r"|\b(pi" + r"ckle|dill|cloudpi" + r"ckle)\.(loads?|Unpi" + r"ckler)\b)"
    ),
    "allow_dangerous_deserialization": re.compile("allow_dangerous_" + "deserialization"),
    "torch.load without weights_only=True": re.compile(r"torch\.load\((?![^)]*weights_only=True)"),
    "joblib.load": re.compile(r"joblib\." + r"load\("),
    "numpy allow_pickle=True": re.compile(r"allow_" + r"pickle\s*=\s*True"),
    "yaml.load without SafeLoader": re.compile(r"yaml\.load\((?![^)]*SafeLoader)"),
    "marshal.loads": re.compile(r"marshal\." + r"loads?\("),
}
# Code and configuration; documentation (.md) names these things to say they are not used.
SCANNED_SUFFIXES = {".py", ".toml", ".cfg", ".ini", ".txt", ".sh", ".json", ""}


def repo_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
        paths = [ROOT / line for line in out.splitlines()]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout
        skip = {".venv", ".git", "__pycache__", "node_modules", ".mypy_cache", ".ruff_cache"}
        paths = [p for p in ROOT.rglob("*") if not skip & set(p.relative_to(ROOT).parts)]
    return [p for p in paths if p.is_file() and p.suffix in SCANNED_SUFFIXES]


def violations(text: str) -> list[str]:
    found = []
    for what, pattern in FORBIDDEN.items():
        found += [f"{what}: {m.group(0)!r}" for m in pattern.finditer(text)]
    return found


def test_scanner_finds_planted_uses() -> None:
    planted = "\n".join([
        "import " + "pickle", "data = " + "pickle.loads(blob)", "FAISS.load_local(p, e, allow_dangerous_" + "deserialization=True)",
        "torch." + "load(path)", "torch." + "load(path, weights_only=False)",
        "np.load(f, allow_" + "pickle=True)", "yaml." + "load(s)",
    ])  # fmt: skip
    assert len(violations(planted)) == 7
    assert violations("# no " + "pickle anywhere") == []
    assert violations("torch." + "load(path, weights_only=True)") == []
    assert violations("yaml." + "load(s, Loader=yaml.SafeLoader)") == []


def test_no_unsafe_deserialisation_in_the_repo() -> None:
    files = repo_files()
    assert any(p.name == "folder.py" for p in files)  # the scan sees the code
    problems = []
    for path in files:
        if path == Path(__file__):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for v in violations(text):
            problems.append(f"{path.relative_to(ROOT)}: {v}")
    assert not problems, problems


def test_index_files_load_without_pickle(tmp_path: Path) -> None:
    """The index is read with FAISS, SQLite, JSON and numpy with allow_pickle off."""
    source = (ROOT / "rag" / "index" / "lexical.py").read_text(encoding="utf-8")
    assert "np.load(" in source and "allow_pickle=True" not in source


# --- the CI audit step's verdicts ------------------------------------------------------------


@pytest.fixture(scope="module")
def audit() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ci_audit", ROOT / ".ci" / "audit.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _dep(name: str, vulns: list[str] | None = None, skip: str = "") -> dict:
    if skip:
        return {"name": name, "skip_reason": skip}
    return {"name": name, "version": "1.0", "vulns": [{"id": v} for v in vulns or []]}


def test_audit_with_no_service_says_not_audited(audit: ModuleType) -> None:
    report = {"dependencies": [_dep(n, skip=f"Dependency not found on PyPI: {n}") for n in "abc"]}
    verdict = audit.judge(report, set())
    assert verdict.status == "NOT AUDITED" and "NOT checked" in verdict.message


def test_audit_fails_on_unexplained_finding(audit: ModuleType) -> None:
    report = {"dependencies": [_dep("a"), _dep("b", ["GHSA-xxxx-yyyy"])]}
    assert audit.judge(report, set()).exit_code == 1
    assert audit.judge(report, {"GHSA-xxxx-yyyy"}).status == "AUDITED"
    assert audit.judge({"dependencies": [_dep("a")]}, set()).message.endswith(
        "no known vulnerabilities"
    )


def test_audit_reads_explained_ids_from_the_readme(audit: ModuleType) -> None:
    readme = "# x\n## Dependency audit\n- `PYSEC-2024-1`: not reachable\n## Next\n`CVE-1-2`"
    assert audit.explained_ids(readme) == {"PYSEC-2024-1"}
    real = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "Dependency audit" in real  # the README has the section the CI step reads


# --- nothing the app writes at run time is tracked ---------------------------------------------


def test_nothing_the_app_writes_is_tracked_and_all_of_it_is_ignored() -> None:
    """The index folder (rewritten by every ingest, README.md included), uploads and lock and
    scratch folders: tracked, they made `git pull` conflict and the shipped-catalog test fail
    after an upload; untracked but not ignored, they cluttered `git status`."""
    assert (ROOT / ".git").exists(), "run the tests from a git checkout (README command 2)"
    tracked = subprocess.run(["git", "ls-files", "index", "corpus/uploads"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert tracked == ""
    written = ["index/README.md", "index/manifest.json", "index/chunks.sqlite", "index.old/x",
               ".index.lock", ".index.tmp-abc/x", "corpus/uploads/report.pdf",
               "corpus/uploads/report.pdf.meta.json"]  # fmt: skip
    ignored = subprocess.run(["git", "check-ignore", "--no-index", *written], cwd=ROOT,
                             capture_output=True, text=True).stdout.split()  # fmt: skip
    assert sorted(ignored) == sorted(written)
