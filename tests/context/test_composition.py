"""GC with parallel branches, agent tools and sessions (each agent manages its own turn)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adk import (
    AgentTool,
    ChatModelAgent,
    ModelRequest,
    ParallelAgent,
    Runner,
    ScriptedModel,
    ToolCall,
)
from adk.state.context_policy import GC_COMPLETE
from tests.context.helpers import RESULT_CHARS, fetch, looping_agent, small_policy, stubs

pytestmark = pytest.mark.anyio


def gc_agents(events: list[Any]) -> list[str]:
    """The agents that delivered a gc_complete event, in order."""
    return [
        e.agent_name
        for e in events
        if e.output is not None
        and isinstance(e.output.custom, dict)
        and e.output.custom.get("kind") == GC_COMPLETE
    ]


def reader(name: str, pages: int) -> tuple[ChatModelAgent, ScriptedModel]:
    agent, model = looping_agent(pages, None)
    agent = ChatModelAgent(name, model=model, tools=[fetch], max_iterations=40)
    return agent, model


async def test_parallel_branches_collect_their_own_turns() -> None:
    (left, left_model), (right, right_model) = reader("left", 8), reader("right", 10)
    runner = Runner(ParallelAgent("both", [left, right]), context=small_policy())
    events = [e async for e in runner.query("read")]
    assert {"left", "right"} <= set(gc_agents(events))
    for model in (left_model, right_model):
        assert stubs(list(model.requests[-1].messages))


async def test_an_agent_tool_collects_inside_its_own_run() -> None:
    inner, inner_model = reader("inner", 8)

    def outer_script(request: ModelRequest) -> Any:
        if request.messages[-1].role == "tool":
            return "outer done"
        return ToolCall.of("inner", request="read everything")

    outer_model = ScriptedModel(outer_script)
    outer = ChatModelAgent("outer", model=outer_model, tools=[AgentTool(inner)])
    result = await Runner(outer, context=small_policy()).invoke("go")
    assert result.text == "outer done"
    assert stubs(list(inner_model.requests[-1].messages))
    assert not stubs(list(outer_model.requests[-1].messages))


async def test_a_session_keeps_the_full_history(tmp_path: Path) -> None:
    db = str(tmp_path / "sessions.sqlite")
    agent, model = looping_agent(8, small_policy())
    await Runner(agent, checkpoint_store=db).invoke("read", session_id="s1")
    assert stubs(list(model.requests[-1].messages))  # GC acted during the turn
    # The next turn, without a policy, sees every stored result in full.
    plain, plain_model = looping_agent(8, None)
    await Runner(plain, checkpoint_store=db).invoke("and again?", session_id="s1")
    first = list(plain_model.requests[0].messages)
    results = [m for m in first if m.role == "tool"]
    assert len(results) == 8 and not stubs(first)
    assert all(len(m.content) > RESULT_CHARS for m in results)


async def test_a_transferred_to_agent_collects_its_turn() -> None:
    agent, model = reader("reader", 8)
    router_model = ScriptedModel([ToolCall.of("transfer_to_agent", agent_name="reader")])
    router = ChatModelAgent("router", model=router_model, sub_agents=[agent])
    events = [e async for e in Runner(router, context=small_policy()).query("read")]
    assert gc_agents(events) and set(gc_agents(events)) == {"reader"}
    assert stubs(list(model.requests[-1].messages))
    assert not any(e.is_error for e in events)
