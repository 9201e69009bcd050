"""Costs from a serving backend's Cost table, over a loopback OpenAI-compatible server."""

from __future__ import annotations

import pickle
from collections.abc import Iterator

import pytest

from adk import (
    Backend,
    ChatModelAgent,
    Cost,
    Runner,
    ServingLayer,
    UsageLimitExceeded,
    UsageLimits,
    tool,
)
from tests.support.openai_server import OpenAIServer, Reply, ScriptedCall, start_server

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ["asyncio"])]

PRICE = Cost(prompt=0.001, completion=0.002)


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with start_server() as running:
        yield running


@tool
def lookup(topic: str) -> str:
    """Look a topic up."""
    return f"facts about {topic}"


def _call(i: int) -> Reply:
    return Reply(
        tool_calls=(ScriptedCall("lookup", f'{{"topic": "t{i}"}}', id=f"c{i}"),),
        prompt_tokens=100,
        completion_tokens=10,
    )


def _runner(server: OpenAIServer, limits: UsageLimits, streaming: bool = False) -> Runner:
    layer = ServingLayer(
        [Backend("priced", model="test-model", kind="openai", endpoint=server.base_url, cost=PRICE)]
    )
    agent = ChatModelAgent("researcher", model="priced", tools=[lookup])
    return Runner(agent, serving=layer, usage_limits=limits, streaming=streaming)


@pytest.mark.parametrize("streaming", [False, True])
async def test_backend_cost_table_prices_the_calls(server: OpenAIServer, streaming: bool) -> None:
    server.enqueue(_call(0), _call(1), _call(2), Reply.text("done"))
    # Each call costs 100 * 0.001 + 10 * 0.002 = 0.12; a third one does not fit in 0.25
    # (0.24 spent plus its estimated prompt at 0.001 a token).
    runner = _runner(server, UsageLimits(max_cost=0.25), streaming)
    with pytest.raises(UsageLimitExceeded) as caught:
        await runner.invoke("go")
    assert len(server.requests) == 2
    assert caught.value.limit == "max_cost"
    assert caught.value.amount > 0.24  # spent, plus the third request's estimated prompt
    result = await runner.resume_invoke(caught.value.run_id, usage_limits=UsageLimits(max_cost=1))
    assert len(server.requests) == 4 and result.usage.prompt_tokens > 300


async def test_the_error_survives_pickling() -> None:
    exc = UsageLimitExceeded("max_cost", 0.3, 0.36, agent="a", run_id="r")
    copy = pickle.loads(pickle.dumps(exc))
    assert (copy.limit, copy.maximum, copy.amount, copy.agent, copy.run_id) == (
        "max_cost",
        0.3,
        0.36,
        "a",
        "r",
    )
    assert str(copy) == str(exc)
