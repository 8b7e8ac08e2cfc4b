"""(question, sentence, label) pairs for the reader, from SQuAD-format QA data. Seeded, pure.

A question's positive is the sentence of its paragraph that holds ``answer_start`` (the answer
entirely inside it); its negatives are the paragraph's other sentences and sentences of other
paragraphs of the same article (hard), and one from another article (easy), none holding the
answer text. XQuAD's questions share ids across languages, so a question in one language is paired
with the aligned paragraph in another. Sentences come from the index's own splitter
(``rag.ingest.chunking.sentence_spans``): training sees what serving sees.

The split is by article: a held-out article gives no question and no sentence to training.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rag.ingest.chunking import sentence_spans, text_length

MIN_CHARS = 25  # as the answerer's shortest quotable sentence (AnswerConfig.min_chars)

# Languages of XQuAD (human translations) and of xquad-dev's machine translations (nl, sv, da, nb).
XQUAD_LANGS = ("en", "ar", "de", "el", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh")
XQUAD_DEV_LANGS = ("nl", "sv", "da", "nb")


@dataclass(frozen=True)
class Paragraph:
    article: str  # "<source>:<title>": the unit of the split
    sentences: tuple[str, ...]


@dataclass(frozen=True)
class Question:
    qid: str
    text: str
    lang: str
    article: str
    paragraph: int  # index into the article's paragraphs
    answer: int  # index of the answering sentence in that paragraph


@dataclass(frozen=True)
class Pair:
    question: str
    sentence: str
    label: float
    source: str  # which dataset (and language pair), for the data card's counts
    article: str


def sentences_of(text: str) -> list[tuple[int, int]]:
    return sentence_spans(text)


def _answer_sentence(spans: list[tuple[int, int]], start: int, length: int) -> int | None:
    for i, (s, e) in enumerate(spans):
        if s <= start < e:
            return i if start + length <= e else None
    return None


@dataclass
class Corpus:
    """One dataset in one language: articles → paragraphs (sentences) and questions."""

    name: str
    lang: str
    paragraphs: dict[str, list[Paragraph]]
    questions: list[Question]
    answers: dict[str, str]  # qid → answer text (to keep negatives free of it)

    _by_id: dict[str, Question] | None = field(default=None, init=False, repr=False)

    def question(self, qid: str) -> Question | None:
        """The question with this id (XQuAD ids are shared across languages); indexed once."""
        if self._by_id is None:
            self._by_id = {q.qid: q for q in self.questions}
        return self._by_id.get(qid)


def load_squad(path: Path, name: str, lang: str) -> Corpus:
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    paragraphs: dict[str, list[Paragraph]] = {}
    questions: list[Question] = []
    answers: dict[str, str] = {}
    for a_i, art in enumerate(data):
        article = f"{name}:{art.get('title') or a_i}"
        paras = paragraphs.setdefault(article, [])
        for para in art["paragraphs"]:
            ctx = para["context"]
            spans = sentences_of(ctx)
            p_i = len(paras)
            paras.append(Paragraph(article, tuple(ctx[s:e] for s, e in spans)))
            for qa in para["qas"]:
                if not qa.get("answers"):
                    continue
                ans = qa["answers"][0]
                idx = _answer_sentence(spans, int(ans["answer_start"]), len(ans["text"]))
                if idx is None or text_length(paras[p_i].sentences[idx]) < MIN_CHARS:
                    continue
                qid = str(qa["id"])
                questions.append(Question(qid, qa["question"].strip(), lang, article, p_i, idx))
                answers[qid] = ans["text"]
    return Corpus(name, lang, paragraphs, questions, answers)


def load_xquad_dev(folder: Path, lang: str) -> Corpus:
    """xquad-dev's BEIR files (machine translations): the answer text located in the paragraph."""
    paras_by_id: dict[str, str] = {}
    for line in (folder / f"corpus.{lang}.jsonl").read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        paras_by_id[d["_id"]] = d["text"]
    qrels: dict[str, str] = {}
    for line in (folder / "qrels.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        q, c, _ = line.split("\t")
        qrels[q] = c
    paragraphs: dict[str, list[Paragraph]] = {}
    index: dict[str, tuple[str, int, list[tuple[int, int]]]] = {}
    for pid in sorted(paras_by_id):
        article = f"xquad:{pid.split('_')[0]}"
        spans = sentences_of(paras_by_id[pid])
        paras = paragraphs.setdefault(article, [])
        index[pid] = (article, len(paras), spans)
        paras.append(Paragraph(article, tuple(paras_by_id[pid][s:e] for s, e in spans)))
    questions, answers = [], {}
    for line in (folder / f"queries.{lang}.jsonl").read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        qpid = qrels.get(d["_id"])
        if qpid is None or not d.get("answer_in_context"):
            continue
        pid = qpid
        article, p_i, spans = index[pid]
        start = paras_by_id[pid].find(d["answer"])
        idx = None if start < 0 else _answer_sentence(spans, start, len(d["answer"]))
        if idx is None or text_length(paragraphs[article][p_i].sentences[idx]) < MIN_CHARS:
            continue
        questions.append(Question(d["_id"], d["text"].strip(), lang, article, p_i, idx))
        answers[d["_id"]] = d["answer"]
    return Corpus("xquad", lang, paragraphs, questions, answers)


def load_xquad(qa_train: Path, xquad_dev: Path | None) -> dict[str, Corpus]:
    """XQuAD articles 0–23 per language, articles named by position so languages align."""
    out: dict[str, Corpus] = {}
    for lang in XQUAD_LANGS:
        path = qa_train / "xquad-0-23" / f"xquad.{lang}.json"
        if not path.exists():
            continue
        c = load_squad(path, "xquad", lang)
        # Titles differ by language; the article's position is the same in every file.
        names = {old: f"xquad:a{i:02d}" for i, old in enumerate(c.paragraphs)}
        c.paragraphs = {names[k]: v for k, v in c.paragraphs.items()}
        c.questions = [
            Question(q.qid, q.text, q.lang, names[q.article], q.paragraph, q.answer)
            for q in c.questions
        ]
        out[lang] = c
    if xquad_dev is not None and xquad_dev.is_dir():
        for lang in XQUAD_DEV_LANGS:
            if (xquad_dev / f"corpus.{lang}.jsonl").exists():
                out[lang] = load_xquad_dev(xquad_dev, lang)
    return out


def split_articles(articles: list[str], held_out: float, seed: int) -> set[str]:
    """The held-out articles: a seeded share of them (at least one when there are two or more)."""
    ordered = sorted(articles)
    random.Random(seed).shuffle(ordered)
    n = max(1 if len(ordered) > 1 else 0, round(len(ordered) * held_out))
    return set(ordered[:n])


_WS = re.compile(r"\s+")


def holds(sentence: str, answer: str) -> bool:
    """The sentence contains the answer text (case and whitespace aside)."""
    return bool(answer) and _WS.sub(" ", answer.lower()) in _WS.sub(" ", sentence.lower())


def pairs_for(
    q: Question,
    target: Corpus,
    answer: str,
    rng: random.Random,
    *,
    negatives: int,
    source: str,
    positive: bool = True,
) -> Iterator[Pair]:
    """The positive (when ``positive``) and ``negatives`` negatives of ``q`` among ``target``'s
    sentences of the same article: the paragraph's other sentences first, then other paragraphs',
    then one sentence of another article."""
    paras = target.paragraphs.get(q.article, [])
    if q.paragraph >= len(paras):
        return
    para = paras[q.paragraph]
    if q.answer >= len(para.sentences):
        return
    if positive:
        yield Pair(q.text, para.sentences[q.answer], 1.0, source, q.article)
    same = [s for i, s in enumerate(para.sentences) if i != q.answer]
    other = [s for j, p in enumerate(paras) if j != q.paragraph for s in p.sentences]
    rng.shuffle(same)
    rng.shuffle(other)
    pool = same[: max(1, negatives // 2)] + other
    picked = [s for s in pool if text_length(s) >= MIN_CHARS and not holds(s, answer)]
    for s in picked[: max(0, negatives - 1)]:
        yield Pair(q.text, s, 0.0, source, q.article)
    foreign = [a for a in target.paragraphs if a != q.article]
    if foreign:
        p = rng.choice(target.paragraphs[rng.choice(foreign)])
        cands = [s for s in p.sentences if text_length(s) >= MIN_CHARS]
        if cands:
            yield Pair(q.text, rng.choice(cands), 0.0, source, q.article)


# Tatoeba (LASER's test pairs): 1,000 English sentences and their translations per language.
TATOEBA_LANGS = {
    "nld": "nl", "swe": "sv", "deu": "de", "fra": "fr", "spa": "es", "cmn": "zh", "dan": "da",
    "nob": "nb", "ita": "it", "por": "pt", "pol": "pl", "jpn": "ja", "kor": "ko", "rus": "ru",
    "ara": "ar", "fin": "fi",
}  # fmt: skip


def load_tatoeba(folder: Path) -> dict[str, list[tuple[str, str]]]:
    """Language → line-aligned (English, translation) pairs; missing languages are skipped."""
    out: dict[str, list[tuple[str, str]]] = {}
    for code, lang in TATOEBA_LANGS.items():
        xx = folder / f"tatoeba.{code}-eng.{code}"
        en = folder / f"tatoeba.{code}-eng.eng"
        if not (xx.exists() and en.exists()):
            continue
        a = en.read_text(encoding="utf-8").splitlines()
        b = xx.read_text(encoding="utf-8").splitlines()
        out[lang] = [(e.strip(), x.strip()) for e, x in zip(a, b, strict=False) if e and x]
    return out


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


def translation_pairs(
    tatoeba: dict[str, list[tuple[str, str]]],
    per_lang: int,
    rng: random.Random,
    *,
    held_out: float,
    candidates: int = 30,
) -> tuple[list[Pair], dict[str, list[int]]]:
    """Cross-lingual pairs that teach the cross-encoder to read across languages: a sentence in
    one language and its translation (label 1), and the same sentence with the translation of
    another sentence on a related subject (label 0: the one of ``candidates`` random others whose
    English shares the most words with this one's). The first segment is English or the other
    language at random. A seeded share of each language's lines is held out (returned by
    language) and gives no pair."""
    pairs: list[Pair] = []
    held: dict[str, list[int]] = {}
    for lang in sorted(tatoeba):
        rows = tatoeba[lang]
        order = list(range(len(rows)))
        rng.shuffle(order)
        n_held = round(len(order) * held_out)
        held[lang], train = sorted(order[:n_held]), order[n_held:]
        for i in train[:per_lang]:
            en, xx = rows[i]
            words = _words(en)
            others = [j for j in rng.sample(train, min(candidates, len(train))) if j != i]
            if not others:
                continue
            j = max(others, key=lambda k: len(words & _words(rows[k][0])))
            first_en = rng.random() < 0.5
            a, b, b_neg = (en, xx, rows[j][1]) if first_en else (xx, en, rows[j][0])
            src = f"tatoeba {'en→' + lang if first_en else lang + '→en'}"
            pairs.append(Pair(a, b, 1.0, src, f"tatoeba:{lang}:{i}"))
            pairs.append(Pair(a, b_neg, 0.0, src, f"tatoeba:{lang}:{i}"))
    return pairs, held
