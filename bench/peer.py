"""The peer: a stock LangChain pipeline over the same cleaned documents and the same local model.

``RecursiveCharacterTextSplitter`` (sized in the same model tokens as govrag: 200 with a 40 overlap)
→ ``HuggingFaceEmbeddings`` (the same local sentence-transformers folder, same batch size, the e5
``passage: ``/``query: `` prompts) → ``langchain_community`` ``FAISS.from_documents`` →
``similarity_search``. Nothing here is tuned: it is what a tutorial would build.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rag.evaluate import DevQuestion, Metrics, chunk_is_gold, compute_metrics
from rag.types import Document


class LangChainPeer:
    def __init__(self, model_folder: str, batch_size: int) -> None:
        from langchain_huggingface import HuggingFaceEmbeddings
        from langchain_text_splitters import RecursiveCharacterTextSplitter
        from transformers import AutoTokenizer

        self.embeddings = HuggingFaceEmbeddings(
            model_name=model_folder,
            model_kwargs={"device": "cpu"},
            encode_kwargs={"prompt": "passage: ", "batch_size": batch_size,
                           "normalize_embeddings": True},
            query_encode_kwargs={"prompt": "query: ", "normalize_embeddings": True},
        )  # fmt: skip
        self.splitter = RecursiveCharacterTextSplitter.from_huggingface_tokenizer(
            AutoTokenizer.from_pretrained(model_folder), chunk_size=200, chunk_overlap=40
        )
        self.store: Any = None

    def ingest(self, docs: Sequence[Document]) -> int:
        """Split, embed and index; returns the number of chunks."""
        from langchain_community.vectorstores import FAISS
        from langchain_core.documents import Document as LCDocument

        chunks = self.splitter.split_documents(
            [LCDocument(page_content=d.text, metadata={"doc_id": d.doc_id}) for d in docs]
        )
        self.store = FAISS.from_documents(chunks, self.embeddings)
        return len(chunks)

    def search(self, query: str, k: int = 5) -> list[Any]:
        return self.store.similarity_search(query, k=k)

    def evaluate(self, questions: Sequence[DevQuestion], k: int = 10) -> Metrics:
        """The same judgement as ``rag.evaluate.evaluate_devset``: gold doc and gold phrase."""
        qs = [q for q in questions if q.answerable]
        rankings = [
            [chunk_is_gold(q, d.metadata["doc_id"], d.page_content)
             for d in self.search(q.question, k)]
            for q in qs
        ]  # fmt: skip
        return compute_metrics(rankings, [1] * len(qs))
