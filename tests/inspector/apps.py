"""The agents the inspector tests serve: one on a served backend (metrics), one held in a tool."""

from __future__ import annotations

import threading
from typing import Any

import anyio.to_thread

from adk import (
    Backend,
    ChatModelAgent,
    Cost,
    ModelRequest,
    ScriptedModel,
    ServingLayer,
    ToolCall,
    tool,
)
from tests.support.openai_server import Reply

RELEASE = threading.Event()
"""Set by a test to let the `work` tool finish (the server runs in another thread)."""
REFUNDS: list[int] = []
"""The amounts the `refund` tool was really called with."""


@tool(requires_approval=True)
def refund(amount: int) -> str:
    """Refund a customer."""
    REFUNDS.append(amount)
    return f"refunded {amount}"


@tool
async def work(task: str) -> str:
    """Work on a task until the test releases it."""
    await anyio.to_thread.run_sync(RELEASE.wait, abandon_on_cancel=True)
    return f"worked on {task}"


def engine_script(body: dict[str, Any]) -> Reply:
    """The engines' scripted LLM: ask for a refund, then report what the tool said."""
    results = [m["content"] for m in body["messages"] if m["role"] == "tool"]
    if not results:
        return Reply.call("refund", {"amount": 30}, id="r1")
    return Reply.text("Done: " + results[-1])


def worker_script(request: ModelRequest) -> str | ToolCall:
    if not any(m.role == "tool" for m in request.messages):
        return ToolCall(id="w1", name="work", arguments='{"task": "report"}')
    return "Finished: " + request.messages[-1].content


def layer(replicas: list[str]) -> ServingLayer:
    """A serving layer over the test engines, priced so the page has a cost to show."""
    backend = Backend(
        "local",
        model="test-model",
        kind="vllm",
        replicas=replicas,
        cost=Cost(prompt=1e-6, cached=1e-7, completion=2e-6),
    )
    return ServingLayer([backend])


def agents() -> dict[str, Any]:
    """``support`` (served by the engines, asks approval to refund) and ``worker`` (held)."""
    return {
        "support": lambda: ChatModelAgent(
            "support", model="local", instruction="You handle refunds.", tools=[refund]
        ),
        "worker": lambda: ChatModelAgent(
            "worker", model=ScriptedModel(worker_script), tools=[work]
        ),
    }


def echo_script(request: ModelRequest) -> str:
    return "echo: " + request.messages[-1].content


echo = ChatModelAgent("echo", model=ScriptedModel(echo_script))
"""What `adk web tests.inspector.apps:echo` serves (the CLI test)."""
