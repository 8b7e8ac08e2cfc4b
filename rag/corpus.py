"""Find corpus files, load them (txt, md, html, pdf, docx, structured JSON), clean, attach metadata.

A file becomes one :class:`~rag.types.Document` (a structured JSON file becomes one per entry).
A file that cannot be read raises :class:`LoadError` with a reason a user can act on; the caller
skips it and goes on. Metadata comes from ``catalog.jsonl`` at the corpus root and from optional
``<file>.meta.json`` sidecars (see ``corpus/README.md`` for the format).

Not done here: chunking, embedding, anything about the index.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.clean import clean_text, split_paragraphs
from rag.lang import detect_language
from rag.types import Document

log = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx", ".json")
CATALOG_NAME = "catalog.jsonl"
SIDECAR_SUFFIX = ".meta.json"
_IGNORED_NAMES = re.compile(r"^(readme|license|licence|notice|attribution|copying)\b", re.I)
META_FIELDS = ("id", "title", "lang", "source", "url", "date", "country")
_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


def file_sha256(path: Path) -> str:
    """sha256 (hex) of a file, read in 4 MiB blocks (memory stays flat for large files)."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


class LoadError(Exception):
    """A file could not be turned into a document; ``str(exc)`` is the reason."""


@dataclass(frozen=True)
class CorpusFile:
    path: Path  # absolute
    rel: str  # posix path relative to the corpus root: the default document id source

    def sha256(self) -> str:
        return file_sha256(self.path)


def is_ignored(rel: Path) -> bool:
    """Hidden files, ``_private`` files, README/LICENSE/ATTRIBUTION notes and metadata files."""
    if any(part.startswith((".", "_")) for part in rel.parts):
        return True
    name = rel.name
    return bool(_IGNORED_NAMES.match(name)) or name == CATALOG_NAME or name.endswith(SIDECAR_SUFFIX)


def find_files(
    corpus_dir: Path, max_mb: float = 20.0
) -> tuple[list[CorpusFile], list[tuple[str, str]]]:
    """All candidate files under ``corpus_dir`` (sorted) and ``(rel, reason)`` for refused ones."""
    root = corpus_dir.resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"corpus folder {corpus_dir} does not exist")
    found: list[CorpusFile] = []
    refused: list[tuple[str, str]] = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if is_ignored(rel) or (path.is_dir() and not path.is_symlink()):
            continue
        rel_s = rel.as_posix()
        why = _refusal(path, root)
        if why:
            refused.append((rel_s, why))
            continue
        size = path.stat().st_size
        if size > max_mb * 1024 * 1024:
            refused.append((rel_s, f"{size / 1e6:.1f} MB is over the {max_mb:g} MB limit "
                            "(RAG_MAX_FILE_MB)"))  # fmt: skip
            continue
        found.append(CorpusFile(path, rel_s))
    return found, refused


def _refusal(path: Path, root: Path) -> str:
    """Why ``path`` cannot be a corpus file, or "" if it can be one."""
    import stat

    if path.is_symlink():
        try:
            target = path.resolve(strict=True)
        except (OSError, RuntimeError):  # missing target or a symlink loop
            return "symlink to a missing file; not followed"
        if not target.is_relative_to(root):
            return "symlink points outside the corpus folder; not followed"
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        return f"cannot read file ({exc.strerror or exc})"
    if stat.S_ISDIR(mode):
        return "symlink to a folder; not followed (its files are not indexed)"
    if not stat.S_ISREG(mode):  # a FIFO or device would block or never end when read
        return "not a regular file (FIFO, socket or device); not read"
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        return (
            f"unsupported file type {path.suffix or '(none)'!r}; "
            f"supported: {', '.join(SUPPORTED_SUFFIXES)}"
        )
    return ""


def read_catalog(corpus_dir: Path) -> dict[str, dict[str, str]]:
    """``catalog.jsonl`` → {relative path: metadata}. Bad lines raise with file and line number."""
    catalog_path = corpus_dir / CATALOG_NAME
    out: dict[str, dict[str, str]] = {}
    if not catalog_path.exists():
        return out
    for lineno, line in enumerate(catalog_path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{catalog_path}:{lineno}: not valid JSON ({exc.msg})") from exc
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise ValueError(f'{catalog_path}:{lineno}: each line needs a "path" string')
        out[entry["path"]] = _check_meta(entry, f"{catalog_path}:{lineno}")
    return out


def _check_meta(entry: dict[str, Any], where: str) -> dict[str, str]:
    meta = {k: str(entry[k]) for k in META_FIELDS if entry.get(k) not in (None, "")}
    if "date" in meta and not _DATE.match(meta["date"]):
        raise ValueError(f"{where}: date {meta['date']!r} is not YYYY, YYYY-MM or YYYY-MM-DD")
    return meta


def file_metadata(cf: CorpusFile, catalog: dict[str, dict[str, str]]) -> dict[str, str]:
    """Catalog entry for the file, overridden by its ``.meta.json`` sidecar if there is one."""
    meta = dict(catalog.get(cf.rel, {}))
    sidecar = cf.path.with_name(cf.path.name + SIDECAR_SUFFIX)
    if sidecar.exists():
        try:
            data = json.loads(sidecar.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise LoadError(f"metadata sidecar {sidecar.name} is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise LoadError(f"metadata sidecar {sidecar.name} must hold a JSON object")
        try:
            meta.update(_check_meta(data, sidecar.name))
        except ValueError as exc:
            raise LoadError(str(exc)) from exc
    return meta


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


# --- format loaders: each returns [(entry id or "", title guess, cleaned text)] ----------------

Loaded = list[tuple[str, str, str]]


def _load_txt(path: Path) -> Loaded:
    return [("", "", clean_text(decode_text(path.read_bytes())))]


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
    return [("", title, clean_text("\n".join(lines)))]


def _load_html(path: Path) -> Loaded:
    import trafilatura

    html = decode_text(path.read_bytes())
    text = trafilatura.extract(html, include_comments=False, include_tables=True)
    if not text:
        raise LoadError("no main text found in the HTML page")
    meta = trafilatura.extract_metadata(html)
    title = (meta.title or "") if meta is not None else ""
    return [("", title, clean_text(text, single_newline_breaks=True))]


def _load_pdf(path: Path) -> Loaded:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted and not reader.decrypt(""):
            raise LoadError("PDF is encrypted with a password")
        pages = [page.extract_text() or "" for page in reader.pages]
        title = str(reader.metadata.title) if reader.metadata and reader.metadata.title else ""
    except LoadError:
        raise
    except (PdfReadError, ValueError, KeyError, OSError, TypeError, AssertionError) as exc:
        raise LoadError(f"not a readable PDF ({type(exc).__name__}: {exc})") from exc
    except Exception as exc:  # pypdf raises many kinds of error on damaged files
        raise LoadError(f"not a readable PDF ({type(exc).__name__}: {exc})") from exc
    paragraphs = [p for page in pages for p in _reflow_pdf_page(page)]
    if not paragraphs:
        raise LoadError("PDF has no extractable text (scanned images need OCR, not supported)")
    return [("", title, clean_text("\n\n".join(paragraphs)))]


def _reflow_pdf_page(page: str) -> list[str]:
    """PDF text comes hard-wrapped: a paragraph ends at a short line ending a sentence."""
    lines = [ln.rstrip() for ln in page.splitlines()]
    width = max((len(ln) for ln in lines), default=0)
    paras: list[str] = []
    cur: list[str] = []
    for line in lines:
        if not line.strip():
            if cur:
                paras.append(" ".join(cur))
                cur = []
            continue
        cur.append(line.strip())
        if re.search(r"[.!?。！？:]$", line) and len(line) < 0.8 * width:
            paras.append(" ".join(cur))
            cur = []
    if cur:
        paras.append(" ".join(cur))
    return paras


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
    return [("", title, clean_text("\n\n".join(paragraphs)))]


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
        out.append((entry_id, str(entry.get("title") or ""), clean_text(text)))
    if not out:
        raise LoadError(f"JSON has no entries with a text field ({', '.join(_TEXT_KEYS)})")
    return out


_LOADERS = {
    ".txt": _load_txt,
    ".md": _load_md,
    ".markdown": _load_md,
    ".html": _load_html,
    ".htm": _load_html,
    ".pdf": _load_pdf,
    ".docx": _load_docx,
    ".json": _load_json,
}


def _title_from_id(entry_id: str) -> str:
    """``recital_012`` → ``Recital 12``; used when a JSON entry has no title."""
    m = re.match(r"^([A-Za-z]+)[_ -]0*(\d+)$", entry_id)
    return f"{m.group(1).capitalize()} {m.group(2)}" if m else entry_id


def load_file(cf: CorpusFile, catalog: dict[str, dict[str, str]]) -> list[Document]:
    """Load, clean and describe one file. Raises LoadError with the reason on failure."""
    loader = _LOADERS.get(cf.path.suffix.lower())
    if loader is None:
        raise LoadError(f"unsupported file type {cf.path.suffix!r}")
    meta = file_metadata(cf, catalog)
    try:
        loaded = loader(cf.path)
    except LoadError:
        raise
    except OSError as exc:
        raise LoadError(f"cannot read file ({exc.strerror or exc})") from exc
    except RecursionError as exc:  # json and lxml recurse once per level of nesting
        raise LoadError("structure nested too deeply to read (damaged or hostile file)") from exc
    except Exception as exc:  # one odd file must not stop the run; -v shows the trace
        log.warning("unexpected error reading %s", cf.rel, exc_info=True)
        raise LoadError(f"could not be read ({type(exc).__name__}: {exc})") from exc
    base_id = meta.get("id") or re.sub(r"\.[^./]+$", "", cf.rel)
    docs = []
    for entry_id, title_guess, text in loaded:
        if not text.strip():
            if len(loaded) == 1:
                raise LoadError("no text left after cleaning (empty or only boilerplate)")
            continue
        doc_id = f"{base_id}/{entry_id}" if entry_id else base_id
        if entry_id:  # one entry of a structured file: "EU AI Act — Article 5: …"
            title = title_guess or _title_from_id(entry_id)
            title = f"{meta['title']} — {title}" if meta.get("title") else title
        else:
            title = meta.get("title") or title_guess or _first_line(text)
        docs.append(
            Document(
                doc_id=doc_id.replace("#", "_"),  # '#' separates the chunk ordinal
                text=text,
                title=title,
                lang=meta.get("lang") or detect_language(text),
                path=cf.rel,
                source=meta.get("source", ""),
                url=meta.get("url", ""),
                date=meta.get("date", ""),
                country=meta.get("country", ""),
            )
        )
    return docs


def _first_line(text: str, limit: int = 90) -> str:
    first = split_paragraphs(text)[0] if text else ""
    return first if len(first) <= limit else first[: limit - 1].rstrip() + "…"


def iter_documents(
    files: list[CorpusFile], catalog: dict[str, dict[str, str]]
) -> Iterator[tuple[CorpusFile, list[Document] | LoadError]]:
    """Each file with its documents, or with the LoadError that says why it was skipped."""
    for cf in files:
        try:
            yield cf, load_file(cf, catalog)
        except LoadError as exc:
            yield cf, exc


# --- adding and removing files (the app's corpus tab) ------------------------------------------

UPLOAD_DIR = "uploads"
UPLOAD_SUFFIXES = (".txt", ".md", ".html", ".htm", ".pdf", ".docx")


def safe_name(name: str) -> str:
    """A file name that cannot escape a folder or hide: ``"../../a b?.pdf" -> "a_b.pdf"``, at most
    100 characters of name and 10 of suffix."""
    import unicodedata

    base = unicodedata.normalize("NFKC", Path(name.replace("\\", "/")).name)
    stem, dot, suffix = base.rpartition(".")
    if not dot or len(suffix) > 10:  # "..aaaa…" has no suffix, it is all name
        stem, suffix = base, ""
    stem = re.sub(r"[^\w\-]+", "_", stem, flags=re.UNICODE).strip("._-") or "upload"
    suffix = re.sub(r"[^A-Za-z0-9]", "", suffix).lower()
    return f"{stem[:100]}.{suffix}" if suffix else stem[:100]


def save_upload(corpus_dir: Path, src: Path, original_name: str, max_mb: float) -> str:
    """Copy an uploaded file into ``corpus/uploads/`` under a safe, unused name; return its rel.

    Refuses other types and files over ``max_mb``; never overwrites an existing file.
    """
    import shutil

    name = safe_name(original_name)
    suffix = Path(name).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise LoadError(
            f"{original_name}: file type {suffix or '(none)'!r} is not accepted; "
            f"allowed: {', '.join(UPLOAD_SUFFIXES)}"
        )
    size = src.stat().st_size
    if size > max_mb * 1024 * 1024:
        raise LoadError(f"{original_name}: {size / 1e6:.1f} MB is over the {max_mb:g} MB limit")
    if is_ignored(Path(UPLOAD_DIR) / name):  # "README.md" would be saved but never indexed
        name = f"upload_{name}"
    folder = corpus_dir / UPLOAD_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(100_000):
        target = folder / (name if n == 0 else f"{Path(name).stem}-{n}{suffix}")
        try:  # "x" mode: another upload of the same name at the same moment gets the next one
            fout = open(target, "xb")  # noqa: SIM115
        except FileExistsError:
            continue
        try:
            with src.open("rb") as fin, fout:
                shutil.copyfileobj(fin, fout)
        except BaseException:
            target.unlink(missing_ok=True)  # no half-copied file left in the corpus
            raise
        return target.relative_to(corpus_dir).as_posix()
    raise LoadError(f"{original_name}: too many files named {name} in {folder}")


def remove_file(corpus_dir: Path, rel: str) -> None:
    """Delete a corpus file (and its sidecar) given its path relative to the corpus folder."""
    root = corpus_dir.resolve()
    path = (root / rel).resolve()
    if not path.is_relative_to(root) or path == root:
        raise LoadError(f"{rel}: not inside the corpus folder")
    if not path.is_file():
        raise LoadError(f"{rel}: no such file in the corpus")
    path.unlink()
    sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
    if sidecar.exists():
        sidecar.unlink()
