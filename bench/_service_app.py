"""The Service that bench/service.py serves and works: built from the environment.

``adk serve _service_app:service`` and ``adk worker _service_app:service``
import it (with ``bench/`` on the path) and build the same Service: a Redis
store and a RedisQueue under one key prefix (``ADK_BENCH_PREFIX``) on
``ADK_BENCH_REDIS``. The agent is ``Sequential[triage, draft, review]``: four
scripted model calls of 20 ms each and one tool call. The tool counts its
*completed* calls per task in Redis, so a completed call that ran again (the
thing durable execution must prevent) shows as a count above one.
"""

from __future__ import annotations

import json
import os
from typing import Any

from adk import ChatModelAgent, ModelRequest, ScriptedModel, SequentialAgent, ToolCall, tool
from adk.service import Service
from adk.service.redis_queue import RedisQueue, RunRetry
from adk.state.stores.redis import RedisStore

MODEL_LATENCY = 0.020
REDIS = os.environ.get("ADK_BENCH_REDIS", "redis://127.0.0.1:6379/0")
PREFIX = os.environ.get("ADK_BENCH_PREFIX", "adk-bench:")
TOOL_COUNTS = f"{PREFIX}tool-completed"
_client: Any = None


def _redis() -> Any:
    global _client
    if _client is None:
        import redis.asyncio as aioredis

        _client = aioredis.Redis.from_url(REDIS)
    return _client


@tool
async def lookup(task: str) -> str:
    """Look the task up (counts its completion)."""
    await _redis().hincrby(TOOL_COUNTS, task, 1)
    return f"notes on {task}"


def _task(request: ModelRequest) -> str:
    return next(m.content for m in request.messages if m.role == "user")


def triage_model(request: ModelRequest) -> str | ToolCall:
    if not any(m.role == "tool" for m in request.messages):
        return ToolCall(id="l1", name="lookup", arguments=json.dumps({"task": _task(request)}))
    return "triaged"


def bench_agent() -> SequentialAgent:
    """Four model calls (triage twice, draft, review) and one tool call."""
    return SequentialAgent(
        "bench",
        [
            ChatModelAgent(
                "triage", model=ScriptedModel(triage_model, latency=MODEL_LATENCY), tools=[lookup]
            ),
            ChatModelAgent(
                "draft", model=ScriptedModel(lambda r: "a draft", latency=MODEL_LATENCY)
            ),
            ChatModelAgent(
                "review", model=ScriptedModel(lambda r: "approved", latency=MODEL_LATENCY)
            ),
        ],
    )


def make_service() -> Service:
    """The bench's Service (one per process)."""
    queue = RedisQueue(
        REDIS,
        stream=f"{PREFIX}runs",
        lease=2.0,
        default_lane=64,
        retry=RunRetry(max_attempts=3, backoff=0.2),
    )
    store = RedisStore(REDIS, key_prefix=f"{PREFIX}store:")
    return Service(
        {"bench": bench_agent}, store=store, queue=queue, runner_options={"resume_lease": 2.0}
    )


service = make_service()
