"""Cross-lingual retrieval on xquad-dev through the whole hybrid pipeline, per query-side setting.

    python -m bench.crosslingual [--data ../shared/data/xquad-dev] [--langs en nl sv de zh]

One index per corpus language (and one pooled over all of them) is built once with the ingest
pipeline; every query language is then ranked against it under each configuration in CONFIGS
(query-side settings only, so the indexes are shared). R@1 is reported for all questions and
separately for questions of even and odd articles, so that a weight chosen on one half can be
read on the other. Writes ``bench/results/crosslingual_<date>.{json,md}`` (a later run the same
day gets a letter, see ``common.save``). ~15 min on 2 cores.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import common
from rag.config import Settings
from rag.evaluate import load_beir, temporary_index
from rag.ingest.lang import detect_language
from rag.search.retrieve import Retriever
from rag.service import Assistant
from rag.types import Filters

CONFIGS: dict[str, dict[str, Any]] = {
    "no translation": {"translate": False, "cross_lang": 0.02},
    "translation, bm25 0.02": {"translate": True, "cross_lang": 0.02},
    "translation, bm25 0.05": {"translate": True, "cross_lang": 0.05},
    "translation, bm25 0.10": {"translate": True, "cross_lang": 0.10},
}


def _r1(retriever: Retriever, queries: list[tuple[str, str]], vecs: Any, qrels: dict) -> dict:
    hits: dict[str, list[bool]] = {"all": [], "even": [], "odd": []}
    for (qid, text), vec in zip(queries, vecs, strict=True):
        ranked = retriever.rank(text, vec, detect_language(text), 3, Filters())
        chunks = retriever.index.chunks(r for r, _ in ranked)
        top = chunks[ranked[0][0]].doc_id.split("/", 1)[1] if ranked else ""
        ok = top in qrels[qid]
        art = int(next(iter(qrels[qid]))[1:3])
        hits["all"].append(ok)
        hits["even" if art % 2 == 0 else "odd"].append(ok)
    return {k: round(sum(v) / len(v), 4) for k, v in hits.items()}


def run_corpus(assistant: Assistant, data: Path, corpus: list[str], langs: list[str]) -> dict:
    groups, _, qrels = load_beir(data, langs[0], corpus)
    out: dict[str, Any] = {}
    with temporary_index(assistant, groups) as reader:
        for q in langs:
            _, queries, _ = load_beir(data, q, corpus[:1])
            queries = [(i, t) for i, t in queries if i in qrels]
            vecs = assistant.embedder.encode_queries([t for _, t in queries])
            for name, cfg in CONFIGS.items():
                fusion = replace(assistant.querier.fusion, **cfg)
                retriever = Retriever(reader, assistant.embedder, fusion, assistant.centering)
                out[f"{q}→{'+'.join(corpus)}|{name}"] = _r1(retriever, queries, vecs, qrels)
            print(q, "→", "+".join(corpus), {n: out[f"{q}→{'+'.join(corpus)}|{n}"]["all"]
                                             for n in CONFIGS}, flush=True)  # fmt: skip
    return out


def table(results: dict, langs: list[str], split: str) -> list[str]:
    lines = [f"| pair ({split}) | " + " | ".join(CONFIGS) + " |", "|---" * (len(CONFIGS) + 1) + "|"]
    pairs = list(dict.fromkeys(k.split("|")[0] for k in results))
    for p in pairs:
        lines.append(f"| {p} | " + " | ".join(f"{results[f'{p}|{n}'][split]:.3f}"
                                              for n in CONFIGS) + " |")  # fmt: skip
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data/xquad-dev"))
    ap.add_argument("--langs", nargs="+", default=["en", "nl", "sv", "de", "zh"])
    args = ap.parse_args()
    assistant = Assistant(Settings.from_env())
    t0 = time.time()
    results: dict[str, Any] = {}
    for c in args.langs:
        results.update(run_corpus(assistant, args.data, [c], args.langs))
    results.update(run_corpus(assistant, args.data, list(args.langs), args.langs))
    date = time.strftime("%Y-%m-%d")
    meta = {"date": date, "seconds": round(time.time() - t0), "configs": CONFIGS}
    md = [f"# xquad-dev R@1 through the hybrid pipeline ({date}, {meta['seconds']} s)", ""]
    for split in ("all", "even", "odd"):
        md += [*table(results, args.langs, split), ""]
    common.save("crosslingual", {**meta, "r1": results}, "\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
