"""The live view's parts, rendered in this process: tree, fan-out progress, collapsing, footer."""

from __future__ import annotations

import io

import anyio
from rich.console import Console

from adk import AgentEvent, AgentOutput, Message, Runner
from adk.console.driver import RunSummary
from adk.console.listing import trajectory_tree
from adk.console.view import LiveView, collapse, footer_text
from adk.runner.trajectory import Trajectory
from tests.cli.cli_agents import fanout, support


def render(renderable: object) -> str:
    console = Console(file=io.StringIO(), width=100, color_system=None)
    console.print(renderable)
    out = console.file
    assert isinstance(out, io.StringIO)
    return out.getvalue()


def test_the_tree_highlights_the_active_path_and_counts_branches() -> None:
    async def events() -> list[AgentEvent]:
        return [e async for e in Runner(fanout).query("go")]

    collected = anyio.run(events)
    view = LiveView(Console(file=io.StringIO()), fanout, lambda run_id: RunSummary(run_id, "x"))
    view.active = ("research",)
    assert "▶ research" in render(view.tree()) and "▶ alpha" not in render(view.tree())
    first, *rest = collected
    view.event(first, "r")
    screen = render(view)
    assert f"▶ {first.agent_name}" in screen
    assert "branches 1/3" in screen
    other = next(e for e in rest if e.agent_name != first.agent_name)
    delta = AgentEvent(
        agent_name=other.agent_name,
        run_path=other.run_path,
        output=AgentOutput(message=Message.assistant("half a sen"), partial=True),
    )
    view.event(delta, "r")  # a streamed delta is not a finished branch
    screen = render(view)
    assert "branches 1/3" in screen and "half a sen" in screen
    for event in rest:
        view.event(event, "r")
    assert "branches 3/3" in render(view)


def test_long_results_are_collapsed_and_the_footer_adds_up() -> None:
    assert collapse("short\nline") == "short line"
    long = collapse("x" * 500)
    assert long.startswith("x" * 160) and long.endswith("… (+340 chars)")
    summary = RunSummary("r", "running", None, (), None, 2, 100, 20, 40, 0.0123, 1.25)
    assert footer_text(summary) == (
        "model calls 2 · tokens 120 (in 100 / out 20) · cached 40 · cost $0.0123 · 1.2s"
    )


def test_show_renders_a_trajectory_as_a_tree() -> None:
    async def recorded() -> Trajectory:
        runner = Runner(support, trajectories=True)
        await runner.invoke("Refund", run_id="t1")
        return await runner.trajectory("t1")

    trajectory = anyio.run(recorded)
    screen = render(trajectory_tree(trajectory, "interrupted"))
    assert "run t1 · interrupted · 1 model calls" in screen
    assert "execution 0 · paused" in screen
    assert '→ refund({"amount": 30})' in screen and "⏸ interrupted" in screen
    assert screen.count("⏸ interrupted") == 1  # not again for the Runner's event
