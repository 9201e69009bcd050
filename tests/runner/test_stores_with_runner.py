"""Interrupt, resume and single-shot resume through the Runner, on each of the four stores."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from adk import (
    ChatModelAgent,
    CheckpointAlreadyResumed,
    ModelRequest,
    Runner,
    ScriptedModel,
    ToolCall,
    ToolContext,
    tool,
)
from adk.state.stores.base import CheckpointStore
from tests.runner.stores import (  # noqa: F401  (fixtures: every test runs on every store)
    anyio_backend_fixture,
    kind_and_backend_fixture,
    store_fixture,
)

pytestmark = pytest.mark.anyio


def build_agent(calls: list[str]) -> ChatModelAgent:
    @tool
    def refund(order: str, ctx: ToolContext) -> str:
        """Refund an order after a human confirms the amount."""
        calls.append(f"refund:{order}")
        amount = ctx.interrupt({"question": f"refund amount for {order}?"})
        ctx.set("refunded", amount)
        return f"refunded {amount} for {order}"

    def script(request: ModelRequest) -> Any:
        calls.append("model")
        last = request.messages[-1]
        if last.role == "tool":
            return f"Done: {last.content}"
        return ToolCall.of("refund", order="A-17")

    return ChatModelAgent("support", model=ScriptedModel(script), tools=[refund])


async def test_interrupt_and_resume_through_each_store(store: CheckpointStore) -> None:
    calls: list[str] = []
    runner = Runner(build_agent(calls), checkpoint_store=store)
    paused = await runner.invoke("refund my order", session_values={"customer": "ann"})
    assert paused.checkpoint_id is not None
    [pending] = paused.interrupts
    assert pending.info == {"question": "refund amount for A-17?"}
    assert calls == ["model", "refund:A-17"]

    fresh = Runner(build_agent(calls), checkpoint_store=store)  # as if in a new process
    values: dict[str, Any] = {}
    done = await fresh.resume_invoke(
        paused.checkpoint_id, {pending.id: "12 EUR"}, session_values=values
    )
    assert done.text == "Done: refunded 12 EUR for A-17"
    assert values == {"customer": "ann", "refunded": "12 EUR"}
    assert calls == [
        "model",
        "refund:A-17",
        "refund:A-17",
        "model",
    ]  # first model call not repeated
    listed = await fresh.checkpoints(paused.run_id)
    assert [c.resumed for c in listed] == [True]


async def test_concurrent_resumes_through_each_store_let_one_run(store: CheckpointStore) -> None:
    calls: list[str] = []
    paused = await Runner(build_agent(calls), checkpoint_store=store).invoke("refund")
    assert paused.checkpoint_id is not None
    answer = {paused.interrupts[0].id: "5 EUR"}
    outcomes: list[str] = []

    async def attempt() -> None:
        try:
            result = await Runner(build_agent(calls), checkpoint_store=store).resume_invoke(
                paused.checkpoint_id or "", answer
            )
            outcomes.append(result.text)
        except CheckpointAlreadyResumed:
            outcomes.append("refused")

    async with anyio.create_task_group() as group:
        for _ in range(4):
            group.start_soon(attempt)
    assert sorted(outcomes) == ["Done: refunded 5 EUR for A-17", "refused", "refused", "refused"]
