"""A run stopped by a limit resumes with a raised one, on every store, repeating nothing."""

from __future__ import annotations

import pytest

from adk import ParallelAgent, Runner, UsageLimitExceeded, UsageLimits
from adk.state.stores.base import CheckpointStore
from tests.budgets.helpers import looping_agent
from tests.runner.stores import (  # noqa: F401  (fixtures: every test runs on every store)
    anyio_backend_fixture,
    kind_and_backend_fixture,
    store_fixture,
)

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("durability", ["interrupt", "step"])
async def test_resume_with_a_raised_limit_repeats_nothing(
    store: CheckpointStore, durability: str
) -> None:
    agent, model = looping_agent(rounds=3)
    runner = Runner(
        agent,
        checkpoint_store=store,
        durability=durability,  # type: ignore[arg-type]
        usage_limits=UsageLimits(max_model_calls=2),
    )
    with pytest.raises(UsageLimitExceeded) as caught:
        await runner.invoke("go")
    assert model.calls == 2
    run_id = caught.value.run_id

    # The same limit: the run's earlier calls count, so it stops again at once.
    with pytest.raises(UsageLimitExceeded) as again:
        await runner.resume_invoke(run_id)
    assert model.calls == 2 and again.value.amount == 3

    result = await runner.resume_invoke(run_id, usage_limits=UsageLimits(max_model_calls=4))
    assert result.text == "worker done"
    assert model.calls == 4  # two before the stop, two after: none repeated
    fresh_agent, _ = looping_agent(rounds=3)
    whole = await Runner(fresh_agent).invoke("go")
    assert result.usage == whole.usage  # the run's usage, the part before the resume included


async def test_parallel_fan_out_resumes_to_the_end(store: CheckpointStore) -> None:
    branches = [looping_agent(f"researcher_{i}", rounds=1) for i in range(3)]
    for _, model in branches:
        model.latency = 0.01
    fan_out = ParallelAgent("fan_out", [agent for agent, _ in branches])
    runner = Runner(fan_out, checkpoint_store=store, usage_limits=UsageLimits(max_model_calls=4))
    events = [e async for e in runner.query("go")]
    assert events[-1].error is not None and events[-1].error.details is not None
    assert sum(model.calls for _, model in branches) == 4
    run_id = events[-1].error.details["run_id"]
    result = await runner.resume_invoke(run_id, usage_limits=UsageLimits(max_model_calls=6))
    assert sum(model.calls for _, model in branches) == 6  # 2 calls per branch, none twice
    answers = sorted(
        e.text
        for e in result.history
        if e.message and e.message.role == "assistant" and not e.message.tool_calls
    )
    assert answers == [f"researcher_{i} done" for i in range(3)]
