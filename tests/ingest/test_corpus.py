"""Loaders, metadata and bad input: every file indexes or is skipped with one clear reason."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from rag.ingest.corpus import CorpusFile, find_files, load_file, read_catalog
from rag.ingest.formats import LoadError, decode_text
from rag.ingest.uploads import UPLOAD_DIR
from tests.conftest import SHIPPED_CORPUS

ARTICLE = (
    "The regulator published draft rules for AI systems on Monday. Providers must register "
    "their models before launch.\n\nCritics said the rules could slow innovation, while "
    "supporters welcomed the clarity they bring to the market."
)


def minimal_pdf(text: str) -> bytes:
    """A valid one-page PDF with ``text`` in Helvetica (no PDF library needed)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def docx_bytes(tmp_path: Path, paragraphs: list[str], title: str = "") -> bytes:
    import docx

    document = docx.Document()
    document.core_properties.title = title
    for p in paragraphs:
        document.add_paragraph(p)
    path = tmp_path / "tmp.docx"
    document.save(str(path))
    return path.read_bytes()


def _load(corpus: Path, rel: str) -> list:
    return load_file(CorpusFile(corpus / rel, rel), read_catalog(corpus))


def test_txt_with_catalog_metadata(make_corpus: Callable[..., Path]) -> None:
    corpus = make_corpus({
        "news/a.txt": ARTICLE,
        "catalog.jsonl": json.dumps({"path": "news/a.txt", "title": "Draft rules", "source": "Wire",
                                     "date": "2024-05", "country": "SE", "url": "https://x.test/a"}),
    })  # fmt: skip
    [doc] = _load(corpus, "news/a.txt")
    assert doc.doc_id == "news/a" and doc.title == "Draft rules" and doc.lang == "en"
    assert (doc.source, doc.date, doc.jurisdiction, doc.url) == (
        "Wire",
        "2024-05",
        "SE",
        "https://x.test/a",
    )


def test_sidecar_overrides_catalog(make_corpus: Callable[..., Path]) -> None:
    corpus = make_corpus({
        "a.txt": ARTICLE,
        "a.txt.meta.json": json.dumps({"title": "From sidecar", "lang": "de"}),
        "catalog.jsonl": json.dumps({"path": "a.txt", "title": "From catalog", "source": "S"}),
    })  # fmt: skip
    [doc] = _load(corpus, "a.txt")
    assert (doc.title, doc.lang, doc.source) == ("From sidecar", "de", "S")


def test_bad_catalog_line_names_file_and_line(make_corpus: Callable[..., Path]) -> None:
    corpus = make_corpus({"catalog.jsonl": '{"path": "a.txt"}\n{oops\n'})
    with pytest.raises(ValueError, match=r"catalog.jsonl:2: not valid JSON"):
        read_catalog(corpus)


def test_bad_date_in_catalog_is_refused(make_corpus: Callable[..., Path]) -> None:
    corpus = make_corpus({"catalog.jsonl": '{"path": "a.txt", "date": "May 2024"}\n'})
    with pytest.raises(ValueError, match="YYYY"):
        read_catalog(corpus)


def test_markdown_heading_becomes_title(make_corpus: Callable[..., Path]) -> None:
    corpus = make_corpus(
        {
            "law.md": "# 管理规定\n\n<!-- INFO END -->\n\n## 第一章\n\n第一条 为了规范算法推荐活动，制定本规定。\n"
        }
    )
    [doc] = _load(corpus, "law.md")
    assert doc.title == "管理规定" and doc.lang == "zh"
    assert "INFO END" not in doc.text and "#" not in doc.text
    assert "第一条 为了规范算法推荐活动，制定本规定。" in doc.text


def test_html_main_text_without_navigation(make_corpus: Callable[..., Path]) -> None:
    html = (
        "<html><head><title>AI rules adopted</title></head><body>"
        "<nav><a href='/'>Home</a> <a href='/tech'>Tech</a> <a href='/login'>Log in</a></nav>"
        f"<article><h1>AI rules adopted</h1><p>{ARTICLE.replace(chr(10) * 2, '</p><p>')}</p></article>"
        "<footer>Subscribe to our newsletter. © 2024 Example Media</footer></body></html>"
    )
    corpus = make_corpus({"page.html": html})
    [doc] = _load(corpus, "page.html")
    assert doc.title == "AI rules adopted"
    assert "Providers must register their models before launch." in doc.text
    assert "Log in" not in doc.text and "Subscribe" not in doc.text


def test_pdf(make_corpus: Callable[..., Path]) -> None:
    corpus = make_corpus({"r.pdf": minimal_pdf("Providers must register models before launch.")})
    [doc] = _load(corpus, "r.pdf")
    assert "Providers must register models before launch." in doc.text


def test_docx(make_corpus: Callable[..., Path], tmp_path: Path) -> None:
    data = docx_bytes(tmp_path, ARTICLE.split("\n\n"), title="Memo")
    corpus = make_corpus({"m.docx": data})
    [doc] = _load(corpus, "m.docx")
    assert doc.title == "Memo" and "supporters welcomed the clarity" in doc.text


def test_structured_json_one_document_per_entry(make_corpus: Callable[..., Path]) -> None:
    data = {
        "article_005": {"id": "article_005", "title": "Article 5: Prohibited AI Practices",
                        "text_content": "1. The following AI practices shall be prohibited."},
        "recital_012": {"id": "recital_012", "text_content": "The notion of AI system should be clearly defined."},
    }  # fmt: skip
    corpus = make_corpus({
        "act/articles.json": json.dumps(data),
        "catalog.jsonl": json.dumps({"path": "act/articles.json", "id": "act", "title": "The Act"}),
    })  # fmt: skip
    docs = _load(corpus, "act/articles.json")
    assert [d.doc_id for d in docs] == ["act/article_005", "act/recital_012"]
    assert [d.title for d in docs] == [
        "The Act — Article 5: Prohibited AI Practices",
        "The Act — Recital 12",
    ]


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.txt", b"", "empty"),
        ("blank.txt", b"  \n\n ", "empty"),
        ("binary.txt", bytes(range(256)) * 20, "binary"),
        ("broken.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog", "not a readable PDF"),
        ("fake.docx", b"PK\x03\x04 this is not a zip", "not a readable .docx"),
        ("bad.json", b"{not json", "not valid JSON"),
        ("nothing.json", b'{"a": 1}', "no entries with a text field"),
        (
            "furniture.txt",
            b"Subscribe now\n\nShare link:\n\nMost read",
            "no text left after cleaning",
        ),
    ],
)
def test_bad_files_raise_a_clear_reason(
    make_corpus: Callable[..., Path], name: str, content: bytes, reason: str
) -> None:
    corpus = make_corpus({name: content})
    with pytest.raises(LoadError, match=reason):
        _load(corpus, name)


def test_other_encodings_decode() -> None:
    text = "Regeringen föreslår nya regler för AI-system och övervakning av språkmodeller."
    assert decode_text(text.encode("cp1252")) == text
    assert decode_text(text.encode("utf-16")) == text
    assert decode_text(b"\xef\xbb\xbf" + text.encode()) == text


def test_find_files_skips_notes_and_refuses_unknown_types(
    make_corpus: Callable[..., Path], tmp_path: Path
) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("outside", encoding="utf-8")
    corpus = make_corpus({
        "a.txt": ARTICLE, "README.md": "notes", "LICENSE.txt": "MIT", ".hidden.txt": "x",
        "a.txt.meta.json": "{}", "catalog.jsonl": "", "img.png": b"\x89PNG", "_draft.txt": "x",
    })  # fmt: skip
    (corpus / "link.txt").symlink_to(outside)
    files, refused = find_files(corpus)
    assert [f.rel for f in files] == ["a.txt"]
    reasons = dict(refused)
    assert "unsupported file type '.png'" in reasons["img.png"]
    assert "outside the corpus" in reasons["link.txt"]


def _tracked(folder: Path) -> set[str] | None:
    """Paths (relative to ``folder``) that git tracks, or None outside a git checkout."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "."], cwd=folder, capture_output=True,
                             text=True, check=True).stdout  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return None
    return {p for p in out.split("\0") if p}


def test_shipped_catalog_describes_every_shipped_file() -> None:
    """Shipped = committed: a user's uploads (corpus/uploads/, ignored by git) are not."""
    files, refused = find_files(SHIPPED_CORPUS)
    tracked = _tracked(SHIPPED_CORPUS)
    files = [f for f in files if (f.rel in tracked if tracked is not None
                                  else not f.rel.startswith(UPLOAD_DIR + "/"))]  # fmt: skip
    catalog = read_catalog(SHIPPED_CORPUS)
    assert not [r for r in refused if tracked is None or r[0] in tracked]
    assert {f.rel for f in files} == set(catalog)
    for meta in catalog.values():
        assert meta["title"] and meta["lang"] and meta["source"]


def test_files_over_the_size_limit_are_refused(make_corpus: Callable[..., Path]) -> None:
    corpus = make_corpus({"big.txt": "word " * 300_000, "ok.txt": ARTICLE})
    files, refused = find_files(corpus, max_mb=1)
    assert [f.rel for f in files] == ["ok.txt"]
    assert "over the 1 MB limit" in dict(refused)["big.txt"]
