"""Each kind of limit stops the run before the call that would pass it."""

from __future__ import annotations

import pytest

from adk import (
    ChatModelAgent,
    Cost,
    Runner,
    ScriptedModel,
    UsageLimitExceeded,
    UsageLimits,
)
from adk.state.budgets import estimate_tokens
from tests.budgets.helpers import looping_agent

pytestmark = pytest.mark.anyio


async def _stopped(runner: Runner, **kwargs: object) -> UsageLimitExceeded:
    with pytest.raises(UsageLimitExceeded) as caught:
        await runner.invoke("go", **kwargs)  # type: ignore[arg-type]
    return caught.value


async def test_model_call_limit_is_checked_before_the_call() -> None:
    agent, model = looping_agent(rounds=3)
    exc = await _stopped(Runner(agent, usage_limits=UsageLimits(max_model_calls=2)))
    assert model.calls == 2  # the third call was never made
    assert (exc.limit, exc.maximum, exc.amount, exc.agent) == ("max_model_calls", 2, 3, "")
    assert exc.run_id and exc.run_id in str(exc)
    assert "max_model_calls=2" in str(exc)


async def test_no_limit_hit_finishes_and_counts() -> None:
    agent, model = looping_agent(rounds=2)
    result = await Runner(agent, usage_limits=UsageLimits(max_model_calls=3)).invoke("go")
    assert result.text == "worker done" and model.calls == 3


async def test_input_token_limit_uses_the_request_estimate() -> None:
    agent, model = looping_agent(rounds=2)
    first = await Runner(looping_agent(rounds=2)[0]).invoke("go")
    per_call = [
        e.message.usage.prompt_tokens for e in first.events if e.message and e.message.usage
    ]
    # Enough for the first two calls, not for the third: stopped before it, on its estimate.
    limit = per_call[0] + per_call[1] + per_call[2] - 1
    exc = await _stopped(Runner(agent, usage_limits=UsageLimits(max_input_tokens=limit)))
    assert model.calls == 2
    assert exc.limit == "max_input_tokens"
    assert exc.amount == sum(per_call)  # the estimate equals the scripted usage exactly


async def test_estimate_matches_the_scripted_models_prompt_tokens() -> None:
    agent, model = looping_agent(rounds=1)
    await Runner(agent).invoke("go")
    request = model.requests[-1]
    reply = await ScriptedModel(["x"]).generate(request)
    assert reply.usage is not None
    assert estimate_tokens(request.messages, request.tools) == reply.usage.prompt_tokens


async def test_output_token_limit() -> None:
    agent, model = looping_agent(rounds=3)
    exc = await _stopped(Runner(agent, usage_limits=UsageLimits(max_output_tokens=1)))
    assert exc.limit == "max_output_tokens" and model.calls >= 1
    assert model.calls < 4


async def test_total_token_limit() -> None:
    agent, model = looping_agent(rounds=3)
    exc = await _stopped(Runner(agent, usage_limits=UsageLimits(max_total_tokens=60)))
    assert exc.limit == "max_total_tokens" and exc.amount > 60
    assert model.calls < 4


async def test_cost_limit_with_a_price() -> None:
    agent, model = looping_agent(rounds=3)
    price = Cost(prompt=0.001, completion=0.002)
    limits = UsageLimits(max_cost=0.05, price=price)
    exc = await _stopped(Runner(agent, usage_limits=limits))
    assert exc.limit == "max_cost" and exc.amount > 0.05
    assert 1 <= model.calls < 4


async def test_scripted_calls_cost_nothing_without_a_price() -> None:
    agent, model = looping_agent(rounds=3)
    result = await Runner(agent, usage_limits=UsageLimits(max_cost=0.0)).invoke("go")
    assert result.text == "worker done" and model.calls == 4


async def test_tool_call_limit() -> None:
    agent, model = looping_agent(rounds=3)
    exc = await _stopped(Runner(agent, usage_limits=UsageLimits(max_tool_calls=2)))
    assert (exc.limit, exc.maximum, exc.amount) == ("max_tool_calls", 2, 3)
    assert model.calls == 3  # the third call asked for the third tool call, which was refused


async def test_wall_time_limit() -> None:
    agent, model = looping_agent(rounds=1)
    exc = await _stopped(Runner(agent, usage_limits=UsageLimits(max_seconds=0)))
    assert exc.limit == "max_seconds" and model.calls == 0
    agent, model = looping_agent(rounds=1)
    result = await Runner(agent, usage_limits=UsageLimits(max_seconds=3600)).invoke("go")
    assert model.calls == 2 and result.text == "worker done"


async def test_per_agent_limit_counts_that_agents_own_calls() -> None:
    worker, worker_model = looping_agent("worker", rounds=3)
    from adk import AgentTool, ToolCall

    boss_model = ScriptedModel(
        [ToolCall(id="b1", name="worker", arguments='{"request": "dig"}'), "boss done"]
    )
    boss = ChatModelAgent("boss", model=boss_model, tools=[AgentTool(worker)])
    limits = UsageLimits(max_model_calls=10, agents={"worker": UsageLimits(max_model_calls=2)})
    exc = await _stopped(Runner(boss, usage_limits=limits))
    assert (exc.limit, exc.agent, exc.maximum) == ("max_model_calls", "worker", 2)
    assert worker_model.calls == 2 and boss_model.calls == 1
    assert "agent 'worker'" in str(exc)
    # A limit on the boss alone does not count the worker's calls.
    worker, worker_model = looping_agent("worker", rounds=3)
    boss_model = ScriptedModel(
        [ToolCall(id="b1", name="worker", arguments='{"request": "dig"}'), "boss done"]
    )
    boss = ChatModelAgent("boss", model=boss_model, tools=[AgentTool(worker)])
    limits = UsageLimits(agents={"boss": UsageLimits(max_model_calls=2)})
    result = await Runner(boss, usage_limits=limits).invoke("go")
    assert result.text == "boss done" and worker_model.calls == 4


async def test_per_call_limits_replace_the_runners() -> None:
    agent, model = looping_agent(rounds=3)
    runner = Runner(agent, usage_limits=UsageLimits(max_model_calls=1))
    result = await runner.invoke("go", usage_limits=UsageLimits(max_model_calls=10))
    assert result.text == "worker done" and model.calls == 4
