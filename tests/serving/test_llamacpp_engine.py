"""llama.cpp's llama-server as a real engine: the prefix caching the serving layer relies on.

The cache-aware layer routes calls to the replica that already holds their prompt prefix,
reads cache use from the engine, and drops a slot's cache with ``POST /slots/{id}?action=erase``.
These tests check those facts against a real ``llama-server`` running a small random-weight
model (``bench/_llama.py``), not a mock: a repeated prompt is served from the KV cache, an
appended turn reuses the prefix, erase drops it, and the engine reports its cache state.
They also pin the request shapes the benchmark uses to script tool calls on a random model.

They need an external build: set ``ADK_LLAMA_SERVER`` to a ``llama-server`` executable and
``pip install gguf``; otherwise they skip. The repository root is on ``sys.path`` as for
``tests.support`` (pytest's rootdir insertion: ``tests`` is a package), so ``bench._llama``
imports the same way.
"""

from __future__ import annotations

import importlib.util
import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bench._llama import (
    forced_text,
    forced_tool_calls,
    llama_server_binary,
    start_llama_servers,
)

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": f"The {name} tool.",
            "parameters": {
                "type": "object",
                "properties": props,
                "required": sorted(props),
                "additionalProperties": False,
            },
        },
    }
    for name, props in (
        ("get_weather", {"city": {"type": "string"}}),
        ("search_docs", {"query": {"type": "string"}}),
    )
]


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """One llama-server with two slots (so a slot can be pinned and erased), for the module."""
    if llama_server_binary() is None:
        pytest.skip("set ADK_LLAMA_SERVER to an executable llama-server to run engine tests")
    if importlib.util.find_spec("gguf") is None:
        pytest.skip("the gguf package is needed to write the random-weight model")
    with start_llama_servers(1, slots=2, ctx=4096) as urls:
        yield urls[0]


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=120.0) as c:
        yield c


def _prompt(words: int = 150) -> list[dict[str, Any]]:
    """A fresh system prompt (a few hundred tokens) so no earlier test's cache can serve it."""
    tag = uuid.uuid4().hex
    body = " ".join(f"{tag[i % 32]} rule {i} of the agent" for i in range(words))
    return [
        {"role": "system", "content": f"[{tag}] {body}"},
        {"role": "user", "content": "What is the weather in Paris?"},
    ]


def _chat(client: httpx.Client, url: str, messages: list[dict[str, Any]], **extra: Any) -> Any:
    body = {"messages": messages, "max_tokens": 1, "temperature": 0.0, **extra}
    response = client.post(url + "/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def _cached(data: Any) -> int:
    """Cached prompt tokens, from the OpenAI field; llama.cpp's own timings must agree."""
    cached = int(data["usage"]["prompt_tokens_details"]["cached_tokens"])
    assert cached == data["timings"]["cache_n"]
    return cached


def _metrics(client: httpx.Client, url: str) -> dict[str, float]:
    text = client.get(url + "/metrics").text
    return {
        m.group(1): float(m.group(2))
        for m in re.finditer(r"^(llamacpp:\w+) ([-+0-9.eE]+|nan|inf)$", text, re.MULTILINE)
    }


def test_identical_call_is_served_from_the_prefix_cache(server: str, client: httpx.Client) -> None:
    messages = _prompt()
    cold = _chat(client, server, messages, id_slot=0)
    prompt_tokens = cold["usage"]["prompt_tokens"]
    assert prompt_tokens > 300
    assert _cached(cold) < prompt_tokens // 2

    warm = _chat(client, server, messages, id_slot=0)
    # All but the last token (llama.cpp always evaluates at least one).
    assert _cached(warm) >= prompt_tokens - 1
    assert warm["timings"]["prompt_n"] <= 1
    assert warm["timings"]["prompt_ms"] < cold["timings"]["prompt_ms"]


def test_appended_turn_reuses_the_prefix(server: str, client: httpx.Client) -> None:
    messages = _prompt()
    first = _chat(client, server, messages, id_slot=0)
    follow_up = [
        *messages,
        {"role": "assistant", "content": "Let me check."},
        {"role": "user", "content": "Thanks, and tomorrow?"},
    ]
    second = _chat(client, server, follow_up, id_slot=0)
    assert _cached(second) >= first["usage"]["prompt_tokens"] - 1
    assert second["usage"]["prompt_tokens"] > first["usage"]["prompt_tokens"]


def test_cache_prompt_false_recomputes_the_prompt(server: str, client: httpx.Client) -> None:
    messages = _prompt()
    _chat(client, server, messages, id_slot=0)
    again = _chat(client, server, messages, id_slot=0, cache_prompt=False)
    assert _cached(again) == 0


def test_slot_erase_drops_the_cached_prefix(server: str, client: httpx.Client) -> None:
    messages = _prompt()
    _chat(client, server, messages, id_slot=1)
    assert _cached(_chat(client, server, messages, id_slot=1)) > 0
    slots = {s["id"]: s for s in client.get(server + "/slots").json()}
    assert slots[1]["n_prompt_tokens"] > 0
    assert slots[1]["is_processing"] is False

    erased = client.post(server + "/slots/1?action=erase")
    assert erased.status_code == 200, erased.text
    assert erased.json() == {"id_slot": 1, "n_erased": slots[1]["n_prompt_tokens"]}
    slots = {s["id"]: s for s in client.get(server + "/slots").json()}
    assert slots[1]["n_prompt_tokens"] == 0

    assert _cached(_chat(client, server, messages, id_slot=1)) == 0


def test_engine_reports_its_cache_state(server: str, client: httpx.Client) -> None:
    """/metrics counts cache hits; KV occupancy comes from /slots in current builds.

    Current llama-server builds expose no KV-usage gauge in /metrics (older ones had
    ``llamacpp:kv_cache_usage_ratio``), so the figure is the slots' cached tokens over
    their context size, from ``GET /slots``. Both are read here so a change shows up.
    """
    messages = _prompt()
    _chat(client, server, messages, id_slot=0)
    _chat(client, server, messages, id_slot=0)

    metrics = _metrics(client, server)
    assert metrics["llamacpp:prompt_tokens_cached_total"] > 0
    assert metrics["llamacpp:prompt_tokens_total"] > 0
    assert metrics["llamacpp:requests_processing"] == 0

    slots = client.get(server + "/slots").json()
    used = sum(s.get("n_prompt_tokens", 0) for s in slots)
    usage = metrics.get("llamacpp:kv_cache_usage_ratio", used / sum(s["n_ctx"] for s in slots))
    assert 0.0 < usage <= 1.0


def test_scripted_tool_call_and_answer(server: str, client: httpx.Client) -> None:
    """A random model answers with a chosen tool call, then a chosen text, reusing the prefix."""
    messages = _prompt()
    forced = forced_tool_calls(messages, [("get_weather", {"city": "Paris"})])
    step1 = _chat(client, server, forced.pop("messages"), tools=TOOLS, max_tokens=50, **forced)
    choice = step1["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    [call] = choice["message"]["tool_calls"]
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}

    history = [
        *messages,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "sunny"},
    ]
    step2 = _chat(
        client, server, history, tools=TOOLS, max_tokens=50, **forced_text("It is sunny.")
    )
    assert step2["choices"][0]["message"]["content"] == "It is sunny."
    assert step2["choices"][0]["finish_reason"] == "stop"
    # The prefilled call is rendered exactly as in the history: the whole step-1 prompt is reused.
    assert _cached(step2) >= step1["usage"]["prompt_tokens"] - 1
