"""Frozen dataclasses that cross module borders: Document, Chunk, Filters, Hit, SkippedFile,
IngestReport, Citation, Answer.

Nothing here does work; these are the shapes the CLI, the UI, the JSON output and the tests share.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Document:
    """One cleaned document. ``text`` is the cleaned text every offset points into."""

    doc_id: str
    text: str
    title: str
    lang: str
    path: str  # source file, relative to the corpus folder (posix)
    source: str = ""  # publisher / outlet / issuing body
    url: str = ""
    date: str = ""  # ISO 8601 (YYYY, YYYY-MM or YYYY-MM-DD) where known
    country: str = ""  # ISO 3166-1 alpha-2, or "EU"


@dataclass(frozen=True)
class Chunk:
    """A span of a document: ``document.text[start:end] == text`` always holds."""

    chunk_id: str  # f"{doc_id}#{ordinal}"
    doc_id: str
    ordinal: int
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk with the metadata of its document."""

    rank: int
    score: float
    doc_id: str
    chunk_id: str
    title: str
    lang: str
    source: str
    date: str
    text: str
    start: int
    end: int
    url: str = ""
    country: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SearchResult:
    """What ``search`` returns: the query, its detected language and the ranked hits."""

    query: str
    query_lang: str
    hits: tuple[Hit, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "query_lang": self.query_lang,
            "hits": [h.to_json() for h in self.hits],
        }


@dataclass(frozen=True)
class SkippedFile:
    """A corpus file that was not indexed, and why (one line a user can act on)."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class IngestReport:
    """Summary of one ``ingest`` run."""

    documents: int  # documents in the index after the run
    chunks: int  # chunks in the index after the run
    files_added: tuple[str, ...] = ()
    files_changed: tuple[str, ...] = ()
    files_removed: tuple[str, ...] = ()
    files_unchanged: int = 0
    chunks_embedded: int = 0
    sentences_embedded: int = 0
    skipped: tuple[SkippedFile, ...] = field(default_factory=tuple)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["skipped"] = [{"path": s.path, "reason": s.reason} for s in self.skipped]
        return data


@dataclass(frozen=True)
class Citation:
    """One quoted span: ``document.text[start:end] == quote`` (the cleaned, indexed text)."""

    n: int  # the [n] marker in the answer text
    doc_id: str
    chunk_id: str
    title: str
    lang: str
    source: str
    date: str
    quote: str
    start: int
    end: int
    url: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Answer:
    """A cited answer, or an abstention with the closest passages."""

    question: str
    question_lang: str
    answer: str
    abstained: bool
    mode: str  # "extractive" or "llm"
    citations: tuple[Citation, ...] = ()
    closest: tuple[Hit, ...] = ()
    note: str = ""  # e.g. why the LLM answer was replaced by the extractive one
    retrieval_query: str = ""  # the question as resolved against the chat history

    def to_json(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "question_lang": self.question_lang,
            "answer": self.answer,
            "abstained": self.abstained,
            "mode": self.mode,
            "citations": [c.to_json() for c in self.citations],
            "closest": [h.to_json() for h in self.closest],
            "note": self.note,
            "retrieval_query": self.retrieval_query,
        }


@dataclass(frozen=True)
class Filters:
    """Restrict a search. Empty fields do not filter.

    ``docs`` match a document id or an id prefix (``eu_ai_act`` matches ``eu_ai_act/article_005``);
    ``sources`` match the source field case-insensitively as a substring; dates are ISO strings
    compared as text, so ``2023`` sorts before ``2023-05-01``; documents without a date are left out
    by a date filter.
    """

    langs: tuple[str, ...] = ()
    docs: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    date_from: str = ""
    date_to: str = ""

    def __post_init__(self) -> None:
        for name in ("date_from", "date_to"):
            value = getattr(self, name)
            if value and not (len(value) in (4, 7, 10) and value[:4].isdigit()):
                raise ValueError(f"{name} must be YYYY, YYYY-MM or YYYY-MM-DD, got {value!r}")

    @property
    def active(self) -> bool:
        return bool(
            self.langs or self.docs or self.sources or self.countries or self.date_from
            or self.date_to
        )  # fmt: skip
