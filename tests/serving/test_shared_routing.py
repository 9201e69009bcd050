"""Routing state shared by processes through Redis: two layers act as two workers on one set
of reference engines, and what one routed is what the other routes on."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from adk import Message, ModelRequest
from adk.errors import ArgumentTypeError, ConfigurationError
from adk.serving import Backend, ServingLayer
from adk.serving.shared_routing import SharedRoutingState, stable_blocks
from tests.support.engine_server import EngineServer, start_engines
from tests.support.openai_server import Body, Reply

pytestmark = pytest.mark.anyio
REDIS_URL = os.environ.get("ADK_TEST_REDIS", "redis://127.0.0.1:6379/0")
ROOT = Path(__file__).resolve().parents[2]
CHAT = [
    Message.system("You are a patient assistant. " * 10),
    Message.user(
        "Here is my long story: " + " ".join(f"chapter {n} went well" for n in range(120))
    ),
    Message.assistant("What a story."),
]


def answer(body: Body) -> Reply:
    return Reply.text("fine")


@pytest.fixture
def engines() -> Iterator[list[EngineServer]]:
    with start_engines(3, handler=answer) as servers:
        yield servers


@pytest.fixture
async def namespace() -> AsyncIterator[str]:
    name = f"adk-test-routing:{uuid.uuid4().hex[:10]}"
    yield name
    cleaner = SharedRoutingState(REDIS_URL, namespace=name)
    await cleaner.reset("local")
    await cleaner.aclose()


def layer(engines: list[EngineServer], state: SharedRoutingState | None) -> ServingLayer:
    backend = Backend("local", model="test-model", kind="vllm", replicas=[e.url for e in engines])
    return ServingLayer([backend], routing="prefix_aware", shared_state=state)


def request(messages: list[Message], run_id: str) -> ModelRequest:
    return ModelRequest(messages=messages, run_id=run_id, agent_name="chat", session_id="s1")


async def test_a_worker_routes_on_what_another_worker_sent(
    engines: list[EngineServer], namespace: str
) -> None:
    first = layer(engines, SharedRoutingState(REDIS_URL, namespace=namespace))
    await first.generate("local", request([Message.user("warm up")], "r0"))
    await first.generate("local", request(CHAT[:2], "r1"))  # least loaded: replica 1
    holder = first.calls()[1].replica
    assert holder == engines[1].url

    # The next turn of the chat is taken by another worker: it finds the history's replica.
    second = layer(engines, SharedRoutingState(REDIS_URL, namespace=namespace))
    turn = request([*CHAT, Message.user("And then?")], "r2")
    await second.generate("local", turn)
    call = second.calls()[0]
    assert call.replica == holder
    assert call.cached_tokens >= first.calls()[1].prompt_tokens - 16  # the engine reused it
    # A call with nothing cached anywhere goes where the cluster, not this worker, is idlest.
    await second.generate("local", request([Message.user("unrelated")], "r3"))
    assert second.calls()[1].replica == engines[2].url

    # Blind (no shared state), the same turn lands on this worker's idlest: cold cache.
    engines[0].clear_cache()
    blind = layer(engines, None)
    await blind.generate("local", turn)
    assert blind.calls()[0].replica == engines[0].url
    assert blind.calls()[0].cached_tokens < call.cached_tokens // 2
    for each in (first, second, blind):
        await each.aclose()


async def test_without_redis_calls_are_routed_on_the_local_record(
    engines: list[EngineServer],
) -> None:
    state = SharedRoutingState("redis://127.0.0.1:1/0")
    unreachable = layer(engines, state)
    await unreachable.generate("local", request(CHAT[:2], "r1"))
    assert unreachable.calls()[0].error is None
    assert state.failures >= 1
    await unreachable.aclose()


def test_settings_and_block_hashes() -> None:
    with pytest.raises(ArgumentTypeError):
        SharedRoutingState(7)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        SharedRoutingState(REDIS_URL, ttl=0)
    text = "x" * 64 + "y" * 64 + "z" * 10
    assert len(stable_blocks(text)) == 2
    assert stable_blocks(text)[0] == stable_blocks("x" * 64 + "q" * 64)[0]
    assert stable_blocks(text)[1] != stable_blocks("x" * 64 + "q" * 64)[1]
    # Stable across processes (Python's str hash is not): another interpreter agrees.
    code = (
        "from adk.serving.shared_routing import stable_blocks; "
        "print(stable_blocks('a' * 130)[1].hex())"
    )
    other = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert other.stdout.strip() == stable_blocks("a" * 130)[1].hex()


def test_the_default_layer_imports_no_redis() -> None:
    code = (
        "import sys; from adk.serving import Backend, ServingLayer; "
        "ServingLayer([Backend('b', model='m', kind='vllm', endpoint='http://127.0.0.1:9')]); "
        "print('redis' in sys.modules, 'adk.serving.shared_routing' in sys.modules)"
    )
    found = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert found.stdout.split() == ["False", "False"]
