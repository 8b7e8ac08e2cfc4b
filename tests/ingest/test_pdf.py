"""PDFs as PDFs: page offsets, layout noise (headers, footers, page numbers, hyphenation, spaced
CJK) and scans (a clear skip reason without Tesseract, OCR with it)."""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from rag.ingest import ocr, pdf
from rag.ingest.corpus import CorpusFile, load_file
from rag.ingest.formats import LOADERS, LoadError
from rag.ingest.ocr import choose_languages, language_hints
from rag.ingest.pdf import (
    dehyphenate,
    is_page_number,
    is_scanned,
    join_cjk_spaces,
    join_pages,
    line_key,
    reflow_page,
    running_lines,
    strip_layout_noise,
)
from rag.types import page_at

CORPUS = Path(__file__).parents[2] / "corpus"
SCAN = CORPUS / "china/CN_genai_interim_measures_2023_scan.zh.pdf"
TESSERACT = shutil.which("tesseract")


def text_pdf(pages: list[list[str]]) -> bytes:
    """A valid PDF with one page per list of lines (Helvetica, Latin-1), no PDF library needed."""
    objs = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    }
    kids = []
    for n, lines in enumerate(pages):
        page_id, content_id = 4 + 2 * n, 5 + 2 * n
        ops = []
        for i, line in enumerate(lines):
            esc = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            ops.append(f"BT /F1 11 Tf 72 {760 - 14 * i} Td ({esc}) Tj ET")
        stream = "\n".join(ops).encode("latin-1")
        kids.append(b"%d 0 R" % page_id)
        objs[page_id] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
            b"/Resources << /Font << /F1 3 0 R >> >> >>" % content_id
        )
        objs[content_id] = b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream"
    objs[2] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(kids), len(kids))
    out = bytearray(b"%PDF-1.4\n")
    offsets = {}
    for i in sorted(objs):
        offsets[i] = len(out)
        out += b"%d 0 obj\n" % i + objs[i] + b"\nendobj\n"
    xref, size = len(out), max(objs) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    out += b"".join(b"%010d 00000 n \n" % offsets[i] for i in range(1, size))
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, xref)
    return bytes(out)


def scan_pdf(path: Path, pages: list[list[str]]) -> Path:
    """An image-only PDF (one grey image per page, no text layer), as a scanner makes it."""
    image_mod = pytest.importorskip("PIL.Image")
    from PIL import ImageDraw, ImageFont

    font = ImageFont.load_default(size=36)
    images = []
    for lines in pages:
        im = image_mod.new("L", (1400, 120 + 60 * len(lines)), 255)
        draw = ImageDraw.Draw(im)
        for i, line in enumerate(lines):
            draw.text((60, 60 + 60 * i), line, fill=0, font=font)
        images.append(im)
    images[0].save(path, save_all=True, append_images=images[1:], resolution=200)
    return path


def check_pages(text: str, pages: tuple[int, ...], n_pages: int) -> None:
    assert len(pages) == n_pages and pages[0] == 0
    assert all(a <= b for a, b in itertools.pairwise(pages))
    assert all(p <= len(text) for p in pages)


# --- the pure functions ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    ["12", " - 12 - ", "Page 12", "page 12 of 40", "12 / 40", "2/8", "— 3 —", "iv", "第 3 页"],
)
def test_page_numbers(line: str) -> None:
    assert is_page_number(line)


@pytest.mark.parametrize(
    "line",
    [
        "",
        "12 apples",
        "Article 12",
        "2024-05-01",
        "civil",
        "PAGE 2-SENATE BILL 24-205",
        "A/RES/78/265",
    ],
)
def test_not_page_numbers(line: str) -> None:
    assert not is_page_number(line)


def test_line_key_replaces_digit_runs() -> None:
    assert line_key(" PAGE 12-SENATE  BILL 24-205 ") == "PAGE #-SENATE BILL #-#"


def test_running_lines_repeat_at_the_edges() -> None:
    pages = [
        [
            "Report on AI rules 2024",
            f"Body text number {n} about models.",
            "More body.",
            f"Page {n}",
        ]
        for n in range(1, 6)
    ]
    pages[2].insert(2, "A line seen once.")
    keys = running_lines(pages)
    assert "Report on AI rules #" in keys and "Page #" in keys
    assert "A line seen once." not in keys
    assert running_lines(pages[:3]) == set()  # fewer than 4 pages: nothing is running


def test_running_lines_on_odd_or_even_pages_only() -> None:
    pages = [[f"Left header {n}" if n % 2 else "Right header", "Body."] for n in range(8)]
    pages[0] = ["Title page", "Body."]
    keys = running_lines(pages)
    assert {"Left header #", "Right header"} <= keys  # 4 of 8 and 3 of 8 (3 of the 4 odd ones)


def test_strip_layout_noise() -> None:
    lines = [
        "- 7 -",
        "Report on AI rules",
        "Real first line.",
        "Real last line.",
        "O",
        "Page 7 of 9",
    ]
    assert strip_layout_noise(lines, {"Report on AI rules"}) == [
        "Real first line.",
        "Real last line.",
    ]
    # A column of digits down a cover is text, not page numbers; CJK characters are not strays.
    cover = ["全 国 网 络", "2", "0", "2", "4", "年", "9", "月", "安", "全"]
    assert strip_layout_noise(cover, set()) == cover
    # The edge is only a few lines deep: a number in the middle of a page stays.
    body = ["One.", "Two.", "Three.", "Four.", "12", "Five.", "Six.", "Seven.", "Eight."]
    assert strip_layout_noise(body, set()) == body


@pytest.mark.parametrize(
    ("raw", "joined"),
    [
        ("the regu-\nlation applies", "the regulation applies"),
        ("AI-\nbased systems", "AI-based systems"),
        ("General-\nPurpose AI", "General-Purpose AI"),
        ("in 2023-\n24 the", "in 2023-24 the"),
        ("a soft\u00ad\nhyphen", "a softhyphen"),
        ("a dash -\nthen more", "a dash -\nthen more"),
        ("item-\n(b) next", "item-\n(b) next"),
    ],
)
def test_dehyphenate(raw: str, joined: str) -> None:
    assert dehyphenate(raw) == joined


def test_dehyphenate_keeps_compounds_the_document_writes_whole() -> None:
    text = "high-risk systems are listed; every high-\nrisk system is registered"
    assert dehyphenate(text, pdf.hyphenated_compounds(text)).endswith(
        "every high-risk system is registered"
    )
    assert dehyphenate("every high-\nrisk system") == "every highrisk system"


@pytest.mark.parametrize(
    ("raw", "joined"),
    [
        ("人 工 智 能 安 全", "人工智能安全"),
        ("2 0 2 4 年 9 月", "2024年9月"),
        ("第 3 条 规定", "第3条规定"),
        ("（ a ） 建 立", "（a）建立"),
        ("人工智能 (AI) 安全", "人工智能 (AI) 安全"),
        ("인공지능 기본법 제 1 조", "인공지능 기본법 제 1 조"),  # Korean puts spaces between words
        ("a b c d", "a b c d"),
        ("AI 安全 framework", "AI 安全 framework"),
    ],
)
def test_join_cjk_spaces(raw: str, joined: str) -> None:
    assert join_cjk_spaces(raw) == joined


def test_reflow_page() -> None:
    page = "\n".join(
        [
            "1. Principles",
            "Providers of general-purpose models shall keep technical documentation up to date and",
            "make it available to the AI Office on request.",
            "Signed by",
            "Jane Doe",
            "Chair",
            "____________________",
            "1 A footnote that belongs on its own at the foot of the page, after the rule line.",
            "● First bullet item that runs long enough to be a full line of this page's text",
            "● Second bullet item",
        ]
    )
    assert reflow_page(page) == [
        "1. Principles",
        "Providers of general-purpose models shall keep technical documentation up to date and "
        "make it available to the AI Office on request.",
        "Signed by Jane Doe Chair",
        "1 A footnote that belongs on its own at the foot of the page, after the rule line.",
        "● First bullet item that runs long enough to be a full line of this page's text",
        "● Second bullet item",
    ]
    assert reflow_page("人工智能是人类发展新领域，给世界带来巨大机遇，也带来\n各类风险挑战。") == [
        "人工智能是人类发展新领域，给世界带来巨大机遇，也带来各类风险挑战。"
    ]
    # Indented lines start paragraphs where most lines are not indented (the UN's layout).
    un = [
        " Recalling its resolution 70/1 of 25 September 2015, entitled",
        "the 2030 Agenda for Sustainable Development, and its resolution",
        "69/313 of 27 July 2015,",
        " Taking note of the efforts of the International Telecommunication",
        "Union, in partnership with 40 United Nations bodies, to convene",
        "the Artificial Intelligence for Good platform,",
    ]
    assert reflow_page("\n".join(un)) == [
        "Recalling its resolution 70/1 of 25 September 2015, entitled the 2030 Agenda for Sustainable Development, and its resolution 69/313 of 27 July 2015,",
        "Taking note of the efforts of the International Telecommunication Union, in partnership with 40 United Nations bodies, to convene the Artificial Intelligence for Good platform,",
    ]


def test_join_pages_gives_empty_pages_the_next_pages_start() -> None:
    assert join_pages(["aa", "", "bbb", ""]) == ("aa\n\nbbb", (0, 4, 4, 7))
    assert join_pages(["", "aa"]) == ("aa", (0, 0))
    assert join_pages(["", ""]) == ("", (0, 0))
    text, pages = join_pages(["one", "two", "", "four"])
    assert [page_at(pages, text.index(w)) for w in ("one", "two", "four")] == [1, 2, 4]


def test_is_scanned() -> None:
    assert is_scanned(["", "", ""]) and is_scanned(["cover"] + [""] * 9)
    assert not is_scanned(["text", ""]) and not is_scanned(["a", "b"] + [""] * 8)


def test_ocr_languages() -> None:
    installed = ("chi_sim", "deu", "eng", "fra", "spa")
    assert choose_languages(installed, ["zh"]) == "chi_sim+eng"
    assert choose_languages(("chi_tra", "eng"), ["zh"]) == "chi_tra+eng"
    assert choose_languages(installed, ["en"]) == "eng"
    assert choose_languages(installed, ["ko"]) == "eng+chi_sim+deu"  # not installed: the defaults
    assert choose_languages(installed, []) == "eng+chi_sim+deu"
    assert choose_languages(("chi_sim",), []) == "chi_sim"
    assert language_hints(Path("CN_measures_scan.zh.pdf"), {}) == ["zh"]
    assert language_hints(Path("scan.pdf"), {"lang": "zh-CN"}) == ["zh"]
    assert language_hints(Path("生成式人工智能.pdf"), {}) == ["zh"]
    assert language_hints(Path("report_v1.pdf"), {"title": "Rapport"}) == []


# --- generated PDFs ---------------------------------------------------------------------------


def test_pages_of_a_generated_pdf(tmp_path: Path) -> None:
    body = {
        1: ["Providers must register their models before they are placed on the market, and the",
            "regu-", "lation applies to every provider in the Union from next year onwards, in full."],
        2: ["Deployers keep the logs that the system generates for at least six months, unless",
            "other law says otherwise, and they show them to the authority when it asks for them."],
        3: [],
        4: ["Fines for breaches reach seven per cent of annual turnover for the worst cases, and",
            "three per cent for the other obligations that this regulation sets out in its text."],
        5: ["The regulation enters into force on the twentieth day after its publication today."],
    }  # fmt: skip
    lines = [
        (["Report on AI rules 2024", *b, f"Page {n} of 5"] if b else []) for n, b in body.items()
    ]
    path = tmp_path / "report.en.pdf"
    path.write_bytes(text_pdf(lines))
    [entry] = LOADERS[".pdf"](path)
    text, pages = entry.text, entry.pages
    check_pages(text, pages, 5)
    assert not entry.ocr
    assert "Report on AI rules" not in text and "Page 1 of 5" not in text and "of 5" not in text
    assert "the regulation applies to every provider" in text
    for n, words in [(1, "Providers must register"), (2, "Deployers keep the logs"),
                     (4, "Fines for breaches"), (5, "enters into force")]:  # fmt: skip
        assert page_at(pages, text.index(words)) == n
    assert pages[2] == pages[3]  # page 3 is empty: it starts where page 4 does
    assert text[pages[3] :].startswith("Fines for breaches")
    # and through the corpus loader, as the ingest sees it
    [doc] = load_file(CorpusFile(path, path.name), {})
    assert doc.pages == pages and doc.page_at(doc.text.index("enters into force")) == 5


def test_a_scan_without_tesseract_is_skipped_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "scan.pdf"
    path.write_bytes(text_pdf([[], []]))  # pages without text, as a scan has
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    with pytest.raises(LoadError) as err:
        load_file(CorpusFile(path, path.name), {})
    assert str(err.value) == ocr.NO_TESSERACT
    assert str(err.value).startswith("no text layer (scanned?): install Tesseract")


def _has_languages(*names: str) -> bool:
    if not TESSERACT:
        return False
    out = subprocess.run([TESSERACT, "--list-langs"], capture_output=True, text=True, check=False)
    return set(names) <= set((out.stdout + out.stderr).split())


needs_tesseract_eng = pytest.mark.skipif(
    not _has_languages("eng"), reason="tesseract with English (tesseract-ocr) is not installed"
)


@needs_tesseract_eng
@pytest.mark.parametrize("renderer", ["pdftoppm", "embedded image"])
def test_a_generated_scan_is_read_by_ocr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, renderer: str
) -> None:
    if renderer == "pdftoppm" and not shutil.which("pdftoppm"):
        pytest.skip("poppler-utils (pdftoppm) is not installed")
    if renderer == "embedded image":
        which = shutil.which
        monkeypatch.setattr(
            shutil, "which", lambda n, *a, **k: None if n == "pdftoppm" else which(n)
        )
    path = scan_pdf(
        tmp_path / "scan.en.pdf",
        [["Providers must label synthetic content."], ["Deployers keep records for three years."]],
    )
    [entry] = LOADERS[".pdf"](path)
    assert entry.ocr
    check_pages(entry.text, entry.pages, 2)
    assert page_at(entry.pages, entry.text.index("label synthetic content")) == 1
    assert page_at(entry.pages, entry.text.index("keep records for three years")) == 2


# --- the shipped PDFs (copies under corpus/) -----------------------------------------------------


@pytest.mark.skipif(not SCAN.exists(), reason=f"{SCAN.relative_to(CORPUS)} is not in the corpus")
@pytest.mark.skipif(
    not _has_languages("chi_sim"),
    reason="tesseract with chi_sim (tesseract-ocr-chi-sim) is not installed",
)
@pytest.mark.skipif(
    not shutil.which("pdftoppm"),
    reason="the shipped scan draws its glyphs as outlines, no images: it needs poppler's pdftoppm",
)
def test_the_shipped_scan_reads_as_chinese() -> None:
    [doc] = load_file(CorpusFile(SCAN, SCAN.relative_to(CORPUS).as_posix()), {})
    assert doc.ocr and doc.lang == "zh"
    check_pages(doc.text, doc.pages, 3)
    assert "生成式人工智能" in doc.text
    assert doc.page_at(doc.text.index("第一章")) == 1
    assert doc.page_at(doc.text.index("第二十四条")) == 3
    assert not re.search(f"{pdf._CJK} {pdf._CJK}", doc.text)  # no spaces between CJK characters


# Phrases found by hand, page by page, in pypdf's text of each PDF (the page is the physical one:
# the TC260 framework's page 11 is printed "- 9 -").
REAL_PAGES = [
    ("int/INT_un_ga_resolution_78_265_2024.en.pdf", [
        ("Reaffirming international law, in particular the Charter of the United Nations", 1),
        ("Resolves to bridge the artificial intelligence and other digital divides", 3),
        ("Safeguarding privacy and the protection of personal data when testing and evaluating systems", 6),
    ]),
    ("us/US-CO_sb24_205_consumer_ai_act_2024.en.pdf", [
        ("CONCERNING CONSUMER PROTECTIONS IN INTERACTIONS WITH ARTIFICIAL INTELLIGENCE SYSTEMS.", 1),
        ('"CONSUMER" MEANS AN INDIVIDUAL WHO IS A COLORADO RESIDENT.', 3),
        ("NOTHING IN THIS PART 17 IMPOSES ANY OBLIGATION ON A DEVELOPER", 20),
    ]),
    ("china/CN_tc260_ai_safety_governance_framework_v1_2024.zh.pdf", [
        ("人工智能安全治理框架", 1),
        ("防止被用于核生化导等大规模杀伤性武器制造等高危场景", 11),
        ("商用版本应可以回退到以前的商用版本", 15),
    ]),
]  # fmt: skip


@pytest.mark.parametrize(("rel", "phrases"), REAL_PAGES, ids=[r for r, _ in REAL_PAGES])
def test_phrases_map_to_their_pages(rel: str, phrases: list[tuple[str, int]]) -> None:
    path = CORPUS / rel
    assert path.exists(), f"{rel} ships in corpus/ (catalog.jsonl lists it)"
    [doc] = load_file(CorpusFile(path, rel), {})
    from pypdf import PdfReader

    check_pages(doc.text, doc.pages, len(PdfReader(str(path)).pages))
    assert not doc.ocr
    for phrase, page in phrases:
        assert doc.page_at(doc.text.index(phrase)) == page, phrase
    # running headers and footers are gone
    assert "SENATE BILL 24-205\n" not in doc.text[100:] and "- 9 -" not in doc.text


@needs_tesseract_eng
def test_ocr_past_its_time_leaves_the_page_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = scan_pdf(tmp_path / "slow.en.pdf", [["Providers must label synthetic content."]])
    monkeypatch.setattr(ocr, "OCR_TIMEOUT_S", 0.001)
    with pytest.raises(LoadError, match="OCR found no text"):
        LOADERS[".pdf"](path)


def test_ocr_pages_run_in_parallel_and_come_back_in_page_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages are read by OCR concurrently (one Tesseract per core, with pdftoppm); the later
    pages finish first here, and a page without an image stays as it was."""
    import threading
    import time

    seen_threads: set[str] = set()

    def page_image(
        reader: object, path: Path, n: int, tmp: Path, pdftoppm: str | None
    ) -> Path | None:
        if n == 3:
            return None  # not rendered
        image = tmp / f"page{n + 1}.png"
        image.write_bytes(b"x")
        return image

    def tesseract(exe: str, image: Path, langs: str, where: str) -> str:
        seen_threads.add(threading.current_thread().name)
        n = int(image.stem.removeprefix("page"))
        time.sleep(0.05 * (6 - n))  # page 1 slowest
        return f"OCR text of page {n}"

    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: f"/usr/bin/{name}")
    monkeypatch.setattr(ocr, "installed_languages", lambda exe: ("eng",))
    monkeypatch.setattr(ocr, "_page_image", page_image)
    monkeypatch.setattr(ocr, "_tesseract", tesseract)
    monkeypatch.setattr(ocr.os, "cpu_count", lambda: 2)
    texts = ["", "has text", "", "", ""]
    out = ocr.ocr_pages(tmp_path / "x.en.pdf", ["raw0", "raw1", "raw2", "raw3", "raw4"], texts,
                         {"reader": None})  # fmt: skip
    assert out == ["OCR text of page 1", "raw1", "OCR text of page 3", "raw3", "OCR text of page 5"]
    assert len(seen_threads) == 2  # two pages at a time on two cores
