"""Compare: one question asked once per jurisdiction (or document type, or language), each time
through :meth:`Assistant.ask` with the caller's filters plus the group's restriction, so every
group's answer, citations and abstention are exactly what ``rag ask`` gives for that group.

Groups are the values of the grouping field present in the index (documents without one are in no
group), or the ``only`` values in the order given. Jurisdictions group at the top level:
``US-CO`` and ``US-CA`` documents count under ``US`` (a ``US`` filter matches its subdivisions);
``only=("US-CO",)`` makes a group of one subdivision. Keys are sorted, ``INT`` last.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from rag.types import Answer, Citation, Document, Filters

GROUP_BY = ("jurisdiction", "type", "language")
NO_PASSAGE = "no passage found"
LAST = ("INT",)  # jurisdiction keys listed after the others

# The Filters field each grouping restricts.
_FIELD = {"jurisdiction": "jurisdictions", "type": "types", "language": "langs"}


class Asks(Protocol):
    """What compare needs of the Assistant."""

    def ask(self, question: str, *, history: Sequence[tuple[str, str]] = (),
            filters: Filters | None = None, mode: str | None = None) -> Answer: ...  # fmt: skip

    def documents(self) -> list[tuple[Document, int]]: ...


@dataclass(frozen=True)
class Group:
    """One group's answer: ``assistant.ask(question, filters=filters)``."""

    key: str
    answer: Answer
    filters: Filters

    @property
    def abstained(self) -> bool:
        return self.answer.abstained

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "abstained": self.abstained, "answer": self.answer.to_json()}


@dataclass(frozen=True)
class Comparison:
    """The question's answers, one per group, in a stable order."""

    question: str
    by: str
    groups: tuple[Group, ...]

    def to_json(self) -> dict[str, Any]:
        return {"question": self.question, "by": self.by,
                "groups": [g.to_json() for g in self.groups]}  # fmt: skip


def _check_by(by: str) -> None:
    if by not in GROUP_BY:
        raise ValueError(f"compare by must be one of {', '.join(GROUP_BY)}, got {by!r}")


def normalize_key(by: str, key: str) -> str:
    """A group key as it is compared and shown: ``us-co`` → ``US-CO``, ``Law`` → ``law``."""
    key = key.strip()
    return key.upper() if by == "jurisdiction" else key.lower()


def document_key(doc: Document, by: str) -> str:
    """The group ``doc`` belongs to ("" for none): its top-level jurisdiction (``US-CO`` → ``US``),
    its document type or its language."""
    _check_by(by)
    if by == "jurisdiction":
        return normalize_key(by, doc.jurisdiction).split("-", 1)[0]
    return normalize_key(by, doc.doc_type if by == "type" else doc.lang)


def ordered(by: str, keys: Iterable[str]) -> list[str]:
    """Sorted keys, ``INT`` after the others (for jurisdictions), each once."""
    unique = {k for k in keys if k}
    return sorted(unique, key=lambda k: (by == "jurisdiction" and k in LAST, k))


def group_keys(documents: Iterable[Document], by: str, only: Sequence[str] = ()) -> list[str]:
    """The groups to compare: ``only`` in its order (normalized, each once), else every value of
    the grouping field among ``documents``, sorted."""
    _check_by(by)
    if only:
        return list(dict.fromkeys(k for k in (normalize_key(by, x) for x in only) if k))
    return ordered(by, (document_key(d, by) for d in documents))


def key_choices(documents: Iterable[Document], by: str) -> list[str]:
    """What a person can pick as ``only``: the groups, and for jurisdictions also each
    subdivision present (``US``, ``US-CA``, ``US-CO``)."""
    docs = list(documents)
    keys = set(group_keys(docs, by))
    if by == "jurisdiction":
        keys |= {normalize_key(by, d.jurisdiction) for d in docs if d.jurisdiction.strip()}
    return ordered(by, keys)


def group_filters(base: Filters, by: str, key: str) -> Filters:
    """The caller's filters with the grouping field restricted to ``key``."""
    _check_by(by)
    if by == "jurisdiction":
        return replace(base, jurisdictions=(key,))
    if by == "type":
        return replace(base, types=(key,))
    return replace(base, langs=(key,))


def compare(
    assistant: Asks,
    question: str,
    *,
    by: str = "jurisdiction",
    only: Sequence[str] = (),
    filters: Filters | None = None,
    mode: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> Comparison:
    """Ask ``question`` once per group. A filter on the grouping field itself (``--jurisdiction``
    with ``by="jurisdiction"``) is taken as ``only`` when ``only`` is empty. ``progress(key, i, n)``
    is called before group ``i`` of ``n`` is asked."""
    _check_by(by)
    base = filters or Filters()
    if not question.strip():
        raise ValueError("the question is empty")
    only = tuple(only) or getattr(base, _FIELD[by])
    keys = group_keys(() if only else (d for d, _ in assistant.documents()), by, only)
    groups = []
    for i, key in enumerate(keys):
        if progress is not None:
            progress(key, i, len(keys))
        f = group_filters(base, by, key)
        groups.append(Group(key, assistant.ask(question, filters=f, mode=mode), f))
    return Comparison(question, by, tuple(groups))


def citation_where(c: Citation) -> str:
    """``EU AI Act · EU · en · p. 12``: title, jurisdiction, language and page where known."""
    page = f"p. {c.page}" if c.page else ""
    return " · ".join(x for x in (c.title, c.jurisdiction, c.lang, page) if x)


def comparison_text(comparison: Comparison) -> str:
    """The comparison for a terminal: per group ``EU — <answer with [n]>`` and its citations
    (title, jurisdiction, language, page, document id and characters), or
    ``EU — no passage found``."""
    if not comparison.groups:
        return f"No {comparison.by} to compare: no indexed document has one."
    blocks = []
    for g in comparison.groups:
        if g.abstained:
            blocks.append(f"{g.key} — {NO_PASSAGE}")
            continue
        lines = [f"{g.key} — {g.answer.answer.strip()}"]
        if g.answer.note:
            lines.append(f"({g.answer.note})")
        lines.append("")
        lines += [f"  [{c.n}] {citation_where(c)} — {c.doc_id}, chars {c.start}-{c.end}"
                  for c in g.answer.citations]  # fmt: skip
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
