"""Document → Chunks: sentence- and paragraph-aware, with overlap, sized in model tokens. Pure.

Every chunk is a slice of the cleaned document text, so ``doc.text[c.start:c.end] == c.text`` holds
by construction, and ids are stable: ``f"{doc_id}#{ordinal}"``.

Not done here: tokenising for real. The caller passes ``count_tokens`` (the embedding model's
tokenizer in production, a cheap estimate in tests).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence

from rag.types import Chunk, Document

TokenCounter = Callable[[Sequence[str]], list[int]]

# A sentence ends at . ! ? … (then optional closing quotes/brackets) followed by whitespace, or at
# CJK full stops, which need no space after them. Paragraph breaks always end a sentence.
LATIN_ENDS = ".!?…"  # characters that end a sentence
CJK_FULL_STOPS = "。！？"
CJK_ENDS = CJK_FULL_STOPS + "；"  # "；" ends a sentence too (Chinese law lists items with it)
_LATIN_END = re.compile(rf"[{LATIN_ENDS}]+[\"'”’»)\]]*(?=\s)")
_CJK_END = re.compile(rf"[{CJK_ENDS}]+[」』”’）)]*")
_PARA = re.compile(r"\n\s*\n")
_ABBREV = {
    "e.g", "i.e", "etc", "mr", "mrs", "ms", "dr", "prof", "no", "nr", "art", "para", "vs", "cf",
    "st", "jr", "sr", "inc", "ltd", "co", "corp", "fig", "vol", "pp", "ca", "approx", "dvs", "bl.a",
    "t.ex", "z.b", "bzw", "ggf", "usw", "resp", "jan", "feb", "mar", "apr", "jun", "jul", "aug",
    "sep", "sept", "oct", "okt", "nov", "dec", "dez", "u.s", "u.k", "e.u",
}  # fmt: skip


_WORD_BEFORE = re.compile(r"[\w.]+$")
_WORD_WINDOW = 64  # longer than any abbreviation; a longer word is no abbreviation either


_CJK_CHAR = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")


def text_length(text: str) -> int:
    """Length in Latin-letter equivalents: a CJK character carries about a word, so it counts as
    3. ``text_length("本条例自2022年11月1日起施行。") == 38``, ``text_length("in force") == 8``.
    """
    return len(text) + 2 * len(_CJK_CHAR.findall(text))


def estimate_tokens(texts: Sequence[str]) -> list[int]:
    """Cheap token estimate (~4 chars per token, 1 per CJK char) for tests and fallbacks."""
    out = []
    for t in texts:
        cjk = sum(1 for ch in t if "\u3400" <= ch <= "\u9fff")
        out.append(max(1, cjk + (len(t) - cjk + 3) // 4))
    return out


def _is_abbreviation(text: str, dot: int) -> bool:
    """True when the '.' at ``dot`` closes an abbreviation, an initial or a list number."""
    if text[dot] != ".":
        return False
    # Only the few characters before the dot matter: slicing the whole prefix made chunking a
    # long document quadratic (a 5 MB file took over 10 minutes).
    m = _WORD_BEFORE.search(text, max(0, dot - _WORD_WINDOW), dot)
    if not m:
        return False
    word = m.group(0).lower()
    if word in _ABBREV or (len(word) == 1 and word.isalpha()):
        return True
    return word.isdigit() and len(word) <= 3  # "1. The purpose…", "Article 5. …" stay together


def sentence_spans(text: str, lo: int = 0, hi: int | None = None) -> list[tuple[int, int]]:
    """Sentence ``(start, end)`` offsets in ``text[lo:hi]``; whitespace between them is excluded.

    Example: ``sentence_spans("One. Two!")  == [(0, 4), (5, 9)]``.
    """
    hi = len(text) if hi is None else hi
    cuts: set[int] = {lo, hi}
    for m in _PARA.finditer(text, lo, hi):
        cuts.update((m.start(), m.end()))
    for m in _LATIN_END.finditer(text, lo, hi):
        if not _is_abbreviation(text, m.start()):
            cuts.add(m.end())
    for m in _CJK_END.finditer(text, lo, hi):
        cuts.add(m.end())
    spans = []
    points = sorted(cuts)
    for a, b in itertools.pairwise(points):
        seg = text[a:b]
        stripped_left = len(seg) - len(seg.lstrip())
        stripped_right = len(seg) - len(seg.rstrip())
        s, e = a + stripped_left, b - stripped_right
        if e > s:
            spans.append((s, e))
    return spans


# Where an enumeration inside one sentence starts its next item: after ";" or ":" and before
# "(b)", "(iv)", "2)" or "b)", optionally behind "and"/"or" (en, nl, sv, de, fr, es). Law text
# lists its cases this way: "…shall be prohibited: (a) …; (b) …; or (c) …".
_ITEM_START = re.compile(
    r"(?<=[;:])\s+(?=(?:(?:and|or|en|of|och|eller|und|oder|et|ou|y|o)\s+)?"
    r"\(?(?:[a-z]|[ivx]{1,5}|\d{1,2})\)\s)"
)


def clause_spans(text: str) -> list[tuple[int, int]]:
    """Sentence spans, with enumerations split into their items (quotable on their own).

    Example: ``clause_spans("Banned: (a) x; (b) y.") == [(0, 7), (8, 14), (15, 21)]``.
    """
    out = []
    for s, e in sentence_spans(text):
        start = s
        for m in _ITEM_START.finditer(text, s, e):
            out.append((start, m.start()))
            start = m.end()
        out.append((start, e))
    return out


def _split_long(
    text: str, span: tuple[int, int], max_tokens: int, count: TokenCounter
) -> list[tuple[int, int]]:
    """Cut one over-long sentence into pieces of at most ``max_tokens`` at spaces or commas."""
    s, e = span
    pieces: list[tuple[int, int]] = []
    # Count a window a few pieces long, not the whole rest: counting the rest every time made a
    # single 1 MB line take 40 s, and it grows with the square of the length.
    window_chars = max_tokens * 32
    while e > s:
        probe = min(e, s + window_chars)
        n = count([text[s:probe]])[0]
        if n <= max_tokens and probe == e:
            pieces.append((s, e))
            break
        # Aim at the share of characters that should fit, then back off to a break character.
        target = s + max(1, int((probe - s) * min(1.0, max_tokens / n * 0.9)))
        window = text[s:target]
        brk = max(window.rfind(" "), window.rfind("，"), window.rfind("、"), window.rfind(","))
        cut = s + brk + 1 if brk > (target - s) // 2 else target
        piece_end = cut
        while piece_end > s and text[piece_end - 1].isspace():
            piece_end -= 1
        pieces.append((s, piece_end))
        s = cut
        while s < e and text[s].isspace():
            s += 1
    return pieces


def chunk_document(
    doc: Document,
    *,
    max_tokens: int = 200,
    overlap_tokens: int = 40,
    count_tokens: TokenCounter = estimate_tokens,
) -> list[Chunk]:
    """Pack whole sentences into chunks of at most ``max_tokens``; overlap by trailing sentences.

    A chunk prefers to end at a paragraph break once it is half full, so chunks rarely straddle
    two paragraphs. A sentence longer than ``max_tokens`` is cut at spaces or commas.
    """
    text = doc.text
    spans: list[tuple[int, int]] = []
    raw = sentence_spans(text)
    sizes = count_tokens([text[s:e] for s, e in raw]) if raw else []
    for span, size in zip(raw, sizes, strict=True):
        if size > max_tokens:
            spans.extend(_split_long(text, span, max_tokens, count_tokens))
        else:
            spans.append(span)
    if not spans:
        return []
    sizes = count_tokens([text[s:e] for s, e in spans])
    para_start = [
        i == 0 or "\n\n" in text[spans[i - 1][1] : spans[i][0]] for i in range(len(spans))
    ]

    chunks: list[Chunk] = []
    i = 0
    while i < len(spans):
        j, total = i, 0
        while j < len(spans):
            if j > i and total + sizes[j] > max_tokens:
                break
            if j > i and para_start[j] and total >= max_tokens // 2:
                break
            total += sizes[j]
            j += 1
        start, end = spans[i][0], spans[j - 1][1]
        chunks.append(
            Chunk(
                f"{doc.doc_id}#{len(chunks)}", doc.doc_id, len(chunks), start, end, text[start:end]
            )
        )
        if j >= len(spans):
            break
        # Next chunk starts with the trailing sentences of this one that fit in the overlap.
        k, carried = j, 0
        while k - 1 > i and carried + sizes[k - 1] <= overlap_tokens and not para_start[k]:
            k -= 1
            carried += sizes[k]
        i = k
    return chunks
