"""Signal records beside a run's own records: a run still loads, resumes and is deleted whole."""

from __future__ import annotations

import pytest

from adk import ChatModelAgent, ModelRequest, Runner, ScriptedModel, ToolCall, tool
from adk.state.signals import read_signals, send_signal
from adk.state.stores.base import CheckpointStore
from tests.runner.stores import (
    anyio_backend_fixture,  # noqa: F401 - pytest fixture
    kind_and_backend_fixture,  # noqa: F401 - pytest fixture
    store_fixture,  # noqa: F401 - pytest fixture
)

pytestmark = pytest.mark.anyio


@tool(requires_approval=True)
def refund(order: str) -> str:
    """Refund an order."""
    return f"refunded {order}"


def _script(request: ModelRequest) -> object:
    last = request.messages[-1]
    return "Refunded." if last.role == "tool" else ToolCall.of("refund", order="A1")


async def test_a_run_with_signals_in_its_namespace_resumes_and_is_deleted_whole(
    store: CheckpointStore,
) -> None:
    agent = ChatModelAgent("clerk", model=ScriptedModel(_script), tools=[refund])
    runner = Runner(agent, checkpoint_store=store)
    paused = await runner.invoke("refund A1", run_id="order-A1")
    assert paused.checkpoint_id is not None and paused.interrupts
    await send_signal(store, "order-A1", "feedback", {"text": "be brief"})
    await send_signal(store, "order-A1", "approve", {"interrupt_id": paused.interrupts[0].id})
    assert [c.id for c in await runner.checkpoints("order-A1")] == [paused.checkpoint_id]
    done = await runner.resume_invoke(paused.checkpoint_id, {paused.interrupts[0].id: "approve"})
    assert done.text == "Refunded."
    assert [s.kind for s in await read_signals(store, "order-A1")] == ["feedback", "approve"]
    await runner.delete_run("order-A1")
    assert await read_signals(store, "order-A1") == []
