"""Run status and signals on every store (memory, SQLite, Redis, PostgreSQL), by run id."""

from __future__ import annotations

import anyio
import pytest

from adk import ChatModelAgent, ModelError, RunControlError, Runner, ScriptedModel
from adk.state.stores.base import CheckpointStore

from ..runner.stores import (  # noqa: F401  (fixtures)
    anyio_backend_fixture,
    kind_and_backend_fixture,
    store_fixture,
)
from .helpers import Gate, call, gated_agent, user_texts

pytestmark = pytest.mark.anyio


async def test_status_of_each_outcome_and_listing(store: CheckpointStore) -> None:
    ok = Runner(ChatModelAgent("ok", model=ScriptedModel(["a", "b"])), checkpoint_store=store)
    bad = Runner(
        ChatModelAgent("bad", model=ScriptedModel([ModelError("x")])), checkpoint_store=store
    )
    async with ok.start("1", run_id="r-ok-1") as handle:
        await handle.result()
    async with ok.start("2", run_id="r-ok-2") as handle:
        await handle.result()
    async with bad.start("3", run_id="r-bad") as handle:
        await handle.result()
    assert (await ok.run_status("r-ok-1")).status == "completed"
    failed = await ok.run_status("r-bad")
    assert failed.status == "failed" and failed.error == "ModelError" and failed.agent == "bad"
    assert [i.run_id for i in await ok.list_runs(status="completed")] == ["r-ok-2", "r-ok-1"]
    assert [i.run_id for i in await ok.list_runs(status=["failed"])] == ["r-bad"]
    assert [i.run_id for i in await ok.list_runs(agent="ok", limit=1)] == ["r-ok-2"]
    assert len(await ok.list_runs()) == 3


async def test_signals_by_run_id_pause_feedback_resume(store: CheckpointStore) -> None:
    gate = Gate()
    agent, model, ran = gated_agent(gate, [call("a"), "done"])
    runner = Runner(agent, checkpoint_store=store)
    other = Runner(agent, checkpoint_store=store)  # as another process would: by run id only
    async with runner.start("go") as handle:
        await gate.entered.wait()
        await other.signal(handle.run_id, "pause")
        sent = await other.signal(handle.run_id, "feedback", text="shorter please")
        with anyio.fail_after(10):
            await handle.wait_applied(sent.seq)
        gate.release.set()
        paused = await handle.result()
        assert paused.checkpoint_id is not None
        info = await other.run_status(handle.run_id)
        assert info.status == "paused" and info.checkpoint_id == paused.checkpoint_id
        with pytest.raises(RunControlError, match="paused"):
            await other.signal(handle.run_id, "pause")
        sent = await other.signal(handle.run_id, "resume")
        with anyio.fail_after(10):
            await handle.wait_applied(sent.seq)
            result = await handle.result()
    assert result.text == "done" and ran == ["a"] and model.calls == 2
    assert user_texts(model.requests[1]) == ["go", "shorter please"]


async def test_cancel_by_run_id(store: CheckpointStore) -> None:
    entered = anyio.Event()

    async def blocking(request: object) -> str:
        entered.set()
        await anyio.sleep_forever()
        return ""

    runner = Runner(ChatModelAgent("w", model=ScriptedModel(blocking)), checkpoint_store=store)
    async with runner.start("go") as handle:
        await entered.wait()
        await runner.signal(handle.run_id, "cancel")
        result = await handle.result()
    assert result.events[-1].error is not None
    assert result.events[-1].error.type == "RunCancelled"
    assert (await runner.run_status(handle.run_id)).status == "cancelled"


async def test_bad_signals_are_clear_errors(store: CheckpointStore) -> None:
    runner = Runner(ChatModelAgent("w", model=ScriptedModel(["x"])), checkpoint_store=store)
    with pytest.raises(RunControlError, match="no such run") as caught:
        await runner.signal("nope", "cancel")
    assert caught.value.run_id == "nope" and caught.value.status is None
    async with runner.start("go", run_id="done-run") as handle:
        await handle.result()
    with pytest.raises(RunControlError, match="unknown signal") as caught:
        await runner.signal("done-run", "explode")
    with pytest.raises(RunControlError, match="completed") as caught:
        await runner.signal("done-run", "cancel")
    assert caught.value.status == "completed" and caught.value.signal == "cancel"
    with pytest.raises(RunControlError, match="running"):
        await handle.pause()
    plain = Runner(
        ChatModelAgent("w", model=ScriptedModel(["x", ModelError("down")])),
        checkpoint_store=store,
        track_runs=True,
    )
    await plain.invoke("go", run_id="done")
    assert (await plain.run_status("done")).status == "completed"
    with pytest.raises(ModelError):
        await plain.invoke("go", run_id="tracked")
    assert (await plain.run_status("tracked")).status == "failed"
    with pytest.raises(RunControlError, match=r"not started with Runner\.start"):
        await plain.signal("tracked", "retry")


async def test_status_of_an_untracked_run_comes_from_its_records(store: CheckpointStore) -> None:
    from adk import ConfigurationError, ToolCall, tool

    @tool(requires_approval=True)
    def delete(path: str) -> str:
        """Delete a file."""
        return "deleted"

    model = ScriptedModel([ToolCall(id="d1", name="delete", arguments='{"path": "x"}')])
    runner = Runner(ChatModelAgent("ops", model=model, tools=[delete]), checkpoint_store=store)
    result = await runner.invoke("delete x", run_id="untracked")
    info = await runner.run_status("untracked")
    assert info.status == "interrupted" and info.checkpoint_id == result.checkpoint_id
    assert info.agent == "ops" and not info.controlled
    assert [i.run_id for i in await runner.list_runs(status="interrupted")] == ["untracked"]
    with pytest.raises(ConfigurationError, match="unknown status 'done'"):
        await runner.list_runs(status="done")
    with pytest.raises(RunControlError, match=r"not started with Runner\.start"):
        await runner.signal("untracked", "approve", interrupt_id=result.interrupts[0].id)
