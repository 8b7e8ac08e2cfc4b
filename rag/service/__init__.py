"""The service: the one facade (:class:`Assistant`) that the CLI, the UI, the LangChain retriever,
the evaluation and the tests call; ingest (``indexing.py``) and queries (``querying.py``) behind it.
"""

from rag.service.assistant import Assistant

__all__ = ["Assistant"]
