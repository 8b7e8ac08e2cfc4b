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
