"""The default store: an index folder of FAISS vectors, an SQLite table and a manifest
(``folder`` reads it, ``writer`` writes it, ``vectors`` picks the FAISS index type, ``store``
adapts it to the Store protocol)."""
