"""Split the Dutch EU AI Act (the OJ text as markdown) into the shipped corpus files
``corpus/eu_ai_act_nl/{recitals,articles,annexes}.json``, entry for entry parallel to the English
``corpus/eu_ai_act/`` (same entry ids: ``recital_001``, ``article_005``, ``annex_03``), so that a
citation of one provision can offer the same provision in the other language.

    python -m train.ai_act_nl [SOURCE.md] [--out corpus/eu_ai_act_nl]

SOURCE defaults to ``../shared/data/governance/eu_ai_act_nl/EU_ai_act_2024_1689_oj.nl.md``
(provenance and licence in ``corpus/ATTRIBUTION.md``). The wording is untouched: headings lose
their ``#`` marks, bold titles their ``**``, nothing else changes. Deterministic.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT.parent / "shared/data/governance/eu_ai_act_nl/EU_ai_act_2024_1689_oj.nl.md"
_ARTICLE = re.compile(r"^#### Artikel (\d+)\s*$")
_ANNEX = re.compile(r"^# BIJLAGE ([IVXLC]+)\s*$")
_RECITAL = re.compile(r"^\((\d+)\)\s+(.*)$")
_ROMAN = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100}


def roman(numeral: str) -> int:
    total = 0
    for a, b in zip(numeral, [*numeral[1:], ""], strict=True):
        v = _ROMAN[a]
        total += -v if b and _ROMAN[b] > v else v
    return total


def _plain(line: str) -> str:
    return re.sub(r"^#+\s*", "", line).replace("**", "").strip()


def split(text: str) -> dict[str, dict[str, dict[str, str]]]:
    """``{"recitals": {id: entry}, "articles": …, "annexes": …}``; an entry has ``id``,
    ``title`` and ``text_content``."""
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("Overwegende hetgeen volgt"))
    end = next(i for i, ln in enumerate(lines) if ln.startswith("HEBBEN DE VOLGENDE VERORDENING"))
    recitals: dict[str, dict[str, str]] = {}
    for ln in lines[start + 1 : end]:
        m = _RECITAL.match(ln.strip())
        if m:
            key = f"recital_{int(m.group(1)):03d}"
            recitals[key] = {"id": key, "title": f"Overweging {int(m.group(1))}",
                             "text_content": m.group(2).strip()}  # fmt: skip
    articles: dict[str, dict[str, str]] = {}
    annexes: dict[str, dict[str, str]] = {}
    current: tuple[str, int] | None = None
    body: list[str] = []

    def close() -> None:
        if current is None:
            return
        kind, n = current
        paras = [p for p in body if p.strip()]
        if kind == "article":
            key = f"article_{n:03d}"
            heading = _plain(paras[0]) if paras and paras[0].startswith("**") else ""
            rest = paras[1:] if heading else paras
            title = f"Artikel {n}: {heading}" if heading else f"Artikel {n}"
            articles[key] = {"id": key, "title": title,
                             "text_content": "\n\n".join(_plain(p) for p in rest)}  # fmt: skip
        else:
            key = f"annex_{n:02d}"
            heading = _plain(paras[0]) if paras and paras[0].startswith("# ") else ""
            rest = paras[1:] if heading else paras
            num = next(k for k, v in _roman_names().items() if v == n)
            title = f"Bijlage {num}: {heading}" if heading else f"Bijlage {num}"
            annexes[key] = {"id": key, "title": title,
                            "text_content": "\n\n".join(_plain(p) for p in rest)}  # fmt: skip

    for ln in lines[end + 1 :]:
        article, annex = _ARTICLE.match(ln), _ANNEX.match(ln)
        if article or annex:
            close()
            current = ("article", int(article.group(1))) if article else (
                "annex", roman(annex.group(1)) if annex else 0)  # fmt: skip
            body = []
        elif ln.startswith(("Gedaan te Brussel", "ELI: ")) or (
            current and current[0] == "article" and re.match(r"^#{1,4} ", ln)
        ):
            close()
            current, body = None, []
        elif current is not None:
            body.append(ln)
    close()
    return {"recitals": recitals, "articles": articles, "annexes": annexes}


def _roman_names() -> dict[str, int]:
    names = ["I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII", "XIII"]
    return {r: roman(r) for r in names}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", nargs="?", type=Path, default=SOURCE)
    parser.add_argument("--out", type=Path, default=ROOT / "corpus" / "eu_ai_act_nl")
    args = parser.parse_args()
    parts = split(args.source.read_text(encoding="utf-8"))
    args.out.mkdir(parents=True, exist_ok=True)
    for name, entries in parts.items():
        path = args.out / f"{name}.json"
        path.write_text(json.dumps(entries, ensure_ascii=False, indent=1) + "\n", "utf-8")
        print(f"{path}: {len(entries)} entries")


if __name__ == "__main__":
    main()
