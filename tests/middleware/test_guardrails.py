"""Guardrails: input checks racing the first model call, output checks, journaled verdicts."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel
import pytest

from adk import (
    Approval,
    ChatModelAgent,
    CheckpointCorrupted,
    ConfigurationError,
    Guardrail,
    GuardrailResult,
    GuardrailTripped,
    Message,
    RunContext,
    Runner,
    ScriptedModel,
    ToolCall,
    guardrail,
    tool,
)
from adk.agents.guardrails import run_guardrails, verdict_key
from adk.agents.run_guards import GuardState, RunGuards
from adk.state.journal import RunJournal

from .helpers import StreamedThenSignal, WaitingModel, collect, errors, texts

pytestmark = pytest.mark.anyio


def trip_on(word: str, name: str = "no_word") -> Guardrail:
    async def check(ctx: RunContext, messages: list[Message]) -> GuardrailResult:
        await anyio.lowlevel.checkpoint()
        found = any(word in message.content for message in messages)
        return GuardrailResult(tripped=found, info=f"mentions {word}" if found else None)

    return Guardrail(name, check)


@pytest.mark.parametrize("level", ["runner", "agent"])
@pytest.mark.parametrize("streaming", [False, True])
async def test_a_tripped_input_guardrail_cancels_the_first_model_call(
    level: str, streaming: bool
) -> None:
    model = WaitingModel()

    @guardrail
    async def no_secrets(ctx: RunContext, messages: list[Message]) -> GuardrailResult:
        await model.started.wait()  # the model call is in flight: the check runs alongside
        return GuardrailResult(tripped=True, info={"found": "password"})

    if level == "runner":
        runner = Runner(
            ChatModelAgent("a", model=model), input_guardrails=[no_secrets], streaming=streaming
        )
    else:
        agent = ChatModelAgent("a", model=model, input_guardrails=[no_secrets])
        runner = Runner(agent, streaming=streaming)
    events = await collect(runner, "my password is hunter2")
    assert model.cancelled
    assert [e for e in events if e.partial] == []  # not even the delta sent before the trip
    assert errors(events) == ["GuardrailTripped"]
    error = events[-1].error
    assert error is not None
    assert "input guardrail 'no_secrets' tripped" in error.message
    assert error.details == {
        "guardrail": "no_secrets",
        "kind": "input",
        "info": {"found": "password"},
    }
    with pytest.raises(GuardrailTripped) as caught:
        await Runner(
            ChatModelAgent("b", model=WaitingModel()), input_guardrails=[trip_on("password")]
        ).invoke("password")
    assert caught.value.guardrail == "no_word" and caught.value.info == "mentions password"


@pytest.mark.parametrize("trip", [False, True])
async def test_streamed_deltas_wait_for_the_input_guardrails(trip: bool) -> None:
    model = StreamedThenSignal("every word of it")

    @guardrail
    async def slow(ctx: RunContext, messages: list[Message]) -> bool:
        await model.streamed.wait()  # decides only once the whole answer was streamed
        return trip

    runner = Runner(ChatModelAgent("a", model=model), input_guardrails=[slow], streaming=True)
    events = await collect(runner, "x")
    deltas = [e.text for e in events if e.partial]
    if trip:
        assert deltas == []
        assert errors(events) == ["GuardrailTripped"]
    else:
        assert "".join(deltas) == "every word of it "
        assert texts(events) == ["every word of it "]


async def test_passing_guardrails_run_once_per_run_and_per_agent_invocation() -> None:
    seen: list[tuple[str, str]] = []

    def watch(label: str) -> Guardrail:
        def check(ctx: RunContext, messages: list[Message]) -> None:
            seen.append((label, messages[-1].content))

        return Guardrail(label, check)

    add_calls = ScriptedModel([ToolCall.of("echo", text="hi"), "done"])

    @tool
    def echo(text: str) -> str:
        """Echo."""
        return text

    agent = ChatModelAgent("a", model=add_calls, tools=[echo], input_guardrails=[watch("agent")])
    result = await Runner(agent, input_guardrails=[watch("run")]).invoke("hello")
    assert result.text == "done"
    assert sorted(seen) == [("agent", "hello"), ("run", "hello")]  # not again at the 2nd call


async def test_input_guardrail_failures_and_bad_verdicts_end_the_run() -> None:
    def broken(ctx: RunContext, messages: list[Message]) -> None:
        raise KeyError("no config")

    def vague(ctx: RunContext, messages: list[Message]) -> str:
        return "maybe"

    for check, error in ((broken, "KeyError"), (vague, "TypeError")):
        runner = Runner(ChatModelAgent("a", model=ScriptedModel(["hi"])), input_guardrails=[check])
        events = await collect(runner, "x")
        assert errors(events) == [error]
        assert texts(events) == []


@pytest.mark.parametrize("level", ["runner", "agent"])
@pytest.mark.parametrize("streaming", [False, True])
async def test_a_tripped_output_guardrail_keeps_the_answer_from_the_caller(
    level: str, streaming: bool
) -> None:
    @guardrail(name="no_swearing")
    def clean(ctx: RunContext, answer: Message) -> GuardrailResult:
        return GuardrailResult(tripped="darn" in answer.content, info="swore")

    model = ScriptedModel(["oh darn"])
    if level == "runner":
        runner = Runner(
            ChatModelAgent("a", model=model), output_guardrails=[clean], streaming=streaming
        )
    else:
        runner = Runner(
            ChatModelAgent("a", model=model, output_guardrails=[clean]), streaming=streaming
        )
    events = await collect(runner, "x")
    assert texts(events) == []  # the complete answer is never delivered
    assert errors(events) == ["GuardrailTripped"]
    assert events[-1].error is not None and events[-1].error.details is not None
    assert events[-1].error.details["kind"] == "output"
    ok = ScriptedModel(["fine"])
    passing = Runner(
        ChatModelAgent("a", model=ok, output_guardrails=[clean]), output_guardrails=[clean]
    )
    events = await collect(passing, "x")
    assert texts(events) == ["fine"] and errors(events) == []


async def test_runner_output_guardrails_check_only_the_runs_final_answer() -> None:
    checked: list[str] = []

    def note(ctx: RunContext, answer: Message) -> None:
        checked.append(answer.content)

    @tool
    def echo(text: str) -> str:
        """Echo."""
        return text

    model = ScriptedModel(
        [Message.assistant("let me check", tool_calls=[ToolCall.of("echo", text="a")]), "final"]
    )
    runner = Runner(ChatModelAgent("a", model=model, tools=[echo]), output_guardrails=[note])
    result = await runner.invoke("x")
    assert result.text == "final"
    assert checked == ["final"]


@tool(requires_approval=True)
def send(to: str) -> str:
    """Send a message (needs approval)."""
    return f"sent to {to}"


async def test_a_resumed_run_does_not_run_guardrails_again() -> None:
    counts: dict[str, int] = {"run": 0, "agent": 0, "out": 0}

    def counting(label: str) -> Guardrail:
        def check(ctx: RunContext, data: Any) -> bool:
            counts[label] += 1
            return False

        return Guardrail(label, check)

    model = ScriptedModel([ToolCall.of("send", to="ada"), "sent it"])
    agent = ChatModelAgent(
        "mailer",
        model=model,
        tools=[send],
        input_guardrails=[counting("agent")],
        output_guardrails=[counting("out")],
    )
    runner = Runner(agent, input_guardrails=[counting("run")], durability="step")
    paused = await runner.invoke("mail ada")
    assert paused.checkpoint_id is not None
    assert counts == {"run": 1, "agent": 1, "out": 0}
    answers = {info.id: Approval.approve() for info in paused.interrupts}
    done = await runner.resume_invoke(paused.checkpoint_id, answers)
    assert done.text == "sent it"
    assert counts == {"run": 1, "agent": 1, "out": 1}  # the input checks were not repeated
    assert model.calls == 2  # nor the first model call


async def test_a_journaled_verdict_is_used_instead_of_running_the_guardrail() -> None:
    ran: list[str] = []

    def check(ctx: RunContext, data: Any) -> bool:
        ran.append("ran")
        return False

    journal = RunJournal()
    journal.note_value(verdict_key("a|m0", "input", "g"), [True, "from before"])
    ctx = RunContext.create(journal=journal)
    with pytest.raises(GuardrailTripped, match="from before"):
        await run_guardrails([Guardrail("g", check)], "input", ctx, [], "a|m0")
    await run_guardrails([Guardrail("g", check)], "input", ctx, [], "b|m0")
    assert ran == ["ran"]
    assert journal.value(verdict_key("b|m0", "input", "g")) == [False, None]
    journal.note_value(verdict_key("c|m0", "input", "g"), {"not": "a verdict"})
    with pytest.raises(CheckpointCorrupted, match="must be \\[tripped, info\\], got dict"):
        await run_guardrails([Guardrail("g", check)], "input", ctx, [], "c|m0")


def test_guardrail_arguments_are_checked() -> None:
    model = ScriptedModel(["x"])
    with pytest.raises(ConfigurationError, match="two input_guardrails are named 'g'"):
        ChatModelAgent("a", model=model, input_guardrails=[trip_on("x", "g"), trip_on("y", "g")])
    with pytest.raises(TypeError, match="output_guardrails must hold Guardrail objects"):
        ChatModelAgent("a", model=model, output_guardrails=["strict"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="input_guardrails must be a list"):
        Runner(ChatModelAgent("a", model=model), input_guardrails=trip_on("x"))  # type: ignore[arg-type]


async def test_calls_waiting_for_the_runner_guardrails_get_their_trip() -> None:
    release = anyio.Event()

    async def slow_trip(ctx: RunContext, messages: list[Message]) -> bool:
        await release.wait()
        return True

    state = GuardState(RunGuards((), (Guardrail("slow", slow_trip),), ()))
    ctx = RunContext.create()
    outcomes: list[str] = []

    async def call() -> None:
        try:
            await state.check_run_input(ctx)
            outcomes.append("passed")
        except GuardrailTripped as trip:
            outcomes.append(trip.guardrail)

    async with anyio.create_task_group() as group:
        group.start_soon(call)
        group.start_soon(call)  # waits for the first one's verdict
        await anyio.wait_all_tasks_blocked()
        release.set()
    assert outcomes == ["slow", "slow"]
