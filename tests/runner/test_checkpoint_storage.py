from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

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
from adk.runner.journal_records import JournalChunk
from adk.runner.records import CheckpointRecord, RunHead, RunMeta
from adk.state.journal import RunJournal

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


async def test_lone_surrogates_in_journaled_results_survive_step_durability(
    tmp_path: Path,
) -> None:
    """Half an emoji in a tool result and a session write: journaled and replayed exactly."""

    @tool
    def split(ctx: ToolContext) -> str:
        """Return half an emoji."""
        ctx.set("half", "x\udc00")
        return "a\ud83d b"

    @tool
    def confirm(ctx: ToolContext) -> str:
        """Ask the user to confirm."""
        return str(ctx.interrupt("ok?"))

    seen: list[str] = []

    def script(request: ModelRequest) -> Any:
        done = [m.name for m in request.messages if m.role == "tool"]
        seen.extend(m.content for m in request.messages if m.name == "split")
        if not done:
            return ToolCall.of("split")
        if done == ["split"]:
            return ToolCall.of("confirm")
        return "done"

    def build() -> Runner:
        agent = ChatModelAgent("a", model=ScriptedModel(script), tools=[split, confirm])
        return Runner(agent, checkpoint_store=SQLiteStore(tmp_path / "c.db"), durability="step")

    paused = await build().invoke("go", run_id="s1")
    assert paused.checkpoint_id == "s1/1"
    values: dict[str, Any] = {}
    done = await build().resume_invoke(
        "s1/1", {paused.interrupts[0].id: "yes"}, session_values=values
    )
    assert done.text == "done"
    assert values == {"half": "x\udc00"}
    assert set(seen) == {"a\ud83d b"}


_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(0, 1), st.text(max_size=3)),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=2), children, max_size=3)
    ),
    max_leaves=12,
)
_FIELDS = ["id", "chunks", "interrupts", "answers", "created", "r", "d", "status", "lease"]
_FIELDS += ["root", "tree", "input", "values", "streaming", "durability", "session_id"]


@settings(max_examples=300, deadline=None)
@given(
    record=st.one_of(
        _VALUES, st.dictionaries(st.sampled_from(_FIELDS), _VALUES | st.binary(max_size=3))
    )
)
def test_any_record_structure_parses_or_raises_checkpoint_corrupted(record: Any) -> None:
    """Whatever a record holds, reading it raises CheckpointCorrupted or nothing."""
    readers = [
        lambda: RunMeta.parse(record, "meta"),
        lambda: RunHead.parse(record, "head"),
        lambda: CheckpointRecord.parse(record, "cp", "r/1").pending(),
        lambda: JournalChunk.parse(record, "j").load_into(RunJournal()),
        lambda: RunJournal().load_chunk([record], {}),
        lambda: RunJournal().load_chunk([["k", "m", record], ["k", "t", record]], {}),
    ]
    for read in readers:
        with contextlib.suppress(CheckpointCorrupted):
            read()
