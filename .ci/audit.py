"""Run pip-audit on the current environment and say plainly what it could and could not check.

Usage: python .ci/audit.py   (CI runs it with .venv/bin/python after the install)

pip-audit asks PyPI's JSON API (or OSV) about every installed package. Without that service it
either errors out or, behind a mirror that answers "not found", reports every package as skipped
and still prints "No known vulnerabilities found". This script tells those cases apart:

- exit 0, "AUDITED": every package was looked up and nothing was found, or every finding is
  explained in the README (an ``- `ID` `` line in its "Dependency audit" paragraph);
- exit 0, "NOT AUDITED": the vulnerability service was unreachable (a loud warning, not a pass
  claim; set GOVRAG_AUDIT_STRICT=1 to make it fail);
- exit 1: a finding that the README does not explain.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OWN = {"govrag"}


@dataclass(frozen=True)
class Verdict:
    status: str  # "AUDITED", "NOT AUDITED" or "FAILED"
    message: str

    @property
    def exit_code(self) -> int:
        if self.status == "FAILED":
            return 1
        strict = os.environ.get("GOVRAG_AUDIT_STRICT") == "1"
        return 1 if self.status == "NOT AUDITED" and strict else 0


def explained_ids(readme: str) -> set[str]:
    """Vulnerability ids the README explains: backticked ids after a "Dependency audit" heading."""
    m = re.search(r"Dependency audit(.*?)(\n#|\Z)", readme, re.S)
    return set(re.findall(r"`((?:PYSEC|GHSA|CVE|OSV)-[\w-]+)`", m.group(1))) if m else set()


def judge(report: dict, explained: set[str]) -> Verdict:
    """Turn pip-audit's JSON report into a verdict."""
    deps = [d for d in report.get("dependencies", []) if d.get("name") not in OWN]
    skipped = [d for d in deps if d.get("skip_reason")]
    audited = [d for d in deps if not d.get("skip_reason")]
    if deps and not audited:
        reason = skipped[0]["skip_reason"]
        return Verdict("NOT AUDITED", f"the vulnerability service knew none of the {len(deps)} "
                       f"packages (offline or a mirror without the JSON API), e.g. {reason!r}; "
                       "dependencies were NOT checked")  # fmt: skip
    findings = [(d["name"], d["version"], v["id"]) for d in audited for v in d.get("vulns", [])]
    unexplained = [f for f in findings if f[2] not in explained]
    note = f"{len(audited)} packages audited" + (
        f", {len(skipped)} not found on the service ({', '.join(d['name'] for d in skipped)})"
        if skipped else ""
    )  # fmt: skip
    if unexplained:
        listing = "; ".join(f"{n} {v}: {i}" for n, v, i in unexplained)
        return Verdict("FAILED", f"{note}; findings not explained in the README: {listing}")
    if findings:
        ids = ", ".join(sorted({i for _, _, i in findings}))
        return Verdict("AUDITED", f"{note}; findings explained in the README: {ids}")
    return Verdict("AUDITED", f"{note}; no known vulnerabilities")


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "audit.json"
        cmd = [sys.executable, "-m", "pip_audit", "--local", "--skip-editable",
               "--progress-spinner", "off", "--format", "json", "--output", str(out)]  # fmt: skip
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired:
            proc = None
        if proc is None or not out.exists():
            last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1] if proc else "timeout"
            verdict = Verdict("NOT AUDITED", f"pip-audit could not run to the end: {last}")
        else:
            readme = (ROOT / "README.md").read_text(encoding="utf-8")
            verdict = judge(json.loads(out.read_text()), explained_ids(readme))
    banner = "!!" if verdict.status != "AUDITED" else "ok"
    print(f"[{banner}] dependency audit (pip-audit): {verdict.status}: {verdict.message}")
    return verdict.exit_code


if __name__ == "__main__":
    sys.exit(main())
