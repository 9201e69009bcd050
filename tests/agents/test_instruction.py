from __future__ import annotations

import pytest

from adk import ChatModelAgent, ConfigurationError, InstructionError, Runner, ScriptedModel

pytestmark = pytest.mark.anyio


async def test_placeholders_are_filled_from_session_values_and_braces_escape() -> None:
    model = ScriptedModel(["ok"])
    agent = ChatModelAgent(
        "helper",
        model=model,
        instruction='Help {user} in {lang}. Answer as JSON like {{"a": 1}}.',
    )
    await Runner(agent).invoke("hi", session_values={"user": "Ann", "lang": "French"})
    system = model.requests[0].messages[0]
    assert system.role == "system"
    assert system.content == 'Help Ann in French. Answer as JSON like {"a": 1}.'


async def test_missing_value_is_a_clear_error_naming_key_and_agent() -> None:
    agent = ChatModelAgent("helper", model=ScriptedModel(["ok"]), instruction="Hi {user}")
    events = [e async for e in Runner(agent).query("hi", session_values={"other": 1})]
    assert len(events) == 1
    error = events[0].error
    assert error is not None and error.type == "InstructionError"
    assert "{user}" in error.message and "'helper'" in error.message
    assert "other" in error.message  # lists what is set
    with pytest.raises(InstructionError):
        await Runner(agent).invoke("hi")


@pytest.mark.parametrize(
    "instruction", ["Use { braces", "Use } braces", "Bad {not a key}", "Empty {}"]
)
def test_malformed_instruction_fails_at_construction(instruction: str) -> None:
    with pytest.raises(ConfigurationError, match="helper"):
        ChatModelAgent("helper", model=ScriptedModel([]), instruction=instruction)


async def test_scoped_placeholders_read_user_and_app_values_of_a_session() -> None:
    model = ScriptedModel(["ok", "ok"])
    agent = ChatModelAgent(
        "helper", model=model, instruction="Answer {user:name} in {app:tone} tone."
    )
    runner = Runner(agent)
    values = {"user:name": "Ann", "app:tone": "a calm"}
    await runner.invoke("hi", session_id="s1", user_id="ann", session_values=values)
    await runner.invoke("again", session_id="s2", user_id="ann")  # another session, same user
    assert [r.messages[0].content for r in model.requests] == [
        "Answer Ann in a calm tone.",
        "Answer Ann in a calm tone.",
    ]


@pytest.mark.parametrize("instruction", ["Hi {bot:name}", "Hi {user:}", "Hi {:name}"])
def test_an_unknown_scope_is_not_a_placeholder(instruction: str) -> None:
    with pytest.raises(ConfigurationError, match="scoped"):
        ChatModelAgent("helper", model=ScriptedModel([]), instruction=instruction)
