from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adk import (
    AgentEvent,
    AgentInput,
    BaseAgent,
    ChatModelAgent,
    CheckpointCorrupted,
    LoopAgent,
    ModelRequest,
    RunContext,
    Runner,
    ScriptedModel,
    SQLiteStore,
    ToolCall,
    ToolContext,
    tool,
)
from adk.runner.checkpoint import namespace

pytestmark = pytest.mark.anyio


async def test_many_interrupts_store_the_conversation_once(tmp_path: Path) -> None:
    """30 successive interrupts in one run: stored bytes stay near the payload, not 30 copies."""

    @tool
    def confirm(ctx: ToolContext) -> str:
        """Ask the user to confirm the next paragraph."""
        return str(ctx.interrupt("ok?"))

    paragraphs = [f"{i:03d} " + "lorem ipsum dolor sit amet " * 18 for i in range(30)]

    def script(request: ModelRequest) -> Any:
        written = sum(1 for m in request.messages if m.role == "assistant" and m.content)
        if request.messages[-1].role == "tool":
            return paragraphs[written]
        return ToolCall.of("confirm")

    writer = ChatModelAgent("writer", model=ScriptedModel(script), tools=[confirm])
    store = SQLiteStore(tmp_path / "c.db")
    runner = Runner(LoopAgent("story", [writer], max_iterations=30), checkpoint_store=store)
    result = await runner.invoke("write", run_id="story")
    for _ in range(30):
        assert result.checkpoint_id is not None
        result = await runner.resume_invoke(result.checkpoint_id, {result.interrupts[0].id: "ok"})
    assert result.checkpoint_id is None
    payload = sum(len(p) for p in paragraphs)
    stored = sum(len(data) for _, data in await store.scan(namespace("story")))
    assert stored <= 2 * payload, (stored, payload)
    print(f"stored {stored} bytes for a payload of {payload}")


async def test_corrupted_store_records_give_clear_errors(tmp_path: Path) -> None:
    class Asker(BaseAgent):
        async def run(self, input: AgentInput, ctx: RunContext) -> AsyncIterator[AgentEvent]:
            yield self.interrupt_event(ctx, "?")

    store = SQLiteStore(tmp_path / "c.db")
    runner = Runner(Asker("asker"), checkpoint_store=store)
    paused = await runner.invoke("go", run_id="r1")
    data = await store.get(namespace("r1"), "meta")
    assert data is not None
    await store.put(namespace("r1"), "meta", data[:-3])
    with pytest.raises(CheckpointCorrupted, match="metadata of run 'r1' is corrupted or truncated"):
        await runner.resume_invoke(paused.checkpoint_id or "")
