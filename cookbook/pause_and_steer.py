"""Pause and steer: a second process pauses a running run, sends feedback, and resumes it.

What it shows
- ``async with runner.start(...) as handle``: the run executes in a task
  group; a watcher task listens for the run's signals in the store (a SQLite
  file shared by both processes), so any process can steer it by run id.
- ``steer DB RUN_ID``: a second process calls ``runner.signal(run_id,
  "pause")`` and ``runner.signal(run_id, "feedback", text=...)``. The run is
  in a tool call: the call finishes, then the run stops at the next safe
  point (before its next model call), checkpointed, status ``paused``.
- ``resume DB RUN_ID``: another process sends ``resume``; the handle
  continues the run. The research tool is not called again, and the model's
  next call sees the feedback as a user message.
- ``runner.run_status(run_id)`` from any process: running, paused, completed.

How to run it
    python cookbook/pause_and_steer.py                     # the whole story, in a temp dir
    ADK_MODEL=openai/gpt-4o-mini python cookbook/pause_and_steer.py

Offline, a ScriptedModel plays the LLM; with ADK_MODEL set to a litellm model
id, the writer uses that model.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import anyio

from adk import ChatModel, ChatModelAgent, ModelRequest, Runner, ScriptedModel, ToolCall, tool

MODEL_ID = os.environ.get("ADK_MODEL")
FEEDBACK = "Keep it to one sentence for a ten-year-old."
research_calls: list[str] = []
release = anyio.Event()
entered = anyio.Event()


@tool
async def research(topic: str) -> str:
    """Gather notes on a topic.

    Args:
        topic: What to research.
    """
    research_calls.append(topic)
    entered.set()
    await release.wait()  # a slow source: the second process steers meanwhile
    return "Tides: the moon's gravity pulls the oceans; the sun adds a little."


def offline_writer(request: ModelRequest) -> ToolCall | str:
    """Plays the LLM: research first, then write (shorter if asked to)."""
    if not any(m.role == "tool" for m in request.messages):
        return ToolCall(id="r1", name="research", arguments='{"topic": "tides"}')
    if request.messages[-1].role == "user" and "one sentence" in request.messages[-1].content:
        return "The moon pulls the sea toward it, and that makes the tides."
    return "Tides are the regular rise and fall of the sea, caused mainly by the moon..."


def make_runner(db: str) -> Runner:
    model: ChatModel | str = MODEL_ID or ScriptedModel(offline_writer)
    agent = ChatModelAgent(
        "writer",
        model=model,
        instruction="Research the topic with the research tool, then write a short text.",
        tools=[research],
    )
    return Runner(agent, checkpoint_store=db)


def second_process(*args: str) -> None:
    """Run this script in another Python process (as another machine would)."""
    subprocess.run([sys.executable, __file__, *args], check=True)


async def steer(db: str, run_id: str) -> None:
    runner = make_runner(db)
    await runner.signal(run_id, "pause")
    await runner.signal(run_id, "feedback", text=FEEDBACK)
    print(f"[second process] paused {run_id} and sent feedback", flush=True)
    await runner.close()


async def resume(db: str, run_id: str) -> None:
    runner = make_runner(db)
    status = await runner.run_status(run_id)
    print(f"[second process] status before resume: {status.status}", flush=True)
    await runner.signal(run_id, "resume")
    await runner.close()


async def main(db: str) -> None:
    runner = make_runner(db)
    async with runner.start("Write about tides.") as handle:
        await entered.wait()
        print(f"status: {(await handle.status()).status} (research in flight)")
        await anyio.to_thread.run_sync(second_process, "steer", db, handle.run_id)
        await handle.wait_applied(2)  # signals 1 and 2 (pause, feedback) applied
        release.set()  # the tool call finishes; the run stops before its next model call
        paused = await handle.result()
        print(f"status: {(await handle.status()).status} at {paused.checkpoint_id}")
        await anyio.to_thread.run_sync(second_process, "resume", db, handle.run_id)
        await handle.wait_applied(3)  # resume applied: a new segment runs
        result = await handle.result()
    print(f"writer: {result.text}")
    print(f"status: {(await runner.run_status(handle.run_id)).status}")
    print(f"research calls: {len(research_calls)}")
    await runner.close()


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "steer":
        anyio.run(steer, sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "resume":
        anyio.run(resume, sys.argv[2], sys.argv[3])
    else:
        with tempfile.TemporaryDirectory() as tmp:
            anyio.run(main, str(Path(tmp) / "runs.db"))
