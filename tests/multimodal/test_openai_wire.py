"""The exact JSON a multimodal request sends, through litellm to a real HTTP server on loopback."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from adk import (
    AudioPart,
    ChatModelAgent,
    FilePart,
    ImagePart,
    LiteLLMModel,
    Message,
    ModelBadRequestError,
    ModelRequest,
    RetryPolicy,
    Runner,
    tool,
)
from tests.support.openai_server import OpenAIServer, Reply, ScriptedCall, start_server

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.filterwarnings("ignore:Item .* is using the `ReadOnly` qualifier:UserWarning"),
]

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(16)
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # litellm runs on asyncio only


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with start_server() as running:
        yield running


def make_model(
    server: OpenAIServer, model: str = "openai/test-model", **options: Any
) -> LiteLLMModel:
    return LiteLLMModel(
        model,
        api_base=server.base_url,
        api_key="test",
        retry=RetryPolicy(max_retries=0),
        timeout=10,
        **options,
    )


async def test_user_parts_go_out_as_openai_content_blocks(server: OpenAIServer) -> None:
    server.enqueue(Reply.text("seen"))
    message = Message.user(
        [
            "Compare:",
            ImagePart(data=PNG, media_type="image/png", detail="low"),
            ImagePart(url="https://example.com/cat.jpg"),
            AudioPart(data=WAV, media_type="audio/wav"),
            FilePart(data=PDF, media_type="application/pdf", filename="report.pdf"),
            FilePart(url="gs://bucket/notes.pdf", media_type="application/pdf"),
        ]
    )

    response = await make_model(server).generate(ModelRequest(messages=[message]))

    assert response.message.content == "seen"
    [body] = server.requests
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Compare:"},
                {
                    "type": "image_url",
                    "image_url": {"url": f"data:image/png;base64,{b64(PNG)}", "detail": "low"},
                },
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                {"type": "input_audio", "input_audio": {"data": b64(WAV), "format": "wav"}},
                {
                    "type": "file",
                    "file": {
                        "file_data": f"data:application/pdf;base64,{b64(PDF)}",
                        "filename": "report.pdf",
                    },
                },
                # litellm keeps the URL as the file id (and drops "format" for OpenAI)
                {"type": "file", "file": {"file_id": "gs://bucket/notes.pdf"}},
            ],
        }
    ]


def data_url(n: int) -> str:
    return f"data:image/png;base64,{b64(PNG + bytes([n]))}"


@tool
def snapshot(n: int) -> list[Any]:
    """Take picture number n."""
    return [f"picture {n}", ImagePart(data=PNG + bytes([n]), media_type="image/png")]


async def test_tool_images_follow_the_tool_results_in_a_user_message(
    server: OpenAIServer,
) -> None:
    server.enqueue(
        Reply(
            tool_calls=(
                ScriptedCall("snapshot", '{"n": 1}', "c1"),
                ScriptedCall("snapshot", '{"n": 2}', "c2"),
            )
        ),
        Reply.text("two cats"),
    )
    runner = Runner(ChatModelAgent("eye", model=make_model(server), tools=[snapshot]))

    result = await runner.invoke("Take two pictures.")

    assert result.output == "two cats"
    sent = server.requests[1]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "tool", "user"]
    note = "[1 attachment(s) (image) follow in the next user message]"
    assert sent[2] == {
        "role": "tool",
        "content": f"picture 1\n{note}",
        "tool_call_id": "c1",
        "name": "snapshot",
    }
    assert sent[3]["content"] == f"picture 2\n{note}"
    assert sent[4]["content"] == [
        {"type": "text", "text": "Attachments of tool 'snapshot' (c1):"},
        {"type": "image_url", "image_url": {"url": data_url(1)}},
        {"type": "text", "text": "Attachments of tool 'snapshot' (c2):"},
        {"type": "image_url", "image_url": {"url": data_url(2)}},
    ]


async def test_a_text_only_model_is_refused_before_the_call(server: OpenAIServer) -> None:
    image = Message.user(["What is this?", ImagePart(data=PNG, media_type="image/png")])

    # litellm's model map knows gpt-3.5-turbo takes no images.
    with pytest.raises(ModelBadRequestError, match=r"cannot take image input.*parts\[1\]"):
        await make_model(server, "openai/gpt-3.5-turbo").generate(ModelRequest(messages=[image]))
    # A model declared text-only, streaming too.
    declared = make_model(server, accepts=[])
    with pytest.raises(ModelBadRequestError, match="as declared"):
        async for _ in declared.stream(ModelRequest(messages=[image])):
            pass
    assert server.requests == []
    # A model litellm does not know is given the benefit of the doubt; so is a declared one.
    server.enqueue(Reply.text("a"), Reply.text("b"))
    await make_model(server).generate(ModelRequest(messages=[image]))
    await make_model(server, "openai/gpt-3.5-turbo", accepts=["image"]).generate(
        ModelRequest(messages=[image])
    )
    assert len(server.requests) == 2


async def test_a_refused_image_ends_the_run_with_an_error_event(server: OpenAIServer) -> None:
    agent = ChatModelAgent("eye", model=make_model(server, accepts=["audio"]))
    events = [
        event async for event in Runner(agent).query(["Look", ImagePart(url="https://x/a.png")])
    ]
    assert events[-1].error is not None
    assert "cannot take image input" in events[-1].error.message
    assert server.requests == []
