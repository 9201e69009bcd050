"""Smoke test of bench/context.py: the benchmark runs end to end, small, and keeps its contract.

The full benchmark (300 tool results, 3 repeats) takes about two minutes; here
15 results and one repeat, against the same engine-enforced 8,000-token
window. What must hold at any size: the last stdout line is the JSON object
with the documented keys, ours stays within the window and completes, no
management fails at the window, and the engine's counters respect the
arithmetic bound the script prints.
"""

from __future__ import annotations

import json
import sys

import pytest

from bench import context

KEYS = (
    "max_prompt_tokens",
    "window",
    "prefill_ratio_vs_naive",
    "prefill_ratio_floor",
    "cached_fraction",
    "cached_fraction_bound",
    "naive",
    "naive_prefill_tokens",
    "naive_sliding_prefill_tokens",
    "naive_summarise_prefill_tokens",
    "none_items",
    "targets_met",
)


def test_context_bench_runs_small_and_keeps_its_contract(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["context.py", "--iterations", "15", "--repeats", "1"])

    context.main()

    lines = capsys.readouterr().out.strip().splitlines()
    figures = json.loads(lines[-1])
    assert [key for key in KEYS if key not in figures] == []
    assert figures["window"] == context.WINDOW
    assert 0 < figures["max_prompt_tokens"] <= figures["window"]
    assert figures["ours_completed"] is True
    assert figures["ours"]["items"] == 15
    assert figures["none_completed"] is False
    assert figures["none"]["error"] == "ContextWindowExceededError"
    assert figures["none_items"] < 15
    assert figures["naive_sliding_completed"] is True
    assert figures["naive_summarise_completed"] is True
    # The engine's counters cannot beat the arithmetic bounds the script prints.
    assert figures["cached_fraction"] <= figures["cached_fraction_bound"]
    assert figures["prefill_ratio_floor"] <= figures["prefill_ratio_vs_naive"] < 1.0
