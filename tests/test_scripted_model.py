from __future__ import annotations

import time

import anyio
import anyio.lowlevel
import pytest

from adk import (
    Message,
    ModelRequest,
    ModelResponse,
    ScriptedModel,
    ScriptExhaustedError,
    ToolCall,
    Usage,
)
from adk.models.base import ChunkAssembler

pytestmark = pytest.mark.anyio


def request(text: str = "hi") -> ModelRequest:
    return ModelRequest(messages=[Message.user(text)])


async def test_list_script_answers_in_order_and_records_requests() -> None:
    call = ToolCall.of("f", id="c1", x=1)
    model = ScriptedModel(["text", Message.assistant("msg"), call, [call, call]])
    answers = [await model.generate(request(str(i))) for i in range(4)]
    assert answers[0].message.content == "text"
    assert answers[1].message.content == "msg"
    assert answers[2].message.tool_calls == (call,)
    assert answers[3].message.tool_calls == (call, call)
    assert answers[2].finish_reason == "tool_calls" and answers[0].finish_reason == "stop"
    assert [r.messages[0].content for r in model.requests] == ["0", "1", "2", "3"]
    assert model.calls == 4 and model.remaining == 0
    assert answers[0].usage.prompt_tokens > 0


async def test_exhausted_script_says_so() -> None:
    model = ScriptedModel(["only"], name="planner-model")
    await model.generate(request())
    with pytest.raises(ScriptExhaustedError, match=r"'planner-model' got call #2 .* only 1"):
        await model.generate(request("again"))


async def test_function_script_sync_and_async_and_exceptions() -> None:
    async def answer(req: ModelRequest) -> str:
        await anyio.lowlevel.checkpoint()
        return req.messages[-1].content.upper()

    assert (await ScriptedModel(answer).generate(request("abc"))).message.content == "ABC"
    sync = ScriptedModel(lambda req: ModelResponse(message=Message.assistant("r"), usage=Usage()))
    assert (await sync.generate(request())).message.content == "r"
    with pytest.raises(TimeoutError):
        await ScriptedModel([TimeoutError("t")]).generate(request())


async def test_latency_is_applied() -> None:
    model = ScriptedModel(["a"], latency=0.05)
    start = time.perf_counter()
    await model.generate(request())
    assert time.perf_counter() - start >= 0.045


async def test_stream_chunks_reassemble_to_generate() -> None:
    answer = Message.assistant(
        "Some streamed text", tool_calls=[ToolCall.of("f", id="c1", query="long argument value")]
    )
    streamed = ScriptedModel([answer], chunk_chars=4)
    plain = ScriptedModel([answer])
    chunks = [c async for c in streamed.stream(request())]
    assert [c.content for c in chunks[:5]] == ["Some", " str", "eame", "d te", "xt"]
    assert sum(1 for c in chunks if c.tool_calls and c.tool_calls[0].arguments) > 3
    assembler = ChunkAssembler()
    for chunk in chunks:
        assembler.add(chunk)
    assert assembler.response() == await plain.generate(request())
    with pytest.raises(ValueError):
        ScriptedModel([], chunk_chars=0)
