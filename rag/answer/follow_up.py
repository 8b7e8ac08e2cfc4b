"""Follow-up questions in a chat: is this question about the conversation's subject, and which?

A question is read as a follow-up on evidence, not on its length:

1. **Cues in its own words** (``cue``, decisive): it opens with a connective ("and …", "what
   about …", "och …", "und …", "那么…"), or it points back with a pronoun ("they", "dessa",
   "sie", "他们") or a final demonstrative ("… for that?") while naming nothing itself.
2. Otherwise **whether it stands alone**: a question that retrieves good evidence by itself is
   answered by itself ("Wat vroeg de EU aan Japan?" after a Swedish question). One that does not
   is a follow-up when it is elliptical (at most two content words, no name: "Who took part?")
   or close to the subject (cosine of the two question vectors at least ``min_similarity``).

The subject is the last question of the conversation that stood alone by these rules, so a
second or third follow-up keeps it ("Which Chinese companies stayed away?" → "And when did they
take place?" still means the talks). Not done here: the retrieval itself (``extractive.py``
supplies the two measurements as callables).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rag.index.lexical import tokenize
from rag.ingest.lang import detect_language

# Openings that continue the previous question, per language (case-insensitive).
_CONNECTIVE = re.compile(
    r"^\W*(?:and|but|so|also|then|what about|how about|and what about|"
    r"en|maar|ook|wat dan met|hoe zit het met|en hoe zit het met|"
    r"och|men|samt|vad sägs om|hur är det med|"
    r"und|aber|auch|was ist mit|und was ist mit|wie steht es mit|"
    r"et|mais|aussi|qu'en est-il|et pour|"
    r"y|pero|también|qué hay de|"
    r"e|ma|og|men)\b"
    r"|^\W*(?:那么|那|还有|另外|此外|而)",
    re.IGNORECASE,
)


# Pronouns that point back to something named earlier, per question language. Only forms that
# cannot be an article or a dummy subject: "it", "this", "there" ("Is it legal…?", "Are there
# fines…?") and Dutch "de", Swedish "de"/"den"/"det", German "die"/"das" are left out; such
# questions are judged by whether they stand alone.
def _by_language(words: dict[str, str], pattern: str) -> dict[str, re.Pattern[str]]:
    """One case-insensitive regex per language: ``pattern`` with ``{}`` for the alternatives."""
    return {lang: re.compile(pattern.format(w), re.IGNORECASE) for lang, w in words.items()}


_ANAPHORA = _by_language(
    {
        "en": "they|them|their|theirs|these|those|he|she|him|her|his",
        "nl": "zij|ze|hun|hen|hij|deze|daarvan|ervan",
        "sv": "dem|deras|dessa|han|hon|henne|honom",
        "de": "sie|ihnen|ihr|ihre|ihren|diese|dieser|diesen|davon|dabei",
        "fr": "ils|elles|leur|leurs|eux|ceux|celles",
        "es": "ellos|ellas|sus|esos|esas|estos|estas",
        "da": "de|dem|deres|disse|han|hun",
        "no": "de|dem|deres|disse|han|hun",
    },
    r"\b(?:{})\b",
)
_ANAPHORA_ZH = re.compile("他们|她们|它们|这些|那些|其")
# A demonstrative as the question's last word points back ("What are the fines for that?").
_POINTS_BACK = _by_language(
    {
        "en": "it|that|this|them|those|these",
        "nl": "dat|dit|daarvan|ervan|daarover",
        "sv": "det|detta|dem|därom",
        "de": "das|es|dies|dafür|davon|dazu|darüber",
        "fr": "cela|ça|ceci",
        "es": "eso|esto|ello",
    },
    r"\b(?:{})\W*$",
)
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Resolution:
    """How a chat question was understood: ``query`` is what is searched for."""

    question: str
    query: str  # the question itself, or "<subject> <question>"
    subject: str = ""  # the conversation's subject, when the question follows up on it
    reason: str = ""  # why it is a follow-up: a cue, or "weak alone"

    @property
    def is_follow_up(self) -> bool:
        return bool(self.subject)


def _names(question: str) -> bool:
    """The question names something itself: a capitalised word past the first, or a digit."""
    words = _WORD.findall(question)
    return any(w[:1].isupper() for w in words[1:]) or any(ch.isdigit() for ch in question)


def cue(question: str) -> str:
    """Why the question's own words make it a follow-up ("" when they do not): it opens with a
    connective, or points back with a pronoun or a final demonstrative while naming nothing."""
    q = question.strip()
    if _CONNECTIVE.match(q):
        return "connective"
    if _names(q):
        return ""
    lang = detect_language(q)
    anaphora = _ANAPHORA_ZH if lang == "zh" else _ANAPHORA.get(lang, _ANAPHORA["en"])
    if anaphora.search(q) or (lang in _POINTS_BACK and _POINTS_BACK[lang].search(q)):
        return "pronoun"
    return ""


def elliptical(question: str) -> bool:
    """At most two content words and no name ("Who took part?", "When?", "Wat zijn de boetes?")."""
    q = question.strip()
    content = [t for t in tokenize(q, detect_language(q)) if not t.startswith("#")]
    return len(content) <= 2 and not _names(q)


def resolve(
    question: str,
    history: Sequence[tuple[str, str]],
    stands_alone: Callable[[str], bool],
    similarity: Callable[[str, str], float],
    min_similarity: float,
) -> Resolution:
    """Read ``question`` against the conversation ``history`` ([(question, answer)], oldest
    first). ``stands_alone(q)``: whether ``q`` retrieves good evidence by itself;
    ``similarity(a, b)``: the cosine of the two questions' vectors."""
    subject = ""
    for earlier, _ in history:  # replay: each earlier question either stood alone or followed
        if not _follows(earlier, subject, stands_alone, similarity, min_similarity):
            subject = earlier.strip()
    why = _follows(question, subject, stands_alone, similarity, min_similarity)
    if not why:
        return Resolution(question, question)
    return Resolution(question, f"{subject} {question.strip()}", subject, why)


def _follows(
    question: str,
    subject: str,
    stands_alone: Callable[[str], bool],
    similarity: Callable[[str, str], float],
    min_similarity: float,
) -> str:
    if not subject:
        return ""
    why = cue(question)
    if why:
        return why
    if stands_alone(question):  # short or not, it is answered by itself
        return ""
    if elliptical(question):
        return "ellipsis"
    return "weak alone" if similarity(question, subject) >= min_similarity else ""
