"""Structured output: every mode, every failure, and through composition, streaming and resume."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel
from typing_extensions import TypedDict  # pydantic needs this one on Python < 3.12

from adk import (
    AgentTool,
    ArgumentTypeError,
    ChatModelAgent,
    ConfigurationError,
    LiteLLMModel,
    OutputValidationError,
    ParallelAgent,
    Runner,
    ScriptedModel,
    SequentialAgent,
    ToolCall,
    tool,
)
from adk.agents.output import FINAL_RESULT_TOOL, resolve_mode
from tests.support.openai_server import OpenAIServer, Reply, start_server

pytestmark = pytest.mark.anyio


class City(BaseModel):
    name: str
    population: int


@dataclasses.dataclass
class Point:
    x: float
    y: float


class Movie(TypedDict):
    title: str
    year: int


def final(**arguments: Any) -> ToolCall:
    return ToolCall.of(FINAL_RESULT_TOOL, **arguments)


def agent(script: Any, output_type: object = City, **options: Any) -> ChatModelAgent:
    model = ScriptedModel(script) if isinstance(script, list) else script
    return ChatModelAgent("extractor", model=model, output_type=output_type, **options)


# -- tool mode (the default for a model that declares nothing) ---------------------------


async def test_tool_mode_returns_the_validated_model_instance() -> None:
    model = ScriptedModel([final(name="Paris", population=2_100_000)])
    runner = Runner(agent(model, output_key="city"))
    result = await runner.invoke("Paris has 2.1M people")
    assert result.output == City(name="Paris", population=2_100_000)
    assert isinstance(result.output, City)
    assert result.events[-1].value == result.output
    assert result.session_values["city"] == {"name": "Paris", "population": 2_100_000}
    assert json.loads(result.text) == {"name": "Paris", "population": 2_100_000}
    spec = {tool.name: tool for tool in model.requests[0].tools}[FINAL_RESULT_TOOL]
    assert spec.parameters["required"] == ["name", "population"]


async def test_a_text_answer_without_output_type_is_the_output() -> None:
    runner = Runner(ChatModelAgent("a", model=ScriptedModel(["hello"])))
    result = await runner.invoke("hi")
    assert result.output == "hello"
    assert result.events[-1].value is None


@pytest.mark.parametrize(
    ("output_type", "arguments", "expected"),
    [
        (Point, {"x": 1, "y": 2.5}, Point(1.0, 2.5)),
        (Movie, {"title": "Alien", "year": 1979}, {"title": "Alien", "year": 1979}),
        (list[City], {"result": [{"name": "A", "population": 1}]}, [City(name="A", population=1)]),
        (City | Point, {"result": {"x": 0, "y": 0}}, Point(0.0, 0.0)),
        (
            {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
            {"n": 3},
            {"n": 3},
        ),
    ],
    ids=["dataclass", "typeddict", "list", "union", "json-schema"],
)
async def test_every_kind_of_output_type(output_type: Any, arguments: Any, expected: Any) -> None:
    model = ScriptedModel([final(**arguments)])
    result = await Runner(agent(model, output_type)).invoke("go")
    assert result.output == expected
    schema = model.requests[0].tools[0].parameters
    assert schema["type"] == "object"  # non-object types are wrapped as {"result": ...}


async def test_invalid_final_result_arguments_are_corrected_and_count_toward_usage() -> None:
    model = ScriptedModel(
        [final(name="Paris", population="many"), final(name="Paris", population=5)]
    )
    result = await Runner(agent(model)).invoke("go")
    assert result.output == City(name="Paris", population=5)
    assert model.calls == 2
    correction = model.requests[1].messages[-1]
    assert correction.role == "tool" and "population" in correction.content
    assert result.usage.total_tokens > 0
    per_call = [e.message.usage for e in result.events if e.message and e.message.usage]
    assert len(per_call) == 2  # both attempts are events: their tokens count


async def test_retries_spent_end_with_output_validation_error_carrying_raw_and_errors() -> None:
    bad = [final(name="Paris"), final(name="Paris"), final(name="Paris")]
    model = ScriptedModel(bad)
    runner = Runner(agent(model, output_retries=2))
    events = [event async for event in runner.query("go")]
    error = events[-1].error
    assert error is not None and error.type == "OutputValidationError"
    assert error.details is not None
    assert json.loads(error.details["raw"]) == {"name": "Paris"}
    assert any("population" in text for text in error.details["errors"])
    assert model.calls == 3
    with pytest.raises(OutputValidationError) as raised:
        await Runner(agent(ScriptedModel(bad), output_retries=2)).invoke("go")
    assert raised.value.errors


async def test_zero_retries_fails_on_the_first_invalid_answer() -> None:
    model = ScriptedModel(["not json at all"])
    events = [e async for e in Runner(agent(model, output_retries=0)).query("go")]
    assert events[-1].error is not None
    assert events[-1].error.type == "OutputValidationError"
    assert model.calls == 1


async def test_mixed_tool_calls_and_final_result_in_one_reply() -> None:
    looked_up: list[str] = []

    @tool
    def lookup(city: str) -> int:
        """Population of a city."""
        looked_up.append(city)
        return 42

    model = ScriptedModel(
        [
            [ToolCall.of("lookup", city="Oslo")],
            [ToolCall.of("lookup", city="Rome"), final(name="Oslo", population=42)],
        ]
    )
    result = await Runner(agent(model, tools=[lookup])).invoke("go")
    assert result.output == City(name="Oslo", population=42)
    assert looked_up == ["Oslo", "Rome"]  # the other call of the final reply still ran
    assert model.calls == 2


async def test_a_text_answer_in_tool_mode_is_accepted_when_valid_else_corrected() -> None:
    model = ScriptedModel(["the answer is Paris", '{"name": "Paris", "population": 1}'])
    result = await Runner(agent(model)).invoke("go")
    assert result.output == City(name="Paris", population=1)
    correction = model.requests[1].messages[-1]
    assert correction.role == "user" and FINAL_RESULT_TOOL in correction.content


def test_the_final_result_tool_name_is_reserved() -> None:
    @tool
    def final_result(x: int) -> int:
        """Clashes."""
        return x

    with pytest.raises(ConfigurationError, match="final_result"):
        agent(["x"], tools=[final_result])


# -- native and prompted modes -------------------------------------------------------------


async def test_native_mode_sends_the_response_format_and_parses_text() -> None:
    model = ScriptedModel(['{"name": "Rome", "population": 3}'])
    result = await Runner(agent(model, output_mode="native")).invoke("go")
    assert result.output == City(name="Rome", population=3)
    request = model.requests[0]
    response_format = request.params["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["schema"]["required"] == ["name", "population"]
    assert not request.tools  # no final_result tool in native mode


async def test_native_mode_bad_json_is_corrected_with_a_user_message() -> None:
    model = ScriptedModel(['{"name": "Rome", ', '{"name": "Rome", "population": 3}'])
    result = await Runner(agent(model, output_mode="native")).invoke("go")
    assert result.output.population == 3
    retry = model.requests[1].messages
    assert retry[-2].role == "assistant" and retry[-2].content == '{"name": "Rome", '
    assert retry[-1].role == "user" and "not valid JSON" in retry[-1].content


async def test_prompted_mode_puts_the_schema_in_the_instruction_and_accepts_a_fence() -> None:
    model = ScriptedModel(['```json\n{"name": "Oslo", "population": 7}\n```'])
    runner = Runner(agent(model, output_mode="prompted", instruction="Extract the city."))
    result = await runner.invoke("go")
    assert result.output == City(name="Oslo", population=7)
    system = model.requests[0].messages[0]
    assert system.role == "system" and system.content.startswith("Extract the city.")
    assert '"population"' in system.content
    assert "response_format" not in model.requests[0].params


async def test_a_list_output_in_native_mode_is_wrapped_on_the_wire() -> None:
    model = ScriptedModel(['{"result": [{"x": 1, "y": 2}]}'])
    result = await Runner(agent(model, list[Point], output_mode="native")).invoke("go")
    assert result.output == [Point(1.0, 2.0)]
    wire = model.requests[0].params["response_format"]["json_schema"]["schema"]
    assert wire["required"] == ["result"]


# -- choosing the mode ------------------------------------------------------------------------


class NativeModel(ScriptedModel):
    output_modes = ("native", "tool")


async def test_auto_mode_follows_what_the_model_declares_or_litellm_knows() -> None:
    assert await resolve_mode(ScriptedModel(["x"]), "auto") == "tool"
    assert await resolve_mode(NativeModel(["x"]), "auto") == "native"
    assert await resolve_mode("openai/gpt-4o-mini", "auto") == "native"
    assert await resolve_mode(LiteLLMModel("openai/gpt-4o-mini"), "auto") == "native"
    assert await resolve_mode("openai/some-unknown-model", "auto") == "tool"
    assert await resolve_mode("openai/gpt-4o-mini", "prompted") == "prompted"


async def test_a_declared_native_model_gets_the_response_format() -> None:
    model = NativeModel(['{"name": "A", "population": 1}'])
    result = await Runner(agent(model)).invoke("go")
    assert result.output == City(name="A", population=1)
    assert "response_format" in model.requests[0].params


# -- bad configuration -------------------------------------------------------------------------


def test_bad_settings_fail_at_definition_naming_the_argument() -> None:
    with pytest.raises(ArgumentTypeError, match="output_type"):
        agent(["x"], 42)
    with pytest.raises(ConfigurationError, match="not a valid JSON Schema"):
        agent(["x"], {"type": "no-such-type"})
    with pytest.raises(ConfigurationError, match="output_mode"):
        agent(["x"], output_mode="xml")
    with pytest.raises(ConfigurationError, match="output_retries"):
        agent(["x"], output_retries=-1)
    with pytest.raises(ArgumentTypeError, match="output_retries"):
        agent(["x"], output_retries="2")


# -- streaming -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["tool", "native"])
async def test_streaming_partials_carry_the_json_and_the_final_event_the_value(mode: str) -> None:
    answer = {"name": "Lisbon", "population": 545_000}
    script: Any = [final(**answer)] if mode == "tool" else [json.dumps(answer)]
    model = ScriptedModel(script, chunk_chars=5)
    runner = Runner(agent(model, output_mode=mode), streaming=True)
    events = [event async for event in runner.query("go")]
    partials = [event.text for event in events if event.partial]
    assert len(partials) > 3
    assert json.loads("".join(partials)) == answer
    assert events[-1].value == City(**answer)
    assert not any(event.value is not None for event in events[:-1])


# -- composition ---------------------------------------------------------------------------------


async def test_an_agent_tool_returns_the_value_as_json_and_advertises_the_schema() -> None:
    inner = agent([final(name="Kyiv", population=3)])
    wrapped = AgentTool(inner)
    assert '"population"' in wrapped.description
    outer_model = ScriptedModel([ToolCall.of("extractor", request="find it"), "done"])
    outer = ChatModelAgent("boss", model=outer_model, tools=[wrapped])
    result = await Runner(outer).invoke("go")
    tool_message = outer_model.requests[1].messages[-1]
    assert json.loads(tool_message.content) == {"name": "Kyiv", "population": 3}
    assert result.output == "done"


async def test_in_a_sequence_and_in_parallel_branches() -> None:
    first = ChatModelAgent("first", model=ScriptedModel(["some text"]))
    typed = agent([final(name="B", population=2)])
    result = await Runner(SequentialAgent("seq", [first, typed])).invoke("go")
    assert result.output == City(name="B", population=2)

    left = ChatModelAgent(
        "left", model=ScriptedModel([final(x=1, y=1)]), output_type=Point, output_key="left"
    )
    right = ChatModelAgent(
        "right", model=ScriptedModel([final(x=2, y=2)]), output_type=Point, output_key="right"
    )
    result = await Runner(ParallelAgent("both", [left, right])).invoke("go")
    assert result.session_values["left"] == {"x": 1.0, "y": 1.0}
    assert result.session_values["right"] == {"x": 2.0, "y": 2.0}
    values = [event.value for event in result.events if event.value is not None]
    assert sorted(values, key=lambda p: p.x) == [Point(1.0, 1.0), Point(2.0, 2.0)]


async def test_a_transfer_to_a_typed_agent_ends_with_its_value() -> None:
    typed = agent([final(name="C", population=3)], description="extracts cities")
    router = ChatModelAgent(
        "router",
        model=ScriptedModel([ToolCall.of("transfer_to_agent", agent_name="extractor")]),
        sub_agents=[typed],
    )
    result = await Runner(router).invoke("go")
    assert result.output == City(name="C", population=3)


# -- interrupt and resume ---------------------------------------------------------------------


async def test_resume_never_repeats_journaled_retries(tmp_path: Any) -> None:
    @tool(requires_approval=True)
    def publish(text: str) -> str:
        """Publish a draft."""
        return "published"

    script: list[Any] = [
        "not json",  # invalid: corrected
        [ToolCall.of("publish", text="x")],  # pauses for approval
        final(name="D", population=4),
    ]
    model = ScriptedModel(script)
    runner = Runner(agent(model, tools=[publish]), checkpoint_store=str(tmp_path / "s.db"))
    paused = await runner.invoke("go")
    assert paused.interrupts and model.calls == 2
    resumed = await runner.resume_invoke(
        paused.checkpoint_id or "", {paused.interrupts[0].id: {"approved": True}}
    )
    assert resumed.output == City(name="D", population=4)
    assert model.calls == 3  # the invalid answer and its correction were not asked again
    assert model.requests[2].messages[1].content == "not json"


# -- the native path over real HTTP -----------------------------------------------------------


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with start_server() as running:
        yield running


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # litellm runs on asyncio only
async def test_native_response_format_over_an_openai_compatible_server(
    server: OpenAIServer,
) -> None:
    server.enqueue(
        Reply.text('{"name": "Nairobi"}'), Reply.text('{"name": "Nairobi", "population": 4}')
    )
    model = LiteLLMModel("openai/gpt-4o-mini", api_base=server.base_url, api_key="test")
    result = await Runner(agent(model)).invoke("go")  # auto: litellm says native
    assert result.output == City(name="Nairobi", population=4)
    body = server.requests[0]
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"]["required"] == ["name", "population"]
    assert "tools" not in body
    second = server.requests[1]["messages"]
    assert second[-1]["role"] == "user" and "population" in second[-1]["content"]


# -- stored sessions ---------------------------------------------------------------------------


async def test_a_typed_agent_in_a_stored_session_sees_its_earlier_answers(tmp_path: Any) -> None:
    model = ScriptedModel([final(name="E", population=5), final(name="F", population=6)])
    runner = Runner(agent(model, output_key="city"), checkpoint_store=str(tmp_path / "s.db"))
    first = await runner.invoke("one", session_id="s1")
    second = await runner.invoke("two", session_id="s1")
    assert (first.output, second.output) == (
        City(name="E", population=5),
        City(name="F", population=6),
    )
    earlier = [m for m in model.requests[1].messages if m.role == "tool"]
    assert [json.loads(m.content) for m in earlier] == [{"name": "E", "population": 5}]
    session = await runner.sessions.get_session("s1") if runner.sessions else None
    assert session is not None and session.values["city"] == {"name": "F", "population": 6}
