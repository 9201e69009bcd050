"""Scoring modes pass and fail as they should; the eval-case runner and its pytest helper."""

from __future__ import annotations

import pytest

from adk import ChatModelAgent, ConfigurationError, Runner, RunResult, ScriptedModel, ToolCall, tool
from adk.evals import (
    EvalCase,
    assert_output,
    assert_score,
    assert_tool_calls,
    pytest_params,
    run_evals,
    score,
)

pytestmark = pytest.mark.anyio


@tool
def search(query: str) -> str:
    """Search."""
    return f"results for {query}"


@tool
def fetch(url: str) -> str:
    """Fetch a page."""
    return "page"


def _calls(*calls: ToolCall) -> list[ToolCall | list[ToolCall] | str]:
    return [*calls, "Paris is the capital."]


def _agent(*calls: ToolCall) -> ChatModelAgent:
    return ChatModelAgent("bot", model=ScriptedModel(_calls(*calls)), tools=[search, fetch])


S1 = ToolCall(id="1", name="search", arguments='{"query": "capital of France"}')
F1 = ToolCall(id="2", name="fetch", arguments='{"url": "https://x"}')
S2 = ToolCall(id="3", name="search", arguments='{"query": "population"}')


async def _run() -> RunResult:
    return await Runner(_agent(S1, F1, S2)).invoke("capital?")


SEARCH = ("search", {"query": "capital of France"})
FETCH = {"name": "fetch", "arguments": {"url": "https://x"}}
SEARCH2 = ToolCall(id="other-id", name="search", arguments='{"query": "population"}')  # id ignored


@pytest.mark.parametrize(
    ("expected", "mode", "arguments", "passes"),
    [
        ([SEARCH, FETCH, SEARCH2], "exact", True, True),
        (["search", "fetch", "search"], "exact", True, True),  # names: arguments not checked
        ([SEARCH, SEARCH2, FETCH], "exact", True, False),  # wrong order
        ([SEARCH, FETCH], "exact", True, False),  # a call missing
        ([("search", {"query": "x"}), FETCH, SEARCH2], "exact", True, False),  # wrong argument
        ([("search", {"query": "x"}), FETCH, SEARCH2], "exact", False, True),  # arguments ignored
        ([SEARCH, SEARCH2], "in_order", True, True),  # fetch may come between
        ([SEARCH2, SEARCH], "in_order", True, False),
        ([FETCH, ("search", {"query": "nope"})], "in_order", True, False),
        ([SEARCH2, FETCH, SEARCH], "any_order", True, True),
        ([SEARCH2, FETCH], "any_order", True, False),  # an unexpected extra call
        ([SEARCH2, FETCH, SEARCH, FETCH], "any_order", True, False),  # a call missing
        (["fetch", "search", "search"], "any_order", False, True),
    ],
)
async def test_tool_call_modes(
    expected: list[object], mode: str, arguments: bool, passes: bool
) -> None:
    result = await _run()
    scored = score(result, tool_calls=expected, mode=mode, arguments=arguments)  # type: ignore[arg-type]
    assert scored.passed is passes, scored.report()
    assert bool(scored) is passes
    assert [call.name for call in scored.tool_calls] == ["search", "fetch", "search"]
    if not passes:
        assert scored.problems and scored.report().startswith("FAIL")
        with pytest.raises(AssertionError):
            assert_tool_calls(result, expected, mode=mode, arguments=arguments)  # type: ignore[arg-type]
    else:
        assert_tool_calls(result, expected, mode=mode, arguments=arguments)  # type: ignore[arg-type]


async def test_failure_message_is_a_readable_diff() -> None:
    result = await _run()
    with pytest.raises(AssertionError) as caught:
        assert_tool_calls(result, [SEARCH, ("fetch", {"url": "https://y"}), SEARCH2])
    text = str(caught.value)
    assert '-fetch({"url": "https://y"})' in text
    assert '+fetch({"url": "https://x"})' in text
    with pytest.raises(AssertionError, match="missing tool calls \\(any order\\): fetch"):
        assert_tool_calls(result, ["search", "search", "fetch", "fetch"], mode="any_order")


async def test_output_equality_and_predicate() -> None:
    result = await _run()
    assert_output(result, "Paris is the capital.")
    assert_output(result, lambda text: "Paris" in text)
    with pytest.raises(AssertionError, match=r"-Rome is the capital\.\n\+Paris is the capital\."):
        assert_output(result, "Rome is the capital.")

    def mentions_rome(text: str) -> bool:
        return "Rome" in text

    with pytest.raises(AssertionError, match="does not satisfy mentions_rome"):
        assert_output(result, mentions_rome)
    assert_score(result, tool_calls=["search", "fetch", "search"], output="Paris is the capital.")
    both = score(result, tool_calls=["fetch"], output="Rome")
    assert len(both.problems) == 2


async def test_bad_arguments_are_named() -> None:
    result = await _run()
    with pytest.raises(ConfigurationError, match="mode must be one of"):
        score(result, tool_calls=[], mode="sorted")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="an expected tool call is"):
        score(result, tool_calls=[42])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="not a str"):
        score(result, tool_calls="search")
    with pytest.raises(TypeError, match="score a RunResult or a Trajectory"):
        score("result", output="x")  # type: ignore[arg-type]


CASES = [
    EvalCase("search-first", "capital?", tool_calls=["search"], output="Paris is the capital."),
    EvalCase("wrong-tool", "capital?", tool_calls=["fetch"]),
    EvalCase("any", "capital?", output=lambda text: text.endswith(".")),
]


async def test_run_evals_summary_table() -> None:
    summary = await run_evals(lambda case: _agent(S1), CASES)
    assert [result.passed for result in summary.results] == [True, False, True]
    table = summary.table()
    assert table.splitlines()[0].split() == ["case", "result", "calls", "problem"]
    assert "wrong-tool    FAIL" in table and table.endswith("2/3 passed")
    with pytest.raises(AssertionError, match="wrong-tool:\n  - tool calls differ"):
        summary.assert_passed()


async def test_a_case_whose_run_fails_is_a_failed_result() -> None:
    def broken(case: EvalCase) -> Runner:
        return Runner(ChatModelAgent("bot", model=ScriptedModel([])))

    summary = await run_evals(broken, [EvalCase("empty-script", "hi", output="x")])
    (result,) = summary.results
    assert not result.passed and result.error is not None
    assert result.error.startswith("ScriptExhaustedError")


@pytest.mark.parametrize("case", pytest_params(CASES[::2]))
async def test_each_case_under_pytest(case: EvalCase) -> None:
    summary = await run_evals(lambda c: Runner(_agent(S1)), [case])
    summary.assert_passed()
