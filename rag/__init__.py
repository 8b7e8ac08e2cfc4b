"""govrag: cited, cross-lingual question answering over AI-governance documents."""

__version__ = "0.1.0"
