"""The CLI's shared flags (corpus, index, model, store, filters, LLM) and how they become
:class:`~rag.config.Settings` and :class:`~rag.types.Filters`; reading a chat history file."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from rag.config import Settings
from rag.index.base import IndexError_
from rag.types import Filters

F = TypeVar("F", bound=Callable[..., Any])


def common(func: F) -> F:
    """--corpus/--index/--model and the store flags on every command; they override RAG_*."""

    @click.option(
        "--corpus",
        "corpus_dir",
        type=click.Path(path_type=Path),
        help="Corpus folder [env RAG_CORPUS_DIR; default ./corpus]",
    )
    @click.option(
        "--index",
        "index_dir",
        type=click.Path(path_type=Path),
        help="Index folder [env RAG_INDEX_DIR; default ./index]",
    )
    @click.option("--model", help="Embedding model name or folder [env RAG_MODEL]")
    @click.option(
        "--store",
        type=click.Choice(["faiss", "qdrant"]),
        help="Index store [env RAG_STORE; default faiss, or qdrant when a Qdrant location is set]",
    )
    @click.option("--qdrant-url", help="Qdrant server or cluster URL [env RAG_QDRANT_URL]")
    @click.option(
        "--qdrant-path",
        type=click.Path(path_type=Path),
        help="Folder for qdrant-client's local mode, no server [env RAG_QDRANT_PATH]",
    )
    @click.option("-v", "--verbose", is_flag=True, help="Log what happens to stderr.")
    @functools.wraps(func)
    def wrapper(*args: Any, verbose: bool, store: str | None, qdrant_url: str | None,
                qdrant_path: Path | None, **kwargs: Any) -> Any:  # fmt: skip
        click.get_current_context().meta["rag_store"] = {
            "store": store,
            "qdrant_url": qdrant_url,
            "qdrant_path": qdrant_path,
        }
        logging.basicConfig(
            level=logging.INFO if verbose else logging.WARNING,
            format="%(levelname)s %(name)s: %(message)s",
        )
        try:
            return func(*args, **kwargs)
        except (IndexError_, ValueError, FileNotFoundError, RuntimeError) as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper  # type: ignore[return-value]


def settings_from(
    corpus_dir: Path | None, index_dir: Path | None, model: str | None, **more: Any
) -> Settings:
    store_flags = click.get_current_context().meta.get("rag_store", {})
    return Settings.from_env(
        corpus_dir=corpus_dir, index_dir=index_dir, model=model, **store_flags, **more
    )


def filter_options(func: F) -> F:
    for opt in reversed([
        click.option("--lang", "langs", multiple=True, help="Only documents in this language "
                     "(ISO 639-1, e.g. sv); repeatable."),
        click.option("--doc", "docs", multiple=True, help="Only this document id or id prefix "
                     "(e.g. eu_ai_act); repeatable."),
        click.option("--source", "sources", multiple=True,
                     help="Only documents whose source contains this text; repeatable."),
        click.option("--jurisdiction", "--country", "jurisdictions", multiple=True,
                     help="Only documents of this jurisdiction: ISO country (CN), subdivision "
                     "(US-CO), EU or INT; US also matches US-CO and US-CA; repeatable or "
                     "comma-separated."),
        click.option("--type", "types", multiple=True, help="Only documents of this type (law, "
                     "bill, regulation, executive order, guidelines, framework, news, …); "
                     "repeatable."),
        click.option("--from", "date_from", default="", help="Only documents dated on/after "
                     "YYYY[-MM[-DD]]."),
        click.option("--to", "date_to", default="", help="Only documents dated on/before "
                     "YYYY[-MM[-DD]]."),
    ]):  # fmt: skip
        func = opt(func)
    return func


def cross_lingual_option(func: F) -> F:
    """--cross-lingual/--no-cross-lingual for ``rag search`` (and batch search)."""
    return click.option(
        "--cross-lingual/--no-cross-lingual",
        "cross_lingual",
        default=True,
        help="Match passages in every language (default), or only in the query's language "
        "(detected from its words; lang:xx in the query or --lang sets it). QUERY takes the "
        'search syntax: "phrase", -word, a OR b, lang:, jurisdiction:, type:, doc:, source:, '
        "date: (README, Search syntax).",
    )(func)


def llm_options(func: F) -> F:
    """--llm/--llm-base-url/--reader for the commands that answer (ask, eval, serve)."""
    func = click.option(
        "--reader",
        default=None,
        help="Reader that judges which sentences answer: govrag-reader (shipped, experimental), "
        "a reader folder, a CrossEncoder folder or hub name, or none [env RAG_READER; default "
        "none]",
    )(func)
    func = click.option(
        "--llm-base-url",
        default=None,
        help="Server of the LLM, e.g. http://localhost:11434 (Ollama) or an OpenAI-compatible "
        "http://host:8000/v1 [env RAG_LLM_BASE_URL]",
    )(func)
    return click.option(
        "--llm",
        default=None,
        help="Answer with this chat model, as provider:model (e.g. ollama:llama3.1, "
        "openai:gpt-4o-mini) [env RAG_LLM; default: extractive answers only]",
    )(func)


def filters_from(kw: dict[str, Any]) -> Filters:
    return Filters(
        langs=tuple(kw.pop("langs")), docs=tuple(kw.pop("docs")), sources=tuple(kw.pop("sources")),
        jurisdictions=_split(kw.pop("jurisdictions")), types=tuple(kw.pop("types")),
        date_from=kw.pop("date_from"), date_to=kw.pop("date_to"),
    )  # fmt: skip


def _split(values: tuple[str, ...]) -> tuple[str, ...]:
    """``("EU,US", "CN")`` → ``("EU", "US", "CN")``."""
    return tuple(v.strip() for x in values for v in x.split(",") if v.strip())


def read_history(path: Path | None) -> list[tuple[str, str]]:
    """``[{"question": …, "answer": …}, …]`` or ``[[question, answer], …]``, oldest first."""
    if path is None:
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise click.BadParameter(f"{path}: {exc}", param_hint="--history") from exc
    turns: list[tuple[str, str]] = []
    for i, turn in enumerate(data if isinstance(data, list) else [None]):
        if isinstance(turn, dict) and isinstance(turn.get("question"), str):
            turns.append((turn["question"], str(turn.get("answer", ""))))
        elif isinstance(turn, list) and len(turn) == 2 and all(isinstance(x, str) for x in turn):
            turns.append((turn[0], turn[1]))
        else:
            raise click.BadParameter(
                f"{path}: turn {i} is not {{'question': …, 'answer': …}} or [question, answer]",
                param_hint="--history",
            )
    return turns


def source_meta(src: Any) -> str:
    """``en · US-CO · law · Colorado General Assembly · 2024-05-17 · OCR`` for a hit/citation."""
    parts = (src.lang, src.jurisdiction, src.doc_type, src.source, src.date,
             "OCR" if src.ocr else "")  # fmt: skip
    return " · ".join(x for x in parts if x)
