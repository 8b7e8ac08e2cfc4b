"""The Qdrant store, for archives that outgrow one machine: a collection (server or local mode)
holding the same chunks, sentences, vectors and BM25 terms as the FAISS folder."""
