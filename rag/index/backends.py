"""Which store the settings select: the FAISS folder (default) or a Qdrant collection."""

from __future__ import annotations

from pathlib import Path

from rag.config import Settings
from rag.index.base import Backend
from rag.index.faiss.store import FaissBackend


def backend_for(settings: Settings, *, temporary: Path | None = None) -> Backend:
    """The backend the settings select. ``temporary``: a scratch folder for a throw-away index
    (``rag eval --data``); for a Qdrant server a uniquely named collection is used instead."""
    if settings.store == "qdrant":
        from rag.index.qdrant.backend import QdrantBackend

        return QdrantBackend.from_settings(settings, temporary=temporary)
    return FaissBackend(settings.index_dir if temporary is None else temporary / "index")
