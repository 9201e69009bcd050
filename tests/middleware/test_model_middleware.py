"""Middleware around model calls: order, changed requests, short-circuits, failures, retries."""

from __future__ import annotations

from typing import Any

import pytest

from adk import (
    ArgumentTypeError,
    ChatModelAgent,
    Message,
    Middleware,
    MiddlewareError,
    ModelRequest,
    ModelResponse,
    ModelServerError,
    Runner,
    ScriptedModel,
    ToolCall,
)
from adk.agents.guarding import call_model, stream_model
from adk.agents.turn import Toolset, Turn
from adk.state.context import RunContext

from .helpers import Recorder, add, collect, errors, texts

pytestmark = pytest.mark.anyio


async def test_runner_middleware_is_outermost_then_the_agents_in_list_order() -> None:
    log: list[str] = []
    model = ScriptedModel([ToolCall.of("add", a=1, b=2), "3"])
    agent = ChatModelAgent(
        "calc",
        model=model,
        tools=[add],
        middleware=[Recorder("a1", log), Recorder("a2", log)],
    )
    runner = Runner(agent, middleware=[Recorder("r1", log), Recorder("r2", log)])
    result = await runner.invoke("1+2?")
    assert result.text == "3"
    one_model_call = [
        "r1>model calc",
        "r2>model calc",
        "a1>model calc",
        "a2>model calc",
        "a2<model calc",
        "a1<model calc",
        "r2<model calc",
        "r1<model calc",
    ]
    one_tool_call = [
        "r1>tool calc:add",
        "r2>tool calc:add",
        "a1>tool calc:add",
        "a2>tool calc:add",
        "a2<tool calc:add",
        "a1<tool calc:add",
        "r2<tool calc:add",
        "r1<tool calc:add",
    ]
    assert log == one_model_call + one_tool_call + one_model_call


class AddInstruction(Middleware):
    async def before_model(self, request: ModelRequest) -> ModelRequest | ModelResponse:
        request = ModelRequest(
            messages=[Message.system("Answer in French."), *request.messages],
            tools=request.tools,
            params={**request.params, "temperature": 0.1},
            agent_name=request.agent_name,
            call_id=request.call_id,
        )
        return request


class Shout(Middleware):
    async def after_model(self, request: ModelRequest, response: ModelResponse) -> ModelResponse:
        message = response.message.model_copy(update={"content": response.message.content.upper()})
        return ModelResponse(message=message, usage=response.usage)


async def test_a_middleware_changes_the_request_and_the_response() -> None:
    model = ScriptedModel(["bonjour"])
    agent = ChatModelAgent("fr", model=model, middleware=[AddInstruction(), Shout()])
    events = await collect(Runner(agent), "hello")
    assert texts(events) == ["BONJOUR"]
    request = model.requests[0]
    assert request.messages[0].content == "Answer in French."
    assert request.params == {"temperature": 0.1}


class Cache(Middleware):
    """Answers a request it saw before without calling the model."""

    def __init__(self) -> None:
        self.answers: dict[str, ModelResponse] = {}

    async def model_call(self, request: ModelRequest, call_next: Any) -> ModelResponse:
        key = request.messages[-1].content
        if key in self.answers:
            return self.answers[key]
        response: ModelResponse = await call_next(request)
        self.answers[key] = response
        return response


@pytest.mark.parametrize("streaming", [False, True])
async def test_a_short_circuit_makes_no_model_call(streaming: bool) -> None:
    model = ScriptedModel(["Paris is the capital."])
    cache = Cache()
    runner = Runner(ChatModelAgent("geo", model=model), middleware=[cache], streaming=streaming)
    first = await collect(runner, "Capital of France?")
    second = await collect(runner, "Capital of France?")
    assert model.calls == 1  # the second run was answered from the cache
    assert texts(first) == texts(second) == ["Paris is the capital."]
    if streaming:  # a cached answer still streams (as one delta)
        assert [e.text for e in second if e.partial] == ["Paris is the capital."]


class Boom(Middleware):
    def __init__(self, where: str) -> None:
        self.where = where

    async def before_model(self, request: ModelRequest) -> ModelRequest | ModelResponse:
        if self.where == "before":
            raise RuntimeError("no model today")
        return request

    async def after_model(self, request: ModelRequest, response: ModelResponse) -> ModelResponse:
        if self.where == "after":
            raise RuntimeError("bad answer")
        return response


@pytest.mark.parametrize("streaming", [False, True])
@pytest.mark.parametrize("where", ["before", "after"])
async def test_a_raising_middleware_ends_the_agent_with_an_error_event(
    where: str, streaming: bool
) -> None:
    model = ScriptedModel(["hi"])
    agent = ChatModelAgent("a", model=model, middleware=[Boom(where)])
    events = await collect(Runner(agent, streaming=streaming), "hi")  # never raises
    assert errors(events) == ["MiddlewareError"]
    assert events[-1].error is not None
    assert "Boom.model_call raised RuntimeError" in events[-1].error.message
    assert texts(events) == []
    assert model.calls == (1 if where == "after" else 0)
    with pytest.raises(MiddlewareError) as caught:
        await Runner(
            ChatModelAgent("b", model=ScriptedModel(["x"]), middleware=[Boom(where)])
        ).invoke("x")
    assert isinstance(caught.value.__cause__, RuntimeError)


async def test_a_model_error_passing_through_middleware_keeps_its_type() -> None:
    log: list[str] = []
    model = ScriptedModel([ModelServerError("down", status_code=503)])
    events = await collect(
        Runner(ChatModelAgent("a", model=model), middleware=[Recorder("r", log)]), "x"
    )
    assert errors(events) == ["ModelServerError"]
    assert log == ["r>model a"]


class Retry(Middleware):
    """Retries a model call that failed with a retryable model error."""

    def __init__(self, attempts: int) -> None:
        self.attempts = attempts

    async def model_call(self, request: ModelRequest, call_next: Any) -> ModelResponse:
        for attempt in range(self.attempts):
            try:
                response: ModelResponse = await call_next(request)
                return response
            except ModelServerError:
                if attempt == self.attempts - 1:
                    raise
        raise AssertionError("unreachable")


async def test_a_retry_middleware_calls_the_model_again() -> None:
    model = ScriptedModel([ModelServerError("down", status_code=503), "ok"])
    result = await Runner(ChatModelAgent("a", model=model), middleware=[Retry(3)]).invoke("x")
    assert result.text == "ok"
    assert model.calls == 2
    model = ScriptedModel([ModelServerError("down", status_code=503)] * 2)
    events = await collect(Runner(ChatModelAgent("a", model=model), middleware=[Retry(2)]), "x")
    assert errors(events) == ["ModelServerError"]  # given up: the model's own error
    assert model.calls == 2


async def test_streaming_middleware_sees_the_request_and_the_assembled_response() -> None:
    seen: list[tuple[bool, str]] = []

    class Spy(Middleware):
        async def after_model(
            self, request: ModelRequest, response: ModelResponse
        ) -> ModelResponse:
            seen.append((request.stream, response.message.content))
            return await Shout().after_model(request, response)

    model = ScriptedModel(["a streamed answer"], chunk_chars=4)
    runner = Runner(ChatModelAgent("s", model=model, middleware=[Spy()]), streaming=True)
    events = await collect(runner, "x")
    deltas = [e.text for e in events if e.partial]
    assert "".join(deltas) == "a streamed answer"  # the model's deltas, as they came
    assert len(deltas) > 1
    assert seen == [(True, "a streamed answer")]
    assert texts(events) == ["A STREAMED ANSWER"]  # the complete message is the middleware's


def test_bad_arguments_name_themselves() -> None:
    model = ScriptedModel(["x"])
    with pytest.raises(ArgumentTypeError, match="middleware must hold Middleware"):
        ChatModelAgent("a", model=model, middleware=[object()])  # type: ignore[list-item]
    with pytest.raises(ArgumentTypeError, match="middleware must be a list"):
        ChatModelAgent("a", model=model, middleware=Shout())  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match="Runner: middleware must hold"):
        Runner(ChatModelAgent("a", model=model), middleware=["log"])  # type: ignore[list-item]


async def test_nothing_configured_means_the_plain_serving_calls() -> None:
    """Zero cost when unused: no run state, the serving layer's own methods, no tool invoker."""
    agent = ChatModelAgent("plain", model=ScriptedModel(["x"]), tools=[add])
    runner = Runner(agent)
    assert runner.guards is None
    ctx = RunContext.create()
    turn = Turn(agent, ctx, Toolset({}, ""), [])
    assert call_model(agent, turn, "k") == ctx.serving.generate
    assert stream_model(agent, turn, "k") == ctx.serving.stream
    assert ctx.guards is None
    assert ctx.tool_invoker("plain") is None
    guarded = ChatModelAgent("g", model=ScriptedModel(["x"]), middleware=[Shout()])
    assert call_model(guarded, Turn(guarded, ctx, Toolset({}, ""), []), "k") != ctx.serving.generate
    assert Runner(guarded).guards is not None
