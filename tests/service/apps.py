"""Agents and services the service tests serve (importable, so `adk serve` can name them)."""

from __future__ import annotations

import threading
import time
from typing import Any

import anyio
import anyio.to_thread

from adk import ChatModelAgent, ModelRequest, ScriptedModel, ToolCall, tool
from adk.service import Service

RELEASE = threading.Event()
"""Set by a test to let the `work` tool finish (the server runs in another thread)."""
CALLS: dict[str, int] = {}
"""Counts of model and tool calls by name (what a test checks was not repeated)."""


def count(name: str) -> None:
    CALLS[name] = CALLS.get(name, 0) + 1


@tool(requires_approval=True)
def refund(amount: int) -> str:
    """Refund a customer."""
    count("refund")
    return f"refunded {amount}"


@tool
async def work(task: str) -> str:
    """Work on a task until the test releases it."""
    count("work")
    await anyio.to_thread.run_sync(RELEASE.wait, abandon_on_cancel=True)
    return f"worked on {task}"


@tool
def flaky(item: str) -> str:
    """Fails the first time it is called."""
    count("flaky")
    if CALLS["flaky"] == 1:
        raise ConnectionError("service down")
    return f"got {item}"


def _tools_done(request: ModelRequest) -> list[str]:
    return [m.name or "" for m in request.messages if m.role == "tool"]


def support_script(request: ModelRequest) -> str | ToolCall:
    count("support-model")
    if not _tools_done(request):
        return ToolCall(id="r1", name="refund", arguments='{"amount": 30}')
    return "Done: " + request.messages[-1].content


def worker_script(request: ModelRequest) -> str | ToolCall:
    count("worker-model")
    if not _tools_done(request):
        return ToolCall(id="w1", name="work", arguments='{"task": "report"}')
    last = request.messages[-1]
    return f"Finished ({last.content})" if last.role == "tool" else f"Noted: {last.content}"


def flaky_script(request: ModelRequest) -> str | ToolCall:
    count("flaky-model")
    if not _tools_done(request):
        return ToolCall(id="f1", name="flaky", arguments='{"item": "x"}')
    return "Got it."


def echo_script(request: ModelRequest) -> str:
    return "echo: " + request.messages[-1].content


def agents() -> dict[str, Any]:
    """Fresh agent factories (one agent per workspace)."""
    return {
        "echo": lambda: ChatModelAgent("echo", model=ScriptedModel(echo_script)),
        "support": lambda: ChatModelAgent(
            "support", model=ScriptedModel(support_script), tools=[refund]
        ),
        "worker": lambda: ChatModelAgent(
            "worker", model=ScriptedModel(worker_script), tools=[work]
        ),
        "flaky": lambda: ChatModelAgent(
            "flaky", model=ScriptedModel(flaky_script), tools=[flaky], tool_errors="raise"
        ),
    }


def wait_until(predicate: Any, timeout: float = 10.0) -> None:
    """Poll ``predicate`` until true (a test deadline, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


service = Service(agents(), store="memory://")
"""What `adk serve tests.service.apps:service` serves (the CLI test)."""
