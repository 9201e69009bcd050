"""Context steps (GC, compaction) appear as events on the agent's span, with their figures."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from adk import ContextPolicy, Runner
from adk.tracing import Tracing
from tests.context.test_compaction import is_summary_request, reader
from tests.tracing.helpers import one

pytestmark = pytest.mark.anyio


async def test_gc_and_compaction_are_span_events_and_the_summary_call_its_own_chat_span(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    agent, model = reader(60, ContextPolicy(window=4_000, headroom=0))
    runner = Runner(agent, tracing=Tracing(tracer_provider=provider))
    result = await runner.invoke("read the report")
    assert result.text == "done after 60 pages"
    spans = exporter.get_finished_spans()
    span = one(spans, "invoke_agent reader")
    names = [event.name for event in span.events]
    assert "adk.gc_complete" in names
    assert names.count("adk.compaction_starting") == names.count("adk.compaction_complete") >= 1
    done = next(e for e in span.events if e.name == "adk.compaction_complete")
    attributes = dict(done.attributes or {})
    assert attributes["adk.context.tokens_saved"] == (
        attributes["adk.context.tokens_before"] - attributes["adk.context.tokens_after"]
    )
    assert attributes["adk.context.fallback"] is False
    chats = [s for s in spans if s.name.startswith("chat")]
    assert len(chats) == len(model.requests)  # summaries are traced model calls too
    assert sum(1 for r in model.requests if is_summary_request(r)) >= 1
