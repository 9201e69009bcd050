"""Run handles in one process: status of each outcome, pause/resume, feedback, cancel, retry."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from adk import (
    AgentTool,
    ChatModelAgent,
    CheckpointNotFound,
    Message,
    ModelError,
    RunCancelled,
    RunControlError,
    Runner,
    ScriptedModel,
    ToolCall,
    tool,
)
from adk.runner.control import is_pause

from .helpers import Gate, call, gated_agent, user_texts

pytestmark = pytest.mark.anyio


async def test_completed_run_has_status_completed() -> None:
    runner = Runner(ChatModelAgent("worker", model=ScriptedModel(["hi"])))
    async with runner.start("hello") as handle:
        result = await handle.result()
        info = await handle.status()
    assert result.text == "hi"
    assert info.status == "completed" and info.agent == "worker"
    assert info.run_id == handle.run_id and info.started <= info.updated
    assert info.error is None and info.checkpoint_id is None


async def test_failed_run_has_status_failed_with_error_type() -> None:
    runner = Runner(ChatModelAgent("worker", model=ScriptedModel([ModelError("down")])))
    async with runner.start("hello") as handle:
        result = await handle.result()
    info = await runner.run_status(handle.run_id)
    assert result.events[-1].error is not None
    assert info.status == "failed" and info.error == "ModelError"


async def test_events_stream_until_the_run_stops() -> None:
    gate = Gate()
    gate.release.set()
    agent, _, _ = gated_agent(gate, [call("a"), "done"])
    runner = Runner(agent)
    async with runner.start("go") as handle:
        events = [event async for event in handle.events()]
    assert events[-1].message is not None and events[-1].message.content == "done"
    assert (await runner.run_status(handle.run_id)).status == "completed"


async def test_pause_between_calls_then_resume_repeats_nothing() -> None:
    gate = Gate()
    agent, model, ran = gated_agent(gate, [call("a"), call("b", "c2"), "done"])
    runner = Runner(agent)
    async with runner.start("go") as handle:
        await gate.entered.wait()  # the first tool call is in flight
        await handle.pause()
        assert (await handle.status()).status == "running"
        gate.release.set()  # in-flight calls finish, then the run stops before the next call
        paused = await handle.result()
        info = await handle.status()
        assert info.status == "paused" and info.checkpoint_id == paused.checkpoint_id
        assert all(is_pause(i.info) for i in paused.interrupts)
        assert model.calls == 1 and ran == ["a"]
        await handle.resume()
        result = await handle.result()
    assert result.text == "done"
    assert model.calls == 3 and ran == ["a", "b"]  # nothing ran twice
    assert (await runner.run_status(handle.run_id)).status == "completed"


async def test_feedback_is_seen_by_the_next_model_call_in_order() -> None:
    gate = Gate()
    agent, model, _ = gated_agent(gate, [call("a"), "done"])
    runner = Runner(agent)
    async with runner.start("go") as handle:
        await gate.entered.wait()
        async with anyio.create_task_group() as group:  # two signals at once: kept in order
            group.start_soon(handle.feedback, "first")
            await anyio.lowlevel.checkpoint()
            group.start_soon(handle.feedback, "second")
        gate.release.set()
        await handle.result()
    assert user_texts(model.requests[0]) == ["go"]
    assert user_texts(model.requests[1]) == ["go", "first", "second"]


async def test_feedback_is_replayed_identically_after_a_pause() -> None:
    gate = Gate()
    agent, model, ran = gated_agent(gate, [call("a"), call("b", "c2"), "done"])
    runner = Runner(agent)
    async with runner.start("go") as handle:
        await gate.entered.wait()
        await handle.feedback("steer")
        gate.release.set()
        gate.entered = anyio.Event()
        gate.release = anyio.Event()
        await gate.entered.wait()  # second tool call in flight: the feedback was injected
        await handle.pause()
        gate.release.set()
        await handle.result()
        assert (await handle.status()).status == "paused"
        await handle.resume()
        result = await handle.result()
    assert result.text == "done"
    assert model.calls == 3 and ran == ["a", "b"]
    # The resumed run rebuilt the conversation with the journaled feedback, once.
    assert user_texts(model.requests[2]) == ["go", "steer"]


async def test_feedback_while_paused_reaches_the_resumed_run() -> None:
    gate = Gate()
    agent, model, _ = gated_agent(gate, [call("a"), "done"])
    runner = Runner(agent)
    async with runner.start("go") as handle:
        await gate.entered.wait()
        await handle.pause()
        gate.release.set()
        await handle.result()
        await handle.feedback("after pause")
        await handle.resume()
        await handle.result()
    assert user_texts(model.requests[1]) == ["go", "after pause"]


async def test_cancel_mid_model_call() -> None:
    entered = anyio.Event()
    calls = 0
    block = True

    async def blocking(request: object) -> object:
        nonlocal calls
        calls += 1
        if calls == 1:
            return call("a")
        if block:
            entered.set()
            await anyio.sleep_forever()
        return "done"

    ran: list[str] = []

    @tool
    def step(name: str) -> str:
        """Do one step."""
        ran.append(name)
        return f"did {name}"

    agent = ChatModelAgent("worker", model=ScriptedModel(blocking), tools=[step])
    runner = Runner(agent, durability="step")
    async with runner.start("go") as handle:
        await entered.wait()  # the second model call is in flight
        await handle.cancel()
        result = await handle.result()
        with pytest.raises(RunControlError, match="cancelled"):
            await handle.resume()
    last = result.events[-1]
    assert last.error is not None and last.error.type == "RunCancelled"
    assert isinstance(last.error.exception, RunCancelled)
    info = await runner.run_status(handle.run_id)
    assert info.status == "cancelled" and info.error == "RunCancelled"
    # The journal holds the completed calls, nothing of the cancelled one: a resume from it
    # is clean (the first model call and the tool call replay, the cancelled call runs).
    block = False
    resumed = await runner.resume_invoke(handle.run_id)
    assert resumed.text == "done"
    assert calls == 3 and ran == ["a"]


async def test_no_task_outlives_the_handle() -> None:
    entered = anyio.Event()

    async def blocking(request: object) -> str:
        entered.set()
        await anyio.sleep_forever()
        return ""

    runner = Runner(ChatModelAgent("worker", model=ScriptedModel(blocking)))
    if anyio.get_current_task() and _backend() == "asyncio":
        import asyncio

        before = len(asyncio.all_tasks())
    async with runner.start("go") as handle:
        await entered.wait()
        await handle.cancel()
    if _backend() == "asyncio":
        assert len(asyncio.all_tasks()) == before
    assert (await runner.run_status(handle.run_id)).status == "cancelled"


def _backend() -> str:
    import sniffio

    return sniffio.current_async_library()


async def test_leaving_the_block_with_an_error_cancels_the_run() -> None:
    entered = anyio.Event()

    async def blocking(request: object) -> str:
        entered.set()
        await anyio.sleep_forever()
        return ""

    runner = Runner(ChatModelAgent("worker", model=ScriptedModel(blocking)))
    with pytest.raises(KeyError):
        async with runner.start("go") as handle:
            await entered.wait()
            raise KeyError("app failure")
    assert (await runner.run_status(handle.run_id)).status == "cancelled"


async def test_approve_and_reject_a_pending_approval() -> None:
    done: list[int] = []

    @tool(requires_approval=True)
    def pay(amount: int) -> str:
        """Pay."""
        done.append(amount)
        return "paid"

    script = [
        ToolCall(id="p1", name="pay", arguments='{"amount": 5}'),
        "ok",
        ToolCall(id="p2", name="pay", arguments='{"amount": 7}'),
        "refused",
    ]
    model = ScriptedModel(script)
    runner = Runner(ChatModelAgent("payer", model=model, tools=[pay]))
    async with runner.start("pay 5") as handle:
        first = await handle.result()
        assert (await handle.status()).status == "interrupted"
        with pytest.raises(RunControlError, match="no pending interrupt"):
            await handle.approve("int_nope")
        await handle.approve(first.interrupts[0].id)
        approved = await handle.result()
    assert approved.text == "ok" and done == [5]
    async with runner.start("pay 7") as handle:
        second = await handle.result()
        await handle.reject(second.interrupts[0].id, "too much")
        rejected = await handle.result()
    assert rejected.text == "refused" and done == [5]
    tool_message = model.requests[-1].messages[-1]
    assert tool_message.role == "tool" and "too much" in tool_message.content


async def test_retry_continues_a_failed_run_from_its_journal() -> None:
    failures = [RuntimeError("flaky")]
    ran: list[str] = []

    @tool
    def fetch(url: str) -> str:
        """Fetch a page."""
        ran.append(url)
        if failures:
            raise failures.pop()
        return "page"

    model = ScriptedModel([ToolCall(id="f1", name="fetch", arguments='{"url": "u"}'), "got it"])
    agent = ChatModelAgent("fetcher", model=model, tools=[fetch], tool_errors="raise")
    runner = Runner(agent, durability="step")
    async with runner.start("fetch u") as handle:
        await handle.result()
        assert (await handle.status()).status == "failed"
        await handle.retry()
        result = await handle.result()
    assert result.text == "got it"
    assert model.calls == 2 and ran == ["u", "u"]  # the model call replayed, the tool ran again
    assert (await runner.run_status(handle.run_id)).status == "completed"


async def test_retry_needs_step_durability() -> None:
    runner = Runner(ChatModelAgent("worker", model=ScriptedModel([ModelError("down")])))
    async with runner.start("go") as handle:
        await handle.result()
        with pytest.raises(RunControlError, match="durability='step'"):
            await handle.retry()


async def test_track_runs_keeps_status_of_streamed_runs_and_plain_runs_write_nothing() -> None:
    tracked = Runner(ChatModelAgent("w", model=ScriptedModel(["a"])), track_runs=True)
    events = [event async for event in tracked.run([Message.user("go")], run_id="t1")]
    assert events[-1].message is not None
    info = await tracked.run_status("t1")
    assert info.status == "completed" and not info.controlled
    plain = Runner(ChatModelAgent("w", model=ScriptedModel(["a"])))
    await plain.invoke("go", run_id="p1")
    assert await plain.store.namespaces() == []  # the hot path writes nothing
    with pytest.raises(CheckpointNotFound):
        await plain.run_status("p1")


async def test_pause_reaches_an_agent_tool_sub_run() -> None:
    gate = Gate()
    inner, inner_model, ran = gated_agent(gate, [call("a"), "inner done"])
    outer_model = ScriptedModel(
        [ToolCall(id="o1", name="worker", arguments='{"request": "do it"}'), "outer done"]
    )
    outer = ChatModelAgent("boss", model=outer_model, tools=[AgentTool(inner)])
    runner = Runner(outer)
    async with runner.start("go") as handle:
        await gate.entered.wait()
        await handle.pause()
        gate.release.set()
        paused = await handle.result()
        assert (await handle.status()).status == "paused"
        assert paused.interrupts and all(is_pause(i.info) for i in paused.interrupts)
        await handle.resume()
        result = await handle.result()
    assert result.text == "outer done"
    assert ran == ["a"] and inner_model.calls == 2 and outer_model.calls == 2


def test_run_control_error_pickles() -> None:
    import pickle

    error = RunControlError("r", "completed", "pause", "applies only to a running run")
    again = pickle.loads(pickle.dumps(error))
    assert (again.run_id, again.status, again.signal, str(again)) == (
        "r",
        "completed",
        "pause",
        str(error),
    )


async def test_feedback_replays_in_a_resume_without_the_handle() -> None:
    gate = Gate()
    agent, model, ran = gated_agent(gate, [call("a"), call("b", "c2"), "done"])
    runner = Runner(agent)
    async with runner.start("go") as handle:
        await gate.entered.wait()
        await handle.feedback("steer")
        gate.release.set()
        gate.entered = anyio.Event()
        gate.release = anyio.Event()
        await gate.entered.wait()
        await handle.pause()
        gate.release.set()
        paused = await handle.result()
    assert paused.checkpoint_id is not None
    result = await runner.resume_invoke(paused.checkpoint_id)
    assert result.text == "done" and ran == ["a", "b"] and model.calls == 3
    assert user_texts(model.requests[2]) == ["go", "steer"]
