"""Connection lifecycle: per runner or per run, approval and resume, cancellation, close."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from adk import Approval, ChatModelAgent, Runner, ScriptedModel, ToolCall

from .conftest import asyncio_only, demo_toolset, logged, process_alive, wait_until_gone
from .test_toolset import tool_messages

pytestmark = pytest.mark.anyio


async def test_scope_runner_keeps_one_server_until_runner_close() -> None:
    toolset = demo_toolset()
    model = ScriptedModel([ToolCall.of("pid"), "one", ToolCall.of("pid"), "two"])
    runner = Runner(ChatModelAgent("assistant", model=model, tools=[toolset]))
    try:
        first = int(tool_messages(await runner.invoke("pid?"))[0].content)
        second = int(tool_messages(await runner.invoke("pid?"))[0].content)
        assert first == second
        assert process_alive(first)
    finally:
        await runner.close()
    assert wait_until_gone(first)


async def test_scope_run_opens_a_server_per_run_and_ends_it_with_the_run() -> None:
    toolset = demo_toolset(scope="run")
    model = ScriptedModel([ToolCall.of("pid"), "one", ToolCall.of("pid"), "two"])
    runner = Runner(ChatModelAgent("assistant", model=model, tools=[toolset]))
    try:
        first = int(tool_messages(await runner.invoke("pid?"))[0].content)
        assert wait_until_gone(first)  # closed when its run ended, before runner.close()
        second = int(tool_messages(await runner.invoke("pid?"))[0].content)
        assert second != first
    finally:
        await runner.close()
    assert wait_until_gone(second)


async def test_a_resumed_run_does_not_call_a_completed_mcp_call_again(call_log: Path) -> None:
    toolset = demo_toolset(
        call_log, requires_approval=lambda name, args: args.get("label") == "second"
    )
    model = ScriptedModel(
        [[ToolCall.of("record", label="first"), ToolCall.of("record", label="second")], "done"]
    )
    runner = Runner(ChatModelAgent("assistant", model=model, tools=[toolset]))
    try:
        paused = await runner.invoke("record two things", run_id="rec-1")
        [pending] = paused.interrupts
        assert pending.info["tool"] == "record"
        assert pending.info["arguments"] == {"label": "second"}
        assert logged(call_log) == ["first"]  # approved calls ran
        assert paused.checkpoint_id is not None
        done = await runner.resume_invoke(paused.checkpoint_id, {pending.id: Approval.approve()})
    finally:
        await runner.close()
    assert logged(call_log) == ["first", "second"]  # "first" not repeated
    assert [m.content for m in tool_messages(paused)] == ["recorded first (call 1)"]
    assert tool_messages(done)[-1].content == "recorded second (call 2)"
    assert done.text == "done"


@asyncio_only
async def test_requires_approval_by_name_and_a_rejection_reaches_the_model(
    call_log: Path,
) -> None:
    toolset = demo_toolset(call_log, requires_approval=["record"], prefix="x_")
    model = ScriptedModel([ToolCall.of("x_record", label="nope"), "fine"])
    runner = Runner(ChatModelAgent("assistant", model=model, tools=[toolset]))
    try:
        paused = await runner.invoke("record")
        [pending] = paused.interrupts
        assert paused.checkpoint_id is not None
        done = await runner.resume_invoke(
            paused.checkpoint_id, {pending.id: Approval.reject("not now")}
        )
    finally:
        await runner.close()
    assert logged(call_log) == []
    assert "The user rejected this call to 'x_record': not now" in tool_messages(done)[-1].content


async def test_a_cancelled_run_leaves_no_call_running_and_the_toolset_usable() -> None:
    toolset = demo_toolset()
    model = ScriptedModel([ToolCall.of("pid"), ToolCall.of("nap", seconds=60), "never"])
    runner = Runner(ChatModelAgent("assistant", model=model, tools=[toolset]))
    pids: list[int] = []
    try:
        with anyio.move_on_after(20) as scope:
            async for event in runner.query("nap"):
                message = event.message
                if message is not None and message.role == "tool" and message.name == "pid":
                    pids.append(int(message.content))
                    scope.deadline = anyio.current_time() + 1.0  # cancel during the nap
        assert scope.cancelled_caught
        again = Runner(
            ChatModelAgent(
                "assistant", model=ScriptedModel([ToolCall.of("pid"), "ok"]), tools=[toolset]
            )
        )
        result = await again.invoke("pid?")
    finally:
        await runner.close()
    [pid] = pids
    assert int(tool_messages(result)[0].content) == pid  # same server, still serving
    assert wait_until_gone(pid)


@asyncio_only
async def test_close_is_idempotent_and_the_toolset_reopens_afterwards() -> None:
    toolset = demo_toolset()
    runner = Runner(
        ChatModelAgent("a", model=ScriptedModel([ToolCall.of("pid"), "x"] * 2), tools=[toolset])
    )
    first = int(tool_messages(await runner.invoke("pid?"))[0].content)
    await runner.close()
    await runner.close()
    assert wait_until_gone(first)
    try:
        second = int(tool_messages(await runner.invoke("pid?"))[0].content)
    finally:
        await toolset.close()
    assert second != first
    assert wait_until_gone(second)
