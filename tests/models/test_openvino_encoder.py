"""RAG_ENCODER=openvino / openvino-bf16: the setting, its errors, and the real back end against
PyTorch (the quality gate itself is `python -m bench encoders --gate openvino-bf16 --pairs …`,
README "Embedding back ends")."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from rag.config import Settings
from rag.models.embeddings import Embedder, make_embedder
from rag.models.openvino_encoder import OpenVinoEmbedder
from rag.service import Assistant
from tests.models.test_onnx_encoder import QUESTIONS, TEXTS, _small_corpus


def test_the_setting_takes_openvino_and_openvino_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    for value in ("openvino", "openvino-bf16"):
        monkeypatch.setenv("RAG_ENCODER", value)
        assert Settings.from_env().encoder == value
    emb = make_embedder("m", cache_dir=Path("."), encoder="openvino-bf16")
    assert isinstance(emb, OpenVinoEmbedder) and emb.bf16 and not emb.loaded and emb.name == "m"
    emb = make_embedder("m", cache_dir=Path("."), encoder="openvino")
    assert isinstance(emb, OpenVinoEmbedder) and not emb.bf16
    with pytest.raises(ValueError, match="runs on the CPU only"):
        make_embedder("m", cache_dir=Path("."), encoder="openvino", device="cuda")


def test_without_openvino_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openvino", None)  # import fails as if not installed
    with pytest.raises(RuntimeError, match=r"needs OpenVINO: pip install 'openvino>=2025.0'"):
        OpenVinoEmbedder("m", cache_dir=Path(".")).warm_up()


@pytest.fixture(scope="module")
def ov_embedders() -> dict[str, OpenVinoEmbedder]:
    settings = Settings.from_env()
    out = {}
    for bf16 in (False, True):
        emb = OpenVinoEmbedder(settings.model, cache_dir=settings.cache_dir, bf16=bf16)
        emb.warm_up()  # converts the model once per cache folder (~20 s)
        out["bf16" if bf16 else "f32"] = emb
    return out


@pytest.mark.model
def test_vectors_match_pytorch(
    ov_embedders: dict[str, OpenVinoEmbedder], torch_embedder: Embedder
) -> None:
    ref_q, ref_p = torch_embedder.encode_queries(TEXTS), torch_embedder.encode_passages(TEXTS)
    for name, emb in ov_embedders.items():
        q = (emb.encode_queries(TEXTS) * ref_q).sum(1)
        assert q.min() > 0.99999, (name, q)  # queries: float32 in both
        seen: list[int] = []
        vecs = emb.encode_passages(TEXTS * 5, progress=seen.append)
        assert sum(seen) == len(TEXTS) * 5
        assert np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-5)
        p = (vecs[: len(TEXTS)] * ref_p).sum(1)
        # float32: PyTorch's vectors; bf16 (where the CPU has it): cosine ≥ 0.9999 (0.99998 seen)
        assert p.min() > (0.99999 if name == "f32" else 0.9999), (name, p)
        assert emb.count_tokens(TEXTS) == torch_embedder.count_tokens(TEXTS)
        assert emb.dim == 384 and emb.precision in ("f32", "bf16")
    assert ov_embedders["f32"].precision == "f32"
    # Built once: a new embedder reuses the converted model (its stamp is not rewritten).
    settings = Settings.from_env()
    stamp = (settings.cache_dir / "openvino" / "intfloat__multilingual-e5-small" /
             "govrag_openvino.json")  # fmt: skip
    before = stamp.stat().st_mtime_ns
    OpenVinoEmbedder(settings.model, cache_dir=settings.cache_dir).warm_up()
    assert stamp.stat().st_mtime_ns == before


@pytest.mark.model
def test_the_assistant_on_openvino_bf16_finds_what_pytorch_finds(
    tmp_path: Path, ov_embedders: dict[str, OpenVinoEmbedder], torch_embedder: Embedder
) -> None:
    """The same corpus indexed on each back end: the same first passage for questions in four
    languages."""
    corpus = _small_corpus(tmp_path / "corpus")
    found = {}
    for name, emb in (("openvino-bf16", ov_embedders["bf16"]), ("torch", torch_embedder)):
        settings = Settings.from_env(corpus_dir=corpus, index_dir=tmp_path / f"index-{name}")
        assistant = Assistant(settings, emb)
        assert assistant.ingest().skipped == ()
        found[name] = [assistant.search(q, k=3).hits for q in QUESTIONS]
    for q, ours, theirs in zip(QUESTIONS, found["openvino-bf16"], found["torch"], strict=True):
        assert ours and ours[0].doc_id == theirs[0].doc_id, q
        assert ours[0].chunk_id == theirs[0].chunk_id, q  # the same first passage


def test_batches_run_as_many_in_flight_as_there_are_requests_and_all_come_back() -> None:
    """infer_batches (no AsyncInferQueue, no Python callback on OpenVINO's threads): with two
    requests, the third batch waits for the first; every batch's output is handed back, once,
    on the calling thread."""
    import threading

    import numpy as np

    from rag.models.openvino_encoder import infer_batches

    events: list[str] = []

    class Request:
        def __init__(self, k: int) -> None:
            self.k, self.x = k, np.zeros(0)

        def start_async(self, inputs: dict[str, np.ndarray]) -> None:
            events.append(f"start{self.k}")
            self.x = inputs["input_ids"] * 10

        def wait(self) -> None:
            events.append(f"wait{self.k}")

        def get_output_tensor(self, _i: int) -> object:
            return type("T", (), {"data": self.x})()

    class Compiled:
        made = 0

        def get_property(self, name: str) -> int:
            assert name == "OPTIMAL_NUMBER_OF_INFER_REQUESTS"
            return 2

        def create_infer_request(self) -> Request:
            self.made += 1
            return Request(self.made - 1)

    got: dict[str, list[int]] = {}
    caller = threading.get_ident()

    def put(key: str, out: np.ndarray) -> None:
        assert threading.get_ident() == caller and key not in got
        got[key] = out.tolist()

    batches = [(f"b{i}", {"input_ids": np.array([i, i + 1])}) for i in range(5)]
    infer_batches(Compiled(), iter(batches), put)
    assert got == {f"b{i}": [10 * i, 10 * (i + 1)] for i in range(5)}
    assert events[:3] == ["start0", "start1", "wait0"]  # the third batch waited for the first
    assert events.count("wait0") + events.count("wait1") == 5
