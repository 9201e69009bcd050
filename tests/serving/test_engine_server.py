"""The reference engine server measures prefix caching the way vLLM / SGLang / llama.cpp would.

Benchmarks of the cache-aware serving layer trust these numbers, so they are
checked over real HTTP (httpx and litellm), not by calling methods.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.support.engine_server import (
    EngineServer,
    PrefixCache,
    block_keys,
    render_prompt,
    start_engines,
    token_pieces,
    tokenize,
)
from tests.support.openai_server import Reply

BLOCK = 8

http = httpx.Client(timeout=10)
"""One client for the module: a new ``httpx.Client`` per call costs ~20 ms (its SSL context)."""

SYSTEM = "You are a careful assistant. Answer in one short sentence, and cite nothing."
TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": f"Look up the {name} of a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    for name in ("weather", "population", "mayor")
]


@pytest.fixture
def engine() -> Iterator[EngineServer]:
    with EngineServer(block_tokens=BLOCK, name="test") as server:
        yield server


def words(prefix: str, count: int) -> str:
    return " ".join(f"{prefix}{i}" for i in range(count))


def chat(*turns: str, tools: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    """A body: the system message, then alternating user / assistant turns."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM}]
    for index, text in enumerate(turns):
        messages.append({"role": "user" if index % 2 == 0 else "assistant", "content": text})
    body: dict[str, Any] = {"model": "test-model", "messages": messages, **extra}
    if tools is not None:
        body["tools"] = tools
    return body


def post(server: EngineServer, body: dict[str, Any]) -> dict[str, Any]:
    response = http.post(f"{server.base_url}/chat/completions", json=body, timeout=10)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def cached(data: dict[str, Any]) -> int:
    return int(data["usage"]["prompt_tokens_details"]["cached_tokens"])


def prompt_len(body: dict[str, Any]) -> int:
    return len(tokenize(render_prompt(body)))


def wait_until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.002)


def common_prefix(a: dict[str, Any], b: dict[str, Any]) -> int:
    """How many leading prompt tokens two bodies share."""
    count = 0
    for x, y in zip(tokenize(render_prompt(a)), tokenize(render_prompt(b)), strict=False):
        if x != y:
            break
        count += 1
    return count


def metrics(server: EngineServer) -> dict[str, float]:
    """``/metrics`` parsed: metric name (labels dropped) to value; checks the text format."""
    response = http.get(f"{server.url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    values: dict[str, float] = {}
    typed: set[str] = set()
    for line in response.text.splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
        elif line and not line.startswith("#"):
            sample, value = line.rsplit(" ", 1)
            name = sample.split("{", 1)[0]
            assert name in typed, f"{name} has no # TYPE line"
            values[name] = float(value)
    return values


# -- tokenization --------------------------------------------------------------------------------


def test_tokens_are_words_and_punctuation() -> None:
    assert tokenize("Hello, world!  It's 42.") == [
        "Hello",
        ",",
        " world",
        "!",
        "  It",
        "'",
        "s",
        " 42",
        ".",
    ]
    assert len(tokenize(words("w", 1500))) == 1500
    text = 'Sunny, 21 °C in "Paris".  '
    assert "".join(token_pieces(text)) == text
    assert all(len(tokenize(piece)) == 1 for piece in token_pieces(text))


def test_the_prompt_renders_tools_after_the_system_message_in_client_order() -> None:
    body = chat("hi", tools=TOOLS[:2])
    body["messages"].append(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "function": {"name": "weather", "arguments": "{}"}}],
        }
    )
    body["messages"].append({"role": "tool", "tool_call_id": "c1", "content": "sunny"})
    text = render_prompt(body)
    tools_text = "\n".join(json.dumps(tool, separators=(",", ":")) for tool in TOOLS[:2])
    assert text.startswith(f"<|system|>{SYSTEM}<|end|>\n<|tools|>\n{tools_text}<|end|>\n<|user|>hi")
    assert '[{"id":"c1","function":{"name":"weather","arguments":"{}"}}]' in text
    assert text.endswith("<|tool|>sunny<|call|>c1<|end|>\n<|assistant|>")
    no_system = render_prompt({"messages": [{"role": "user", "content": "hi"}], "tools": TOOLS})
    assert no_system.startswith("<|tools|>\n")


def test_block_keys_chain_so_a_block_matches_only_after_the_same_prefix() -> None:
    a = block_keys(tokenize(words("a", 8) + " " + words("x", 8)), BLOCK)
    b = block_keys(tokenize(words("b", 8) + " " + words("x", 8)), BLOCK)
    assert len(a) == len(b) == 2
    assert a[1] != b[1]  # the same eight tokens, after a different first block
    assert block_keys(tokenize(words("a", 7)), BLOCK) == []  # no full block


def test_a_prompt_larger_than_the_cache_keeps_its_head() -> None:
    cache = PrefixCache(capacity_blocks=2)
    cache.insert(["h", "m", "t"])
    assert cache.match(["h", "m", "t"]) == 2
    assert "t" not in cache


# -- the prefix cache over HTTP ------------------------------------------------------------------


def test_cold_then_repeated_request(engine: EngineServer) -> None:
    body = chat("What is the weather in Paris, and should I take an umbrella today?")
    prompt = prompt_len(body)

    cold = post(engine, body)
    assert cold["usage"]["prompt_tokens"] == prompt
    assert cached(cold) == 0
    assert cold["timings"] == {"cache_n": 0, "prompt_n": prompt, "predicted_n": 1}
    assert cold["choices"][0]["message"]["content"] == "ok"

    warm = post(engine, body)
    hit = cached(warm)
    assert hit >= prompt - BLOCK
    assert hit == min(prompt // BLOCK * BLOCK, prompt - 1)
    assert warm["timings"]["prompt_n"] == prompt - hit <= BLOCK
    assert engine.prefill_tokens_total == prompt + (prompt - hit)


def test_appending_turns_computes_only_the_new_part(engine: EngineServer) -> None:
    first = chat("Plan a trip to Lisbon for three days, with one museum a day.")
    post(engine, first)
    second = chat(first["messages"][1]["content"], "ok", "And a good place for dinner?")

    data = post(engine, second)
    old, new = prompt_len(first), prompt_len(second)
    assert cached(data) == old // BLOCK * BLOCK  # every full block of the first prompt
    assert data["timings"]["prompt_n"] < (new - old) + BLOCK


def test_reordered_tools_break_the_prefix_after_the_system_message(engine: EngineServer) -> None:
    question = "How many people live in Porto?"
    post(engine, chat(question, tools=TOOLS))
    assert cached(post(engine, chat(question, tools=TOOLS))) >= prompt_len(chat(question)) - BLOCK

    # The cache holds until the first token that differs (inside the first tool), no further.
    first_tool = len(tokenize(f"<|system|>{SYSTEM}<|end|>\n<|tools|>\n{json.dumps(TOOLS[0])}"))
    for tools in (
        [TOOLS[1], TOOLS[0], TOOLS[2]],
        [json.loads(json.dumps(tool, sort_keys=True)) for tool in TOOLS],
    ):
        shared = common_prefix(chat(question, tools=TOOLS), chat(question, tools=tools))
        assert shared < first_tool
        assert cached(post(engine, chat(question, tools=tools))) == shared // BLOCK * BLOCK


def test_a_full_cache_evicts_the_least_recently_used_blocks() -> None:
    def body(prefix: str) -> dict[str, Any]:
        return {"messages": [{"role": "user", "content": words(prefix, 17)}]}

    assert prompt_len(body("a")) == 4 * BLOCK  # 17 words + 15 template tokens
    with EngineServer(block_tokens=BLOCK, cache_tokens=8 * BLOCK) as engine:
        post(engine, body("a"))
        post(engine, body("b"))
        assert engine.kv_usage == 1.0
        assert cached(post(engine, body("a"))) == 4 * BLOCK - 1  # a is now the most recent
        post(engine, body("c"))  # evicts b, the least recently used
        assert cached(post(engine, body("a"))) == 4 * BLOCK - 1
        assert cached(post(engine, body("b"))) == 0
        assert engine.stats()["evictions"] >= 4


def test_cache_prompt_false_neither_reads_nor_fills_the_cache(engine: EngineServer) -> None:
    body = chat("Summarise the plot of Hamlet in two lines.")
    assert cached(post(engine, {**body, "cache_prompt": False})) == 0
    assert engine.cached_blocks == 0
    assert cached(post(engine, body)) == 0
    assert cached(post(engine, {**body, "cache_prompt": False})) == 0  # no lookup either
    assert cached(post(engine, body)) > 0


def test_slots_are_listed_and_erased(engine: EngineServer) -> None:
    body = chat("Which slot am I in?", id_slot=2)
    data = post(engine, body)
    assert engine.wait_idle()
    slots = http.get(f"{engine.url}/slots").json()
    assert [slot["id"] for slot in slots] == [0, 1, 2, 3]
    assert slots[2]["n_prompt_tokens"] == data["usage"]["prompt_tokens"]
    assert slots[2]["n_ctx"] == engine.cache_tokens
    assert not any(slot["is_processing"] for slot in slots)

    erased = http.post(f"{engine.url}/slots/2?action=erase")
    assert erased.status_code == 200
    assert erased.json() == {"id_slot": 2, "n_erased": prompt_len(body) // BLOCK * BLOCK}
    assert engine.slot_erases == 1
    assert cached(post(engine, body)) == 0

    bad = http.post(f"{engine.base_url}/chat/completions", json={**body, "id_slot": 9})
    assert bad.status_code == 400
    assert http.post(f"{engine.url}/slots/9?action=erase").status_code == 400


def test_flushing_is_refused_while_busy_and_done_when_idle() -> None:
    body = chat("A slow question.", id_slot=1)
    with EngineServer(block_tokens=BLOCK, prefill_seconds_per_token=0.3 / prompt_len(body)) as e:
        assert http.get(f"{e.url}/health").json() == {"status": "ok"}
        slow = threading.Thread(target=post, args=(e, body))
        slow.start()
        wait_until(lambda: e.in_flight == 1)
        assert metrics(e)["vllm:num_requests_running"] == 1

        assert http.post(f"{e.url}/flush_cache").status_code == 400
        assert http.post(f"{e.url}/reset_prefix_cache").status_code == 400
        assert http.get(f"{e.url}/slots").json()[1]["is_processing"] is True
        assert http.post(f"{e.url}/slots/1?action=erase").status_code == 400
        slow.join()

        assert e.wait_idle()
        assert e.cached_blocks > 0
        assert http.post(f"{e.url}/flush_cache").status_code == 200
        assert e.cached_blocks == 0
        assert http.post(f"{e.url}/reset_prefix_cache").status_code == 200
        assert [(f.endpoint, f.idle, f.flushed) for f in e.flushes] == [
            ("/flush_cache", False, False),
            ("/reset_prefix_cache", False, False),
            ("/flush_cache", True, True),
            ("/reset_prefix_cache", True, True),
        ]
        assert e.flushed_while_busy == 0


def test_a_careless_engine_flushes_while_busy_and_counts_it() -> None:
    body = chat("Another slow question.")
    with EngineServer(
        block_tokens=BLOCK, prefill_seconds_per_token=0.1 / prompt_len(body), flush_when_busy=True
    ) as e:
        slow = threading.Thread(target=post, args=(e, body))
        slow.start()
        wait_until(lambda: e.in_flight == 1)
        assert http.post(f"{e.url}/flush_cache").status_code == 200
        slow.join()
        assert e.flushed_while_busy == 1


def test_blocks_are_cached_once_prefilled_not_when_the_answer_ends() -> None:
    body = chat("Decode slowly, please.")
    with EngineServer(
        [Reply.text(words("w", 30))], block_tokens=BLOCK, seconds_per_output_token=0.01
    ) as e:
        slow = threading.Thread(target=post, args=(e, body))
        slow.start()
        wait_until(lambda: e.in_flight == 1 and e.cached_blocks > 0)
        assert cached(post(e, body)) > 0  # while the first one is still decoding
        assert slow.is_alive()
        slow.join()


def test_latency_follows_computed_tokens_and_output_tokens() -> None:
    body = chat(words("long", 60))
    per_token = 0.15 / prompt_len(body)
    with EngineServer(block_tokens=BLOCK, prefill_seconds_per_token=per_token) as e:
        started = time.monotonic()
        post(e, body)
        cold = time.monotonic() - started
        started = time.monotonic()
        post(e, body)
        warm = time.monotonic() - started
    assert cold >= 0.15
    assert warm < cold / 2

    with (
        EngineServer([Reply.text(words("out", 10))], seconds_per_output_token=0.01) as e,
        http.stream(
            "POST", f"{e.base_url}/chat/completions", json={**body, "stream": True}
        ) as response,
    ):
        started = time.monotonic()
        lines = list(response.iter_lines())
        assert time.monotonic() - started >= 0.09
        assert sum('"content": "' in line for line in lines) == 11  # role chunk + 10 tokens


def test_stop_kills_a_replica_mid_request() -> None:
    body = chat("Never answered.")
    e = EngineServer(prefill_seconds_per_token=10.0).start()
    failed: list[BaseException] = []

    def call() -> None:
        try:
            post(e, body)
        except (httpx.HTTPError, AssertionError) as exc:
            failed.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    wait_until(lambda: e.in_flight == 1)
    started = time.monotonic()
    e.stop()
    caller.join(timeout=3)
    assert not caller.is_alive()
    assert failed
    assert time.monotonic() - started < 2
    assert e.wait_idle()

    url = e.url  # a stopped replica keeps its name; restarted, it comes back there, cold
    e.prefill_seconds_per_token = 0.0
    with e:
        assert e.url == url
        assert cached(post(e, body)) == 0


def test_a_held_request_waits_in_the_queue_until_released(engine: EngineServer) -> None:
    hold = engine.hold(lambda body: body["messages"][-1]["content"] == "Hold me.")
    answers: list[dict[str, Any]] = []
    caller = threading.Thread(target=lambda: answers.append(post(engine, chat("Hold me."))))
    caller.start()
    assert hold.held.wait(10)
    # Waiting, not running: the engine's own figures say so.
    assert (engine.waiting, engine.in_flight) == (1, 0)
    seen = metrics(engine)
    assert seen["vllm:num_requests_waiting"] == seen["sglang:num_queue_reqs"] == 1
    assert seen["vllm:num_requests_running"] == 0
    post(engine, chat("Not held."))  # other requests go through meanwhile
    assert answers == [] and caller.is_alive()

    hold.release()
    caller.join(timeout=10)
    assert len(answers) == 1 and engine.waiting == 0
    post(engine, chat("Hold me."))  # once released, matching requests pass at once
    assert engine.requests_total == 3


def test_stop_drops_held_requests() -> None:
    e = EngineServer().start()
    hold = e.hold(lambda body: True)
    failed: list[BaseException] = []

    def call() -> None:
        try:
            post(e, chat("Held forever."))
        except (httpx.HTTPError, AssertionError) as exc:
            failed.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    assert hold.held.wait(10)
    e.stop()
    caller.join(timeout=5)
    assert not caller.is_alive() and failed
    assert hold.released and e.wait_idle()


def test_stop_mid_stream_truncates_the_stream() -> None:
    body = chat("Stream slowly.", stream=True)
    e = EngineServer([Reply.text(words("w", 50))], seconds_per_output_token=0.02).start()
    received: list[str] = []
    with (
        pytest.raises(httpx.RemoteProtocolError),
        http.stream("POST", f"{e.base_url}/chat/completions", json=body) as response,
    ):
        for line in response.iter_lines():
            received.append(line)
            if '" w3"' in line:
                e.stop()
    assert 0 < sum('" w' in line for line in received) < 50


# -- usage, metrics and counters -----------------------------------------------------------------


def test_streaming_reports_usage_with_cached_tokens_and_timings(engine: EngineServer) -> None:
    body = chat("Stream me something.", stream=True, stream_options={"include_usage": True})
    reply = 'Sunny, 21 °C in "Paris".'
    post(engine, {**body, "stream": False})  # warms the cache
    engine.enqueue(Reply.text(reply), Reply.call("weather", {"city": "Paris"}))

    def stream() -> list[dict[str, Any]]:
        with http.stream("POST", f"{engine.base_url}/chat/completions", json=body) as response:
            lines = [line for line in response.iter_lines() if line.startswith("data: ")]
        assert lines[-1] == "data: [DONE]"
        return [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]

    chunks = stream()
    prompt = prompt_len(body)
    usage = chunks[-1]["usage"]
    assert usage["prompt_tokens"] == prompt
    assert usage["prompt_tokens_details"]["cached_tokens"] >= prompt - BLOCK
    assert usage["completion_tokens"] == len(tokenize(reply))
    assert chunks[-1]["timings"]["cache_n"] == usage["prompt_tokens_details"]["cached_tokens"]
    assert all("timings" not in chunk for chunk in chunks[:-1])
    pieces = [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]]
    assert "".join(p for p in pieces if p) == reply
    assert all(len(tokenize(p)) == 1 for p in pieces if p)

    calls = stream()
    args = "".join(
        call["function"].get("arguments", "")
        for chunk in calls
        if chunk["choices"]
        for call in chunk["choices"][0]["delta"].get("tool_calls") or []
    )
    assert json.loads(args) == {"city": "Paris"}
    assert calls[-1]["usage"]["completion_tokens"] == len(tokenize(' weather{"city": "Paris"}'))


def test_metrics_report_usage_and_prefix_cache_counters() -> None:
    with EngineServer(block_tokens=BLOCK, cache_tokens=64 * BLOCK) as e:
        before = metrics(e)
        for name in (
            "vllm:kv_cache_usage_perc",
            "sglang:token_usage",
            "llamacpp:kv_cache_usage_ratio",
            "vllm:num_requests_running",
            "vllm:num_requests_waiting",
            "vllm:prefix_cache_hits_total",
            "vllm:prefix_cache_queries_total",
            "engine_prefill_tokens_total",
        ):
            assert before[name] == 0, name

        body = chat("Count my blocks, please.")
        post(e, body)
        post(e, body)
        after = metrics(e)
        usage = (prompt_len(body) // BLOCK) / 64
        for name in ("vllm:kv_cache_usage_perc", "sglang:token_usage"):
            assert after[name] == pytest.approx(usage)
        assert after["llamacpp:kv_cache_usage_ratio"] == pytest.approx(usage)
        assert after["vllm:prefix_cache_queries_total"] == 2 * prompt_len(body)
        assert after["vllm:prefix_cache_hits_total"] == e.cached_tokens_total > 0
        assert after["engine_prefill_tokens_total"] == e.prefill_tokens_total

        e.kv_usage_override = 0.9
        forced = metrics(e)
        assert forced["vllm:kv_cache_usage_perc"] == forced["sglang:token_usage"] == 0.9
        assert forced["llamacpp:kv_cache_usage_ratio"] == 0.9


def test_counters_add_up_over_many_requests(engine: EngineServer) -> None:
    conversations = [["Tell me about " + topic] for topic in ("owls", "rivers", "jazz")]
    reported = {"prompt": 0, "cached": 0, "completion": 0}
    for _ in range(5):
        for turns in conversations:
            data = post(engine, chat(*turns))
            reported["prompt"] += data["usage"]["prompt_tokens"]
            reported["cached"] += cached(data)
            reported["completion"] += data["usage"]["completion_tokens"]
            turns += ["ok", f"and more, part {len(turns)}"]

    stats = engine.stats()
    assert stats["requests"] == engine.requests_total == 15 == len(engine.requests)
    assert stats["prompt_tokens_total"] == reported["prompt"]
    assert stats["cached_tokens_total"] == reported["cached"] > 0
    assert stats["prefill_tokens_total"] + stats["cached_tokens_total"] == reported["prompt"]
    assert stats["completion_tokens_total"] == reported["completion"] == 15
    assert engine.wait_idle()
    assert engine.in_flight == 0

    engine.reset_stats()
    assert engine.stats()["requests"] == engine.prompt_tokens_total == 0
    assert engine.cached_blocks > 0
    engine.clear_cache()
    assert engine.cached_blocks == 0 and engine.flushes == []


def test_start_engines_runs_replicas_on_their_own_ports() -> None:
    with start_engines(3, block_tokens=BLOCK) as engines:
        assert len({e.port for e in engines}) == 3
        assert [e.name for e in engines] == ["engine-0", "engine-1", "engine-2"]
        body = chat("Which replica?")
        post(engines[0], body)
        assert cached(post(engines[1], body)) == 0  # caches are per replica
        assert cached(post(engines[0], body)) > 0
        urls = [e.url for e in engines]
    for url in urls:
        with pytest.raises(httpx.ConnectError):
            http.get(f"{url}/health")


# -- through litellm -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_litellm_sees_the_cached_tokens(engine: EngineServer) -> None:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    messages = chat("What is the population of Porto?")["messages"]
    options: dict[str, Any] = {
        "model": "openai/test",
        "api_base": engine.base_url,
        "api_key": "x",
        "messages": messages,
        "tools": TOOLS,
        "_skip_mcp_handler": True,
    }
    engine.enqueue(Reply.call("population", {"city": "Porto"}), "About 230,000.")
    first = await litellm.acompletion(**options)
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    assert first.choices[0].message.tool_calls[0].function.name == "population"

    stream = await litellm.acompletion(
        **options, stream=True, stream_options={"include_usage": True}
    )
    text, usage = "", None
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
        usage = getattr(chunk, "usage", None) or usage
    assert text == "About 230,000."
    assert usage is not None
    assert usage.prompt_tokens == first.usage.prompt_tokens
    assert usage.prompt_tokens_details.cached_tokens >= usage.prompt_tokens - BLOCK
    assert engine.cached_tokens_total == usage.prompt_tokens_details.cached_tokens
