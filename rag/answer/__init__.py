"""Answers: Hits → a cited Answer. ``extractive`` picks evidence sentences, ``llm`` writes checked
prose with an LLM, ``compose`` numbers the citations and words the abstention, ``follow_up``
reads chat follow-ups, ``answer_type`` tells number and date questions."""
