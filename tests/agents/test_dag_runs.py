"""DAGAgent with the rest of a run: streaming, budgets, tracing, stage mapping, cache policy."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from adk import (
    ChatModelAgent,
    DAGAgent,
    ModelRequest,
    Node,
    Runner,
    ScriptedModel,
    ToolCall,
    UsageLimitExceeded,
    UsageLimits,
    tool,
)
from adk.serving import Backend, CachePolicy, ServingLayer
from tests.agents.helpers import Say, events_of
from tests.support.engine_server import EngineServer, start_engines
from tests.support.openai_server import Body, Reply

pytestmark = pytest.mark.anyio


@tool
def lookup(topic: str) -> str:
    """Look a topic up."""
    return f"facts about {topic}"


def researcher(name: str) -> tuple[ChatModelAgent, ScriptedModel]:
    """An agent that looks its topic up once, then answers: two model calls."""

    def script(request: ModelRequest) -> Any:
        if request.messages[-1].role == "tool":
            return f"{name}: {request.messages[-1].content}"
        return ToolCall.of("lookup", topic=name)

    model = ScriptedModel(script, chunk_chars=4)
    return ChatModelAgent(name, model=model, tools=[lookup]), model


def research_dag() -> tuple[DAGAgent, list[ScriptedModel]]:
    a, model_a = researcher("a")
    b, model_b = researcher("b")
    w, model_w = researcher("w")
    return DAGAgent("dag", [a, b, Node(w, after=["a", "b"])]), [model_a, model_b, model_w]


async def test_streaming_deltas_of_every_node_arrive_attributed_to_it() -> None:
    dag, _ = research_dag()
    events = await events_of(Runner(dag, streaming=True))
    for node in ("a", "b", "w"):
        deltas = [e.text for e in events if e.partial and e.run_path == ("dag", node)]
        final = [e.text for e in events if not e.partial and e.run_path == ("dag", node) and e.text]
        assert len(deltas) > 1
        assert "".join(deltas) == final[-1] == f"{node}: facts about {node}"


async def test_a_usage_limit_stops_the_dag() -> None:
    dag, models = research_dag()
    runner = Runner(dag, usage_limits=UsageLimits(max_model_calls=3))
    with pytest.raises(UsageLimitExceeded) as caught:
        await runner.invoke("go")
    assert caught.value.limit == "max_model_calls"
    assert sum(m.calls for m in models) == 3
    assert models[2].calls == 0  # the writer never started: its inputs failed


async def test_node_spans_nest_under_the_dag_span() -> None:
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from adk import Tracing

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    dag, _ = research_dag()
    await Runner(dag, tracing=Tracing(tracer_provider=provider)).invoke("go")
    provider.shutdown()
    spans = {span.name: span for span in exporter.get_finished_spans()}
    dag_span = spans["invoke_agent dag"]
    for node in ("a", "b", "w"):
        span = spans[f"invoke_agent {node}"]
        assert span.parent is not None and dag_span.context is not None
        assert span.parent.span_id == dag_span.context.span_id
    assert spans["execute_tool lookup"].parent is not None


async def test_a_stage_mapper_is_asked_once_per_node_before_it_runs() -> None:
    stage_mapping = pytest.importorskip("adk.agents.stage_mapping")
    if not hasattr(stage_mapping, "map_stage"):
        pytest.skip("stage mapping is not there yet")
    asked: list[tuple[str, list[str]]] = []

    class Recorder:
        async def assign(self, stage: Any, ctx: Any) -> None:
            asked.append((stage.stage, [m.content for m in stage.messages]))

    dag = DAGAgent("dag", [Say("a"), Node(Say("b"), after="a")], mapper=Recorder())
    await events_of(Runner(dag))
    assert asked == [
        ("a", ["go"]),
        (
            "b",
            [
                "go",
                "For context: results of the earlier steps this step builds on:\n\n"
                "[a] said: a here",
            ],
        ),
    ]


# -- the serving layer's cache policy sees the DAG's stage boundaries -----------------

PREFIX = "You are one of the careful agents of a research team. " * 30


def answer_after_one_lookup(body: Body) -> Reply:
    if any(m["role"] == "tool" for m in body["messages"]):
        return Reply.text("done: " + "word " * 30)
    return Reply.call("lookup", {"topic": "x"})


@pytest.fixture
def engine() -> Iterator[EngineServer]:
    with start_engines(1, handler=answer_after_one_lookup) as (server,):
        yield server


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # the model client runs on asyncio only
async def test_the_cache_policy_flushes_at_the_boundary_between_two_nodes(
    engine: EngineServer,
) -> None:
    def agent(name: str) -> ChatModelAgent:
        return ChatModelAgent(
            name, model="a", instruction=PREFIX + f"You are {name}.", tools=[lookup]
        )

    backend = Backend("a", model="test-model", kind="vllm", endpoint=engine.url)
    layer = ServingLayer([backend], cache=CachePolicy(preserve_threshold=1))
    dag = DAGAgent("dag", [agent("fetch"), Node(agent("analyse"), after="fetch")])
    result = await Runner(dag, serving=layer).invoke("go")
    calls = result.serving.calls
    assert [c.stage for c in calls] == ["fetch", "fetch", "analyse", "analyse"]
    first_analyse = calls[2]
    assert len(first_analyse.flushed) == 1 and first_analyse.flushed[0].startswith("fetch@")
    assert [(f.stage, f.reason.split(":")[0]) for f in layer.flushes] == [
        ("fetch", "stage boundary"),
        ("analyse", "run complete"),
    ]
