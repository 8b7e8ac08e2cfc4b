"""Corpus files served read-only by the app, so a citation can open the original at its page:
``GET /corpus/<path relative to the corpus folder>`` (``…/report.pdf#page=12``); and the deep
links into the app's Document tab (:func:`viewer_link`).

Only regular files inside the corpus folder with a supported suffix are served; hidden and
``_private`` paths, metadata and anything outside the folder (``..``, symlinks leaving it) answer
404. Nothing can be written.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route

from rag.ingest.corpus import SUPPORTED_SUFFIXES, is_ignored

PREFIX = "corpus"


def file_url(rel: str, page: int | None = None) -> str:
    """The app-relative link to corpus file ``rel`` (at ``page`` for PDFs)."""
    url = f"{PREFIX}/{quote(rel)}"
    return f"{url}#page={page}" if page and rel.lower().endswith(".pdf") else url


def viewer_link(
    doc_id: str, start: int | None = None, end: int | None = None, query: str = ""
) -> str:
    """The app-relative deep link that opens ``doc_id`` in the Document tab (at a span, with a
    query's hits highlighted): ``?doc=…&start=…&end=…&q=…``."""
    params: dict[str, str] = {"doc": doc_id}
    if start is not None and end is not None:
        params |= {"start": str(start), "end": str(end)}
    if query:
        params["q"] = query
    return "?" + urlencode(params)


def resolve(corpus_dir: Path, rel: str) -> Path | None:
    """The file ``rel`` names inside ``corpus_dir``, or None if it must not be served."""
    root = corpus_dir.resolve()
    try:
        path = (root / rel).resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        return None
    if not path.is_relative_to(root) or not path.is_file():
        return None
    inside = path.relative_to(root)
    if is_ignored(inside) or path.suffix.lower() not in SUPPORTED_SUFFIXES:
        return None
    return path


def corpus_route(corpus_dir: Path) -> Route:
    """The read-only ``/corpus/{path}`` route for ``corpus_dir``."""

    async def serve(request: Request) -> Response:
        path = resolve(corpus_dir, request.path_params["rel"])
        if path is None:
            return PlainTextResponse("not a corpus file", status_code=404)
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if kind.startswith("text/") or path.suffix.lower() in (".md", ".json"):
            kind = "text/plain; charset=utf-8"  # shown as text, never run as HTML/script
        return FileResponse(path, media_type=kind, filename=path.name,
                            content_disposition_type="inline",
                            headers={"X-Content-Type-Options": "nosniff"})  # fmt: skip

    return Route(f"/{PREFIX}/{{rel:path}}", serve, methods=["GET", "HEAD"])
