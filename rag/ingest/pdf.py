"""PDF files → cleaned text with page offsets (``Entry.pages``: where each physical page starts).

Layout noise goes before the text is used: running headers and footers, bare page numbers,
hyphenation at line ends, CJK text spaced out by the extractor. A scan (no page, or almost none,
has text) is read with the Tesseract command line where it is installed: pages rendered by
poppler's ``pdftoppm`` (without it, each page's largest embedded image), a time limit per page.
Without Tesseract the file is skipped with a reason that says what to install
(:mod:`rag.ingest.ocr`).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from pathlib import Path
from typing import Any

from rag.ingest.clean import clean_paragraphs, normalise_ws
from rag.ingest.formats import Entry, Loaded, LoadError
from rag.ingest.ocr import clean_title, ocr_pages

log = logging.getLogger(__name__)

# --- layout noise: small pure functions over a page's lines ---------------------------------

EDGE_LINES = 3  # lines at the top and bottom of a page where headers, footers and numbers sit
RUNNING_ZONE = 5  # lines from each edge whose repeats are counted (a header can take 4 lines)
RUNNING_SHARE = 0.4  # a line on this share of pages, at an edge, is a running header or footer

_ROMAN = r"(?=[ivxlcdm])m{0,3}(?:c[md]|d?c{0,3})(?:x[cl]|l?x{0,3})(?:i[xv]|v?i{0,3})"
_PAGE_NUMBER = re.compile(
    rf"""^[\s\-–—_|·•]*
    (?:(?:page|p\.|pg\.?|seite|página|pagina|sida|side|blz\.?|第)\s*)?
    (?:\d{{1,4}}|{_ROMAN})
    (?:\s*(?:/|of|von|de|di|av|van|sur|из)\s*\d{{1,4}})?
    \s*(?:页|頁)?(?:\s*共\s*\d{{1,4}}\s*页)?
    [\s\-–—_|·•]*$""",
    re.IGNORECASE | re.VERBOSE,
)
# Han, CJK symbols and punctuation, kana, fullwidth forms: scripts written without spaces.
# Hangul is not among them: Korean puts spaces between words.
_CJK = (
    "[\u2e80-\u2fdf\u3000-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff01-\uff60]"
)
_CJK_SPACE = re.compile(f"(?<={_CJK}) (?={_CJK})")
_SPACED_RUN = re.compile(r"(?<!\S)\S(?: \S){2,}(?!\S)")  # "2 0 2 4 年" : single characters
_HYPHEN_BREAK = re.compile(r"([^\W_])([-\u00ad])[ \t]*\n[ \t]*(?=([^\W_]))")
_COMPOUND = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)+")
_STRAY = re.compile(rf"(?!{_CJK})[^\W\d_]|[^\w\s]{{1,2}}")  # alone on a line: "O", "•", not "安"
_BULLETS = set("●•▪◦■□➢►▶✓")
_TERMINAL = re.compile(r"[.!?。！？:]$")


def is_page_number(line: str) -> bool:
    """A line that is only a page number: "12", "- 12 -", "Page 12 of 40", "12 / 40", "iv"."""
    return bool(line.strip()) and bool(_PAGE_NUMBER.match(line))


def line_key(line: str) -> str:
    """What repeats of a running header share: whitespace collapsed, digit runs as ``#``."""
    return re.sub(r"\d+", "#", normalise_ws(line))


def running_lines(pages: list[list[str]]) -> set[str]:
    """Keys (:func:`line_key`) of lines near a page edge that repeat on ≥ 40 % of the pages of a
    document of ≥ 4 pages (or on ≥ 40 % of its odd or of its even pages, 3 at least: a book's
    left and right headers): running headers and footers ("PAGE 3-SENATE BILL 24-205")."""
    if len(pages) < 4:
        return set()
    counts: list[Counter[str]] = [Counter(), Counter()]  # on odd pages, on even pages
    for n, lines in enumerate(pages):
        filled = [ln for ln in lines if ln.strip()]
        counts[n % 2].update(
            {line_key(ln) for ln in filled[:RUNNING_ZONE] + filled[-RUNNING_ZONE:]}
        )
    need = max(2.0, RUNNING_SHARE * len(pages))
    keys = {k for k, n in (counts[0] + counts[1]).items() if n >= need}
    for side in (0, 1):
        need_side = max(3.0, RUNNING_SHARE * len(pages[side::2]))
        keys |= {k for k, n in counts[side].items() if n >= need_side}
    return keys - {""}


def strip_layout_noise(lines: list[str], running: set[str]) -> list[str]:
    """Drop running headers/footers, page numbers and stray marks ("O", "•") from the edges of
    one page. From each edge, lines are dropped while they are noise; up to :data:`EDGE_LINES`
    other lines are passed over on the way (a header may sit below the page's first line). A page
    number stands alone: a column of digits ("2", "0", "2", "4" down a cover) is text."""
    filled = [i for i, ln in enumerate(lines) if ln.strip()]
    num = [is_page_number(lines[i]) for i in filled] + [False]  # [-1] is past either end
    drop: set[int] = set()
    for order in (range(len(filled)), range(len(filled) - 1, -1, -1)):
        passed = 0
        for k in order:
            line = lines[filled[k]]
            lone_number = num[k] and not num[k - 1] and not num[k + 1]
            header = not num[k] and line_key(line) in running
            if lone_number or header or _STRAY.fullmatch(line.strip()):
                drop.add(filled[k])
            elif (passed := passed + 1) >= EDGE_LINES:
                break
    return [ln for i, ln in enumerate(lines) if i not in drop]


def hyphenated_compounds(text: str) -> set[str]:
    """Lower-cased hyphenated words written on one line somewhere in ``text`` ("well-known")."""
    return {m.group(0).lower() for m in _COMPOUND.finditer(text)}


def dehyphenate(text: str, compounds: frozenset[str] | set[str] = frozenset()) -> str:
    """Join words broken at a line end: ``"regu-\\nlation"`` → ``"regulation"`` when lowercase
    letters stand on both sides (or the hyphen is a soft one); otherwise the hyphen is real and
    stays, only the line break goes (``"AI-\\nbased"`` → ``"AI-based"``, ``"2023-\\n24"`` →
    ``"2023-24"``). A compound written whole elsewhere in the document (``compounds``:
    "high-risk") keeps its hyphen too."""

    def join(m: re.Match[str]) -> str:
        before, after = m.group(1), m.group(3)
        if m.group(2) == "\u00ad":
            return before
        if before.islower() and after.islower():
            start = m.start(1)
            while start > 0 and text[start - 1].isalpha():
                start -= 1
            end = m.end()
            while end < len(text) and text[end].isalpha():
                end += 1
            head, tail = text[start : m.start(1)] + before, text[m.end() : end]
            if f"{head}-{tail}".lower() not in compounds:
                return before
        return before + "-"

    return _HYPHEN_BREAK.sub(join, text)


def join_cjk_spaces(text: str) -> str:
    """Remove the spaces an extractor (or OCR) puts between CJK characters:
    ``"人 工 智 能 安 全"`` → ``"人工智能安全"``; a spaced-out run of single characters that holds
    CJK is closed up too (``"2 0 2 4 年 9 月"`` → ``"2024年9月"``). Korean keeps its spaces."""
    text = _SPACED_RUN.sub(
        lambda m: m.group(0).replace(" ", "") if re.search(_CJK, m.group(0)) else m.group(0), text
    )
    return _CJK_SPACE.sub("", text)


def reflow_page(page: str, width: int = 0) -> list[str]:
    """PDF text comes hard-wrapped: a paragraph ends at a blank line, after a short line that ends
    a sentence or a very short one followed by a long one (a heading; runs of short lines, lists,
    signatures, text set vertically, stay together), before a bullet and an indented line (where
    most lines are not indented) and at a rule line (no letters or digits: "_____"). Lines are
    joined with a space, CJK lines without one. ``width``: the document's line width."""
    lines = [ln.rstrip() for ln in page.splitlines()]
    filled = [ln for ln in lines if ln.strip()]
    width = width or max((len(ln) for ln in filled), default=0)
    indents = sum(1 for ln in filled if ln[:1].isspace())
    indent_starts = 0 < indents < 0.5 * len(filled)
    paras: list[str] = []
    cur: list[str] = []

    def close() -> None:
        if cur:
            paras.append(join_cjk_spaces(normalise_ws(" ".join(cur))))
            cur.clear()

    for line, after in zip(lines, [*lines[1:], ""][: len(lines)], strict=True):
        if not line.strip() or not re.search(r"[^\W_]", line):
            close()
            continue
        if (indent_starts and line[:1].isspace()) or line.lstrip()[:1] in _BULLETS:
            close()
        cur.append(line.strip())
        heading = 0.5 if len(after.rstrip()) >= 0.5 * width else 0  # before a long line
        if len(line) < (0.8 if _TERMINAL.search(line) else heading) * width:
            close()
    close()
    return paras


def clean_pages(raw_pages: list[str]) -> list[str]:
    """Each page's raw text → its cleaned text (``""`` for a page with nothing left)."""
    pages = [p.replace("\r\n", "\n").replace("\r", "\n").split("\n") for p in raw_pages]
    running = running_lines(pages)
    stripped = ["\n".join(strip_layout_noise(lines, running)) for lines in pages]
    compounds = hyphenated_compounds("\n".join(stripped))
    widths = sorted(max(len(ln.rstrip()) for ln in p.split("\n")) for p in stripped if p.strip())
    width = widths[len(widths) // 2] if widths else 0  # the median page's longest line
    joined = [dehyphenate(pg, compounds) for pg in stripped]
    paras = [(n, p) for n, pg in enumerate(joined) for p in reflow_page(pg, width)]
    kept = clean_paragraphs(p for _, p in paras)
    # ``kept`` is a subsequence of ``paras`` (equal texts, equal classes): one walk maps it back.
    out: list[list[str]] = [[] for _ in raw_pages]
    j = 0
    for n, p in paras:
        if j < len(kept) and kept[j].text == p:
            out[n].append(p)
            j += 1
    return ["\n\n".join(ps) for ps in out]


def join_pages(texts: list[str]) -> tuple[str, tuple[int, ...]]:
    """Cleaned page texts → (the document text, where page 1, 2, … starts in it). Pages are joined
    by a blank line; a page with no text starts where the next page with text starts."""
    text = "\n\n".join(t for t in texts if t)
    starts, pos = [], 0
    for t in texts:
        starts.append(min(pos, len(text)))
        pos += len(t) + 2 if t else 0
    return text, tuple(starts)


def is_scanned(texts: list[str]) -> bool:
    """(Almost) no page has text: at most one page in ten."""
    return sum(1 for t in texts if t) <= 0.1 * len(texts)


def load_pdf(path: Path) -> Loaded:
    """The PDF as one :class:`Entry` with page offsets; OCR'd (``ocr=True``) when it is a scan."""
    raw, meta = _read(path)
    if not raw:
        raise LoadError("PDF has no pages")
    texts = clean_pages(raw)
    ocr = False
    if is_scanned(texts):
        raw = ocr_pages(path, raw, texts, meta)
        texts = clean_pages(raw)
        ocr = True
        if not any(texts):
            raise LoadError(f"no text layer (scanned?); OCR found no text on its {len(raw)} pages")
    text, pages = join_pages(texts)
    return [Entry("", clean_title(meta.get("title")), text, pages, ocr)]


def _read(path: Path) -> tuple[list[str], dict[str, Any]]:
    """The raw text of each page, and metadata (title, subject, /Lang; the reader itself)."""
    from pypdf import PdfReader

    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted and not reader.decrypt(""):
            raise LoadError("PDF is encrypted with a password")
        raw = [page.extract_text() or "" for page in reader.pages]
        info = reader.metadata
        meta: dict[str, Any] = {
            "title": info.title if info else None,
            "subject": info.subject if info else None,
            "lang": reader.root_object.get("/Lang"),
            "reader": reader,
        }
    except LoadError:
        raise
    except Exception as exc:  # pypdf raises many kinds of error on damaged files
        raise LoadError(f"not a readable PDF ({type(exc).__name__}: {exc})") from exc
    return raw, meta
