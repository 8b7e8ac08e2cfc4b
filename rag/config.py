"""One Settings object: paths, model, chunking and retrieval knobs.

Defaults < environment (``RAG_*``) < explicit arguments (CLI flags). Validation happens here,
with the bad value in the message, so nothing downstream has to re-check.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

DEFAULT_MODEL = "intfloat/multilingual-e5-small"
MAX_K = 1000  # the most passages one search returns (CLI, API and app alike)


def default_cache_dir() -> Path:
    """Where the converted offline model lives (never in git): ``RAG_CACHE_DIR`` or user cache."""
    env = os.environ.get("RAG_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("govrag"))


def flag(raw: str) -> bool:
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def one_of(names: tuple[str, ...]) -> str:
    """("a", "b", "c") → "'a', 'b' or 'c'" for error messages."""
    quoted = [repr(n) for n in names]
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]


#: The values of ``Settings.encoder`` (``RAG_ENCODER``).
ENCODERS = ("torch", "onnx", "onnx-int8", "openvino", "openvino-bf16")
#: The values of ``Settings.reader_backend`` (``RAG_READER_BACKEND``).
READER_BACKENDS = ("openvino-bf16", "openvino", "torch")


@dataclass(frozen=True)
class Settings:
    """Everything configurable. Build with :meth:`from_env` to honour ``RAG_*`` variables."""

    corpus_dir: Path = Path("corpus")
    index_dir: Path = Path("index")
    model: str = DEFAULT_MODEL
    # The encoder's back end: "openvino-bf16" (OpenVINO, bf16 passages where the CPU has bf16,
    # float queries: the fastest that passes the quality gate), "openvino" (float), "torch"
    # (sentence-transformers on PyTorch; GPUs), "onnx" (ONNX Runtime, float) or "onnx-int8" (int8
    # passages). README "Embedding back ends" has the speed and the quality gate.
    encoder: str = "openvino-bf16"
    cache_dir: Path = field(default_factory=default_cache_dir)
    # Chunking, in model tokens (the e5 tokenizer); see README "Chunking" for how these were chosen.
    chunk_tokens: int = 200
    chunk_overlap_tokens: int = 40
    # Texts per encoder call: 4 is the fastest on 2 CPU cores for both back ends (32 was 1.2-1.8x
    # slower; README "Embedding back ends"); raise it on a GPU.
    batch_size: int = 4
    top_k: int = 5
    retrieval: str = "hybrid"  # "hybrid" (dense + sentences + BM25) or "dense"
    # Per passage already listed in the same document language, a passage's score counts this
    # much less when the result list is ordered (0 = plain score order). See Fusion.lang_penalty.
    lang_spread: float = 0.02
    centering: float = 0.8  # share of the language mean taken out of vectors; 0 = off
    # BM25 across languages: add the query words' dictionary translations (sv/nl/de/fr/es/zh ↔ en),
    # and how much BM25 counts for a passage in another language than the question's
    # (README "Cross-lingual retrieval 2.0" has the measurements).
    query_translation: bool = True
    bm25_cross: float = 0.02
    # Embed chunks and sentences with their document's title in front (the vectors only: stored
    # text, offsets and quotes are unchanged). README "How it works" has the measurements.
    title_context: bool = True
    max_file_mb: float = 20.0
    max_upload_mb: float = 20.0
    # Optional LLM answers (see README "LLM mode"): a model in init_chat_model form, e.g.
    # "ollama:llama3.1" or "openai:gpt-4o-mini"; empty = extractive answers only.
    llm: str = ""
    # The reader that judges which sentences answer (rag/models/reader): "none" (similarity
    # scores and a threshold), "govrag-reader" (the shipped one: not the default, because on the
    # dev set it answers far less than the similarity answerer; README "The reader"), a folder
    # with reader.json + reader.safetensors, or a CrossEncoder folder or hub name.
    reader: str = "none"
    # What runs a reader of the shipped format: "openvino-bf16" (bf16 where the CPU has it: the
    # fastest that passes the reader's quality gate), "openvino" (float) or "torch". A hub
    # CrossEncoder always runs on PyTorch. README "The reader" has the speed and the gate.
    reader_backend: str = "openvino-bf16"
    llm_base_url: str = ""  # e.g. http://localhost:11434 (Ollama) or http://host:8000/v1
    llm_api_key: str = field(default="", repr=False)
    llm_timeout: float = 60.0
    # Where the index lives: "faiss" (the index folder) or "qdrant" (README, "Scaling out").
    store: str = "faiss"
    qdrant_url: str = ""  # a Qdrant server or cluster, e.g. http://localhost:6333
    qdrant_path: Path | None = None  # or qdrant-client's local mode in this folder (":memory:")
    qdrant_collection: str = "govrag"
    qdrant_shards: int = 1  # collection settings, used when the collection is created
    qdrant_replicas: int = 1
    qdrant_on_disk: bool = False
    qdrant_quantization: str = "none"  # or "int8" (scalar quantization, originals kept)

    def __post_init__(self) -> None:
        if self.chunk_tokens < 16 or self.chunk_tokens > 510:
            raise ValueError(f"chunk_tokens must be in 16..510, got {self.chunk_tokens}")
        if not 0 <= self.chunk_overlap_tokens < self.chunk_tokens // 2:
            raise ValueError(
                "chunk_overlap_tokens must be >= 0 and < chunk_tokens/2, "
                f"got {self.chunk_overlap_tokens} (chunk_tokens={self.chunk_tokens})"
            )
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be > 0, got {self.batch_size}")
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder must be {one_of(ENCODERS)}, got {self.encoder!r}")
        if self.reader_backend not in READER_BACKENDS:
            raise ValueError(f"reader_backend must be {one_of(READER_BACKENDS)}, "
                             f"got {self.reader_backend!r}")  # fmt: skip
        if self.retrieval not in ("hybrid", "dense"):
            raise ValueError(f"retrieval must be 'hybrid' or 'dense', got {self.retrieval!r}")
        if not 0 <= self.lang_spread <= 1:
            raise ValueError(f"lang_spread must be in 0..1, got {self.lang_spread}")
        if not 0 <= self.bm25_cross <= 1:
            raise ValueError(f"bm25_cross must be in 0..1, got {self.bm25_cross}")
        if not 0 <= self.centering <= 1:
            raise ValueError(f"centering must be in 0..1, got {self.centering}")
        if self.top_k < 1:
            raise ValueError(f"top_k must be > 0, got {self.top_k}")
        if self.max_upload_mb <= 0:
            raise ValueError(f"max_upload_mb must be > 0, got {self.max_upload_mb}")
        if self.llm and ":" not in self.llm:
            raise ValueError(
                f"llm must be 'provider:model' (e.g. 'ollama:llama3.1'), got {self.llm!r}"
            )
        if self.llm_timeout <= 0:
            raise ValueError(f"llm_timeout must be > 0, got {self.llm_timeout}")
        if self.max_file_mb <= 0:
            raise ValueError(f"max_file_mb must be > 0, got {self.max_file_mb}")
        self._check_store()

    def _check_store(self) -> None:
        if self.store not in ("faiss", "qdrant"):
            raise ValueError(f"store must be 'faiss' or 'qdrant', got {self.store!r}")
        where = bool(self.qdrant_url) + (self.qdrant_path is not None)
        if self.store == "qdrant" and where != 1:
            raise ValueError(
                "the qdrant store needs exactly one of --qdrant-url URL (RAG_QDRANT_URL) or "
                f"--qdrant-path DIR (RAG_QDRANT_PATH), got url={self.qdrant_url!r}, "
                f"path={self.qdrant_path}"
            )
        if self.store == "faiss" and where:
            raise ValueError("a Qdrant url or path is set but the store is 'faiss': use "
                             "--store qdrant (RAG_STORE=qdrant)")  # fmt: skip
        if self.qdrant_shards < 1 or self.qdrant_replicas < 1:
            raise ValueError(f"qdrant_shards and qdrant_replicas must be > 0, got "
                             f"{self.qdrant_shards}, {self.qdrant_replicas}")  # fmt: skip
        if self.qdrant_quantization not in ("none", "int8"):
            raise ValueError(
                f"qdrant_quantization must be 'none' or 'int8', got {self.qdrant_quantization!r}"
            )

    @property
    def reader_name(self) -> str:
        """The reader to load ("none" for none)."""
        name = self.reader.strip()
        return "none" if name.lower() in ("", "none", "off") else name

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        """Defaults, then ``RAG_CORPUS_DIR``/``RAG_INDEX_DIR``/``RAG_MODEL``/..., then overrides."""
        env: dict[str, Any] = {}
        mapping: dict[str, tuple[str, Callable[[str], Any]]] = {
            "RAG_CORPUS_DIR": ("corpus_dir", Path),
            "RAG_INDEX_DIR": ("index_dir", Path),
            "RAG_MODEL": ("model", str),
            "RAG_ENCODER": ("encoder", str),
            "RAG_CHUNK_TOKENS": ("chunk_tokens", int),
            "RAG_CHUNK_OVERLAP_TOKENS": ("chunk_overlap_tokens", int),
            "RAG_BATCH_SIZE": ("batch_size", int),
            "RAG_TOP_K": ("top_k", int),
            "RAG_RETRIEVAL": ("retrieval", str),
            "RAG_LANG_SPREAD": ("lang_spread", float),
            "RAG_CENTERING": ("centering", float),
            "RAG_QUERY_TRANSLATION": ("query_translation", flag),
            "RAG_BM25_CROSS": ("bm25_cross", float),
            "RAG_TITLE_CONTEXT": ("title_context", flag),
            "RAG_MAX_FILE_MB": ("max_file_mb", float),
            "RAG_MAX_UPLOAD_MB": ("max_upload_mb", float),
            "RAG_LLM": ("llm", str),
            "RAG_READER": ("reader", str),
            "RAG_READER_BACKEND": ("reader_backend", str),
            "RAG_LLM_BASE_URL": ("llm_base_url", str),
            "RAG_LLM_API_KEY": ("llm_api_key", str),
            "RAG_LLM_TIMEOUT": ("llm_timeout", float),
            "RAG_STORE": ("store", str),
            "RAG_QDRANT_URL": ("qdrant_url", str),
            "RAG_QDRANT_PATH": ("qdrant_path", Path),
            "RAG_QDRANT_COLLECTION": ("qdrant_collection", str),
            "RAG_QDRANT_SHARDS": ("qdrant_shards", int),
            "RAG_QDRANT_REPLICAS": ("qdrant_replicas", int),
            "RAG_QDRANT_ON_DISK": ("qdrant_on_disk", flag),
            "RAG_QDRANT_QUANTIZATION": ("qdrant_quantization", str),
        }
        for var, (name, conv) in mapping.items():
            raw = os.environ.get(var)
            if raw:
                try:
                    env[name] = conv(raw)
                except ValueError as exc:
                    raise ValueError(f"{var}={raw!r} is not a valid {conv.__name__}") from exc
        env.update({k: v for k, v in overrides.items() if v is not None})
        if "store" not in env and (env.get("qdrant_url") or env.get("qdrant_path")):
            env["store"] = "qdrant"  # a Qdrant location alone selects the Qdrant store
        for key in ("corpus_dir", "index_dir", "cache_dir", "qdrant_path"):
            if key in env:
                env[key] = Path(env[key]).expanduser()
        return cls(**env)

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)
