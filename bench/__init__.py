"""Benchmarks for govrag: ``python -m bench`` (speed against the floors and a stock LangChain
pipeline), ``python -m bench scale`` (index types up to a million vectors) and
``python -m bench encoders`` (embedding back ends). See README "Performance"."""
