"""Model-call and tool-call spans: ``chat {model}`` and ``execute_tool {tool}``.

A chat span covers one call to the serving layer as the agent makes it
(inside middleware and guardrails, so a retrying middleware makes two spans
and one that answers by itself none). It carries the request's model and
parameters, the response's finish reason and token usage, and, for a call
through a serving backend, the serving layer's own figures for it (backend,
replica, queue wait, time to first token, cached tokens, cache decision).
A tool span covers one executed tool call; an agent tool's sub-run nests
under it. Contents (messages, arguments, results) only with ``record_content``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from adk.models.base import ChatModel, ChunkAssembler, ModelChunk, ModelRequest, ModelResponse
from adk.state.addressing import tool_call_segment
from adk.tracing.attributes import (
    AGENT_NAME,
    CONVERSATION,
    ERROR_TYPE,
    FINISH_REASONS,
    OPERATION,
    PROVIDER,
    REQUEST_MODEL,
    RESPONSE_MODEL,
    SYSTEM,
    TOOL_ARGUMENTS,
    TOOL_CALL_ID,
    TOOL_NAME,
    TOOL_RESULT,
    TOOL_TYPE,
    model_identity,
    request_attributes,
    set_input_messages,
    set_output_message,
    set_response,
    set_serving,
    tool_result_text,
    usage_attributes,
)

if TYPE_CHECKING:
    from adk.messages import ToolCall
    from adk.state.context import RunContext
    from adk.tools.base import Tool
    from adk.tools.execution import ToolOutcome

Address = tuple[str, ...]
Generate = Callable[[ChatModel | str, ModelRequest], Awaitable[ModelResponse]]
Stream = Callable[[ChatModel | str, ModelRequest], AsyncIterator[ModelChunk]]

CANCELLED = "cancelled"
"""``error.type`` of a span whose work was cancelled (or abandoned by its consumer)."""


def fail(span: Span, error_type: str, message: str | None = None) -> None:
    """Mark ``span`` as failed with ``error_type`` (``error.type`` and status ERROR)."""
    span.set_attribute(ERROR_TYPE, error_type)
    span.set_status(Status(StatusCode.ERROR, message))


def fail_with(span: Span, exc: BaseException) -> None:
    """Mark ``span`` failed by ``exc``: an exception is recorded, a cancellation named."""
    if isinstance(exc, Exception):
        span.record_exception(exc)
        fail(span, type(exc).__name__, str(exc) or None)
    else:
        fail(span, CANCELLED)


class CallSpans:
    """The model-call and tool-call half of :class:`~adk.tracing.spans.RunTracer`."""

    __slots__ = ()

    otel: Tracer
    record_content: bool
    tool_errors: dict[str, str]

    if TYPE_CHECKING:

        def context_at(self, address: Address) -> Context: ...

        def place(self, address: Address, span: Span) -> None: ...

    # -- model calls -------------------------------------------------------------------------

    def generate(self, call: Generate, ctx: RunContext) -> Generate:
        """``call`` (a serving layer's or middleware chain's generate) inside a chat span."""
        return partial(self._generate, call, ctx)

    def stream(self, call: Stream, ctx: RunContext) -> Stream:
        """``call`` (a serving layer's stream) inside a chat span ending with the stream."""
        return partial(TracedStream, self, call, ctx)

    async def _generate(
        self, call: Generate, ctx: RunContext, model: ChatModel | str, request: ModelRequest
    ) -> ModelResponse:
        span = self.chat_span(ctx, model, request)
        try:
            response = await call(model, request)
        except BaseException as exc:
            end_chat(span, ctx, model, request, exc)
            raise
        set_response(span, response)
        if self.record_content:
            set_output_message(span, response.message, response.finish_reason)
        end_chat(span, ctx, model, request, None)
        return response

    def chat_span(self, ctx: RunContext, model: ChatModel | str, request: ModelRequest) -> Span:
        """A started ``chat {model}`` span under the calling agent's span."""
        requested, provider = model_identity(model, ctx.serving)
        attributes: dict[str, Any] = {
            OPERATION: "chat",
            REQUEST_MODEL: requested,
            AGENT_NAME: request.agent_name,
            "adk.call.id": request.call_id,
            **request_attributes(request),
        }
        if provider is not None:
            attributes[PROVIDER] = provider
            attributes[SYSTEM] = provider  # the name before gen_ai.provider.name
        if request.session_id:
            attributes[CONVERSATION] = request.session_id
        if ctx.assignment is not None:  # a stage mapping chose the backend (stage_mapping.py)
            attributes["adk.stage.mapped_backend"] = ctx.assignment.backend
        if request.stream:
            attributes["gen_ai.request.stream"] = True
        span = self.otel.start_span(
            f"chat {requested}",
            context=self.context_at(ctx.address),
            kind=SpanKind.CLIENT,
            attributes=attributes,
        )
        if self.record_content:
            set_input_messages(span, request.messages)
        return span

    # -- tool calls --------------------------------------------------------------------------

    async def tool_call(
        self,
        run: Awaitable[ToolOutcome],
        call: ToolCall,
        ctx: RunContext,
        agent_name: str,
        key: str,
        tool: Tool,
    ) -> ToolOutcome:
        """Await ``run`` (the tool call, checked and approved) inside an ``execute_tool`` span."""
        attributes: dict[str, Any] = {
            OPERATION: "execute_tool",
            TOOL_NAME: call.name,
            TOOL_CALL_ID: call.id,
            TOOL_TYPE: "function",
            AGENT_NAME: agent_name,
        }
        if tool.description:
            attributes["gen_ai.tool.description"] = tool.description
        if self.record_content:
            attributes[TOOL_ARGUMENTS] = call.arguments
        span = self.otel.start_span(
            f"execute_tool {call.name}",
            context=self.context_at(ctx.address),
            kind=SpanKind.INTERNAL,
            attributes=attributes,
        )
        self.place((*ctx.address, tool_call_segment(call.name, call.id)), span)
        try:
            outcome = await run
        except BaseException as exc:
            self.tool_errors.pop(key, None)
            fail_with(span, exc)
            span.end()
            raise
        error = self.tool_errors.pop(key, None)
        if outcome.interrupts:
            span.add_event(
                "adk.interrupt", {"adk.interrupt.ids": [info.id for info in outcome.interrupts]}
            )
        else:
            if outcome.failed:
                fail(span, error or "ToolError", outcome.message.content[:200] or None)
            if self.record_content:
                span.set_attribute(TOOL_RESULT, tool_result_text(outcome.message))
        span.end()
        return outcome


def end_chat(
    span: Span,
    ctx: RunContext,
    model: ChatModel | str,
    request: ModelRequest,
    exc: BaseException | None,
) -> None:
    """End a chat span: the serving layer's figures for the call, and its failure if any."""
    if isinstance(model, str):
        metrics = ctx.serving.call_metrics(request.run_id, request.call_id)
        if metrics is not None:
            set_serving(span, metrics)
    if exc is not None:
        fail_with(span, exc)
    span.end()


class TracedStream:
    """A streamed model call inside a chat span, ended when the stream ends or is closed.

    The span records the usage, finish reason and model the chunks report; a
    stream closed before its end (a guardrail trip, a cancelled run) is
    marked ``cancelled``.
    """

    __slots__ = (
        "_assembler",
        "_chunks",
        "_ctx",
        "_finish",
        "_model",
        "_request",
        "_span",
        "_usage",
    )

    def __init__(
        self,
        tracer: CallSpans,
        call: Stream,
        ctx: RunContext,
        model: ChatModel | str,
        request: ModelRequest,
    ) -> None:
        self._span: Span | None = tracer.chat_span(ctx, model, request)
        self._ctx, self._model, self._request = ctx, model, request
        self._usage: Any = None
        self._finish: tuple[str | None, str] = (None, "")
        self._assembler = ChunkAssembler() if tracer.record_content else None
        try:
            self._chunks = call(model, request)
        except BaseException as exc:
            self._end(exc)
            raise

    def __aiter__(self) -> TracedStream:
        return self

    async def __anext__(self) -> ModelChunk:
        try:
            chunk = await self._chunks.__anext__()
        except StopAsyncIteration:
            self._end(None)
            raise
        except BaseException as exc:
            self._end(exc)
            raise
        if chunk.usage is not None:
            self._usage = chunk.usage
        if chunk.finish_reason or chunk.model:
            reason, name = self._finish
            self._finish = (chunk.finish_reason or reason, chunk.model or name)
        if self._assembler is not None:
            self._assembler.add(chunk)
        return chunk

    async def aclose(self) -> None:
        """Close the call's stream; a span still open ends as cancelled."""
        try:
            aclose = getattr(self._chunks, "aclose", None)
            if aclose is not None:
                await aclose()
        finally:
            if self._span is not None:
                self._end(GeneratorExit())

    def _end(self, exc: BaseException | None) -> None:
        span = self._span
        if span is None:
            return
        self._span = None
        reason, name = self._finish
        if exc is None:
            usage = self._usage
            if self._assembler is not None:
                response = self._assembler.response()
                set_response(span, response)
                set_output_message(span, response.message, response.finish_reason)
            else:
                found = usage_attributes(usage) if usage is not None else {}
                if name:
                    found[RESPONSE_MODEL] = name
                if reason:
                    found[FINISH_REASONS] = (reason,)
                span.set_attributes(found)
        end_chat(span, self._ctx, self._model, self._request, exc)
