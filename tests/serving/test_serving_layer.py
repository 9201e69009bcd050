"""The serving layer end to end: agents → layer → litellm → reference engines over HTTP.

Every test here runs real HTTP servers on loopback (tests/support/engine_server.py)
that keep a prefix cache and count what they computed; the layer talks to them
through the same litellm path as to any OpenAI-compatible server.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from adk import (
    ChatModelAgent,
    ConfigurationError,
    Message,
    ModelRequest,
    Runner,
    SequentialAgent,
    tool,
)
from adk.serving import (
    Backend,
    BackendUnavailableError,
    CallMetrics,
    Cost,
    QueueFullError,
    ServingLayer,
)
from tests.support.engine_server import EngineServer, start_engines
from tests.support.openai_server import Body, Reply

pytestmark = pytest.mark.anyio

PREFIX = "You are one of the careful agents of a research team. " * 40


def tool_rounds(rounds: int) -> Any:
    """A scripted LLM: call ``step`` until ``rounds`` tool results are in, then answer."""

    def answer(body: Body) -> Reply:
        done = sum(1 for m in body["messages"] if m["role"] == "tool")
        if done < rounds:
            return Reply.call("step", {"n": done})
        return Reply.text(f"finished after {done} steps")

    return answer


@tool
def step(n: int) -> str:
    """Do one step of the work."""
    return f"step {n} done: " + "result " * 120


def agent(name: str, model: str = "local", **options: Any) -> ChatModelAgent:
    return ChatModelAgent(
        name, model=model, instruction=PREFIX + f"You are {name}.", tools=[step], **options
    )


@pytest.fixture
def engines() -> Iterator[list[EngineServer]]:
    with start_engines(3, handler=tool_rounds(2)) as servers:
        yield servers


def layer_for(engines: list[EngineServer], **options: Any) -> ServingLayer:
    backend_options = {k: options.pop(k) for k in list(options) if k in _BACKEND_FIELDS}
    backend = Backend(
        "local",
        model="test-model",
        kind=backend_options.pop("kind", "vllm"),
        replicas=[e.url for e in engines],
        **backend_options,
    )
    return ServingLayer([backend], **options)


_BACKEND_FIELDS = {
    "kind",
    "routing",
    "max_concurrency",
    "queue_capacity",
    "scheduling",
    "flush",
    "cost",
    "prompt_cache",
    "probe_interval",
    "slots",
}


# -- zero configuration ------------------------------------------------------------------------


async def test_a_litellm_model_id_becomes_an_implicit_backend() -> None:
    with start_engines(1, handler=tool_rounds(1)) as (engine,):
        calc = ChatModelAgent(
            "calc",
            model="openai/test-model",
            tools=[step],
            model_params={"api_base": engine.base_url, "api_key": "x"},
        )
        result = await Runner(calc).invoke("go")
    assert result.text == "finished after 1 steps"
    calls = result.serving.calls
    assert [c.backend for c in calls] == ["openai/test-model"] * 2
    assert all(c.error is None and c.prompt_tokens > 0 for c in calls)
    assert engine.requests_total == 2


# -- routing -----------------------------------------------------------------------------------


async def test_round_robin_spreads_calls_evenly(engines: list[EngineServer]) -> None:
    runner = Runner(agent("worker"), serving=layer_for(engines, routing="round_robin"))
    for index in range(3):
        await runner.invoke(f"task {index}")
    assert [e.requests_total for e in engines] == [3, 3, 3]


async def test_session_affinity_keeps_a_session_on_one_replica(
    engines: list[EngineServer],
) -> None:
    layer = layer_for(engines, routing="session_affinity")
    runner = Runner(agent("worker"), serving=layer)
    for session in ("alice", "bob", "carol", "dave"):
        for turn in range(2):
            result = await runner.invoke(f"{session} turn {turn}", session_id=session)
            replicas = {c.replica for c in result.serving.calls}
            assert len(replicas) == 1
    by_session: dict[str, set[str]] = {}
    for call in layer.calls():
        by_session.setdefault(call.session_id, set()).add(call.replica)
    assert all(len(replicas) == 1 for replicas in by_session.values())


async def test_prefix_aware_keeps_a_run_where_its_history_is_cached(
    engines: list[EngineServer],
) -> None:
    layer = layer_for(engines, routing="prefix_aware")
    runner = Runner(agent("worker"), serving=layer)
    document = " ".join(f"fact{k}" for k in range(200))
    first = await runner.invoke(f"summarise: {document}")
    calls = first.serving.calls
    assert len({c.replica for c in calls}) == 1
    # Every call after the first finds the whole previous prompt cached (block-aligned).
    for before, after in itertools.pairwise(calls):
        assert after.cached_tokens >= before.prompt_tokens - 16
        assert after.expected_cached_tokens > 0
    # A second run shares only the static prefix (a weak match): it is new work, and goes
    # to the replica with the fewest calls, where it stays.
    second = await runner.invoke("another task")
    assert second.serving.calls[0].replica != calls[0].replica
    assert len({c.replica for c in second.serving.calls}) == 1


async def test_prefix_aware_computes_less_than_round_robin() -> None:
    prefill = {}
    for policy in ("round_robin", "prefix_aware"):
        with start_engines(3, handler=tool_rounds(3)) as servers:
            runner = Runner(agent("worker"), serving=layer_for(servers, routing=policy))
            for index in range(6):
                # Each run carries its own document: its history, not the shared
                # instruction, is what only one replica can have cached.
                document = " ".join(f"fact{index}x{k}" for k in range(300))
                await runner.invoke(f"task {index}: {document}")
            prefill[policy] = sum(s.prefill_tokens_total for s in servers)
            counts = [s.requests_total for s in servers]
            assert max(counts) <= 1.25 * sum(counts) / len(counts)
    # Each tool round adds ~200 new tokens that no cache can hold; the rest is reused.
    assert prefill["prefix_aware"] < 0.7 * prefill["round_robin"], prefill


async def test_least_loaded_avoids_a_busy_replica() -> None:
    with start_engines(2, handler=tool_rounds(0)) as (slow, fast):
        slow.seconds_per_output_token = 0.2
        layer = layer_for([slow, fast], routing="least_loaded")
        runner = Runner(ChatModelAgent("a", model="local"), serving=layer)
        async with anyio.create_task_group() as group:
            group.start_soon(runner.invoke, "first")  # takes the slow replica (index 0)
            await anyio.sleep(0.3)
            second = await runner.invoke("second")
        assert second.serving.calls[0].replica == fast.url


# -- stable prefixes ---------------------------------------------------------------------------


@tool
def alpha(x: int) -> int:
    """First tool."""
    return x


@tool
def beta(y: int, x: int) -> int:
    """Second tool."""
    return x + y


async def test_canonical_requests_survive_tool_order_and_system_placement() -> None:
    bodies: list[Body] = []

    def record(body: Body) -> Reply:
        bodies.append(body)
        return Reply.text("ok")

    with start_engines(1, handler=record) as (engine,):
        layer = layer_for([engine])
        spec_a, spec_b = alpha.spec, beta.spec
        shuffled = dict(reversed(list(spec_b.parameters.items())))
        assert list(shuffled) != list(spec_b.parameters)
        first = ModelRequest(
            messages=[Message.system(PREFIX), Message.user("hi")],
            tools=[spec_a, spec_b],
            run_id="r",
            agent_name="a",
        )
        second = ModelRequest(
            messages=[Message.user("hi"), Message.system(PREFIX)],
            tools=[spec_b.model_copy(update={"parameters": shuffled}), spec_a],
            run_id="r2",
            agent_name="a",
        )
        await layer.generate("local", first)
        await layer.generate("local", second)
        # The engine saw byte-identical prompts: the second was served from its cache.
        assert json.dumps(bodies[0]["tools"]) == json.dumps(bodies[1]["tools"])
        assert [m["role"] for m in bodies[1]["messages"]] == ["system", "user"]
        calls = layer.calls()
        assert calls[1].cached_tokens >= calls[1].prompt_tokens - 16

        raw = ServingLayer(
            [Backend("local", model="test-model", kind="vllm", endpoint=engine.url)],
            stable_prefixes=False,
        )
        engine.clear_cache()
        await raw.generate("local", first)
        await raw.generate("local", second)
        assert raw.calls()[1].cached_tokens < raw.calls()[1].prompt_tokens // 2


async def test_tool_turns_never_break_the_prefix(engines: list[EngineServer]) -> None:
    layer = layer_for(engines)
    pipeline = SequentialAgent("flow", [agent("planner"), agent("worker"), agent("reviewer")])
    result = await Runner(pipeline, serving=layer).invoke("plan the work")
    assert len(result.serving.calls) == 9
    assert result.serving.summary.prefix_breaks == 0


async def test_a_rewritten_history_counts_as_a_prefix_break(engines: list[EngineServer]) -> None:
    layer = layer_for(engines)
    base = [Message.system(PREFIX), Message.user("question one"), Message.assistant("answer")]
    await layer.generate("local", ModelRequest(messages=base, session_id="s", agent_name="a"))
    grown = [*base, Message.user("question two")]
    await layer.generate("local", ModelRequest(messages=grown, session_id="s", agent_name="a"))
    edited = [base[0], Message.user("question one, edited"), *grown[2:]]
    await layer.generate("local", ModelRequest(messages=edited, session_id="s", agent_name="a"))
    assert [c.prefix_break for c in layer.calls()] == [False, False, True]


# -- scheduling and backpressure ---------------------------------------------------------------


async def test_a_full_queue_fails_fast() -> None:
    with start_engines(1, handler=tool_rounds(0)) as (engine,):
        engine.seconds_per_output_token = 0.1
        layer = layer_for([engine], max_concurrency=1, queue_capacity=1)
        request = ModelRequest(messages=[Message.user("hi")], agent_name="a")
        outcomes: list[str] = []

        async def call() -> None:
            try:
                await layer.generate("local", request)
                outcomes.append("ok")
            except QueueFullError as exc:
                outcomes.append(f"refused: {exc}")

        async with anyio.create_task_group() as group:
            for _ in range(3):
                group.start_soon(call)
                await anyio.sleep(0.02)
        assert outcomes.count("ok") == 2
        refused = [o for o in outcomes if o.startswith("refused")]
        assert len(refused) == 1 and "queue full (1 calls waiting" in refused[0]
        waits = sorted(c.queue_wait for c in layer.calls())
        assert waits[0] == 0.0 and waits[1] > 0.05


async def test_priority_scheduling_serves_higher_priority_first() -> None:
    order: list[str] = []

    def answer(body: Body) -> Reply:
        order.append(body["messages"][-1]["content"])
        return Reply.text("ok")

    with start_engines(1, handler=answer) as (engine,):
        engine.seconds_per_output_token = 0.05
        layer = layer_for([engine], max_concurrency=1, scheduling="priority")

        async def call(text: str, priority: int) -> None:
            request = ModelRequest(messages=[Message.user(text)], priority=priority)
            await layer.generate("local", request)

        async with anyio.create_task_group() as group:
            group.start_soon(call, "first", 0)
            await anyio.sleep(0.02)
            for text, priority in (("low", 1), ("lowest", 0), ("high", 9)):
                group.start_soon(call, text, priority)
                await anyio.sleep(0.01)
    assert order == ["first", "high", "low", "lowest"]


async def test_agents_set_their_priority_and_fcfs_ignores_it() -> None:
    seen: list[int] = []
    with start_engines(1, handler=tool_rounds(0)) as (engine,):
        layer = layer_for([engine])
        layer.add_listener(lambda m: seen.append(m.queue_wait >= 0))
        urgent = ChatModelAgent("urgent", model="local", priority=5)
        result = await Runner(urgent, serving=layer).invoke("now")
    assert result.text and seen == [True]


# -- health and failover -----------------------------------------------------------------------


async def test_a_replica_killed_mid_run_is_routed_around() -> None:
    with start_engines(2, handler=tool_rounds(4)) as (first, second):
        layer = layer_for([first, second], routing="round_robin", probe_interval=60)
        victim: list[EngineServer] = []

        def kill_after_two(metrics: CallMetrics) -> None:
            if len(layer.calls()) == 2 and not victim:
                target = first if metrics.replica == first.url else second
                # Kill the replica that will take the next call (round robin alternates).
                victim.append(second if target is first else first)
                victim[0].stop()

        layer.add_listener(kill_after_two)
        urls = {id(first): first.url, id(second): second.url}
        result = await Runner(agent("worker"), serving=layer).invoke("survive")
        assert result.text == "finished after 4 steps"
        calls = result.serving.calls
        failed = [c for c in calls if c.error]
        assert len(failed) == 1 and "Connection" in failed[0].error
        assert failed[0].failed_over and not failed[0].prefix_break
        summary = result.serving.summary
        assert (summary.calls, summary.failovers, summary.errors) == (len(calls) - 1, 1, 0)
        survivor = first if victim[0] is second else second
        dead = urls[id(victim[0])]
        assert all(c.replica == urls[id(survivor)] for c in calls[2:] if c.error is None)
        states = {r.label: r.health for r in layer.replicas("local")}
        assert states[dead] == "unavailable"
        assert (await layer.check_health())["local"][dead] == "unavailable"


async def test_a_recovered_replica_is_probed_back_into_routing() -> None:
    with start_engines(2, handler=tool_rounds(0)) as (first, second):
        port = first.port
        layer = layer_for([first, second], routing="round_robin", probe_interval=0.05)
        request = ModelRequest(messages=[Message.user("hi")])
        first.stop()
        for _ in range(3):
            await layer.generate("local", request)
        assert layer.replicas("local")[0].health == "unavailable"
        revived = EngineServer(handler=tool_rounds(0), port=port).start()
        try:
            await anyio.sleep(0.1)
            for _ in range(4):
                await layer.generate("local", request)
            assert revived.requests_total >= 1
            assert layer.replicas("local")[0].health == "healthy"
        finally:
            revived.stop()


async def test_no_replica_left_is_a_clear_error() -> None:
    with start_engines(1, handler=tool_rounds(0)) as (engine,):
        layer = layer_for([engine], probe_interval=60)
        engine.stop()
        request = ModelRequest(messages=[Message.user("hi")])
        with pytest.raises(Exception) as first:
            await layer.generate("local", request)
        assert "Connection" in type(first.value).__name__
        with pytest.raises(BackendUnavailableError, match="no replica can take the call"):
            await layer.generate("local", request)


# -- metrics -----------------------------------------------------------------------------------


async def test_per_call_metrics_reach_the_run_result_and_listeners() -> None:
    heard: list[CallMetrics] = []
    with start_engines(2, handler=tool_rounds(1)) as servers:
        urls = {s.url for s in servers}
        servers[0].seconds_per_output_token = 0.005
        servers[1].seconds_per_output_token = 0.005
        layer = layer_for(servers, cost=Cost(prompt=1e-6, cached=1e-7, completion=2e-6))
        layer.add_listener(heard.append)
        runner = Runner(agent("worker"), serving=layer, streaming=True)
        result = await runner.invoke("measure me")
    calls = result.serving.calls
    assert heard == list(calls) and len(calls) == 2
    for call in calls:
        assert call.backend == "local" and call.replica in urls
        assert call.ttft is not None and 0 < call.ttft <= call.latency
        assert call.tpot is not None and call.tpot > 0
        assert call.completion_tokens > 0 and call.prompt_tokens > call.cached_tokens
        expected = (
            (call.prompt_tokens - call.cached_tokens) * 1e-6
            + call.cached_tokens * 1e-7
            + call.completion_tokens * 2e-6
        )
        assert call.cost == pytest.approx(expected)
        assert call.cache.startswith("preserve")
    summary = result.serving.summary
    assert summary.calls == 2 and summary.prompt_tokens == sum(c.prompt_tokens for c in calls)
    assert summary.cached_tokens == calls[1].cached_tokens > 0
    backend = layer.summary("local")
    assert backend.calls == 2 and sum(backend.per_replica.values()) == 2
    table = result.serving.table()
    assert "worker" in table and "preserve" in table


async def test_engine_metrics_are_read_from_the_engines(engines: list[EngineServer]) -> None:
    layer = layer_for(engines)
    await Runner(agent("worker"), serving=layer).invoke("go")
    found = await layer.engine_metrics("local")
    assert set(found) == {e.url for e in engines}
    used = [r for r in layer.replicas("local") if r.kv_usage]
    assert used and all(0 < r.kv_usage <= 1 for r in used if r.kv_usage is not None)


async def test_rejected_requests_do_not_count_against_a_replica() -> None:
    with start_engines(1, handler=lambda body: Reply.error(400, "prompt too long")) as (engine,):
        layer = layer_for([engine])
        request = ModelRequest(messages=[Message.user("hi")])
        for _ in range(4):
            with pytest.raises(Exception, match="prompt too long"):
                await layer.generate("local", request)
        assert layer.replicas("local")[0].health == "healthy"


async def test_a_replica_url_may_end_in_v1() -> None:
    with start_engines(1, handler=tool_rounds(0)) as (engine,):
        backend = Backend("local", model="test-model", kind="vllm", endpoint=engine.base_url)
        layer = ServingLayer([backend])
        assert backend.endpoints == (engine.url,)
        await layer.generate("local", ModelRequest(messages=[Message.user("hi")]))
        assert (await layer.check_health())["local"] == {engine.url: "healthy"}


async def test_inspecting_an_unknown_backend_is_an_error_not_a_new_backend(
    engines: list[EngineServer],
) -> None:
    layer = layer_for(engines)
    for inspect in (layer.replicas, layer.summary, layer.queue_stats):
        with pytest.raises(ConfigurationError, match=r"no backend named 'locl' \(known: local\)"):
            inspect("locl")
    with pytest.raises(ConfigurationError, match="no backend named"):
        await layer.engine_metrics("locl")
    assert list(layer.backends) == ["local"]
    with pytest.raises(ConfigurationError, match="has no replica"):
        layer.summary("local", replica="http://elsewhere")


async def test_queue_and_replica_statistics() -> None:
    with start_engines(2, handler=tool_rounds(0)) as servers:
        for server in servers:
            server.seconds_per_output_token = 0.02
        layer = layer_for(servers, max_concurrency=1, routing="round_robin")
        request = ModelRequest(messages=[Message.user("hi")])
        async with anyio.create_task_group() as group:
            for _ in range(4):
                group.start_soon(layer.generate, "local", request)
        assert layer.queue_stats("local") == {"waiting": 0, "max_waiting": 2, "refused": 0}
        per_replica = [layer.summary("local", replica=s.url).calls for s in servers]
        assert per_replica == [2, 2]


async def test_prefix_aware_keeps_a_chat_session_where_its_history_is(
    engines: list[EngineServer],
) -> None:
    # Each turn is a new run that flushes (softly) on completion; the next turn continues
    # the same history, which the engine still holds, so it goes back there.
    layer = layer_for(engines, routing="prefix_aware")
    chat = ChatModelAgent("chat", model="local", instruction=PREFIX)
    runner = Runner(chat, serving=layer)
    history: dict[str, list[Message]] = {}
    for turn in range(3):
        for session in ("alice", "bob", "carol", "dave", "erin", "frank"):
            said = [*history.get(session, []), Message.user(f"{session} says {turn} " * 30)]
            result = await runner.invoke(said, session_id=session)
            history[session] = [*said, Message.assistant(result.text)]
    by_session: dict[str, list[str]] = {}
    for call in layer.calls():
        by_session.setdefault(call.session_id, []).append(call.replica)
    assert all(len(set(replicas)) == 1 for replicas in by_session.values()), by_session
    later = layer.calls()[18:]  # turns 2 and 3
    assert all(c.cached_tokens > c.prompt_tokens // 2 for c in later)


async def test_a_streamed_call_fails_over_before_its_first_chunk_and_frees_its_slot() -> None:
    with start_engines(2, handler=lambda body: Reply.text("streamed " * 20)) as (dead, alive):
        layer = layer_for([dead, alive], routing="round_robin", probe_interval=60)
        dead.stop()
        request = ModelRequest(messages=[Message.user("hi")], stream=True)
        text = "".join([chunk.content async for chunk in layer.stream("local", request)])
        assert text == "streamed " * 20
        assert [c.error is not None for c in layer.calls()] == [True, False]
        # A consumer that stops reading mid-stream releases the replica's slot.
        stream = layer.stream("local", request)
        async for _ in stream:
            break
        await stream.aclose()  # type: ignore[attr-defined]
        assert [r.in_flight for r in layer.replicas("local")] == [0, 0]


async def test_cancelling_calls_leaves_no_slot_taken_and_no_one_queued() -> None:
    with start_engines(1, handler=lambda body: Reply.text("slow " * 50)) as (engine,):
        engine.seconds_per_output_token = 0.02
        layer = layer_for([engine], max_concurrency=1)
        request = ModelRequest(messages=[Message.user("hi")], run_id="r", agent_name="a")
        with anyio.move_on_after(0.2):
            async with anyio.create_task_group() as group:
                for _ in range(3):  # one in flight, two queued: all cancelled
                    group.start_soon(layer.generate, "local", request)
        assert layer.replicas("local")[0].in_flight == 0
        assert layer.queue_stats("local")["waiting"] == 0
        # The layer is still usable, and the slot is free for the next call.
        engine.seconds_per_output_token = 0.0
        await layer.generate("local", request)
        assert layer.calls()[-1].error is None
