"""Conversion between adk's model types and the OpenAI chat-completions format.

Requests go out as plain OpenAI dictionaries (what litellm expects); answers
come back as litellm objects, which are read field by field (as attributes or
as dictionary keys) so that this module never imports litellm.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from adk.messages import Message, ToolCall, Usage, repair_text
from adk.models._openai_parts import parts_to_openai, tool_attachments, tool_text
from adk.models.base import ModelChunk, ModelResponse, ToolCallDelta, ToolSpec


def messages_to_openai(messages: Iterable[Message]) -> list[dict[str, Any]]:
    """The messages as OpenAI chat messages.

    A tool result's images, audio and files cannot go in its tool message
    (most providers take only text there): the tool message says they follow,
    and they go in one user message right after the run of tool messages
    they came in (docs/multimodal.md).
    """
    out: list[dict[str, Any]] = []
    held: list[dict[str, Any]] = []  # media of the tool results just converted
    for message in messages:
        if held and message.role != "tool":
            out.append(tool_attachments(held))
            held = []
        if message.parts and message.role == "tool":
            converted = message_to_openai(message)
            converted["content"] = tool_text(message, held)
            out.append(converted)
        else:
            out.append(message_to_openai(message))
    if held:
        out.append(tool_attachments(held))
    return out


def message_to_openai(message: Message) -> dict[str, Any]:
    """One message as an OpenAI chat message.

    An assistant message that calls tools carries ``tool_calls`` (and
    ``content`` ``None`` when it has no text); a tool message carries the
    ``tool_call_id`` it answers and the tool's ``name``. Lone UTF-16
    surrogates in the text or the tool-call arguments (from a model's earlier
    answer, a tool's result...) go out as U+FFFD
    (:func:`~adk.messages.repair_text`): unrepaired, they would make the
    request impossible to encode, and every attempt would fail unsent. A
    multimodal message's content is its list of parts in the OpenAI format.
    """
    out: dict[str, Any] = {"role": message.role, "content": repair_text(message.content)}
    if message.parts:
        out["content"] = parts_to_openai(message.parts)
    if message.role == "assistant" and message.tool_calls:
        out["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": repair_text(call.arguments) or "{}"},
            }
            for call in message.tool_calls
        ]
        if not message.content:
            out["content"] = None
    if message.role == "tool" and message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    if message.name:
        out["name"] = message.name
    return out


def mark_cache_breakpoint(message: dict[str, Any]) -> None:
    """Make ``message`` an Anthropic-style cache breakpoint (litellm passes it through).

    The text becomes a content block carrying ``cache_control`` (for content
    blocks, the last one carries it); a message without text (an assistant
    message that only calls tools) stays as is.
    """
    text = message.get("content")
    if isinstance(text, str) and text:
        message["content"] = [
            {"type": "text", "text": text, "cache_control": {"type": "ephemeral"}}
        ]
    elif isinstance(text, list) and text:
        text[-1] = {**text[-1], "cache_control": {"type": "ephemeral"}}


def tools_to_openai(tools: Iterable[ToolSpec]) -> list[dict[str, Any]]:
    """The tool specs as OpenAI ``function`` tools."""
    return [
        {
            "type": "function",
            "function": {
                "name": spec.name,
                "description": spec.description,
                "parameters": spec.parameters,
            },
        }
        for spec in tools
    ]


def field(obj: Any, name: str) -> Any:
    """``obj.name`` or ``obj[name]``; ``None`` when absent."""
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def usage_from(raw: Any) -> Usage:
    """A provider usage object as :class:`Usage`.

    Cached prompt tokens are read from ``prompt_tokens_details.cached_tokens``
    (OpenAI) or ``cache_read_input_tokens`` (Anthropic, as litellm passes it).
    """
    cached = _int(field(field(raw, "prompt_tokens_details"), "cached_tokens"))
    if not cached:
        cached = _int(field(raw, "cache_read_input_tokens"))
    return Usage(
        prompt_tokens=_int(field(raw, "prompt_tokens")),
        completion_tokens=_int(field(raw, "completion_tokens")),
        cached_tokens=cached,
    )


def response_from_litellm(raw: Any, default_model: str) -> ModelResponse:
    """A litellm (OpenAI-shaped) chat completion as a :class:`ModelResponse`."""
    choices = field(raw, "choices") or []
    choice = choices[0] if choices else None
    message = field(choice, "message")
    calls = [
        ToolCall(
            id=str(field(call, "id") or f"call_{index}"),
            name=str(field(field(call, "function"), "name") or ""),
            arguments=str(field(field(call, "function"), "arguments") or "{}"),
        )
        for index, call in enumerate(field(message, "tool_calls") or [])
    ]
    raw_usage = field(raw, "usage")
    usage = usage_from(raw_usage) if raw_usage is not None else Usage()
    return ModelResponse(
        message=Message.assistant(_text(field(message, "content")), tool_calls=calls, usage=usage),
        usage=usage,
        finish_reason=field(choice, "finish_reason"),
        model=str(field(raw, "model") or default_model),
    )


def chunk_from_litellm(raw: Any, default_model: str) -> ModelChunk | None:
    """A litellm streaming chunk as a :class:`ModelChunk`; ``None`` if it carries nothing."""
    choices = field(raw, "choices") or []
    choice = choices[0] if choices else None
    delta = field(choice, "delta")
    content = _text(field(delta, "content"))
    deltas = []
    for position, call in enumerate(field(delta, "tool_calls") or []):
        function = field(call, "function")
        index = field(call, "index")
        deltas.append(
            ToolCallDelta(
                index=position if index is None else int(index),
                id=field(call, "id") or None,
                name=field(function, "name") or None,
                arguments=field(function, "arguments") or "",
            )
        )
    finish_reason = field(choice, "finish_reason")
    raw_usage = field(raw, "usage")
    usage = usage_from(raw_usage) if raw_usage is not None else None
    if not (content or deltas or usage is not None or finish_reason):
        return None
    return ModelChunk(
        content=content,
        tool_calls=tuple(deltas),
        usage=usage,
        finish_reason=finish_reason,
        model=str(field(raw, "model") or default_model),
    )


def _text(content: Any) -> str:
    """Message content as text: a string, or the text parts of a content list."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(field(part, "text") or "") for part in content)
    return str(content)


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0
