"""Middleware: one small protocol around model calls and tool calls.

A middleware is an object with two optional async hooks, each given the
call and ``call_next`` (the rest of the chain, then the call itself):

- ``model_call(request, call_next) -> ModelResponse``
- ``tool_call(call, call_next) -> result`` (the tool's return value)

It may change what goes in (call ``call_next`` with another request or other
arguments), change what comes out, answer without calling ``call_next``
(nothing is called: a cache), call it again (a retry), or raise (the agent
ends with an error event). Subclass :class:`Middleware` and override a hook,
or only the simpler ``before_*``/``after_*`` ones its default hooks call.

Order: the Runner's middleware is outermost, then the agent's, each list in
its order: ``Runner(middleware=[a, b])`` with ``ChatModelAgent(middleware=[c])``
runs ``a`` around ``b`` around ``c`` around the call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from adk.errors import ArgumentTypeError, GuardrailTripped, MiddlewareError
from adk.models.base import ModelRequest, ModelResponse
from adk.state.context import RunContext

if TYPE_CHECKING:
    from adk.tools.base import Tool, ToolContext

ModelCallNext = Callable[[ModelRequest], Awaitable[ModelResponse]]
"""The rest of a model call's chain: give it the request, get the response."""


@dataclass(slots=True, frozen=True)
class ToolCallInfo:
    """One tool call as middleware sees it; ``replace(arguments=...)`` for a changed call.

    ``arguments`` are validated (the values the tool's function receives);
    arguments a middleware substitutes are passed as they are.
    """

    name: str
    arguments: dict[str, Any]
    call_id: str
    agent_name: str
    ctx: RunContext
    """The calling agent's run context (session values: ``ctx.get``/``ctx.set``)."""
    tool: Tool

    def replace(self, **changes: Any) -> ToolCallInfo:
        """A copy with ``changes`` (e.g. ``arguments={...}``)."""
        return dataclasses.replace(self, **changes)


ToolCallNext = Callable[[ToolCallInfo], Awaitable[Any]]
"""The rest of a tool call's chain: give it the call, get the tool's return value."""


class Middleware:
    """Base class of middleware: every hook passes the call on unchanged.

    Override :meth:`model_call` / :meth:`tool_call` to wrap a call, or the
    ``before_*``/``after_*`` hooks they call by default. In a streamed model
    call, ``model_call`` wraps the whole stream: it sees the request before
    and the assembled response after; text deltas reach the caller as they
    arrive, and the complete message the agent delivers and journals is the
    response ``model_call`` returns.
    """

    async def model_call(self, request: ModelRequest, call_next: ModelCallNext) -> ModelResponse:
        """Around a model call: by default ``before_model``, the call, ``after_model``."""
        before = await self.before_model(request)
        if isinstance(before, ModelResponse):
            response = before  # answered without calling the model
        else:
            response = await call_next(before)
        return await self.after_model(request, response)

    async def before_model(self, request: ModelRequest) -> ModelRequest | ModelResponse:
        """The request to send (this one by default), or a response to answer with instead."""
        return request

    async def after_model(self, request: ModelRequest, response: ModelResponse) -> ModelResponse:
        """The response to use (this one by default)."""
        return response

    async def tool_call(self, call: ToolCallInfo, call_next: ToolCallNext) -> Any:
        """Around a tool call: by default ``before_tool``, the call, ``after_tool``."""
        return await self.after_tool(call, await call_next(await self.before_tool(call)))

    async def before_tool(self, call: ToolCallInfo) -> ToolCallInfo:
        """The call to make (this one by default; ``call.replace(arguments=...)`` to change it)."""
        return call

    async def after_tool(self, call: ToolCallInfo, result: Any) -> Any:
        """The result to use (the tool's return value by default)."""
        return result


def checked_middleware(owner: str, values: Iterable[Any]) -> tuple[Middleware, ...]:
    """``values`` as a tuple of middleware, or an ArgumentTypeError naming the bad one."""
    if isinstance(values, Middleware | str | bytes):
        raise ArgumentTypeError(f"{owner}: middleware must be a list, got {values!r}")
    checked = tuple(values)
    for value in checked:
        if not isinstance(value, Middleware):
            raise ArgumentTypeError(
                f"{owner}: middleware must hold Middleware objects (subclass adk.Middleware), "
                f"got {value!r}"
            )
    return checked


class _Trace:
    """Exceptions raised by the call itself, so they pass through a chain with their own type."""

    __slots__ = ("raised",)

    def __init__(self) -> None:
        self.raised: list[BaseException] = []

    def failure(self, exc: Exception, middleware: Middleware, hook: str) -> Exception:
        """What to raise for ``exc`` coming out of the chain at ``middleware``."""
        if isinstance(exc, GuardrailTripped | MiddlewareError):
            return exc
        if any(exc is raised for raised in self.raised):
            return exc
        return MiddlewareError(
            f"middleware {type(middleware).__name__}.{hook} raised {type(exc).__name__}: {exc}"
        )


async def _model_step(
    chain: Sequence[Middleware],
    index: int,
    trace: _Trace,
    call: ModelCallNext,
    request: ModelRequest,
) -> ModelResponse:
    if index == len(chain):
        try:
            return await call(request)
        except Exception as exc:
            trace.raised.append(exc)
            raise
    middleware = chain[index]
    try:
        response = await middleware.model_call(
            request, partial(_model_step, chain, index + 1, trace, call)
        )
    except Exception as exc:
        failure = trace.failure(exc, middleware, "model_call")
        if failure is exc:
            raise
        raise failure from exc
    if not isinstance(response, ModelResponse):
        raise MiddlewareError(
            f"middleware {type(middleware).__name__}.model_call returned "
            f"{type(response).__name__}, not a ModelResponse"
        )
    return response


async def run_model_chain(
    chain: Sequence[Middleware], request: ModelRequest, call: ModelCallNext
) -> ModelResponse:
    """``call(request)`` through ``chain`` (outermost first)."""
    return await _model_step(chain, 0, _Trace(), call, request)


ToolCall = Callable[[ToolCallInfo], Awaitable[Any]]


async def _tool_step(
    chain: Sequence[Middleware], index: int, trace: _Trace, call: ToolCall, info: ToolCallInfo
) -> Any:
    if index == len(chain):
        try:
            return await call(info)
        except Exception as exc:
            trace.raised.append(exc)
            raise
    middleware = chain[index]
    try:
        return await middleware.tool_call(info, partial(_tool_step, chain, index + 1, trace, call))
    except Exception as exc:
        failure = trace.failure(exc, middleware, "tool_call")
        if failure is exc:
            raise
        raise failure from exc


class ToolInvoker:
    """Runs one agent's tool calls through its middleware chain (see ``RunContext.tool_invoker``).

    The tool's own exceptions (an :class:`~adk.Interrupt` too) come out
    unchanged, so tool execution reports them as usual; a middleware's own
    failure comes out as :class:`~adk.MiddlewareError` and ends the agent.
    """

    __slots__ = ("agent_name", "chain")

    def __init__(self, chain: tuple[Middleware, ...], agent_name: str) -> None:
        self.chain = chain
        self.agent_name = agent_name

    async def __call__(
        self,
        tool: Tool,
        arguments: dict[str, Any],
        call_id: str,
        ctx: RunContext,
        tool_ctx: ToolContext | None,
    ) -> Any:
        info = ToolCallInfo(tool.name, arguments, call_id, self.agent_name, ctx, tool)

        async def call(final: ToolCallInfo) -> Any:
            return await final.tool.call(final.arguments, tool_ctx)  # type: ignore[arg-type]

        return await _tool_step(self.chain, 0, _Trace(), call, info)
