"""Chat messages, tool calls and token usage: the data every other part of adk passes around."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from typing import Any, Literal, TypeVar

import pydantic_core
from pydantic import BaseModel, ConfigDict, Field, model_validator

from adk.content import PART_TYPES, AudioPart, FilePart, ImagePart, Part, TextPart, split_content

Role = Literal["system", "user", "assistant", "tool"]
"""Who wrote a message: the four roles of the OpenAI chat format."""

Content = str | TextPart | ImagePart | AudioPart | FilePart | Sequence[Any]
"""A message's content as given: text, a part, or a list of parts and str (:mod:`adk.content`)."""

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
        """Decode ``arguments`` (empty text is ``{}``).

        Whatever is wrong with them (not JSON text, invalid JSON, nesting
        deeper than the parser's limit, a lone UTF-16 surrogate, raw or as a
        ``\\u`` escape, JSON other than an object) raises ``ValueError`` and
        nothing else, because the tool runner turns exactly that into an
        error message the model reads and can correct: a malformed call must
        never end the run. A surrogate pair split into two code points (an
        emoji cut between two stream chunks) is joined first.
        """
        arguments = self.arguments
        if not (type(arguments) is str and arguments and arguments.isascii()):
            arguments = _arguments_text(arguments)  # the checks and repairs of rarer input
        value = _decode_json(arguments)
        if not isinstance(value, dict):
            raise ValueError(f"tool arguments must be a JSON object, got {type(value).__name__}")
        return value


_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _arguments_text(arguments: object) -> str:
    """``arguments`` as JSON text the parser accepts, or ``ValueError`` saying what is wrong."""
    if not isinstance(arguments, str):
        raise ValueError(
            f"tool arguments must be JSON text (a str), got {type(arguments).__name__}"
        )
    if arguments.isascii() or _SURROGATE.search(arguments) is None:
        return arguments or "{}"
    position = _lone_surrogate(arguments)
    if position is not None:
        raise ValueError(
            f"tool arguments contain a lone UTF-16 surrogate U+{ord(arguments[position]):04X} "
            f"at index {position} (half of a character such as an emoji): not valid Unicode text"
        )
    return arguments.encode("utf-16-le", "surrogatepass").decode("utf-16-le")


def _decode_json(text: str) -> Any:
    """Parse JSON ``text``; an escaped lone surrogate gets a message that names it."""
    try:
        return pydantic_core.from_json(text)
    except ValueError as exc:
        if "hex escape" in str(exc) and _SURROGATE_ESCAPE.search(text):
            raise ValueError(
                f"tool arguments hold a \\u escape of a lone UTF-16 surrogate (half of a "
                f"character such as an emoji): {exc}"
            ) from None
        raise


def _lone_surrogate(text: str) -> int | None:
    """Index of the first surrogate of ``text`` that is not half of a high-low pair, if any."""
    match = _SURROGATE.search(text)
    while match is not None:
        index = match.start()
        if not (
            "\ud800" <= text[index] <= "\udbff"
            and "\udc00" <= text[index + 1 : index + 2] <= "\udfff"
        ):
            return index
        match = _SURROGATE.search(text, index + 2)
    return None


def repair_text(text: str) -> str:
    """``text`` with each lone UTF-16 surrogate replaced by U+FFFD, REPLACEMENT CHARACTER.

    A model's text can hold lone surrogates (a provider escaping half a
    character, a stream cutting an emoji between two chunks). Such a ``str``
    cannot be encoded as UTF-8, so it would break whatever writes it later:
    an event as JSON, a checkpoint, the next request. A high surrogate
    directly followed by a low one (both halves of a cut character) is joined
    into that character. Clean text is returned itself, after one
    ``isascii`` check (or one UTF-8 encoding for non-ASCII text).
    """
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


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


def _no_parts(parts: tuple[Any, ...]) -> bool:
    """A plain message's dump leaves ``parts`` out: it looks as it did before parts existed."""
    return not parts


class Message(BaseModel):
    """One chat message.

    - ``role``: ``system``, ``user``, ``assistant`` or ``tool``.
    - ``content``: the text (empty for an assistant message that only calls tools).
      For a multimodal message, its text parts joined by newlines.
    - ``parts``: the whole content in order (text, images, audio, files) when the
      message holds more than text; ``()`` for plain text. Give a list of parts
      and str as ``content`` (``Message.user(["Describe:", ImagePart(...)])``)
      and both fields are filled in. Only user and tool messages take non-text parts.
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
    parts: tuple[Part, ...] = Field(default=(), exclude_if=_no_parts)

    @model_validator(mode="before")
    @classmethod
    def _content_parts(cls, data: Any) -> Any:
        """A list of parts given as ``content``: split into the text and ``parts``."""
        if type(data) is not dict:
            return data
        content, parts = data.get("content"), data.get("parts")
        if not parts and (type(content) is str or content is None):
            return data  # plain text: one lookup more than before
        return _with_parts(data, content, parts)

    @property
    def multimodal(self) -> bool:
        """Whether the message holds more than text (its ``parts`` are not empty)."""
        return bool(self.parts)

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
                    "parts": (),
                },
                {"role", "content"},
            )
        return cls(role="system", content=content)

    @classmethod
    def user(cls, content: Content, *, name: str | None = None) -> Message:
        """A user message: text, or a list of parts and str (``["Describe:", image]``)."""
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
                    "parts": (),
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
                    "parts": (),
                },
                {"role", "content", "tool_calls", "name", "usage"},
            )
        return cls(role="assistant", content=content, tool_calls=calls, name=name, usage=usage)

    @classmethod
    def tool(cls, content: Content, *, tool_call_id: str, name: str) -> Message:
        """The result of the tool call ``tool_call_id`` of tool ``name`` (text or parts)."""
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
                    "parts": (),
                },
                {"role", "content", "tool_call_id", "name"},
            )
        return cls(role="tool", content=content, tool_call_id=tool_call_id, name=name)


def _with_parts(data: dict[str, Any], content: Any, parts: Any) -> dict[str, Any]:
    """The fields of a message given parts (as ``content`` or ``parts``), checked."""
    if parts:
        if content is not None and type(content) is not str:
            raise ValueError("give the parts either as content or as parts, not both")
        if isinstance(parts, str | bytes | dict) or not isinstance(parts, Sequence):
            raise ValueError(f"parts must be a list of parts, got {type(parts).__name__}")
        text, parts = split_content(parts)
        if content and content != text:
            raise ValueError(
                "content must be the text of parts (their text parts joined by newlines): "
                "give a list of parts as content, or parts alone"
            )
    else:
        if isinstance(content, PART_TYPES):
            content = [content]
        if isinstance(content, bytes | bytearray | dict) or not isinstance(content, Sequence):
            raise ValueError(
                f"content must be a str or a list of parts and str, got {type(content).__name__}"
            )
        text, parts = split_content(content)
    role = data.get("role")
    if parts and role not in ("user", "tool") and any(p.type != "text" for p in parts):
        raise ValueError(
            f"{'an' if role == 'assistant' else 'a'} {role} message cannot hold images, audio or "
            "files: only user and tool "
            "messages can"
        )
    return {**data, "content": text, "parts": parts}


def repair_message(message: Message) -> Message:
    """``message`` with :func:`repair_text` applied to its text and its tool calls.

    For where a model's reply enters a run, so that every later step (tools,
    events, checkpoints, the next request) sees valid Unicode. Repaired are
    the content and each tool call's ``arguments``, ``name`` and ``id``.
    Returns ``message`` itself when nothing needs repair (the usual case),
    else a repaired copy; the original is left as it was.
    """
    content = repair_text(message.content)
    calls = tuple(_repair_call(call) for call in message.tool_calls)
    if content is message.content and all(
        new is old for new, old in zip(calls, message.tool_calls, strict=True)
    ):
        return message
    return message.model_copy(update={"content": content, "tool_calls": calls})


def _repair_call(call: ToolCall) -> ToolCall:
    """``call`` itself if its text is clean, else a copy with :func:`repair_text` applied."""
    arguments, name, call_id = (repair_text(text) for text in (call.arguments, call.name, call.id))
    if arguments is call.arguments and name is call.name and call_id is call.id:
        return call
    return call.model_copy(update={"arguments": arguments, "name": name, "id": call_id})
