"""Exact lexical matching for the query syntax: a phrase is in a text or it is not.

Both sides are *folded* the same way before comparing: Unicode NFKC per character (full-width
letters, PDF ligatures such as "ﬁ"), case folded, soft hyphens and zero-width characters dropped,
every run of whitespace one space, and whitespace between two CJK characters dropped (Chinese and
Japanese text has no spaces, so a line break inside a sentence must not hide a phrase).

A phrase that starts (ends) with a letter or digit must start (end) at a word boundary: ``AI`` is
not found in "said", ``ChatGPT`` is found in "ChatGPT's" and "ChatGPT-4". CJK and Hangul
characters have no word boundaries: a Chinese, Japanese or Korean phrase matches as a substring
anywhere (Korean particles attach to the word: 인공지능 is found in 인공지능은).

Pure functions; :func:`find_spans` gives offsets into the original text, so a highlighted span
is always ``text[start:end]``.
"""

from __future__ import annotations

import re
import unicodedata

_DROP = {"\u00ad", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"}
_CJK_CHARS = r"\u2e80-\u2fdf\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f"
_CJK = re.compile(f"[{_CJK_CHARS}]")
# Hangul: spaces between words, but particles attach to them (인공지능은), so no word boundaries
_NO_BOUNDARY = re.compile(f"[{_CJK_CHARS}\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]")


def is_cjk(ch: str) -> bool:
    return bool(_CJK.match(ch))


class _FoldTable(dict[int, str]):
    """Code point → folded string, computed on first use (for ``str.translate``)."""

    def __missing__(self, cp: int) -> str:
        ch = chr(cp)
        if ch in _DROP:
            out = ""
        elif ch.isspace():
            out = " "
        else:
            out = unicodedata.normalize("NFKC", ch).casefold()
            out = "".join(" " if c.isspace() else c for c in out if c not in _DROP)
        self[cp] = out
        return out


_TABLE = _FoldTable()
_SPACES = re.compile(r" {2,}")
_CJK_GAP = re.compile(f"(?<=[{_CJK_CHARS}]) (?=[{_CJK_CHARS}])")


def fold(text: str) -> str:
    """``text`` folded for comparison (see the module docstring); fast (``str.translate``)."""
    out = _SPACES.sub(" ", text.translate(_TABLE))
    return _CJK_GAP.sub("", out)


def fold_with_offsets(text: str) -> tuple[str, list[int]]:
    """:func:`fold` and, for each folded character, the offset of the original character it
    comes from (the same folded string as :func:`fold`)."""
    chars: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(text):
        for c in _TABLE[ord(ch)]:
            if c == " " and chars and chars[-1] == " ":
                continue
            chars.append(c)
            where.append(i)
    # drop the spaces between two CJK characters, as fold does
    keep = [
        not (c == " " and 0 < j < len(chars) - 1 and is_cjk(chars[j - 1]) and is_cjk(chars[j + 1]))
        for j, c in enumerate(chars)
    ]
    return (
        "".join(c for c, k in zip(chars, keep, strict=True) if k),
        [w for w, k in zip(where, keep, strict=True) if k],
    )


def _word(ch: str) -> bool:
    return ch.isalnum() and not _NO_BOUNDARY.match(ch)


def find_folded(haystack: str, needle: str) -> list[int]:
    """Start positions of ``needle`` in ``haystack`` (both folded) at word boundaries."""
    if not needle:
        return []
    out: list[int] = []
    check_start, check_end = _word(needle[0]), _word(needle[-1])
    i = haystack.find(needle)
    while i >= 0:
        j = i + len(needle)
        ok = not (check_start and i > 0 and _word(haystack[i - 1])) and not (
            check_end and j < len(haystack) and _word(haystack[j])
        )
        if ok:
            out.append(i)
        i = haystack.find(needle, i + 1)
    return out


def contains(folded_text: str, folded_phrase: str) -> bool:
    """``folded_phrase`` occurs in ``folded_text`` at word boundaries (both already folded)."""
    return folded_phrase in folded_text and bool(find_folded(folded_text, folded_phrase))


def find_spans(text: str, phrase: str) -> list[tuple[int, int]]:
    """Every ``(start, end)`` of ``phrase`` in ``text``, as offsets of the original ``text``."""
    return find_all(text, [phrase])


def find_all(text: str, phrases: list[str]) -> list[tuple[int, int]]:
    """Every ``(start, end)`` of any of ``phrases`` in ``text`` (folded once), in text order."""
    needles = [n for n in (fold(p).strip() for p in phrases) if n]
    if not needles:
        return []
    folded, where = fold_with_offsets(text)
    out = [(where[i], where[i + len(n) - 1] + 1) for n in needles for i in find_folded(folded, n)]
    return sorted(out)
