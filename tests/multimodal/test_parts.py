"""Multimodal messages: parts, their checks, and how agents, tools and models see them."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from adk import (
    AudioPart,
    ChatModelAgent,
    FilePart,
    ImagePart,
    Message,
    ModelBadRequestError,
    ModelRequest,
    Runner,
    ScriptedModel,
    TextPart,
    ToolCall,
    tool,
)
from adk.agents.history import default_history_rewriter
from adk.content import IMAGE_TOKENS, LOW_DETAIL_IMAGE_TOKENS, part_tokens
from adk.events import HistoryEntry
from adk.models.base import ModelRequest as Request
from adk.serving.prefix import fingerprint, prompt_text
from adk.tools.execution import render_result

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
IMAGE = ImagePart(data=PNG, media_type="image/png")


# -- parts and messages ---------------------------------------------------------------------


def test_a_list_of_parts_gives_the_text_and_the_parts_in_order() -> None:
    message = Message.user(["What is in", IMAGE, "this picture?"])
    assert message.content == "What is in\nthis picture?"
    assert message.parts == (TextPart(text="What is in"), IMAGE, TextPart(text="this picture?"))
    assert message.multimodal
    assert Message(role="user", content=["x", IMAGE]) == Message.user(["x", IMAGE])
    assert Message(role="user", parts=["x", IMAGE]) == Message.user(["x", IMAGE])
    assert Message.user(IMAGE).parts == (IMAGE,)


def test_plain_text_stays_plain() -> None:
    assert Message.user("hi").parts == ()
    assert "parts" not in Message.user("hi").model_dump()
    only_text = Message.user(["a", TextPart(text="b")])
    assert (only_text.content, only_text.parts) == ("a\nb", ())
    assert not only_text.multimodal


def test_a_multimodal_message_round_trips_through_json_and_python_dumps() -> None:
    message = Message.tool(
        [IMAGE, FilePart(data=b"%PDF-1.4", media_type="application/pdf", filename="a.pdf")],
        tool_call_id="c1",
        name="scan",
    )
    assert Message.model_validate_json(message.model_dump_json()) == message
    assert Message.model_validate(message.model_dump()) == message
    dumped = message.model_dump(mode="json")  # as sessions keep events: bytes as base64 text
    assert dumped["parts"][0]["type"] == "image"
    assert isinstance(dumped["parts"][0]["data"], str)
    assert Message.model_validate(dumped) == message
    with pytest.raises(pydantic.ValidationError, match="data given as text must be base64"):
        ImagePart(data="not base64!", media_type="image/png")  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_query_names_a_bad_item_of_its_parts() -> None:
    runner = Runner(ChatModelAgent("eye", model=ScriptedModel(["x"])))
    with pytest.raises(TypeError, match=r"query: text\[1\] must be a str or a part"):
        runner.query(["look", 3])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"invoke: input\[0\] must be a Message.*put parts in"):
        await runner.invoke([IMAGE])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda: Message.user(["x", 5]), r"content\[1\] must be a str or a part"),
        (lambda: Message.user([{"type": "video", "url": "u"}]), "unknown part type 'video'"),
        (lambda: ImagePart(data=PNG), r"ImagePart needs a media_type"),
        (lambda: FilePart(url="https://x/a.pdf"), r"FilePart needs a media_type"),
        (lambda: AudioPart(data=b"x", media_type="image/png"), r"must be an audio/\* type"),
        (lambda: ImagePart(), "exactly one of data"),
        (lambda: ImagePart(data=PNG, url="u", media_type="image/png"), "exactly one of data"),
        (lambda: Message.assistant(["x", IMAGE]), "cannot hold images"),  # type: ignore[arg-type]
        (lambda: Message(role="system", content=[IMAGE]), "cannot hold images"),
        (lambda: Message.user(b"raw"), "content must be a str or a list"),
        (lambda: Message(role="user", content="y", parts=["x", IMAGE]), "text of parts"),
    ],
)
def test_bad_content_is_a_clear_error(build: Any, expected: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=expected):
        build()


def test_token_estimates_per_part() -> None:
    assert part_tokens(IMAGE) == IMAGE_TOKENS
    low = ImagePart(url="https://x/a.png", detail="low")
    assert part_tokens(low) == LOW_DETAIL_IMAGE_TOKENS
    assert part_tokens(AudioPart(data=bytes(64_000), media_type="audio/wav")) == 64
    assert part_tokens(FilePart(data=bytes(800), media_type="application/pdf")) == 100


# -- tools, models and history -----------------------------------------------------------------


@tool
def snapshot() -> list[Any]:
    """Take a picture."""
    return ["the picture:", IMAGE]


def test_render_result_keeps_parts() -> None:
    assert render_result(IMAGE) == [IMAGE]
    assert render_result(["a", IMAGE, {"n": 1}]) == ["a", IMAGE, '{"n":1}']
    assert render_result([1, 2]) == "[1,2]"


@pytest.mark.anyio
async def test_parts_reach_the_model_from_the_user_and_from_tools() -> None:
    model = ScriptedModel([ToolCall.of("snapshot"), "a cat"])
    runner = Runner(ChatModelAgent("eye", model=model, tools=[snapshot]))

    events = [event async for event in runner.query(["Look:", IMAGE])]

    assert events[-1].text == "a cat"
    first, second = model.requests
    assert first.messages[-1] == Message.user(["Look:", IMAGE])
    result = second.messages[-1]
    assert result.role == "tool" and result.parts == (TextPart(text="the picture:"), IMAGE)
    assert result.content == "the picture:"
    # The estimate counts the image: the second request holds two.
    usage = [event.message.usage for event in events if event.message and event.message.usage]
    assert usage[1] is not None and usage[1].prompt_tokens > 2 * IMAGE_TOKENS


@pytest.mark.anyio
async def test_a_text_only_model_refuses_an_image_before_answering() -> None:
    model = ScriptedModel(["never"], accepts=["audio"], name="texty")
    runner = Runner(ChatModelAgent("eye", model=model))

    events = [event async for event in runner.query(["Look:", IMAGE])]

    assert model.calls == 0 and model.remaining == 1
    error = events[-1].error
    assert error is not None
    assert "cannot take image input" in error.message
    assert "messages[" in error.message and "parts[1]" in error.message
    with pytest.raises(ModelBadRequestError, match="texty"):
        await model.generate(ModelRequest(messages=[Message.user([IMAGE])]))


def test_other_agents_messages_keep_their_parts_as_context() -> None:
    result = Message.tool(["seen:", IMAGE], tool_call_id="c1", name="snapshot")
    entries = [
        HistoryEntry(None, Message.user("go")),
        HistoryEntry("scout", Message.assistant(tool_calls=[ToolCall(id="c1", name="snapshot")])),
        HistoryEntry("scout", result),
    ]
    rewritten = default_history_rewriter(entries, "writer")
    context = rewritten[-1]
    assert context.role == "user"
    assert context.parts[1:] == result.parts
    assert context.content.startswith("For context: [scout] tool 'snapshot' returned result:")


def test_the_prefix_fingerprint_sees_images() -> None:
    def request(image: ImagePart) -> Request:
        return Request(messages=[Message.system("s"), Message.user(["look", image])])

    other = ImagePart(data=PNG + b"!", media_type="image/png")
    text, _ = prompt_text(request(IMAGE))
    assert len(text) >= IMAGE_TOKENS * 4  # the prompt size counts the image
    assert fingerprint(request(IMAGE)) == fingerprint(request(IMAGE))
    assert fingerprint(request(IMAGE)).digest != fingerprint(request(other)).digest
    assert fingerprint(request(IMAGE)).blocks != fingerprint(request(other)).blocks
