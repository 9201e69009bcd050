from __future__ import annotations

import pytest

from adk import (
    AgentAction,
    AgentEvent,
    AgentOutput,
    ErrorInfo,
    Interrupted,
    InterruptInfo,
    Message,
    ToolCall,
    Usage,
)


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
