"""Agents for the worker tests, importable by `adk worker` subprocesses.

Everything a test checks across processes goes through files in one
directory (``ADK_TEST_DIR``): each tool call appends a line to
``calls.log``, so a call repeated by another worker shows up twice.
``make_service`` builds the Service of a test; ``service`` is the one an
``adk worker tests.service.worker_apps:service`` subprocess builds from
the environment (``ADK_TEST_DIR``, ``ADK_TEST_STORE``, ``ADK_TEST_STREAM``,
``ADK_TEST_LEASE``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import anyio

from adk import ChatModelAgent, ModelRequest, ScriptedModel, ToolCall, tool
from adk.service import Service
from adk.service.redis_queue import RedisQueue, RunRetry

REDIS_URL = os.environ.get("ADK_TEST_REDIS", "redis://127.0.0.1:6379/0")


def calls(directory: Path) -> list[str]:
    """The tool calls made so far, one ``name:argument`` per call, in order."""
    log = directory / "calls.log"
    return log.read_text().split() if log.exists() else []


def make_agents(directory: Path) -> dict[str, Any]:
    """Agent factories whose tools log to ``directory``."""

    def record(entry: str) -> None:
        with open(directory / "calls.log", "a") as log:
            log.write(entry + "\n")

    @tool
    async def step(task: str, n: int) -> str:
        """One step of a task; step 2 waits for ``go`` while ``hold`` exists."""
        record(f"step:{task}:{n}")
        # Another process creates the file: nothing to wait on but the file system.
        while n == 2 and (directory / "hold").exists() and not (directory / "go").exists():  # noqa: ASYNC110
            await anyio.sleep(0.01)
        return f"step {n} of {task} done"

    @tool
    def flaky(task: str) -> str:
        """Fails until it was called ``fail-times`` times (a file holding a number)."""
        record(f"flaky:{task}")
        limit = int((directory / "fail-times").read_text() or 0)
        if sum(line.startswith("flaky:") for line in calls(directory)) <= limit:
            raise ConnectionError("downstream unavailable")
        return "fine"

    @tool
    async def slow(task: str) -> str:
        """Takes a while (so lanes can be watched)."""
        record(f"slow-start:{task}")
        await anyio.sleep(0.3)
        record(f"slow-end:{task}")
        return "slow done"

    def stepper(request: ModelRequest) -> str | ToolCall:
        task = request.messages[-1].content if len(request.messages) == 1 else _task(request)
        done = sum(1 for m in request.messages if m.role == "tool")
        if done < 3:
            args = json.dumps({"task": task, "n": done + 1})
            return ToolCall(id=f"s{done + 1}", name="step", arguments=args)
        return f"finished {task}"

    def one_tool(name: str) -> Any:
        def script(request: ModelRequest) -> str | ToolCall:
            if not any(m.role == "tool" for m in request.messages):
                args = json.dumps({"task": _task(request)})
                return ToolCall(id="t1", name=name, arguments=args)
            return f"{name} ok"

        return script

    return {
        "steps": lambda: ChatModelAgent("steps", model=ScriptedModel(stepper), tools=[step]),
        "flaky": lambda: ChatModelAgent(
            "flaky", model=ScriptedModel(one_tool("flaky")), tools=[flaky], tool_errors="raise"
        ),
        "slow": lambda: ChatModelAgent("slow", model=ScriptedModel(one_tool("slow")), tools=[slow]),
    }


def _task(request: ModelRequest) -> str:
    return next(m.content for m in request.messages if m.role == "user")


def make_service(
    directory: Path,
    store: str,
    stream: str,
    *,
    lease: float = 1.0,
    retry: RunRetry | None = None,
    lanes: dict[str, int] | None = None,
) -> Service:
    """A Service on ``store`` whose queue is the Redis stream prefix ``stream``."""
    queue = RedisQueue(
        REDIS_URL,
        stream=stream,
        lease=lease,
        retry=retry or RunRetry(max_attempts=3, backoff=0.05),
        lanes=lanes,
    )
    return Service(
        make_agents(directory),
        store=store,
        queue=queue,
        runner_options={"resume_lease": max(lease, 1.0)},
    )


def _from_env() -> Service | None:
    directory = os.environ.get("ADK_TEST_DIR")
    if not directory:
        return None
    return make_service(
        Path(directory),
        os.environ["ADK_TEST_STORE"],
        os.environ["ADK_TEST_STREAM"],
        lease=float(os.environ.get("ADK_TEST_LEASE", "1.0")),
    )


service = _from_env()
"""The Service of an `adk worker` subprocess (None outside one)."""
