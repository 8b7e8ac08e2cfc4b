"""Dictionary query translation: the weighted terms, the shipped lexicons, the builder, and BM25
with translated terms finding a passage in another language."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from rag.config import Settings
from rag.index.lexical import LexicalIndex, tokenize
from rag.index.qdrant.collection import query_sparse, term_id
from rag.models.embeddings import HashEmbedder
from rag.search.fusion import Fusion
from rag.search.translate import lexicon, pairs, source_key, source_words, translated_terms
from rag.service import Assistant
from rag.types import Filters
from train.lexicon import _B64, build_pair


def _stem(word: str, lang: str) -> str:
    return tokenize(word, lang)[-1]


def test_a_swedish_query_gets_its_own_terms_and_english_translations() -> None:
    terms = translated_terms("Hur stor är försvarets budget?", "sv")
    for own in tokenize("Hur stor är försvarets budget?", "sv"):
        assert terms[own] >= 1.0  # the question's own terms keep their full weight
    assert _stem("defence", "en") in terms or _stem("defense", "en") in terms
    assert 0 < terms[_stem("large", "en")] < 1 or 0 < terms.get(_stem("big", "en"), 0) < 1


def test_stopwords_are_not_translated_and_targets_limit_languages() -> None:
    only_de = translated_terms("the defence", "en", targets=["de"])
    assert _stem("Verteidigung", "de") in only_de
    assert _stem("försvar", "sv") not in only_de
    # "the" is an English stopword: none of its translations (de "der/die/das") is added.
    assert not {"der", "die", "das"} & set(only_de)


def test_a_language_without_a_lexicon_keeps_its_own_terms_only() -> None:
    query = "tekoälyn turvallisuus"  # Finnish: no lexicon
    assert translated_terms(query, "fi") == {t: 1.0 for t in tokenize(query, "fi")}


def test_chinese_queries_are_segmented_into_words_before_the_lookup() -> None:
    words = source_words("人工智能安全的规定 AI")
    assert len(words) > 3 and "".join(words) == "人工智能安全的规定AI"
    terms = translated_terms("银行", "zh")
    assert terms["银行"] == 1.0 and _stem("bank", "en") in terms  # an English term was added


def test_the_induced_pairs_keep_mutual_neighbours_and_very_close_ones_only() -> None:
    from train.lexicon import _pairs

    cos = np.full((12, 12), 0.30)
    cos[0, 0] = 0.70  # mutual best, above the mutual threshold: kept
    cos[1, 1] = 0.60  # mutual best but too far: left out
    cos[2, 3], cos[4, 3] = 0.73, 0.75  # 2's best is 3, but 3's best is 4: kept only at >= 0.72
    assert _pairs(cos) == [(0, 0), (2, 3), (4, 3)]


def test_every_shipped_lexicon_loads_and_is_shaped_as_the_bm25_tokenizer_makes_it() -> None:
    shipped = pairs()
    assert {("sv", "en"), ("en", "sv"), ("nl", "en"), ("en", "nl"), ("de", "en")} <= set(shipped)
    for src, tgt in shipped:
        lex = lexicon(src, tgt)
        assert len(lex) > 1000, (src, tgt)
        for key, translations in list(lex.items())[:: max(1, len(lex) // 200)]:
            assert key == key.lower() and " " not in key
            assert 1 <= len(translations) <= 5
            for t in translations:
                assert 1 <= len(t) <= 2 and not any(x.startswith("#") for x in t)
    assert [_stem("defence", "en")] in lexicon("sv", "en")[source_key("försvar", "sv")]


def test_weighted_bm25_terms_scale_the_score() -> None:
    idx = LexicalIndex.build([(0, "defenc budget"), (1, "weather report"), (2, "budget")])
    plain = idx.scores(["defenc", "budget"])
    assert np.allclose(idx.scores({"defenc": 1.0, "budget": 1.0}), plain)
    half = idx.scores({"defenc": 0.5})
    assert np.isclose(half[0], 0.5 * idx.scores(["defenc"])[0]) and half[1] == 0
    sparse = query_sparse({"defenc": 0.5, "budget": 1.0})
    assert dict(zip(sparse.indices, sparse.values, strict=True)) == {
        term_id("defenc"): 0.5,
        term_id("budget"): 1.0,
    }


def _dictd(folder: Path, name: str, entries: dict[str, str]) -> None:
    def b64(n: int) -> str:
        out = ""
        while True:
            out = _B64[n % 64] + out
            n //= 64
            if not n:
                return out

    body, index = b"", ["00databaseinfo\tA\tB"]
    for head, text in entries.items():
        chunk = f"{text}\n".encode()  # an entry starts with its headword line
        index.append(f"{head}\t{b64(len(body))}\t{b64(len(chunk))}")
        body += chunk
    (folder / f"{name}.index").write_text("\n".join(index) + "\n", encoding="utf-8")
    (folder / f"{name}.dict.dz").write_bytes(gzip.compress(body))


def test_the_builder_reads_dictd_and_cleans_the_entries(tmp_path: Path) -> None:
    _dictd(tmp_path, "freedict-swe-eng", {
        "försvar": "försvar /fœʂvɑːr/ <n>\n1. defence <n> [mil.]\n2. defense, protection\n see: {försvara}",
        "hej då": "hej då\ngoodbye",
        "budget": "budget\nbudget (state)\nan explanation that is much too long to be a term",
    })  # fmt: skip
    built = build_pair(tmp_path, "sv", "en")
    assert built[source_key("försvar", "sv")] == [["defenc"], ["defens"], ["protect"]]
    assert built[source_key("budget", "sv")] == [["budget"]]
    assert not any(" " in k for k in built)  # multi-word headwords are left out


def test_translated_terms_find_the_english_passage_for_a_swedish_question(
    make_corpus: Callable[[dict[str, str]], Path], fake_assistant: Callable[..., Assistant]
) -> None:
    corpus = make_corpus({
        "defence.txt": "The defence ministry published its budget for next year.",
        "weather.txt": "Rain and wind are expected over the coast this weekend.",
    })  # fmt: skip
    assistant = fake_assistant(corpus)
    assistant.ingest()
    index = assistant.retriever.index
    query = "Vad säger försvarsministeriet om försvar?"
    vec = assistant.retriever.query_vector(assistant.embedder.encode_queries([query])[0], "sv")
    rows = {r: c.doc_id for r, c in index.chunks(range(index.size)).items()}
    plain = index.candidates(query, "sv", vec, 5, Filters(), hybrid=True)
    translated = index.candidates(
        query, "sv", vec, 5, Filters(), hybrid=True, terms=translated_terms(query, "sv")
    )
    assert not plain.lexical  # no Swedish word occurs in the English passages
    assert [rows[r] for r in translated.lexical] == ["defence"]


def test_the_translation_settings_reach_the_fusion_and_bad_weights_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAG_QUERY_TRANSLATION", "0")
    monkeypatch.setenv("RAG_BM25_CROSS", "0.05")
    s = Settings.from_env(cache_dir=tmp_path)
    fusion = Assistant(s, HashEmbedder(8)).querier.fusion
    assert (fusion.translate, fusion.cross_lang) == (False, 0.05)
    assert Assistant(Settings(cache_dir=tmp_path), HashEmbedder(8)).querier.fusion.translate
    with pytest.raises(ValueError, match=r"bm25_cross must be in 0\.\.1"):
        Settings(bm25_cross=2.0)
    with pytest.raises(ValueError, match="BM25 weights must be >= 0"):
        Fusion(cross_lang=-0.1)
