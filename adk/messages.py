"""Chat messages, tool calls and token usage: the data every other part of adk passes around."""

from __future__ import annotations

import json
import os
from typing import Any, Literal, TypeVar

import pydantic_core
from pydantic import BaseModel, ConfigDict, Field

Role = Literal["system", "user", "assistant", "tool"]
"""Who wrote a message: the four roles of the OpenAI chat format."""

_M = TypeVar("_M", bound=BaseModel)
_new = object.__new__
_setattr = object.__setattr__


def trusted(cls: type[_M], values: dict[str, Any], fields_set: set[str]) -> _M:
    """An instance of ``cls`` from field values already known to be valid; nothing is checked.

    For data adk builds itself on hot paths (a tool message from a rendered
    result, an event around a message it holds): the instance is exactly what
    validating the same values would give, for a fraction of the cost (and
    faster than ``model_construct``). ``values`` must hold every field, in
    declaration order, each of the type validation would produce; ``fields_set``
    the names a keyword call would have passed. Only for models without private
    attributes or ``model_post_init``.
    """
    obj = _new(cls)
    _setattr(obj, "__dict__", values)
    _setattr(obj, "__pydantic_fields_set__", fields_set)
    _setattr(obj, "__pydantic_extra__", None)
    _setattr(obj, "__pydantic_private__", None)
    return obj


def new_call_id() -> str:
    """Return a fresh, unique tool-call id (``call_`` + 24 hex digits)."""
    return "call_" + os.urandom(12).hex()


class ToolCall(BaseModel):
    """A request from the model to call one tool.

    ``arguments`` is the raw JSON text the model produced: it is kept as text so
    that invalid JSON can be reported back to the model instead of being lost.
    """

    model_config = ConfigDict(frozen=True, defer_build=True)

    id: str
    name: str
    arguments: str = "{}"

    @classmethod
    def of(cls, name: str, /, id: str | None = None, **arguments: Any) -> ToolCall:
        """Build a call to ``name`` with keyword arguments serialised to JSON."""
        return cls(id=id or new_call_id(), name=name, arguments=json.dumps(arguments))

    def parsed_arguments(self) -> dict[str, Any]:
        """Decode ``arguments``; raises ``ValueError`` if it is not a JSON object."""
        value = pydantic_core.from_json(self.arguments or "{}")
        if not isinstance(value, dict):
            raise ValueError(f"tool arguments must be a JSON object, got {type(value).__name__}")
        return value


class Usage(BaseModel):
    """Token counts of one model call, or a sum of several.

    ``cached_tokens`` is the part of ``prompt_tokens`` the provider served from
    its prompt/KV cache.
    """

    model_config = ConfigDict(frozen=True, defer_build=True)

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
        )


class Message(BaseModel):
    """One chat message.

    - ``role``: ``system``, ``user``, ``assistant`` or ``tool``.
    - ``content``: the text (empty for an assistant message that only calls tools).
    - ``tool_calls``: the calls an assistant message asks for.
    - ``tool_call_id`` and ``name``: on a tool message, the call it answers and
      the tool's name; on other roles ``name`` optionally names the speaker.
    - ``usage``: the tokens the model call that produced this message cost.
    """

    model_config = ConfigDict(frozen=True, defer_build=True)

    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None
    usage: Usage | None = Field(default=None, repr=False)

    @classmethod
    def system(cls, content: str) -> Message:
        """A system message."""
        if type(content) is str:
            return trusted(
                cls,
                {
                    "role": "system",
                    "content": content,
                    "tool_calls": (),
                    "tool_call_id": None,
                    "name": None,
                    "usage": None,
                },
                {"role", "content"},
            )
        return cls(role="system", content=content)

    @classmethod
    def user(cls, content: str, *, name: str | None = None) -> Message:
        """A user message."""
        if type(content) is str and (name is None or type(name) is str):
            return trusted(
                cls,
                {
                    "role": "user",
                    "content": content,
                    "tool_calls": (),
                    "tool_call_id": None,
                    "name": name,
                    "usage": None,
                },
                {"role", "content", "name"},
            )
        return cls(role="user", content=content, name=name)

    @classmethod
    def assistant(
        cls,
        content: str = "",
        *,
        tool_calls: list[ToolCall] | tuple[ToolCall, ...] = (),
        name: str | None = None,
        usage: Usage | None = None,
    ) -> Message:
        """An assistant message, optionally calling tools."""
        calls = tuple(tool_calls)
        if (
            type(content) is str
            and (name is None or type(name) is str)
            and (usage is None or isinstance(usage, Usage))
            and (not calls or all(isinstance(call, ToolCall) for call in calls))
        ):
            return trusted(
                cls,
                {
                    "role": "assistant",
                    "content": content,
                    "tool_calls": calls,
                    "tool_call_id": None,
                    "name": name,
                    "usage": usage,
                },
                {"role", "content", "tool_calls", "name", "usage"},
            )
        return cls(role="assistant", content=content, tool_calls=calls, name=name, usage=usage)

    @classmethod
    def tool(cls, content: str, *, tool_call_id: str, name: str) -> Message:
        """The result of the tool call ``tool_call_id`` of tool ``name``."""
        if type(content) is str and type(tool_call_id) is str and type(name) is str:
            return trusted(
                cls,
                {
                    "role": "tool",
                    "content": content,
                    "tool_calls": (),
                    "tool_call_id": tool_call_id,
                    "name": name,
                    "usage": None,
                },
                {"role", "content", "tool_call_id", "name"},
            )
        return cls(role="tool", content=content, tool_call_id=tool_call_id, name=name)
