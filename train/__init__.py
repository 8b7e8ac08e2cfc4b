"""Training code for the models govrag ships (``python -m train.reader``); never imported by rag."""
