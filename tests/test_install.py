"""The install a user runs is the install CI runs: what the code imports is declared, and .ci/run
installs with the same bundled pip and no cache, so CI fails whenever a user's install would."""

from __future__ import annotations

import importlib
import re
import tomllib

from tests.conftest import ROOT


def _declared() -> set[str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = set()
    for req in deps["dependencies"]:
        m = re.match(r"[A-Za-z0-9_.-]+", req)
        assert m, req
        names.add(re.sub(r"[-_.]+", "-", m.group(0)).lower())
    return names


def test_the_html_cleaner_justext_imports_is_declared_and_importable() -> None:
    """lxml >= 5.2 moved lxml.html.clean into lxml_html_clean; pip 23 (a venv's bundled pip)
    does not resolve lxml's "html_clean" extra, so HTML ingest failed on a fresh install."""
    assert "lxml-html-clean" in _declared()
    importlib.import_module("lxml.html.clean")  # what justext does on the first HTML file


def test_ci_installs_with_the_venvs_own_pip_and_no_cache() -> None:
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    commands = [line for line in script.splitlines() if not line.lstrip().startswith("#")]
    assert not any("install" in c and "--upgrade pip" in c for c in commands)
    assert "export PIP_NO_CACHE_DIR=1" in commands
    assert any(c.startswith(".venv/bin/pip install") and "torch==2.13.0" in c for c in commands)
