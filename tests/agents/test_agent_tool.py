from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from adk import (
    AgentTool,
    ChatModelAgent,
    LoopAgent,
    Message,
    ModelRequest,
    ParallelAgent,
    Runner,
    ScriptedModel,
    ToolCall,
    ToolContext,
    tool,
)
from tests.agents.helpers import Say, events_of, trace

pytestmark = pytest.mark.anyio


def ask(tool_name: str, request: str, call_id: str | None = None) -> ToolCall:
    return ToolCall.of(tool_name, id=call_id, request=request)


async def test_agent_tool_returns_the_inner_final_message_and_shares_session_values() -> None:
    @tool
    def remember(ctx: ToolContext) -> str:
        """Store a fact."""
        ctx.set("inner_saw", ctx.get("secret"))
        return "stored"

    inner_model = ScriptedModel([ToolCall.of("remember"), "Paris is the capital."])
    inner = ChatModelAgent(
        "geo", description="Answers geography questions", model=inner_model, tools=[remember]
    )
    outer_model = ScriptedModel([ask("geo", "capital of France?", "c1"), "It is Paris."])
    outer = ChatModelAgent("assistant", model=outer_model, tools=[AgentTool(inner)])
    values: dict[str, Any] = {"secret": 42}
    result = await Runner(outer).invoke("What is the capital of France?", session_values=values)
    assert result.text == "It is Paris."
    assert values["inner_saw"] == 42
    spec = outer_model.requests[0].tools[0]
    assert (spec.name, spec.description) == ("geo", "Answers geography questions")
    assert spec.parameters["required"] == ["request"]
    tool_message = outer_model.requests[1].messages[-1]
    assert tool_message == Message.tool("Paris is the capital.", tool_call_id="c1", name="geo")
    assert inner_model.requests[0].messages == [Message.user("capital of France?")]
    # not forwarded: only the outer agent's own events are in the stream
    assert {e.agent_name for e in result.events} == {"assistant"}


async def test_input_model_and_full_history() -> None:
    class Query(BaseModel):
        city: str
        days: int = 1

    inner_model = ScriptedModel(["sunny"])
    inner = ChatModelAgent("weather", model=inner_model)
    agent_tool = AgentTool(inner, input_model=Query, full_history=True, name="forecast")
    outer_model = ScriptedModel([ToolCall.of("forecast", city="Oslo", days=2), "Sunny in Oslo."])
    outer = ChatModelAgent("assistant", model=outer_model, tools=[agent_tool])
    await Runner(outer).invoke("Weather in Oslo?")
    assert outer_model.requests[0].tools[0].parameters["required"] == ["city"]
    contents = [m.content for m in inner_model.requests[0].messages]
    assert contents[0] == "Weather in Oslo?"
    assert contents[1].startswith("For context: [assistant] called tool 'forecast'")
    assert contents[-1] == '{"city":"Oslo","days":2}'


async def test_inner_exit_and_transfer_stay_inside_and_errors_become_tool_errors() -> None:
    specialist = ChatModelAgent("specialist", model=ScriptedModel(["special answer"]))
    transferring = ChatModelAgent(
        "desk",
        model=ScriptedModel([ToolCall.of("transfer_to_agent", agent_name="specialist")]),
        sub_agents=[specialist],
    )
    quitter = Say("quitter", "bye", then="exit")
    failing = Say("failing", then="fail")
    outer_model = ScriptedModel(
        [
            [ask("desk", "q1"), ask("quitter", "q2"), ask("failing", "q3")],
            "outer goes on",
        ]
    )
    outer = ChatModelAgent(
        "outer",
        model=outer_model,
        tools=[
            AgentTool(transferring),
            AgentTool(quitter, forward_events=True),
            AgentTool(failing),
        ],
    )
    events = await events_of(Runner(outer))
    assert events[-1].text == "outer goes on"
    results = [m.content for m in outer_model.requests[1].messages if m.role == "tool"]
    assert results == [
        "special answer",
        "bye",
        "Error: tool 'failing' raised RuntimeError: failing failed",
    ]
    forwarded = [e for e in events if e.agent_name == "quitter"]
    assert [e.text for e in forwarded] == ["bye", ""]
    assert forwarded[1].action is not None and not forwarded[1].action.exit  # exit stayed inside


async def test_forwarded_events_carry_the_outer_path_and_nested_tools_prefix_again() -> None:
    leaf = ChatModelAgent("leaf", model=ScriptedModel(["leaf answer"]))
    middle_model = ScriptedModel([ask("leaf", "deep question"), "middle answer"])
    middle = ChatModelAgent(
        "middle", model=middle_model, tools=[AgentTool(leaf, forward_events=True)]
    )
    top_model = ScriptedModel([ask("middle", "question"), "top answer"])
    top = ChatModelAgent("top", model=top_model, tools=[AgentTool(middle, forward_events=True)])
    events = await events_of(Runner(top))
    assert trace(events) == [
        "top calls:middle",
        "top/middle calls:leaf",
        "top/middle/leaf leaf answer",
        "top/middle result:leaf answer",
        "top/middle middle answer",
        "top result:middle answer",
        "top top answer",
    ]


async def test_forwarded_streaming_deltas_and_agent_tool_inside_parallel_and_loop() -> None:
    def inner_answer(request: ModelRequest) -> str:
        return f"inner handled {request.messages[-1].content}"

    inner = ChatModelAgent("inner", model=ScriptedModel(inner_answer, chunk_chars=4))

    def caller_script(request: ModelRequest) -> Any:
        if request.messages[-1].role == "tool":
            return f"{request.agent_name} done"
        return ask("inner", f"job for {request.agent_name}")

    branches = [
        ChatModelAgent(
            name,
            model=ScriptedModel(caller_script),
            tools=[AgentTool(inner, forward_events=True)],
        )
        for name in ("w1", "w2")
    ]
    loop = LoopAgent("loop", [ParallelAgent("fan", branches)], max_iterations=2)
    events = [e async for e in Runner(loop, streaming=True).query("go")]
    inner_partials = [e for e in events if e.partial and e.agent_name == "inner"]
    assert {e.run_path for e in inner_partials} == {
        ("loop", "fan", "w1", "inner"),
        ("loop", "fan", "w2", "inner"),
    }
    finals = [e.text for e in events if not e.partial and e.agent_name == "inner"]
    assert sorted(finals) == sorted(["inner handled job for w1", "inner handled job for w2"] * 2)
