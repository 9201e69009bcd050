"""The serving layer against a real llama.cpp ``llama-server`` (skipped without the binary).

The same path as production: layer → litellm → HTTP → llama-server with a small
random-weight model (``bench/_llama.py``). The layer pins a context to a slot,
sends ``cache_prompt``, reads the KV usage from ``/slots``, and a hard flush erases
exactly the context's slot.
"""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import Iterator

import httpx
import pytest

from adk import Message, ModelRequest
from adk.serving import Backend, CachePolicy, ServingLayer
from bench._llama import llama_server_binary, start_llama_servers

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    if llama_server_binary() is None:
        pytest.skip("set ADK_LLAMA_SERVER to an executable llama-server to run engine tests")
    if importlib.util.find_spec("gguf") is None:
        pytest.skip("the gguf package is needed to write the random-weight model")
    with start_llama_servers(1, slots=2, ctx=4096) as urls:
        yield urls[0]


def conversation(tag: str, turns: int) -> list[Message]:
    rules = " ".join(f"{tag} rule {i} of the agent" for i in range(120))
    messages = [Message.system(f"[{tag}] {rules}")]
    for turn in range(turns):
        messages.append(Message.user(f"question {turn} about {tag}"))
        messages.append(Message.assistant(f"answer {turn}"))
    return messages[:-1]


async def test_the_layer_reuses_and_then_erases_a_slot_on_llama_server(server: str) -> None:
    layer = ServingLayer(
        [Backend("llama", model="random", kind="llamacpp", endpoint=server, slots=2, flush="hard")],
        cache=CachePolicy(pressure_threshold=None),
    )
    tag = uuid.uuid4().hex[:8]
    params = {"max_tokens": 1, "temperature": 0.0}
    for turns in (1, 2):
        request = ModelRequest(
            messages=conversation(tag, turns), params=params, run_id=tag, agent_name="a"
        )
        await layer.generate("llama", request)
    first, second = layer.calls()
    assert first.prompt_tokens > 300 and first.cached_tokens < first.prompt_tokens // 2
    # The second call continues the first one's prompt in the same slot: all of it is reused.
    assert second.cached_tokens >= first.prompt_tokens - 8
    samples = await layer.engine_metrics("llama")
    assert samples[server] is not None
    usage = layer.replicas("llama")[0].kv_usage
    assert usage is not None and 0 < usage < 1

    await layer.run_finished(tag)  # flush on complete, hard: erase the context's slot
    assert [(f.hard, f.sent) for f in layer.flushes] == [(True, True)]
    async with httpx.AsyncClient(timeout=10) as client:
        slots = (await client.get(server + "/slots")).json()
    assert [slot.get("n_prompt_tokens", 0) for slot in slots] == [0, 0]  # an unused slot: none
    again = ModelRequest(
        messages=conversation(tag, 2), params=params, run_id=tag + "-2", agent_name="a"
    )
    await layer.generate("llama", again)
    assert layer.calls()[-1].cached_tokens < first.prompt_tokens // 2
    await layer.aclose()
