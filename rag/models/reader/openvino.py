"""The reader on OpenVINO (``RAG_READER_BACKEND=openvino-bf16``, the default, or ``openvino``).

The shipped reader (or another ``reader.json`` + ``reader.safetensors`` folder) is assembled in
PyTorch once, converted with ``openvino.convert_model`` into one graph (BERT body, the mean pooling
over the mask and the classifier: one logit per pair out) and cached under
``<cache>/openvino/reader-<digest>/``, the digest naming the trained weights, the base folder and
the recipe; a later process reads the cached graph and never builds the PyTorch model. The
calibration and threshold are the reader's own (``reader.json``).

At query time the candidate pairs are sorted by length and cut into batches of ``batch_size``
(little padding per batch), run in OpenVINO's THROUGHPUT mode (one stream per core, one batch
in flight on each) while the next batch is tokenised. ``openvino-bf16`` computes the matrix
products in bfloat16 where the CPU has native bf16 (float32 otherwise, said in the log). Speed and
the quality gate against PyTorch: README, "The reader", and ``python -m bench reader``.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.models.onnx_encoder import int64_inputs
from rag.models.openvino_encoder import convert_module, infer_batches, precision_of
from rag.models.reader import (
    DELTA_FILE,
    META_FILE,
    Calibration,
    ReaderError,
    load_shipped,
    read_meta,
)

log = logging.getLogger(__name__)

#: Bump when the recipe changes, so cached graphs are rebuilt.
RECIPE = "ov-convert-torch+reader-logit/v1"


def _digest(weights: Path, base_folder: Path) -> str:
    h = hashlib.sha256(RECIPE.encode())
    for path in (weights / META_FILE, weights / DELTA_FILE):
        h.update(path.read_bytes())
    base = base_folder / "model.safetensors"
    stat = base.stat()
    h.update(f"{base.resolve()}:{stat.st_size}:{int(stat.st_mtime)}".encode())
    return h.hexdigest()[:16]


def convert(
    base_folder: Path,
    weights: Path,
    cache_dir: Path,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """``<cache>/openvino/reader-<digest>/model.xml``: the reader's logit graph, built once."""
    dest = cache_dir / "openvino" / f"reader-{_digest(weights, base_folder)}"
    xml = dest / "model.xml"
    if xml.exists() and xml.with_suffix(".bin").exists():
        return xml
    from filelock import FileLock

    dest.mkdir(parents=True, exist_ok=True)
    with FileLock(str(dest.parent / (dest.name + ".lock"))):
        if xml.exists() and xml.with_suffix(".bin").exists():  # built while we waited
            return xml
        t = time.perf_counter()
        (progress or (lambda _m: None))(f"building the OpenVINO reader in {dest} (first use only)")
        import torch

        torch_reader = load_shipped(str(base_folder), weights)
        model = torch_reader.model

        class Logit(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = model

            def forward(self, input_ids: Any, attention_mask: Any) -> Any:
                return self.model(input_ids=input_ids, attention_mask=attention_mask).logits[:, 0]

        # padded on purpose: no "the mask is all ones" shortcut may be traced into the graph
        ex = torch_reader.tokenizer(["a question?", "another question?"],
                                    ["an answer.", "a longer sentence, so that the batch pads."],
                                    padding=True, return_tensors="pt")  # fmt: skip
        convert_module(Logit(), ex, xml)
        log.info("built the OpenVINO reader in %.0f s", time.perf_counter() - t)
    return xml


class OpenVinoReader:
    """The ``Reader`` protocol on an OpenVINO graph of a shipped-format reader (module doc)."""

    def __init__(
        self,
        base_folder: str,
        weights: Path,
        *,
        cache_dir: Path,
        bf16: bool = True,
        batch_size: int = 4,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        try:
            import openvino as ov
        except ImportError as exc:
            raise ReaderError(
                f"RAG_READER_BACKEND=openvino needs OpenVINO (pip install 'openvino>=2025.0', a "
                f"govrag dependency), or set RAG_READER_BACKEND=torch ({exc})"
            ) from exc
        from transformers import AutoTokenizer

        meta = read_meta(weights)
        xml = convert(Path(base_folder), weights, cache_dir, progress)
        self.tokenizer = AutoTokenizer.from_pretrained(base_folder)
        self.max_length = int(meta["max_length"])
        self.calibration = Calibration.of(meta)
        self.threshold = float(meta["threshold"])
        self.batch_size = batch_size
        core = ov.Core()
        self._compiled = core.compile_model(core.read_model(str(xml)), "CPU", {
            "PERFORMANCE_HINT": "THROUGHPUT",
            "INFERENCE_PRECISION_HINT": "bf16" if bf16 else "f32",
        })  # fmt: skip
        self.precision = precision_of(self._compiled)
        if bf16 and self.precision != "bf16":
            log.warning("no native bf16 on this CPU: RAG_READER_BACKEND=openvino-bf16 runs float32")
        self._lock = threading.Lock()  # concurrent asks would only contend for the same cores

    def logits(self, question: str, sentences: Sequence[str]) -> np.ndarray:
        out = np.zeros(len(sentences), dtype=np.float32)
        if not sentences:
            return out

        def put(idx: list[int], logits: np.ndarray) -> None:
            out[idx] = logits.reshape(-1)

        def batches() -> Any:
            order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
            for lo in range(0, len(order), self.batch_size):
                idx = order[lo : lo + self.batch_size]
                enc = self.tokenizer(
                    [question] * len(idx), [sentences[i] for i in idx], padding=True,
                    truncation="only_second", max_length=self.max_length, return_tensors="np",
                )  # fmt: skip
                yield idx, int64_inputs(enc)

        with self._lock:
            infer_batches(self._compiled, batches(), put)
        return out

    def probabilities(self, question: str, sentences: Sequence[str]) -> np.ndarray:
        return self.calibration(self.logits(question, sentences))
