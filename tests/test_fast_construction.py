"""Hot-path objects built without validation are exactly what validation builds.

Messages, events and usage figures adk makes from data it already holds skip
pydantic validation (see ``adk.messages.trusted``); these tests pin that the
result is indistinguishable from the validated model, and that unusual input
still goes through validation.
"""

from __future__ import annotations

import copy
import gc
from typing import Any

import pydantic
import pytest

from adk import (
    AgentAction,
    AgentEvent,
    AgentOutput,
    ChatModelAgent,
    Message,
    RunContext,
    Runner,
    ScriptedModel,
    ToolCall,
    Usage,
    tool,
)
from adk.agents.base import BaseAgent
from adk.models.base import ModelRequest

pytestmark = pytest.mark.anyio


def same(fast: pydantic.BaseModel, slow: pydantic.BaseModel) -> None:
    assert type(fast) is type(slow)
    assert fast == slow
    assert fast.model_fields_set == slow.model_fields_set
    assert fast.model_dump() == slow.model_dump()
    assert fast.model_dump_json() == slow.model_dump_json()
    assert repr(fast) == repr(slow)
    assert list(fast.__dict__) == list(slow.__dict__)  # field order, for iteration and dumps
    assert copy.deepcopy(fast) == slow
    assert type(slow).model_validate_json(fast.model_dump_json()) == slow


def test_message_constructors_equal_validated_messages() -> None:
    call = ToolCall(id="c1", name="add", arguments='{"a": 1}')
    usage = Usage(prompt_tokens=3, completion_tokens=1)
    same(Message.system("be brief"), Message(role="system", content="be brief"))
    same(Message.user("hi"), Message(role="user", content="hi", name=None))
    same(Message.user("hi", name="ann"), Message(role="user", content="hi", name="ann"))
    same(
        Message.assistant(),
        Message(role="assistant", content="", tool_calls=(), name=None, usage=None),
    )
    same(
        Message.assistant("x", tool_calls=[call], name="bot", usage=usage),
        Message(role="assistant", content="x", tool_calls=(call,), name="bot", usage=usage),
    )
    same(
        Message.tool("3", tool_call_id="c1", name="add"),
        Message(role="tool", content="3", tool_call_id="c1", name="add"),
    )
    assert hash(Message.user("hi")) == hash(Message(role="user", content="hi", name=None))


def test_message_constructors_still_validate_unusual_input() -> None:
    class Text(str):
        pass

    converted = Message.user(Text("hi"))
    assert type(converted.content) is str
    with pytest.raises(pydantic.ValidationError):
        Message.user(3)  # type: ignore[arg-type]
    with pytest.raises(pydantic.ValidationError):
        Message.tool("r", tool_call_id=5, name="t")  # type: ignore[arg-type]
    from_dict = Message.assistant(tool_calls=[{"id": "c", "name": "n"}])  # type: ignore[list-item]
    assert from_dict.tool_calls == (ToolCall(id="c", name="n"),)


class _Plain(BaseAgent):
    async def run(self, input: Any, ctx: RunContext) -> Any:  # pragma: no cover - not run
        yield self.text_event(ctx, "hi")


def test_agent_events_equal_validated_events() -> None:
    agent = _Plain("plain")
    ctx = RunContext.create(run_path=("root", "plain"))
    message = Message.assistant("hello")
    action = AgentAction.exit_run()
    for kwargs in (
        {"message": message},
        {"message": message, "partial": True},
        {"message": message, "action": action},
        {"action": action},
        {"custom": {"k": 1}},
        {"message": message, "value": {"answer": 42}},
    ):
        fast = agent.event(ctx, **kwargs)
        output = None
        if any(kwargs.get(name) is not None for name in ("message", "custom", "value")):
            extra = {"value": kwargs["value"]} if "value" in kwargs else {}
            output = AgentOutput(
                message=kwargs.get("message"),
                partial=kwargs.get("partial", False),
                custom=kwargs.get("custom"),
                **extra,
            )
        slow = AgentEvent(
            agent_name="plain",
            run_path=("root", "plain"),
            output=output,
            action=kwargs.get("action"),
        )
        same(fast, slow)
        if output is not None:
            assert fast.output is not None
            same(fast.output, output)


def test_agent_events_validate_what_is_not_a_model_yet() -> None:
    agent = _Plain("plain")
    ctx = RunContext.create(run_path=("plain",))
    event = agent.event(ctx, message={"role": "user", "content": "x"})  # type: ignore[arg-type]
    assert event.message == Message.user("x")
    assert agent.event(ctx, message=Message.user("x"), partial=1).partial is True  # type: ignore[arg-type]
    with pytest.raises(pydantic.ValidationError):
        agent.event(ctx, action={"exit": "not a bool"})  # type: ignore[arg-type]


async def test_scripted_answers_equal_validated_messages() -> None:
    call = ToolCall(id="c1", name="add", arguments='{"a": 1, "b": 2}')
    named = Message(role="assistant", content="hi", name="bot")
    model = ScriptedModel(["text", call, [call, call], named])
    request = ModelRequest(messages=[Message.user("q")])
    for expected_content, expected_calls, expected_name in (
        ("text", (), None),
        ("", (call,), None),
        ("", (call, call), None),
        ("hi", (), "bot"),
    ):
        response = await model.generate(request)
        usage = response.usage
        assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
        same(
            usage,
            Usage(prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens),
        )
        same(
            response.message,
            Message(
                role="assistant",
                content=expected_content,
                tool_calls=expected_calls,
                name=expected_name,
                usage=usage,
            ),
        )


@tool(run_in_thread=False)
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


async def test_a_finished_run_leaves_no_cyclic_garbage() -> None:
    """A run's objects are freed as soon as it ends, without waiting for the collector."""

    def script(request: ModelRequest) -> str | ToolCall:
        if request.messages[-1].role == "tool":
            return "3"
        return ToolCall(id="c1", name="add", arguments='{"a": 1, "b": 2}')

    runner = Runner(ChatModelAgent("assistant", model=ScriptedModel(script), tools=[add]))
    await runner.invoke("1 + 2?")
    gc.collect()
    gc.disable()
    try:
        for _ in range(5):
            result = await runner.invoke("1 + 2?")
            assert result.text == "3"
            async for _event in runner.query("1 + 2?"):
                pass
        del result
        assert gc.collect() == 0
    finally:
        gc.enable()
