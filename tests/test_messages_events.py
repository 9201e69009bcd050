from __future__ import annotations

from typing import Any

import pytest

from adk import (
    AgentAction,
    AgentEvent,
    AgentOutput,
    ChatModelAgent,
    ErrorInfo,
    Interrupted,
    InterruptInfo,
    Message,
    Runner,
    ScriptedModel,
    ToolCall,
    Usage,
    tool,
)
from adk.messages import repair_message, repair_text


def test_message_constructors_set_roles_and_fields() -> None:
    call = ToolCall.of("lookup", id="c1", city="Paris")
    assert Message.system("s").role == "system"
    assert Message.user("hi", name="ann").name == "ann"
    assistant = Message.assistant(tool_calls=[call])
    assert assistant.role == "assistant" and assistant.content == ""
    assert assistant.tool_calls == (call,)
    result = Message.tool("sunny", tool_call_id="c1", name="lookup")
    assert (result.role, result.tool_call_id, result.name) == ("tool", "c1", "lookup")


def test_tool_call_arguments_round_trip_and_reject_non_objects() -> None:
    call = ToolCall.of("lookup", city="Paris", days=3)
    assert call.id.startswith("call_")
    assert call.parsed_arguments() == {"city": "Paris", "days": 3}
    with pytest.raises(ValueError, match="JSON object"):
        ToolCall(id="x", name="n", arguments="[1, 2]").parsed_arguments()
    with pytest.raises(ValueError):
        ToolCall(id="x", name="n", arguments="{not json").parsed_arguments()


# -- bad tool arguments and lone surrogates ------------------------------------------------------

HIGH, LOW, EMOJI = "\ud83d", "\ude00", "\U0001f600"
"""The two UTF-16 halves of U+1F600 and the character itself."""


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ('{"text": "smile ' + HIGH + '"}', r"lone UTF-16 surrogate U\+D83D at index 16"),
        ('{"text": "' + LOW + ' smile"}', r"lone UTF-16 surrogate U\+DE00 at index 10"),
        ('{"text": "' + LOW + HIGH + '"}', r"lone UTF-16 surrogate U\+DE00"),
        ('{"text": "' + HIGH, r"lone UTF-16 surrogate U\+D83D"),
        ('{"text": "smile \\ud83d"}', r"escape of a lone UTF-16 surrogate"),
        ('{"text": "\\ude00 smile"}', r"escape of a lone UTF-16 surrogate"),
        ('{"text": "\\ud83d\\u0041"}', r"escape of a lone UTF-16 surrogate"),
        ('{"a": ' + "[" * 1000 + "]" * 1000 + "}", "recursion limit"),
        ("[" * 100_000, "recursion limit"),
        ('{"a": 1} trailing', "trailing characters"),
        ("{not json", "key must be a string"),
        ("   ", "EOF"),
        ('{"a": "\\uZZZZ"}', "invalid escape"),
        ('"a string"', "must be a JSON object, got str"),
        ("[1, 2]", "must be a JSON object, got list"),
        ("null", "must be a JSON object, got NoneType"),
    ],
)
def test_bad_tool_arguments_raise_value_error_with_a_clear_message(
    arguments: str, message: str
) -> None:
    call = ToolCall(id="x", name="n", arguments=arguments)

    with pytest.raises(ValueError, match=message):
        call.parsed_arguments()


@pytest.mark.parametrize(
    ("arguments", "type_name"),
    [(b'{"a": 1}', "bytes"), (None, "NoneType"), (7, "int"), ({"a": 1}, "dict")],
)
def test_tool_arguments_that_are_not_text_raise_value_error(arguments: Any, type_name: str) -> None:
    # Only model_construct (no validation) can build such a call; the runner must survive it.
    call = ToolCall.model_construct(id="x", name="n", arguments=arguments)

    with pytest.raises(ValueError, match=f"arguments must be JSON text .a str., got {type_name}"):
        call.parsed_arguments()


def test_a_surrogate_pair_split_across_stream_chunks_is_joined_in_tool_arguments() -> None:
    # A stream that cut an emoji in two delivers its halves as two separate code points.
    call = ToolCall(id="x", name="n", arguments='{"text": "' + HIGH + LOW + ' and \\ud83d\\ude00"}')

    assert call.parsed_arguments() == {"text": EMOJI + " and " + EMOJI}


def test_repair_text_replaces_each_lone_surrogate_and_joins_split_pairs() -> None:
    assert repair_text("a" + HIGH + "b") == "a\ufffdb"
    assert repair_text(LOW + "é" + HIGH) == "\ufffdé\ufffd"
    assert repair_text(HIGH + HIGH + LOW) == "\ufffd" + EMOJI
    assert repair_text(LOW + HIGH) == "\ufffd\ufffd"
    assert repair_text(HIGH + LOW) == EMOJI
    assert repair_text("") == ""


def test_repair_text_returns_clean_text_itself() -> None:
    for text in ["plain ascii", "déjà vu " + EMOJI, "\\ud83d is an escape, not a surrogate"]:
        assert repair_text(text) is text


def test_repair_message_returns_a_clean_message_itself() -> None:
    call = ToolCall(id="c1", name="lookup", arguments='{"word": "caf\u00e9"}')
    message = Message.assistant(
        "Voil\u00e0 " + EMOJI, tool_calls=[call], usage=Usage(prompt_tokens=3)
    )

    assert repair_message(message) is message
    plain = Message.user("hi")
    assert repair_message(plain) is plain


def test_repair_message_repairs_content_and_tool_call_arguments() -> None:
    usage = Usage(prompt_tokens=5, completion_tokens=2)
    broken = ToolCall(id="c1", name="say", arguments='{"text": "hi ' + HIGH + '"}')
    clean = ToolCall(id="c2", name="say", arguments='{"text": "ok"}')
    message = Message.assistant(
        "half an emoji: " + LOW, tool_calls=[broken, clean], name="bot", usage=usage
    )

    repaired = repair_message(message)

    assert repaired.content == "half an emoji: \ufffd"
    assert repaired.tool_calls[0] == ToolCall(
        id="c1", name="say", arguments='{"text": "hi \ufffd"}'
    )
    assert repaired.tool_calls[0].parsed_arguments() == {"text": "hi \ufffd"}
    assert repaired.tool_calls[1] is clean
    assert (repaired.role, repaired.name, repaired.usage) == ("assistant", "bot", usage)
    assert message.content == "half an emoji: " + LOW  # the original is left alone
    repaired.model_dump_json()  # now valid Unicode, so it serialises


@tool
def say(text: str) -> str:
    """Repeat a text.

    Args:
        text: What to say.
    """
    return f"said {text}"


@pytest.mark.anyio
@pytest.mark.parametrize("streaming", [False, True])
async def test_a_lone_surrogate_in_tool_arguments_is_an_error_the_model_reads(
    streaming: bool,
) -> None:
    calls = [
        ToolCall(id="raw", name="say", arguments='{"text": "smile ' + HIGH + '"}'),
        ToolCall(id="escaped", name="say", arguments='{"text": "smile \\ud83d"}'),
        ToolCall(id="split", name="say", arguments='{"text": "' + HIGH + LOW + '"}'),
    ]
    model = ScriptedModel([calls, "Sorry, let me try again."], chunk_chars=3)
    agent = ChatModelAgent("speaker", model=model, tools=[say])

    events = [event async for event in Runner(agent, streaming=streaming).query("smile")]

    assert [event.error for event in events if event.error is not None] == []
    results = {m.tool_call_id: m.content for m in model.requests[1].messages if m.role == "tool"}
    assert results["raw"] == "said smile \ufffd"  # the reply's text was repaired on arrival
    assert results["escaped"].startswith("Error: the arguments of tool 'say' are not a valid JSON")
    assert "escape of a lone UTF-16 surrogate" in results["escaped"]
    assert results["split"] == "said " + EMOJI


def test_usage_adds_up() -> None:
    total = Usage(prompt_tokens=10, completion_tokens=2, cached_tokens=4) + Usage(
        prompt_tokens=5, completion_tokens=1
    )
    assert total == Usage(prompt_tokens=15, completion_tokens=3, cached_tokens=4)
    assert total.total_tokens == 18


def test_actions_are_built_by_helpers() -> None:
    assert AgentAction.exit_run().exit
    transfer = AgentAction.transfer("billing").transfer_to_agent
    assert transfer is not None and transfer.dest == "billing"
    brk = AgentAction.break_loop_from("checker").break_loop
    assert brk is not None
    assert (brk.from_agent, brk.done, brk.current_iterations) == ("checker", False, 0)


def test_event_serialises_and_keeps_live_exception_out_of_the_data() -> None:
    exc = ValueError("boom")
    event = AgentEvent(
        agent_name="a",
        run_path=("root", "a"),
        output=AgentOutput(message=Message.assistant("hi"), custom={"k": 1}),
        action=AgentAction(
            interrupted=Interrupted(
                interrupts=(InterruptInfo(id="i1", address=("root", "a"), info={"q": "ok?"}),)
            )
        ),
        error=ErrorInfo.from_exception(exc, ("root", "a")),
    )
    assert event.error is not None and event.error.exception is exc
    data = event.model_dump_json()
    assert "boom" in data and "Traceback" not in data
    back = AgentEvent.model_validate_json(data)
    assert back.error is not None
    assert back.error.exception is None
    assert (back.error.type, back.error.message) == ("ValueError", "boom")
    assert back.message == Message.assistant("hi")
    assert back.run_path == ("root", "a")
    assert back.action == event.action


def test_event_accessors() -> None:
    partial = AgentEvent(
        agent_name="a", output=AgentOutput(message=Message.assistant("he"), partial=True)
    )
    assert partial.partial and partial.text == "he" and not partial.is_error
    bare = AgentEvent(agent_name="a", action=AgentAction.exit_run())
    assert bare.message is None and bare.text == "" and not bare.partial


def test_error_info_format_names_place_and_traceback() -> None:
    try:
        raise RuntimeError("kaput")
    except RuntimeError as exc:
        info = ErrorInfo.from_exception(exc, ("root", "worker"))
    text = info.format()
    assert text.startswith("RuntimeError in root/worker: kaput")
    assert "Traceback" in text
