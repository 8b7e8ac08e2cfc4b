"""The type of answer a question asks for: a number, or a date in particular; and whether a
sentence holds one. Used by the extractive answerer to abstain when no good sentence holds what
is asked for, and to quote one that does first."""

from __future__ import annotations

import re

# Phrases that ask for a point in time in en, nl, sv, de, fr, es, zh. Words that also start
# conditional clauses ("what happens when …") count only at the start of the question.
_DATE_PHRASES = (
    r"\b(?:(?:what|which) (?:date|year|day|month)s?|welke (?:datum|dag|maand)|welk jaar|"
    r"vilket (?:datum|år)|vilken (?:dag|månad)|wann|"  # also seit/bis/ab wann
    r"welche[mn]? (?:datum|jahr|tag|monat)|depuis quand|jusqu'à quand|à partir de quand|"
    r"quel(?:le)?s? (?:dates?|années?|jours?|mois)|cuándo|qué (?:fechas?|años?|días?|mes(?:es)?))\b"
    r"|什么时候|何时|哪一年|哪年|哪天"
    r"|^\W*(?:(?:and|but|so|en|maar|och|men|und|aber|et|mais|y|pero)\s+)?"
    r"(?:when|since when|until when|wanneer|sinds wanneer|när|sedan när|quand)\b"
)
# ... and for a quantity.
_QUANTITY_PHRASES = (
    r"\b(?:how (?:many|much|long|high|large|often)|hoeveel|hoe (?:lang|hoog|groot|vaak)|"
    r"hur (?:många|mycket|länge|lång|hög|stor|ofta)|wie (?:viele|viel|lange|hoch|groß|oft)|"
    r"combien|cuánt[oa]s?)\b|多少|(?<!哪)几|多久|多长时间"
)
_ASKS_DATE = re.compile(_DATE_PHRASES, re.IGNORECASE)
_ASKS_NUMBER = re.compile(f"{_QUANTITY_PHRASES}|{_DATE_PHRASES}", re.IGNORECASE)
# A number in a sentence: digits, Chinese numerals before a counter (not an article label such as
# 第七条, which is a reference, not a quantity), or a number word from two up (articles such as
# "en", "een", "un" are left out, and Swedish "sex").
_ZH_NUMERALS = "〇零一二三四五六七八九十百千万亿两"
_HAS_NUMBER = re.compile(
    rf"\d|(?<![第{_ZH_NUMERALS}])[{_ZH_NUMERALS}]+[个日天年月周倍项家条次名人元%]"
    r"|\b(?:two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|fifty|"
    r"hundred|thousand|million|billion|dozen|"
    r"twee|drie|vier|vijf|zes|zeven|acht|negen|tien|twaalf|honderd|duizend|miljoen|miljard|"
    r"två|tre|fyra|fem|sju|åtta|nio|tio|tolv|hundra|tusen|miljon(?:er)?|miljard(?:er)?|"
    r"zwei|drei|fünf|sechs|sieben|neun|zehn|zwölf|hundert|tausend|million(?:en)?|milliarde(?:n)?|"
    r"deux|trois|quatre|cinq|sept|huit|neuf|dix|douze|cents?|mille|millions?|milliards?|"
    r"dos|tres|cuatro|cinco|seis|siete|ocho|nueve|diez|doce|cien|ciento|mil|millón|millones)\b",
    re.IGNORECASE,
)
NO_NUMBER_NOTE = (
    "The question asks for a number or a date, and none of the best-matching sentences holds one."
)


def asks_for_number(question: str) -> bool:
    """Does the question ask for a quantity or a date ("how many", "seit wann", "多少", …)?"""
    return bool(_ASKS_NUMBER.search(question))


def has_number(sentence: str) -> bool:
    """Does the sentence hold a number or a date (digits, Chinese numerals, number words)?"""
    return bool(_HAS_NUMBER.search(sentence))


_MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december|"
    "januari|februari|maart|mei|juni|juli|augustus|oktober|"
    "mars|augusti|"
    "januar|februar|märz|dezember|"
    "janvier|février|avril|juin|juillet|août|septembre|octobre|novembre|décembre|"
    "enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|octubre|noviembre|diciembre"
)
# A date: a year, a month name, a numeric day and month, or a Chinese year/month/day.
_HAS_DATE = re.compile(
    rf"\b(?:1[5-9]\d\d|20\d\d)\b|\b(?:{_MONTHS})\b|\b\d{{1,2}}[./-]\d{{1,2}}\b"
    rf"|[\d{_ZH_NUMERALS}]+\s*[年月日]",
    re.IGNORECASE,
)


def asks_for_date(question: str) -> bool:
    """Does the question ask for a point in time ("when", "seit wann", "什么时候", "which year")?"""
    return bool(_ASKS_DATE.search(question))


def has_date(sentence: str) -> bool:
    """Does the sentence hold a date (a year, a month, a day and month, 2022年11月1日)?"""
    return bool(_HAS_DATE.search(sentence))
