"""Structured output: an agent's answer validated against a type or a JSON Schema.

``ChatModelAgent(output_type=...)`` compiles the type once into an
:class:`OutputSpec`: its JSON Schema, how to validate a model's answer, and
how to turn the validated value back into JSON-able data (for ``output_key``,
agent tools and stored sessions). How the model is asked for that answer is
the *mode*:

- ``"native"``: the provider's JSON-schema response format (``response_format``);
- ``"tool"``: a ``final_result`` tool whose arguments are the answer;
- ``"prompted"``: the schema in the instruction, the answer as JSON text.

``"auto"`` asks the model: a ChatModel may declare ``output_modes`` (the
modes it supports, best first); for a litellm model id litellm tells whether
the model supports response schemas or function calling. A model nobody
knows gets ``"tool"``, which nearly every chat model supports.

Provider response formats and tool arguments must be JSON objects, so a type
whose schema is not an object (a list, a union, a scalar) is wrapped as
``{"result": ...}`` on the wire in every mode and unwrapped on validation.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any, Literal, get_args, get_origin, is_typeddict

from adk.errors import ArgumentTypeError, ConfigurationError, OutputValidationError
from adk.models.base import ChatModel, ToolCallDelta
from adk.tools.base import ArgumentsInvalid, BaseTool, ToolContext

OutputMode = Literal["auto", "native", "tool", "prompted"]
"""How the model is asked for structured output (see the module docstring)."""

OUTPUT_MODES: tuple[str, ...] = ("auto", "native", "tool", "prompted")
FINAL_RESULT_TOOL = "final_result"
"""The name of the tool through which the model gives its answer in ``"tool"`` mode."""

_MODES_BY_MODEL: dict[str, str] = {}


class OutputInvalid(ValueError):
    """A model's answer does not fit the output type; ``errors`` says where and why."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


class OutputSpec:
    """An output type compiled once: schema, validation, and dumping to JSON-able data."""

    __slots__ = (
        "_adapter",
        "_validator",
        "name",
        "output_type",
        "schema",
        "wire_schema",
        "wrapped",
    )

    def __init__(self, agent: str, output_type: object) -> None:
        self.output_type = output_type
        self._adapter: Any = None
        self._validator: Any = None
        if isinstance(output_type, dict):
            self.schema = _checked_json_schema(agent, output_type)
            self._validator = _json_schema_validator(self.schema)
            self.name = str(output_type.get("title") or "output")
        else:
            self._adapter = _type_adapter(agent, output_type)
            self.schema = self._adapter.json_schema()
            self.name = getattr(output_type, "__name__", "output")
        self.wrapped = self.schema.get("type") != "object" or "anyOf" in self.schema
        self.wire_schema: dict[str, Any] = (
            {"type": "object", "properties": {"result": self.schema}, "required": ["result"]}
            if self.wrapped
            else self.schema
        )
        """The schema the model is asked to fill: always a JSON object."""

    def parse_text(self, text: str) -> Any:
        """The value of a text answer (JSON, optionally in a ```json fence); else OutputInvalid."""
        body = _without_fence(text)
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise OutputInvalid([f"the answer is not valid JSON: {exc}"]) from None
        return self.parse_data(data)

    def parse_data(self, data: Any) -> Any:
        """The value of JSON ``data`` shaped like :attr:`wire_schema`; else OutputInvalid."""
        if self.wrapped and isinstance(data, dict) and "result" in data:
            data = data["result"]  # else the bare value, as prompted models sometimes give it
        if self._validator is not None:
            errors = [_schema_error(error) for error in self._validator.iter_errors(data)]
            if errors:
                raise OutputInvalid(errors[:5])
            return data
        from pydantic import ValidationError

        try:
            return self._adapter.validate_python(data)
        except ValidationError as exc:
            raise OutputInvalid(_pydantic_errors(exc)) from None

    def dump(self, value: Any) -> Any:
        """``value`` as JSON-able data (dicts, lists, strings, numbers, bools, None)."""
        if self._adapter is None:
            return value
        return self._adapter.dump_python(value, mode="json")

    def dump_json(self, value: Any) -> str:
        """``value`` as JSON text."""
        return json.dumps(self.dump(value), ensure_ascii=False)

    def response_format(self) -> dict[str, Any]:
        """The OpenAI-style ``response_format`` that asks for :attr:`wire_schema`."""
        return {
            "type": "json_schema",
            "json_schema": {"name": _identifier(self.name), "schema": self.wire_schema},
        }

    def prompt(self) -> str:
        """The instruction of ``"prompted"`` mode: answer with JSON only, of this schema."""
        schema = json.dumps(self.wire_schema, separators=(",", ":"))
        return (
            "Give your final answer as a single JSON value and nothing else (no prose, no "
            f"code fence), matching this JSON Schema:\n{schema}"
        )

    def describe(self) -> str:
        """One sentence advertising the output schema (an agent tool's description ends with it)."""
        schema = json.dumps(self.schema, separators=(",", ":"))
        return f"Returns JSON matching this schema: {schema}"


class FinalResultTool(BaseTool):
    """The tool through which a model gives its structured answer (``"tool"`` mode).

    Its arguments are validated against the output type; invalid ones are a
    tool error the model reads and corrects (counted against
    ``output_retries``). A valid call ends the turn (``return_directly``) and
    its result is the answer as JSON text.
    """

    def __init__(self, spec: OutputSpec) -> None:
        super().__init__(
            FINAL_RESULT_TOOL,
            "Give your final answer. Call this once, when you are done, with the answer as "
            "the arguments.",
            spec.wire_schema,
            return_directly=True,
        )
        self.output = spec
        self.uses_context = False

    def validate(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """The arguments if they are a valid answer; :class:`ArgumentsInvalid` listing why not."""
        try:
            self.output.parse_data(arguments)
        except OutputInvalid as exc:
            raise ArgumentsInvalid("; ".join(exc.errors)) from None
        return arguments

    async def call(self, arguments: dict[str, Any], ctx: ToolContext) -> Any:
        """The answer as JSON text (what the turn's last message holds)."""
        return self.output.dump_json(self.output.parse_data(arguments))


def final_result_text(deltas: Sequence[ToolCallDelta], finals: set[int]) -> str:
    """The text of streamed ``final_result`` arguments in ``deltas``.

    ``finals`` holds the indexes of the calls known to be ``final_result``
    (a call's name arrives in its first delta); it is updated here.
    """
    pieces = []
    for delta in deltas:
        if delta.name == FINAL_RESULT_TOOL:
            finals.add(delta.index)
        if delta.arguments and delta.index in finals:
            pieces.append(delta.arguments)
    return "".join(pieces)


def output_error(spec: OutputSpec, raw: str, errors: list[str], attempts: int) -> Exception:
    """The error that ends a turn whose answers stayed invalid after every retry."""
    return OutputValidationError(
        f"the model's output is not a valid {spec.name} after {attempts} attempt(s): "
        + "; ".join(errors),
        raw=raw,
        errors=errors,
    )


def correction(errors: list[str]) -> str:
    """What the model is told about its invalid answer before it tries again."""
    listed = "\n".join(f"- {error}" for error in errors)
    return (
        f"Your answer is not valid:\n{listed}\nAnswer again with only a JSON value that "
        "matches the required schema."
    )


async def resolve_mode(model: ChatModel | str, requested: str) -> str:
    """The mode to use with ``model``: ``requested`` unless it is ``"auto"``.

    Asking litellm imports it (off the event loop, once per process) and is
    done once per model id.
    """
    if requested != "auto":
        return requested
    declared = getattr(model, "output_modes", None)
    if declared:
        for mode in ("native", "tool", "prompted"):
            if mode in declared:
                return mode
    model_id = model if isinstance(model, str) else getattr(model, "model", None)
    if not isinstance(model_id, str) or not model_id:
        return "tool"
    known = _MODES_BY_MODEL.get(model_id)
    if known is None:
        from adk.models.litellm_model import _load_litellm  # loaded by the first such model

        known = _MODES_BY_MODEL[model_id] = _litellm_mode(await _load_litellm(), model_id)
    return known


def _litellm_mode(litellm: Any, model_id: str) -> str:
    """The mode litellm's knowledge of ``model_id`` gives: native, tool or prompted."""
    try:
        if litellm.supports_response_schema(model=model_id):
            return "native"
        if litellm.supports_function_calling(model=model_id):
            return "tool"
        litellm.get_model_info(model_id)  # known, with neither: prompted JSON
    except Exception:
        return "tool"  # unknown to litellm: tool calling is the safest guess
    return "prompted"


def checked_output_type(agent: str, output_type: object) -> OutputSpec | None:
    """The compiled spec of ``output_type`` (None for no structured output)."""
    if output_type is None or output_type is str:
        return None
    return OutputSpec(agent, output_type)


def _type_adapter(agent: str, output_type: object) -> Any:
    """A pydantic TypeAdapter for ``output_type``, or a clear error naming the argument."""
    from pydantic import TypeAdapter
    from pydantic.errors import PydanticSchemaGenerationError, PydanticUserError

    if not _is_type_like(output_type):
        raise ArgumentTypeError(
            f"agent {agent!r}: output_type must be a pydantic model, a dataclass, a TypedDict, "
            "a list or union of those, or a JSON Schema dict, "
            f"got {type(output_type).__name__} {output_type!r}"
        )
    try:
        adapter: TypeAdapter[Any] = TypeAdapter(output_type)
        adapter.json_schema()
    except (PydanticSchemaGenerationError, PydanticUserError, TypeError) as exc:
        raise ConfigurationError(
            f"agent {agent!r}: output_type {output_type!r} has no JSON Schema: {exc}"
        ) from exc
    return adapter


def _is_type_like(value: object) -> bool:
    """True for a class, a TypedDict, a dataclass, or a generic alias / union of types."""
    if isinstance(value, type) or is_typeddict(value) or dataclasses.is_dataclass(value):
        return True
    return get_origin(value) is not None and bool(get_args(value))


def _checked_json_schema(agent: str, schema: dict[Any, Any]) -> dict[str, Any]:
    """``schema`` if it is a valid JSON Schema; ConfigurationError naming the problem."""
    import jsonschema

    cls = jsonschema.validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ConfigurationError(
            f"agent {agent!r}: output_type is not a valid JSON Schema: {exc.message}"
        ) from exc
    return dict(schema)


def _json_schema_validator(schema: dict[str, Any]) -> Any:
    import jsonschema

    return jsonschema.validators.validator_for(schema)(schema)


def _schema_error(error: Any) -> str:
    where = "/".join(str(part) for part in error.absolute_path)
    return f"at '{where}': {error.message}" if where else str(error.message)


def _pydantic_errors(exc: Any) -> list[str]:
    errors = []
    for error in exc.errors(include_url=False)[:5]:
        where = ".".join(str(part) for part in error["loc"])
        errors.append(f"at '{where}': {error['msg']}" if where else str(error["msg"]))
    return errors


def _without_fence(text: str) -> str:
    """``text`` without a surrounding Markdown code fence (models add one despite being told)."""
    body = text.strip()
    if body.startswith("```"):
        first_newline = body.find("\n")
        if first_newline != -1 and body.endswith("```"):
            return body[first_newline + 1 : -3].strip()
    return body


def _identifier(name: str) -> str:
    """``name`` as a response-format name (letters, digits, ``_`` and ``-`` only)."""
    cleaned = "".join(ch if ch.isalnum() or ch in "_-" else "_" for ch in name)
    return cleaned[:64] or "output"
