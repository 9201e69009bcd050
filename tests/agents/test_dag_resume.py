"""DAGAgent interrupts: the DAG pauses, and resumes in place from a durable store.

Each resume is a new Runner on a new store object over the same SQLite file,
as after a restart; nothing completed before the pause is called again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from adk import (
    AgentEvent,
    AgentInput,
    BaseAgent,
    ChatModelAgent,
    DAGAgent,
    ModelRequest,
    Node,
    RunContext,
    Runner,
    ScriptedModel,
    SQLiteStore,
    ToolCall,
    tool,
)
from tests.agents.helpers import Say

pytestmark = pytest.mark.anyio


@tool
def lookup(topic: str) -> str:
    """Look a topic up."""
    return f"facts about {topic}"


class Ask(BaseAgent):
    """Asks a question (an interrupt), then says the answer; ``asked`` is set after asking."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.asked = anyio.Event()

    async def run(self, input: AgentInput, ctx: RunContext) -> AsyncIterator[AgentEvent]:
        answer = ctx.answer_for("ok")
        if answer is None:
            yield self.interrupt_event(ctx, f"{self.name}: go on?", key="ok")
            self.asked.set()  # runs once the interrupt went past the DAG
            return
        yield self.text_event(ctx, f"{self.name} answered {answer}")


def fetcher(name: str, gate: anyio.Event | None = None) -> tuple[ChatModelAgent, ScriptedModel]:
    """Looks its topic up, then answers (two model calls); waits for ``gate`` first if given."""

    async def script(request: ModelRequest) -> Any:
        if gate is not None:
            await gate.wait()
        if request.messages[-1].role == "tool":
            return f"{name} found {request.messages[-1].content}"
        return ToolCall.of("lookup", topic=name)

    model = ScriptedModel(script)
    return ChatModelAgent(name, model=model, tools=[lookup]), model


def writer(name: str) -> tuple[ChatModelAgent, ScriptedModel]:
    """Answers with the last line of its prompt."""
    model = ScriptedModel(lambda r: f"{name} wrote from: {r.messages[-1].content}")
    return ChatModelAgent(name, model=model), model


def customs(events: list[AgentEvent], kind: str) -> list[dict[str, Any]]:
    return [
        e.output.custom
        for e in events
        if e.output is not None
        and isinstance(e.output.custom, dict)
        and e.output.custom.get("kind") == kind
    ]


async def test_an_interrupted_node_pauses_the_dag_and_resumes_in_place(tmp_path: Path) -> None:
    approve = Ask("approve")
    fetch_a, model_a = fetcher("fetch_a")
    fetch_b, model_b = fetcher("fetch_b", gate=approve.asked)  # finishes after the interrupt
    deep_b, model_deep = writer("deep_b")
    write, model_write = writer("write")

    def build() -> DAGAgent:
        return DAGAgent(
            "dag",
            [
                fetch_a,
                fetch_b,
                Node(Say("never"), when=lambda up: False),
                Node(approve, after=["fetch_a", "never"]),
                Node(deep_b, after="fetch_b"),
                Node(write, after=["approve", "deep_b"]),
            ],
        )

    path = tmp_path / "runs.db"
    with anyio.fail_after(10):
        paused = await Runner(build(), checkpoint_store=SQLiteStore(path)).invoke("go")
    [pending] = paused.interrupts
    assert pending.info == "approve: go on?" and paused.checkpoint_id is not None
    # fetch_b was running: it finished; its dependant did not start, nor did the writer
    assert (model_a.calls, model_b.calls, model_deep.calls, model_write.calls) == (2, 2, 0, 0)
    assert [n["node"] for n in customs(paused.events, "dag_node_skipped")] == ["never"]
    assert customs(paused.events, "dag_done") == []

    runner = Runner(build(), checkpoint_store=SQLiteStore(path))
    with anyio.fail_after(10):
        done = await runner.resume_invoke(paused.checkpoint_id, {pending.id: "yes"})
    assert done.interrupts == ()
    # nothing that completed before the pause was called again
    assert (model_a.calls, model_b.calls, model_deep.calls, model_write.calls) == (2, 2, 1, 1)
    # the resumed stream has only new events: no fetch, no second skip notice
    authors = [e.agent_name for e in done.events]
    assert sorted(authors[:2]) == ["approve", "deep_b"] and authors[2:] == ["write", "dag"]
    assert done.text == "write wrote from: " + (
        "For context: results of the earlier steps this step builds on:\n\n"
        "[approve] said: approve answered yes\n\n"
        "[deep_b] said: deep_b wrote from: For context: results of the earlier steps this "
        "step builds on:\n\n[fetch_b] said: fetch_b found facts about fetch_b"
    )
    [summary] = customs(done.events, "dag_done")
    assert summary["nodes"] == {
        "fetch_a": "completed",
        "fetch_b": "completed",
        "never": "skipped",
        "approve": "completed",
        "deep_b": "completed",
        "write": "completed",
    }
    # the whole run's history tells each node's story once
    assert len(customs(done.history, "dag_node_skipped")) == 1
    assert build().results(done.history)["fetch_a"].text == "fetch_a found facts about fetch_a"


async def test_two_questions_in_two_branches_are_answered_one_resume_at_a_time(
    tmp_path: Path,
) -> None:
    left, right = Ask("left"), Ask("right")
    join, model_join = writer("join")
    dag = DAGAgent("dag", [left, right, Node(join, after=["left", "right"])])
    runner = Runner(dag, checkpoint_store=SQLiteStore(tmp_path / "runs.db"))
    first = await runner.invoke("go")
    asked = {i.info: i for i in first.interrupts}
    assert set(asked) == {"left: go on?", "right: go on?"}
    assert first.checkpoint_id is not None

    second = await runner.resume_invoke(first.checkpoint_id, {asked["left: go on?"].id: "L"})
    [again] = second.interrupts
    assert again.id == asked["right: go on?"].id and model_join.calls == 0
    assert [e.text for e in second.events if e.text] == ["left answered L"]
    assert second.checkpoint_id is not None

    third = await runner.resume_invoke(second.checkpoint_id, {again.id: "R"})
    assert third.interrupts == () and model_join.calls == 1
    assert [e.agent_name for e in third.events] == ["right", "join", "dag"]


async def test_a_failure_while_another_node_waits_for_an_answer_pauses_then_fails(
    tmp_path: Path,
) -> None:
    ask = Ask("ask")
    after_bad = Say("after_bad")
    dag = DAGAgent("dag", [Node(ask), Say("bad", then="fail"), Node(after_bad, after="bad")])
    runner = Runner(dag, checkpoint_store=SQLiteStore(tmp_path / "runs.db"))
    events = [e async for e in runner.query("go")]
    # paused, not failed: the question is kept, the failure is settled on resume
    interrupt = events[-1].action.interrupted if events[-1].action else None
    assert interrupt is not None and interrupt.checkpoint_id is not None
    assert [e.error.type for e in events if e.error] == ["RuntimeError"]
    notices = customs(events, "dag_node_skipped")
    assert [(n["node"], n["status"]) for n in notices] == [("after_bad", "upstream_failed")]

    [pending] = interrupt.interrupts
    resumed = [e async for e in runner.resume(interrupt.checkpoint_id, {pending.id: "yes"})]
    assert [e.text for e in resumed if e.text] == ["ask answered yes"]
    assert customs(resumed, "dag_node_skipped") == []  # delivered before: not again
    [summary] = customs(resumed, "dag_done")
    assert summary["failed"] is True and summary["nodes"]["after_bad"] == "upstream_failed"
    assert after_bad.calls == 0
