"""The search syntax parser and exact matching (pure: no index, no model)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.search.matching import find_spans, fold, fold_with_offsets
from rag.search.query_syntax import MAX_CLAUSES, QuerySyntaxError, merge_filters, parse
from rag.types import Filters


def test_plain_query_is_unchanged() -> None:
    p = parse("  high-risk AI systems  ")
    assert p.plain and len(p.clauses) == 1
    assert p.clauses[0].text == "high-risk AI systems"
    assert not p.clauses[0].lexical and not p.clauses[0].filters.active


def test_phrase_exclusion_and_fields() -> None:
    p = parse('"general-purpose AI" obligations -ChatGPT -"open source" lang:sv,nl '
              "jurisdiction:eu type:executive_order doc:eu_ai_act date:2023..2024")  # fmt: skip
    (c,) = p.clauses
    assert not p.plain
    assert c.text == "general-purpose AI obligations"
    assert c.phrases == ("general-purpose AI",) and c.words == ("obligations",)
    assert c.excluded == ("ChatGPT", "open source")
    assert c.filters == Filters(langs=("sv", "nl"), jurisdictions=("EU",),
                                types=("executive order",), docs=("eu_ai_act",),
                                date_from="2023", date_to="2024")  # fmt: skip


def test_or_binds_the_terms_next_to_it() -> None:
    p = parse('"AI Act" OR GDPR fines')
    assert [c.text for c in p.clauses] == ["AI Act fines", "GDPR fines"]
    assert p.clauses[0].phrases == ("AI Act",) and p.clauses[1].phrases == ()
    p = parse("a OR b OR c")
    assert [c.text for c in p.clauses] == ["a", "b", "c"]
    p = parse("lang:sv OR lang:nl lag")
    assert [c.filters.langs for c in p.clauses] == [("sv",), ("nl",)]
    assert parse("kina or sverige").plain  # lower-case "or" is a word


@pytest.mark.parametrize("query, words", [
    ('"unclosed phrase', "unclosed quote"),
    ("rules OR", "OR needs a term"),
    ("OR rules", "OR needs a term"),
    ("a OR OR b", "OR needs a term"),
    ("country:CN rules", "unknown field country:"),
    ("lang: rules", "lang: needs a value"),
    ("date:2023-13 rules", "'2023-13' is not a date"),
    ("date:23 rules", "is not a date"),
    ("date:2024..2023 rules", "ends before it starts"),
    ("date:.. rules", "at least one end"),
    ("date:2023 date:2024 rules", "two date: filters"),
    ("lang:swedish rules", "language code"),
    ("lang:sv -ChatGPT", "nothing to search for"),
    ('""', "empty phrase"),
    ("-lang:sv rules", "cannot be excluded"),
    (" ".join(["a OR b"] * 5), f"at most {MAX_CLAUSES}"),
])  # fmt: skip
def test_bad_syntax_says_what_is_wrong(query: str, words: str) -> None:
    with pytest.raises(QuerySyntaxError, match=words.replace("(", r"\(")):
        parse(query)


def test_empty_query() -> None:
    with pytest.raises(ValueError, match="empty"):
        parse("   ")


def test_urls_times_and_inner_hyphens_are_words() -> None:
    assert parse("see https://example.org/x at 10:30 AI-Act").plain


def test_single_dates_and_open_ranges() -> None:
    assert parse("x date:2023").clauses[0].filters.date_from == "2023"
    assert parse("x date:2023").clauses[0].filters.date_to == "2023"
    f = parse("x date:2023-05..").clauses[0].filters
    assert (f.date_from, f.date_to) == ("2023-05", "")
    f = parse("x date:..2024-02-29").clauses[0].filters
    assert (f.date_from, f.date_to) == ("", "2024-02-29")


def test_merge_narrows_and_reports_conflicts() -> None:
    base = Filters(langs=("en", "sv"), jurisdictions=("US",), date_from="2020", date_to="2024")
    got = merge_filters(base, Filters(langs=("sv",), jurisdictions=("US-CO",),
                                      date_from="2023", date_to="2023"))  # fmt: skip
    assert got.langs == ("sv",) and got.jurisdictions == ("US-CO",)
    assert (got.date_from, got.date_to) == ("2023", "2023")
    assert merge_filters(Filters(docs=("eu_ai_act/article_005",)),
                         Filters(docs=("eu_ai_act",))).docs == ("eu_ai_act/article_005",)  # fmt: skip
    assert merge_filters(Filters(), Filters(types=("law",))).types == ("law",)
    with pytest.raises(QuerySyntaxError, match="exclude each other"):
        merge_filters(Filters(langs=("en",)), Filters(langs=("sv",)))
    with pytest.raises(QuerySyntaxError, match="exclude each other"):
        merge_filters(Filters(jurisdictions=("CN",)), Filters(jurisdictions=("US",)))
    with pytest.raises(QuerySyntaxError, match="leave nothing"):
        merge_filters(Filters(date_to="2020"), Filters(date_from="2023"))


def test_matching_is_exact_case_and_space_insensitive() -> None:
    text = "He said ChatGPT's  AI\nrules apply. 人工\n智能 法规; the ﬁnal text."
    spans = lambda p: [text[a:b] for a, b in find_spans(text, p)]  # noqa: E731
    assert spans("ai RULES") == ["AI\nrules"]
    assert spans("AI") == ["AI"]  # not inside "said"
    assert spans("chatgpt") == ["ChatGPT"]
    assert spans("人工智能") == ["人工\n智能"]  # CJK: substring, spaces between CJK ignored
    assert spans("工智") == ["工\n智"]
    assert spans("final") == ["ﬁnal"]  # NFKC
    assert spans("rule") == []  # whole words only
    assert spans_of("인공지능은 법이다", "인공지능") == ["인공지능"]  # Korean: particles attach


def spans_of(text: str, phrase: str) -> list[str]:
    return [text[a:b] for a, b in find_spans(text, phrase)]


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab AB\n\t-'人工智\u00adﬁé1")), max_size=40))
def test_fold_with_offsets_agrees_with_fold(text: str) -> None:
    folded, where = fold_with_offsets(text)
    assert folded == fold(text)
    assert len(where) == len(folded) and where == sorted(where)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab AB\n-人工")), max_size=40),
       st.text(alphabet=st.sampled_from(list("abAB 人工")), min_size=1, max_size=4))  # fmt: skip
def test_found_spans_fold_to_the_phrase(text: str, phrase: str) -> None:
    for start, end in find_spans(text, phrase):
        assert 0 <= start < end <= len(text)
        assert fold(text[start:end]).strip() == fold(phrase).strip()


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_parse_never_fails_with_anything_but_a_syntax_error(query: str) -> None:
    try:
        p = parse(query)
    except QuerySyntaxError as exc:
        assert str(exc)
        return
    assert p.clauses and all(c.text.strip() for c in p.clauses)


def test_an_acronym_with_a_swedish_ending_is_a_word_not_a_field() -> None:
    """'EU:s AI-lag' (Swedish genitive) failed as "unknown field EU:" in the load test."""
    from rag.search.query_syntax import parse

    parsed = parse("Vad säger EU:s AI-lag om ansiktsigenkänning?")
    assert "EU:s" in parsed.query
