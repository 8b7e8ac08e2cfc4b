"""Search: question → ranked Hits (``retrieve``), with the fusion of dense, sentence and BM25
signals (``fusion``)."""
