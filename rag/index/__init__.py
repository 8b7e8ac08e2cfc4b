"""Index: the Store protocol and the values that cross it (``base``), BM25 (``lexical``), the FAISS
folder (``faiss/``) and the Qdrant collection (``qdrant/``), the settings' choice between them
(``backends``), and copying a FAISS index into Qdrant (``copy``)."""
