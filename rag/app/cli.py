"""`rag ingest | search | ask | compare | eval | serve` (and `batch | alerts` from ``cli_desk``):
parse flags, call the Assistant, print (text or --json)."""

from __future__ import annotations

import json
import logging
import textwrap
import threading
from pathlib import Path
from typing import Any

import click

from rag.app import cli_desk, cli_ingest
from rag.app.options import (
    common,
    cross_lingual_option,
    filter_options,
    filters_from,
    llm_options,
    read_history,
    settings_from,
    source_meta,
)
from rag.app.progress import ProgressBar
from rag.config import MAX_K


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="govrag")
def main() -> None:
    """govrag: cited, cross-lingual search and answers over governance documents."""


@main.command()
@click.argument("query")
@click.option(
    "-k",
    "k",
    type=click.IntRange(1, MAX_K),
    default=None,
    help="Number of passages [env RAG_TOP_K; default 5]",
)
@click.option(
    "--per-doc",
    "per_doc",
    type=click.IntRange(1, MAX_K),
    default=None,
    help="At most this many passages of one document [default 3; -k N for all]",
)
@filter_options
@cross_lingual_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (see README).")
@common
def search(query: str, k: int | None, per_doc: int | None, cross_lingual: bool, as_json: bool,
           corpus_dir: Path | None, index_dir: Path | None, model: str | None,
           **kw: Any) -> None:  # fmt: skip
    """Find the passages that best match QUERY, in any language."""
    from rag.service import Assistant

    assistant = Assistant(settings_from(corpus_dir, index_dir, model))
    result = assistant.search(query, k, filters_from(kw), per_doc=per_doc,
                              cross_lingual=cross_lingual)  # fmt: skip
    if as_json:
        click.echo(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
        return
    if result.note:
        click.echo(result.note, err=True)
    if not result.hits:
        click.echo("No passages match (check the filters).")
    for h in result.hits:
        meta = source_meta(h)
        click.echo(click.style(f"[{h.rank}] {h.title}", bold=True) + f"  ({meta})  {h.score:.3f}")
        page = f"p. {h.page}, " if h.page else ""
        click.echo(f"    {h.chunk_id}  {page}chars {h.start}-{h.end}")
        click.echo(textwrap.indent(textwrap.fill(h.text, 96), "    ") + "\n")


@main.command()
@click.argument("question")
@filter_options
@click.option("--history", "history_file", type=click.Path(path_type=Path, dir_okay=False),
              help='Earlier turns as JSON: [{"question": …, "answer": …}, …]. A follow-up '
              '("and when?", "who enforces them?") is read against the conversation\'s subject; '
              '"Searched for:" (retrieval_query in --json) shows how.')  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (see README).")
@llm_options
@click.option(
    "--extractive",
    is_flag=True,
    help="Quote the sources without the LLM even when one is configured.",
)
@common
def ask(question: str, history_file: Path | None, as_json: bool, llm: str | None,
        llm_base_url: str | None, reader: str | None, extractive: bool, corpus_dir: Path | None,
        index_dir: Path | None, model: str | None, **kw: Any) -> None:  # fmt: skip
    """Answer QUESTION with verbatim, cited quotes from the corpus (or say it cannot).

    With an LLM configured (--llm or RAG_LLM) the answer is written by the model, checked
    (every [n] exists, every sentence cited, quotes present in their source) and replaced by
    the extractive answer when a check fails or the model cannot be reached.
    """
    from rag.service import Assistant

    settings = settings_from(
        corpus_dir, index_dir, model, llm=llm, llm_base_url=llm_base_url, reader=reader
    )
    assistant = Assistant(settings)
    answer = assistant.ask(
        question,
        history=read_history(history_file),
        filters=filters_from(kw),
        mode="extractive" if extractive else None,
    )
    if as_json:
        click.echo(json.dumps(answer.to_json(), ensure_ascii=False, indent=2))
        return
    if " ".join(answer.retrieval_query.split()) not in ("", " ".join(answer.question.split())):
        click.echo(click.style(f"Searched for: {answer.retrieval_query}\n", dim=True))
    click.echo(answer.answer)
    if answer.note:
        click.echo(click.style(f"\n({answer.note})", dim=True))
    if answer.citations:
        click.echo("\nSources:")
        for c in answer.citations:
            page = f"p. {c.page}, " if c.page else ""
            click.echo(f"  [{c.n}] {c.title} ({source_meta(c)}) — {c.doc_id}, {page}chars "
                       f"{c.start}-{c.end}")  # fmt: skip
    if answer.closest:
        click.echo("\nClosest passages:")
        for h in answer.closest:
            click.echo(f"  - {h.title} ({h.lang}) {h.chunk_id}: {textwrap.shorten(h.text, 160)}")


@main.command()
@click.argument("question")
@click.option("--by", type=click.Choice(["jurisdiction", "type", "language"]),
              default="jurisdiction", show_default=True, help="One group per top-level "
              "jurisdiction (US-CO and US-CA count under US), document type or language; "
              "documents without one are in no group.")  # fmt: skip
@click.option("--only", multiple=True, help="Only these groups, in this order: --only EU,US,CN "
              "(--only US-CO for one US state); default: every one in the index, sorted, INT "
              "last.")  # fmt: skip
@filter_options
@click.option("--json", "as_json", is_flag=True, help='Print {"question", "by", "groups": '
              '[{"key", "abstained", "answer": <rag ask --json>}, …]}.')  # fmt: skip
@llm_options
@click.option("--extractive", is_flag=True, help="Quote the sources without the LLM.")
@common
def compare(question: str, by: str, only: tuple[str, ...], as_json: bool, llm: str | None,
            llm_base_url: str | None, reader: str | None, extractive: bool,
            corpus_dir: Path | None, index_dir: Path | None, model: str | None,
            **kw: Any) -> None:  # fmt: skip
    """Answer QUESTION once per jurisdiction (type, language): `rag ask` restricted to each
    group's documents and the other filters (--jurisdiction with --by jurisdiction acts as
    --only); "no passage found" where they do not answer."""
    from rag.service import Assistant
    from rag.service.compare import comparison_text

    s = settings_from(corpus_dir, index_dir, model, llm=llm, llm_base_url=llm_base_url,
                      reader=reader)  # fmt: skip
    result = Assistant(s).compare(question, by=by, only=[v for x in only for v in x.split(",")],
                                  filters=filters_from(kw),
                                  mode="extractive" if extractive else None)  # fmt: skip
    click.echo(json.dumps(result.to_json(), ensure_ascii=False, indent=2) if as_json
               else comparison_text(result))  # fmt: skip


@main.command(name="eval")
@click.option(
    "--data",
    "data_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="BEIR-style folder: corpus.<lang>.jsonl, queries.<lang>.jsonl, qrels.tsv.",
)
@click.option("--queries-lang", help="Language of the queries file to use (with --data).")
@click.option(
    "--corpus-lang",
    "corpus_langs",
    multiple=True,
    help="Corpus language(s) to index (with --data); several make a pooled index.",
)
@click.option(
    "--devset",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A govrag dev set (JSONL, see tests/data/README.md) scored against --index.",
)
@click.option("-k", "k", type=click.IntRange(1, 100), default=10, show_default=True)
@click.option(
    "--answers",
    is_flag=True,
    help="With --devset: run `rag ask` on every question and report abstention precision/recall, "
    "gold passages among the citations and exact quotes (instead of retrieval metrics).",
)
@llm_options
@click.option(
    "--retrieval",
    type=click.Choice(["hybrid", "dense"]),
    default=None,
    help="Retrieval mode to evaluate [env RAG_RETRIEVAL; default hybrid]",
)
@click.option(
    "--rerank",
    is_flag=True,
    help="With --devset: also score the passages reordered by the reader (those it says answer "
    "first), as the LangChain retriever returns them.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@common
def eval_(data_dir: Path | None, queries_lang: str | None, corpus_langs: tuple[str, ...],
          devset: Path | None, k: int, answers: bool, llm: str | None, llm_base_url: str | None,
          reader: str | None, retrieval: str | None, rerank: bool, as_json: bool,
          corpus_dir: Path | None, index_dir: Path | None, model: str | None) -> None:  # fmt: skip
    """Measure retrieval: R@1/5/10, MRR@10, nDCG@10 on a BEIR folder or a dev set.

    \b
    rag eval --data ../shared/data/xquad-dev --queries-lang sv --corpus-lang en
    rag eval --devset tests/data/devset.jsonl
    rag eval --devset tests/data/devset.jsonl --answers
    """
    from rag.evaluate import (
        evaluate_answers,
        evaluate_beir,
        evaluate_devset,
        evaluate_devset_reranked,
        load_devset,
    )
    from rag.service import Assistant

    if (data_dir is None) == (devset is None):
        raise click.UsageError("give either --data (with --queries-lang/--corpus-lang) or --devset")
    if answers and devset is None:
        raise click.UsageError("--answers needs --devset")
    settings = settings_from(
        corpus_dir,
        index_dir,
        model,
        retrieval=retrieval,
        llm=llm,
        llm_base_url=llm_base_url,
        reader=reader,
    )
    assistant = Assistant(settings)
    if answers:
        assert devset is not None
        result = evaluate_answers(
            assistant.ask, assistant.retriever.index, load_devset(devset)
        ).to_json()
        if as_json:
            click.echo(json.dumps(result))
            return
        mode = f"LLM {settings.llm}" if settings.llm else "extractive"
        click.echo(f"answers on dev set {devset.name} ({mode})")
        for key, value in result.items():
            click.echo(f"  {key:26} {value}")
        return
    if data_dir is not None:
        if not queries_lang or not corpus_langs:
            raise click.UsageError("--data needs --queries-lang and at least one --corpus-lang")
        metrics = evaluate_beir(assistant, data_dir, queries_lang, corpus_langs, k)
        label = f"{queries_lang}→{'+'.join(corpus_langs)}"
    else:
        assert devset is not None
        metrics = evaluate_devset(assistant.retriever, load_devset(devset), k)
        label = f"dev set {devset.name}"
    out = metrics.to_json()
    if rerank:
        if assistant.querier.reader is None:
            raise click.UsageError("--rerank needs a reader (RAG_READER is none)")
        if devset is None:
            raise click.UsageError("--rerank needs --devset")

        def reranked(q: str, n: int) -> Any:
            return assistant.querier.reranked(q, n)[0].hits

        out["reranked"] = evaluate_devset_reranked(reranked, load_devset(devset), k).to_json()
    if as_json:
        click.echo(json.dumps(out))
        return
    click.echo(f"{label} ({settings.retrieval}, n={metrics.n})")
    for key, value in out.items():
        if key not in ("n", "reranked"):
            click.echo(f"  {key:10} {value:.3f}")
    for key, value in out.get("reranked", {}).items():
        if key != "n":
            click.echo(f"  {key + ', reranked by the reader':36} {value:.3f}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=int, default=7860, show_default=True, help="Port to listen on.")
@llm_options
@common
def serve(host: str, port: int, llm: str | None, llm_base_url: str | None, reader: str | None,
          corpus_dir: Path | None, index_dir: Path | None, model: str | None) -> None:  # fmt: skip
    """Start the chat app at once. Without an index (or with one an older version built with
    other settings, or one whose first build was interrupted) it is built from the corpus in the
    background, in batches: the app answers from what is indexed so far and says how far it is."""
    from rag.app.ui import build_app, launch
    from rag.service import Assistant

    settings = settings_from(
        corpus_dir, index_dir, model, llm=llm, llm_base_url=llm_base_url, reader=reader
    )
    assistant = Assistant(settings)
    if assistant.needs_indexing():
        if not assistant.has_index():
            why = "does not exist yet: building it"
        elif assistant.index_is_current():
            why = "was not finished: indexing the rest"
        else:  # built by an older version: the corpus folder holds every file
            why = "was built with other chunking settings: rebuilding it"
        where = assistant.backend.where
        if settings.store == "faiss":
            where = f"folder {Path(where).resolve()}"
        click.echo(f"The index {where} {why} from {settings.corpus_dir.resolve()} in the "
                   "background; the app answers from the passages indexed so far…",
                   err=True)  # fmt: skip
        # The model loads in the build; the query side warms up after its first commit.
        worker, name, what = _build_in_background, "govrag-indexing", "building the index"
    else:
        # The model, language means and index load in the background: the page is up at once
        # and says "loading the model" until they are in memory, instead of a 10 s spinner.
        worker, name, what = _warm_up, "govrag-warm-up", "loading the model"
    threading.Thread(target=worker, args=(assistant,), name=name, daemon=True).start()
    click.echo(f"govrag is running on http://{host}:{port} ({what}…)", err=True)
    launch(
        build_app(assistant),
        host,
        port,
        max_upload_mb=settings.max_upload_mb,
        corpus_dir=settings.corpus_dir,
    )


def _build_in_background(assistant: Any) -> None:
    """``serve``'s staged build, with the CLI's progress bar; an error is logged here and shown
    in the app's status line."""
    bar = ProgressBar()
    try:
        report = assistant.ingest_staged(progress=bar)
    except Exception as exc:
        bar.close()
        logging.getLogger(__name__).error("indexing stopped: %s", exc)
        return
    bar.close()
    click.echo(f"Indexed {report.documents} documents, {report.chunks} chunks "
               f"({report.seconds:.0f} s).", err=True)  # fmt: skip


def _warm_up(assistant: Any) -> None:
    try:
        assistant.warm_up()
    except Exception as exc:  # the first question reports it to the user
        logging.getLogger(__name__).warning("warm-up failed: %s", exc)


cli_desk.register(main)
cli_ingest.register(main)

if __name__ == "__main__":
    main()
