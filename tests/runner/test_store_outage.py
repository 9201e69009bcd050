"""A store that goes away mid-run: the run ends with a typed error event, never an exception.

Against a private redis-server that the test kills (the real server, not a mock).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from adk import AgentEvent, ChatModelAgent, ModelRequest, Runner, ScriptedModel, ToolCall, tool
from adk.state.stores.base import StoreUnavailable
from tests.state.servers import PrivateRedis, private_redis

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # redis-py's asyncio client


def _runner(server: PrivateRedis, durability: str, *, kill_in_tool: bool) -> Runner:
    from adk import RedisStore

    @tool
    def lookup(order: str) -> str:
        """Look an order up."""
        if kill_in_tool:
            server.kill()  # the store dies while the run is in the middle of its work
        return f"{order}: shipped"

    model = ScriptedModel([ToolCall.of("lookup", order="A1"), "It shipped."])
    store = RedisStore(server.url, connect_timeout=1.0, socket_timeout=1.0)
    agent = ChatModelAgent("clerk", model=model, tools=[lookup])
    return Runner(agent, checkpoint_store=store, durability=durability)  # type: ignore[arg-type]


async def _events(runner: Runner, **kw: object) -> list[AgentEvent]:
    return [event async for event in runner.query("where is A1?", **kw)]  # type: ignore[arg-type]


async def test_redis_dying_mid_run_under_step_durability_ends_with_a_store_error_event(
    tmp_path: Path,
) -> None:
    with private_redis(tmp_path) as server:
        events = await _events(_runner(server, "step", kill_in_tool=True))
    error = events[-1].error
    assert error is not None
    assert error.type == "StoreUnavailable"
    assert isinstance(error.exception, StoreUnavailable)
    assert "redis" in error.message
    assert [e for e in events[:-1] if e.error is not None] == []  # exactly one error event


async def test_redis_down_at_a_checkpoint_ends_with_a_store_error_event(tmp_path: Path) -> None:
    @tool(requires_approval=True)
    def refund(order: str) -> str:
        """Refund an order."""
        return "refunded"

    with private_redis(tmp_path) as server:
        from adk import RedisStore

        def script(request: ModelRequest) -> object:
            last = request.messages[-1]
            return "Refunded." if last.role == "tool" else ToolCall.of("refund", order="A1")

        model = ScriptedModel(script)
        store = RedisStore(server.url, connect_timeout=1.0, socket_timeout=1.0)
        runner = Runner(
            ChatModelAgent("clerk", model=model, tools=[refund]), checkpoint_store=store
        )
        server.kill()  # down before the run pauses: the checkpoint cannot be written
        events = await _events(runner)
        assert events[-1].error is not None and events[-1].error.type == "StoreUnavailable"
        with pytest.raises(StoreUnavailable):
            await runner.invoke("refund A1")


async def test_redis_down_before_a_run_with_an_app_chosen_id_ends_with_an_error_event(
    tmp_path: Path,
) -> None:
    with private_redis(tmp_path) as server:
        runner = _runner(server, "interrupt", kill_in_tool=False)
        server.kill()
        events = await _events(runner, run_id="order-A1")
    assert len(events) == 1
    assert events[0].error is not None and events[0].error.type == "StoreUnavailable"
