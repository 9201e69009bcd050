"""Middleware and guardrails through composition: sequences, parallel, agent tools, transfer."""

from __future__ import annotations

import anyio
import pytest
from anyio import wait_all_tasks_blocked

from adk import (
    AgentTool,
    ChatModelAgent,
    GuardrailResult,
    Message,
    ParallelAgent,
    RunContext,
    Runner,
    ScriptedModel,
    SequentialAgent,
    ToolCall,
    guardrail,
)

from .helpers import Recorder, WaitingModel, add, collect, errors, texts

pytestmark = pytest.mark.anyio


async def test_sequence_runner_guardrail_once_agent_guardrail_on_its_own_agent() -> None:
    seen: list[str] = []

    @guardrail
    def run_check(ctx: RunContext, messages: list[Message]) -> None:
        seen.append(f"run:{ctx.run_path[-1]}")

    @guardrail
    def second_check(ctx: RunContext, messages: list[Message]) -> None:
        seen.append(f"agent:{ctx.run_path[-1]}:{messages[-1].content}")

    log: list[str] = []
    first = ChatModelAgent("first", model=ScriptedModel(["draft"]), middleware=[Recorder("f", log)])
    second = ChatModelAgent(
        "second", model=ScriptedModel(["final"]), input_guardrails=[second_check]
    )
    runner = Runner(
        SequentialAgent("flow", [first, second]),
        input_guardrails=[run_check],
        middleware=[Recorder("r", log)],
    )
    result = await runner.invoke("go")
    assert result.text == "final"
    assert seen == ["run:first", "agent:second:For context: [first] said: draft"]
    assert log == [
        "r>model first", "f>model first", "f<model first", "r<model first",
        "r>model second", "r<model second",
    ]  # fmt: skip


async def test_parallel_branches_wait_for_the_runner_guardrail_and_stop_on_its_trip() -> None:
    left, right = WaitingModel(), WaitingModel()

    @guardrail
    async def block(ctx: RunContext, messages: list[Message]) -> GuardrailResult:
        await left.started.wait()
        await right.started.wait()  # both branches' first calls are in flight
        return GuardrailResult(tripped=True, info="blocked")

    fan = ParallelAgent(
        "fan",
        [ChatModelAgent("left", model=left), ChatModelAgent("right", model=right)],
    )
    events = await collect(Runner(fan, input_guardrails=[block]), "x")
    assert errors(events) == ["GuardrailTripped"]  # one trip ends the whole run
    assert left.cancelled and right.cancelled
    assert texts(events) == []


async def test_parallel_branch_answers_are_held_until_the_guardrail_passes() -> None:
    gate = anyio.Event()
    left, right = ScriptedModel(["left answer"]), ScriptedModel(["right answer"])

    @guardrail
    async def slow(ctx: RunContext, messages: list[Message]) -> None:
        await gate.wait()

    fan = ParallelAgent(
        "fan", [ChatModelAgent("left", model=left), ChatModelAgent("right", model=right)]
    )
    delivered: list[str] = []

    async def consume() -> None:
        async for event in Runner(fan, input_guardrails=[slow]).query("x"):
            delivered.append(event.text)

    async with anyio.create_task_group() as group:
        group.start_soon(consume)
        await wait_all_tasks_blocked()
        assert left.calls == right.calls == 1  # both calls made, concurrently with the check
        assert delivered == []  # neither answer delivered while the guardrail runs
        gate.set()
    assert sorted(delivered) == ["left answer", "right answer"]


@pytest.mark.parametrize("streaming", [False, True])
async def test_agent_tool_calls_run_through_runner_and_inner_agent_middleware(
    streaming: bool,
) -> None:
    log: list[str] = []
    inner = ChatModelAgent(
        "helper",
        model=ScriptedModel([ToolCall.of("add", a=2, b=2), "4"]),
        tools=[add],
        middleware=[Recorder("h", log)],
    )
    outer = ChatModelAgent(
        "boss",
        model=ScriptedModel([ToolCall.of("helper", request="2+2"), "it is 4"]),
        tools=[AgentTool(inner)],
    )
    runner = Runner(outer, middleware=[Recorder("r", log)], streaming=streaming)
    result = await runner.invoke("2+2?")
    assert result.text == "it is 4"
    assert log == [
        "r>model boss", "r<model boss",
        "r>tool boss:helper",
        "r>model helper", "h>model helper", "h<model helper", "r<model helper",
        "r>tool helper:add", "h>tool helper:add", "h<tool helper:add", "r<tool helper:add",
        "r>model helper", "h>model helper", "h<model helper", "r<model helper",
        "r<tool boss:helper",
        "r>model boss", "r<model boss",
    ]  # fmt: skip


async def test_a_trip_inside_an_agent_tool_ends_the_whole_run() -> None:
    @guardrail
    def never(ctx: RunContext, messages: list[Message]) -> bool:
        return True

    inner = ChatModelAgent("helper", model=ScriptedModel(["nope"]), input_guardrails=[never])
    boss_model = ScriptedModel([ToolCall.of("helper", request="x"), "the boss goes on"])
    outer = ChatModelAgent("boss", model=boss_model, tools=[AgentTool(inner)])
    events = await collect(Runner(outer), "x")
    assert errors(events)[-1] == "GuardrailTripped"
    assert "the boss goes on" not in texts(events)
    assert boss_model.calls == 1  # the boss's next call raised the trip instead


async def test_transfer_target_runs_its_own_middleware_inside_the_runners() -> None:
    log: list[str] = []
    billing = ChatModelAgent(
        "billing", model=ScriptedModel(["refund done"]), middleware=[Recorder("b", log)]
    )
    router = ChatModelAgent(
        "router",
        model=ScriptedModel([ToolCall.of("transfer_to_agent", agent_name="billing")]),
        sub_agents=[billing],
    )
    result = await Runner(router, middleware=[Recorder("r", log)]).invoke("refund please")
    assert result.text == "refund done"
    assert log == [
        "r>model router", "r<model router",
        "r>tool router:transfer_to_agent", "r<tool router:transfer_to_agent",
        "r>model billing", "b>model billing", "b<model billing", "r<model billing",
    ]  # fmt: skip


async def test_a_branch_waiting_on_the_runner_guardrail_sees_its_trip() -> None:
    left, right = ScriptedModel(["left answer"]), ScriptedModel(["right answer"])

    @guardrail
    async def block(ctx: RunContext, messages: list[Message]) -> bool:
        await wait_all_tasks_blocked()  # both calls have answered and wait for the verdict
        assert left.calls == right.calls == 1
        return True

    fan = ParallelAgent(
        "fan", [ChatModelAgent("left", model=left), ChatModelAgent("right", model=right)]
    )
    events = await collect(Runner(fan, input_guardrails=[block]), "x")
    assert texts(events) == []
    assert errors(events) == ["GuardrailTripped"]
