"""Span attributes: GenAI semantic-convention names, message contents, serving figures.

Names follow the OpenTelemetry GenAI semantic conventions (``gen_ai.*``);
figures only adk knows (the serving layer's backend, replica, queue wait,
time to first token, cache decision) go under ``adk.*``. Message contents
are turned into attributes only when the app opted in (``record_content``):
as JSON in the conventions' message shape (role, parts).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from adk.messages import Message, ToolCall, Usage
    from adk.models.base import ModelRequest, ModelResponse
    from adk.serving.layer import ServingLayer
    from adk.serving.metrics import CallMetrics

OPERATION = "gen_ai.operation.name"
AGENT_NAME = "gen_ai.agent.name"
WORKFLOW_NAME = "gen_ai.workflow.name"
CONVERSATION = "gen_ai.conversation.id"
PROVIDER = "gen_ai.provider.name"
SYSTEM = "gen_ai.system"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
FINISH_REASONS = "gen_ai.response.finish_reasons"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
CACHE_READ_TOKENS = "gen_ai.usage.cache_read.input_tokens"
TOOL_NAME = "gen_ai.tool.name"
TOOL_CALL_ID = "gen_ai.tool.call.id"
TOOL_TYPE = "gen_ai.tool.type"
TOOL_ARGUMENTS = "gen_ai.tool.call.arguments"
TOOL_RESULT = "gen_ai.tool.call.result"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
ERROR_TYPE = "error.type"

# Request parameters with a semantic-convention name (``gen_ai.request.<name>``).
_PARAMS = ("temperature", "max_tokens", "top_p", "top_k", "seed", "frequency_penalty")

# litellm-style provider prefixes ("openai/gpt-4o") that name a provider.
_PROVIDERS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "azure": "azure.ai.openai",
    "bedrock": "aws.bedrock",
    "vertex_ai": "gcp.vertex_ai",
    "gemini": "gcp.gemini",
    "groq": "groq",
    "mistral": "mistral_ai",
    "cohere": "cohere",
    "deepseek": "deepseek",
    "xai": "x_ai",
    "ollama": "ollama",
    "perplexity": "perplexity",
}


def model_name(model: object) -> str:
    """The name a chat span gives a model: a backend name, or the model object's id."""
    if isinstance(model, str):
        return model
    for attribute in ("model", "model_name", "name"):
        value = getattr(model, attribute, None)
        if isinstance(value, str) and value:
            return value
    return type(model).__name__


def model_identity(model: object, serving: ServingLayer) -> tuple[str, str | None]:
    """The requested model id and its provider (None when unknown) for ``gen_ai.*``."""
    name = model_name(model)
    if not isinstance(model, str):
        return name, _provider_of(name)
    backend = serving._runtimes.get(model)  # configured or implicit backends only
    if backend is None:
        return name, _provider_of(name)
    config = backend.config
    provider = _provider_of(config.model) if config.kind == "litellm" else None
    return config.model, provider


def _provider_of(model_id: str) -> str | None:
    prefix, slash, _ = model_id.partition("/")
    return _PROVIDERS.get(prefix) if slash else None


def request_attributes(request: ModelRequest) -> dict[str, Any]:
    """The request's parameters under their semantic-convention names."""
    params = request.params
    found: dict[str, Any] = {}
    if params:
        for name in _PARAMS:
            value = params.get(name)
            if isinstance(value, int | float | str) and not isinstance(value, bool):
                found[f"gen_ai.request.{name}"] = value
    return found


def set_response(span: Span, response: ModelResponse) -> None:
    """The response's model, finish reason and token usage (one attribute write)."""
    found = usage_attributes(response.usage)
    if response.model:
        found[RESPONSE_MODEL] = response.model
    if response.finish_reason:
        found[FINISH_REASONS] = (response.finish_reason,)
    span.set_attributes(found)


def usage_attributes(usage: Usage) -> dict[str, Any]:
    """Token counts of one call (cached tokens only when some were)."""
    found: dict[str, Any] = {
        INPUT_TOKENS: usage.prompt_tokens,
        OUTPUT_TOKENS: usage.completion_tokens,
    }
    if usage.cached_tokens:
        found[CACHE_READ_TOKENS] = usage.cached_tokens
    return found


def set_serving(span: Span, metrics: CallMetrics) -> None:
    """The serving layer's figures for one call (its last attempt) as ``adk.serving.*``."""
    found: dict[str, Any] = {
        "adk.serving.backend": metrics.backend,
        "adk.serving.replica": metrics.replica,
        "adk.serving.queue_wait": metrics.queue_wait,
        "adk.serving.latency": metrics.latency,
        "adk.serving.cached_tokens": metrics.cached_tokens,
        "adk.serving.cache": metrics.cache,
        "adk.serving.prefix_break": metrics.prefix_break,
        "adk.serving.attempts": metrics.attempts,
    }
    if metrics.ttft is not None:
        found["adk.serving.ttft"] = metrics.ttft
    if metrics.tpot is not None:
        found["adk.serving.tpot"] = metrics.tpot
    if metrics.cost is not None:
        found["adk.serving.cost"] = metrics.cost
    span.set_attributes(found)


# -- contents (only with record_content) ---------------------------------------------------------


def _call_part(call: ToolCall) -> dict[str, Any]:
    try:
        arguments: Any = json.loads(call.arguments) if call.arguments else {}
    except ValueError:
        arguments = call.arguments
    return {"type": "tool_call", "id": call.id, "name": call.name, "arguments": arguments}


def message_json(message: Message) -> dict[str, Any]:
    """One message in the conventions' shape: its role and its parts."""
    parts: list[dict[str, Any]] = []
    if message.role == "tool":
        parts.append(
            {"type": "tool_call_response", "id": message.tool_call_id, "response": message.content}
        )
    else:
        if message.content:
            parts.append({"type": "text", "content": message.content})
        for part in message.parts:
            kind = getattr(part, "type", type(part).__name__)
            if kind != "text":
                parts.append({"type": str(kind)})  # media is named, never copied into a trace
        parts.extend(_call_part(call) for call in message.tool_calls)
    return {"role": message.role, "parts": parts}


def set_input_messages(span: Span, messages: Sequence[Message]) -> None:
    """The prompt: system instructions apart, the other messages in order."""
    system = [m.content for m in messages if m.role == "system"]
    if system:
        span.set_attribute(
            SYSTEM_INSTRUCTIONS,
            json.dumps([{"type": "text", "content": text} for text in system]),
        )
    others = [message_json(m) for m in messages if m.role != "system"]
    span.set_attribute(INPUT_MESSAGES, json.dumps(others, default=str))


def set_output_message(span: Span, message: Message, finish_reason: str | None) -> None:
    """The answer, with its finish reason."""
    entry = message_json(message)
    entry["finish_reason"] = finish_reason or ("tool_call" if message.tool_calls else "stop")
    span.set_attribute(OUTPUT_MESSAGES, json.dumps([entry], default=str))


def tool_result_text(message: Message) -> str:
    """A tool result as recorded: its text (parts are named, not copied)."""
    if not message.parts:
        return message.content
    return json.dumps(message_json(message)["parts"], default=str)
