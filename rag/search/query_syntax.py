"""The search syntax: ``"exact phrase"``, ``-exclude``, ``-"a phrase"``, ``a OR b`` and field
filters (``lang:sv``, ``jurisdiction:CN``, ``type:law``, ``doc:eu_ai_act``, ``source:reuters``,
``date:2023``, ``date:2023..2024``, ``date:2023-05..``, ``date:..2024``).

Parsing only (pure, no index): :func:`parse` turns a query into one or more :class:`Clause`\\ s,
the alternatives its ``OR``\\ s allow. ``OR`` joins the two terms next to it and binds tighter
than the space between terms, as in web search engines: ``"AI Act" OR GDPR fines`` is
(``"AI Act"`` or ``GDPR``) and ``fines``, i.e. the two clauses ``"AI Act" fines`` and
``GDPR fines``. Only the upper-case word ``OR`` is the operator; ``or`` is a word.

In a clause, free words are searched semantically (and across languages) as one text, phrases
and quoted words also join that text and must occur in the passage, exclusions must not occur,
field filters narrow the clause's passages (several values of one field: any of them). A query
without operators is returned as one clause whose text is the query unchanged.

Bad syntax raises :class:`QuerySyntaxError` (a ``ValueError``) whose message names the problem.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

from rag.types import Filters

MAX_CLAUSES = 16  # OR alternatives a query may expand to
FIELDS = {
    "lang": "langs", "language": "langs", "jurisdiction": "jurisdictions", "type": "types",
    "doc": "docs", "source": "sources", "date": "date",
}  # fmt: skip
FIELD_HELP = "lang, jurisdiction, type, doc, source, date"
QUOTES = '"“”„'
_FIELD = re.compile(r"^([A-Za-z]+):(.*)$", re.S)
_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")
_LANG = re.compile(r"^[a-z]{2,3}$")
_JURISDICTION = re.compile(r"^[A-Z0-9]{2,3}(?:-[A-Z0-9]{1,4})?$")


class QuerySyntaxError(ValueError):
    """The query cannot be parsed; the message says what is wrong and how to fix it."""


@dataclass(frozen=True)
class Term:
    kind: str  # "word", "phrase", "exclude", "field"
    value: str
    name: str = ""  # the field's name for kind "field"


@dataclass(frozen=True)
class Clause:
    """One alternative of a query: everything in it must hold at once."""

    text: str  # what is searched semantically: the free words and phrases, in query order
    words: tuple[str, ...] = ()  # the free words (not in quotes)
    phrases: tuple[str, ...] = ()  # must occur in the passage (exact, folded)
    excluded: tuple[str, ...] = ()  # must not occur in the passage
    filters: Filters = field(default_factory=Filters)  # the clause's field filters

    @property
    def lexical(self) -> bool:
        return bool(self.phrases or self.excluded)


@dataclass(frozen=True)
class ParsedQuery:
    query: str
    clauses: tuple[Clause, ...]
    plain: bool  # no operator at all: search the query text as it is

    @property
    def phrases(self) -> tuple[str, ...]:
        """The phrases of every clause (what must occur), for highlighting."""
        return tuple(dict.fromkeys(p for c in self.clauses for p in c.phrases))

    @property
    def words(self) -> tuple[str, ...]:
        """The free words of every clause, for highlighting."""
        return tuple(dict.fromkeys(w for c in self.clauses for w in c.words))


def _read_quoted(query: str, i: int) -> tuple[str, int]:
    """The text from the quote at ``i`` to the next quote, and the position after it."""
    j = i + 1
    while j < len(query) and query[j] not in QUOTES:
        j += 1
    if j >= len(query):
        shown = query[i:i + 40] + ("…" if len(query) - i > 40 else "")  # fmt: skip
        raise QuerySyntaxError(f'unclosed quote in {shown!r}: add the closing " after the phrase')
    return query[i + 1 : j], j + 1


def tokenize(query: str) -> list[Term | None]:
    """Terms of ``query`` in order; ``None`` stands for ``OR``."""
    out: list[Term | None] = []
    i, n = 0, len(query)
    while i < n:
        ch = query[i]
        if ch.isspace():
            i += 1
            continue
        if ch in QUOTES:
            text, i = _read_quoted(query, i)
            out.append(_phrase("phrase", text))
            continue
        if ch == "-" and i + 1 < n and query[i + 1] in QUOTES:
            text, i = _read_quoted(query, i + 1)
            out.append(_phrase("exclude", text))
            continue
        j = i
        while j < n and not query[j].isspace() and query[j] not in QUOTES:
            j += 1
        word, i = query[i:j], j
        m = _FIELD.match(word)
        if word == "OR":
            out.append(None)
        elif m and not m.group(2).startswith("//"):  # not a URL (https://…)
            value = m.group(2)
            if not value and i < n and query[i] in QUOTES:  # doc:"a b"
                value, i = _read_quoted(query, i)
            out.append(_field(m.group(1), value))
        elif word.startswith("-") and len(word) > 1:
            if _FIELD.match(word[1:]):
                raise QuerySyntaxError(
                    f"{word}: a field filter cannot be excluded; use the filter for what you "
                    "want instead (e.g. lang:sv)"
                )
            out.append(Term("exclude", word[1:]))
        else:
            out.append(Term("word", word))
    return out


def _phrase(kind: str, text: str) -> Term:
    text = " ".join(text.split())
    if not text:
        raise QuerySyntaxError('an empty phrase "": put words between the quotes or remove them')
    return Term(kind, text)


def _field(name: str, value: str) -> Term:
    key = name.lower()
    if key not in FIELDS and name != key:
        # "EU:s", "USA:s", "AI:n": Swedish/Finnish endings after an acronym are words, not fields.
        return Term("word", f"{name}:{value}")
    if key not in FIELDS:
        raise QuerySyntaxError(
            f"unknown field {name}: (known: {FIELD_HELP}); to search for {name}:{value} "
            "as text, put it in quotes"
        )
    if not value.strip():
        raise QuerySyntaxError(f"{name}: needs a value, e.g. {_example(key)}")
    return Term("field", value.strip(), key)


def _example(key: str) -> str:
    return {"lang": "lang:sv", "language": "lang:sv", "jurisdiction": "jurisdiction:CN",
            "type": "type:law", "doc": "doc:eu_ai_act", "source": "source:reuters",
            "date": "date:2023..2024"}[key]  # fmt: skip


def _groups(terms: list[Term | None]) -> list[list[Term]]:
    """Terms joined by OR into groups of alternatives."""
    groups: list[list[Term]] = []
    join = False
    for i, t in enumerate(terms):
        if t is None:
            if not groups or join or i == len(terms) - 1:
                raise QuerySyntaxError(
                    'OR needs a term on each side (e.g. ChatGPT OR "generative AI")'
                )
            join = True
            continue
        if join:
            groups[-1].append(t)
        else:
            groups.append([t])
        join = False
    return groups


def _check_date(value: str, where: str) -> str:
    m = _DATE.match(value)
    month = int(m.group(2) or 1) if m else 0
    day = int(m.group(3) or 1) if m else 0
    if not m or not (1 <= month <= 12 and 1 <= day <= 31):
        raise QuerySyntaxError(
            f"{where}: {value!r} is not a date; use YYYY, YYYY-MM or YYYY-MM-DD, or a range "
            "such as date:2023..2024"
        )
    return value


def date_range(value: str) -> tuple[str, str]:
    """``2023`` → (2023, 2023); ``2023..2024``, ``2023-05..``, ``..2024`` → (from, to)."""
    where = f"date:{value}"
    if ".." not in value:
        d = _check_date(value, where)
        return d, d
    lo, _, hi = value.partition("..")
    if not lo and not hi:
        raise QuerySyntaxError(f"{where}: give at least one end of the range, e.g. date:2023..")
    lo = _check_date(lo, where) if lo else ""
    hi = _check_date(hi, where) if hi else ""
    if lo and hi and lo > date_end(hi):
        raise QuerySyntaxError(f"{where}: the range ends before it starts")
    return lo, hi


def date_end(value: str) -> str:
    """A date_to value as the last day it covers, for comparing (``2023`` → ``2023-12-31``)."""
    return value + "-12-31"[len(value) - 4 :] if len(value) < 10 else value


def _clause_filters(fields: list[Term]) -> Filters:
    values: dict[str, list[str]] = {}
    date: tuple[str, str] | None = None
    for t in fields:
        key = FIELDS[t.name]
        if key == "date":
            if date is not None:
                raise QuerySyntaxError("two date: filters in one clause; give one range, "
                                       "e.g. date:2023..2024")  # fmt: skip
            date = date_range(t.value)
            continue
        for v in (x.strip() for x in t.value.split(",")):
            if not v:
                continue
            if key == "langs":
                v = v.lower()
                if not _LANG.match(v):
                    raise QuerySyntaxError(f"lang:{v}: use a language code such as sv, zh or en")
            elif key == "jurisdictions":
                v = v.upper()
                if not _JURISDICTION.match(v):
                    raise QuerySyntaxError(f"jurisdiction:{v}: use a code such as CN, EU, US or "
                                           "US-CO")  # fmt: skip
            elif key == "types":
                v = v.replace("_", " ").lower()
            values.setdefault(key, []).append(v)
    lo, hi = date or ("", "")
    return Filters(**{k: tuple(dict.fromkeys(v)) for k, v in values.items()},
                   date_from=lo, date_to=hi)  # fmt: skip


def _clause(terms: list[Term], query: str) -> Clause:
    text = [t.value for t in terms if t.kind in ("word", "phrase")]
    phrases = tuple(dict.fromkeys(t.value for t in terms if t.kind == "phrase"))
    excluded = tuple(dict.fromkeys(t.value for t in terms if t.kind == "exclude"))
    if not text:
        raise QuerySyntaxError(
            f'nothing to search for in {query!r}: add words or a "phrase" (field filters '
            "and -exclusions only narrow a search)"
        )
    fields = [t for t in terms if t.kind == "field"]
    words = tuple(dict.fromkeys(t.value for t in terms if t.kind == "word"))
    return Clause(" ".join(text), words, phrases, excluded, _clause_filters(fields))


def parse(query: str) -> ParsedQuery:
    """``query`` as its clauses; raises :class:`QuerySyntaxError` for bad syntax."""
    query = query.strip()
    if not query:
        raise QuerySyntaxError("the query is empty")
    terms = tokenize(query)
    if all(t is not None and t.kind == "word" for t in terms):
        return ParsedQuery(query, (Clause(query, tuple(query.split())),), plain=True)
    groups = _groups(terms)
    count = 1
    for g in groups:
        count *= len(g)
    if count > MAX_CLAUSES:
        raise QuerySyntaxError(f"the ORs make {count} combinations; at most {MAX_CLAUSES} are "
                               "searched: use fewer ORs")  # fmt: skip
    clauses = [_clause(list(combo), query) for combo in itertools.product(*groups)]
    unique = tuple(dict.fromkeys(clauses))
    return ParsedQuery(query, unique, plain=False)


def _narrow_prefix(a: tuple[str, ...], b: tuple[str, ...], sep: str, what: str) -> tuple[str, ...]:
    """Values of ``a`` and ``b`` that both allow (a code covers its sub-codes: US ⊃ US-CO)."""
    if not a or not b:
        return a or b
    out = []
    for x in a:
        for y in b:
            xs, ys = x.upper(), y.upper()
            if xs == ys or ys.startswith(xs.rstrip(sep) + sep):
                out.append(y)
            elif xs.startswith(ys.rstrip(sep) + sep):
                out.append(x)
    if not out:
        raise _conflict(what, a, b)
    return tuple(dict.fromkeys(out))


def _conflict(what: str, base: tuple[str, ...], query: tuple[str, ...]) -> QuerySyntaxError:
    return QuerySyntaxError(
        f"the query's {what} ({', '.join(query)}) and the {what} filter ({', '.join(base)}) "
        "exclude each other: clear one of them"
    )


def _narrow_sources(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    """Source substrings both allow: the longer of two that contain one another."""
    if not a or not b:
        return a or b
    out = [y if x.lower() in y.lower() else x for x in a for y in b
           if x.lower() in y.lower() or y.lower() in x.lower()]  # fmt: skip
    if not out:
        raise _conflict("source", a, b)
    return tuple(dict.fromkeys(out))


def merge_filters(base: Filters, extra: Filters) -> Filters:
    """The filters set outside the query (flags, facets) narrowed by the query's own: a passage
    must satisfy both. Filters that exclude each other raise :class:`QuerySyntaxError`."""
    if not extra.active:
        return base
    out: dict[str, object] = {}
    for key, what in (("langs", "language"), ("types", "document type")):
        a, b = getattr(base, key), getattr(extra, key)
        both = tuple(x for x in b if x.lower() in {y.lower() for y in a}) if a and b else a or b
        if a and b and not both:
            raise _conflict(what, a, b)
        out[key] = both
    out["jurisdictions"] = _narrow_prefix(base.jurisdictions, extra.jurisdictions, "-",
                                          "jurisdiction")  # fmt: skip
    out["docs"] = _narrow_prefix(base.docs, extra.docs, "/", "document")
    out["sources"] = _narrow_sources(base.sources, extra.sources)
    lo = max(base.date_from, extra.date_from)
    his = [d for d in (base.date_to, extra.date_to) if d]
    hi = min(his, key=date_end) if his else ""
    if lo and hi and lo > date_end(hi):
        raise QuerySyntaxError(f"the dates leave nothing: from {lo} to {hi} (the query's date: "
                               "and the date filter together)")  # fmt: skip
    return Filters(date_from=lo, date_to=hi, **out)  # type: ignore[arg-type]
