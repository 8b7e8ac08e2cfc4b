"""``python -m bench [--json] [--repeat N]``: speed on the shipped corpus against the floors and a
stock LangChain pipeline. ``python -m bench scale [--json] [--max-n N]``: index types on synthetic
vectors up to a million. ``python -m bench encoders [--json]``: embedding back ends and threads.
``python -m bench reader [--json]``: `rag ask` with and without the reader.
``python -m bench ray [--files N] [--json]``: `rag ingest --ray` with 1 and 2 workers against the
plain ingest, and whether their indexes are the same. ``python -m bench first [--json]``: time
from `python app.py` on a fresh copy (no index) to the first answered question.

Each prints a markdown table (progress goes to stderr) or, with ``--json``, one JSON object, and
writes both to ``bench/results/<name>_<date>.{json,md}``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from typing import Any

from bench.common import machine, save

# What the bench extra installs (pyproject.toml [project.optional-dependencies] bench), by the
# module names each bench imports: checked before a bench starts, not minutes into it.
NEEDS = {
    "speed": ("langchain_community", "langchain_huggingface"),
    "encoders": ("onnxruntime", "onnx", "openvino"),
    "ray": ("ray",),
}
BENCH_EXTRA = tuple(m for mods in NEEDS.values() for m in mods)


def missing_extra(what: str, modules: str) -> str:
    """The message for a bench run without the bench extra (instead of a bare traceback)."""
    return (
        f"python -m bench {what} needs the bench extra ({modules} not installed): "
        "pip install torch==2.13.0 -e '.[bench]'"
    )


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument(
        "what",
        nargs="?",
        default="speed",
        choices=["speed", "scale", "encoders", "reader", "ray", "first"],
    )
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--repeat", type=int, default=3, help="rounds; medians are reported")
    ap.add_argument("--max-n", type=int, default=1_000_000, help="scale: largest N")
    ap.add_argument(
        "--no-quality",
        action="store_true",
        help="encoders: skip the xquad-dev retrieval check (~5 min per back end)",
    )
    ap.add_argument(
        "--pairs",
        nargs="+",
        default=["sv→en"],
        help="encoders: xquad-dev pairs for the quality check, queries→corpus (sv→en or sv->en)",
    )
    ap.add_argument(
        "--files", type=int, default=0, help="ray: the first N files of the shipped corpus [all]"
    )
    ap.add_argument("--gate", nargs="+", default=["openvino-bf16"],
                    help="encoders: back ends checked against torch on the --pairs")  # fmt: skip
    ap.add_argument("--held-out", type=int, default=300,
                    help="reader: held-out QA questions for the quality gate (0 = skip; needs "
                    "../shared/data/qa-train)")  # fmt: skip
    ap.add_argument("--no-save", action="store_true", help="do not write bench/results/")
    args = ap.parse_args(argv)
    missing = [m for m in NEEDS.get(args.what, ()) if importlib.util.find_spec(m) is None]
    if missing:
        raise SystemExit(missing_extra(args.what, ", ".join(missing)))
    t0 = time.time()
    out: dict[str, Any] = {"bench": args.what, "date": time.strftime("%Y-%m-%d %H:%M UTC",
                                                                     time.gmtime())}  # fmt: skip
    out["machine"] = machine()
    try:
        if args.what == "speed":
            from bench import speed as mod
        elif args.what == "scale":
            from bench import scale as mod  # type: ignore[no-redef]
        elif args.what == "reader":
            from bench import reader as mod  # type: ignore[no-redef]
        elif args.what == "ray":
            from bench import ray_ingest as mod  # type: ignore[no-redef]
        elif args.what == "first":
            from bench import first_answer as mod  # type: ignore[no-redef]
        else:
            from bench import encoders as mod  # type: ignore[no-redef]
        out.update(mod.run(repeat=args.repeat, max_n=args.max_n, quality=not args.no_quality,
                           pairs=args.pairs, files=args.files, gate_backends=args.gate,
                           held_out=args.held_out,
                           log=_log))  # fmt: skip
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] not in BENCH_EXTRA:
            raise
        raise SystemExit(missing_extra(args.what, e.name or "")) from None
    out["bench_seconds"] = round(time.time() - t0)
    text = mod.table(out)
    if not args.no_save:
        partial = args.what == "scale" and args.max_n != ap.get_default("max_n")
        name = f"scale-max{args.max_n}" if partial else args.what
        if args.what == "ray" and args.files:
            name = f"ray-files{args.files}"
        _log(f"wrote {save(name, out, text)}")
    print(json.dumps(out, ensure_ascii=False) if args.json else text)


if __name__ == "__main__":
    main()
