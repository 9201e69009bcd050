"""Cache policies against reference engines: what is preserved, what is flushed, and when.

The engines are real HTTP servers with a prefix cache; a hard flush is only
counted as correct when the engine itself saw it arrive while idle.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import httpx
import pytest

from adk import ChatModelAgent, Message, ModelRequest, Runner, SequentialAgent, tool
from adk.serving import Backend, CacheEvent, CachePolicy, ServingLayer
from tests.support.engine_server import EngineServer, start_engines
from tests.support.openai_server import Body, Reply

pytestmark = pytest.mark.anyio

PREFIX = "You are one of the careful agents of a research team. " * 30


def answer_after(rounds: int) -> Any:
    def answer(body: Body) -> Reply:
        done = sum(1 for m in body["messages"] if m["role"] == "tool")
        if done < rounds:
            return Reply.call("lookup", {"n": done})
        return Reply.text("done: " + "word " * 30)

    return answer


@tool
def lookup(n: int) -> str:
    """Look something up."""
    return f"fact {n}: " + "detail " * 40


async def until(condition: Callable[[], bool]) -> None:
    """Wait up to 5 s for ``condition`` (polling), so tests do not race the engine's threads."""
    for _ in range(1000):
        if condition():
            return
        await anyio.sleep(0.005)
    raise AssertionError("condition not reached in 5 s")


def agent(name: str, model: str = "a", **options: Any) -> ChatModelAgent:
    return ChatModelAgent(
        name, model=model, instruction=PREFIX + f"You are {name}.", tools=[lookup], **options
    )


@pytest.fixture
def engine() -> Iterator[EngineServer]:
    with start_engines(1, handler=answer_after(1)) as (server,):
        yield server


def backend(name: str, server: EngineServer, **options: Any) -> Backend:
    return Backend(
        name, model="test-model", kind=options.pop("kind", "vllm"), endpoint=server.url, **options
    )


def pipeline(**worker_options: Any) -> SequentialAgent:
    return SequentialAgent("flow", [agent("planner"), agent("worker", **worker_options)])


async def test_a_small_increment_preserves_the_previous_stage(engine: EngineServer) -> None:
    layer = ServingLayer(
        [backend("a", engine)],
        cache=CachePolicy(preserve_threshold=100_000, flush_on_complete=False),
    )
    result = await Runner(pipeline(), serving=layer).invoke("go")
    worker_first = next(c for c in result.serving.calls if c.agent == "worker")
    assert worker_first.cache.startswith("preserve (small increment")
    assert "keeps planner's context" in worker_first.cache
    assert list(layer.flushes) == []


async def test_a_large_increment_flushes_at_the_stage_boundary(engine: EngineServer) -> None:
    layer = ServingLayer([backend("a", engine)], cache=CachePolicy(preserve_threshold=1))
    result = await Runner(pipeline(), serving=layer).invoke("go")
    worker_first = next(c for c in result.serving.calls if c.agent == "worker")
    assert len(worker_first.flushed) == 1 and worker_first.flushed[0].startswith("planner@")
    assert "stage boundary" in worker_first.flushed[0]
    reasons = [(f.stage, f.reason.split(":")[0], f.hard) for f in layer.flushes]
    assert reasons == [
        ("planner", "stage boundary", False),
        ("worker", "run complete", False),
    ]


async def test_another_backend_for_the_next_stage_flushes_the_previous_one() -> None:
    with start_engines(2, handler=answer_after(1)) as (first, second):
        layer = ServingLayer(
            [backend("a", first), backend("b", second)],
            cache=CachePolicy(preserve_threshold=100_000, flush_on_complete=False),
        )
        flow = SequentialAgent("flow", [agent("planner"), agent("worker", model="b")])
        await Runner(flow, serving=layer).invoke("go")
    assert [(f.stage, f.reason) for f in layer.flushes] == [
        ("planner", "next stage uses backend 'b'")
    ]


async def test_call_and_stage_overrides_beat_the_workflow_policy(engine: EngineServer) -> None:
    layer = ServingLayer(
        [backend("a", engine)], cache=CachePolicy(preserve_threshold=1, flush_on_complete=False)
    )
    result = await Runner(pipeline(cache="preserve"), serving=layer).invoke("go")
    worker_first = next(c for c in result.serving.calls if c.agent == "worker")
    assert worker_first.cache.startswith("preserve (call asks to preserve")
    assert list(layer.flushes) == []

    staged = ServingLayer(
        [backend("a", engine)],
        cache=CachePolicy(
            preserve_threshold=1, flush_on_complete=False, stages={"planner": "preserve"}
        ),
    )
    await Runner(pipeline(), serving=staged).invoke("go")
    assert list(staged.flushes) == []

    # An explicit flush at a boundary overrides a policy that would preserve; within the
    # agent's own tool loop it changes nothing (the agent's own cache keeps serving it).
    forced = ServingLayer(
        [backend("a", engine)],
        cache=CachePolicy(preserve_threshold=100_000, flush_on_complete=False),
    )
    result = await Runner(pipeline(cache="flush"), serving=forced).invoke("go")
    assert [(f.stage, f.reason) for f in forced.flushes] == [("planner", "call asks to flush")]
    worker_calls = [c for c in result.serving.calls if c.agent == "worker"]
    assert [c.cache.split(" (")[0] for c in worker_calls] == ["preserve", "preserve"]
    assert worker_calls[1].cached_tokens > 0


async def test_custom_memory_policies_are_consulted_first(engine: EngineServer) -> None:
    seen: list[CacheEvent] = []

    class KeepPlanner:
        def decide(self, event: CacheEvent) -> str:
            seen.append(event)
            return "preserve" if event.prev_stage == "planner" else "auto"

    layer = ServingLayer(
        [backend("a", engine)], cache=CachePolicy(preserve_threshold=1, policies=[KeepPlanner()])
    )
    await Runner(pipeline(), serving=layer).invoke("go")
    assert [(e.transition, e.prev_stage, e.next_stage) for e in seen] == [
        ("stage", "planner", "worker"),
        ("complete", "planner", ""),
        ("complete", "worker", ""),
    ]
    assert seen[0].delta_tokens > 0 and seen[0].prev_backend == seen[0].next_backend == "a"
    assert [f.stage for f in layer.flushes] == ["worker"]


async def test_flush_on_complete_can_be_turned_off(engine: EngineServer) -> None:
    on = ServingLayer([backend("a", engine)])
    await Runner(agent("solo"), serving=on).invoke("go")
    assert [f.reason for f in on.flushes] == ["run complete"]
    off = ServingLayer([backend("a", engine)], cache=CachePolicy(flush_on_complete=False))
    await Runner(agent("solo"), serving=off).invoke("go")
    assert list(off.flushes) == []


# -- hard flushes reach the engine, only while it is idle ----------------------------------------


@pytest.mark.parametrize(
    ("kind", "endpoint"), [("sglang", "/flush_cache"), ("vllm", "/reset_prefix_cache")]
)
async def test_a_hard_flush_calls_the_engine_endpoint(
    engine: EngineServer, kind: str, endpoint: str
) -> None:
    layer = ServingLayer([backend("a", engine, kind=kind, flush="hard")])
    await Runner(agent("solo"), serving=layer).invoke("go")
    assert [(f.endpoint, f.idle) for f in engine.flushes] == [(endpoint, True)]
    assert [f.sent for f in layer.flushes] == [True]
    assert engine.cached_blocks == 0 and layer.replicas("a")[0].prefix.match is not None
    assert len(layer.replicas("a")[0].prefix) == 0


async def test_a_hard_flush_waits_while_our_own_call_is_in_flight() -> None:
    # The other call is held by the engine until the test lets it go, so it is in flight
    # for exactly as long as the test needs (timing it with a slow reply raced the first
    # call's litellm import and the quick run on a loaded machine). While held it waits in
    # the engine's queue: the engine reports nothing running, so only the layer's own
    # count of calls in flight can keep the flush back.
    with start_engines(1) as (server,):
        held = server.hold(lambda body: body["messages"][-1]["content"] == "held please")
        layer = ServingLayer([backend("a", server, kind="sglang", flush="hard")])
        runner = Runner(agent("solo"), serving=layer)
        other = ModelRequest(messages=[Message.user("held please")], run_id="other", agent_name="x")
        async with anyio.create_task_group() as group:
            group.start_soon(layer.generate, "a", other)
            await held.wait_held()
            assert server.in_flight == 0  # asked now, the engine would say it is idle
            await runner.invoke("quick")
            # The run is over and its flush decided, but our other call is still in flight.
            assert [f.sent for f in layer.flushes] == [None]
            assert server.flushes == []
            held.release()
        # The other call ended: its completion sent the pending flush to an idle engine.
        assert [f.sent for f in layer.flushes] == [True]
        assert [f.idle for f in server.flushes] == [True]
        assert server.flushed_while_busy == 0


async def test_a_hard_flush_waits_while_another_client_keeps_the_engine_busy() -> None:
    def answer(body: Body) -> Reply:
        if body["messages"][-1]["content"] == "x":
            return Reply.text("long " * 600)  # the foreign call: 600 tokens, ~3 s
        return answer_after(0)(body)

    with start_engines(1, handler=answer) as (server,):
        layer = ServingLayer([backend("a", server, kind="vllm", flush="hard")])
        server.seconds_per_output_token = 0.005
        body = {
            "model": "test-model",
            "messages": [{"role": "user", "content": "x"}],
            "max_tokens": 5,
        }
        foreign = threading.Thread(
            target=lambda: httpx.post(server.base_url + "/chat/completions", json=body, timeout=10)
        )
        foreign.start()
        try:
            await until(lambda: server.in_flight == 1)
            await Runner(agent("solo"), serving=layer).invoke("go")
            assert [f.sent for f in layer.flushes] == [None]  # the engine said it was busy
        finally:
            foreign.join()
        # The next call finds the engine idle and the flush goes through.
        await layer.generate("a", ModelRequest(messages=[Message.user("next")], run_id="r2"))
        assert [f.sent for f in layer.flushes] == [True]
        assert server.flushed_while_busy == 0 and len(server.flushes) == 1


async def test_llamacpp_calls_are_pinned_to_slots_and_erased_on_flush() -> None:
    bodies: list[Body] = []

    def answer(body: Body) -> Reply:
        bodies.append(body)
        return answer_after(1)(body)

    with start_engines(1, handler=answer, n_slots=2) as (server,):
        layer = ServingLayer([backend("a", server, kind="llamacpp", flush="hard", slots=2)])
        result = await Runner(agent("solo"), serving=layer).invoke("go")
        assert len(result.serving.calls) == 2
        assert all(b.get("cache_prompt") is True for b in bodies)
        assert {b.get("id_slot") for b in bodies} == {0}  # one context keeps its slot
        assert server.slot_erases == 1
        assert [f.sent for f in layer.flushes] == [True]


# -- pressure -------------------------------------------------------------------------------------


async def test_pressure_frees_the_oldest_idle_run(engine: EngineServer) -> None:
    policy = CachePolicy(flush_on_complete=False, pressure_threshold=0.85, pressure_interval=0)
    layer = ServingLayer([backend("a", engine, flush="hard", kind="sglang")], cache=policy)
    runner = Runner(agent("solo"), serving=layer)
    first = await runner.invoke("first run")
    assert list(layer.flushes) == []
    engine.kv_usage_override = 0.9
    await runner.invoke("second run")
    pressured = [f for f in layer.flushes if f.reason.startswith("pressure")]
    assert pressured and pressured[0].run_id == first.run_id
    assert pressured[0].reason == "pressure: KV usage 0.90"
    assert layer.replicas("a")[0].kv_usage == pytest.approx(0.9)


# -- provider prompt-cache hints ------------------------------------------------------------------


async def test_prompt_cache_key_is_stable_per_session_and_agent(engine: EngineServer) -> None:
    bodies: list[Body] = []
    engine.handler = lambda body: (bodies.append(body), answer_after(1)(body))[1]
    layer = ServingLayer([backend("a", engine, kind="openai", prompt_cache="key")])
    runner = Runner(agent("solo"), serving=layer)
    await runner.invoke("one", session_id="s1")
    await runner.invoke("two", session_id="s1")
    await runner.invoke("three", session_id="s2")
    keys = [b.get("prompt_cache_key") for b in bodies]
    # s1's second turn continues the stored conversation: it already holds the tool result,
    # so the model answers at once (one call); s2 is a new conversation (two calls).
    assert len(keys) == 5
    assert keys[0] and keys[0] == keys[1] == keys[2] != keys[3] == keys[4]


async def test_cache_control_breakpoints_mark_the_static_prefix_and_the_newest_message(
    engine: EngineServer,
) -> None:
    bodies: list[Body] = []
    engine.handler = lambda body: (bodies.append(body), answer_after(1)(body))[1]
    layer = ServingLayer([backend("a", engine, kind="openai", prompt_cache="cache_control")])
    await Runner(agent("solo"), serving=layer).invoke("go")
    for body in bodies:
        marked = [
            i
            for i, m in enumerate(body["messages"])
            if isinstance(m.get("content"), list) and m["content"][0].get("cache_control")
        ]
        last_with_text = max(i for i, m in enumerate(body["messages"]) if m.get("content"))
        assert marked == sorted({0, last_with_text})
    # Content blocks carry the same text: the second call still reuses the first's prefix.
    assert layer.calls()[1].cached_tokens > 0
