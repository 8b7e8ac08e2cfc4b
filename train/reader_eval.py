"""The reader on articles training never saw: held-out question sets, Platt calibration and the
abstention threshold, XQuAD answer-sentence accuracy per language pair, and the data card."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from train import reader_data as rd

# Question language → sentence language pairs reported for XQuAD (the corpus's languages first).
XQUAD_PAIRS = (
    ("en", "en"), ("en", "nl"), ("en", "sv"), ("en", "de"), ("en", "es"), ("en", "zh"),
    ("nl", "en"), ("sv", "en"), ("zh", "en"), ("de", "zh"),
)  # fmt: skip
MAX_SET = 40  # candidates per held-out question, as the answerer's few dozen


@dataclass(frozen=True)
class QSet:
    question: str
    sentences: list[str]
    labels: list[int]
    source: str


def held_out_sets(
    xq: dict[str, rd.Corpus],
    others: Sequence[rd.Corpus],
    held: set[str],
    rng: random.Random,
    n: int,
) -> list[tuple[QSet, QSet]]:
    """(answerable, answer removed) candidate sets for held-out questions: every sentence of the
    question's article (at most ``MAX_SET``, the answer among them) and the same without the
    answering sentence or any sentence holding the answer text."""
    items: list[tuple[rd.Question, rd.Corpus, str, str]] = []
    langs = sorted(xq)
    for q in xq["en"].questions if "en" in xq else []:
        if q.article not in held:
            continue
        # As the product is used: mostly a question in one language, sentences in another.
        other = rng.choice(langs)
        draws = (("en", rng.choice(langs)), (other, rng.choice([x for x in langs if x != other])))
        for ql, sl in draws:
            qq, tq = xq[ql].question(q.qid), xq[sl].question(q.qid)
            if qq and tq:
                aligned = rd.Question(q.qid, qq.text, ql, q.article, tq.paragraph, tq.answer)
                items.append((aligned, xq[sl], xq[sl].answers[q.qid], f"xquad {ql}→{sl}"))
    rng.shuffle(items)
    items = items[: n // 2]  # at most half XQuAD (cross-lingual), the rest the other sources
    rest_items = [(q, c, c.answers[q.qid], c.name) for c in others for q in c.questions
                  if q.article in held]  # fmt: skip
    rng.shuffle(rest_items)
    items += rest_items[: n - len(items)]
    out = []
    for q, c, answer, source in items:
        paras = c.paragraphs[q.article]
        pos = paras[q.paragraph].sentences[q.answer]
        rest = [s for j, p in enumerate(paras) for i, s in enumerate(p.sentences)
                if (j, i) != (q.paragraph, q.answer) and not rd.holds(s, answer)]  # fmt: skip
        rng.shuffle(rest)
        rest = rest[: MAX_SET - 1]
        out.append((QSet(q.text, [pos, *rest], [1] + [0] * len(rest), source),
                    QSet(q.text, rest, [0] * len(rest), source)))  # fmt: skip
    return [(a, b) for a, b in out if b.sentences]


def _logits(ce, question: str, sentences: Sequence[str]) -> np.ndarray:  # type: ignore[no-untyped-def]
    import torch

    logits = ce.predict([(question, s) for s in sentences], batch_size=32,
                        activation_fn=torch.nn.Identity(), show_progress_bar=False)  # fmt: skip
    return np.asarray(logits).reshape(-1)


def platt(logits: np.ndarray, labels: np.ndarray, iters: int = 50) -> tuple[float, float]:
    """Logistic regression of labels on logits (Newton's method): p = sigmoid(a·logit + b)."""
    a, b = 1.0, 0.0
    x = np.stack([logits, np.ones_like(logits)], 1)
    for _ in range(iters):
        p = 1 / (1 + np.exp(-(a * logits + b)))
        g = x.T @ (p - labels)
        h = (x * (p * (1 - p))[:, None]).T @ x + 1e-6 * np.eye(2)
        a, b = np.array([a, b]) - np.linalg.solve(h, g)
    return float(a), float(b)


def calibrate(ce, sets: list[tuple[QSet, QSet]]) -> dict:  # type: ignore[no-untyped-def]
    """Platt on the held-out pairs; the threshold where answered and abstained rates are equal."""
    scored = []
    for ans, _ in sets:
        lg = _logits(ce, ans.question, ans.sentences)
        scored.append((lg, np.asarray(ans.labels, dtype=np.float64)))
    all_l = np.concatenate([s[0] for s in scored])
    all_y = np.concatenate([s[1] for s in scored])
    a, b = platt(all_l, all_y)

    def prob(lg: np.ndarray) -> np.ndarray:
        return np.asarray(1 / (1 + np.exp(-(a * lg + b))))

    best_ans = np.array([prob(lg).max() for lg, _ in scored])
    # The answer-removed set is the answerable one without its first (answering) sentence.
    best_none = np.array([prob(lg[1:]).max() for lg, _ in scored])
    top1 = float(np.mean([int(np.argmax(lg) == 0) for lg, _ in scored]))
    grid = np.linspace(0.01, 0.99, 99)
    answered = np.array([(best_ans >= t).mean() for t in grid])
    abstained = np.array([(best_none < t).mean() for t in grid])
    i = int(np.argmin(np.abs(answered - abstained)))
    curve = [
        {"threshold": round(float(t), 2), "answered": round(float(x), 4),
         "abstained": round(float(y), 4)}
        for t, x, y in zip(grid, answered, abstained, strict=True) if round(t * 100) % 10 == 0
    ]  # fmt: skip
    p_all = prob(all_l)
    eps = 1e-7
    logloss = float(-np.mean(all_y * np.log(p_all + eps) + (1 - all_y) * np.log(1 - p_all + eps)))
    return {
        "calibration": {"a": round(a, 5), "b": round(b, 5)},
        "threshold": round(float(grid[i]), 2),
        "metrics": {
            "questions": len(scored), "top1_in_article": round(top1, 4),
            "answered_at_threshold": round(float(answered[i]), 4),
            "abstained_at_threshold": round(float(abstained[i]), 4),
            "log_loss_calibrated": round(logloss, 4), "curve": curve,
            "by_source": _by_source(sets, scored, best_ans, best_none, float(grid[i])),
        },
    }  # fmt: skip


def _group(source: str) -> str:
    if source.startswith("xquad "):
        ql, sl = source[6:].split("→")
        return "xquad cross-lingual" if ql != sl else "xquad same language"
    return source


def _by_source(  # type: ignore[no-untyped-def]
    sets, scored, best_ans: np.ndarray, best_none: np.ndarray, threshold: float
) -> dict[str, dict[str, float]]:
    """Answered, abstained (answer removed) and answering sentence first, per source group."""
    groups: dict[str, list[int]] = {}
    for k, (ans, _) in enumerate(sets):
        groups.setdefault(_group(ans.source), []).append(k)
    return {
        g: {"n": len(ix), "answered": round(float((best_ans[ix] >= threshold).mean()), 4),
            "abstained": round(float((best_none[ix] < threshold).mean()), 4),
            "top1": round(float(np.mean([int(np.argmax(scored[k][0]) == 0) for k in ix])), 4)}
        for g, ix in sorted(groups.items())
    }  # fmt: skip


def evaluate_xquad(ce, base: str, xq: dict[str, rd.Corpus], held: set[str]) -> dict:  # type: ignore[no-untyped-def]
    """Answer-sentence accuracy in the question's paragraph (the aligned paragraph in the
    sentence language) for held-out XQuAD questions: the reader against e5 cosine."""
    from sentence_transformers import SentenceTransformer

    e5 = SentenceTransformer(base, device="cpu")
    out: dict[str, dict[str, float]] = {}
    for ql, sl in XQUAD_PAIRS:
        if ql not in xq or sl not in xq:
            continue
        target = {q.qid: q for q in xq[sl].questions if q.article in held}
        hits_r = hits_e = n = 0
        for q in xq[ql].questions:
            t = target.get(q.qid)
            if t is None:
                continue
            sents = list(xq[sl].paragraphs[t.article][t.paragraph].sentences)
            if len(sents) < 2:
                continue
            n += 1
            hits_r += int(np.argmax(_logits(ce, q.text, sents)) == t.answer)
            qv = e5.encode([f"query: {q.text}"], normalize_embeddings=True)
            sv = e5.encode([f"passage: {s}" for s in sents], normalize_embeddings=True)
            hits_e += int(np.argmax(sv @ qv[0]) == t.answer)
        if n:
            out[f"{ql}→{sl}"] = {"n": n, "reader": round(hits_r / n, 4), "e5": round(hits_e / n, 4)}
    return out


CARD = """# The govrag reader — data card

A cross-encoder that scores (question, sentence) → probability that the sentence answers the
question. Used by the extractive answerer (`rag/answer/`) when `RAG_READER=govrag-reader`; **not
the default**: on the shipped corpus's dev set it answers far fewer questions than the similarity
answerer, because an English question over a Dutch or Swedish sentence gets almost no
probability (the repository README, "The reader", has the figures).

- **Base model:** {base}; its first {layers} layers, a new one-logit linear head over the mean of
  the last hidden states. The embedding matrix and the first {frozen} layers were frozen;
  `reader.safetensors` ({mb:.1f} MB, fp16) holds only what training changed (the upper layers
  and the head); the embeddings, the frozen layers and the tokenizer are loaded from the bundled
  e5 folder.
- **Licence of the weights:** derived from multilingual-e5-small (MIT) and trained on the data
  below; the CC BY-SA data's share-alike terms are taken to apply to these weights: they are
  distributed under **CC BY-SA 4.0**, with the attributions below.
- **Command:** `{command}` (seed {seed}); {minutes} min on {threads} CPU threads.
- **Pairs:** {pairs} (question, sentence, label); by source: {counts}. Positive: the sentence of
  the paragraph holding `answer_start`; negatives: the paragraph's other sentences, sentences of
  other paragraphs of the same article, one sentence of another article; none holds the answer
  text. XQuAD questions are paired with the aligned paragraph in another language. Sentences are
  cut by the index's own splitter (`rag.ingest.chunking.sentence_spans`).
- **Held out (split by article):** {n_held} articles ({held_sample} …); all metrics below are on
  them.

## Sources and licences

| data | languages | licence | source |
|---|---|---|---|
{sources}

## Metrics (held-out articles)

Calibration: p = sigmoid({a} · logit + {b}) (Platt, fitted on held-out pairs). Threshold
**{threshold}**: held-out questions with their answer among their article's sentences are answered
at {answered:.1%}, the same questions with the answering sentence removed abstain at
{abstained:.1%}. Answering sentence first among its article's sentences: {top1:.1%}
({questions} questions). Calibrated log loss {logloss}.

| threshold | answered | abstained (answer removed) |
|---|---|---|
{curve}

At that threshold, by source (`xquad cross-lingual`: question and sentences in two languages):

| source | n | answered | abstained (answer removed) | answering sentence first |
|---|---|---|---|---|
{by_source}

XQuAD answer-sentence accuracy (the answering sentence ranked first in its paragraph), reader vs
e5-small cosine, held-out articles:

| question → sentences | n | reader | e5 cosine |
|---|---|---|---|
{xquad}
"""


SOURCES = (
    ("XQuAD articles 0–23", "ar de el en es hi ro ru th tr vi zh", "CC BY-SA 4.0",
     "google-deepmind/xquad (Artetxe et al., 2020)"),
    ("xquad-dev machine translations", "nl sv da nb", "CC BY-SA 4.0 (derived from XQuAD)",
     "this project's `../shared/data/xquad-dev`"),
    ("CMRC 2018 dev + trial", "zh (simplified)", "CC BY-SA 4.0",
     "ymcui/cmrc2018 (Cui et al., 2019)"),
    ("DRCD dev + test", "zh (traditional)", "CC BY-SA 3.0",
     "DRCKnowledgeTeam/DRCD (Shao et al., 2018)"),
    ("COVID-QA", "en", "Apache-2.0", "deepset-ai/COVID-QA (Möller et al., 2020)"),
    ("Tatoeba test pairs (as used by LASER)", "16 languages ↔ en", "CC BY 2.0 FR",
     "facebookresearch/LASER data/tatoeba/v1 (tatoeba.org)"),
)  # fmt: skip


def write_card(out: Path, meta: dict, size: int, command: str) -> None:
    m, t = meta["metrics"]["held_out"], meta["training"]
    text = CARD.format(
        base=meta["base"], layers=meta["layers"], frozen=meta.get("frozen_layers", 0),
        mb=size / 1e6, command=command, seed=t["seed"],
        minutes=t["minutes"], threads=t["threads"], pairs=t["pairs"],
        counts=", ".join(f"{k} {v}" for k, v in meta["counts"].items()),
        n_held=len(meta["held_out_articles"]),
        held_sample=", ".join(meta["held_out_articles"][:4]), a=meta["calibration"]["a"],
        b=meta["calibration"]["b"], threshold=meta["threshold"],
        answered=m["answered_at_threshold"],
        sources="\n".join("| " + " | ".join(row) + " |" for row in SOURCES),
        abstained=m["abstained_at_threshold"], top1=m["top1_in_article"], questions=m["questions"],
        logloss=m["log_loss_calibrated"],
        curve="\n".join(f"| {c['threshold']} | {c['answered']:.1%} | {c['abstained']:.1%} |"
                        for c in m["curve"]),
        by_source="\n".join(
            f"| {k} | {v['n']} | {v['answered']:.1%} | {v['abstained']:.1%} | {v['top1']:.1%} |"
            for k, v in m.get("by_source", {}).items()
        ),
        xquad="\n".join(f"| {k} | {v['n']} | {v['reader']:.1%} | {v['e5']:.1%} |"
                        for k, v in meta["metrics"]["xquad_answer_sentence"].items()),
    )  # fmt: skip
    (out / "DATA_CARD.md").write_text(text, encoding="utf-8")
