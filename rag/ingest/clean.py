"""Text cleaning: split into paragraphs, drop site boilerplate, normalise whitespace.

The cleaned text is made only of pieces of the input (paragraphs with their inner whitespace
collapsed to single spaces) joined by blank lines: no character is rewritten, so any quote from the
cleaned text can be found in the original file modulo whitespace.

How boilerplate is found (a general mechanism, not a list of known strings):

* every paragraph gets a class: ``junk`` (almost no letters: "0", "×", a stray word fragment),
  ``cue`` (a short paragraph carrying a boilerplate phrase in one of several languages: subscribe,
  newsletter, share, disclaimer, most read, loading, …), ``short`` (few words and no sentence end:
  headings, taglines, calls to action) or ``good``;
* junk and cue paragraphs are dropped wherever they are;
* the *tail* of a page (sign-up boxes, author blurbs, related-links lists) is found as the earliest
  paragraph from which at least half of the remaining text (by characters) is junk, cue or short —
  and it is dropped whole, which takes a blurb inside it too. The tail may not exceed half the
  document.

What it does not do: translate, fix spelling, or remove boilerplate that looks like prose in the
middle of a document.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

ParagraphClass = Literal["junk", "cue", "short", "good"]

_WS = re.compile(r"\s+")
_WORD = re.compile(r"[^\W\d_]+(?:[-'’][^\W\d_]+)*|\d+", re.UNICODE)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)
_TERMINAL = re.compile(r"[.!?。！？…;；][\"'”’»)）\]]*$")

# Phrases that mark navigation, sign-up and legal furniture on news sites, in the corpus languages.
_CUES = [
    # en
    r"subscribe",
    r"newsletter",
    r"sign[ -]?up\b",
    r"share (?:this|link|on|via)\b",
    r"^share\b",
    r"disclaimer",
    r"(?:cookie|privacy) (?:policy|settings)",
    r"terms (?:of|and) (?:use|service|conditions)",
    r"all rights reserved",
    r"most (?:read|popular|viewed)",
    r"related (?:news|articles?|posts?|stories|content)",
    r"^loading\b",
    r"read (?:more|also|next)\b",
    r"follow us",
    r"advertisement",
    r"click here",
    r"in your inbox",
    r"daily updates",
    r"^(?:home|start|hem|startsida|startseite|accueil|inicio)\b",
    r"^(?:photo|image|credit|source)s?:",
    # sv / da / nb
    r"prenumer",
    r"nyhetsbrev",
    r"registrera dig",
    r"dela (?:artikel|länk|på)",
    r"integritetspolicy",
    r"läs (?:mer|också)",
    r"annons",
    r"nyhedsbrev",
    r"abonner",
    # nl
    r"abonneer",
    r"nieuwsbrief",
    r"schrijf je in",
    r"meld je aan",
    r"lees (?:meer|ook)",
    r"advertentie",
    r"privacybeleid",
    # de
    r"abonnier",
    r"datenschutz",
    r"weiterlesen",
    r"mehr zum thema",
    r"\bteilen\b",
    r"rechte vorbehalten",
    r"^anzeige\b",
    # fr / es
    r"abonnez",
    r"s['’]abonner",
    r"lire (?:aussi|la suite)",
    r"politique de confidentialité",
    r"suscr[ií]b",
    r"bolet[ií]n",
    r"leer m[aá]s",
    r"publicidad",
    # zh
    r"订阅",
    r"分享到",
    r"免责声明",
    r"版权所有",
    r"扫码",
    r"关注我们",
    r"阅读更多",
    r"相关阅读",
    r"责任编辑",
]
_CUE = re.compile("|".join(f"(?:{c})" for c in _CUES), re.IGNORECASE)

SHORT_WORDS = 15  # fewer words than this and no sentence end: a heading, tagline or button
# A cue phrase makes a paragraph furniture if the paragraph is short, or if the phrase opens it
# ("Disclaimer: …", "Subscribe to …") and the paragraph is not long; deeper in prose it is prose.
CUE_MAX_WORDS = 30
CUE_OPENING_CHARS = 40
CUE_OPENING_MAX_WORDS = 80
TAIL_BAD_RATIO = 0.5
TAIL_MAX_SHARE = 0.5


@dataclass(frozen=True)
class Paragraph:
    text: str  # whitespace-normalised paragraph
    kind: ParagraphClass


def normalise_ws(text: str) -> str:
    """Collapse every whitespace run to one space and strip. Example: ``"a \\n b" -> "a b"``."""
    return _WS.sub(" ", text).strip()


def word_count(text: str) -> float:
    """Words for alphabetic scripts plus half a word per CJK character."""
    cjk = len(_CJK.findall(text))
    latin = len(_WORD.findall(_CJK.sub(" ", text)))
    return latin + cjk / 2


def classify(paragraph: str) -> ParagraphClass:
    """Example: ``classify("Subscribe to CryptoPolitan") == "cue"``."""
    letters = len(_LETTER.findall(paragraph))
    words = word_count(paragraph)
    if letters < 4 or (words <= 1 and len(paragraph) < 12 and not _CJK.search(paragraph)):
        return "junk"
    cue = _CUE.search(paragraph)
    if cue and (
        words <= CUE_MAX_WORDS
        or (cue.start() < CUE_OPENING_CHARS and words <= CUE_OPENING_MAX_WORDS)
    ):
        return "cue"
    if words < SHORT_WORDS and not _TERMINAL.search(paragraph):
        return "short"
    return "good"


def split_paragraphs(text: str, *, single_newline_breaks: bool | None = None) -> list[str]:
    """Split raw text into whitespace-normalised paragraphs.

    Paragraphs are separated by blank lines. A text with no blank lines at all is taken to put one
    paragraph per line (``single_newline_breaks=None`` decides this automatically).
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if single_newline_breaks is None:
        single_newline_breaks = not re.search(r"\n[ \t\u00a0]*\n", text)
    pattern = r"\n" if single_newline_breaks else r"\n[ \t\u00a0]*\n+"
    parts = (normalise_ws(p) for p in re.split(pattern, text))
    return [p for p in parts if p]


def _tail_start(kinds: list[ParagraphClass], sizes: list[int]) -> int:
    """Index of the first paragraph of the trailing boilerplate block (len(kinds) if none).

    Ratios are weighted by characters, so three real paragraphs are not outvoted by a row of
    one-word links after them.
    """
    n = len(kinds)
    total = sum(sizes) or 1
    size_after = 0
    bad_size_after = 0
    best = n
    for i in range(n - 1, -1, -1):
        size_after += sizes[i]
        bad_size_after += sizes[i] if kinds[i] != "good" else 0
        if size_after > TAIL_MAX_SHARE * total:
            break
        if kinds[i] != "good" and bad_size_after >= TAIL_BAD_RATIO * size_after:
            best = i
    return best


def clean_paragraphs(paragraphs: Iterable[str]) -> list[Paragraph]:
    """Classify paragraphs and keep the ones a reader would cite."""
    paras = [p for p in paragraphs if p]
    kinds = [classify(p) for p in paras]
    cut = _tail_start(kinds, [len(p) for p in paras])
    return [
        Paragraph(p, k)
        for p, k in zip(paras[:cut], kinds[:cut], strict=True)
        if k in ("good", "short")
    ]


def clean_text(raw: str, *, single_newline_breaks: bool | None = None) -> str:
    """Raw text → cleaned text: kept paragraphs joined by blank lines.

    Example: ``clean_text("Real news here, with a full sentence.\\n\\nSubscribe now")``
    returns ``"Real news here, with a full sentence."``.
    """
    kept = clean_paragraphs(split_paragraphs(raw, single_newline_breaks=single_newline_breaks))
    return "\n\n".join(p.text for p in kept)
