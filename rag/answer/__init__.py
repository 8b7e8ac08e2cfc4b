"""Answers: Hits → a cited Answer. ``extractive`` picks evidence sentences, ``llm`` writes checked
prose with an LLM, ``compose`` numbers the citations and words the abstention, ``follow_up``
resolves chat follow-ups."""
