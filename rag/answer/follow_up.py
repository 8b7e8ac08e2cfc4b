"""Follow-up questions in a chat: resolve "and what did Japan say?" against the conversation."""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.ingest.lang import detect_language

_FOLLOW_UP = re.compile(
    r"^(and|but|what about|how about|also|en|maar|och|men|und|aber|et|mais|y|pero|e|og|"
    r"那|那么|还有)\b",
    re.IGNORECASE,
)


def resolve_follow_up(question: str, history: Sequence[tuple[str, str]]) -> str:
    """Resolve a short follow-up ("and what did Japan say?") against the previous question.

    ``history`` is ``[(user question, assistant answer), ...]``, oldest first.
    """
    if not history:
        return question
    words = len(question.split()) if detect_language(question) != "zh" else len(question) // 2
    if words <= 6 or _FOLLOW_UP.match(question.strip()):
        return f"{history[-1][0]} {question}"
    return question
