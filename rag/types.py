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
    jurisdiction: str = ""  # ISO 3166-1 alpha-2, a subdivision (US-CO), "EU" or "INT"
    doc_type: str = ""  # law, bill, regulation, executive order, guideline, …, news, opinion
    status: str = ""  # in force, draft, revoked, … where known
    licence: str = ""
    pages: tuple[int, ...] = ()  # PDFs: offset in ``text`` where page 1, 2, … starts
    ocr: bool = False  # the text was read from page images by OCR
    translations: tuple[str, ...] = ()  # ids of the same document in other languages

    def page_at(self, offset: int) -> int | None:
        """The 1-based page holding ``offset`` (None for documents without pages)."""
        return page_at(self.pages, offset)


def page_at(pages: tuple[int, ...], offset: int) -> int | None:
    """The 1-based page whose span holds ``offset``, given each page's start offset."""
    if not pages:
        return None
    import bisect

    return max(1, bisect.bisect_right(pages, offset))


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
    jurisdiction: str = ""
    doc_type: str = ""
    status: str = ""
    # the source file, relative to the corpus folder (not "path": Gradio's client would take a
    # JSON object with a "path" for a file to download)
    file: str = ""
    page: int | None = None  # PDFs: the page the passage starts on
    ocr: bool = False
    translations: tuple[str, ...] = ()
    page_starts: tuple[int, ...] = field(default=(), repr=False)  # not in JSON: for citations

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        del data["page_starts"]
        data["translations"] = list(self.translations)
        return data


@dataclass(frozen=True)
class SearchResult:
    """What ``search`` returns: the query, its detected language and the ranked hits; ``note``
    says how the query was read when that is not what it says (a phrase no passage holds was
    searched as words)."""

    query: str
    query_lang: str
    hits: tuple[Hit, ...]
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "query_lang": self.query_lang,
            "note": self.note,
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
    jurisdiction: str = ""
    doc_type: str = ""
    status: str = ""
    file: str = ""  # the source file, relative to the corpus folder
    page: int | None = None  # PDFs: the page the quote starts on
    ocr: bool = False
    translations: tuple[str, ...] = ()

    @classmethod
    def of(cls, n: int, hit: Hit, quote: str, start: int, end: int) -> Citation:
        """Quote ``document.text[start:end]`` of ``hit``'s document as citation ``[n]``."""
        return cls(
            n=n, doc_id=hit.doc_id, chunk_id=hit.chunk_id, title=hit.title, lang=hit.lang,
            source=hit.source, date=hit.date, quote=quote, start=start, end=end, url=hit.url,
            jurisdiction=hit.jurisdiction, doc_type=hit.doc_type, status=hit.status,
            file=hit.file, page=page_at(hit.page_starts, start) if hit.page_starts else hit.page,
            ocr=hit.ocr, translations=hit.translations,
        )  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["translations"] = list(self.translations)
        return data


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
    ``sources`` match the source field case-insensitively as a substring; ``jurisdictions`` match
    a code and its subdivisions (``US`` matches ``US``, ``US-CO`` and ``US-CA``); ``types`` match
    the document type case-insensitively; dates are ISO strings
    compared as text, so ``2023`` sorts before ``2023-05-01``; documents without a date are left out
    by a date filter.
    """

    langs: tuple[str, ...] = ()
    docs: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    jurisdictions: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
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
            self.langs or self.docs or self.sources or self.jurisdictions or self.types
            or self.date_from or self.date_to
        )  # fmt: skip
