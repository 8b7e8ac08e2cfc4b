"""The OpenVINO encoder back ends: ``RAG_ENCODER=openvino-bf16``, the default (bfloat16 passages
where the CPU computes in bf16 natively, float32 queries: 2.6× PyTorch's passage throughput on
these 2 cores, R@1 within 0.0032 of PyTorch on every one of 25 xquad-dev pairs), and
``RAG_ENCODER=openvino`` (float32: PyTorch's vectors). Figures: README, "Embedding back ends".

Recipe, chosen by measurement (``python -m bench encoders``):

* the model (BERT body, mean pooling and L2 normalisation, all in one graph) is converted from
  the local sentence-transformers folder with ``openvino.convert_model`` on the PyTorch module,
  offline, once, and cached under ``<cache>/openvino/<model folder>/`` with a stamp naming the
  source and the recipe (weights kept in float32: ``compress_to_fp16=False``);
* **passages** run in OpenVINO's THROUGHPUT mode: one stream per core, each on one thread, fed by
  an ``AsyncInferQueue`` while the next batch is tokenised; texts are sorted by length and cut
  into batches of ``RAG_BATCH_SIZE`` (4 was the fastest, as for PyTorch);
* ``openvino-bf16`` compiles the passage graph with ``INFERENCE_PRECISION_HINT=bf16``: matrix
  products in bfloat16 with float32 accumulation (cosine to PyTorch's vectors ≥ 0.99998). On a CPU
  without native bf16 (no AVX512_BF16 or AMX) OpenVINO runs float32 instead, and says so in the
  log line;
* **queries** run through a float32 LATENCY-mode graph on one thread (one short text gains
  nothing from more): their vectors equal PyTorch's, so an index built with any back end is
  searched by any other without re-embedding.

sentence-transformers' own ``backend="openvino"`` is not used: it needs ``optimum-intel``, which
would replace this machine's torch 2.13.0+cpu with a CUDA build and downgrade transformers 5 (pip's
resolver, measured 2026-12-03).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.models.onnx_encoder import _folder_config, _source_stamp

log = logging.getLogger(__name__)

#: Bump when the recipe changes, so cached graphs are rebuilt.
RECIPE = "ov-convert-torch+mean-pool+l2/v1"
_INSTALL = "pip install 'openvino>=2025.0' (a govrag dependency), or set RAG_ENCODER=torch"


def _need_openvino() -> Any:
    try:
        import openvino
    except ImportError as exc:
        raise RuntimeError(f"the OpenVINO encoder needs OpenVINO: {_INSTALL} ({exc})") from exc
    return openvino


def convert(folder: Path, cache_dir: Path, progress: Callable[[str], None] | None = None) -> Path:
    """``<cache>/openvino/<folder>/model.xml``: the pooled, normalised encoder, built once."""
    ov = _need_openvino()
    dest = cache_dir / "openvino" / folder.name
    xml, stamp_path = dest / "model.xml", dest / "govrag_openvino.json"
    source = {**_source_stamp(folder), "recipe": RECIPE}

    def fresh() -> bool:
        try:
            stamp = json.loads(stamp_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return False
        return stamp == source and xml.exists() and xml.with_suffix(".bin").exists()

    if fresh():
        return xml
    from filelock import FileLock

    dest.mkdir(parents=True, exist_ok=True)
    with FileLock(str(dest.parent / (dest.name + ".lock"))):
        if fresh():  # another process built it while we waited
            return xml
        t = time.perf_counter()
        (progress or (lambda _m: None))(f"building the OpenVINO encoder in {dest} (first use only)")
        stamp_path.unlink(missing_ok=True)
        model = _pooled_module(folder)
        import torch
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(folder))
        # padded on purpose: no "the mask is all ones" shortcut may be traced into the graph
        ex = tok(["passage: hello world", "passage: a longer example, so that the batch is padded"],
                 padding=True, return_tensors="pt")  # fmt: skip
        shape = ov.PartialShape([-1, -1])
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about shapes: the axes are dynamic
            graph = ov.convert_model(
                model, example_input={k: ex[k] for k in ("input_ids", "attention_mask")},
                input=[("input_ids", shape, ov.Type.i64), ("attention_mask", shape, ov.Type.i64)],
            )  # fmt: skip
        part = dest / "model.part.xml"
        ov.save_model(graph, str(part), compress_to_fp16=False)
        part.with_suffix(".bin").replace(xml.with_suffix(".bin"))
        part.replace(xml)
        stamp_path.write_text(json.dumps(source), encoding="utf-8")
        log.info("built the OpenVINO encoder in %.0f s", time.perf_counter() - t)
    return xml


def _pooled_module(folder: Path) -> Any:
    """The PyTorch module that is converted: BERT, mean pooling over the mask, L2 norm."""
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Loading weights" bars are noise in CLI output
    bert: Any = AutoModel.from_pretrained(str(folder), add_pooling_layer=False)
    bert.eval()

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            h = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            m = attention_mask.unsqueeze(-1).to(h.dtype)
            v = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(v, p=2.0, dim=1)

    return Pooled()


class OpenVinoEmbedder:
    """The ``Embedder`` protocol on OpenVINO (module doc). ``name`` is the model's name: the
    vectors are the same model's, so indexes and language means are shared with PyTorch."""

    def __init__(
        self, model: str, *, cache_dir: Path, batch_size: int = 4, bf16: bool = False
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be > 0, got {batch_size}")
        self.bf16 = bf16
        self._name = model
        self._cache_dir = cache_dir
        self._batch_size = batch_size
        self._lock = threading.Lock()
        self._compiled: tuple[Any, Any] | None = None  # (queries, passages)
        self._tokenizer: Any = None
        self._cfg: dict[str, Any] = {}
        self.precision = ""  # what OpenVINO computes passages in ("bf16", "f32"), once loaded
        self.threads: int | None = None  # passage threads (and streams); None: every core

    @property
    def name(self) -> str:
        return self._name

    @property
    def loaded(self) -> bool:
        return self._compiled is not None

    def warm_up(self, progress: Callable[[str], None] | None = None) -> None:
        with self._lock:
            if self._compiled is not None:
                return
            ov = _need_openvino()
            from transformers import AutoTokenizer

            from rag.models.embeddings import resolve_model

            folder = Path(resolve_model(self._name, self._cache_dir, progress))
            if not folder.is_dir():
                raise RuntimeError(
                    f"the OpenVINO encoder needs a local model folder; {self._name!r} is not one "
                    "(offline, use the default model or a folder path)"
                )
            self._cfg = _folder_config(folder)
            xml = convert(folder, self._cache_dir, progress)
            self._tokenizer = AutoTokenizer.from_pretrained(str(folder))
            core = ov.Core()
            graph = core.read_model(str(xml))
            queries = core.compile_model(graph, "CPU", {
                "PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": 1,
                "INFERENCE_PRECISION_HINT": "f32",
            })  # fmt: skip
            config: dict[str, Any] = {
                "PERFORMANCE_HINT": "THROUGHPUT",
                "INFERENCE_PRECISION_HINT": "bf16" if self.bf16 else "f32",
            }
            if self.threads:  # a Ray actor's share of the cores: one stream per thread
                config.update(INFERENCE_NUM_THREADS=self.threads, NUM_STREAMS=self.threads)
            passages = core.compile_model(graph, "CPU", config)
            hint = passages.get_property("INFERENCE_PRECISION_HINT")
            got = str(getattr(hint, "get_type_name", lambda: hint)())  # "bf16", "f32"
            streams = passages.get_property("NUM_STREAMS")
            log.info("OpenVINO passages: %s, %s streams", got, streams)
            self.precision = got
            if self.bf16 and got != "bf16":
                log.warning("this CPU has no native bf16: RAG_ENCODER=openvino-bf16 runs float32")
            self._compiled = (queries, passages)

    @property
    def dim(self) -> int:
        self.warm_up()
        return int(self._cfg["hidden"])

    def _batches(self, texts: Sequence[str], kind: str) -> Any:
        prefix = self._cfg["prompts"].get(kind, "")
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # little padding per batch
        for lo in range(0, len(order), self._batch_size):
            idx = order[lo : lo + self._batch_size]
            enc = self._tokenizer([prefix + texts[i] for i in idx], padding=True, truncation=True,
                                  max_length=self._cfg["max_len"], return_tensors="np")  # fmt: skip
            yield idx, {"input_ids": enc["input_ids"].astype(np.int64),
                        "attention_mask": enc["attention_mask"].astype(np.int64)}  # fmt: skip

    def encode_passages(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Unit-length float32 vectors; ``progress(n)`` as batches finish."""
        self.warm_up()
        assert self._compiled is not None
        ov = _need_openvino()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        finished = [0]
        lock = threading.Lock()

        def done(request: Any, idx: list[int]) -> None:  # on OpenVINO's thread
            out[idx] = request.get_output_tensor(0).data
            with lock:
                finished[0] += len(idx)

        queue = ov.AsyncInferQueue(self._compiled[1])
        queue.set_callback(done)
        reported = 0
        for idx, inputs in self._batches(texts, "passage"):
            queue.start_async(inputs, userdata=idx)  # waits while every request is busy
            with lock:
                now = finished[0]
            if progress and now > reported:
                progress(now - reported)
                reported = now
        queue.wait_all()
        if progress and len(texts) > reported:
            progress(len(texts) - reported)
        return out

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        self.warm_up()
        assert self._compiled is not None
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        request = self._compiled[0].create_infer_request()
        for idx, inputs in self._batches(texts, "query"):
            out[idx] = request.infer(inputs)[0]
        return out

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        self.warm_up()
        enc = self._tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
        return [len(ids) for ids in enc]
