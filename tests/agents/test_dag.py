"""DAGAgent: graph checks, scheduling as dependencies finish, inputs, conditions, failures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from adk import (
    AgentEvent,
    AgentInput,
    ArgumentTypeError,
    BaseAgent,
    ChatModelAgent,
    ConfigurationError,
    DAGAgent,
    LoopAgent,
    Message,
    ModelRequest,
    Node,
    RunContext,
    Runner,
    ScriptedModel,
    SequentialAgent,
    Upstream,
)
from tests.agents.helpers import Custom, Say, events_of, trace

pytestmark = pytest.mark.anyio


def echo(name: str) -> tuple[ChatModelAgent, ScriptedModel]:
    """A chat agent answering with its whole prompt, one message per line."""
    model = ScriptedModel(lambda r: "\n".join(f"{m.role}: {m.content}" for m in r.messages))
    return ChatModelAgent(name, model=model), model


def notices(events: list[AgentEvent]) -> dict[str, tuple[str, str]]:
    """The skip notices of ``events``: node -> (status, reason)."""
    found = {}
    for event in events:
        custom = event.output.custom if event.output is not None else None
        if isinstance(custom, dict) and custom.get("kind") == "dag_node_skipped":
            found[custom["node"]] = (custom["status"], custom["reason"])
    return found


def summary(events: list[AgentEvent]) -> dict[str, Any]:
    [done] = [
        e.output.custom
        for e in events
        if e.output is not None
        and isinstance(e.output.custom, dict)
        and e.output.custom.get("kind") == "dag_done"
    ]
    return done


# -- building --------------------------------------------------------------------------


def test_graph_errors_name_the_problem() -> None:
    a, b, c = Say("a"), Say("b"), Say("c")
    with pytest.raises(ConfigurationError, match=r"cycle: a -> c -> b -> a \(each waits"):
        DAGAgent("d", [Node(a, after="c"), Node(b, after="a"), Node(c, after="b")])
    with pytest.raises(ConfigurationError, match="cycle: a -> a"):
        DAGAgent("d", [Node(a, after="a")])
    with pytest.raises(ConfigurationError, match=r"'b' waits for 'x', which is not a node .*a, b"):
        DAGAgent("d", [a, Node(b, after=["a", "x"])])
    with pytest.raises(ConfigurationError, match="two nodes named 'a'"):
        DAGAgent("d", [a, Node(Say("a"))])
    with pytest.raises(ConfigurationError, match="named like itself"):
        DAGAgent("a", [a])
    with pytest.raises(ConfigurationError, match="at least one node"):
        DAGAgent("d", [])
    with pytest.raises(ArgumentTypeError, match="nodes must be a list"):
        DAGAgent("d", a)  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match="not a Node"):
        DAGAgent("d", [a, "b"])  # type: ignore[list-item]
    with pytest.raises(ArgumentTypeError, match="max_concurrency must be an int"):
        DAGAgent("d", [a], max_concurrency="2")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="max_concurrency must be >= 1"):
        DAGAgent("d", [a], max_concurrency=0)
    with pytest.raises(ArgumentTypeError, match="mapper must be a stage mapper"):
        DAGAgent("d", [a], mapper="small")  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match="agent must be an agent"):
        Node("a")  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match="'a': when= must be a function"):
        Node(a, when=True)  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match="after= must be node names"):
        Node(a, after=[1])  # type: ignore[list-item]
    with pytest.raises(ConfigurationError, match="unique within a tree"):
        Runner(DAGAgent("d", [a, SequentialAgent("s", [Say("a")])]))


def test_nodes_come_in_dependency_order_and_after_takes_names_or_agents() -> None:
    a, b, c = Say("a"), Say("b"), Say("c")
    dag = DAGAgent("d", [Node(c, after=[a, "b", "a"]), Node(b, after=a), a])
    assert list(dag.nodes) == ["a", "b", "c"]
    assert dag.nodes["c"].after == ("a", "b")
    assert dag.sub_agents == (a, b, c)
    assert DAGAgent.workflow is True


# -- scheduling ------------------------------------------------------------------------


async def test_a_node_starts_when_its_own_dependencies_finish_not_level_by_level() -> None:
    # "slow" can only finish once "child" ran; "child" waits only for "fast". Scheduling
    # level by level ("child" after both level-0 nodes) would never end.
    child_ran = anyio.Event()

    async def slow(self: BaseAgent, input: AgentInput, ctx: RunContext) -> AsyncIterator[Any]:
        await child_ran.wait()
        yield self.text_event(ctx, "slow done")

    async def child(self: BaseAgent, input: AgentInput, ctx: RunContext) -> AsyncIterator[Any]:
        child_ran.set()
        yield self.text_event(ctx, "child done")

    dag = DAGAgent(
        "d", [Custom("slow", slow), Say("fast"), Node(Custom("child", child), after="fast")]
    )
    with anyio.fail_after(5):
        events = await events_of(Runner(dag))
    lines = trace(events)
    assert lines.index("d/child child done") < lines.index("d/slow slow done")
    assert summary(events)["nodes"] == {
        "slow": "completed",
        "fast": "completed",
        "child": "completed",
    }


async def test_events_are_attributed_to_their_node_at_any_depth() -> None:
    inner = SequentialAgent("steps", [Say("one"), Say("two")])
    dag = DAGAgent("d", [Say("a"), Node(inner, after="a")])
    events = await events_of(Runner(SequentialAgent("flow", [dag])))
    assert trace(events) == [
        "flow/d/a a here",
        "flow/d/steps/one one here",
        "flow/d/steps/two two here",
        "flow/d ",
    ]
    assert [e.agent_name for e in events] == ["a", "one", "two", "d"]


async def test_max_concurrency_caps_the_nodes_running_at_once() -> None:
    running = {"now": 0, "peak": 0}

    async def work(self: BaseAgent, input: AgentInput, ctx: RunContext) -> AsyncIterator[Any]:
        running["now"] += 1
        running["peak"] = max(running["peak"], running["now"])
        await anyio.sleep(0.01)
        running["now"] -= 1
        yield self.text_event(ctx, "done")

    for cap, peak in ((2, 2), (None, 6)):
        running["peak"] = 0
        dag = DAGAgent("d", [Custom(f"n{i}", work) for i in range(6)], max_concurrency=cap)
        events = await events_of(Runner(dag))
        assert running["peak"] == peak
        assert len([e for e in events if e.text == "done"]) == 6


# -- inputs ----------------------------------------------------------------------------


async def test_default_input_is_the_history_at_the_start_plus_labelled_upstream_answers() -> None:
    # "other" finishes before "writer" starts ("a" waits for it), yet "writer" (which waits
    # for "a" only) is not told about it: what a node sees never depends on timing.
    other_done = anyio.Event()

    async def other(self: BaseAgent, input: AgentInput, ctx: RunContext) -> AsyncIterator[Any]:
        yield self.text_event(ctx, "unrelated news")
        other_done.set()

    async def first(self: BaseAgent, input: AgentInput, ctx: RunContext) -> AsyncIterator[Any]:
        await other_done.wait()
        yield self.text_event(ctx, "draft")
        yield self.text_event(ctx, "facts from a")

    writer, model = echo("writer")
    dag = DAGAgent(
        "d",
        [
            Custom("other", other),
            Custom("a", first),
            Say("b", "facts from b"),
            Node(writer, after=["b", "a"]),
        ],
    )
    await Runner(SequentialAgent("flow", [Say("intro", "hello"), dag])).invoke("topic")
    assert [(m.role, m.content) for m in model.requests[0].messages] == [
        ("user", "topic"),
        ("user", "For context: [intro] said: hello"),
        (
            "user",
            "For context: results of the earlier steps this step builds on:\n\n"
            "[b] said: facts from b\n\n[a] said: facts from a",
        ),
    ]


async def test_custom_input_builders_sync_async_and_prompt_strings() -> None:
    seen: list[Upstream] = []

    def brief(upstream: Upstream) -> list[Message]:
        seen.append(upstream)
        return [*upstream.history, Message.user("combine: " + upstream["a"].text)]

    async def prompt(upstream: Upstream) -> str:
        return f"only {sorted(upstream)}"

    one, one_model = echo("one")
    two, two_model = echo("two")
    dag = DAGAgent(
        "d", [Say("a", "A!"), Node(one, after="a", input=brief), Node(two, after="a", input=prompt)]
    )
    await Runner(dag).invoke("go")
    assert [m.content for m in one_model.requests[0].messages] == ["go", "combine: A!"]
    assert [m.content for m in two_model.requests[0].messages] == ["only ['a']"]
    [upstream] = seen
    assert dict(upstream)["a"].status == "completed" and len(upstream) == 1
    assert repr(upstream) == "Upstream(a=completed)"


async def test_a_bad_input_builder_fails_its_node() -> None:
    after = Say("after")
    dag = DAGAgent(
        "d",
        [Node(Say("bad"), input=lambda up: 42), Node(after, after="bad")],  # type: ignore[arg-type, return-value]
    )
    events = await events_of(Runner(dag))
    [error] = [e.error for e in events if e.error is not None]
    assert error.type == "ArgumentTypeError" and "node 'bad': input= must return" in error.message
    assert error.run_path == ("d", "bad")
    assert notices(events) == {"after": ("upstream_failed", "upstream node 'bad' failed")}
    assert after.calls == 0


async def test_structured_values_reach_dependants_as_json() -> None:
    async def valued(self: BaseAgent, input: AgentInput, ctx: RunContext) -> AsyncIterator[Any]:
        yield self.event(ctx, value={"score": 3})

    writer, model = echo("writer")
    dag = DAGAgent("d", [Custom("scorer", valued), Node(writer, after="scorer")])
    result = await Runner(dag).invoke("go")
    assert model.requests[0].messages[-1].content.endswith('[scorer] said: {"score": 3}')
    assert dag.results(result.history)["scorer"].value == {"score": 3}


# -- conditions ------------------------------------------------------------------------


async def test_a_false_condition_skips_the_node_and_dependants_still_run() -> None:
    skipped, later = Say("maybe"), Say("later")
    writer, model = echo("writer")
    dag = DAGAgent(
        "d",
        [
            Say("check", "no"),
            Node(skipped, after="check", when=lambda up: up["check"].text == "yes"),
            Node(later, after="maybe", when=lambda up: up["maybe"].skipped),
            Node(writer, after=["check", "maybe"]),
        ],
    )
    result = await Runner(dag).invoke("go")
    assert skipped.calls == 0 and later.calls == 1
    assert notices(result.events) == {"maybe": ("skipped", "its condition (when=) is false")}
    # a skipped dependency adds nothing to the default input
    assert model.requests[0].messages[-1].content.endswith("[check] said: no")
    statuses = {name: r.status for name, r in dag.results(result.history).items()}
    assert statuses == {
        "check": "completed",
        "maybe": "skipped",
        "later": "completed",
        "writer": "completed",
    }
    [event] = [e for e in result.events if e.agent_name == "maybe"]
    assert event.run_path == ("d", "maybe")


async def test_async_conditions_and_a_raising_condition_fails_the_node() -> None:
    async def later_on(upstream: Upstream) -> bool:
        await anyio.lowlevel.checkpoint()
        return True

    def broken(upstream: Upstream) -> bool:
        raise ValueError("cannot decide")

    ok, bad, after_bad = Say("ok"), Say("bad"), Say("after_bad")
    dag = DAGAgent(
        "d",
        [Node(ok, when=later_on), Node(bad, when=broken), Node(after_bad, after="bad")],
    )
    events = await events_of(Runner(dag))
    assert ok.calls == 1 and bad.calls == 0 and after_bad.calls == 0
    [error] = [e.error for e in events if e.error is not None]
    assert (error.type, error.message, error.run_path) == (
        "ValueError",
        "cannot decide",
        ("d", "bad"),
    )
    assert summary(events)["nodes"] == {
        "ok": "completed",
        "bad": "failed",
        "after_bad": "upstream_failed",
    }


# -- failures, exit, loops -------------------------------------------------------------


async def test_a_failing_node_fails_its_dependants_other_branches_finish_and_the_dag_fails() -> (
    None
):
    c, d, side = Say("c"), Say("d"), Say("side")
    dag = DAGAgent(
        "dag",
        [
            Say("a"),
            Node(Say("b", then="fail"), after="a"),
            Node(c, after="b"),
            Node(d, after=["c", "a"]),
            side,
        ],
    )
    after = Say("after")
    events = await events_of(Runner(SequentialAgent("flow", [dag, after])))
    lines = trace(events)
    assert "flow/dag/b error:RuntimeError" in lines and "flow/dag/side side here" in lines
    assert c.calls == d.calls == after.calls == 0
    assert notices(events) == {
        "c": ("upstream_failed", "upstream node 'b' failed"),
        "d": ("upstream_failed", "upstream node 'b' failed"),
    }
    done = summary(events)
    assert done["failed"] is True
    assert done["nodes"] == {
        "a": "completed",
        "b": "failed",
        "c": "upstream_failed",
        "side": "completed",
        "d": "upstream_failed",
    }
    with pytest.raises(RuntimeError, match="b failed"):
        await Runner(dag).invoke("go")
    results = dag.results(events)
    assert results["b"].error is not None and results["b"].error.type == "RuntimeError"


async def test_a_node_behind_two_failures_names_both() -> None:
    join = Say("join")
    dag = DAGAgent(
        "d",
        [
            Say("x", then="fail"),
            Say("y", then="fail"),
            Node(Say("mid"), after="x"),
            Node(join, after=["mid", "y"]),
        ],
    )
    events = await events_of(Runner(dag))
    [payload] = [e.output.custom for e in events if e.agent_name == "join" and e.output is not None]
    assert payload["reason"] == "upstream nodes 'x', 'y' failed"
    assert payload["failed_upstream"] == ["x", "y"] and join.calls == 0


async def test_exit_in_a_node_ends_the_whole_run_at_once() -> None:
    finished: list[str] = []

    async def slow(self: BaseAgent, input: AgentInput, ctx: RunContext) -> AsyncIterator[Any]:
        await anyio.sleep(5)
        finished.append(self.name)
        yield self.text_event(ctx, "too late")

    later, after = Say("later"), Say("after")
    dag = DAGAgent("d", [Custom("slow", slow), Say("quit", then="exit"), Node(later, after="quit")])
    with anyio.fail_after(3):
        events = await events_of(Runner(SequentialAgent("s", [dag, after])))
    assert trace(events) == ["s/d/quit quit here", "s/d/quit <exit>"]
    assert finished == [] and later.calls == after.calls == 0


async def test_a_loop_break_in_a_node_stops_the_dag_and_the_loop() -> None:
    later = Say("later")
    dag = DAGAgent("d", [Say("stop", then="break"), Node(later, after="stop")])
    events = await events_of(Runner(LoopAgent("loop", [dag], max_iterations=5)))
    assert later.calls == 0
    assert summary(events)["nodes"] == {"stop": "completed", "later": "not_run"}
    assert trace(events)[:2] == ["loop/d/stop stop here", "loop/d/stop <break done=True at=1>"]


async def test_a_dag_in_a_loop_runs_again_and_results_come_from_its_last_run() -> None:
    rounds = {"n": 0}

    async def counter(self: BaseAgent, input: AgentInput, ctx: RunContext) -> AsyncIterator[Any]:
        rounds["n"] += 1
        yield self.text_event(ctx, f"round {rounds['n']}")

    maybe = Say("maybe")
    dag = DAGAgent(
        "d",
        [
            Custom("count", counter),
            Node(maybe, after="count", when=lambda up: "1" in up["count"].text),
        ],
    )
    result = await Runner(LoopAgent("loop", [dag], max_iterations=2)).invoke("go")
    assert maybe.calls == 1
    results = dag.results(result.history)
    assert results["count"].text == "round 2" and results["maybe"].status == "skipped"
    assert results["maybe"].message is None


async def test_nested_dags() -> None:
    inner = DAGAgent("inner", [Say("x"), Node(Say("y"), after="x")])
    writer, model = echo("writer")
    outer = DAGAgent("outer", [inner, Node(writer, after="inner")])
    result = await Runner(outer).invoke("go")
    assert model.requests[0].messages[-1].content.endswith("[inner] said: y here")
    assert {n: r.status for n, r in outer.results(result.history).items()} == {
        "inner": "completed",
        "writer": "completed",
    }
    assert inner.results(result.history)["y"].text == "y here"


async def test_one_dag_serves_concurrent_runs() -> None:
    def answer(request: ModelRequest) -> str:
        return "summary of " + request.messages[0].content

    dag = DAGAgent(
        "d",
        [Say("a"), Node(ChatModelAgent("w", model=ScriptedModel(answer)), after="a")],
    )
    runner = Runner(dag)
    texts: dict[int, str] = {}

    async def go(i: int) -> None:
        texts[i] = (await runner.invoke(f"q{i}")).text

    async with anyio.create_task_group() as group:
        for i in range(20):
            group.start_soon(go, i)
    assert texts == {i: f"summary of q{i}" for i in range(20)}
