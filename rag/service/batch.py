"""Batch search: a file of terms or questions (CSV with optional filter columns, or plain text
one per line) searched one by one through ``Assistant.search``, so that every term is read
exactly as the Search tab and ``rag search`` read it (query syntax included).

``read_terms`` parses the file and says what is wrong with it in words that name the file and
the row; ``run_batch`` runs the terms with a progress callback and keeps going when one term is
refused (its row carries the reason). The app (``rag/app/ui/batch.py``) and ``rag batch`` show
and export the :class:`BatchResult`.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from rag.config import MAX_K
from rag.ingest.uploads import date_problem
from rag.types import Filters, SearchResult

MAX_TERMS = 5000  # the most terms one batch takes (1,000 run in a few minutes on 2 cores)
DEFAULT_K = 5
TERM_COLUMNS = ("term", "query", "question")  # the term's column: the first of these present
# Optional columns: the filter of that row (several values: "sv,nl" or "sv;nl" or "sv|nl").
FILTER_COLUMNS = {
    "lang": "langs",
    "jurisdiction": "jurisdictions",
    "type": "types",
    "doc": "docs",
    "source": "sources",
    "date_from": "date_from",
    "date_to": "date_to",
}
COLUMNS = (*TERM_COLUMNS, *FILTER_COLUMNS, "k")
_MULTI = re.compile(r"[,;|]")
_LANG = re.compile(r"[a-z]{2,3}")

Search = Callable[..., SearchResult]  # Assistant.search(query, k, filters, *, per_doc=…)
Progress = Callable[[int, int], None]  # (terms done, terms in all)


class BatchFileError(ValueError):
    """The file cannot be read as a batch; the message names the file (and the row)."""


@dataclass(frozen=True)
class BatchTerm:
    """One term of the file: its row (1-based, the header is row 1 of a CSV), the text, the
    row's own filters (fields left empty take the shared filters) and its ``k`` (None: the
    batch's)."""

    row: int
    term: str
    filters: Filters = field(default_factory=Filters)
    k: int | None = None


@dataclass(frozen=True)
class BatchItem:
    """A term and what its search returned; ``error`` says why it was not searched."""

    term: BatchTerm
    filters: Filters  # what it ran with: the shared filters, then the row's
    k: int
    result: SearchResult | None = None
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "row": self.term.row,
            "term": self.term.term,
            "k": self.k,
            "filters": filters_json(self.filters),
            "query_lang": self.result.query_lang if self.result else "",
            "note": self.result.note if self.result else "",
            "error": self.error,
            "hits": [h.to_json() for h in self.result.hits] if self.result else [],
        }


@dataclass(frozen=True)
class BatchResult:
    """Every term of a batch in file order; ``stopped`` when it was cancelled before the end."""

    file: str
    k: int
    filters: Filters
    items: tuple[BatchItem, ...]
    total: int
    per_doc: int | None = None
    seconds: float = 0.0

    @property
    def hits(self) -> int:
        return sum(len(i.result.hits) for i in self.items if i.result)

    @property
    def errors(self) -> int:
        return sum(1 for i in self.items if i.error)

    @property
    def stopped(self) -> bool:
        return len(self.items) < self.total

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "k": self.k,
            "per_document": self.per_doc or "default",
            "filters": filters_json(self.filters),
            "terms_total": self.total,
            "terms_run": len(self.items),
            "seconds": round(self.seconds, 2),
            "terms": [i.to_json() for i in self.items],
        }


def filters_json(f: Filters) -> dict[str, Any]:
    """The filters as JSON (the same keys as the Search tab's export)."""
    return {"langs": list(f.langs), "sources": list(f.sources), "docs": list(f.docs),
            "jurisdictions": list(f.jurisdictions), "types": list(f.types),
            "date_from": f.date_from, "date_to": f.date_to}  # fmt: skip


# --- reading the file ---------------------------------------------------------------------


def decode(data: bytes, name: str) -> str:
    """The file's text: UTF-8 (a byte order mark is dropped) or UTF-16 with its BOM (Excel's
    "Unicode text"); anything else is refused with what to do."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise BatchFileError(
            f"{name}: line {line} is not UTF-8 text; save the file as UTF-8 (Excel: "
            '"CSV UTF-8") and upload it again'
        ) from exc


def read_terms(data: bytes | str, name: str) -> list[BatchTerm]:
    """The terms of a batch file: ``name`` ending in ``.csv`` (or ``.tsv``) is a table with a
    header, any other a plain list, one term per line. Empty lines and rows are skipped;
    anything else that is wrong raises :class:`BatchFileError` naming the file and the row."""
    text = decode(data, name) if isinstance(data, bytes) else data.lstrip("\ufeff")
    if name.lower().endswith((".csv", ".tsv")):
        terms = _csv_terms(text, name)
    else:
        terms = [BatchTerm(n, line.strip()) for n, line in enumerate(text.splitlines(), 1)
                 if line.strip()]  # fmt: skip
    if not terms:
        raise BatchFileError(f"{name}: no terms in the file (one term or question per row)")
    if len(terms) > MAX_TERMS:
        raise BatchFileError(f"{name}: {len(terms):,} terms; one batch takes at most "
                             f"{MAX_TERMS:,} (split the file)")  # fmt: skip
    return terms


def _delimiter(header: str) -> str:
    """``,`` unless the header line is separated by semicolons (European Excel) or tabs."""
    counts = {d: header.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _csv_terms(text: str, name: str) -> list[BatchTerm]:
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), "")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(first))
    header: list[str] | None = None
    terms: list[BatchTerm] = []
    try:
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if header is None:
                header = _header(row, name, reader.line_num)
                continue
            terms.append(_row_term(header, row, name, reader.line_num))
    except csv.Error as exc:
        raise BatchFileError(f"{name}: row {reader.line_num}: {exc}") from exc
    return terms


def _header(row: list[str], name: str, line: int) -> list[str]:
    header = [cell.strip().lower() for cell in row]  # unnamed columns (Excel's "a,b,,") are ignored
    unknown = [cell for cell in header if cell and cell not in COLUMNS]
    if unknown:
        raise BatchFileError(
            f"{name}: row {line} (the header): unknown column(s) {', '.join(map(repr, unknown))}; "
            f"the columns are term (or query, question), {', '.join(COLUMNS[3:])}"
        )
    if not any(c in header for c in TERM_COLUMNS):
        raise BatchFileError(f"{name}: row {line} (the header) has no 'term' column (or 'query',"
                             f" 'question'); it reads {', '.join(row)}")  # fmt: skip
    named = [cell for cell in header if cell]
    if len(set(named)) < len(named):
        raise BatchFileError(f"{name}: row {line} (the header) names a column twice")
    return header


def _row_term(header: list[str], row: list[str], name: str, line: int) -> BatchTerm:
    where = f"{name}: row {line}"
    if len(row) > len(header):
        raise BatchFileError(f"{where} has {len(row)} cells, the header {len(header)}; quote a "
                             "term that holds the separator")  # fmt: skip
    cells = dict(zip(header, (c.strip() for c in row), strict=False))
    term = next((cells[c] for c in TERM_COLUMNS if cells.get(c)), "")
    if not term:
        raise BatchFileError(f"{where}: no term (the 'term' cell is empty)")
    values: dict[str, Any] = {}
    for column, key in FILTER_COLUMNS.items():
        value = cells.get(column, "")
        if not value:
            continue
        if key.startswith("date_"):
            if problem := date_problem(value):
                raise BatchFileError(f"{where}: {column} {value!r}: {problem}")
            values[key] = value
            continue
        parts = tuple(p.strip() for p in _MULTI.split(value) if p.strip())
        if column == "lang" and (bad := [p for p in parts if not _LANG.fullmatch(p)]):
            raise BatchFileError(f"{where}: lang {bad[0]!r} is not a language code such as sv, "
                                 "en, zh")  # fmt: skip
        values[key] = parts
    return BatchTerm(line, term, Filters(**values), _k(cells.get("k", ""), where))


def _k(value: str, where: str) -> int | None:
    if not value:
        return None
    if not value.isdigit() or not 1 <= int(value) <= MAX_K:
        raise BatchFileError(f"{where}: k {value!r} must be a whole number from 1 to {MAX_K}")
    return int(value)


# --- running it -----------------------------------------------------------------------------


def merged(shared: Filters, own: Filters) -> Filters:
    """The shared filters with each field the row sets replaced by the row's."""
    return replace(shared, **{key: getattr(own, key) for key in FILTER_COLUMNS.values()
                              if getattr(own, key)})  # fmt: skip


def run_batch(
    search: Search,
    terms: Sequence[BatchTerm],
    *,
    k: int = DEFAULT_K,
    filters: Filters | None = None,
    per_doc: int | None = None,
    file: str = "",
    progress: Progress | None = None,
    stop: Callable[[], bool] | None = None,
) -> BatchResult:
    """Search every term (with its row's filters and ``k`` over ``filters`` and ``k``); a term
    the search refuses (a ValueError: bad syntax, a bad filter) gets its message and the batch
    goes on. ``progress(done, total)`` after each term; ``stop()`` true ends the batch early
    (the result says how far it got)."""
    import time

    started = time.monotonic()
    shared = filters or Filters()
    items: list[BatchItem] = []
    for n, t in enumerate(terms):
        if stop is not None and stop():
            break
        f, term_k = merged(shared, t.filters), t.k or k
        cap = per_doc if per_doc is None else min(per_doc, term_k)
        try:
            items.append(BatchItem(t, f, term_k, result=search(t.term, term_k, f, per_doc=cap)))
        except ValueError as exc:
            items.append(BatchItem(t, f, term_k, error=str(exc) or type(exc).__name__))
        if progress is not None:
            progress(n + 1, len(terms))
    return BatchResult(file, k, shared, tuple(items), len(terms), per_doc,
                       time.monotonic() - started)  # fmt: skip
