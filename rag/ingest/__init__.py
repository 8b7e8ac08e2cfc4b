"""Ingest: corpus files → cleaned Documents (``corpus``, ``formats``, ``clean``, ``lang``) →
Chunks and sentence spans (``chunking``); app uploads (``uploads``). No models, no index."""
