"""Corpus fuzzing: every hostile or broken file indexes correctly or is skipped with one clear line.

A generated fixture set (empty, binary, bad encodings, broken PDFs and .docx files, deep nesting,
odd names, symlinks, a FIFO, a 50 MB file) plus hypothesis over random bytes for every loader.
"""

from __future__ import annotations

import io
import os
import random
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.config import Settings
from rag.ingest.corpus import SUPPORTED_SUFFIXES, CorpusFile, load_file
from rag.ingest.formats import LoadError
from rag.models.embeddings import HashEmbedder
from rag.service import Assistant
from tests.conftest import ROOT
from tests.ingest.test_corpus import minimal_pdf

INDEXED = "indexed"
SKIPPED = "skipped"


def _encrypted_pdf() -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(minimal_pdf("Encrypted rules on AI"))))
    writer.encrypt("secret")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _garbage_docx(rng: random.Random) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("[Content_Types].xml", b"<garbage")
        zf.writestr("word/document.xml", rng.randbytes(500))
    return out.getvalue()


def _nested_html(depth: int, text: str) -> str:
    return f"<html><body>{'<div>' * depth}<p>{text}</p>{'</div>' * depth}</body></html>"


def build_fuzz_corpus(root: Path) -> dict[str, tuple[str, str]]:
    """Write the fixture set under ``root/corpus``; return {rel: (INDEXED, text) | (SKIPPED, reason)}.

    For INDEXED files the text must appear in the document; for SKIPPED ones the reason must
    match. Files whose outcome depends on a library (deep HTML) accept either.
    """
    rng = random.Random(6)
    corpus = root / "corpus"
    outside = root / "outside"
    corpus.mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.txt").write_text("Outside text that must never be indexed.", "utf-8")
    pdf = minimal_pdf("Truncated PDF about AI rules")
    spec: dict[str, tuple[str, str, bytes]] = {
        "good.txt": (INDEXED, "Providers must register models.",
                     b"The regulator published draft rules. Providers must register models."),
        "empty.txt": (SKIPPED, "file is empty", b""),
        "blank.md": (SKIPPED, "empty", b"  \n\n\t \n"),
        "junk.txt": (SKIPPED, "binary data", rng.randbytes(5000)),
        "junk_high.txt": (SKIPPED, "no other text encoding fits|binary",
                          bytes(rng.randrange(128, 256) for _ in range(5000))),
        "bad_utf8.txt": (INDEXED, "Rules for AI audits are strict.",
                         b"Rules for AI audits are strict. " * 3 + b"\xff\xc3( More rules."),
        "cp1252.txt": (INDEXED, "Les régulateurs européens – “AI Act” coûte 5 €.",
                       "Les régulateurs européens – “AI Act” coûte 5 €. Les fournisseurs "
                       "doivent s’enregistrer.".encode("cp1252")),
        "utf16le.txt": (INDEXED, "Die Regulierungsbehörde veröffentlichte Regeln.",
                        "\ufeffDie Regulierungsbehörde veröffentlichte Regeln.".encode("utf-16-le")),
        "utf16be.md": (INDEXED, "De toezichthouder publiceerde regels.",
                       "\ufeffDe toezichthouder publiceerde regels.".encode("utf-16-be")),
        "truncated.pdf": (SKIPPED, "not a readable PDF", pdf[: len(pdf) // 2]),
        "encrypted.pdf": (SKIPPED, "encrypted with a password", _encrypted_pdf()),
        "garbage.docx": (SKIPPED, r"not a readable \.docx", _garbage_docx(rng)),
        "notzip.docx": (SKIPPED, r"not a readable \.docx", rng.randbytes(700)),
        "nested_ok.html": (INDEXED, "Nested two hundred levels deep, about AI audits.",
                           _nested_html(200, "Nested two hundred levels deep, about AI audits.")
                           .encode()),
        "nested_deep.html": (SKIPPED, "no main text found",
                             _nested_html(20_000, "Twenty thousand levels deep.").encode()),
        "nested.json": (SKIPPED, "nested too deeply", b"[" * 100_000 + b"]" * 100_000),
        "bad.json": (SKIPPED, "not valid JSON", b'{"a": {"text": "unterminated'),
        "name with spaces.txt": (INDEXED, "spaces in its name",
                                 b"A file with spaces in its name, about AI governance."),
        "ünïcödé 文件.txt": (INDEXED, "algorithmic accountability",
                             b"The committee discussed algorithmic accountability."),
        "report..final.txt": (INDEXED, "announced an AI strategy",
                              b"The ministry announced an AI strategy."),
        "x..y/z.txt": (INDEXED, "AI safety institutes", b"A note on AI safety institutes."),
        "longline.md": (INDEXED, "x" * 1000, b"x" * 300_000),
        "tool.exe": (SKIPPED, "unsupported file type", b"MZ\x90\x00"),
    }  # fmt: skip
    for rel, (_, _, data) in spec.items():
        path = corpus / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    expected = {rel: (outcome, what) for rel, (outcome, what, _) in spec.items()}
    os.symlink(outside / "secret.txt", corpus / "link_out.txt")
    os.symlink(outside, corpus / "link_dir")
    os.symlink(corpus / "missing.txt", corpus / "dangling.txt")
    os.symlink(corpus / "good.txt", corpus / "alias.txt")  # inside the corpus: followed
    os.mkfifo(corpus / "fifo.txt")  # reading it would block forever
    expected |= {
        "link_out.txt": (SKIPPED, "symlink points outside the corpus folder"),
        "link_dir": (SKIPPED, "symlink points outside the corpus folder"),
        "dangling.txt": (SKIPPED, "symlink to a missing file"),
        "alias.txt": (INDEXED, "Providers must register models."),
        "fifo.txt": (SKIPPED, "not a regular file"),
    }
    return expected


def _assistant(root: Path) -> Assistant:
    settings = Settings(corpus_dir=root / "corpus", index_dir=root / "index", model="hash:64",
                        cache_dir=root / "cache")  # fmt: skip
    return Assistant(settings, HashEmbedder(64))


def test_every_fuzzed_file_indexes_or_is_skipped_with_its_reason(tmp_path: Path) -> None:
    expected = build_fuzz_corpus(tmp_path)
    assistant = _assistant(tmp_path)
    report = assistant.ingest()

    skipped = {s.path: s.reason for s in report.skipped}
    assert len(skipped) == len(report.skipped), "a file was reported twice"
    docs = {d.path: d for d, _ in assistant.documents()}
    texts = assistant.retriever.index.documents([d.doc_id for d in docs.values()], with_text=True)
    assert set(skipped) | set(docs) == set(expected), "a file was neither indexed nor reported"
    assert not set(skipped) & set(docs)
    for rel, (outcome, what) in expected.items():
        if outcome == SKIPPED:
            assert rel in skipped, f"{rel} should be skipped ({what}) but was indexed"
            assert re.search(what, skipped[rel]), f"{rel}: {skipped[rel]!r} does not say {what!r}"
            assert "\n" not in skipped[rel]
        else:
            assert rel in docs, f"{rel} should be indexed but was skipped: {skipped.get(rel)}"
            assert what in texts[docs[rel].doc_id].text, f"{rel}: text not decoded as expected"
    assert "Outside text" not in "".join(d.text for d in texts.values())

    again = assistant.ingest()  # nothing changed: nothing embedded, the same files reported
    assert again.chunks_embedded == 0 and {s.path for s in again.skipped} == set(skipped)


def test_cli_run_with_a_50mb_file_finishes_with_one_line_per_skip_and_bounded_memory(
    tmp_path: Path,
) -> None:
    """The CLI in a subprocess: one line per skipped file, no trace, and peak RSS measured.

    The 50 MB file is over the default 20 MB limit (RAG_MAX_FILE_MB), so it must be refused
    without being read: the process's peak memory stays near a run without it.
    """
    expected = build_fuzz_corpus(tmp_path)
    block = b"The regulator published draft rules for AI systems on Monday.\n\n" * 16_000
    with (tmp_path / "corpus" / "big.txt").open("wb") as fh:
        for _ in range(50 * 1_000_000 // len(block) + 1):
            fh.write(block)
    assert (tmp_path / "corpus" / "big.txt").stat().st_size > 50e6
    expected["big.txt"] = (SKIPPED, "over the 20 MB limit")

    proc = run_cli_measured(["ingest"], tmp_path / "corpus", tmp_path / "index", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stdout.splitlines()
    for rel, (outcome, what) in expected.items():
        mine = [ln for ln in lines if ln.startswith(f"    {rel}: ")]
        if outcome == SKIPPED:
            assert len(mine) == 1 and re.search(what, mine[0]), (rel, mine)
        else:
            assert not mine, (rel, mine)
    peak_mb = peak_rss_mb(proc.stderr)
    print(f"\npeak RSS of `rag ingest` over the fuzz corpus with a 50 MB file: {peak_mb:.0f} MB")
    assert peak_mb < 450, f"peak RSS {peak_mb:.0f} MB: the 50 MB file was read into memory?"


# Peak memory of the process itself: VmHWM of its own address space. ru_maxrss would not do: on
# Linux it keeps the high-water mark from before exec, i.e. of the forked copy of the test runner
# (3.9 GB once the real model is loaded in the session).
_MEASURE = """
import resource, sys
from rag.app.cli import main
try:
    main(sys.argv[1:])
finally:
    try:
        status = open("/proc/self/status").read()
        peak = int(status.split("VmHWM:")[1].split()[0]) / 1024
    except (OSError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak_rss_mb={peak:.1f}", file=sys.stderr)
"""


def cli_env(tmp: Path, **extra: str) -> dict[str, str]:
    """The environment for `rag` in a subprocess: fake embedder, caches in ``tmp``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(RAG_MODEL="hash:64", RAG_CACHE_DIR=str(tmp / "cache"), PYTHONPATH=str(ROOT),
               **extra)  # fmt: skip
    return env


def run_cli_measured(
    args: list[str], corpus: Path, index: Path, tmp: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _MEASURE, *args, "--corpus", str(corpus), "--index", str(index)],
        capture_output=True, text=True, env=cli_env(tmp), timeout=300, cwd=tmp,
    )  # fmt: skip


def peak_rss_mb(stderr: str) -> float:
    m = re.search(r"peak_rss_mb=([\d.]+)", stderr)
    assert m, stderr
    return float(m.group(1))


# --- hypothesis: any bytes under any supported name load or raise LoadError, nothing else -------


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.one_of(
        st.binary(max_size=3000),
        st.text(max_size=2000).map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.sampled_from(
            [minimal_pdf("Some text"), b"PK\x03\x04" + b"\x00" * 40, b"{}", b"[]"]
        ).flatmap(lambda b: st.integers(0, len(b)).map(lambda n: b[:n])),
    ),
    suffix=st.sampled_from(SUPPORTED_SUFFIXES),
)
def test_loaders_raise_only_load_error(tmp_path: Path, data: bytes, suffix: str) -> None:
    path = tmp_path / f"f{suffix}"
    path.write_bytes(data)
    try:
        docs = load_file(CorpusFile(path, path.name), {})
    except LoadError as exc:
        assert str(exc) and "\n" not in str(exc).strip()
    else:
        assert docs and all(d.text.strip() for d in docs)


@pytest.mark.parametrize("n", [1, 300_000])
def test_long_unbroken_line_chunks_exactly(n: int) -> None:
    from rag.ingest.chunking import chunk_document
    from rag.types import Document

    doc = Document("d", "y" * n, "t", "en", "d.txt")
    chunks = chunk_document(doc)
    assert all(doc.text[c.start : c.end] == c.text for c in chunks)
    assert "".join(c.text for c in chunks) == doc.text
