"""The OpenVINO encoder back ends: ``RAG_ENCODER=openvino-bf16``, the default (bfloat16 passages
where the CPU computes in bf16 natively, float32 queries: 2.6× PyTorch's passage throughput on
these 2 cores, R@1 within 0.0032 of PyTorch on every one of 25 xquad-dev pairs), and
``RAG_ENCODER=openvino`` (float32: PyTorch's vectors). Figures: README, "Embedding back ends".

Recipe, chosen by measurement (``python -m bench encoders``):

* the model (BERT body, mean pooling and L2 normalisation, all in one graph) is converted from
  the local sentence-transformers folder with ``openvino.convert_model`` on the PyTorch module,
  offline, once, and cached under ``<cache>/openvino/<model folder>/`` with a stamp naming the
  source and the recipe (weights kept in float32: ``compress_to_fp16=False``);
* **passages** run in OpenVINO's THROUGHPUT mode: one stream per core, each on one thread, one
  batch in flight per stream while the next is tokenised (``infer_batches``); texts are sorted
  by length and cut into batches of ``RAG_BATCH_SIZE`` (4 was the fastest, as for PyTorch);
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
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.models.onnx_encoder import TokenizedEncoder, _source_stamp

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
    _need_openvino()  # a clear message before anything is built
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
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(folder))
        # padded on purpose: no "the mask is all ones" shortcut may be traced into the graph
        ex = tok(["passage: hello world", "passage: a longer example, so that the batch is padded"],
                 padding=True, return_tensors="pt")  # fmt: skip
        convert_module(model, ex, xml)
        stamp_path.write_text(json.dumps(source), encoding="utf-8")
        log.info("built the OpenVINO encoder in %.0f s", time.perf_counter() - t)
    return xml


def infer_batches(
    compiled: Any, batches: Iterable[tuple[Any, dict[str, np.ndarray]]], put: Callable[..., None]
) -> None:
    """Every ``(key, inputs)`` batch through ``compiled``, as many in flight as it has infer
    requests (one per stream), the next batch prepared while they run; ``put(key, output)``
    on this thread, each batch in turn.

    No ``AsyncInferQueue``: its Python callback runs on OpenVINO's threads, and one that still
    wants the GIL when a compiled model is released deadlocks the process (the main thread in
    ``~CompiledModel`` joining a stream thread that waits for the GIL: it hung a test run here,
    as in openvino PR 37073 and ultralytics issue 25923)."""
    n = max(1, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
    requests = [compiled.create_infer_request() for _ in range(n)]
    keys: list[Any] = [None] * n
    busy = [False] * n
    i = 0

    def collect(k: int) -> None:
        requests[k].wait()
        put(keys[k], requests[k].get_output_tensor(0).data.copy())
        busy[k] = False

    for key, inputs in batches:
        if busy[i]:
            collect(i)
        requests[i].start_async(inputs)  # inputs copied: nothing of Python's is kept
        keys[i], busy[i] = key, True
        i = (i + 1) % n
    for k in [*range(i, n), *range(i)]:  # the oldest first
        if busy[k]:
            collect(k)


def precision_of(compiled: Any) -> str:
    """What a compiled model computes in: "bf16", "f32"."""
    hint = compiled.get_property("INFERENCE_PRECISION_HINT")
    return str(getattr(hint, "get_type_name", lambda: hint)())


def convert_module(module: Any, example: Any, xml: Path) -> None:
    """``xml`` (+ ``.bin``): ``module(input_ids, attention_mask)`` traced by
    ``openvino.convert_model`` on the padded ``example`` batch, both axes dynamic, weights kept in
    float32; written beside and then moved in place, so a reader never sees half a graph."""
    ov = _need_openvino()
    import torch

    shape = ov.PartialShape([-1, -1])
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shapes: the axes are dynamic
        graph = ov.convert_model(
            module.eval(), example_input={k: example[k] for k in ("input_ids", "attention_mask")},
            input=[("input_ids", shape, ov.Type.i64), ("attention_mask", shape, ov.Type.i64)],
        )  # fmt: skip
    part = xml.with_name(xml.stem + ".part.xml")
    ov.save_model(graph, str(part), compress_to_fp16=False)
    part.with_suffix(".bin").replace(xml.with_suffix(".bin"))
    part.replace(xml)


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


class OpenVinoEmbedder(TokenizedEncoder):
    """The ``Embedder`` protocol on OpenVINO (module doc). ``name`` is the model's name: the
    vectors are the same model's, so indexes and language means are shared with PyTorch."""

    def __init__(
        self, model: str, *, cache_dir: Path, batch_size: int = 4, bf16: bool = False
    ) -> None:
        super().__init__(model, cache_dir=cache_dir, batch_size=batch_size)
        self.bf16 = bf16
        self._compiled: tuple[Any, Any] | None = None  # (queries, passages)
        self.precision = ""  # what OpenVINO computes passages in ("bf16", "f32"), once loaded
        self.threads: int | None = None  # passage threads (and streams); None: every core

    @property
    def loaded(self) -> bool:
        return self._compiled is not None

    def warm_up(self, progress: Callable[[str], None] | None = None) -> None:
        with self._lock:
            if self._compiled is not None:
                return
            ov = _need_openvino()
            folder = self._load_folder("OpenVINO", progress)
            xml = convert(folder, self._cache_dir, progress)
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
            got = precision_of(passages)
            log.info("OpenVINO passages: %s, %s streams", got, passages.get_property("NUM_STREAMS"))
            self.precision = got
            if self.bf16 and got != "bf16":
                log.warning("this CPU has no native bf16: RAG_ENCODER=openvino-bf16 runs float32")
            self._compiled = (queries, passages)

    def encode_passages(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Unit-length float32 vectors; ``progress(n)`` as batches finish."""
        self.warm_up()
        assert self._compiled is not None
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out

        def put(idx: list[int], vecs: np.ndarray) -> None:
            out[idx] = vecs
            if progress:
                progress(len(idx))

        infer_batches(self._compiled[1], self._batches(texts, "passage"), put)
        return out

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.start_queries(texts)()

    def start_queries(self, texts: Sequence[str]) -> Callable[[], np.ndarray]:
        """Start encoding ``texts`` as queries; returns the function that waits for their
        vectors. OpenVINO runs the request on its own threads without the GIL, so the caller can
        work meanwhile (a search scores BM25). Call the function, also on errors: it collects
        the request. A request per call, so concurrent searches share none."""
        self.warm_up()
        assert self._compiled is not None
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        batches = list(self._batches(texts, "query"))
        request = self._compiled[0].create_infer_request()
        for idx, inputs in batches[:-1]:  # more texts than one batch: the rest in turn
            out[idx] = request.infer(inputs)[0]
        if not batches:
            return lambda: out
        last, inputs = batches[-1]
        request.start_async(inputs)

        def wait() -> np.ndarray:
            request.wait()
            out[last] = request.get_output_tensor(0).data
            return out

        return wait
