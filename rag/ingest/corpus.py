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

from rag.ingest.clean import split_paragraphs
from rag.ingest.formats import LOADERS, LoadError
from rag.ingest.lang import detect_language
from rag.types import Document

log = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx", ".json")
CATALOG_NAME = "catalog.jsonl"
SIDECAR_SUFFIX = ".meta.json"
_IGNORED_NAMES = re.compile(r"^(readme|license|licence|notice|attribution|copying)\b", re.I)
META_FIELDS = (
    "id", "title", "lang", "source", "url", "date", "jurisdiction", "type", "status", "licence",
    "translation_of",
)  # fmt: skip
_ALIASES = {"country": "jurisdiction", "license": "licence", "doc_type": "type"}
_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")
_JURISDICTION = re.compile(r"^([A-Z]{2}(-[A-Z0-9]{1,3})?|EU|INT)$")


def file_sha256(path: Path) -> str:
    """sha256 (hex) of a file, read in 4 MiB blocks (memory stays flat for large files)."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


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
    entry = {_ALIASES.get(k, k): v for k, v in entry.items()}
    meta = {k: str(entry[k]).strip() for k in META_FIELDS if entry.get(k) not in (None, "")}
    if "date" in meta and not _DATE.match(meta["date"]):
        raise ValueError(f"{where}: date {meta['date']!r} is not YYYY, YYYY-MM or YYYY-MM-DD")
    if "jurisdiction" in meta:
        meta["jurisdiction"] = meta["jurisdiction"].upper()
        if not _JURISDICTION.match(meta["jurisdiction"]):
            raise ValueError(
                f"{where}: jurisdiction {meta['jurisdiction']!r} is not an ISO 3166 code (SE, "
                "US), a subdivision (US-CO), EU or INT"
            )
    if "type" in meta:
        meta["type"] = meta["type"].lower()
    return meta


def translation_links(catalog: dict[str, dict[str, str]]) -> dict[str, tuple[str, ...]]:
    """Document id (prefix) → ids of the same document in other languages, both ways, from the
    catalog's ``translation_of`` fields (``eu_ai_act_nl`` ↔ ``eu_ai_act``)."""
    links: dict[str, set[str]] = {}
    for rel, meta in catalog.items():
        other = meta.get("translation_of")
        if other:
            own = meta.get("id") or re.sub(r"\.[^./]+$", "", rel)
            links.setdefault(own, set()).add(other)
            links.setdefault(other, set()).add(own)
    return {k: tuple(sorted(v)) for k, v in links.items()}


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


def _title_from_id(entry_id: str) -> str:
    """``recital_012`` → ``Recital 12``; used when a JSON entry has no title."""
    m = re.match(r"^([A-Za-z]+)[_ -]0*(\d+)$", entry_id)
    return f"{m.group(1).capitalize()} {m.group(2)}" if m else entry_id


def load_file(cf: CorpusFile, catalog: dict[str, dict[str, str]]) -> list[Document]:
    """Load, clean and describe one file. Raises LoadError with the reason on failure."""
    loader = LOADERS.get(cf.path.suffix.lower())
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
        why = f"could not be read ({type(exc).__name__}: {exc})"
        log.warning("%s: %s", cf.rel, why)
        log.info("the error reading %s, in full:", cf.rel, exc_info=True)
        raise LoadError(why) from exc
    base_id = meta.get("id") or re.sub(r"\.[^./]+$", "", cf.rel)
    linked = translation_links(catalog).get(base_id, ())
    docs = []
    for entry in loaded:
        entry_id, title_guess, text = entry.entry_id, entry.title, entry.text
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
                jurisdiction=meta.get("jurisdiction", ""),
                doc_type=meta.get("type", ""),
                status=meta.get("status", ""),
                licence=meta.get("licence", ""),
                pages=entry.pages,
                ocr=entry.ocr,
                translations=tuple(f"{x}/{entry_id}" if entry_id else x for x in linked),
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
