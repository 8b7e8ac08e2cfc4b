"""`rag ingest`: bring the index in line with the corpus folder, on this process's encoder or, with
``--ray [ADDRESS]``, on Ray actors (``rag/models/ray_encoder.py``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from rag.app.cli_desk import report_alerts
from rag.app.options import common, settings_from
from rag.app.progress import ProgressBar


@click.command()
@common
@click.option("--rebuild", is_flag=True, help="Re-embed everything instead of only what changed.")
@click.option(
    "--ray", "ray_address", is_flag=False, flag_value="local", default=None, metavar="[ADDRESS]",
    help="Embed with Ray actors: on this machine (--ray alone) or on the cluster at ADDRESS "
    "(auto, HOST:6379, ray://HOST:10001). Needs the ray extra.",
)  # fmt: skip
@click.option("--workers", type=click.IntRange(1), default=None,
              help="--ray: actors [default: one per core here; on a cluster, per --threads CPUs "
              "or per GPU]")  # fmt: skip
@click.option("--threads", type=click.IntRange(1), default=1, show_default=True,
              help="--ray: torch threads (and Ray CPUs) per actor")  # fmt: skip
@click.option("--gpus-per-worker", "gpus", type=click.FloatRange(0), default=0.0,
              help="--ray: GPUs per actor (the model runs on cuda) [default: 0, CPU]")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def ingest(corpus_dir: Path | None, index_dir: Path | None, model: str | None, rebuild: bool,
           ray_address: str | None, workers: int | None, threads: int, gpus: float,
           as_json: bool) -> None:  # fmt: skip
    """Index the corpus folder (incremental: only new or changed files are embedded)."""
    from rag.service import Assistant

    settings = settings_from(corpus_dir, index_dir, model)
    if ray_address is None and (workers or threads != 1 or gpus):
        raise click.UsageError("--workers, --threads and --gpus-per-worker go with --ray")
    embedder = None
    if ray_address is not None:
        embedder = ray_embedder(settings, ray_address, workers, threads, gpus)
    assistant = Assistant(settings, embedder=embedder)
    # "Loading model…" only when something is to be embedded (an ingest with nothing to do, or
    # a missing corpus folder, never loads it; nor starts Ray).
    bar = ProgressBar(model="" if as_json else settings.model)
    try:
        report = assistant.ingest(rebuild=rebuild, progress=bar)
    except RuntimeError as exc:
        if embedder is None:
            raise
        raise click.ClickException(f"{exc} (the index was not changed)") from exc
    finally:
        bar.close()
        if embedder is not None:
            embedder.close()
    if as_json:
        click.echo(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
        return
    click.echo(
        f"Indexed {report.documents} documents, {report.chunks} chunks in "
        f"{assistant.backend.where} "
        f"({report.seconds:.1f} s)."
    )
    click.echo(
        f"  files: {len(report.files_added)} added, {len(report.files_changed)} changed, "
        f"{len(report.files_removed)} removed, {report.files_unchanged} unchanged; "
        f"{report.chunks_embedded} chunks and {report.sentences_embedded} sentences embedded"
    )
    if report.skipped:
        click.echo(f"  skipped {len(report.skipped)} file(s):")
        for s in report.skipped:
            click.echo(f"    {s.path}: {s.reason}")
    report_alerts(assistant, bool(report.files_added or report.files_changed))


def ray_embedder(settings: Any, address: str, workers: int | None, threads: int,
                 gpus: float) -> Any:  # fmt: skip
    """The embedder of ``rag ingest --ray``: the settings' model on Ray actors."""
    from rag.models.embeddings import make_embedder
    from rag.models.ray_encoder import RayEmbedder

    local = make_embedder(settings.model, cache_dir=settings.cache_dir,
                          batch_size=settings.batch_size, encoder=settings.encoder)  # fmt: skip
    try:
        return RayEmbedder(
            local, cache_dir=settings.cache_dir, batch_size=settings.batch_size,
            encoder=settings.encoder, address=None if address == "local" else address,
            workers=workers, threads=threads, gpus=gpus,
        )  # fmt: skip
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc


def register(main: click.Group) -> None:
    main.add_command(ingest)
