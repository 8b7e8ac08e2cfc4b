"""Saved searches and alerts: a query with its filters kept in a small SQLite file next to the
index, and the passages it finds that were not there when it was last seen.

A **hit** of a saved search is one of its top ``k`` passages; a hit is **new** when its passage
(chunk id and a digest of its text, so a passage whose text changed counts as new) is not in the
search's seen set. Saving a search marks its current hits seen, so it reports only what later
ingests bring; ``mark_seen`` adds the current hits to the set. The file lives beside the index
folder (``<index>.searches.sqlite``), not inside it, so a rebuild (which swaps the folder)
keeps it; with Qdrant it is ``<qdrant path>-<collection>.searches.sqlite`` in local mode, or
``<cache dir>/searches/<host>-<collection>.searches.sqlite`` for a server.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.config import MAX_K, Settings
from rag.index.base import IndexError_
from rag.service.batch import filters_json
from rag.types import Filters, Hit, SearchResult

DEFAULT_K = 10
Search = Callable[..., SearchResult]  # Assistant.search(query, k, filters, *, per_doc=…)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS searches (
    name TEXT PRIMARY KEY, query TEXT NOT NULL, filters TEXT NOT NULL, k INTEGER NOT NULL,
    per_doc INTEGER, created TEXT NOT NULL, seen_at TEXT NOT NULL,
    cross_lingual INTEGER NOT NULL DEFAULT 1);
CREATE TABLE IF NOT EXISTS seen (
    name TEXT NOT NULL REFERENCES searches(name) ON DELETE CASCADE,
    hit TEXT NOT NULL, doc_id TEXT NOT NULL, PRIMARY KEY (name, hit));
"""


def searches_path(settings: Settings) -> Path:
    """Where the saved searches of ``settings``' index are kept (see the module docstring)."""
    if settings.store == "qdrant":
        collection = settings.qdrant_collection
        if settings.qdrant_path is not None and str(settings.qdrant_path) != ":memory:":
            p = Path(settings.qdrant_path).resolve()
            return p.parent / f"{p.name}-{collection}.searches.sqlite"
        host = re.sub(r"[^A-Za-z0-9.-]+", "-", settings.qdrant_url or "memory").strip("-")
        return Path(settings.cache_dir) / "searches" / f"{host}-{collection}.searches.sqlite"
    p = Path(settings.index_dir).resolve()
    return p.parent / f"{p.name}.searches.sqlite"


def hit_key(h: Hit) -> str:
    """A passage as the seen set knows it: its id and a digest of its text."""
    return f"{h.chunk_id}@{hashlib.sha1(h.text.encode('utf-8')).hexdigest()[:16]}"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class SavedSearch:
    name: str
    query: str
    filters: Filters
    k: int = DEFAULT_K
    per_doc: int | None = None
    created: str = ""
    seen_at: str = ""  # when its hits were last marked seen (UTC)
    cross_lingual: bool = True  # False: only passages in the query's language

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "query": self.query, "filters": filters_json(self.filters),
                "k": self.k, "per_document": self.per_doc or "default",
                "cross_lingual": self.cross_lingual, "created": self.created,
                "seen_at": self.seen_at}  # fmt: skip


@dataclass(frozen=True)
class Alert:
    """A saved search checked against the index now: its hits, those that are new, and the
    documents none of whose passages had been seen before; ``error`` when it could not run."""

    search: SavedSearch
    hits: tuple[Hit, ...] = ()
    new: tuple[Hit, ...] = ()
    new_docs: tuple[str, ...] = ()
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        return {**self.search.to_json(), "new_hits": [h.to_json() for h in self.new],
                "new_documents": list(self.new_docs), "hits": len(self.hits),
                "error": self.error}  # fmt: skip


def _filters(text: str) -> Filters:
    values: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(text).items()
    }
    return Filters(**values)


class SavedSearches:
    """The saved searches of one index, in the SQLite file at ``path`` (made on first save).
    Each call opens its own connection: safe from the app's threads and other processes."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @contextmanager
    def _db(self, create: bool = False) -> Iterator[sqlite3.Connection | None]:
        if not create and not self.path.exists():
            yield None
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.path, timeout=30)) as con, con:
            con.execute("PRAGMA foreign_keys = ON")
            con.executescript(_SCHEMA)
            yield con

    def all(self) -> list[SavedSearch]:
        with self._db() as con:
            if con is None:
                return []
            rows = con.execute(
                "SELECT name, query, filters, k, per_doc, created, seen_at, cross_lingual "
                "FROM searches ORDER BY rowid"
            ).fetchall()
        return [SavedSearch(n, q, _filters(f), k, p, c, s, bool(x))
                for n, q, f, k, p, c, s, x in rows]  # fmt: skip

    def get(self, name: str) -> SavedSearch | None:
        return next((s for s in self.all() if s.name == name), None)

    def save(
        self, search: Search, query: str, filters: Filters | None = None, *, name: str = "",
        k: int = DEFAULT_K, per_doc: int | None = None, cross_lingual: bool = True,
    ) -> SavedSearch:  # fmt: skip
        """Save ``query`` with its filters under ``name`` (default: the query) and mark its
        current hits seen. Refused (ValueError) for an empty query, a name in use, or a query
        the search refuses."""
        query, name = query.strip(), " ".join((name or query).split())
        if not query:
            raise ValueError("type a query to save")
        if not 1 <= k <= MAX_K:
            raise ValueError(f"k must be between 1 and {MAX_K}, got {k}")
        if self.get(name) is not None:
            raise ValueError(f"a saved search named {name!r} exists: delete it or pick another "
                             "name")  # fmt: skip
        f = filters or Filters()
        # the search refuses bad syntax before the query is kept
        result = search(
            query, k, f, per_doc=per_doc, cross_lingual=cross_lingual, strict_phrases=True
        )
        saved = SavedSearch(name, query, f, k, per_doc, _now(), _now(), cross_lingual)
        with self._db(create=True) as con:
            assert con is not None
            con.execute("INSERT INTO searches VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (name, query, json.dumps(filters_json(f)), k, per_doc, saved.created,
                         saved.seen_at, int(cross_lingual)))  # fmt: skip
            _add_seen(con, name, result.hits)
        return saved

    def delete(self, name: str) -> bool:
        with self._db() as con:
            if con is None:
                return False
            return con.execute("DELETE FROM searches WHERE name = ?", (name,)).rowcount > 0

    def check(self, search: Search, names: Sequence[str] = ()) -> list[Alert]:
        """Run every saved search (or those named) now: what each finds and what is new."""
        alerts = []
        for s in self.all():
            if names and s.name not in names:
                continue
            try:
                result = search(s.query, s.k, s.filters, per_doc=s.per_doc,
                                cross_lingual=s.cross_lingual, strict_phrases=True)  # fmt: skip
            except (ValueError, IndexError_) as exc:
                alerts.append(Alert(s, error=str(exc)))
                continue
            with self._db() as con:
                assert con is not None
                rows = con.execute("SELECT hit, doc_id FROM seen WHERE name = ?", (s.name,))
                seen, seen_docs = set(), set()
                for key, doc in rows:
                    seen.add(key)
                    seen_docs.add(doc)
            new = tuple(h for h in result.hits if hit_key(h) not in seen)
            docs = tuple(dict.fromkeys(h.doc_id for h in new if h.doc_id not in seen_docs))
            alerts.append(Alert(s, result.hits, new, docs))
        return alerts

    def mark_seen(self, alerts: Sequence[Alert]) -> int:
        """Add each alert's new hits to its search's seen set; how many were added."""
        added = 0
        with self._db() as con:
            if con is None:
                return 0
            for a in alerts:
                if a.new and not a.error:
                    added += _add_seen(con, a.search.name, a.new)
                    con.execute("UPDATE searches SET seen_at = ? WHERE name = ?",
                                (_now(), a.search.name))  # fmt: skip
        return added


def _add_seen(con: sqlite3.Connection, name: str, hits: Sequence[Hit]) -> int:
    rows = [(name, hit_key(h), h.doc_id) for h in hits]
    return con.executemany("INSERT OR IGNORE INTO seen VALUES (?, ?, ?)", rows).rowcount


def with_new_hits(alerts: Sequence[Alert]) -> list[Alert]:
    """The alerts that have something to report (new hits, or an error)."""
    return [a for a in alerts if a.new or a.error]
