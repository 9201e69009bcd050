"""Span trees and attributes of traced runs (asyncio and trio)."""

from __future__ import annotations

from contextlib import aclosing
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from adk import (
    AgentTool,
    ChatModelAgent,
    Interrupt,
    LoopAgent,
    Middleware,
    ModelBadRequestError,
    ModelRequest,
    ModelResponse,
    ParallelAgent,
    Runner,
    ScriptedModel,
    SequentialAgent,
    ToolCall,
    ToolContext,
    tool,
)
from adk.tracing import Tracing, span_tree
from tests.agents.helpers import Say
from tests.tracing.helpers import attrs, named, one, parent_of, shape

pytestmark = pytest.mark.anyio


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@tool
def explode(reason: str) -> str:
    """Always fails."""
    raise ValueError(f"no: {reason}")


def chat(name: str, *script: Any, tools: list[Any] | None = None) -> ChatModelAgent:
    return ChatModelAgent(name, model=ScriptedModel(list(script)), tools=tools or [])


def traced(agent: Any, provider: TracerProvider, **options: Any) -> Runner:
    record = options.pop("record_content", False)
    tracing = Tracing(tracer_provider=provider, record_content=record)
    return Runner(agent, tracing=tracing, **options)


async def test_a_composite_run_nests_sequence_parallel_branches_and_an_agent_tool(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    helper = chat("helper", ToolCall.of("add", id="h1", a=1, b=2), "3", tools=[add])
    writer = chat(
        "writer",
        ToolCall.of("helper", id="w1", request="add 1 and 2"),
        "done",
        tools=[AgentTool(helper)],
    )
    flow = SequentialAgent(
        "flow",
        [chat("planner", "plan"), ParallelAgent("fan", [chat("b1", "x"), chat("b2", "y")]), writer],
    )
    result = await traced(flow, provider).invoke("go", session_id="conv-1")
    assert result.text == "done"
    spans = exporter.get_finished_spans()
    assert shape(spans) == [
        (
            "invoke_workflow flow",
            (
                (
                    "invoke_agent flow",
                    (
                        (
                            "invoke_agent fan",
                            (
                                ("invoke_agent b1", (("chat scripted", ()),)),
                                ("invoke_agent b2", (("chat scripted", ()),)),
                            ),
                        ),
                        ("invoke_agent planner", (("chat scripted", ()),)),
                        (
                            "invoke_agent writer",
                            (
                                ("chat scripted", ()),
                                ("chat scripted", ()),
                                (
                                    "execute_tool helper",
                                    (
                                        (
                                            "invoke_agent helper",
                                            (
                                                ("chat scripted", ()),
                                                ("chat scripted", ()),
                                                ("execute_tool add", ()),
                                            ),
                                        ),
                                    ),
                                ),
                            ),
                        ),
                    ),
                ),
            ),
        )
    ]
    assert len({span.context.trace_id for span in spans if span.context}) == 1
    root = one(spans, "invoke_workflow flow")
    assert attrs(root) == {
        "gen_ai.operation.name": "invoke_workflow",
        "gen_ai.workflow.name": "flow",
        "gen_ai.conversation.id": "conv-1",
        "adk.run.id": result.run_id,
        "adk.run.status": "finished",
    }
    planner = one(spans, "invoke_agent planner")
    assert attrs(planner)["gen_ai.agent.name"] == "planner"
    assert attrs(planner)["gen_ai.conversation.id"] == "conv-1"
    first_chat = next(s for s in named(spans, "chat scripted") if parent_of(spans, s) == planner)
    chat_attrs = attrs(first_chat)
    assert chat_attrs["gen_ai.operation.name"] == "chat"
    assert chat_attrs["gen_ai.request.model"] == "scripted"
    assert chat_attrs["gen_ai.agent.name"] == "planner"
    assert chat_attrs["gen_ai.conversation.id"] == "conv-1"
    assert chat_attrs["gen_ai.usage.input_tokens"] > 0
    assert chat_attrs["gen_ai.usage.output_tokens"] > 0
    assert chat_attrs["gen_ai.response.finish_reasons"] == ("stop",)
    tool_span = one(spans, "execute_tool helper")
    assert attrs(tool_span)["gen_ai.tool.name"] == "helper"
    assert attrs(tool_span)["gen_ai.tool.call.id"] == "w1"
    assert attrs(tool_span)["gen_ai.operation.name"] == "execute_tool"
    assert all(span.status.status_code is StatusCode.UNSET for span in spans)


async def test_loops_and_transfers_nest_under_the_agent_that_ran_them(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    router = SequentialAgent(
        "main",
        [
            LoopAgent("loop", [Say("body")], max_iterations=2),
            Say("router", then="transfer:tech"),
        ],
    )
    tech = Say("tech")
    root = SequentialAgent("root", [router, tech])
    await traced(root, provider).invoke("go")
    tree = span_tree(exporter.get_finished_spans())
    assert tree.splitlines() == [
        "invoke_workflow root",
        "  invoke_agent root",
        "    invoke_agent main",
        "      invoke_agent loop",
        "        invoke_agent body",
        "        invoke_agent body",
        "      invoke_agent router",
        "        invoke_agent tech",
        "    invoke_agent tech",
    ]
    transfer = one(exporter.get_finished_spans(), "invoke_agent router")
    assert attrs(transfer)["adk.transfer_to"] == "tech"


async def test_a_failed_model_call_marks_chat_agent_and_run_spans_with_the_error(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    agent = chat("assistant", ModelBadRequestError("context window exceeded"))
    with pytest.raises(ModelBadRequestError):
        await traced(agent, provider).invoke("go")
    spans = exporter.get_finished_spans()
    assert shape(spans) == [
        (
            "invoke_workflow assistant",
            (("invoke_agent assistant", (("chat scripted", ()),)),),
        )
    ]
    for name in ("chat scripted", "invoke_agent assistant", "invoke_workflow assistant"):
        span = one(spans, name)
        assert span.status.status_code is StatusCode.ERROR, name
        assert attrs(span)["error.type"] == "ModelBadRequestError", name
    chat_span = one(spans, "chat scripted")
    assert [event.name for event in chat_span.events] == ["exception"]
    assert attrs(one(spans, "invoke_workflow assistant"))["adk.run.status"] == "failed"


async def test_a_failed_tool_call_marks_its_span_and_the_run_goes_on(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    agent = chat(
        "assistant",
        ToolCall.of("explode", id="t1", reason="test"),
        "it failed",
        tools=[explode],
    )
    result = await traced(agent, provider).invoke("go")
    assert result.text == "it failed"
    spans = exporter.get_finished_spans()
    tool_span = one(spans, "execute_tool explode")
    assert tool_span.status.status_code is StatusCode.ERROR
    assert attrs(tool_span)["error.type"] == "ValueError"
    assert attrs(tool_span)["gen_ai.tool.call.id"] == "t1"
    assert one(spans, "invoke_agent assistant").status.status_code is StatusCode.UNSET
    assert one(spans, "invoke_workflow assistant").status.status_code is StatusCode.UNSET


@tool
def book(city: str, ctx: ToolContext) -> str:
    """Book a seat."""
    if ctx.answer is None:
        raise Interrupt({"question": f"Which seat to {city}?"})
    return f"seat {ctx.answer}"


async def test_an_interrupt_is_recorded_and_the_resumed_run_links_to_the_paused_trace(
    provider: TracerProvider, exporter: InMemorySpanExporter, tmp_path: Any
) -> None:
    agent = chat("assistant", ToolCall.of("book", id="b1", city="Oslo"), "booked", tools=[book])
    runner = traced(agent, provider, checkpoint_store=str(tmp_path / "runs.db"))
    paused = await runner.invoke("book me")
    assert paused.checkpoint_id is not None
    first = exporter.get_finished_spans()
    first_root = one(first, "invoke_workflow assistant")
    assert attrs(first_root)["adk.run.status"] == "paused"
    assert attrs(first_root)["adk.checkpoint.id"] == paused.checkpoint_id
    pending = paused.interrupts[0]
    assert [(e.name, e.attributes) for e in first_root.events] == [
        ("adk.interrupt", {"adk.interrupt.ids": (pending.id,)})
    ]
    tool_span = one(first, "execute_tool book")
    assert [e.name for e in tool_span.events] == ["adk.interrupt"]
    assert tool_span.status.status_code is StatusCode.UNSET
    exporter.clear()

    # Another Runner on the same store (as another process would): the link is stored.
    again = traced(agent, provider, checkpoint_store=str(tmp_path / "runs.db"))
    done = await again.resume_invoke(paused.checkpoint_id, {pending.id: "12A"})
    assert done.text == "booked"
    second = exporter.get_finished_spans()
    root = one(second, "invoke_workflow assistant")
    assert root.context is not None and first_root.context is not None
    assert root.context.trace_id != first_root.context.trace_id
    assert attrs(root)["adk.run.resumed"] is True
    assert attrs(root)["adk.run.status"] == "finished"
    assert len(root.links) == 1
    link = root.links[0].context
    assert (link.trace_id, link.span_id) == (
        first_root.context.trace_id,
        first_root.context.span_id,
    )
    # The journaled model call is not made again: only the call after the tool.
    assert len(named(second, "chat scripted")) == 1
    assert len(named(second, "execute_tool book")) == 1
    await runner.close()
    await again.close()


async def test_contents_are_recorded_only_on_opt_in(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    def agent() -> ChatModelAgent:
        return ChatModelAgent(
            "assistant",
            model=ScriptedModel([ToolCall.of("add", id="a1", a=1, b=2), "the sum is 3"]),
            tools=[add],
            instruction="You add numbers.",
        )

    content_keys = {
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
    }
    await traced(agent(), provider).invoke("secret question")
    for span in exporter.get_finished_spans():
        assert not content_keys & set(attrs(span)), span.name
        assert "secret question" not in repr(attrs(span))
    exporter.clear()

    await traced(agent(), provider, record_content=True).invoke("secret question")
    spans = exporter.get_finished_spans()
    first, second = named(spans, "chat scripted")
    assert '"content": "secret question"' in attrs(first)["gen_ai.input.messages"]
    assert "You add numbers." in attrs(first)["gen_ai.system_instructions"]
    assert '"type": "tool_call"' in attrs(first)["gen_ai.output.messages"]
    assert "the sum is 3" in attrs(second)["gen_ai.output.messages"]
    assert '"tool_call_response"' in attrs(second)["gen_ai.input.messages"]
    tool_span = one(spans, "execute_tool add")
    assert attrs(tool_span)["gen_ai.tool.call.arguments"] == '{"a": 1, "b": 2}'
    assert attrs(tool_span)["gen_ai.tool.call.result"] == "3"


async def test_a_streamed_run_records_usage_and_content_on_the_chat_span(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    agent = chat("assistant", "streamed answer")
    runner = traced(agent, provider, streaming=True, record_content=True)
    events = [event async for event in runner.query("hi")]
    assert events[-1].message is not None
    span = one(exporter.get_finished_spans(), "chat scripted")
    assert attrs(span)["gen_ai.request.stream"] is True
    assert attrs(span)["gen_ai.usage.output_tokens"] > 0
    assert "streamed answer" in attrs(span)["gen_ai.output.messages"]
    assert span.status.status_code is StatusCode.UNSET


async def test_a_run_abandoned_by_its_consumer_still_ends_its_root_span(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    flow = SequentialAgent("flow", [Say("first"), Say("second")])
    async with aclosing(traced(flow, provider).query("go")) as events:
        async for _ in events:
            break
    spans = exporter.get_finished_spans()
    root = one(spans, "invoke_workflow flow")
    assert root.status.status_code is StatusCode.ERROR
    assert attrs(root)["error.type"] == "cancelled"
    assert attrs(root)["adk.run.status"] == "cancelled"
    assert {span.name for span in spans} >= {"invoke_agent flow", "invoke_agent first"}


def test_bad_tracing_arguments_are_type_errors() -> None:
    with pytest.raises(TypeError, match=r"tracing must be True, False, None or an adk\.tracing"):
        Runner(Say("a"), tracing="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="record_content must be a bool"):
        Tracing(record_content=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="tracer_provider must be an opentelemetry"):
        Tracing(tracer_provider=object())  # type: ignore[arg-type]
    assert Runner(Say("a")).tracing is None
    assert Runner(Say("a"), tracing=False).tracing is None
    assert isinstance(Runner(Say("a"), tracing=True).tracing, Tracing)


class Retry(Middleware):
    """Calls the model twice (the first answer is thrown away): two chat spans, one reply."""

    async def model_call(self, request: ModelRequest, call_next: Any) -> ModelResponse:
        await call_next(request)
        response: ModelResponse = await call_next(request)
        return response


@pytest.mark.parametrize("streaming", [False, True])
async def test_chat_spans_are_the_calls_middleware_makes(
    provider: TracerProvider, exporter: InMemorySpanExporter, streaming: bool
) -> None:
    agent = chat("assistant", "thrown away", "kept")
    runner = traced(agent, provider, middleware=[Retry()], streaming=streaming)
    result = await runner.invoke("go")
    assert result.text == "kept"
    spans = exporter.get_finished_spans()
    chats = named(spans, "chat scripted")
    assert len(chats) == 2
    agent_span = one(spans, "invoke_agent assistant")
    assert all(parent_of(spans, span) == agent_span for span in chats)
    assert all(span.status.status_code is StatusCode.UNSET for span in spans)
