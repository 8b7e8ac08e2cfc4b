"""RAG_ENCODER=onnx-int8: the setting, its errors, and the real back end against PyTorch (the
quality gate itself is `python -m bench encoders`, README "Embedding back ends")."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from rag.config import Settings
from rag.models import onnx_encoder
from rag.models.embeddings import Embedder, make_embedder
from rag.models.onnx_encoder import OnnxEmbedder
from rag.service import Assistant
from tests.conftest import SHIPPED_CORPUS


def test_the_setting_takes_torch_or_onnx_int8(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().encoder == "openvino-bf16"  # the default (README "Embedding back ends")
    monkeypatch.setenv("RAG_ENCODER", "onnx-int8")
    assert Settings.from_env().encoder == "onnx-int8"
    monkeypatch.setenv("RAG_ENCODER", "onnx")
    assert Settings.from_env().encoder == "onnx"
    monkeypatch.setenv("RAG_ENCODER", "tensorrt")
    with pytest.raises(
        ValueError,
        match="encoder must be 'torch', 'onnx', 'onnx-int8', 'openvino' or 'openvino-bf16', got 'te",
    ):
        Settings.from_env()
    with pytest.raises(ValueError, match="encoder must be"):
        make_embedder("m", cache_dir=Path("."), encoder="tensorrt")
    emb = make_embedder("m", cache_dir=Path("."), encoder="onnx-int8")
    assert isinstance(emb, OnnxEmbedder) and emb.name == "m" and not emb.loaded and emb.int8
    emb = make_embedder("m", cache_dir=Path("."), encoder="onnx")
    assert isinstance(emb, OnnxEmbedder) and not emb.int8


def test_without_onnxruntime_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    with pytest.raises(RuntimeError, match=r"ONNX Runtime: pip install -e '\.\[onnx\]'"):
        OnnxEmbedder("m", cache_dir=Path(".")).warm_up()


def test_a_model_it_cannot_run_is_named_with_the_way_out(tmp_path: Path) -> None:
    folder = tmp_path / "cls-model"
    (folder / "1_Pooling").mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({
        "model_type": "bert", "num_hidden_layers": 2, "num_attention_heads": 2,
        "hidden_size": 8}))  # fmt: skip
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    with pytest.raises(RuntimeError, match=r"cls-model.*RAG_ENCODER=torch"):
        onnx_encoder.build(folder, tmp_path / "cache")
    shutil.rmtree(folder / "1_Pooling")
    with pytest.raises(RuntimeError, match=r"cls-model.*1_Pooling"):
        onnx_encoder.build(folder, tmp_path / "cache")


@pytest.fixture(scope="module")
def onnx_embedder() -> OnnxEmbedder:
    settings = Settings.from_env()
    emb = OnnxEmbedder(settings.model, cache_dir=settings.cache_dir)
    emb.warm_up()  # builds the graphs once per cache folder (~2 minutes)
    return emb


TEXTS = [
    "Artikel 5 verbiedt bepaalde AI-praktijken.",
    "生成式人工智能服务提供者应当履行哪些义务？",
    "The Commission shall adopt delegated acts in accordance with Article 97.",
    "Vem medlade i de hemliga samtalen om AI-säkerhet?",
]


@pytest.mark.model
def test_queries_equal_pytorch_and_passages_stay_close(
    onnx_embedder: OnnxEmbedder, torch_embedder: Embedder
) -> None:
    q = (onnx_embedder.encode_queries(TEXTS) * torch_embedder.encode_queries(TEXTS)).sum(1)
    assert q.min() > 0.9999, q  # float graph: the same vectors
    p = (onnx_embedder.encode_passages(TEXTS) * torch_embedder.encode_passages(TEXTS)).sum(1)
    assert p.min() > 0.99 and p.max() < 0.99999, p  # int8 passages: close, and not float
    norms = np.linalg.norm(onnx_embedder.encode_passages(TEXTS), axis=1)
    assert np.allclose(norms, 1, atol=1e-5)
    assert onnx_embedder.count_tokens(TEXTS) == torch_embedder.count_tokens(TEXTS)
    assert onnx_embedder.dim == torch_embedder.dim == 384
    # RAG_ENCODER=onnx: the float graph for passages too, the same vectors as PyTorch.
    settings = Settings.from_env()
    floating = OnnxEmbedder(settings.model, cache_dir=settings.cache_dir, int8=False)
    f = (floating.encode_passages(TEXTS) * torch_embedder.encode_passages(TEXTS)).sum(1)
    assert f.min() > 0.99999, f
    # Built once: a second embedder reuses the cached graphs (the stamp matches).
    stamp = settings.cache_dir / "onnx" / "intfloat__multilingual-e5-small" / "govrag_onnx.json"
    before = stamp.stat().st_mtime_ns
    OnnxEmbedder(settings.model, cache_dir=settings.cache_dir).warm_up()
    assert stamp.stat().st_mtime_ns == before


def _small_corpus(dest: Path) -> Path:
    """The five seed articles (nl, sv, en, ...) and the Chinese rules' text files."""
    dest.mkdir()
    for f in [*SHIPPED_CORPUS.glob("00*.txt"), SHIPPED_CORPUS / "catalog.jsonl"]:
        shutil.copy(f, dest / f.name)
    (dest / "china").mkdir()
    for f in (SHIPPED_CORPUS / "china").iterdir():
        if f.suffix in (".md", ".txt"):
            shutil.copy(f, dest / "china" / f.name)
    return dest


@pytest.mark.model
def test_the_assistant_on_onnx_finds_what_pytorch_finds(
    tmp_path: Path, onnx_embedder: OnnxEmbedder, torch_embedder: Embedder
) -> None:
    """The same corpus indexed on each back end: for questions in four languages the first
    passage is from the same document as PyTorch's and among its top 3."""
    corpus = _small_corpus(tmp_path / "corpus")
    found = {}
    for name, emb in (("onnx", onnx_embedder), ("torch", torch_embedder)):
        settings = Settings.from_env(corpus_dir=corpus, index_dir=tmp_path / f"index-{name}")
        assistant = Assistant(settings, emb)
        assert assistant.ingest().skipped == ()
        found[name] = [assistant.search(q, k=3).hits for q in QUESTIONS]
    for q, ours, theirs in zip(QUESTIONS, found["onnx"], found["torch"], strict=True):
        assert ours and ours[0].doc_id == theirs[0].doc_id, q
        assert ours[0].chunk_id in {h.chunk_id for h in theirs}, q


QUESTIONS = [
    "Who mediated the secret AI safety talks between US and Chinese companies?",
    "Welke landen wil de EU overtuigen om haar AI-regels te volgen?",
    "生成式人工智能服务提供者应当履行哪些义务？",
    "Vad sa den kinesiska ambassaden i Storbritannien?",
]
