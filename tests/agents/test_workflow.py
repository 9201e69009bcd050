from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from adk import (
    AgentEvent,
    AgentInput,
    BaseAgent,
    ChatModelAgent,
    ConfigurationError,
    LoopAgent,
    ParallelAgent,
    RunContext,
    Runner,
    ScriptedModel,
    SequentialAgent,
)
from tests.agents.helpers import Custom, Say, events_of, live_tasks, trace

pytestmark = pytest.mark.anyio


async def test_sequential_runs_children_in_order_and_later_ones_see_earlier_output() -> None:
    writer_model = ScriptedModel(["final draft"])
    seq = SequentialAgent(
        "pipeline",
        [Say("researcher", "fact one", "fact two"), ChatModelAgent("writer", model=writer_model)],
    )
    events = await events_of(Runner(seq), "write about owls")
    assert trace(events) == [
        "pipeline/researcher fact one",
        "pipeline/researcher fact two",
        "pipeline/writer final draft",
    ]
    assert [m.content for m in writer_model.requests[0].messages] == [
        "write about owls",
        "For context: [researcher] said: fact one",
        "For context: [researcher] said: fact two",
    ]
    assert {m.role for m in writer_model.requests[0].messages} == {"user"}


async def test_sequential_exit_stops_later_children() -> None:
    later = Say("later")
    seq = SequentialAgent("s", [Say("first", then="exit"), later])
    events = await events_of(Runner(seq))
    assert trace(events) == ["s/first first here", "s/first <exit>"]
    assert later.calls == 0


async def test_sequential_stops_on_a_raised_error_with_the_raisers_run_path() -> None:
    later = Say("later")
    seq = SequentialAgent("s", [Say("a"), Say("boom", then="fail"), later])
    events = await events_of(Runner(seq))
    assert trace(events)[-1] == "s/boom error:RuntimeError"
    assert events[-1].error is not None and events[-1].error.run_path == ("s", "boom")
    assert later.calls == 0
    with pytest.raises(RuntimeError, match="boom failed"):
        await Runner(seq).invoke("go")


async def test_loop_with_max_iterations_runs_three_times() -> None:
    body = Say("body", "tick")
    events = await events_of(Runner(LoopAgent("loop", [body], max_iterations=3)))
    assert trace(events) == ["loop/body tick"] * 3
    assert body.calls == 3
    # each iteration sees the previous ones in its history, as its own messages
    assert [m.content for m in body.inputs[2]] == ["go", "tick", "tick"]
    with pytest.raises(ConfigurationError):
        LoopAgent("loop", [body], max_iterations=-1)


async def test_unbounded_loop_ends_on_break_and_forwards_the_childs_remaining_events() -> None:
    counter = {"n": 0}

    async def checker(
        self: BaseAgent, input: AgentInput, ctx: RunContext
    ) -> AsyncIterator[AgentEvent]:
        counter["n"] += 1
        yield self.text_event(ctx, f"check {counter['n']}")
        if counter["n"] == 4:
            yield self.break_loop_event(ctx)
            yield self.text_event(ctx, "still talking after the break")

    after = Say("after")
    loop = LoopAgent("loop", [Say("work"), Custom("checker", checker), after])
    events = await events_of(Runner(loop))
    lines = trace(events)
    assert lines[-3:] == [
        "loop/checker check 4",
        "loop/checker <break done=True at=4>",
        "loop/checker still talking after the break",
    ]
    assert after.calls == 3  # not run in the iteration that broke


async def test_break_in_nested_loop_stops_only_the_inner_loop() -> None:
    inner_count = {"n": 0}

    async def breaker(
        self: BaseAgent, input: AgentInput, ctx: RunContext
    ) -> AsyncIterator[AgentEvent]:
        inner_count["n"] += 1
        yield self.text_event(ctx, "inner")
        if inner_count["n"] % 2 == 0:  # breaks at the 2nd inner iteration each time
            yield self.break_loop_event(ctx)

    inner = LoopAgent("inner", [Custom("breaker", breaker)], max_iterations=10)
    outer_tail = Say("tail", "outer continues")
    outer = LoopAgent("outer", [inner, outer_tail], max_iterations=2)
    events = await events_of(Runner(outer))
    assert trace(events) == [
        "outer/inner/breaker inner",
        "outer/inner/breaker inner",
        "outer/inner/breaker <break done=True at=2>",
        "outer/tail outer continues",
        "outer/inner/breaker inner",
        "outer/inner/breaker inner",
        "outer/inner/breaker <break done=True at=2>",
        "outer/tail outer continues",
    ]


async def test_break_inside_a_sequential_inside_a_loop_ends_the_loop() -> None:
    skipped = Say("skipped")
    loop = LoopAgent("loop", [SequentialAgent("seq", [Say("b", then="break"), skipped])])
    events = await events_of(Runner(loop))
    assert trace(events) == [
        "loop/seq/b b here",
        "loop/seq/b <break done=True at=1>",
        "loop/seq/b b after break",
    ]
    assert skipped.calls == 0


async def test_loop_exit_ends_the_whole_run() -> None:
    after = Say("after")
    run = SequentialAgent("s", [LoopAgent("loop", [Say("quit", then="exit")]), after])
    events = await events_of(Runner(run))
    assert trace(events) == ["s/loop/quit quit here", "s/loop/quit <exit>"]
    assert after.calls == 0


async def test_loop_error_ends_the_loop_and_fails_the_sequence() -> None:
    after = Say("after")
    run = SequentialAgent("s", [LoopAgent("loop", [Say("x", then="fail")]), after])
    events = await events_of(Runner(run))
    assert trace(events)[-1] == "s/loop/x error:RuntimeError"
    assert after.calls == 0


async def test_parallel_events_interleave_and_a_failing_branch_leaves_others_intact() -> None:
    async def ticker(
        self: BaseAgent, input: AgentInput, ctx: RunContext
    ) -> AsyncIterator[AgentEvent]:
        for i in range(3):
            await anyio.sleep(0.02)
            yield self.text_event(ctx, f"{self.name} {i}")

    async def failer(
        self: BaseAgent, input: AgentInput, ctx: RunContext
    ) -> AsyncIterator[AgentEvent]:
        await anyio.sleep(0.03)
        yield self.text_event(ctx, "failer started")
        raise ValueError("branch broke")

    synth_model = ScriptedModel(lambda request: "summary")
    flow = SequentialAgent(
        "flow",
        [
            ParallelAgent("fan", [Custom("a", ticker), Custom("b", ticker), Custom("bad", failer)]),
            ChatModelAgent("synth", model=synth_model),
        ],
    )
    events = await events_of(Runner(flow))
    lines = trace(events)
    a_lines = [line for line in lines if line.startswith("flow/fan/a ")]
    b_lines = [line for line in lines if line.startswith("flow/fan/b ")]
    assert a_lines == ["flow/fan/a a 0", "flow/fan/a a 1", "flow/fan/a a 2"]
    assert b_lines == ["flow/fan/b b 0", "flow/fan/b b 1", "flow/fan/b b 2"]
    first_b = lines.index("flow/fan/b b 0")
    assert first_b < lines.index("flow/fan/a a 2")  # interleaved, not one branch after another
    assert "flow/fan/bad error:ValueError" in lines
    assert lines[-1] == "flow/synth summary"
    seen = [m.content for m in synth_model.requests[0].messages]
    for who, text in (("a", "a 2"), ("b", "b 2"), ("bad", "failer started")):
        assert f"For context: [{who}] said: {text}" in seen
    result = await Runner(flow).invoke("go")
    assert result.text == "summary" and [e.type for e in result.errors] == ["ValueError"]


async def test_parallel_branch_waits_until_its_event_was_taken() -> None:
    produced = {"a": 0, "b": 0}

    async def chatty(
        self: BaseAgent, input: AgentInput, ctx: RunContext
    ) -> AsyncIterator[AgentEvent]:
        for i in range(50):
            produced[self.name] += 1
            yield self.text_event(ctx, str(i))

    runner = Runner(ParallelAgent("p", [Custom("a", chatty), Custom("b", chatty)]))
    taken = 0
    async for _ in runner.query("go"):
        taken += 1
        await anyio.sleep(0.001)  # a slow consumer
        # each branch is at most one event ahead of what was taken (the one waiting to be taken)
        assert produced["a"] + produced["b"] <= taken + 2
        if taken == 20:
            break
    assert produced["a"] + produced["b"] <= 22


async def test_parallel_exit_ends_the_run_and_cancels_other_branches() -> None:
    finished = []

    async def slow(
        self: BaseAgent, input: AgentInput, ctx: RunContext
    ) -> AsyncIterator[AgentEvent]:
        await anyio.sleep(5)
        finished.append(self.name)
        yield self.text_event(ctx, "too late")

    after = Say("after")
    flow = SequentialAgent(
        "s", [ParallelAgent("p", [Custom("slow", slow), Say("quit", then="exit")]), after]
    )
    with anyio.fail_after(3):
        events = await events_of(Runner(flow))
    assert trace(events) == ["s/p/quit quit here", "s/p/quit <exit>"]
    assert finished == [] and after.calls == 0


async def test_all_branches_get_the_same_input() -> None:
    a, b = Say("a"), Say("b")
    await events_of(
        Runner(SequentialAgent("s", [Say("intro", "hello"), ParallelAgent("p", [a, b])]))
    )
    assert a.inputs == b.inputs
    assert [m.content for m in a.inputs[0]] == ["go", "For context: [intro] said: hello"]


def test_workflow_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="at least one"):
        SequentialAgent("s", [])
    with pytest.raises(ConfigurationError, match="two sub-agents named 'x'"):
        ParallelAgent("p", [Say("x"), Say("x")])
    with pytest.raises(ConfigurationError, match="not an agent"):
        LoopAgent("l", [object()])  # type: ignore[list-item]
    with pytest.raises(ConfigurationError, match="unique within a tree"):
        Runner(SequentialAgent("s", [Say("x"), SequentialAgent("t", [Say("x")])]))


async def test_one_agent_reused_in_two_trees_and_many_concurrent_runs() -> None:
    shared = ChatModelAgent(
        "shared", model=ScriptedModel(lambda r: f"echo {r.messages[0].content}"), output_key="out"
    )
    tree_one = SequentialAgent("one", [Say("pre1", "from one"), shared])
    tree_two = ParallelAgent("two", [shared, Say("side")])
    r1, r2 = Runner(tree_one), Runner(tree_two)
    results: dict[str, list[str]] = {}

    async def go(runner: Runner, key: str) -> None:
        values: dict[str, str] = {}
        result = await runner.invoke(key, session_values=values)
        results[key] = ["/".join(e.run_path) + ":" + e.text for e in result.events] + [
            values["out"]
        ]

    async with anyio.create_task_group() as group:
        for i in range(50):
            group.start_soon(go, r1, f"one-{i}")
            group.start_soon(go, r2, f"two-{i}")
    for i in range(50):
        assert results[f"one-{i}"] == [
            "one/pre1:from one",
            f"one/shared:echo one-{i}",
            f"echo one-{i}",
        ]
        assert sorted(results[f"two-{i}"][:2]) == [f"two/shared:echo two-{i}", "two/side:side here"]
        assert results[f"two-{i}"][2] == f"echo two-{i}"


async def test_cancelling_a_run_cancels_every_branch_and_leaves_no_task_behind() -> None:
    started: list[str] = []
    cleaned: list[str] = []

    async def slow(
        self: BaseAgent, input: AgentInput, ctx: RunContext
    ) -> AsyncIterator[AgentEvent]:
        started.append(self.name)
        try:
            await anyio.sleep(10)
            yield self.text_event(ctx, "never")
        finally:
            cleaned.append(self.name)

    runner = Runner(ParallelAgent("p", [Custom(f"b{i}", slow) for i in range(5)]))
    before = live_tasks()
    with anyio.move_on_after(0.2) as scope:
        await runner.invoke("go")
    assert scope.cancelled_caught
    assert sorted(started) == sorted(cleaned) == [f"b{i}" for i in range(5)]
    assert live_tasks() == before
    # the runner and agents are reusable after a cancelled run
    quick = Runner(ParallelAgent("p", [Say("x"), Say("y")]))
    assert len((await quick.invoke("go")).events) == 2


async def test_parallel_context_never_splits_an_agents_tool_call_from_its_results() -> None:
    from adk import ToolCall, tool

    @tool
    async def slow_lookup(q: str) -> str:
        """Look up slowly."""
        await anyio.sleep(0.05)
        return f"found {q}"

    def script(request: Any) -> Any:
        last = request.messages[-1]
        if last.role == "tool":
            return "worker done"
        return ToolCall.of("slow_lookup", q="x")

    worker_model = ScriptedModel(script)
    worker = ChatModelAgent("worker", model=worker_model, tools=[slow_lookup])

    async def chatter(
        self: BaseAgent, input: AgentInput, ctx: RunContext
    ) -> AsyncIterator[AgentEvent]:
        for i in range(3):
            await anyio.sleep(0.02)
            yield self.text_event(ctx, f"chat {i}")

    loop = LoopAgent(
        "loop", [ParallelAgent("p", [worker, Custom("chatter", chatter)])], max_iterations=2
    )
    await events_of(Runner(loop))
    for request in worker_model.requests:
        roles = [m.role for m in request.messages]
        for i, message in enumerate(request.messages):
            if message.role == "assistant" and message.tool_calls:
                assert roles[i + 1] == "tool", roles
