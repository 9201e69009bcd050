from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import anyio
import pytest

from adk import (
    AgentEvent,
    AgentInput,
    AgentRunError,
    BaseAgent,
    ChatModelAgent,
    ErrorInfo,
    Message,
    ModelRateLimitError,
    RunContext,
    Runner,
    ScriptedModel,
    ServingLayer,
    ToolCall,
    tool,
)
from adk.models.base import ChatModel, ModelRequest, ModelResponse

pytestmark = pytest.mark.anyio


class Greeter(BaseAgent):
    """A custom agent written the way application code would."""

    async def run(self, input: AgentInput, ctx: RunContext) -> AsyncIterator[AgentEvent]:
        who = ctx.get("user", "stranger")
        yield self.text_event(ctx, f"Hello, {who}! You said: {input.messages[-1].content}")
        ctx.set("greeted", True)
        yield self.custom_event(ctx, {"mood": "cheerful"})
        yield self.exit_event(ctx)


class Crasher(BaseAgent):
    async def run(self, input: AgentInput, ctx: RunContext) -> AsyncIterator[AgentEvent]:
        yield self.text_event(ctx, "about to fail")
        raise RuntimeError("disk on fire")


class ErrorThenMore(BaseAgent):
    async def run(self, input: AgentInput, ctx: RunContext) -> AsyncIterator[AgentEvent]:
        yield self.error_event(ctx, KeyError("k"))
        yield self.text_event(ctx, "must not be seen")


async def test_custom_agent_events_are_stamped_and_session_values_shared() -> None:
    values: dict[str, Any] = {"user": "Ann"}
    events = [e async for e in Runner(Greeter("greeter")).query("hi", session_values=values)]
    assert [e.agent_name for e in events] == ["greeter"] * 3
    assert all(e.run_path == ("greeter",) for e in events)
    assert events[0].text == "Hello, Ann! You said: hi"
    assert events[1].output is not None and events[1].output.custom == {"mood": "cheerful"}
    assert events[2].action is not None and events[2].action.exit
    assert values == {"user": "Ann", "greeted": True}


async def test_run_takes_a_message_history() -> None:
    model = ScriptedModel(["fine"])
    agent = ChatModelAgent("a", model=model)
    history = [Message.user("hi"), Message.assistant("hello"), Message.user("how are you?")]
    events = [e async for e in Runner(agent).run(history)]
    assert events[-1].text == "fine"
    assert model.requests[0].messages == history


async def test_raised_exception_becomes_the_last_event() -> None:
    events = [e async for e in Runner(Crasher("crasher")).query("x")]
    assert [e.text for e in events[:-1]] == ["about to fail"]
    error = events[-1].error
    assert error is not None
    assert (error.type, error.message, error.run_path) == (
        "RuntimeError",
        "disk on fire",
        ("crasher",),
    )
    assert isinstance(error.exception, RuntimeError)


async def test_stream_ends_after_an_error_event() -> None:
    events = [e async for e in Runner(ErrorThenMore("e")).query("x")]
    assert len(events) == 1 and events[0].is_error


async def test_invoke_returns_result_with_text_events_and_usage() -> None:
    @tool
    def double(n: int) -> int:
        """Double n."""
        return 2 * n

    model = ScriptedModel([ToolCall.of("double", n=21), "42"])
    result = await Runner(ChatModelAgent("a", model=model, tools=[double])).invoke("double 21")
    assert result.text == "42"
    assert result.message == result.events[-1].message
    assert result.output == result.text
    assert len(result.events) == 3 and not any(e.partial for e in result.events)
    assert result.usage.prompt_tokens > 0 and result.usage.completion_tokens > 0
    first = result.events[0].message
    last = result.events[2].message
    assert first is not None and last is not None and first.usage and last.usage
    assert result.usage == first.usage + last.usage
    assert result.run_id and "RunResult(" in repr(result)


async def test_invoke_raises_the_live_exception_of_an_error_event() -> None:
    model = ScriptedModel([ModelRateLimitError("slow down", status_code=429)])
    with pytest.raises(ModelRateLimitError, match="slow down"):
        await Runner(ChatModelAgent("a", model=model)).invoke("x")
    with pytest.raises(RuntimeError, match="disk on fire"):
        await Runner(Crasher("c")).invoke("x")


async def test_invoke_raises_agent_run_error_for_a_deserialised_error() -> None:
    class Replayer(BaseAgent):
        async def run(self, input: AgentInput, ctx: RunContext) -> AsyncIterator[AgentEvent]:
            data = self.error_event(ctx, ValueError("bad")).model_dump_json()
            yield AgentEvent.model_validate_json(data)

    with pytest.raises(AgentRunError, match="ValueError in replayer: bad"):
        await Runner(Replayer("replayer")).invoke("x")


async def test_closing_the_stream_early_closes_the_agent() -> None:
    closed = anyio.Event()

    class Endless(BaseAgent):
        async def run(self, input: AgentInput, ctx: RunContext) -> AsyncIterator[AgentEvent]:
            try:
                while True:
                    yield self.text_event(ctx, "tick")
            finally:
                closed.set()

    async with aclosing(Runner(Endless("e")).query("x")) as stream:
        async for _ in stream:
            break
    assert closed.is_set()


async def test_cancelling_a_run_cancels_the_model_call() -> None:
    model = ScriptedModel(["late"], latency=30)
    runner = Runner(ChatModelAgent("a", model=model))
    with anyio.move_on_after(0.1) as scope:
        await runner.invoke("x")
    assert scope.cancelled_caught and model.calls == 1


async def test_every_model_call_goes_through_the_serving_layer() -> None:
    class CountingLayer(ServingLayer):
        def __init__(self) -> None:
            super().__init__()
            self.seen: list[tuple[str, str]] = []

        async def generate(self, model: ChatModel | str, request: ModelRequest) -> ModelResponse:
            self.seen.append(("generate", request.agent_name))
            return await super().generate(model, request)

        def stream(self, model: ChatModel | str, request: ModelRequest) -> Any:
            self.seen.append(("stream", request.agent_name))
            return super().stream(model, request)

    layer = CountingLayer()
    model = ScriptedModel(["one", "two"])
    runner = Runner(ChatModelAgent("a", model=model), serving=layer)
    await runner.invoke("x")
    [e async for e in runner.query("y", streaming=True)]
    assert layer.seen == [("generate", "a"), ("stream", "a")]


def test_runner_rejects_non_agents() -> None:
    with pytest.raises(TypeError, match="needs an agent"):
        Runner(object())  # type: ignore[arg-type]


def test_error_info_is_available_for_custom_reporting() -> None:
    info = ErrorInfo.from_exception(ValueError("v"), ("a",))
    assert info.type == "ValueError"
