"""An ONNX Runtime embedder for the encoder bench: export once from the local model folder, then
encode like ``rag.embeddings.SentenceTransformerEmbedder`` (length-sorted batches, mean pooling,
L2 norm, e5 prompts). Optionally int8 dynamic quantisation of the weights.

Offline: the graph is exported with ``torch.onnx`` from the folder govrag already built and cached
next to it (``<cache>/onnx/model{,.int8}.onnx``); nothing is downloaded. ``optimum`` is not used
(it would pin an older transformers).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def export(model_folder: str, dest: Path, log: Callable[[str], None] = print) -> Path:
    """``dest/model.onnx`` from a sentence-transformers folder (BERT body; pooling done here)."""
    path = dest / "model.onnx"
    if path.exists():
        return path
    import torch
    from sentence_transformers import SentenceTransformer

    t = time.perf_counter()
    st = SentenceTransformer(model_folder, device="cpu")
    bert: Any = st[0].auto_model  # a transformers BertModel
    bert.eval()
    enc = st.tokenizer(["passage: hello world"], return_tensors="pt")
    names = [k for k in ("input_ids", "attention_mask") if k in enc]

    class Body(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    dest.mkdir(parents=True, exist_ok=True)
    axes = {0: "batch", 1: "tokens"}
    tmp = dest / "model.onnx.part"
    torch.onnx.export(Body(), tuple(enc[k] for k in names), str(tmp), input_names=names,
                      output_names=["last_hidden_state"],
                      dynamic_axes={**dict.fromkeys(names, axes), "last_hidden_state": axes},
                      opset_version=17, dynamo=False)  # fmt: skip
    tmp.rename(path)
    log(f"exported {path} in {time.perf_counter() - t:.0f}s")
    return path


def quantize(fp32: Path) -> Path:
    """int8 dynamic quantisation of the weights (activations quantised at run time)."""
    path = fp32.with_name("model.int8.onnx")
    if not path.exists():
        from onnxruntime.quantization import QuantType, quantize_dynamic

        tmp = fp32.with_name("model.int8.onnx.part")
        quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8)
        tmp.rename(path)
    return path


class OnnxEmbedder:
    """The ``rag.embeddings.Embedder`` protocol over an ONNX Runtime session."""

    def __init__(self, onnx_path: Path, model_folder: str, name: str, threads: int = 1,
                 batch_size: int = 32) -> None:  # fmt: skip
        import onnxruntime as ort
        from transformers import AutoTokenizer

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(onnx_path), opts,
                                            providers=["CPUExecutionProvider"])  # fmt: skip
        self.tokenizer = AutoTokenizer.from_pretrained(model_folder)
        self._name = name
        self.batch_size = batch_size

    @property
    def name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        return 384

    def _encode(self, texts: Sequence[str], prefix: str) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for lo in range(0, len(order), self.batch_size):
            idx = order[lo : lo + self.batch_size]
            enc = self.tokenizer([prefix + texts[i] for i in idx], padding=True, truncation=True,
                                 max_length=512, return_tensors="np")  # fmt: skip
            feed = {"input_ids": enc["input_ids"].astype(np.int64),
                    "attention_mask": enc["attention_mask"].astype(np.int64)}  # fmt: skip
            hidden = self.session.run(None, feed)[0]
            mask = enc["attention_mask"][..., None].astype(np.float32)
            vecs = (hidden * mask).sum(1) / mask.sum(1)
            out[idx] = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
        return out

    def encode_passages(self, texts: Sequence[str],
                        progress: Callable[[int], None] | None = None) -> np.ndarray:  # fmt: skip
        out = self._encode(texts, "passage: ")
        if progress:
            progress(len(texts))
        return out

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, "query: ")

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        enc = self.tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
        return [len(ids) for ids in enc]
