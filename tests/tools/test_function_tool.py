from __future__ import annotations

import enum
import threading
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field, field_validator

from adk import (
    ArgumentsInvalid,
    BaseTool,
    ConfigurationError,
    FunctionTool,
    RunContext,
    ToolContext,
    tool,
)
from adk.tools.execution import render_result
from adk.tools.function import parse_docstring

pytestmark = pytest.mark.anyio


class Unit(enum.Enum):
    C = "celsius"
    F = "fahrenheit"


class Address(BaseModel):
    street: str
    city: str = Field(description="City name")


def ctx_for(name: str) -> ToolContext:
    return ToolContext(RunContext.create(), agent_name="agent", tool_name=name, call_id="c1")


def test_schema_from_hints_and_google_docstring() -> None:
    @tool
    def forecast(
        city: str, days: int = 3, unit: Unit = Unit.C, detail: Literal["low", "high"] = "low"
    ) -> str:
        """Weather forecast for a city.

        Uses the national service.

        Args:
            city: Name of the city,
                in English.
            days (int): How many days ahead.
            unit: Temperature unit.

        Returns:
            The forecast text.
        """
        return ""

    spec = forecast.spec
    assert spec.name == "forecast"
    assert spec.description == "Weather forecast for a city.\n\nUses the national service."
    props = spec.parameters["properties"]
    assert props["city"] == {"type": "string", "description": "Name of the city, in English."}
    assert props["days"]["type"] == "integer" and props["days"]["default"] == 3
    assert props["days"]["description"] == "How many days ahead."
    assert props["detail"]["enum"] == ["low", "high"]
    assert spec.parameters["required"] == ["city"]
    assert "$defs" in spec.parameters  # the enum
    assert "title" not in spec.parameters


def test_sphinx_docstring_and_overrides() -> None:
    summary, params = parse_docstring(
        """Convert money.

        :param amount: how much
        :param str currency: ISO code
        :returns: converted
        """
    )
    assert summary == "Convert money."
    assert params == {"amount": "how much", "currency": "ISO code"}

    def convert(amount: float) -> float:
        return amount

    custom = FunctionTool(convert, name="fx", description="Convert.", return_directly=True)
    assert (custom.name, custom.description, custom.return_directly) == ("fx", "Convert.", True)


async def test_pydantic_model_parameters_arrive_as_models() -> None:
    seen: list[Any] = []

    @tool
    async def ship(to: Address, items: list[str]) -> str:
        """Ship items."""
        seen.append(to)
        return f"{len(items)} items to {to.city}"

    schema = ship.spec.parameters
    assert schema["properties"]["to"] == {"$ref": "#/$defs/Address"}
    args = {"to": {"street": "Main 1", "city": "Oslo"}, "items": ["a", "b"]}
    validated = ship.validate(args)
    assert validated["to"] == Address(street="Main 1", city="Oslo")
    assert await ship.call(validated, ctx_for("ship")) == "2 items to Oslo"
    assert isinstance(seen[0], Address)
    with pytest.raises(ArgumentsInvalid, match="at 'to/city': Field required"):
        ship.validate({"to": {"street": "x"}, "items": []})


def test_field_validators_of_model_parameters_report_invalid_arguments() -> None:
    class Email(BaseModel):
        address: str

        @field_validator("address")
        @classmethod
        def must_have_at(cls, value: str) -> str:
            if "@" not in value:
                raise ValueError("an email address needs an @")
            return value

    @tool
    def send(to: Email, ctx: ToolContext | None = None) -> str:
        """Send mail."""
        return "sent"

    assert set(send.spec.parameters["properties"]) == {"to"}
    with pytest.raises(ArgumentsInvalid, match="at 'to/address': Value error, an email address"):
        send.validate({"to": {"address": "nobody"}})


def test_validator_is_compiled_once_and_cached() -> None:
    echo = BaseTool("echo", parameters={"type": "object", "properties": {"a": {"type": "integer"}}})
    echo.validate({"a": 1})
    check = echo._check
    echo.validate({"a": 2})
    assert check is not None and echo._check is check
    with pytest.raises(ArgumentsInvalid, match="at 'a': 'x' is not of type 'integer'"):
        echo.validate({"a": "x"})


async def test_sync_functions_run_in_a_worker_thread_unless_told_otherwise() -> None:
    loop_thread = threading.get_ident()

    def where() -> int:
        return threading.get_ident()

    threaded = FunctionTool(where)
    inline = FunctionTool(where, run_in_thread=False)
    assert await threaded.call({}, ctx_for("where")) != loop_thread
    assert await inline.call({}, ctx_for("where")) == loop_thread


async def test_context_parameter_is_hidden_and_injected() -> None:
    @tool
    def whoami(ctx: ToolContext, greeting: str = "hi") -> str:
        """Say who is calling."""
        return f"{greeting} {ctx.agent_name} via {ctx.call_id}"

    assert set(whoami.spec.parameters["properties"]) == {"greeting"}
    assert await whoami.call({}, ctx_for("whoami")) == "hi agent via c1"


def test_unsupported_signatures_are_rejected_clearly() -> None:
    def star(*args: int) -> None: ...

    def kw(**kwargs: int) -> None: ...

    def posonly(a: int, /) -> None: ...

    for fn in (star, kw):
        with pytest.raises(ConfigurationError, match=r"\*args/\*\*kwargs"):
            FunctionTool(fn)
    with pytest.raises(ConfigurationError, match="positional-only"):
        FunctionTool(posonly)
    with pytest.raises(ConfigurationError, match="callable"):
        FunctionTool("nope")  # type: ignore[arg-type]


async def test_base_tool_with_hand_written_schema() -> None:
    class Echo(BaseTool):
        def __init__(self) -> None:
            super().__init__(
                "echo",
                "Echo text.",
                {"type": "object", "properties": {"text": {"type": "string", "maxLength": 5}}},
            )

        async def call(self, arguments: dict[str, Any], ctx: ToolContext) -> Any:
            return arguments["text"]

    echo = Echo()
    echo.validate({"text": "hey"})
    with pytest.raises(ArgumentsInvalid, match="too long"):
        echo.validate({"text": "too long"})
    with pytest.raises(ConfigurationError, match="invalid JSON schema"):
        BaseTool("bad", parameters={"type": "no-such-type"}).validate({})


def test_render_result() -> None:
    assert render_result("x") == "x"
    assert render_result(None) == ""
    assert render_result({"a": [1, "é"]}) == '{"a":[1,"é"]}'
    assert render_result(Address(street="s", city="c")) == '{"street":"s","city":"c"}'
    assert render_result([Address(street="s", city="c")]) == '[{"street":"s","city":"c"}]'
    assert render_result(Unit.C) == '"celsius"'
    assert render_result({"obj": object}) == '{"obj":"<class \'object\'>"}'
