"""An experiment, not a shipped model: an answer-sentence selector as a *bi-encoder* fine-tuned
from e5-small (question and sentence encoded apart, so e5's cross-lingual alignment is kept),
against the cross-encoder reader that loses it. See train/README.md ("What was tried").

    python -m train.bi_encoder_try --out /tmp/bA                      # ~18 min train + ~3 min eval
    python -m train.bi_encoder_try --out /tmp/bA --eval-only \\
        --corpus /path/corpus --index /path/index                     # + the dev-set diagnosis

Training: the reader's own pairs (``train.reader.build_pairs``: XQuAD with 6 extra draws across two
languages per question, CMRC, DRCD, COVID-QA; 17 % of articles held out) grouped into (question,
answering sentence, one hard negative) triplets; MultipleNegativesRankingLoss (in-batch negatives
plus the hard one), e5's "query: "/"passage: " prefixes, embeddings and lower 6 layers frozen,
1 epoch, batch 32, lr 3e-5, 96 tokens, seed 13. Evaluation: held-out XQuAD paragraphs (the
answering sentence ranked first, 60 questions per language pair), tuned against plain e5; with
``--corpus/--index``, the dev set's candidate sentences (the 24 the extractive answerer would
re-score), as a diagnosis only: nothing is fitted to it.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any

import numpy as np

from train.reader import DEFAULT_QA, DEFAULT_XQUAD_DEV, REPO, build_pairs

PAIRS = [("en", "en"), ("en", "nl"), ("en", "sv"), ("en", "de"), ("en", "zh"), ("nl", "en"),
         ("sv", "en"), ("zh", "en"), ("de", "zh")]  # fmt: skip


def triplets(args: argparse.Namespace) -> tuple[list[tuple[str, str, str]], Any, set[str]]:
    ns = argparse.Namespace(seed=13, held_out=0.17, xquad_en=3, xquad_mixed=5,
                            xquad_cross=args.xquad_cross, negatives=4, cmrc=1200, drcd=1200,
                            covid=600, tatoeba=0, max_pairs=0)  # fmt: skip
    pairs, xq, _, held = build_pairs(args.qa_train, args.xquad_dev, ns)
    groups: dict[tuple[str, str], dict[str, list[str]]] = {}
    for p in pairs:
        g = groups.setdefault((p.question, p.source), {"pos": [], "neg": []})
        (g["pos"] if p.label > 0.5 else g["neg"]).append(p.sentence)
    rng = random.Random(13)
    out = [(q, g["pos"][0], rng.choice(g["neg"])) for (q, _), g in groups.items()
           if g["pos"] and g["neg"]]  # fmt: skip
    rng.shuffle(out)
    return out[: args.max_triplets], xq, held


def train(model: Any, trip: list[tuple[str, str, str]], args: argparse.Namespace) -> None:
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.losses import MultipleNegativesRankingLoss

    bert = model[0].auto_model
    for p in bert.embeddings.parameters():
        p.requires_grad = False
    for layer in bert.encoder.layer[: args.frozen]:
        for p in layer.parameters():
            p.requires_grad = False
    ds = Dataset.from_dict({"anchor": ["query: " + q for q, _, _ in trip],
                            "positive": ["passage: " + s for _, s, _ in trip],
                            "negative": ["passage: " + n for _, _, n in trip]})  # fmt: skip
    targs = SentenceTransformerTrainingArguments(
        output_dir=str(args.out / "ckpt"), num_train_epochs=1, per_device_train_batch_size=32,
        learning_rate=args.lr, warmup_ratio=0.1, logging_steps=25, save_strategy="no",
        report_to="none", seed=13, dataloader_drop_last=True, batch_sampler="no_duplicates",
        use_cpu=True,
    )  # fmt: skip
    loss = MultipleNegativesRankingLoss(model)
    SentenceTransformerTrainer(model=model, args=targs, train_dataset=ds, loss=loss).train()


def cosines(model: Any, question: str, sentences: list[str]) -> np.ndarray:
    qv = model.encode(["query: " + question], normalize_embeddings=True)
    sv = model.encode(["passage: " + s for s in sentences], normalize_embeddings=True)
    return np.asarray(sv @ qv[0])


def xquad_eval(models: dict[str, Any], xq: Any, held: set[str]) -> dict[str, dict[str, float]]:
    res: dict[str, dict[str, float]] = {}
    for ql, sl in PAIRS:
        if ql not in xq or sl not in xq:
            continue
        hits = dict.fromkeys(models, 0)
        n = 0
        for q in xq["en"].questions:
            qq, tq = xq[ql].question(q.qid), xq[sl].question(q.qid)
            if q.article not in held or qq is None or tq is None:
                continue
            para = xq[sl].paragraphs[q.article][tq.paragraph]
            if len(para.sentences) < 2:
                continue
            n += 1
            for name, m in models.items():
                hits[name] += int(np.argmax(cosines(m, qq.text, list(para.sentences))) == tq.answer)
            if n >= 60:
                break
        res[f"{ql}→{sl}"] = {"n": n, **{k: round(v / max(n, 1), 3) for k, v in hits.items()}}
        print(ql, "→", sl, res[f"{ql}→{sl}"], flush=True)
    return res


def dev_eval(models: dict[str, Any], corpus: Path, index: Path) -> dict[str, dict[str, float]]:
    """On the dev set's candidate sentences: the gold sentence first, its MRR where it is among
    them, and how well the best cosine separates answerable from unanswerable questions (AUC);
    ``index sim`` is the answerer's own (centered) similarity."""
    from rag.config import Settings
    from rag.evaluate import load_devset, quote_holds_phrase
    from rag.service import Assistant

    a = Assistant(Settings.from_env(corpus_dir=corpus, index_dir=index).with_(reader="none"))
    ans = a.querier.answerer
    texts: dict[str, str] = {}
    rows = []
    for q in load_devset(REPO / "tests" / "data" / "devset.jsonl"):
        r = ans.retrieve(q.question)
        found = ans.candidates(r.query, r.query_lang, r.query_vec, r.ranked, r.hits)[:24]
        if not found:
            continue
        gold = []
        for e in found:
            doc = texts.setdefault(e.hit.doc_id, a.document(e.hit.doc_id).text)  # type: ignore[union-attr]
            gold.append(quote_holds_phrase(q, e.hit.doc_id, doc, e.start, e.end))
        scores = {"index sim": np.array([e.score for e in found])}
        for name, m in models.items():
            scores[name] = cosines(m, r.query, [e.quote for e in found])
        rows.append((q.answerable, np.array(gold), scores))
    out = {}
    for name in ["index sim", *models]:
        top1 = [g[np.argmax(s[name])] for ok, g, s in rows if ok]
        rr = [1 / (1 + int(np.flatnonzero(g[np.argsort(-s[name])])[0]))
              for ok, g, s in rows if ok and g.any()]  # fmt: skip
        pos = np.array([s[name].max() for ok, _, s in rows if ok])
        neg = np.array([s[name].max() for ok, _, s in rows if not ok])
        gt, eq = pos[:, None] > neg[None, :], pos[:, None] == neg[None, :]
        auc = float(gt.mean() + 0.5 * eq.mean())
        out[name] = {"top1_gold": round(float(np.mean(top1)), 3),
                     "mrr_gold": round(float(np.mean(rr)), 3),
                     "auc_answerable": round(auc, 3)}  # fmt: skip
        print("dev", name, out[name], flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--qa-train", type=Path, default=DEFAULT_QA)
    p.add_argument("--xquad-dev", type=Path, default=DEFAULT_XQUAD_DEV)
    p.add_argument("--frozen", type=int, default=6)
    p.add_argument("--max-triplets", type=int, default=10000)
    p.add_argument("--lr", type=float, default=3e-5)
    p.add_argument("--xquad-cross", type=int, default=6)
    p.add_argument("--eval-only", action="store_true", help="evaluate --out/model as it is")
    p.add_argument("--corpus", type=Path, help="with --index: also the dev-set diagnosis")
    p.add_argument("--index", type=Path)
    args = p.parse_args()

    import torch
    from sentence_transformers import SentenceTransformer

    from rag.config import DEFAULT_MODEL, Settings
    from rag.models.embeddings import resolve_model

    t0 = time.time()
    trip, xq, held = triplets(args)
    print(f"{len(trip)} triplets in {time.time() - t0:.1f} s", flush=True)
    base = resolve_model(DEFAULT_MODEL, Settings.from_env().cache_dir)
    torch.manual_seed(13)
    if not args.eval_only:
        model = SentenceTransformer(base, device="cpu")
        model.max_seq_length = 96
        train(model, trip, args)
        model.save(str(args.out / "model"))
        print(f"trained in {(time.time() - t0) / 60:.1f} min", flush=True)
    models = {"tuned": SentenceTransformer(str(args.out / "model"), device="cpu"),
              "plain e5": SentenceTransformer(base, device="cpu")}  # fmt: skip
    report: dict[str, Any] = {"xquad": xquad_eval(models, xq, held)}
    if args.corpus and args.index:
        report["dev"] = dev_eval(models, args.corpus, args.index)
    (args.out / "report.json").write_text(json.dumps(report, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
