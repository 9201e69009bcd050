"""Journal snapshots: a long run's journal chunks are merged into segments as it goes.

A run resumed at every one of 80 review rounds keeps at most 31 chunk
records (the rest are in segments), resumes exactly as before, and a
segment left with its chunks (a process that died between the two writes),
damaged or missing is handled: skipped, or reported by name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adk import (
    ChatModelAgent,
    CheckpointCorrupted,
    Message,
    Runner,
    ScriptedModel,
    SQLiteStore,
    ToolCall,
    ToolContext,
    tool,
)
from adk.runner.checkpoint import load_run, namespace
from adk.runner.journal_records import JOURNAL_SEGMENT_CHUNKS

pytestmark = pytest.mark.anyio

ROUNDS = 80


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def build(store: SQLiteStore, calls: list[str]) -> Runner:
    @tool
    def review(ctx: ToolContext) -> str:
        """Ask a person to review the last message."""
        calls.append("review")
        return str(ctx.interrupt("review"))

    def script(request: Any) -> Any:
        calls.append("model")
        written = sum(1 for m in request.messages if m.content.startswith("[message"))
        if written < ROUNDS:
            call = ToolCall(id=f"c{written}", name="review", arguments="{}")
            return Message(role="assistant", content=f"[message {written}]", tool_calls=(call,))
        return "done"

    agent = ChatModelAgent(
        "writer", model=ScriptedModel(script), tools=[review], max_iterations=ROUNDS + 2
    )
    return Runner(agent, checkpoint_store=store)


async def names(store: SQLiteStore, run_id: str) -> list[str]:
    return [name for name, _ in await store.scan(namespace(run_id))]


async def test_a_long_run_keeps_its_journal_in_segments_and_resumes_as_before(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "runs.db")
    calls: list[str] = []
    runner = build(store, calls)
    result = await runner.invoke("write", run_id="long")
    rounds = 0
    most_chunks = 0
    while result.checkpoint_id is not None:
        records = await names(store, "long")
        most_chunks = max(most_chunks, sum(1 for n in records if n.startswith("j:")))
        calls.clear()
        answer = {result.interrupts[0].id: f"ok {rounds}"}
        result = await runner.resume_invoke(result.checkpoint_id, answer)
        rounds += 1
        # Nothing completed runs again: one new review answer read, one new model call.
        assert calls == ["review", "model"] + (["review"] if result.checkpoint_id else [])
    assert rounds == ROUNDS and result.text == "done"
    records = await names(store, "long")
    segments = [n for n in records if n.startswith("js:")]
    assert len(segments) == (ROUNDS + 1) // JOURNAL_SEGMENT_CHUNKS
    assert most_chunks < JOURNAL_SEGMENT_CHUNKS
    # Every answer stored is still known to a load, though most are only in segments now
    # (the last one was read by the run's end, which writes no checkpoint).
    loaded = await load_run(store, "long")
    assert set(loaded.answers.values()) == {f"ok {n}" for n in range(ROUNDS - 1)}


async def paused_after(rounds: int, store: SQLiteStore, calls: list[str]) -> tuple[Runner, Any]:
    runner = build(store, calls)
    result = await runner.invoke("write", run_id="r")
    for n in range(rounds):
        result = await runner.resume_invoke(result.checkpoint_id, {result.interrupts[0].id: n})
    return runner, result


async def test_chunks_a_segment_already_holds_are_skipped_and_deleted_later(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "runs.db")
    calls: list[str] = []
    runner, result = await paused_after(JOURNAL_SEGMENT_CHUNKS, store, calls)
    chunk = (await store.scan(namespace("r"), "js:"))[0]
    assert chunk[0].startswith("js:")
    # A process that died after writing the segment, before deleting its chunks:
    await store.put(namespace("r"), "j:0000000000", b"left behind (never read)")
    calls.clear()
    result = await runner.resume_invoke(result.checkpoint_id, {result.interrupts[0].id: "x"})
    assert calls == ["review", "model", "review"]
    for n in range(JOURNAL_SEGMENT_CHUNKS):
        result = await runner.resume_invoke(result.checkpoint_id, {result.interrupts[0].id: n})
    assert "j:0000000000" not in await names(store, "r")  # deleted with the next segment


async def test_a_damaged_or_missing_segment_is_reported_by_name(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "runs.db")
    runner, result = await paused_after(JOURNAL_SEGMENT_CHUNKS + 2, store, [])
    ((name, data),) = await store.scan(namespace("r"), "js:")
    await store.put(namespace("r"), name, data[:-3])
    with pytest.raises(CheckpointCorrupted, match=f"journal segment {name} of run 'r'"):
        await runner.resume_invoke(result.checkpoint_id, {result.interrupts[0].id: "x"})
    await store.delete(namespace("r"), name)
    with pytest.raises(CheckpointCorrupted, match="chunk 0 is missing"):
        await runner.resume_invoke(result.checkpoint_id, {result.interrupts[0].id: "x"})
