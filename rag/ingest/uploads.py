"""Adding and removing corpus files from the app: safe names that never overwrite, size limits,
removal confined to the corpus folder."""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

from rag.ingest.corpus import SIDECAR_SUFFIX, is_ignored
from rag.ingest.formats import LoadError

log = logging.getLogger(__name__)


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
