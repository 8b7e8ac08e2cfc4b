"""Boilerplate removal and whitespace normalisation."""

from __future__ import annotations

import re

import pytest

from rag.ingest.clean import classify, clean_text, split_paragraphs
from tests.conftest import SHIPPED_CORPUS

SEEDS = sorted(SHIPPED_CORPUS.glob("0*.txt"))

# What a reader would not want cited: the seeds' site furniture (newsletter boxes, disclaimers,
# share links, author blurbs, stray fragments).
BOILERPLATE = [
    "Subscribe to CryptoPolitan",
    "Loading Most Read articles",
    "Share link",
    "Disclaimer: The information provided is not trading advice",
    "Stay on top of crypto news",
    "PRENUMERERA IDAG",
    "Registrera dig för vårt veckovisa nyhetsbrev",
    "Genom att prenumerera",
    "Sam är en vetenskaps- och teknikskribent",
    "GRATIS PDF EXKLUSIV",
    "Home OPINIONS",
]
# Real content near that furniture that must survive.
KEPT = [
    "launching an enterprise-facing large language model called ChatRhino",
    "Regleringen av AI kommer säkerligen att behöva samordnas",
    "den kinesiska ambassaden i Storbritannien har sagt",
    "We support discussions within the United Nations framework",
    "met name met 2023-voorzitter India",
]


def _cleaned_seeds() -> str:
    return "\n".join(clean_text(p.read_text(encoding="utf-8")) for p in SEEDS)


@pytest.mark.parametrize("phrase", BOILERPLATE)
def test_seed_boilerplate_is_dropped(phrase: str) -> None:
    assert phrase not in _cleaned_seeds()


@pytest.mark.parametrize("phrase", KEPT)
def test_seed_content_is_kept(phrase: str) -> None:
    assert phrase in _cleaned_seeds()


def test_stray_fragment_at_end_is_dropped() -> None:
    cleaned = clean_text((SHIPPED_CORPUS / "004_2b0df22166c00e27.txt").read_text(encoding="utf-8"))
    assert not cleaned.rstrip().endswith("kra")


def test_mechanism_generalises_to_an_unseen_german_page() -> None:
    page = (
        "Startseite › Politik › Digitales\n\n"
        "Die Bundesregierung will neue Regeln für künstliche Intelligenz schneller umsetzen. "
        "Das Kabinett hat dazu am Mittwoch einen Gesetzentwurf beschlossen.\n\n"
        "Die Aufsicht soll bei der Bundesnetzagentur liegen, wie das Ministerium mitteilte. "
        "Kritiker bemängeln, dass die Behörde dafür zu wenig Personal habe.\n\n"
        "Mehr zum Thema\n\nNewsletter abonnieren\n\nJetzt kostenlos anmelden\n\n"
        "Anna Muster schreibt seit zehn Jahren über Netzpolitik und lebt in Berlin mit zwei Katzen.\n\n"
        "Artikel teilen\n\n© 2024 Beispiel Verlag, alle Rechte vorbehalten"
    )
    cleaned = clean_text(page)
    assert "Bundesnetzagentur" in cleaned and "Kabinett" in cleaned
    for furniture in ("Newsletter", "Mehr zum Thema", "anmelden", "Anna Muster", "teilen", "©"):
        assert furniture not in cleaned, furniture


def test_cleaning_only_drops_and_normalises_whitespace() -> None:
    for seed in SEEDS:
        raw = seed.read_text(encoding="utf-8")
        squashed_raw = re.sub(r"\s+", " ", raw)
        for paragraph in clean_text(raw).split("\n\n"):
            assert paragraph in squashed_raw


@pytest.mark.parametrize(
    ("paragraph", "kind"),
    [
        ("0", "junk"),
        ("×", "junk"),
        ("Subscribe to CryptoPolitan", "cue"),
        ("Prenumerera på vårt nyhetsbrev", "cue"),
        ("China’s shift toward generative AI model licensing", "short"),
        (
            "The rules apply to services offered to the public in China. They take effect in August.",
            "good",
        ),
        ("第一条 为了规范互联网信息服务算法推荐活动，制定本规定。", "good"),
    ],
)
def test_classify(paragraph: str, kind: str) -> None:
    assert classify(paragraph) == kind


def test_long_paragraph_mentioning_a_cue_word_is_prose() -> None:
    prose = (
        "The ministry said companies must share their risk assessments with the regulator and "
        "publish a summary of them, and that the newsletter of the authority would list every "
        "registered model, which critics called a sign that transparency rules are finally being "
        "enforced across the sector after years of voluntary commitments by the industry."
    )
    assert classify(prose) == "good"


def test_split_paragraphs_one_per_line_when_no_blank_lines() -> None:
    assert split_paragraphs("a line.\nanother line.") == ["a line.", "another line."]
    assert split_paragraphs("wrapped\nline\n\nnext") == ["wrapped line", "next"]
