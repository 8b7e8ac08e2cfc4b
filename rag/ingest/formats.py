"""Reading one file's bytes as cleaned text, per format (txt, md, html, pdf, docx, structured
JSON). A file that cannot be read raises :class:`LoadError` with a reason a user can act on."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any, NamedTuple

from rag.ingest.clean import clean_text

log = logging.getLogger(__name__)


class LoadError(Exception):
    """A file could not be turned into a document; ``str(exc)`` is the reason."""


# --- reading bytes as text -------------------------------------------------------------------


def decode_text(data: bytes) -> str:
    """Bytes → str: BOMs, UTF-8, then charset detection; binary data raises LoadError."""
    if not data.strip():
        raise LoadError("file is empty")
    for bom, enc in (
        (b"\xef\xbb\xbf", "utf-8-sig"),
        (b"\xff\xfe", "utf-16"),
        (b"\xfe\xff", "utf-16"),
    ):
        if data.startswith(bom):
            try:
                return data.decode(enc)
            except UnicodeDecodeError as exc:
                raise LoadError(f"starts with a {enc} byte-order mark but does not decode") from exc
    if b"\x00" in data[:8192]:
        raise LoadError("binary data (NUL bytes), not text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data[: 1 << 20]))
    if not matches:
        raise LoadError("not valid UTF-8 and no other text encoding fits; binary or corrupt file")
    # Short Western text fits several code pages equally well; the most common one wins ties.
    least = min(m.chaos for m in matches)
    tied = [m.encoding for m in matches if m.chaos <= least + 0.01]
    encoding = next((e for e in ("cp1252", "latin_1", "iso8859_15") if e in tied), tied[0])
    text = data.decode(encoding, errors="replace")
    controls = sum(1 for ch in text[:10000] if ord(ch) < 32 and ch not in "\n\r\t\f")
    if controls > 0.01 * min(len(text), 10000):
        raise LoadError("binary data (control characters), not text")
    log.info("decoded as %s", encoding)
    return text


# --- format loaders: each returns a list of Entry (one per document in the file) -------------


class Entry(NamedTuple):
    """One document read from a file: ``entry_id`` is "" unless the file holds several."""

    entry_id: str
    title: str  # a guess from the file (HTML <title>, PDF metadata, first heading), or ""
    text: str  # cleaned
    pages: tuple[int, ...] = ()  # PDFs: offset in ``text`` where page 1, 2, … starts
    ocr: bool = False  # ``text`` was read from page images by OCR


Loaded = list[Entry]


def _load_txt(path: Path) -> Loaded:
    return [Entry("", "", clean_text(decode_text(path.read_bytes())))]


def _load_md(path: Path) -> Loaded:
    raw = decode_text(path.read_bytes())
    raw = re.sub(r"<!--.*?-->", "\n\n", raw, flags=re.S)
    title = ""
    lines = []
    for line in raw.splitlines():
        m = re.match(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if m:
            title = title or m.group(2)
            lines.extend(["", m.group(2), ""])  # a heading is its own paragraph
        else:
            lines.append(line)
    return [Entry("", title, clean_text("\n".join(lines)))]


def _load_html(path: Path) -> Loaded:
    import trafilatura

    html = decode_text(path.read_bytes())
    text = trafilatura.extract(html, include_comments=False, include_tables=True)
    if not text:
        raise LoadError("no main text found in the HTML page")
    meta = trafilatura.extract_metadata(html)
    title = (meta.title or "") if meta is not None else ""
    return [Entry("", title, clean_text(text, single_newline_breaks=True))]


def _load_pdf(path: Path) -> Loaded:
    """Pages, layout noise and OCR of scans: :mod:`rag.ingest.pdf` (imported here, not at the top,
    because it builds on this module's Entry and LoadError)."""
    from rag.ingest.pdf import load_pdf

    return load_pdf(path)


def _load_docx(path: Path) -> Loaded:
    import zipfile

    import docx

    try:
        document = docx.Document(str(path))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise LoadError(f"not a readable .docx (Word) file ({type(exc).__name__}: {exc})") from exc
    except Exception as exc:  # python-docx surfaces lxml and package errors of many kinds
        raise LoadError(f"not a readable .docx (Word) file ({type(exc).__name__}: {exc})") from exc
    title = document.core_properties.title or ""
    paragraphs = [p.text for p in document.paragraphs if p.text.strip()]
    return [Entry("", title, clean_text("\n\n".join(paragraphs)))]


_TEXT_KEYS = ("text_content", "text", "content", "body")


def _load_json(path: Path) -> Loaded:
    """Structured JSON: ``{id: {"title", "text_content"|"text"}}`` or a list of such objects."""
    try:
        data = json.loads(decode_text(path.read_bytes()))
    except json.JSONDecodeError as exc:
        raise LoadError(f"not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    items: list[tuple[str, Any]]
    if isinstance(data, dict):
        items = [(str(k), v) for k, v in data.items()]
    elif isinstance(data, list):
        items = [(str(i), v) for i, v in enumerate(data)]
    else:
        raise LoadError("JSON must be an object or a list of entries")
    out: Loaded = []
    for key, entry in items:
        if not isinstance(entry, dict):
            continue
        text = next((entry[k] for k in _TEXT_KEYS if isinstance(entry.get(k), str)), None)
        if text is None:
            continue
        entry_id = str(entry.get("id") or key)
        out.append(Entry(entry_id, str(entry.get("title") or ""), clean_text(text)))
    if not out:
        raise LoadError(f"JSON has no entries with a text field ({', '.join(_TEXT_KEYS)})")
    return out


LOADERS = {
    ".txt": _load_txt,
    ".md": _load_md,
    ".markdown": _load_md,
    ".html": _load_html,
    ".htm": _load_html,
    ".pdf": _load_pdf,
    ".docx": _load_docx,
    ".json": _load_json,
}
