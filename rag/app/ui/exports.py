"""Files to download, named after the query and the day: the Search tab's result set (CSV with a
UTF-8 BOM so that Excel reads Swedish and Chinese, or JSON), with the query and filters it ran with;
a batch search (the same citation columns, a row per hit of every term); one answer with its
citations (plain text to copy, Markdown or JSON); a comparison."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import re
import tempfile
import unicodedata
from pathlib import Path
from typing import Any

from rag.app.ui.cards import cite
from rag.app.ui.widgets import mode_label, searched_for, shown
from rag.service.compare import NO_PASSAGE, Comparison
from rag.types import Answer, Hit

# Columns added to every CSV row: a rectangular table Excel, pandas and csv readers open as it is
# (a leading comment line would become Excel's first row and push the header down).
SEARCH_COLUMNS = ("search_query", "search_filters", "search_note", "exported")


def slug(text: str, limit: int = 50) -> str:
    """ASCII letters, digits and hyphens only: ``"Hiroshima AI-process?" -> "hiroshima-ai-process"``
    (accents dropped, other scripts left out)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:limit].rstrip("-")


def export_name(kind: str, text: str, ext: str, day: dt.date | None = None) -> str:
    """``govrag-search-hiroshima-ai-process-2026-12-01.csv``."""
    day = day or dt.date.today()
    return "-".join(p for p in ("govrag", kind, slug(text), day.isoformat()) if p) + f".{ext}"


def write_export(name: str, text: str, bom: bool = False) -> str:
    """Write ``text`` as ``name`` in a fresh temporary folder; return the path."""
    path = Path(tempfile.mkdtemp(prefix="govrag-export-")) / name
    with path.open("w", newline="", encoding="utf-8-sig" if bom else "utf-8") as fh:
        fh.write(text)
    return str(path)


def filters_line(result: dict[str, Any]) -> str:
    """The filters a search ran with, in one line: ``lang=sv,nl; from=2024; per document=all``."""
    f = result.get("filters") or {}
    parts = [f"{name}={','.join(f[key]) if isinstance(f[key], list) else f[key]}"
             for key, name in (("langs", "lang"), ("docs", "doc"), ("sources", "source"),
                               ("jurisdictions", "jurisdiction"), ("types", "type"),
                               ("date_from", "from"), ("date_to", "to")) if f.get(key)]  # fmt: skip
    if result.get("per_document"):
        parts.append(f"per document={result['per_document']}")
    return "; ".join(parts) or "none"


def export_text(result: dict[str, Any], fmt: str, day: dt.date | None = None) -> str:
    """A search result (``SearchResult.to_json()``, optionally with ``filters`` and
    ``per_document``) as CSV (one row per hit, every citation field, then the query, filters, the
    search's note and the export day) or JSON (those as top-level fields, then the hits)."""
    exported = (day or dt.date.today()).isoformat()
    hits = result.get("hits", [])
    if fmt == "json":
        head = {k: v for k, v in result.items() if k != "hits"}
        return json.dumps({**head, "exported": exported, "hits": hits}, ensure_ascii=False,
                          indent=2)  # fmt: skip
    if fmt != "csv":
        raise ValueError(f"export format must be 'csv' or 'json', got {fmt!r}")
    out = io.StringIO()
    if hits:
        cols = (result.get("query", ""), filters_line(result), result.get("note", ""), exported)
        extra = dict(zip(SEARCH_COLUMNS, cols, strict=True))
        writer = csv.DictWriter(out, fieldnames=[*hits[0], *SEARCH_COLUMNS])
        writer.writeheader()
        writer.writerows({**h, **extra} for h in hits)
    return out.getvalue()


# --- Batch search: one row per hit of every term, as the search export's rows ------------------

HIT_FIELDS = tuple(f.name for f in dataclasses.fields(Hit) if f.name != "page_starts")
BATCH_COLUMNS = ("row", "term", *HIT_FIELDS, "search_filters", "k", "exported", "note")


def batch_csv(batch: dict[str, Any], day: dt.date | None = None) -> str:
    """A batch (``BatchResult.to_json()``) as one table: a row per hit of each term, in file
    order, with the term's row in the file, every citation field of the search export, the
    filters it ran with and the export day; a term without hits has one row whose ``note`` says
    "no passage found" (or why it was not searched); a hit's ``note`` says when the term's
    phrase was searched as words."""
    exported = (day or dt.date.today()).isoformat()
    per_doc = batch.get("per_document", "default")
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=BATCH_COLUMNS, restval="")
    writer.writeheader()
    for t in batch.get("terms", []):
        line = filters_line({"filters": t["filters"], "per_document": per_doc})
        extra = {"row": t["row"], "term": t["term"], "search_filters": line, "k": t["k"],
                 "exported": exported}  # fmt: skip
        if not t["hits"]:
            writer.writerow({**extra, "note": t["error"] or NO_PASSAGE})
        writer.writerows({**h, **extra, "note": t.get("note", "")} for h in t["hits"])
    return out.getvalue()


def batch_json(batch: dict[str, Any], day: dt.date | None = None) -> str:
    """The batch object (as ``rag batch --json``) and the export day."""
    data = {**batch, "exported": (day or dt.date.today()).isoformat()}
    return json.dumps(data, ensure_ascii=False, indent=2)


_MD_INLINE = re.compile(r"([\\`*_<>])|(\])(?=[(\[:])")
_MD_LINE_START = re.compile(r"^(\s*)([#>+=|-]|\d+[.)])", re.M)


def md_text(text: str) -> str:
    """Plain text as Markdown a person can read: only what would turn into markup (emphasis,
    HTML, links, headings, lists) is escaped; hyphens and dots inside lines are left alone."""
    text = _MD_INLINE.sub(lambda m: "\\" + (m.group(1) or m.group(2)), shown(text))
    return _MD_LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2), text)


def answer_plain(answer: Answer) -> str:
    """The answer as clean text to paste: its [n] markers, then each source in publication form."""
    parts = [shown(answer.answer).strip()]
    if query := searched_for(answer):
        parts.append(f"Searched for: {shown(query)}")
    if answer.citations:
        parts.append("Sources:\n" + "\n".join(f"[{c.n}] {cite(c)}" for c in answer.citations))
    return "\n\n".join(parts)


def answer_markdown_file(answer: Answer, day: dt.date | None = None) -> str:
    """The answer and its citations as a Markdown file for a story."""
    body = "\n\n".join("  \n".join(md_text(line) for line in block.splitlines())
                       for block in answer.answer.strip().split("\n\n"))  # fmt: skip
    parts = [f"# {md_text(answer.question)}", body]
    if query := searched_for(answer):
        parts.append(f"_Searched for: {md_text(query)}_")
    if answer.citations:
        parts.append("## Sources")
        parts += [f"[{c.n}] {md_text(cite(c))}" for c in answer.citations]
    day = day or dt.date.today()
    parts.append(f"_Answered by govrag: {mode_label(answer)}; exported {day.isoformat()}_")
    return "\n\n".join(parts) + "\n"


def answer_json(answer: Answer, day: dt.date | None = None) -> str:
    """The answer object (as ``rag ask --json``) with each citation in publication form."""
    data = answer.to_json()
    data["citations_formatted"] = [f"[{c.n}] {cite(c)}" for c in answer.citations]
    data["exported"] = (day or dt.date.today()).isoformat()
    return json.dumps(data, ensure_ascii=False, indent=2)


def answer_files(answer: Answer) -> tuple[str, str]:
    """The answer written as Markdown and as JSON; their paths."""
    return (
        write_export(export_name("answer", answer.question, "md"), answer_markdown_file(answer)),
        write_export(export_name("answer", answer.question, "json"), answer_json(answer)),
    )


# --- Compare: one row per citation (and one "no passage found" row per abstained group) -------

COMPARE_COLUMNS = ("group", "n", "title", "doc_id", "jurisdiction", "lang", "page", "quote",
                   "start", "end", "url", "question", "by", "exported")  # fmt: skip


def compare_csv(comparison: Comparison, day: dt.date | None = None) -> str:
    """The comparison as CSV: one row per citation, in group order, and a row saying "no passage
    found" for each group whose documents do not answer; every row also names the question, the
    grouping and the export day (one rectangular table)."""
    extra = {"question": comparison.question, "by": comparison.by,
             "exported": (day or dt.date.today()).isoformat()}  # fmt: skip
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COMPARE_COLUMNS, restval="", extrasaction="ignore")
    writer.writeheader()
    for g in comparison.groups:
        if g.abstained:
            writer.writerow({"group": g.key, "quote": NO_PASSAGE, **extra})
        for c in () if g.abstained else g.answer.citations:
            page = "" if c.page is None else c.page
            writer.writerow({**c.to_json(), "group": g.key, "page": page, **extra})
    return out.getvalue()


def compare_json(comparison: Comparison, day: dt.date | None = None) -> str:
    """The comparison object (as ``rag compare --json``) and the export day."""
    data = {**comparison.to_json(), "exported": (day or dt.date.today()).isoformat()}
    return json.dumps(data, ensure_ascii=False, indent=2)


def compare_markdown(comparison: Comparison, day: dt.date | None = None) -> str:
    """The comparison as a Markdown story file: a section per group with its quotes and sources
    in publication form, or "no passage found"."""
    keys = ", ".join(g.key for g in comparison.groups) or "none"
    parts = [f"# {md_text(comparison.question)}", f"_Compared by {comparison.by}: {md_text(keys)}_"]
    for g in comparison.groups:
        parts.append(f"## {md_text(g.key)}")
        if g.abstained:
            parts.append(NO_PASSAGE)
            continue
        parts += ["  \n".join(md_text(line) for line in block.splitlines())
                  for block in g.answer.answer.strip().split("\n\n")]  # fmt: skip
        parts.append("  \n".join(f"[{c.n}] {md_text(cite(c))}" for c in g.answer.citations))
    modes = ", ".join(dict.fromkeys(mode_label(g.answer) for g in comparison.groups))
    day = day or dt.date.today()
    parts.append(f"_Answered by govrag: {modes or 'nothing'}; exported {day.isoformat()}_")
    return "\n\n".join(parts) + "\n"


def compare_files(comparison: Comparison) -> tuple[str, str, str]:
    """The comparison written as CSV (with a BOM, for Excel), JSON and Markdown; their paths."""
    name = lambda ext: export_name("compare", comparison.question, ext)  # noqa: E731
    return (
        write_export(name("csv"), compare_csv(comparison), bom=True),
        write_export(name("json"), compare_json(comparison)),
        write_export(name("md"), compare_markdown(comparison)),
    )
