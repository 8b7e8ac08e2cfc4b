"""Adding and removing corpus files from the app: safe names that never overwrite, size limits,
no second copy of a file already in the corpus, a metadata sidecar from the upload form, removal
confined to the corpus folder, and the discarding of uploads that could not be indexed."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import shutil
from collections.abc import Iterable
from pathlib import Path

from rag.ingest.corpus import SIDECAR_SUFFIX, file_sha256, is_ignored
from rag.ingest.formats import LoadError

log = logging.getLogger(__name__)


UPLOAD_DIR = "uploads"
UPLOAD_SUFFIXES = (".txt", ".md", ".html", ".htm", ".pdf", ".docx")
DATE_HINT = "use YYYY, YYYY-MM or YYYY-MM-DD, e.g. 2024-05"
_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")


class DuplicateUpload(LoadError):
    """The uploaded bytes are already in the corpus, as ``existing`` (relative to the corpus)."""

    def __init__(self, original_name: str, existing: str) -> None:
        super().__init__(f"{original_name}: already in the corpus as {existing}")
        self.existing = existing


def date_problem(value: str) -> str:
    """ "" for a date the filters and the metadata accept (``YYYY``, ``YYYY-MM``, ``YYYY-MM-DD``,
    a real month and day), else what to type instead, for a person."""
    m = _DATE.match(value.strip())
    if not m:
        return DATE_HINT
    year, month, day = (int(g) if g else 0 for g in m.groups())
    try:
        dt.date(year, month or 1, day or 1)
    except ValueError:
        return f"{value.strip()} is not a real {'day' if day else 'month'}; {DATE_HINT}"
    return ""


def upload_metadata(
    title: str = "",
    source: str = "",
    date: str = "",
    lang: str = "",
    jurisdiction: str = "",
    doc_type: str = "",
) -> dict[str, str]:
    """The upload form's fields as sidecar metadata (empty fields left out); a field a person must
    correct raises LoadError naming it."""
    clean = {k: " ".join((v or "").split())[:300]
             for k, v in (("title", title), ("source", source), ("date", date), ("lang", lang),
                          ("jurisdiction", jurisdiction), ("type", doc_type))}  # fmt: skip
    clean["lang"] = clean["lang"].lower()
    clean["jurisdiction"] = clean["jurisdiction"].upper()
    clean["type"] = clean["type"].lower()
    if clean["date"] and (problem := date_problem(clean["date"])):
        raise LoadError(f"Date: {problem}")
    if clean["lang"] and not re.fullmatch(r"[a-z]{2}", clean["lang"]):
        raise LoadError("Language: use a two-letter ISO 639-1 code, e.g. en, sv or zh")
    if clean["jurisdiction"] and not re.fullmatch(
        r"[A-Z]{2}(-[A-Z0-9]{1,3})?|EU|INT", clean["jurisdiction"]
    ):
        raise LoadError(
            "Jurisdiction: use a two-letter ISO 3166-1 code (SE, CN), a subdivision (US-CO), "
            "EU or INT"
        )
    return {k: v for k, v in clean.items() if v}


def write_sidecar(corpus_dir: Path, rel: str, meta: dict[str, str]) -> str:
    """Write ``meta`` as the ``<file name>.meta.json`` sidecar of corpus file ``rel``; its rel."""
    path = corpus_dir / rel
    sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
    sidecar.write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return sidecar.relative_to(corpus_dir).as_posix()


def find_copy(corpus_dir: Path, src: Path) -> str:
    """The corpus file (rel) holding exactly the bytes of ``src`` (sha256), or ""; files that are
    never indexed (README, sidecars, hidden) do not count."""
    root = corpus_dir.resolve()
    if not root.is_dir():
        return ""
    size, digest = src.stat().st_size, ""
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if is_ignored(rel) or path.is_symlink() or not path.is_file():
            continue
        if path.stat().st_size == size:
            digest = digest or file_sha256(src)
            if file_sha256(path) == digest:
                return rel.as_posix()
    return ""


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

    Refuses other types, files over ``max_mb`` and (:class:`DuplicateUpload`) bytes already in
    the corpus; never overwrites an existing file.
    """

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
    if existing := find_copy(corpus_dir, src):
        raise DuplicateUpload(original_name, existing)
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


def discard_failed(
    corpus_dir: Path, skipped: Iterable[tuple[str, str]], indexed: set[str]
) -> list[tuple[str, str]]:
    """Delete the uploads an ingest skipped (``(rel, reason)``) and never indexed, so that none
    stays behind unremovable and re-reported; return the ``(rel, reason)`` of each one deleted."""
    gone = []
    for rel, reason in skipped:
        if rel.startswith(f"{UPLOAD_DIR}/") and rel not in indexed and (corpus_dir / rel).is_file():
            remove_file(corpus_dir, rel)
            gone.append((rel, reason))
    return gone
