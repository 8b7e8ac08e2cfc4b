"""bench/ result files: a second run on the same day must not overwrite the first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def test_a_later_run_the_same_day_keeps_the_earlier_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bench import common

    monkeypatch.setattr(common, "RESULTS", tmp_path)
    first = common.save("speed", {"run": 1}, "| run | 1 |")
    second = common.save("speed", {"run": 2}, "| run | 2 |")
    third = common.save("speed", {"run": 3}, "| run | 3 |")
    assert len({first, second, third}) == 3
    assert second.name == first.name.replace(".json", "b.json")
    assert third.name == first.name.replace(".json", "c.json")
    assert json.loads(first.read_text()) == {"run": 1}
    assert first.with_suffix(".md").read_text() == "| run | 1 |\n"
    assert json.loads(third.read_text()) == {"run": 3}


def test_abstention_curve_of_the_ceiling_bench_by_hand() -> None:
    """(answerable, best evidence score, number check fails) → rates per threshold."""
    from bench.ceiling import abstention_curve

    scores = [(True, 0.6, False), (True, 0.5, True), (False, 0.55, False), (False, 0.3, False)]
    curve = {round(c["threshold"], 2): c for c in abstention_curve(scores)}
    # Threshold 0: everything above it answers, except the failed number check.
    assert curve[0.0] == {"threshold": 0.0, "answered": 0.5, "abstained_unanswerable": 0.0}
    # Just above 0.3: the off-topic question abstains.
    assert curve[0.3]["abstained_unanswerable"] == 0.5 and curve[0.3]["answered"] == 0.5
    # Just above 0.55: both unanswerable ones abstain, the 0.6 answer still stands.
    assert curve[0.55] == {
        "threshold": 0.55, "answered": 0.5, "abstained_unanswerable": 1.0,
    }  # fmt: skip
    # Just above 0.6: nothing is answered any more.
    assert curve[0.6]["answered"] == 0.0


def test_the_dutch_ai_act_splits_into_articles_up_to_the_next_heading(tmp_path: Path) -> None:
    from bench.ai_act_parallel import dutch_articles

    (tmp_path / "act.nl.md").write_text(
        "# Verordening\n\n(1) Overweging.\n\n#### Artikel 1\n\n**Onderwerp**\n\n1. Doel.\n\n"
        "## HOOFDSTUK II\n\n#### Artikel 2\n\n**Slot**\n\nIn werking.\n\n"
        "Gedaan te Brussel, 13 juni 2024.\n\n(1) PB C 517.\n",
        encoding="utf-8",
    )
    docs = dutch_articles(tmp_path)
    assert [(d.doc_id, d.title) for d in docs] == [
        ("nl/1", "Artikel 1: Onderwerp"),
        ("nl/2", "Artikel 2: Slot"),
    ]
    assert docs[0].text == "**Onderwerp**\n\n1. Doel."  # the chapter heading ends article 1
    assert docs[1].text.endswith("In werking.")  # signatures and footnotes are left out


def test_a_bench_without_the_bench_extra_names_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """#21: `python -m bench` printed a bare ModuleNotFoundError without the bench extra; now it
    says which extra to install before it starts."""
    import importlib.util

    import bench.__main__ as bench_main

    real = importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        return None if name == "langchain_huggingface" else real(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    monkeypatch.setattr(bench_main, "machine", lambda: pytest.fail("the bench started"))
    with pytest.raises(SystemExit) as exc:
        bench_main.main(["speed", "--no-save"])
    msg = str(exc.value)
    assert "needs the bench extra" in msg and "langchain_huggingface" in msg
    assert "pip install torch==2.13.0 -e '.[bench]'" in msg


def test_the_reader_gate_compares_each_back_end_with_pytorch_on_the_same_inputs() -> None:
    """bench reader's dev-set gate by hand: the largest probability difference, whether the same
    sentences pass the threshold and whether the same one comes first."""
    import numpy as np

    from bench.reader import dev_gate

    class Fixed:
        threshold = 0.5

        def __init__(self, table: dict[str, list[float]]) -> None:
            self.table = table

        def probabilities(self, question: str, sentences: object) -> np.ndarray:
            return np.asarray(self.table[question], dtype=np.float32)

    torch = Fixed({"q1": [0.9, 0.1, 0.2], "q2": [0.4, 0.6]})
    close = Fixed({"q1": [0.88, 0.12, 0.2], "q2": [0.4, 0.6]})
    flips = Fixed({"q1": [0.3, 0.45, 0.2], "q2": [0.4, 0.6]})  # q1: nothing passes, 2nd first
    inputs = [("q1", ("a", "b", "c")), ("q2", ("d", "e"))]
    out = dev_gate({"torch": torch, "close": close, "flips": flips}, inputs)  # type: ignore[dict-item]
    assert out["torch"]["max_abs_dp"] == 0.0 and out["torch"]["same_decisions"] == 1.0
    assert abs(out["close"]["max_abs_dp"] - 0.02) < 1e-6
    assert out["close"]["same_decisions"] == 1.0 and out["close"]["same_first"] == 1.0
    assert abs(out["flips"]["max_abs_dp"] - 0.6) < 1e-6
    assert out["flips"]["same_decisions"] == 0.5 and out["flips"]["same_first"] == 0.5
