"""One run's tracer: the run's root span, agent spans, and where each new span belongs.

A :class:`RunTracer` is made per run execution (``RunContext.tracer``) and
shared by every agent of the run, agent-tool sub-runs included. Spans are
placed by *address*, not by contextvars: an agent invocation's span is kept
under its address (``root/router/tech``, ``loop/body@2``, an agent tool's
``agent/tool:call_1/inner``), and a new span's parent is the span of the
longest address prefix that has one. Parallel branches running in anyio task
groups, async generators resumed from other tasks, and transfers therefore
nest the same way on asyncio and trio. This module imports OpenTelemetry: it
is loaded only when tracing is on.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING, Any

from opentelemetry.context import Context
from opentelemetry.trace import (
    INVALID_SPAN,
    Link,
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    TraceFlags,
    Tracer,
    set_span_in_context,
)

from adk.events import AgentEvent
from adk.state.context_policy import CONTEXT_EVENT_KINDS, GC_COMPLETE
from adk.tracing.attributes import (
    AGENT_NAME,
    CONVERSATION,
    OPERATION,
    WORKFLOW_NAME,
)
from adk.tracing.calls import CANCELLED, CallSpans, fail, fail_with

if TYPE_CHECKING:
    from adk.state.context import RunContext

Address = tuple[str, ...]


def encode_link(span: Span) -> str:
    """``span``'s trace and span id as stored with a checkpoint (``<trace>-<span>`` in hex)."""
    context = span.get_span_context()
    return f"{context.trace_id:032x}-{context.span_id:016x}"


def decode_link(stored: str | None) -> Link | None:
    """The link to a stored span, or None if there is none (or it cannot be read)."""
    if not stored:
        return None
    trace_hex, _, span_hex = stored.partition("-")
    try:
        trace_id, span_id = int(trace_hex, 16), int(span_hex, 16)
    except ValueError:
        return None
    context = SpanContext(trace_id, span_id, True, TraceFlags(TraceFlags.SAMPLED))
    return Link(context, {"adk.link": "resumed_from"}) if context.is_valid else None


class RunTracer(CallSpans):
    """The spans of one run execution (see the module docstring); model and tool call
    spans come from :class:`~adk.tracing.calls.CallSpans`."""

    __slots__ = ("_outcome", "_places", "link", "otel", "record_content", "root", "tool_errors")

    def __init__(self, otel: Tracer, record_content: bool, link: str | None = None) -> None:
        self.otel = otel
        self.record_content = record_content
        self.link = link
        """The stored trace of the execution this one continues (a resume), if any."""
        self.root: Span = INVALID_SPAN
        self._places: dict[Address, Context] = {}
        self._outcome: tuple[str, AgentEvent | None] | None = None
        self.tool_errors: dict[str, str] = {}
        """Exception type names of failed tool calls by call key (read by the tool's span)."""

    # -- placement ---------------------------------------------------------------------------

    def context_at(self, address: Address) -> Context:
        """The parent context for a span at ``address``: the nearest span on its prefix."""
        places = self._places
        for end in range(len(address), -1, -1):
            found = places.get(address[:end])
            if found is not None:
                return found
        return set_span_in_context(NonRecordingSpan(self.root.get_span_context()))

    def place(self, address: Address, span: Span) -> None:
        """Make ``span`` the parent of spans started below ``address``."""
        self._places[address] = set_span_in_context(span)

    # -- the run -----------------------------------------------------------------------------

    def start_run(self, root_name: str, ctx: RunContext, checkpointer: Any) -> None:
        """Start the run's root span (``invoke_workflow {root}``), linked to a resumed trace.

        Its ids go on the checkpointer, so a checkpoint written by this
        execution names it and the execution resuming it can link here.
        """
        attributes: dict[str, Any] = {
            OPERATION: "invoke_workflow",
            WORKFLOW_NAME: root_name,
            "adk.run.id": ctx.run_id,
        }
        if ctx.session_id:
            attributes[CONVERSATION] = ctx.session_id
        link = decode_link(self.link)
        if link is not None:
            attributes["adk.run.resumed"] = True
        self.root = self.otel.start_span(
            f"invoke_workflow {root_name}",
            context=None,  # under the app's current span, if any (a web request's...)
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            links=(link,) if link is not None else None,
        )
        self._places[()] = set_span_in_context(self.root)
        checkpointer.trace = encode_link(self.root)

    def settled(self, status: str, final: AgentEvent | None) -> None:
        """Note how the run ended (``finished``, ``failed``, ``paused``) and its last event."""
        self._outcome = (status, final)

    def end_run(self, ctx: RunContext) -> None:
        """End the root span: its status, and the interrupts of a paused run."""
        root = self.root
        status, final = self._outcome if self._outcome is not None else (None, None)
        if ctx.failed:
            status = "failed"
        elif status is None:
            status = CANCELLED
        root.set_attribute("adk.run.status", status)
        if status == "failed":
            error = _last_error(final, ctx.events)
            fail(root, error[0] if error else "_OTHER", error[1] if error else None)
        elif status == CANCELLED:
            fail(root, CANCELLED)
        elif final is not None and final.action is not None:
            interrupted = final.action.interrupted
            if interrupted is not None:
                if interrupted.checkpoint_id:
                    root.set_attribute("adk.checkpoint.id", interrupted.checkpoint_id)
                root.add_event(
                    "adk.interrupt",
                    {"adk.interrupt.ids": [info.id for info in interrupted.interrupts]},
                )
        root.end()
        self._places.clear()

    # -- agents ------------------------------------------------------------------------------

    async def agent_stream(
        self, name: str, ctx: RunContext, stream: AsyncIterator[AgentEvent]
    ) -> AsyncGenerator[AgentEvent, None]:
        """``stream`` (one agent invocation's events) inside an ``invoke_agent {name}`` span."""
        address = ctx.address
        attributes: dict[str, Any] = {OPERATION: "invoke_agent", AGENT_NAME: name}
        if ctx.session_id:
            attributes[CONVERSATION] = ctx.session_id
        span = self.otel.start_span(
            f"invoke_agent {name}",
            context=self.context_at(address),
            kind=SpanKind.INTERNAL,
            attributes=attributes,
        )
        self.place(address, span)
        own_path, failed = ctx.run_path, False
        try:
            async for event in stream:
                if event.run_path == own_path:
                    failed = _note_event(span, event) or failed
                yield event
        except BaseException as exc:
            if not failed:
                fail_with(span, exc)
                failed = True
            raise
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()
            if ctx.failed and not failed:
                error = _last_error(None, ctx.events)
                fail(span, error[0] if error else "_OTHER", error[1] if error else None)
            span.end()


def _note_event(span: Span, event: AgentEvent) -> bool:
    """Record an agent's own error, interrupt or transfer on its span; True for an error."""
    error = event.error
    if error is not None:
        fail(span, error.type, error.message)
        return True
    output = event.output
    if output is not None and type(output.custom) is dict:
        _note_context(span, output.custom)
    action = event.action
    if action is not None:
        if action.interrupted is not None:
            span.add_event(
                "adk.interrupt",
                {"adk.interrupt.ids": [info.id for info in action.interrupted.interrupts]},
            )
        if action.transfer_to_agent is not None:
            span.set_attribute("adk.transfer_to", action.transfer_to_agent.dest)
    return False


def _note_context(span: Span, custom: dict[str, Any]) -> None:
    """A context step (GC, compaction; docs/context.md) as a span event with its figures."""
    kind = custom.get("kind")
    if kind not in CONTEXT_EVENT_KINDS:
        return
    figures = {
        f"adk.context.{name}": value
        for name, value in custom.items()
        if name != "kind" and type(value) in (int, bool)
    }
    if kind == GC_COMPLETE:
        figures["adk.context.elided"] = len(custom.get("elided", ()))
    span.add_event(f"adk.{kind}", figures)


def _last_error(final: AgentEvent | None, events: list[AgentEvent]) -> tuple[str, str] | None:
    """The type and message of the run's last error (its final event's, else the history's)."""
    if final is not None and final.error is not None:
        return final.error.type, final.error.message
    for event in reversed(events):
        if event.error is not None:
            return event.error.type, event.error.message
    return None
