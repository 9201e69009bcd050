"""ScriptedModel: a deterministic ChatModel for tests and offline examples."""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any

import anyio

from adk.content import SEEN, media_tokens, unsupported_input
from adk.errors import ModelBadRequestError, ScriptExhaustedError
from adk.messages import Message, ToolCall, Usage, trusted
from adk.models.base import ModelChunk, ModelRequest, ModelResponse, ToolCallDelta

ScriptItem = str | Message | ModelResponse | ToolCall | list[ToolCall] | BaseException
"""One scripted answer: text, a message, a full response, tool call(s), or an exception to raise."""

_PLAIN_ANSWERS = frozenset({str, Message, ModelResponse, ToolCall, list})

ScriptFunction = Callable[[ModelRequest], ScriptItem | Awaitable[ScriptItem]]


def estimate_tokens(text: str) -> int:
    """A rough token count (4 characters per token) for scripted usage figures."""
    return (len(text) + 3) // 4


def _prompt_tokens(request: ModelRequest) -> int:
    """Estimated prompt tokens: 4 characters a token, plus each image, audio or file part.

    Parts are counted by :func:`adk.content.part_tokens` (an image 765 tokens,
    85 at low detail; audio one per kB; a file one per 8 bytes; docs/multimodal.md).
    """
    messages = request.messages
    chars = 16 * len(messages)
    for message in messages:  # runs over the whole conversation on every call: kept lean
        chars += len(message.content)
        if message.tool_calls:
            for call in message.tool_calls:
                chars += len(call.name) + len(call.arguments)
    for spec in request.tools:
        chars += len(spec.name) + len(spec.description) + 32
    tokens = (chars + 3) // 4
    if SEEN.parts:  # only once a message with parts exists in this process
        for message in messages:
            if message.parts:
                tokens += media_tokens(message.parts)
    return tokens


@functools.lru_cache(maxsize=1024)
def _usage(prompt_tokens: int, completion_tokens: int) -> Usage:
    """The usage figures of one scripted answer; frozen, so equal figures share one object."""
    return trusted(
        Usage,
        {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "cached_tokens": 0,
        },
        {"prompt_tokens", "completion_tokens"},
    )


class ScriptedModel:
    """Answers from a script instead of an LLM.

    ``script`` is a list of answers used in order (one per call), or a
    function of the :class:`ModelRequest` returning an answer (sync or
    async). An answer is a string (assistant text), a :class:`Message`, a
    :class:`ModelResponse`, a :class:`ToolCall` or a list of them (an assistant
    message calling those tools), or an exception instance to raise.

    Every request is recorded in :attr:`requests`. ``latency`` (seconds) is
    slept before each answer. :meth:`stream` sends the same answer in chunks of
    ``chunk_chars`` characters, tool-call arguments included, so streaming
    code paths are exercised for real.

    ``accepts`` declares the kinds of input besides text the model takes
    (``"image"``, ``"audio"``, ``"file"``; default: all): a request with another
    kind of part fails with :class:`~adk.ModelBadRequestError` before any
    answer is used, as a real text-only model's call would.
    """

    def __init__(
        self,
        script: Sequence[ScriptItem] | ScriptFunction,
        *,
        latency: float = 0.0,
        chunk_chars: int = 8,
        name: str = "scripted",
        accepts: Iterable[str] | None = None,
    ) -> None:
        if chunk_chars < 1:
            raise ValueError("chunk_chars must be at least 1")
        self._function: ScriptFunction | None = None
        self._script: list[ScriptItem] = []
        if callable(script):
            self._function = script
        else:
            self._script = list(script)
        self.latency = latency
        self.chunk_chars = chunk_chars
        self.name = name
        self.accepts: frozenset[str] | None = None if accepts is None else frozenset(accepts)
        """The kinds of non-text input the model takes; None: every kind."""
        self.requests: list[ModelRequest] = []

    @property
    def calls(self) -> int:
        """How many times the model was called."""
        return len(self.requests)

    @property
    def remaining(self) -> int:
        """How many list answers are left (0 for a function script)."""
        return max(0, len(self._script) - len(self.requests))

    async def generate(self, request: ModelRequest) -> ModelResponse:
        """The next scripted answer."""
        if self.accepts is not None:
            problem = unsupported_input(request.messages, self.accepts, self.name)
            if problem is not None:
                raise ModelBadRequestError(str(problem))
        requests = self.requests
        index = len(requests)
        requests.append(request)
        if self.latency > 0:
            await anyio.sleep(self.latency)
        function = self._function
        item: ScriptItem
        if function is not None:
            answer: Any = function(request)
            if type(answer) not in _PLAIN_ANSWERS and inspect.isawaitable(answer):
                answer = await answer
            item = answer
        elif index < len(self._script):
            item = self._script[index]
        else:
            raise ScriptExhaustedError(
                f"ScriptedModel {self.name!r} got call #{index + 1} but its script has only "
                f"{len(self._script)} answers; last message was: "
                f"{request.messages[-1].content[:200] if request.messages else '(none)'!r}"
            )
        return self._to_response(item, request)

    def _to_response(self, item: ScriptItem, request: ModelRequest) -> ModelResponse:
        # ``valid``: the message's values are exactly what validation would make of them
        # (a plain ``str``, or taken from a validated message or call).
        name: str | None = None
        calls: tuple[ToolCall, ...]
        if type(item) is str:
            role, content, calls, usage, valid = "assistant", item, (), None, True
        elif type(item) is ToolCall:
            role, content, calls, usage, valid = "assistant", "", (item,), None, True
        elif isinstance(item, BaseException):
            raise item
        elif isinstance(item, ModelResponse):
            return item
        elif isinstance(item, str):
            role, content, calls, usage, valid = "assistant", item, (), None, False
        elif isinstance(item, ToolCall):
            role, content, calls, usage, valid = "assistant", "", (item,), None, True
        elif isinstance(item, Message):
            role, content, calls, usage = item.role, item.content, item.tool_calls, item.usage
            name, valid = item.name, True
        elif isinstance(item, list):
            role, content, calls, usage = "assistant", "", tuple(item), None
            valid = all(isinstance(call, ToolCall) for call in calls)
        else:
            raise TypeError(f"ScriptedModel cannot answer with {type(item).__name__}")
        if usage is not None:
            assert isinstance(item, Message)
            message = item
        else:
            completion_chars = len(content)
            for call in calls:
                completion_chars += len(call.name) + len(call.arguments)
            usage = _usage(_prompt_tokens(request), (completion_chars + 3) // 4)
            if valid:
                message = trusted(
                    Message,
                    {
                        "role": role,
                        "content": content,
                        "tool_calls": calls,
                        "tool_call_id": None,
                        "name": name,
                        "usage": usage,
                        "parts": (),
                    },
                    {"role", "content", "tool_calls", "name", "usage"},
                )
            else:
                message = Message(
                    role=role, content=content, tool_calls=calls, name=name, usage=usage
                )
        finish = "tool_calls" if message.tool_calls else "stop"
        return ModelResponse(message=message, usage=usage, finish_reason=finish, model=self.name)

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelChunk]:
        """The next scripted answer in chunks of ``chunk_chars`` characters."""
        response = await ScriptedModel.generate(self, request)
        message, size = response.message, self.chunk_chars
        for start in range(0, len(message.content), size):
            yield ModelChunk(content=message.content[start : start + size])
        for index, call in enumerate(message.tool_calls):
            yield ModelChunk(tool_calls=(ToolCallDelta(index=index, id=call.id, name=call.name),))
            for start in range(0, len(call.arguments), size):
                piece = call.arguments[start : start + size]
                yield ModelChunk(tool_calls=(ToolCallDelta(index=index, arguments=piece),))
        yield ModelChunk(
            usage=response.usage, finish_reason=response.finish_reason, model=response.model
        )
