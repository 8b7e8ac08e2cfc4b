"""Uploads: allowed types only, size limit, a sanitised name inside corpus/uploads, never an
overwrite, no path escape, no second copy of the same bytes — for any name (hypothesis), and for
uploads racing each other."""

from __future__ import annotations

import string
import tempfile
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.ingest.corpus import find_files
from rag.ingest.formats import LoadError
from rag.ingest.uploads import UPLOAD_SUFFIXES, DuplicateUpload, safe_name, save_upload

HOSTILE_PARTS = ["..", "/", "\\", ".", " ", "\x00", "\n", "~", "$HOME", "%2e%2e%2f", "\u202e",
                 "\u200b", "／", "．", "ﬁ", "C:", "readme", "README", "catalog.jsonl", ".meta.json",
                 "_private", "CON", "a" * 300]  # fmt: skip
names = st.lists(
    st.one_of(st.sampled_from(HOSTILE_PARTS), st.text(min_size=1, max_size=12)), max_size=8
).map("".join)
suffixes = st.sampled_from([*UPLOAD_SUFFIXES, ".TXT", ".Pdf", ".exe", ".sh", ".json", ".py",
                            ".txt.exe", ".exe.txt", "", ".", ".tar.gz", ".ht/ml"])  # fmt: skip


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@settings(max_examples=200, deadline=None)
@given(name=names, suffix=suffixes)
def test_any_upload_name_lands_inside_uploads_or_is_refused(name: str, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        corpus = root / "corpus"
        (corpus / "uploads").mkdir(parents=True)
        (corpus / "uploads" / "existing.txt").write_bytes(b"keep me")
        (root / "outside.txt").write_bytes(b"outside")
        src = root / "src.bin"
        src.write_bytes(b"Uploaded text about AI rules.")
        before = _snapshot(root)

        original = name + suffix
        safe = safe_name(original)
        assert safe and "/" not in safe and "\\" not in safe and "\x00" not in safe
        assert not safe.startswith((".", "-")) and len(safe) <= 110
        assert all(ch not in safe for ch in string.whitespace)
        try:
            rel = save_upload(corpus, src, original, max_mb=1)
        except LoadError as exc:
            assert Path(safe).suffix.lower() not in UPLOAD_SUFFIXES, exc
            assert _snapshot(root) == before  # nothing written anywhere
            return
        assert Path(safe).suffix.lower() in UPLOAD_SUFFIXES
        target = (corpus / rel).resolve()
        assert target.parent == (corpus / "uploads").resolve()
        assert target.read_bytes() == src.read_bytes()
        after = _snapshot(root)
        assert {k: v for k, v in after.items() if k != f"corpus/{rel}"} == before  # no overwrite
        found, refused = find_files(corpus)
        assert rel in {cf.rel for cf in found}, (rel, refused)  # it will be indexed, not ignored
        with pytest.raises(DuplicateUpload) as dup:  # the same bytes again: not a second copy
            save_upload(corpus, src, original, max_mb=1)
        assert dup.value.existing == rel and _snapshot(root) == after
        src.write_bytes(b"Other text about AI rules.")  # the same name, other bytes: a new name
        again = save_upload(corpus, src, original, max_mb=1)
        assert again != rel and (corpus / again).read_bytes() == src.read_bytes()


def test_readme_upload_is_renamed_so_it_gets_indexed(tmp_path: Path) -> None:
    src = tmp_path / "x.md"
    src.write_text("# Notes\n\nAI rules.", encoding="utf-8")
    rel = save_upload(tmp_path / "corpus", src, "README.md", max_mb=1)
    assert rel == "uploads/upload_README.md"
    assert rel in {cf.rel for cf in find_files(tmp_path / "corpus")[0]}


def test_size_limit_and_types(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_bytes(b"a" * (1024 * 1024 + 1))
    with pytest.raises(LoadError, match="over the 1 MB limit"):
        save_upload(tmp_path / "corpus", big, "big.txt", max_mb=1)
    for bad in ("x.exe", "x.json", "x", "x.txt.sh", "x.svg"):
        with pytest.raises(LoadError, match="not accepted"):
            save_upload(tmp_path / "corpus", big, bad, max_mb=5)
    assert not (tmp_path / "corpus" / "uploads").exists() or not any(
        (tmp_path / "corpus" / "uploads").iterdir()
    )


def test_racing_uploads_of_one_name_never_overwrite(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    sources = []
    for i in range(16):
        src = tmp_path / f"src{i}.txt"
        src.write_text(f"Upload number {i} about AI audits.", encoding="utf-8")
        sources.append(src)
    results: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(sources))

    def up(src: Path) -> None:
        start.wait()
        try:
            results.append(save_upload(corpus, src, "same name.txt", max_mb=1))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=up, args=(s,)) for s in sources]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(set(results)) == len(sources)
    contents = sorted((corpus / r).read_text(encoding="utf-8") for r in results)
    assert contents == sorted(s.read_text(encoding="utf-8") for s in sources)
