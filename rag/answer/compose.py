"""Hits → Answer: the evidence types, the answer text with its numbered citations, and the
abstention, in the question's language. Every quote is an exact span of its document's cleaned
text; the answerers (``extractive.py``, ``llm.py``) choose the evidence, this module writes it.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from rag.types import Answer, Citation, Filters, Hit

# Lead line (one source, several sources) and abstention message, per question language.
LEADS: dict[str, tuple[str, str]] = {
    "en": ("According to 1 source in the corpus:", "According to {n} sources in the corpus:"),
    "nl": ("Volgens 1 bron in het corpus:", "Volgens {n} bronnen in het corpus:"),
    "sv": ("Enligt 1 källa i korpusen:", "Enligt {n} källor i korpusen:"),
    "de": ("Laut 1 Quelle im Korpus:", "Laut {n} Quellen im Korpus:"),
    "fr": ("Selon 1 source du corpus :", "Selon {n} sources du corpus :"),
    "es": ("Según 1 fuente del corpus:", "Según {n} fuentes del corpus:"),
    "it": ("Secondo 1 fonte del corpus:", "Secondo {n} fonti del corpus:"),
    "pt": ("Segundo 1 fonte do corpus:", "Segundo {n} fontes do corpus:"),
    "da": ("Ifølge 1 kilde i korpusset:", "Ifølge {n} kilder i korpusset:"),
    "no": ("Ifølge 1 kilde i korpuset:", "Ifølge {n} kilder i korpuset:"),
    "zh": ("根据语料库中的 1 个来源：", "根据语料库中的 {n} 个来源："),
}
ABSTAIN: dict[str, str] = {
    "en": "The documents in the corpus do not answer this question. The closest passages are "
    "listed below.",
    "nl": "De documenten in het corpus beantwoorden deze vraag niet. Hieronder staan de passages "
    "die er het dichtst bij komen.",
    "sv": "Dokumenten i korpusen besvarar inte den här frågan. Nedan visas de närmaste passagerna.",
    "de": "Die Dokumente im Korpus beantworten diese Frage nicht. Unten stehen die nächstliegenden "
    "Passagen.",
    "fr": "Les documents du corpus ne répondent pas à cette question. Les passages les plus "
    "proches figurent ci-dessous.",
    "es": "Los documentos del corpus no responden a esta pregunta. Abajo se muestran los pasajes "
    "más cercanos.",
    "it": "I documenti del corpus non rispondono a questa domanda. Sotto i passaggi più vicini.",
    "pt": "Os documentos do corpus não respondem a esta pergunta. Abaixo estão as passagens mais "
    "próximas.",
    "da": "Dokumenterne i korpusset besvarer ikke dette spørgsmål. Nedenfor ses de nærmeste "
    "passager.",
    "no": "Dokumentene i korpuset besvarer ikke dette spørsmålet. Nedenfor vises de nærmeste "
    "avsnittene.",
    "zh": "语料库中的文档无法回答这个问题。下面列出了最接近的段落。",
}


# When the filters leave no passage at all: not "the corpus does not answer", which would be wrong.
NO_MATCH: dict[str, str] = {
    "en": "No documents match these filters. Widen or remove a filter (language, source, dates).",
    "nl": "Geen documenten voldoen aan deze filters. Verruim of verwijder een filter (taal, bron, "
    "datums).",
    "sv": "Inga dokument matchar de här filtren. Vidga eller ta bort ett filter (språk, källa, "
    "datum).",
    "de": "Keine Dokumente passen zu diesen Filtern. Erweitern oder entfernen Sie einen Filter "
    "(Sprache, Quelle, Datum).",
    "fr": "Aucun document ne correspond à ces filtres. Élargissez ou retirez un filtre (langue, "
    "source, dates).",
    "es": "Ningún documento coincide con estos filtros. Amplíe o quite un filtro (idioma, fuente, "
    "fechas).",
    "it": "Nessun documento corrisponde a questi filtri. Allarga o rimuovi un filtro (lingua, "
    "fonte, date).",
    "pt": "Nenhum documento corresponde a estes filtros. Alargue ou remova um filtro (língua, "
    "fonte, datas).",
    "da": "Ingen dokumenter matcher disse filtre. Udvid eller fjern et filter (sprog, kilde, "
    "datoer).",
    "no": "Ingen dokumenter samsvarer med disse filtrene. Utvid eller fjern et filter (språk, "
    "kilde, datoer).",
    "zh": "没有文档符合这些筛选条件。请放宽或移除筛选条件（语言、来源、日期）。",
}


def lead_line(lang: str, n_sources: int) -> str:
    one, many = LEADS.get(lang, LEADS["en"])
    return one if n_sources == 1 else many.format(n=n_sources)


def abstain_message(lang: str) -> str:
    return ABSTAIN.get(lang, ABSTAIN["en"])


@dataclass(frozen=True)
class Evidence:
    sentence_row: int
    hit: Hit
    start: int  # offsets in the document's cleaned text
    end: int
    quote: str
    score: float


@dataclass(frozen=True)
class Retrieval:
    """One question's retrieval: ``ranked`` (row, score) and ``hits`` are aligned."""

    question: str
    lang: str  # the question's language
    query: str  # the question resolved against the chat history
    query_lang: str
    query_vec: np.ndarray  # centered
    ranked: list[tuple[int, float]]
    hits: list[Hit]
    filters: Filters = field(default_factory=Filters)  # what the search was restricted to
    # A follow-up's evidence is ranked with ``query_vec`` (the question, the subject mixed in);
    # whether the corpus answers it at all is judged with the subject and question's own vector.
    topic_vec: np.ndarray | None = None


# A "[10]" inside source text (a footnote marker of the Official Journal, "[45] Commission
# Decision …") would read as citation 10 in the answer; the answer text shows it as "⁽¹⁰⁾". The
# citation's ``quote`` keeps the exact source text.
_MARKER = re.compile(r"\[(\d{1,4})\]")
_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def render_quote(quote: str) -> str:
    """The quote as the answer text shows it: no ``[n]`` that is not a citation."""
    return _MARKER.sub(lambda m: f"⁽{m.group(1).translate(_SUPERSCRIPT)}⁾", quote)


def overlaps(a: Evidence, b: Evidence) -> bool:
    return a.hit.doc_id == b.hit.doc_id and a.start < b.end and b.start < a.end


def abstention(r: Retrieval, mode: str, note: str = "") -> Answer:
    """ "The corpus does not answer this", in the question's language, with the closest passages;
    or, when the filters left no passage at all, "No documents match these filters"."""
    if not r.hits and r.filters.active:
        message = NO_MATCH.get(r.lang, NO_MATCH["en"])
    else:
        message = abstain_message(r.lang)
    return Answer(
        question=r.question, question_lang=r.lang, answer=message,
        abstained=True, mode=mode, closest=tuple(r.hits[:3]), retrieval_query=r.query, note=note,
    )  # fmt: skip


def compose(question: str, lang: str, chosen: Sequence[Evidence], query: str = "") -> Answer:
    """Group quotes by source (in order of first appearance; within a source in the order
    chosen, best first) and number them [1], [2], …"""
    by_doc: OrderedDict[str, list[Evidence]] = OrderedDict()
    for ev in chosen:
        by_doc.setdefault(ev.hit.doc_id, []).append(ev)
    citations: list[Citation] = []
    blocks = []
    for evs in by_doc.values():
        h = evs[0].hit
        meta = ", ".join(x for x in (h.lang, h.date) if x)
        quotes = []
        for ev in evs:  # best first, as chosen
            n = len(citations) + 1
            citations.append(Citation.of(n, ev.hit, ev.quote, ev.start, ev.end))
            quotes.append(f"“{render_quote(ev.quote)}” [{n}]")
        blocks.append(f"{h.title} ({meta}):\n" + " … ".join(quotes))
    text = lead_line(lang, len(by_doc)) + "\n\n" + "\n\n".join(blocks)
    return Answer(
        question=question, question_lang=lang, answer=text, abstained=False, mode="extractive",
        citations=tuple(citations), retrieval_query=query or question,
    )  # fmt: skip
