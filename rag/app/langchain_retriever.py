"""govrag's retriever as a LangChain ``BaseRetriever``: ``Document``s with the hit metadata.

    retriever = GovragRetriever(assistant=Assistant(), k=5)
    docs = retriever.invoke("What did the Chinese embassy in the UK say?")

Each ``Document.page_content`` is the passage text; ``metadata`` holds every other field of the
hit (rank, score, doc_id, chunk_id, title, lang, source, date, start, end, url, jurisdiction,
doc_type, status, file, page, …), so a chain can cite exactly as ``rag search`` does. With a
reader configured (``RAG_READER``; none by default) and ``rerank`` on (``rerank=False`` for plain
search order) the passages holding a sentence the reader says answers come first, and
``metadata["reader_score"]`` is the reader's probability for the passage's best sentence it was
shown. Not done here: prompting or calling an LLM.
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
    # Passages the reader says answer the query first, each with metadata["reader_score"] (its
    # best sentence's probability, when the reader was shown one); False = plain search order.
    rerank: bool = True

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[LCDocument]:
        scores: dict[str, float] = {}
        if self.rerank:
            result, scores = self.assistant.querier.reranked(query, self.k, self.filters)
        else:
            result = self.assistant.search(query, self.k, self.filters)
        docs = []
        for hit in result.hits:
            meta = hit.to_json()
            text = meta.pop("text")
            meta["query_lang"] = result.query_lang
            if hit.chunk_id in scores:
                meta["reader_score"] = round(scores[hit.chunk_id], 4)
            docs.append(LCDocument(page_content=text, metadata=meta, id=hit.chunk_id))
        return docs
