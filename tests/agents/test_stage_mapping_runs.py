"""Stage mapping in whole runs: resume from a real store, cache policy, tracing, budgets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adk import (
    Backend,
    ChatModelAgent,
    Cost,
    DAGAgent,
    ExplicitStageMapping,
    Message,
    ModelRequest,
    ModelResponse,
    Node,
    OneBitStageMapper,
    Runner,
    ScriptedModel,
    ServingLayer,
    StageMapper,
    ToolCall,
    ToolContext,
    Usage,
    UsageLimitExceeded,
    UsageLimits,
    tool,
)
from tests.agents.stage_helpers import NamedModels, Staged, mapped_events, names
from tests.support.engine_server import start_engines

pytestmark = pytest.mark.anyio

ASYNCIO_ONLY = pytest.mark.parametrize("anyio_backend", ["asyncio"])  # litellm calls
HARD = "Prove that the algorithm is optimal, analyse its complexity and derive a bound."


@tool
def ask(ctx: ToolContext) -> str:
    """Ask a person to confirm."""
    return f"the person said {ctx.interrupt('go on?')}"


def ask_then_answer(request: ModelRequest) -> Any:
    """The worker's LLM: ask once, then answer with what the person said."""
    results = [m.content for m in request.messages if m.role == "tool"]
    return f"done: {results[0]}" if results else ToolCall.of("ask")


def tiny_classifier() -> ScriptedModel:
    usage = Usage(prompt_tokens=1000, completion_tokens=1)
    return ScriptedModel(
        lambda request: ModelResponse(message=Message.assistant("hard"), usage=usage), name="tiny"
    )


@pytest.mark.parametrize("workflow", ["dag", "custom"])
async def test_a_resumed_run_replays_the_decision_and_never_asks_the_classifier_again(
    workflow: str, tmp_path: Path
) -> None:
    tiny = tiny_classifier()
    small = ScriptedModel(ask_then_answer, name="small")
    large = ScriptedModel(ask_then_answer, name="large")
    own = ScriptedModel(ask_then_answer, name="own")
    worker = ChatModelAgent("worker", model=own, tools=[ask])
    mapper: StageMapper = OneBitStageMapper(tiny, low="small", high="large")
    flow: Any = (
        DAGAgent("flow", [Node(worker)], mapper=mapper)
        if workflow == "dag"
        else Staged("flow", [worker], mapper)
    )
    store = tmp_path / "runs.db"
    first = await Runner(
        flow, serving=NamedModels(small=small, large=large), checkpoint_store=store
    ).invoke(HARD)
    assert first.checkpoint_id is not None
    assert (tiny.calls, names(large)) == (1, ["worker"])
    assert len(mapped_events(first.events)) == 1

    # Another Runner (as another process would), on the same SQLite file.
    again = Runner(flow, serving=NamedModels(small=small, large=large), checkpoint_store=store)
    (pending,) = first.interrupts
    resumed = await again.resume_invoke(first.checkpoint_id, {pending.id: "yes"})
    assert resumed.text == "done: the person said yes"
    assert tiny.calls == 1  # the journaled decision was read back
    assert names(large) == ["worker", "worker"] and not small.requests and not own.requests
    assert mapped_events(resumed.events) == []  # delivered before the pause: not again
    assert resumed.usage.prompt_tokens > 1000  # the classifier's call still counts


@ASYNCIO_ONLY
async def test_the_cache_policy_sees_a_mapped_backend_switch() -> None:
    """Two engines; the second stage is mapped to the other backend: a boundary flush."""
    with start_engines(2) as (small_engine, large_engine):
        layer = ServingLayer(
            [
                Backend("small", model="test-model", kind="vllm", endpoint=small_engine.url),
                Backend("large", model="test-model", kind="vllm", endpoint=large_engine.url),
            ]
        )
        first = ChatModelAgent("first", model="small", instruction="Plan the work.")
        second = ChatModelAgent("second", model="small", instruction="Do the work.")
        dag = DAGAgent(
            "flow",
            [first, Node(second, after="first")],
            mapper=ExplicitStageMapping({"second": "large"}),
        )
        result = await Runner(dag, serving=layer).invoke("go")
        calls = result.serving.calls
        assert [(call.agent, call.backend) for call in calls] == [
            ("first", "small"),
            ("second", "large"),
        ]
        assert calls[1].flushed == (f"first@{small_engine.url}: next stage uses backend 'large'",)
        assert (small_engine.requests_total, large_engine.requests_total) == (1, 1)
        await layer.aclose()


async def test_chat_spans_name_the_mapped_backend() -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from adk.tracing import Tracing

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    large = ScriptedModel(["mapped"], name="large")
    flow = Staged(
        "flow",
        [ChatModelAgent("a", model=ScriptedModel(["own"]))],
        ExplicitStageMapping({}, default="large"),
    )
    runner = Runner(
        flow, serving=NamedModels(large=large), tracing=Tracing(tracer_provider=provider)
    )
    assert (await runner.invoke("go")).text == "mapped"
    (chat,) = [span for span in exporter.get_finished_spans() if span.name.startswith("chat")]
    attributes = dict(chat.attributes or {})
    assert chat.name == "chat large"
    assert attributes["adk.stage.mapped_backend"] == "large"
    assert attributes["gen_ai.request.model"] == "large"
    provider.shutdown()


def priced_layer(url: str) -> ServingLayer:
    """One engine behind two backends: a cheap one and a dear one."""
    return ServingLayer(
        [
            Backend(
                "cheap", model="test-model", kind="openai", endpoint=url, cost=Cost(prompt=1e-6)
            ),
            Backend("dear", model="test-model", kind="openai", endpoint=url, cost=Cost(prompt=1.0)),
        ]
    )


@ASYNCIO_ONLY
async def test_a_cost_limit_checks_the_mapped_backend_price_before_the_call() -> None:
    with start_engines(1) as (engine,):
        layer = priced_layer(engine.url)
        worker = ChatModelAgent("worker", model="cheap")
        limits = UsageLimits(max_cost=1.0)  # a few prompt tokens on "dear" are over it
        runner = Runner(
            Staged("flow", [worker], ExplicitStageMapping({}, default="cheap")),
            serving=layer,
            usage_limits=limits,
        )
        assert (await runner.invoke("go")).text == "ok"
        dear = Runner(
            Staged("flow", [worker], ExplicitStageMapping({}, default="dear")),
            serving=layer,
            usage_limits=limits,
        )
        with pytest.raises(UsageLimitExceeded, match="max_cost"):
            await dear.invoke("go")
        assert engine.requests_total == 1  # the dear call was never sent
        await layer.aclose()


@ASYNCIO_ONLY
async def test_a_reply_is_charged_at_the_mapped_backend_price() -> None:
    def two_calls(body: dict[str, Any]) -> Any:
        from tests.support.openai_server import Reply

        if not any(m["role"] == "tool" for m in body["messages"]):
            return Reply.call("note", {"text": "x"})
        return Reply.text("done")

    @tool
    def note(text: str) -> str:
        """Take a note."""
        return "noted"

    with start_engines(1, handler=two_calls) as (engine,):
        layer = priced_layer(engine.url)
        # The first call's prompt is ~60 tokens (~60 on "dear"): a limit of 100 passes the
        # first check; the second only if the first reply was charged at the "cheap" price.
        worker = ChatModelAgent("worker", model="cheap", tools=[note])
        mapper = ExplicitStageMapping({}, default="dear")
        runner = Runner(
            Staged("flow", [worker], mapper),
            serving=layer,
            usage_limits=UsageLimits(max_cost=100.0),
        )
        with pytest.raises(UsageLimitExceeded, match="max_cost"):
            await runner.invoke("go")
        assert engine.requests_total == 1
        await layer.aclose()
