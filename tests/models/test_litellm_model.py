"""LiteLLMModel against a real OpenAI-compatible server on loopback, through litellm."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import aclosing
from typing import Any

import pytest

from adk import (
    ChatModelAgent,
    ContextWindowExceededError,
    LiteLLMModel,
    Message,
    ModelAuthenticationError,
    ModelBadRequestError,
    ModelConnectionError,
    ModelError,
    ModelRateLimitError,
    ModelRequest,
    ModelServerError,
    ModelTimeoutError,
    RetryPolicy,
    Runner,
    ToolCall,
    ToolSpec,
    tool,
)
from adk.models._openai_format import (
    chunk_from_litellm,
    messages_to_openai,
    response_from_litellm,
    usage_from,
)
from adk.models.base import ChunkAssembler, ModelChunk, ModelResponse
from tests.support.openai_server import OpenAIServer, Reply, ScriptedCall, start_server

pytestmark = pytest.mark.filterwarnings(
    # litellm's own pydantic models, built on first use
    "ignore:Item .* is using the `ReadOnly` qualifier:UserWarning"
)

FAST = RetryPolicy(initial_backoff=0.01, max_backoff=0.05)
ADD = ToolSpec(
    name="add",
    description="Add two integers.",
    parameters={
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a", "b"],
    },
)


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with start_server() as running:
        yield running


def make_model(server: OpenAIServer, **options: Any) -> LiteLLMModel:
    options.setdefault("retry", FAST)
    options.setdefault("timeout", 10)
    return LiteLLMModel("openai/test-model", api_base=server.base_url, api_key="test", **options)


def ask(text: str = "hi", **fields: Any) -> ModelRequest:
    return ModelRequest(messages=[Message.system("Be brief."), Message.user(text)], **fields)


async def collect(model: LiteLLMModel, request: ModelRequest) -> list[ModelChunk]:
    return [chunk async for chunk in model.stream(request)]


def assembled(chunks: list[ModelChunk]) -> ModelResponse:
    assembler = ChunkAssembler()
    for chunk in chunks:
        assembler.add(chunk)
    return assembler.response()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- answers -------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_text_answer_with_usage_and_cached_tokens(server: OpenAIServer) -> None:
    server.enqueue(Reply.text("Hello!", prompt_tokens=120, completion_tokens=3, cached_tokens=96))
    model = make_model(server, temperature=0.1, max_tokens=50)

    response = await model.generate(ask(params={"temperature": 0.7}))

    assert response.message == Message.assistant("Hello!", usage=response.usage)
    assert response.usage.prompt_tokens == 120
    assert response.usage.completion_tokens == 3
    assert response.usage.cached_tokens == 96
    assert response.finish_reason == "stop"
    assert response.model == "test-model"
    [body] = server.requests
    assert body["model"] == "test-model"
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
    ]
    assert body["temperature"] == 0.7  # the request's params win over the constructor's
    assert body["max_tokens"] == 50
    assert "tools" not in body
    assert not body.get("stream")
    assert not any(key.startswith("_") or "retries" in key for key in body)


@pytest.mark.anyio
async def test_tool_calls_round_trip(server: OpenAIServer) -> None:
    server.enqueue(
        Reply.calls(
            ScriptedCall("add", '{"a": 1, "b": 2}', id="call_a"),
            ScriptedCall("add", '{"a": 3, "b": 4}', id="call_b"),
        )
    )
    earlier = ToolCall(id="call_0", name="add", arguments='{"a": 0, "b": 0}')
    request = ModelRequest(
        messages=[
            Message.user("add things"),
            Message.assistant(tool_calls=[earlier]),
            Message.tool("0", tool_call_id="call_0", name="add"),
        ],
        tools=[ADD],
    )

    response = await make_model(server).generate(request)

    assert response.message.content == ""
    assert response.message.tool_calls == (
        ToolCall(id="call_a", name="add", arguments='{"a": 1, "b": 2}'),
        ToolCall(id="call_b", name="add", arguments='{"a": 3, "b": 4}'),
    )
    assert response.finish_reason == "tool_calls"
    [body] = server.requests
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "add",
                "description": "Add two integers.",
                "parameters": ADD.parameters,
            },
        }
    ]
    sent_call = body["messages"][1]
    assert sent_call["role"] == "assistant"
    assert sent_call.get("content") is None  # litellm drops the None we send
    assert sent_call["tool_calls"] == [
        {
            "id": "call_0",
            "type": "function",
            "function": {"name": "add", "arguments": '{"a": 0, "b": 0}'},
        }
    ]
    assert body["messages"][2] == {
        "role": "tool",
        "content": "0",
        "tool_call_id": "call_0",
        "name": "add",
    }


@pytest.mark.anyio
async def test_streamed_text_adds_up_to_the_complete_answer(server: OpenAIServer) -> None:
    reply = Reply.text("The quick brown fox.", prompt_tokens=40, cached_tokens=32, chunk_chars=3)
    server.enqueue(reply, reply)
    model = make_model(server)

    complete = await model.generate(ask())
    chunks = await collect(model, ask())

    assert len([chunk for chunk in chunks if chunk.content]) == 7
    assert assembled(chunks) == complete
    assert chunks[-1].usage is not None and chunks[-1].usage.cached_tokens == 32
    streamed = server.requests[1]
    assert streamed["stream"] is True
    assert streamed["stream_options"] == {"include_usage": True}


@pytest.mark.anyio
async def test_streamed_tool_call_deltas_add_up_to_the_complete_answer(
    server: OpenAIServer,
) -> None:
    reply = Reply.calls(
        ScriptedCall("add", '{"a": 10, "b": 20}'),
        ScriptedCall("add", '{"a": 30, "b": 40}'),
        content="Adding.",
        chunk_chars=5,
        cached_tokens=8,
    )
    server.enqueue(reply, reply)
    model = make_model(server)

    complete = await model.generate(ask(tools=[ADD]))
    chunks = await collect(model, ask(tools=[ADD]))

    deltas = [delta for chunk in chunks for delta in chunk.tool_calls]
    assert {delta.index for delta in deltas} == {0, 1}
    assert len(deltas) > 4  # arguments really arrive in pieces
    assert assembled(chunks) == complete
    assert complete.message.content == "Adding."
    assert [call.parsed_arguments() for call in complete.message.tool_calls] == [
        {"a": 10, "b": 20},
        {"a": 30, "b": 40},
    ]
    assert complete.usage.cached_tokens == 8


@pytest.mark.anyio
async def test_closing_a_stream_early_is_clean(server: OpenAIServer) -> None:
    server.enqueue(Reply.text("one two three four five", chunk_chars=2), "after")
    model = make_model(server)

    async with aclosing(model.stream(ask())) as stream:
        async for chunk in stream:
            assert chunk.content
            break

    assert (await model.generate(ask())).message.content == "after"


# -- retries and errors --------------------------------------------------------------------------


@pytest.mark.anyio
async def test_rate_limit_then_success_retries_once(server: OpenAIServer) -> None:
    server.enqueue(Reply.error(429, "slow down"), Reply.text("ok"))

    response = await make_model(server).generate(ask())

    assert response.message.content == "ok"
    assert len(server.requests) == 2


@pytest.mark.anyio
async def test_retry_after_header_sets_the_wait(server: OpenAIServer) -> None:
    server.enqueue(Reply.error(429, retry_after="0.3"), Reply.text("ok"))
    model = make_model(server, retry=RetryPolicy(initial_backoff=0.001, max_backoff=5))

    started = time.monotonic()
    await model.generate(ask())

    assert time.monotonic() - started >= 0.3
    assert len(server.requests) == 2


@pytest.mark.anyio
async def test_retry_after_is_capped_by_max_backoff(server: OpenAIServer) -> None:
    server.enqueue(Reply.error(429, retry_after=3600), Reply.text("ok"))
    model = make_model(server, retry=RetryPolicy(initial_backoff=0.001, max_backoff=0.05))

    started = time.monotonic()
    await model.generate(ask())

    assert time.monotonic() - started < 2


@pytest.mark.anyio
async def test_rate_limit_that_persists_raises_after_all_attempts(server: OpenAIServer) -> None:
    server.handler = lambda body: Reply.error(429, "quota")
    model = make_model(server, retry=RetryPolicy(max_retries=1, initial_backoff=0.01))

    with pytest.raises(ModelRateLimitError) as caught:
        await model.generate(ask())

    assert caught.value.status_code == 429
    assert caught.value.retryable
    assert len(server.requests) == 2


@pytest.mark.anyio
async def test_permanent_server_error_uses_every_attempt(server: OpenAIServer) -> None:
    server.handler = lambda body: Reply.error(500, "the model crashed")

    with pytest.raises(ModelServerError) as caught:
        await make_model(server).generate(ask())

    error = caught.value
    assert len(server.requests) == FAST.max_retries + 1 == 4
    assert error.status_code == 500
    assert str(error).startswith("model 'openai/test-model' at attempt 4/4: 500 ")
    assert "the model crashed" in str(error)
    assert type(error.__cause__).__module__.startswith("litellm")


@pytest.mark.anyio
async def test_authentication_error_is_not_retried(server: OpenAIServer) -> None:
    server.handler = lambda body: Reply.error(401, "bad key")

    with pytest.raises(ModelAuthenticationError) as caught:
        await make_model(server).generate(ask())

    assert caught.value.status_code == 401
    assert "attempt 1/4: 401" in str(caught.value)
    assert len(server.requests) == 1


@pytest.mark.anyio
async def test_missing_api_key_is_an_authentication_error_without_retries(
    server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    model = LiteLLMModel("openai/test-model", retry=FAST, api_base=server.base_url)

    with pytest.raises(ModelAuthenticationError) as caught:
        await model.generate(ask())

    assert "attempt 1/4" in str(caught.value)
    assert "api_key" in str(caught.value)
    assert server.requests == []


@pytest.mark.anyio
async def test_bad_request_and_context_window_are_not_retried(server: OpenAIServer) -> None:
    server.enqueue(
        Reply.error(400, "unknown parameter 'foo'"),
        Reply.error(
            400,
            "This model's maximum context length is 8192 tokens.",
            code="context_length_exceeded",
        ),
    )
    model = make_model(server)

    with pytest.raises(ModelBadRequestError) as bad:
        await model.generate(ask())
    with pytest.raises(ContextWindowExceededError) as too_long:
        await model.generate(ask())

    assert type(bad.value) is ModelBadRequestError
    assert bad.value.status_code == too_long.value.status_code == 400
    assert len(server.requests) == 2


@pytest.mark.anyio
async def test_refused_connection_raises_connection_error() -> None:
    port = closed_port()
    model = LiteLLMModel(
        "openai/test-model",
        api_base=f"http://127.0.0.1:{port}/v1",
        api_key="test",
        retry=RetryPolicy(max_retries=1, initial_backoff=0.01),
    )

    with pytest.raises(ModelConnectionError) as caught:
        await model.generate(ask())
    with pytest.raises(ModelConnectionError):
        await collect(model, ask())

    assert caught.value.status_code is None
    assert "attempt 2/2: connection failed" in str(caught.value)


@pytest.mark.anyio
async def test_slow_answer_raises_timeout_error(server: OpenAIServer) -> None:
    server.enqueue(Reply.text("late", delay=5))
    model = make_model(server, timeout=0.2, retry=RetryPolicy(max_retries=0))

    started = time.monotonic()
    with pytest.raises(ModelTimeoutError) as caught:
        await model.generate(ask())

    assert time.monotonic() - started < 3
    assert "attempt 1/1: timeout" in str(caught.value)


@pytest.mark.anyio
async def test_stream_retries_a_failure_before_the_first_chunk(server: OpenAIServer) -> None:
    server.enqueue(Reply.error(503), Reply.error(429), Reply.text("hello there"))

    chunks = await collect(make_model(server), ask())

    assert assembled(chunks).message.content == "hello there"
    assert len(server.requests) == 3


@pytest.mark.anyio
async def test_stream_failure_after_a_chunk_is_not_retried(server: OpenAIServer) -> None:
    server.enqueue(Reply.text("a long answer that breaks", chunk_chars=4, disconnect_after=3))
    received: list[ModelChunk] = []

    with pytest.raises(ModelError) as caught:
        async for chunk in make_model(server).stream(ask()):
            received.append(chunk)

    assert [chunk.content for chunk in received] == ["a lo", "ng a"]
    assert isinstance(caught.value, ModelConnectionError)
    assert "(after 2 chunks)" in str(caught.value)
    assert len(server.requests) == 1


# -- retry policy --------------------------------------------------------------------------------


def test_retry_policy_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(initial_backoff=0.5, max_backoff=3, multiplier=2, jitter=0)

    assert [policy.backoff(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert policy.backoff(1000) == 3.0
    assert policy.backoff(1, retry_after=2.5) == 2.5
    assert policy.backoff(1, retry_after=60) == 3.0
    assert policy.attempts == 4


def test_retry_policy_jitter_only_shortens() -> None:
    policy = RetryPolicy(initial_backoff=1, jitter=0.5)

    waits = [policy.backoff(1) for _ in range(200)]

    assert all(0.5 <= wait <= 1 for wait in waits)
    assert len(set(waits)) > 1


@pytest.mark.parametrize(
    "options",
    [{"max_retries": -1}, {"initial_backoff": -1}, {"multiplier": 0.5}, {"jitter": 2}],
)
def test_retry_policy_rejects_nonsense(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**options)


# -- format conversion ---------------------------------------------------------------------------


def test_messages_in_openai_format() -> None:
    call = ToolCall(id="call_1", name="add", arguments='{"a": 1}')

    sent = messages_to_openai(
        [
            Message.user("hi", name="ann"),
            Message.assistant("Let me add.", tool_calls=[call]),
            Message.assistant(tool_calls=[call]),
            Message.tool("1", tool_call_id="call_1", name="add"),
            Message.assistant("done"),
        ]
    )

    openai_call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "add", "arguments": '{"a": 1}'},
    }
    assert sent == [
        {"role": "user", "content": "hi", "name": "ann"},
        {"role": "assistant", "content": "Let me add.", "tool_calls": [openai_call]},
        {"role": "assistant", "content": None, "tool_calls": [openai_call]},
        {"role": "tool", "content": "1", "tool_call_id": "call_1", "name": "add"},
        {"role": "assistant", "content": "done"},
    ]


def test_lone_surrogates_go_out_as_replacement_characters() -> None:
    call = ToolCall(id="call_1", name="say", arguments='{"text": "\ud83d"}')

    [sent] = messages_to_openai([Message.assistant("cut \ude00", tool_calls=[call])])

    assert sent["content"] == "cut \ufffd"
    assert sent["tool_calls"][0]["function"]["arguments"] == '{"text": "\ufffd"}'
    json.dumps(sent, ensure_ascii=False).encode("utf-8")  # encodable now


def test_anthropic_style_cached_tokens_are_read() -> None:
    usage = usage_from({"prompt_tokens": 10, "completion_tokens": 2, "cache_read_input_tokens": 6})

    assert (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens) == (10, 2, 6)


def test_plain_dict_answers_and_empty_chunks() -> None:
    raw = {
        "model": "m",
        "choices": [
            {
                "message": {"content": [{"type": "text", "text": "a"}, {"text": "b"}]},
                "finish_reason": "stop",
            }
        ],
    }

    response = response_from_litellm(raw, "default")

    assert (response.message.content, response.model, response.usage.total_tokens) == ("ab", "m", 0)
    assert chunk_from_litellm({"choices": [{"delta": {"role": "assistant"}}]}, "m") is None
    assert chunk_from_litellm({"choices": []}, "m") is None


# -- end to end ----------------------------------------------------------------------------------


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


def calculator(body: dict[str, Any]) -> Reply:
    """Call ``add`` on a fresh question; answer with the tool result once it is there."""
    last = body["messages"][-1]
    if last["role"] == "tool":
        return Reply.text(f"The sum is {last['content']}.")
    return Reply.call("add", {"a": 2, "b": 3})


@pytest.mark.anyio
@pytest.mark.parametrize("streaming", [False, True])
async def test_agent_calls_a_tool_then_answers(server: OpenAIServer, streaming: bool) -> None:
    server.handler = calculator
    agent = ChatModelAgent(
        "calc", model=make_model(server), instruction="Use the tools.", tools=[add]
    )
    runner = Runner(agent, streaming=streaming)

    if streaming:
        events = [event async for event in runner.query("What is 2 + 3?")]
        final = [event for event in events if not event.partial][-1]
        assert any(event.partial for event in events)
        assert final.message is not None and final.message.content == "The sum is 5."
    else:
        result = await runner.invoke("What is 2 + 3?")
        assert result.text == "The sum is 5."
        assert result.usage.prompt_tokens > 0

    first, second = server.requests
    assert [t["function"]["name"] for t in first["tools"]] == ["add"]
    assert first["messages"][0] == {"role": "system", "content": "Use the tools."}
    call = second["messages"][-2]["tool_calls"][0]
    assert json.loads(call["function"]["arguments"]) == {"a": 2, "b": 3}
    assert second["messages"][-1]["role"] == "tool"
    assert second["messages"][-1]["tool_call_id"] == call["id"]
    assert bool(second.get("stream")) is streaming


@tool
def echo(text: str) -> str:
    """Repeat a text.

    Args:
        text: What to repeat.
    """
    return f"echo: {text}"


HALVES = "\ud83d\ude00"
"""U+1F600 as its two UTF-16 surrogates, two code points: what a provider's JSON escapes carry."""


def emoji_caller(body: dict[str, Any]) -> Reply:
    """Call ``echo`` with half an emoji (JSON-escaped once, and twice) and with a cut one."""
    if body["messages"][-1]["role"] == "tool":
        return Reply.text("done")
    return Reply.calls(
        # The client decodes the server's "\ud83d" into a lone surrogate in the arguments.
        ScriptedCall("echo", '{"text": "half ' + HALVES[0] + '"}', id="lone"),
        # Escaped twice: the arguments themselves hold the escape "\ud83d".
        ScriptedCall("echo", '{"text": "half \\ud83d"}', id="escaped"),
        # 11 characters a chunk: the first piece ends with the high half, the next starts with
        # the low half, and each piece's JSON escapes its half alone.
        ScriptedCall("echo", '{"text": "' + HALVES + '"}', id="split"),
        chunk_chars=11,
    )


@pytest.mark.anyio
@pytest.mark.parametrize("streaming", [False, True])
async def test_surrogates_in_tool_arguments_do_not_end_the_run(
    server: OpenAIServer, streaming: bool
) -> None:
    server.handler = emoji_caller
    agent = ChatModelAgent("echoer", model=make_model(server), tools=[echo])

    events = [event async for event in Runner(agent, streaming=streaming).query("smile")]

    assert [event.error for event in events if event.error is not None] == []
    results = {
        m.tool_call_id: m.content for m in (e.message for e in events) if m and m.role == "tool"
    }
    assert results["lone"] == "echo: half \ufffd"  # the reply's text was repaired on arrival
    assert results["escaped"].startswith("Error: the arguments of tool 'echo'")
    assert "escape of a lone UTF-16 surrogate" in results["escaped"]
    assert results["split"] == "echo: \U0001f600"
    assert len(server.requests) == 2
    # The broken call goes back to the model encodable, its lone surrogate as U+FFFD.
    sent = server.requests[1]["messages"][1]["tool_calls"][0]["function"]["arguments"]
    assert sent == '{"text": "half \ufffd"}'


# -- import cost ---------------------------------------------------------------------------------


def test_importing_adk_does_not_import_litellm() -> None:
    code = (
        "import adk, sys\n"
        "from adk import LiteLLMModel, RetryPolicy\n"
        "LiteLLMModel('openai/x', retry=RetryPolicy())\n"
        "assert 'litellm' not in sys.modules, 'litellm was imported'\n"
        "assert 'openai' not in sys.modules, 'openai was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.anyio
async def test_a_stream_cut_off_before_its_first_chunk_is_retried(server: OpenAIServer) -> None:
    # The connection closes after the response headers, before any event: not an empty answer.
    server.enqueue(Reply.text("lost", disconnect_after=0), Reply.text("hello there"))

    chunks = await collect(make_model(server), ask())

    assert assembled(chunks).message.content == "hello there"
    assert len(server.requests) == 2
