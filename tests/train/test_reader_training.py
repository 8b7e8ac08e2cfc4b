"""The reader's training script: its data builder on SQuAD-format data, and a smoke run on a tiny
slice of the training data (real model, real trainer) whose loss must fall."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from train import reader_data as rd

TINY = Path(__file__).resolve().parent.parent / "data" / "qa-train-tiny"


def test_positive_is_the_sentence_holding_the_answer_and_negatives_do_not_hold_it() -> None:
    corpus = rd.load_squad(TINY / "xquad-0-23" / "xquad.en.json", "xquad", "en")
    assert corpus.questions
    rng = random.Random(0)
    for q in corpus.questions[:20]:
        pairs = list(rd.pairs_for(q, corpus, corpus.answers[q.qid], rng, negatives=4,
                                  source="t"))  # fmt: skip
        assert pairs[0].label == 1.0
        assert corpus.answers[q.qid] in pairs[0].sentence
        assert all(p.label == 0.0 for p in pairs[1:]) and len(pairs) >= 2
        assert not any(corpus.answers[q.qid].lower() in p.sentence.lower() for p in pairs[1:])


def test_languages_align_by_article_position_and_question_id() -> None:
    xq = rd.load_xquad(TINY, None)
    assert set(xq) == {"en", "de", "zh"}
    assert (
        set(xq["en"].paragraphs)
        == set(xq["zh"].paragraphs)
        == {f"xquad:a{i:02d}" for i in range(4)}
    )
    zh = {q.qid: q for q in xq["zh"].questions}
    shared = [q for q in xq["en"].questions if q.qid in zh]
    assert len(shared) > 10
    assert all(
        zh[q.qid].article == q.article and zh[q.qid].paragraph == q.paragraph for q in shared
    )


def test_split_is_by_article_and_seeded() -> None:
    arts = [f"a{i}" for i in range(30)]
    held = rd.split_articles(arts, 0.2, seed=3)
    assert len(held) == 6 and held == rd.split_articles(arts, 0.2, seed=3)
    assert held != rd.split_articles(arts, 0.2, seed=4)


@pytest.mark.model
def test_smoke_training_run_lowers_the_loss(capsys: pytest.CaptureFixture[str]) -> None:
    from train.reader import main

    assert main(["--smoke", "--qa-train", str(TINY), "--xquad-dev", str(TINY / "none")]) == 0
    out = capsys.readouterr().out
    assert "training pairs" in out and "loss on" in out
