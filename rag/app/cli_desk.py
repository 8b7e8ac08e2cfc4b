"""The analyst's desk on the command line: ``rag batch`` (a file of terms searched at once) and
``rag alerts`` (saved searches and their new hits after an ingest); registered by ``cli.py``."""

from __future__ import annotations

import functools
import json
import textwrap
from pathlib import Path
from typing import Any

import click

from rag.app.options import (
    common,
    cross_lingual_option,
    filter_options,
    filters_from,
    settings_from,
    source_meta,
)
from rag.config import MAX_K
from rag.types import Hit

K_OPTION = click.option("-k", "k", type=click.IntRange(1, MAX_K), default=None,
                        help="Passages per term (a row's k column wins) [default 5].")  # fmt: skip
PER_DOC = click.option("--per-doc", "per_doc", type=click.IntRange(1, MAX_K), default=None,
                       help="At most this many passages of one document [default 3].")  # fmt: skip


def _write(out: str, text: str, bom: bool) -> None:
    if out == "-":
        click.echo(text, nl=False)
        return
    Path(out).write_text(text, encoding="utf-8-sig" if bom else "utf-8", newline="")


@click.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@K_OPTION
@PER_DOC
@filter_options
@cross_lingual_option
@click.option("--csv", "csv_out", metavar="OUT", help="Write every hit with its full citation "
              "as CSV (UTF-8 with a BOM, for Excel); - for stdout.")  # fmt: skip
@click.option("--json", "json_out", metavar="OUT", help="Write the batch as JSON; - for stdout.")
@common
def batch(file: Path, k: int | None, per_doc: int | None, cross_lingual: bool,
          csv_out: str | None, json_out: str | None, corpus_dir: Path | None,
          index_dir: Path | None, model: str | None, **kw: Any) -> None:  # fmt: skip
    """Search every term or question of FILE: a .csv with a header (a term column; optional
    lang, jurisdiction, type, doc, source, date_from, date_to, k columns filter that row) or a
    .txt with one term per line. The filter flags apply to every row (a row's own value wins)."""
    from rag.app.progress import ProgressBar
    from rag.service import Assistant
    from rag.service.batch import DEFAULT_K, read_terms, run_batch

    if csv_out and json_out:
        raise click.UsageError("give --csv OUT or --json OUT, not both")
    terms = read_terms(file.read_bytes(), file.name)
    assistant = Assistant(settings_from(corpus_dir, index_dir, model))
    bar = ProgressBar(model="")
    try:
        search = functools.partial(assistant.search, cross_lingual=cross_lingual)
        result = run_batch(search, terms, k=k or DEFAULT_K, filters=filters_from(kw),
                           per_doc=per_doc, file=file.name,
                           progress=lambda done, total: bar("searching", done, total))  # fmt: skip
    finally:
        bar.close()
    if csv_out or json_out:
        from rag.app.ui.exports import batch_csv, batch_json

        data = result.to_json()
        _write(csv_out or json_out or "-", batch_csv(data) if csv_out else batch_json(data),
               bom=bool(csv_out) and csv_out != "-")  # fmt: skip
    else:
        for item in result.items:
            head = click.style(f"{item.term.row}: {item.term.term}", bold=True)
            click.echo(f"{head}  {item.error}" if item.error else head)
            for h in item.result.hits if item.result else ():
                click.echo(f"  [{h.rank}] {h.score:.3f} {h.title} ({source_meta(h)}) "
                           f"{h.chunk_id}{f', p. {h.page}' if h.page else ''}")  # fmt: skip
    click.echo(f"{len(result.items)} terms, {result.hits} passages, {result.errors} refused "
               f"({result.seconds:.1f} s).", err=True)  # fmt: skip


@click.command()
@click.option("--save", "save_query", metavar="QUERY", help="Save QUERY with the filters, -k "
              "and --per-doc given here; its current hits count as seen.")  # fmt: skip
@click.option("--name", default="", help="The saved search's name [default: the query].")
@K_OPTION
@PER_DOC
@filter_options
@cross_lingual_option
@click.option("--list", "list_all", is_flag=True, help="List every saved search, with its "
              "number of new hits.")  # fmt: skip
@click.option("--mark-seen", is_flag=True, help="After listing them, mark the new hits seen "
              "(the next run reports only what comes after).")  # fmt: skip
@click.option("--delete", "delete_name", metavar="NAME", help="Delete the saved search NAME.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@common
def alerts(save_query: str | None, name: str, k: int | None, per_doc: int | None,
           cross_lingual: bool, list_all: bool, mark_seen: bool, delete_name: str | None,
           as_json: bool, corpus_dir: Path | None, index_dir: Path | None, model: str | None,
           **kw: Any) -> None:  # fmt: skip
    """Saved searches and their new hits: with no option, run every saved search and list those
    that find passages not seen before (after `rag ingest` brought new or changed files).

    \b
    rag alerts --save "facial recognition ban" --lang sv -k 10 --name sv-facial
    rag ingest && rag alerts --mark-seen
    """
    from rag.service import Assistant
    from rag.service.saved import DEFAULT_K, SavedSearches, searches_path, with_new_hits

    f = filters_from(kw)
    if save_query is None and (name or k or per_doc or f.active or not cross_lingual):
        raise click.UsageError("--name, -k, --per-doc, --no-cross-lingual and the filters go "
                               "with --save QUERY")  # fmt: skip
    settings = settings_from(corpus_dir, index_dir, model)
    store = SavedSearches(searches_path(settings))
    if delete_name is not None:
        if not store.delete(delete_name):
            raise click.ClickException(f"no saved search named {delete_name!r} in {store.path}")
        click.echo(f"Deleted the saved search {delete_name!r}.")
        return
    assistant = Assistant(settings)
    if save_query is not None:
        s = store.save(assistant.search, save_query, f, name=name,
                       k=k or DEFAULT_K, per_doc=per_doc, cross_lingual=cross_lingual)  # fmt: skip
        click.echo(f"Saved {s.name!r} in {store.path}; its current hits count as seen.")
        return
    checked = store.check(assistant.search)
    shown = checked if list_all else with_new_hits(checked)
    if mark_seen:
        store.mark_seen(shown)
    if as_json:
        click.echo(json.dumps({"file": str(store.path), "searches": len(checked),
                               "alerts": [a.to_json() for a in shown]},
                              ensure_ascii=False, indent=2))  # fmt: skip
        return
    if not checked:
        click.echo(f"No saved searches in {store.path} (rag alerts --save QUERY).")
    elif not shown:
        click.echo(f"No new hits for the {len(checked)} saved search(es).")
    for a in shown:
        click.echo(
            click.style(f"{a.search.name}", bold=True) + f"  {a.search.query!r}  "
            f"{len(a.new)} new of {len(a.hits)}" + (f"  ⚠ {a.error}" if a.error else "")
        )
        for h in a.new:
            _hit_line(h, new_doc=h.doc_id in a.new_docs)
    if mark_seen and shown:
        click.echo(click.style("(marked seen)", dim=True))


def _hit_line(h: Hit, new_doc: bool) -> None:
    page = f", p. {h.page}" if h.page else ""
    badge = " NEW DOCUMENT" if new_doc else ""
    click.echo(f"  [{h.rank}] {h.title} ({source_meta(h)}) {h.chunk_id}{page}{badge}")
    click.echo(textwrap.indent(textwrap.shorten(h.text, 200), "      "))


def report_alerts(assistant: Any, changed: bool) -> None:
    """After ``rag ingest`` brought new or changed files: one line naming the saved searches
    that now have new hits (nothing when there are no saved searches)."""
    from rag.service.saved import SavedSearches, searches_path, with_new_hits

    store = SavedSearches(searches_path(assistant.settings))
    if not changed or not store.path.exists():
        return
    try:
        found = with_new_hits(store.check(assistant.search))
    except Exception as exc:  # the ingest itself went well: say so, do not fail it
        click.echo(f"  saved searches not checked: {exc}")
        return
    if found:
        names = ", ".join(f"{a.search.name} ({len(a.new)})" for a in found)
        click.echo(f"  saved searches with new hits: {names} — run `rag alerts`")


def register(main: click.Group) -> None:
    main.add_command(batch)
    main.add_command(alerts)
