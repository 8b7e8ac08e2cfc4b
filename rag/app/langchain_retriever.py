"""govrag's retriever as a LangChain ``BaseRetriever``: ``Document``s with the hit metadata.

    retriever = GovragRetriever(assistant=Assistant(), k=5)
    docs = retriever.invoke("What did the Chinese embassy in the UK say?")

Each ``Document.page_content`` is the passage text; ``metadata`` holds every other field of the
hit (rank, score, doc_id, chunk_id, title, lang, source, date, start, end, url, country), so a
chain can cite exactly as ``rag search`` does. Not done here: prompting or calling an LLM.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from rag.service import Assistant
from rag.types import Filters


class GovragRetriever(BaseRetriever):
    """Hybrid cross-lingual retrieval over a govrag index."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    assistant: Assistant
    k: int = 5
    filters: Filters = Filters()

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[LCDocument]:
        result = self.assistant.search(query, self.k, self.filters)
        docs = []
        for hit in result.hits:
            meta = hit.to_json()
            text = meta.pop("text")
            meta["query_lang"] = result.query_lang
            docs.append(LCDocument(page_content=text, metadata=meta, id=hit.chunk_id))
        return docs
