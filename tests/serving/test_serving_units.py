"""The serving layer's pure decisions: configuration, fingerprints, routing, cache policy.

These need no server: each builds the layer's own objects (replicas, prefix
records, policies) and checks a decision. The end-to-end behaviour is in
test_serving_layer.py and test_cache_policies.py, against real HTTP engines.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from adk import ConfigurationError, Message, ModelRequest, ScriptedModel, ToolSpec
from adk.messages import Usage
from adk.serving import (
    Backend,
    CacheEvent,
    CachePolicy,
    Cost,
    LeastLoaded,
    PrefixAware,
    Replica,
    RoundRobin,
    RouteRequest,
    ServingSummary,
    SessionAffinity,
)
from adk.serving.dispatch import _FAST_COPY, _with_params
from adk.serving.engines import kv_usage, parse_prometheus
from adk.serving.prefix import PrefixIndex, canonical_request, fingerprint
from adk.serving.routing import routing_policy

SYSTEM = "You are a helpful agent with a long and detailed instruction. " * 20


def replica(index: int, in_flight: int = 0, requests: int = 0, capacity: int = 8) -> Replica:
    r = Replica("b", index, f"http://10.0.0.{index}:8000", ScriptedModel([]), capacity, 4096, 0)
    r.in_flight, r.requests = in_flight, requests
    return r


def request(*texts: str, system: str = SYSTEM, session: str = "s") -> ModelRequest:
    messages = [Message.system(system)] + [Message.user(t) for t in texts]
    return ModelRequest(messages=messages, run_id="r", session_id=session, agent_name="a")


def route(req: ModelRequest) -> RouteRequest:
    return RouteRequest(
        req.run_id, req.session_id, req.agent_name, fingerprint(canonical_request(req))
    )


# -- configuration -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"kind": "tgi", "endpoint": "http://x"}, "unknown kind 'tgi'"),
        ({"kind": "vllm"}, "needs an endpoint or replicas"),
        ({"replicas": "http://x"}, "not one string"),
        ({"replicas": ["http://x", "http://x/"]}, "listed twice"),
        ({"replicas": ["x:8000"]}, "is not an http(s) URL"),
        ({"endpoint": "http://x", "replicas": ["http://y"]}, "not both"),
        ({"endpoint": "http://x", "max_concurrency": 0}, "max_concurrency"),
        ({"endpoint": "http://x", "scheduling": "lifo"}, "scheduling"),
        ({"endpoint": "http://x", "flush": "now"}, "flush must be"),
    ],
)
def test_bad_backends_are_refused_with_a_clear_message(options: dict, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Backend("b", model="m", **options)


def test_backend_endpoints_are_normalised() -> None:
    assert Backend("b", model="m", endpoint="http://x:1/").endpoints == ("http://x:1",)
    assert Backend("b", model="m", kind="litellm").endpoints == ()


def test_cost_counts_cached_tokens_at_their_own_price() -> None:
    cost = Cost(prompt=2.0, cached=0.5, completion=3.0)
    assert (
        cost.of(Usage(prompt_tokens=10, cached_tokens=4, completion_tokens=2))
        == 6 * 2 + 4 * 0.5 + 6
    )


def test_unknown_routing_policies_and_cache_modes_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="unknown routing policy 'fastest'"):
        routing_policy("fastest")
    with pytest.raises(ConfigurationError, match="not a routing policy"):
        routing_policy(object())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="cache mode of stage 'x'"):
        CachePolicy(stages={"x": "keep"})  # type: ignore[dict-item]
    with pytest.raises(ConfigurationError, match="pressure_threshold"):
        CachePolicy(pressure_threshold=1.5)


# -- canonical requests and fingerprints -------------------------------------------------------


def test_canonical_requests_sort_tools_and_schema_keys_and_hoist_system_messages() -> None:
    b = ToolSpec(name="b", parameters={"type": "object", "properties": {"z": {}, "a": {}}})
    a = ToolSpec(name="a")
    messy = ModelRequest(messages=[Message.user("hi"), Message.system("rules")], tools=[b, a])
    tidy = canonical_request(messy)
    assert [t.name for t in tidy.tools] == ["a", "b"]
    assert list(tidy.tools[1].parameters["properties"]) == ["a", "z"]
    assert [m.role for m in tidy.messages] == ["system", "user"]
    assert canonical_request(tidy) is tidy
    assert fingerprint(tidy) == fingerprint(canonical_request(messy))


def test_a_grown_conversation_extends_its_fingerprint_an_edited_one_does_not() -> None:
    from adk.serving.prefix import fingerprint_text, prompt_text

    base = request("first question")
    grown = request("first question", "second question")
    edited = request("first question, edited", "second question")
    earlier = fingerprint(base)
    text, static = prompt_text(grown)
    assert fingerprint_text(text, static).extends(earlier, text)
    text, static = prompt_text(edited)
    assert not fingerprint_text(text, static).extends(earlier, text)
    assert earlier.static_blocks == len(prompt_text(base)[0][: prompt_text(base)[1]]) // 64


def test_the_prefix_index_evicts_least_recently_used_blocks_tail_first() -> None:
    index = PrefixIndex(capacity_blocks=30)
    first, second = fingerprint(request("a" * 2000)), fingerprint(request("b" * 2000))
    assert len(first.blocks) > 30 and first.static_blocks < 30
    index.insert(first, "run-1")
    assert len(index) == 30 and index.match(first) == 30  # the head survives its own tail
    index.insert(second, "run-2")
    assert index.match(second) == 30
    assert index.match(first) == first.static_blocks  # only the shared instruction is left


def test_releasing_a_context_keeps_static_and_shared_blocks() -> None:
    index = PrefixIndex(capacity_blocks=10_000)
    one, two = fingerprint(request("x" * 1000)), fingerprint(request("y" * 1000))
    index.insert(one, "one")
    index.insert(two, "two")
    dropped = index.release("one", drop=True)
    assert dropped == len(one.blocks) - one.static_blocks
    assert index.match(one) == one.static_blocks  # the shared instruction stays
    assert index.match(two) == len(two.blocks)
    assert list(index.owners()) == ["two"]


def test_a_soft_release_keeps_blocks_but_evicts_them_first() -> None:
    one, two = fingerprint(request("x" * 1000)), fingerprint(request("y" * 1000))
    index = PrefixIndex(capacity_blocks=len(one.blocks) + len(two.blocks) - one.static_blocks)
    index.insert(one, "one")
    index.insert(two, "two")
    assert index.release("one") == len(one.blocks) - one.static_blocks
    assert index.match(one) == len(one.blocks)  # still there: a next turn would find it
    index.insert(fingerprint(request("z" * 200)), "three")  # needs room: "one" goes first
    assert index.match(one) < len(one.blocks)
    assert index.match(two) == len(two.blocks)


# -- routing -----------------------------------------------------------------------------------


def test_round_robin_takes_turns_and_skips_replicas_that_cannot_take_the_call() -> None:
    replicas = [replica(i) for i in range(3)]
    policy = RoundRobin()
    call = route(request("q"))
    assert [policy.choose(call, replicas, replicas).index for _ in range(4)] == [0, 1, 2, 0]
    assert policy.choose(call, [replicas[0], replicas[2]], replicas).index == 2


def test_least_loaded_compares_in_flight_share_then_calls_so_far() -> None:
    replicas = [
        replica(0, in_flight=3),
        replica(1, in_flight=1, requests=9),
        replica(2, in_flight=1),
    ]
    assert LeastLoaded().choose(route(request("q")), replicas, replicas).index == 2


def test_session_affinity_is_stable_and_moves_few_sessions_when_a_replica_joins() -> None:
    policy = SessionAffinity()
    sessions = [f"session-{n}" for n in range(300)]

    def placement(replicas: list[Replica]) -> dict[str, int]:
        return {
            s: policy.choose(route(request("q", session=s)), replicas, replicas).index
            for s in sessions
        }

    three = [replica(i) for i in range(3)]
    before = placement(three)
    assert placement(three) == before
    assert len(set(before.values())) == 3
    after = placement([*three, replica(3)])
    moved = [s for s in sessions if after[s] != before[s]]
    assert all(after[s] == 3 for s in moved)  # only to the new replica
    assert 0.1 < len(moved) / len(sessions) < 0.45


def test_session_affinity_skips_a_replica_over_its_load_cap() -> None:
    policy = SessionAffinity(load_cap=1.25)
    replicas = [replica(i) for i in range(2)]
    call = route(request("q", session="busy"))
    home = policy.choose(call, replicas, replicas)
    home.in_flight = 6
    other = replicas[1 - home.index]
    other.in_flight = 2
    assert policy.choose(call, replicas, replicas) is other


def test_prefix_aware_follows_history_not_the_shared_instruction() -> None:
    policy = PrefixAware()
    replicas = [replica(i) for i in range(3)]
    history = request("a long user document " * 40)
    replicas[1].prefix.insert(fingerprint(canonical_request(history)), "ctx")
    replicas[0].prefix.insert(fingerprint(canonical_request(request("other"))), "ctx0")
    follow_up = request("a long user document " * 40, "and a question")
    assert policy.choose(route(follow_up), replicas, replicas).index == 1
    # A call sharing only the instruction is a weak match: least loaded first, and among
    # equally loaded replicas the one holding the instruction.
    fresh = route(request("brand new task"))
    replicas[1].in_flight = 1
    assert policy.choose(fresh, replicas, replicas).index == 0
    replicas[0].requests = 3
    assert policy.choose(fresh, replicas, replicas).index == 2


def test_prefix_aware_sends_a_continuing_context_home_within_the_load_bound() -> None:
    policy = PrefixAware(max_extra_in_flight=4)
    replicas = [replica(i) for i in range(2)]
    call = route(request("next step"))
    home = RouteRequest(call.run_id, call.session_id, call.agent, call.fingerprint, home=1)
    assert policy.choose(home, replicas, replicas).index == 1
    replicas[1].in_flight = 5  # five calls more than the other replica: too far
    assert policy.choose(home, replicas, replicas).index == 0


def test_prefix_aware_gives_up_the_cache_when_load_is_unbalanced() -> None:
    policy = PrefixAware(max_extra_in_flight=8, balance_cap=1.2, balance_slack=4)
    replicas = [replica(i) for i in range(2)]
    history = request("a long user document " * 40)
    replicas[0].prefix.insert(fingerprint(canonical_request(history)), "ctx")
    follow_up = route(request("a long user document " * 40, "next"))
    assert policy.choose(follow_up, replicas, replicas).index == 0
    replicas[0].in_flight = 9  # nine calls ahead of the other replica
    assert policy.choose(follow_up, replicas, replicas).index == 1
    replicas[0].in_flight = 0
    replicas[0].requests, replicas[1].requests = 40, 10  # far over its share of calls
    assert policy.choose(follow_up, replicas, replicas).index == 1


# -- cache policy decisions --------------------------------------------------------------------


def event(**changes: object) -> CacheEvent:
    fields: dict = dict(
        transition="stage",
        run_id="r",
        prev_stage="planner",
        next_stage="worker",
        prev_backend="a",
        next_backend="a",
        prev_model="m",
        next_model="m",
        delta_tokens=100,
        total_tokens=2000,
    )
    fields.update(changes)
    return CacheEvent(**fields)


@pytest.mark.parametrize(
    ("policy", "changes", "mode", "expected"),
    [
        (CachePolicy(), {}, "auto", "preserve (small increment: 100 new tokens)"),
        (CachePolicy(), {"delta_tokens": 256}, "auto", "flush (stage boundary: 256 new tokens)"),
        (CachePolicy(), {"next_backend": "b"}, "auto", "flush (next stage uses backend 'b')"),
        (CachePolicy(), {"next_model": "n"}, "auto", "flush (next stage uses backend 'a')"),
        (CachePolicy(), {"transition": "complete"}, "auto", "flush (run complete)"),
        (
            CachePolicy(flush_on_complete=False),
            {"transition": "complete"},
            "auto",
            "preserve (run complete, flush_on_complete off)",
        ),
        (
            CachePolicy(flush_at_boundary=False),
            {"delta_tokens": 5000},
            "auto",
            "preserve (no policy flushes)",
        ),
        (
            CachePolicy(preserve_threshold=None),
            {"delta_tokens": 1},
            "auto",
            "flush (stage boundary: 1 new tokens)",
        ),
        (CachePolicy(), {"delta_tokens": 5000}, "preserve", "preserve (call asks to preserve)"),
        (CachePolicy(), {}, "flush", "flush (call asks to flush)"),
        (
            CachePolicy(stages={"planner": "flush"}),
            {},
            "auto",
            "flush (stage 'planner' is set to flush)",
        ),
    ],
)
def test_cache_policy_decisions(
    policy: CachePolicy, changes: dict, mode: str, expected: str
) -> None:
    assert str(policy.decide(event(**changes), mode)) == expected


def test_an_unknown_call_cache_mode_is_a_clear_error() -> None:
    with pytest.raises(ConfigurationError, match="cache mode 'sometimes' of stage 'worker'"):
        CachePolicy().decide(event(), "sometimes")


# -- engine metrics and summaries --------------------------------------------------------------


def test_prometheus_samples_and_kv_usage_are_read_from_any_engine() -> None:
    text = (
        "# HELP vllm:kv_cache_usage_perc KV usage\n"
        "# TYPE vllm:kv_cache_usage_perc gauge\n"
        'vllm:kv_cache_usage_perc{model_name="m"} 0.42\n'
        "vllm:num_requests_running 3\n"
        "garbage line\n"
    )
    samples = parse_prometheus(text)
    assert samples['vllm:kv_cache_usage_perc{model_name="m"}'] == 0.42
    assert kv_usage(samples) == 0.42
    assert kv_usage({"sglang:token_usage": 0.7, "vllm:gpu_cache_usage_perc": 0.2}) == 0.7
    assert kv_usage({"vllm:num_requests_running": 3.0}) is None


def test_an_empty_summary_is_balanced_and_has_no_hits() -> None:
    summary = ServingSummary.of([], ["r0", "r1"])
    assert summary.hit_rate == 0.0 and summary.imbalance == 1.0
    assert summary.per_replica == {"r0": 0, "r1": 0}


def test_a_reassigned_llama_cpp_slot_forgets_its_previous_context() -> None:
    r = Replica("b", 0, "http://x", ScriptedModel([]), 8, 4096, 1)
    first, second = fingerprint(request("x" * 1000)), fingerprint(request("y" * 1000))
    assert r.take_slot("one", first) == 0
    r.prefix.insert(first, "one")
    r.free_slot(0)
    assert r.take_slot("one", first) == 0  # its own slot again
    r.free_slot(0)
    assert r.take_slot("two", second) == 0  # the only slot: "one" loses it
    assert r.prefix.match(first) == first.static_blocks
    assert r.slots_of("one") == [] and r.slots_of("two") == [0]
    assert r.take_slot("three", first) is None  # busy: no slot to give


# -- the queue ----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_cancelled_waiter_leaves_the_queue_and_the_next_one_gets_the_slot() -> None:
    import anyio

    from adk.serving.scheduler import BackendQueue

    busy = replica(0, capacity=1)
    queue = BackendQueue("b", [busy], capacity=4)

    def choose(free: object) -> Replica:
        return busy

    held, _ = await queue.acquire(choose)
    served: list[str] = []

    async def wait(name: str) -> None:
        got, waited = await queue.acquire(choose)
        served.append(name)
        assert waited > 0
        queue.release(got)

    async with anyio.create_task_group() as group:
        group.start_soon(wait, "cancelled")
        await anyio.sleep(0.01)
        assert queue.waiting == 1
        group.cancel_scope.cancel()  # the waiting call is cancelled
    assert queue.waiting == 0 and served == []

    async with anyio.create_task_group() as group:
        group.start_soon(wait, "next")
        await anyio.sleep(0.01)
        assert queue.waiting == 1
        queue.release(held)
    assert served == ["next"] and queue.waiting == 0 and busy.in_flight == 0


# -- the dispatcher -----------------------------------------------------------------------------


def test_an_attempt_copies_every_field_of_the_request() -> None:
    # The dispatcher copies requests field by field (faster than dataclasses.replace); a field
    # added to ModelRequest makes it fall back to replace, and this test says to list it.
    assert _FAST_COPY, "list ModelRequest's new field in adk/serving/dispatch.py:_with_params"
    full = ModelRequest(
        messages=[Message.user("hi")],
        tools=[ToolSpec(name="t")],
        params={"temperature": 0.5},
        stream=True,
        run_id="r",
        session_id="s",
        agent_name="a",
        agent_path=("flow", "a"),
        stage="st",
        call_id="c",
        priority=3,
        cache="flush",
        cache_breakpoints=(0,),
    )
    params = {"extra_body": {"id_slot": 1}}
    copied = _with_params(full, params)
    assert copied == replace(full, params=params) and copied.params is params

    @dataclass(slots=True, kw_only=True)
    class Tagged(ModelRequest):
        tag: str = ""

    tagged = Tagged(messages=[Message.user("hi")], tag="x")
    assert _with_params(tagged, params) == replace(tagged, params=params)
