"""Many concurrent step-durability runs against one store, and a check of what they stored."""

from __future__ import annotations

import time
from typing import Any

import anyio

from adk import ChatModelAgent, ModelRequest, Runner, ScriptedModel, ToolCall, tool
from adk.runner.checkpoint import load_run
from adk.state.serde import CheckpointError
from adk.state.stores.base import CheckpointStore


def expected_records(chunks: int) -> list[str]:
    """The record names of a finished step run that wrote ``chunks`` journal chunks."""
    return ["head", *[f"j:{n:010d}" for n in range(chunks)], "meta"]


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def _script(request: ModelRequest) -> Any:
    last = request.messages[-1]
    if last.role == "tool":
        return f"sum is {last.content}"
    return ToolCall.of("add", a=len(request.messages), b=2)


def step_runner(store: CheckpointStore) -> Runner:
    """A Runner whose runs each make a tool call and journal every step in ``store``."""
    agent = ChatModelAgent("adder", model=ScriptedModel(_script), tools=[add])
    return Runner(agent, checkpoint_store=store, durability="step")


async def start_runs(
    store: CheckpointStore, runs: int, prefix: str = "r"
) -> tuple[float, list[str]]:
    """Start ``runs`` runs at once on one Runner over ``store``.

    Returns the wall time in seconds and a description of each run that
    failed or answered wrongly (empty when all went well).
    """
    runner = step_runner(store)
    failures: list[str] = []

    async def one(i: int) -> None:
        run_id = f"{prefix}{i}"
        try:
            result = await runner.invoke(f"add for {run_id}", run_id=run_id)
        except Exception as exc:
            failures.append(f"{run_id}: {exc!r}")
            return
        if result.text != "sum is 3":
            failures.append(f"{run_id}: answered {result.text!r}")

    start = time.perf_counter()
    async with anyio.create_task_group() as group:
        for i in range(runs):
            group.start_soon(one, i)
    return time.perf_counter() - start, failures


async def run_concurrently(store: CheckpointStore, runs: int, prefix: str = "r") -> float:
    """:func:`start_runs`, asserting that every run finished with the expected answer."""
    elapsed, failures = await start_runs(store, runs, prefix)
    assert not failures, f"{len(failures)} of {runs} runs failed; first: {failures[0]}"
    return elapsed


async def stored_run_problems(store: CheckpointStore, runs: int, prefix: str = "r") -> list[str]:
    """What is wrong with the stored records of runs ``<prefix>0`` .. (empty: all intact).

    Every run must have its metadata, its journal chunks and a finished
    status, and every record must decode (checksums, format).
    """
    problems: list[str] = []

    async def check(i: int) -> None:
        run_id = f"{prefix}{i}"
        names = [name for name, _ in await store.scan(f"run:{run_id}")]
        chunks = sum(1 for name in names if name.startswith("j:"))
        # at least one chunk per call: model (tool call), tool, model (answer)
        if chunks < 3 or names != expected_records(chunks):
            problems.append(f"{run_id}: records {names}")
            return
        try:
            loaded = await load_run(store, run_id)  # decodes every record, checks each CRC
        except CheckpointError as exc:
            problems.append(f"{run_id}: {exc}")
            return
        if loaded.status != "finished" or len(loaded.chunks) != chunks:
            problems.append(f"{run_id}: status {loaded.status}, {len(loaded.chunks)} chunks")
        elif [m.content for m in loaded.root_input] != [f"add for {run_id}"]:
            problems.append(f"{run_id}: input {loaded.root_input}")

    limiter = anyio.CapacityLimiter(50)

    async def limited(i: int) -> None:
        async with limiter:
            await check(i)

    async with anyio.create_task_group() as group:
        for i in range(runs):
            group.start_soon(limited, i)
    return problems


async def check_stored_runs(store: CheckpointStore, runs: int, prefix: str = "r") -> None:
    """Assert that :func:`stored_run_problems` finds nothing."""
    problems = await stored_run_problems(store, runs, prefix)
    assert not problems, f"{len(problems)} runs stored wrongly: {problems[:5]}"
