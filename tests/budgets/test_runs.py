"""The account across a run: nested agents, parallel branches, streaming, the error event."""

from __future__ import annotations

from typing import Any

import pytest

from adk import (
    AgentTool,
    ChatModelAgent,
    ConfigurationError,
    ParallelAgent,
    Runner,
    ScriptedModel,
    ToolCall,
    UsageLimitExceeded,
    UsageLimits,
)
from adk.messages import Usage
from adk.state.budgets import estimate_tokens
from tests.budgets.helpers import looping_agent

pytestmark = pytest.mark.anyio


def _boss_with_hidden_worker() -> tuple[ChatModelAgent, ScriptedModel, ScriptedModel]:
    worker, worker_model = looping_agent("worker", rounds=2)
    boss_model = ScriptedModel(
        [ToolCall(id="b1", name="worker", arguments='{"request": "dig"}'), "boss done"]
    )
    # forward_events=False: the worker's replies never reach the run's events.
    boss = ChatModelAgent("boss", model=boss_model, tools=[AgentTool(worker)])
    return boss, boss_model, worker_model


def _prompt_tokens(*models: ScriptedModel) -> int:
    return sum(estimate_tokens(r.messages, r.tools) for m in models for r in m.requests)


async def test_run_result_usage_counts_agent_tools_without_forwarded_events() -> None:
    """Regression: RunResult.usage summed delivered messages only, missing the worker."""
    boss, boss_model, worker_model = _boss_with_hidden_worker()
    result = await Runner(boss).invoke("go")
    assert result.text == "boss done" and worker_model.calls == 3
    delivered = sum(
        (e.message.usage for e in result.events if e.message and e.message.usage), Usage()
    )
    assert result.usage.prompt_tokens == _prompt_tokens(boss_model, worker_model)
    assert result.usage.prompt_tokens > delivered.prompt_tokens
    assert result.usage.completion_tokens > delivered.completion_tokens


async def test_nested_agent_tool_calls_count_toward_the_run_limit() -> None:
    boss, boss_model, worker_model = _boss_with_hidden_worker()
    with pytest.raises(UsageLimitExceeded) as caught:
        await Runner(boss, usage_limits=UsageLimits(max_model_calls=3)).invoke("go")
    assert boss_model.calls == 1 and worker_model.calls == 2
    assert caught.value.limit == "max_model_calls"


async def test_the_limit_error_is_not_reported_to_the_calling_model() -> None:
    """The inner run's stop ends the whole run: the boss never sees it as a tool error."""
    boss, boss_model, _ = _boss_with_hidden_worker()
    events = [
        e async for e in Runner(boss, usage_limits=UsageLimits(max_model_calls=2)).query("go")
    ]
    assert boss_model.calls == 1  # no second boss call reading an "Error: ..." tool result
    assert events[-1].error is not None and events[-1].error.type == "UsageLimitExceeded"


async def test_parallel_branches_share_one_account() -> None:
    branches = [looping_agent(f"researcher_{i}", rounds=2) for i in range(3)]
    for _, model in branches:
        model.latency = 0.01  # the branches' calls overlap: all check before any answers
    fan_out = ParallelAgent("fan_out", [agent for agent, _ in branches])
    events = [
        e async for e in Runner(fan_out, usage_limits=UsageLimits(max_model_calls=4)).query("go")
    ]
    assert sum(model.calls for _, model in branches) == 4
    last = events[-1]
    assert last.error is not None and last.error.type == "UsageLimitExceeded"
    without = ParallelAgent("fan_out", [looping_agent(f"researcher_{i}", 2)[0] for i in range(3)])
    assert len((await Runner(without).invoke("go")).history) > len(events)


async def test_error_event_says_which_limit_and_how_to_resume() -> None:
    agent, _ = looping_agent(rounds=3)
    runner = Runner(agent, usage_limits=UsageLimits(max_model_calls=2))
    events = [e async for e in runner.query("go", run_id="budget-run")]
    error = events[-1].error
    assert error is not None and error.type == "UsageLimitExceeded"
    assert error.details == {
        "limit": "max_model_calls",
        "maximum": 2,
        "amount": 3,
        "agent": "",
        "run_id": "budget-run",
    }
    assert "usage limit max_model_calls=2" in error.message
    assert "runner.resume('budget-run', usage_limits=...)" in error.message
    assert isinstance(error.exception, UsageLimitExceeded)


async def test_streaming_run_stops_at_the_limit() -> None:
    agent, model = looping_agent(rounds=3)
    runner = Runner(agent, streaming=True, usage_limits=UsageLimits(max_model_calls=2))
    events = [e async for e in runner.query("go")]
    assert model.calls == 2
    error = events[-1].error
    assert error is not None and error.type == "UsageLimitExceeded" and error.details
    raised = UsageLimits(max_model_calls=9)
    resumed = [e async for e in runner.resume(error.details["run_id"], usage_limits=raised)]
    assert model.calls == 4 and resumed[-1].text == "worker done"
    assert any(e.partial for e in resumed)  # the answer streamed as deltas


async def test_streaming_usage_counts_every_call() -> None:
    boss, boss_model, worker_model = _boss_with_hidden_worker()
    result = await Runner(boss, streaming=True).invoke("go")
    assert result.usage.prompt_tokens == _prompt_tokens(boss_model, worker_model)


def test_bad_limits_name_the_field() -> None:
    with pytest.raises(TypeError, match="max_model_calls must be an int"):
        UsageLimits(max_model_calls="3")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="max_tool_calls must be an int"):
        UsageLimits(max_tool_calls=True)
    with pytest.raises(ConfigurationError, match="max_cost must be a finite number >= 0"):
        UsageLimits(max_cost=-1)
    with pytest.raises(ConfigurationError, match="max_seconds"):
        UsageLimits(max_seconds=float("nan"))
    with pytest.raises(ConfigurationError, match="max_input_tokens must be >= 0"):
        UsageLimits(max_input_tokens=-5)
    with pytest.raises(TypeError, match=r"price must be an adk\.Cost"):
        UsageLimits(price=0.1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"agents\['w'\] must be a UsageLimits"):
        UsageLimits(agents={"w": 3})  # type: ignore[dict-item]
    with pytest.raises(ConfigurationError, match="must not have agents of its own"):
        UsageLimits(agents={"w": UsageLimits(agents={"x": UsageLimits()})})
    with pytest.raises(TypeError, match=r"Runner usage_limits must be an adk\.UsageLimits"):
        Runner(looping_agent()[0], usage_limits={"max_cost": 1})  # type: ignore[arg-type]


async def test_bad_per_call_limits_name_the_method() -> None:
    runner = Runner(looping_agent()[0])
    bad: Any = 5
    with pytest.raises(TypeError, match="invoke usage_limits"):
        await runner.invoke("go", usage_limits=bad)
    with pytest.raises(TypeError, match="resume_invoke usage_limits"):
        await runner.resume_invoke("some-run", usage_limits=bad)
    with pytest.raises(TypeError, match="run usage_limits"):
        [e async for e in runner.query("go", usage_limits=bad)]


def test_limits_repr_lists_the_set_fields() -> None:
    assert repr(UsageLimits(max_model_calls=3)) == "UsageLimits(max_model_calls=3)"


async def test_agent_tool_with_forwarded_events_is_counted_once() -> None:
    worker, worker_model = looping_agent("worker", rounds=1)
    boss_model = ScriptedModel(
        [ToolCall(id="b1", name="worker", arguments='{"request": "dig"}'), "boss done"]
    )
    boss = ChatModelAgent("boss", model=boss_model, tools=[AgentTool(worker, forward_events=True)])
    result = await Runner(boss).invoke("go")
    assert worker_model.calls == 2  # counted once each, though their events were forwarded
    assert result.usage.prompt_tokens == _prompt_tokens(boss_model, worker_model)


async def test_a_run_handles_result_counts_agent_tools_without_forwarded_events() -> None:
    """Regression: RunHandle.result() built its RunResult without the run's account."""
    boss, boss_model, worker_model = _boss_with_hidden_worker()
    async with Runner(boss).start("go") as handle:
        result = await handle.result()
    assert result.text == "boss done" and worker_model.calls == 3
    assert result.usage.prompt_tokens == _prompt_tokens(boss_model, worker_model)
