"""Scanned PDF pages -> text, with the Tesseract command line (used by :mod:`rag.ingest.pdf`).

Pages are rendered by poppler's ``pdftoppm`` (without it, each page's largest embedded image is
used) and read in parallel, one single-threaded Tesseract per page, with a time limit per page.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import subprocess
import tempfile
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rag.ingest.clean import normalise_ws
from rag.ingest.formats import LoadError

log = logging.getLogger(__name__)


def clean_title(title: object) -> str:
    """The metadata title, or "" when it is missing or not text (control characters, U+FFFD)."""
    s = normalise_ws(str(title or ""))
    return "" if any(unicodedata.category(c) == "Cc" or c == "\ufffd" for c in s) else s


# --- OCR with the Tesseract command line ----------------------------------------------------

OCR_DPI = 200  # pages rendered for OCR; on the shipped scan 200 dpi read better than 300
#: Most pages read by OCR at once (one per core up to this; each Tesseract runs one thread and
#: holds its language models, ~100-200 MB).
OCR_WORKERS = 8
RENDER_TIMEOUT_S = 60  # per page: pdftoppm
OCR_TIMEOUT_S = 120  # per page: tesseract (one thread: about 4 s for a dense A4 page here)
OCR_MAX_LANGUAGES = 3
NO_TESSERACT = (
    "no text layer (scanned?): install Tesseract to read it with OCR "
    "(apt install tesseract-ocr tesseract-ocr-chi-sim …)"
)
# A document's language (ISO 639-1, from the file name, /Lang or the script of its metadata) →
# Tesseract's traineddata names, the first installed one is used.
TESSERACT_LANGS = {
    "en": ("eng",), "zh": ("chi_sim", "chi_tra"), "ja": ("jpn",), "ko": ("kor",),
    "de": ("deu",), "fr": ("fra",), "es": ("spa",), "pt": ("por",), "it": ("ita",),
    "nl": ("nld",), "sv": ("swe",), "da": ("dan",), "nb": ("nor",), "no": ("nor",),
    "fi": ("fin",), "pl": ("pol",),
}  # fmt: skip
_SCRIPTS = (("ja", "[\u3040-\u30ff]"), ("ko", "[\uac00-\ud7af]"), ("zh", "[\u4e00-\u9fff]"))


@functools.lru_cache(maxsize=4)
def installed_languages(tesseract: str) -> tuple[str, ...]:
    """``tesseract --list-langs`` without ``osd`` (script detection, not a language)."""
    try:
        cmd = [tesseract, "--list-langs"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        raise LoadError(f"tesseract does not run ({type(exc).__name__}: {exc})") from exc
    names = re.findall(r"^\s*([A-Za-z0-9_]+)\s*$", done.stdout + "\n" + done.stderr, re.M)
    return tuple(n for n in names if n not in ("osd", "equ"))


def language_hints(path: Path, meta: dict[str, Any]) -> list[str]:
    """ISO 639-1 codes the file suggests: a tag in its name (``x.zh.pdf``, ``x_de.pdf``), the
    catalog's ``/Lang`` (``zh-CN``), the script of the file name or metadata title (Han → zh)."""
    hints: list[str] = []
    m = re.search(r"[._-]([a-z]{2})(?:[-_][A-Za-z]{2})?$", path.stem)
    if m and m.group(1) in TESSERACT_LANGS:
        hints.append(m.group(1))
    lang = str(meta.get("lang") or "")[:2].lower()
    if lang in TESSERACT_LANGS:
        hints.append(lang)
    seen = " ".join([path.name, clean_title(meta.get("title")), clean_title(meta.get("subject"))])
    hints += [code for code, script in _SCRIPTS if re.search(script, seen)]
    return list(dict.fromkeys(hints))


def choose_languages(installed: tuple[str, ...], hints: list[str]) -> str:
    """Tesseract's ``-l``: the hinted languages that are installed, plus English (documents in
    any language quote English names); with no usable hint, the installed languages, English first,
    up to :data:`OCR_MAX_LANGUAGES` (more languages read slower and mix scripts up)."""
    names = [next((n for n in TESSERACT_LANGS[c] if n in installed), "") for c in hints]
    chosen = [n for n in names if n]
    if chosen:
        chosen += ["eng"] if "eng" in installed else []
    else:
        chosen = sorted(installed, key=lambda n: (n != "eng", n))[:OCR_MAX_LANGUAGES]
    return "+".join(dict.fromkeys(chosen))


def ocr_pages(path: Path, raw: list[str], texts: list[str], meta: dict[str, Any]) -> list[str]:
    """The raw pages with each page that has no text replaced by its OCR text."""
    tesseract = shutil.which("tesseract")
    if not tesseract:
        raise LoadError(NO_TESSERACT)
    installed = installed_languages(tesseract)
    if not installed:
        raise LoadError("no text layer (scanned?) and Tesseract has no languages installed")
    langs = choose_languages(installed, language_hints(path, meta))
    pdftoppm = shutil.which("pdftoppm")
    out, seen = list(raw), 0
    todo = [n for n, text in enumerate(texts) if not text]
    with tempfile.TemporaryDirectory(prefix="govrag-ocr-") as tmp:

        def read_page(n: int) -> str | None:
            image = _page_image(meta["reader"], path, n, Path(tmp), pdftoppm)
            if image is None:
                return None
            log.info("%s: OCR of page %d/%d (%s)", path.name, n + 1, len(texts), langs)
            try:
                return _tesseract(tesseract, image, langs, f"{path.name} page {n + 1}")
            finally:
                image.unlink(missing_ok=True)

        # Tesseract runs one thread per page (see _tesseract), so pages go in parallel, one per
        # core; without pdftoppm the page images come from pypdf, which is not thread-safe.
        workers = min(len(todo), OCR_WORKERS, os.cpu_count() or 1) if pdftoppm else 1
        with ThreadPoolExecutor(max(1, workers), thread_name_prefix="govrag-ocr") as pool:
            for n, text in zip(todo, pool.map(read_page, todo), strict=True):
                if text is not None:
                    out[n] = text
                    seen += 1
    if not seen and not pdftoppm:
        raise LoadError(
            "no text layer (scanned?) and no page images to OCR: install poppler-utils (pdftoppm) "
            "to render the pages"
        )
    return out


def _page_image(reader: Any, path: Path, n: int, tmp: Path, pdftoppm: str | None) -> Path | None:
    """Page ``n`` (0-based) as an image file: rendered by pdftoppm, else its largest image."""
    if pdftoppm:
        root = tmp / f"page{n + 1}"
        cmd = [pdftoppm, "-r", str(OCR_DPI), "-gray", "-png", "-singlefile"]
        cmd += ["-f", str(n + 1), "-l", str(n + 1), str(path.absolute()), str(root)]
        try:
            subprocess.run(cmd, capture_output=True, timeout=RENDER_TIMEOUT_S, check=True)
        except (OSError, subprocess.SubprocessError) as exc:
            log.warning("%s: page %d not rendered for OCR (%s)", path.name, n + 1, exc)
            return None
        image = root.with_suffix(".png")
        return image if image.exists() else None
    return _embedded_image(reader, path, n, tmp)


def _embedded_image(reader: Any, path: Path, n: int, tmp: Path) -> Path | None:
    """The largest image on page ``n`` as a file Tesseract reads (pypdf; Pillow decodes)."""
    try:
        images = list(reader.pages[n].images)
        if not images:
            return None
        best = max(images, key=lambda im: len(im.data))
        image = tmp / f"page{n + 1}.png"
        best.image.convert("L").save(image)
        return image
    except Exception as exc:  # pypdf and Pillow raise many kinds of error on odd images
        log.warning("%s: no image of page %d for OCR (%r)", path.name, n + 1, exc)
        return None


def _tesseract(tesseract: str, image: Path, langs: str, where: str) -> str:
    """OCR one page image; "" (and a warning) when Tesseract fails or runs past its time."""
    # One thread: with OpenMP's threads on a busy machine a page took 6x longer.
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    cmd = [tesseract, str(image), "stdout", "-l", langs]
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=OCR_TIMEOUT_S, check=True, env=env)
    except subprocess.TimeoutExpired:
        log.warning("%s: OCR ran past %d s; the page is left empty", where, OCR_TIMEOUT_S)
        return ""
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("%s: OCR failed (%s)", where, exc)
        return ""
    return done.stdout.decode("utf-8", errors="replace").replace("\f", "\n")
