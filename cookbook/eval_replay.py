"""Evals: record a run's trajectory, replay it against changed code, score a dataset.

What it shows
- ``Runner(..., trajectories=True)`` records each run's trajectory in the
  checkpoint store (here a SQLite file); ``runner.trajectory(run_id)`` reads it
  back: model calls with what they were sent, tool calls, timings, usage.
- The trajectory as JSON Lines (``write_jsonl``), read back with ``read_jsonl``.
- ``ReplayModel``: the same agent replays the recorded answers with zero model
  calls; after a code change (the price tool now adds tax) the replay stops at
  the first model call that sees something different, and says what.
- ``EvalCase`` / ``run_evals``: a small dataset scored on tool calls and output,
  printed as a table.

How to run it
    python cookbook/eval_replay.py                                  # offline, ScriptedModel
    ADK_MODEL=openai/gpt-4o-mini python cookbook/eval_replay.py     # record with a real model

With ADK_MODEL set, the recorded run uses that litellm model (its API key must be in
the environment); the replay and the changed-code check still make no model call.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import anyio

from adk import ChatModel, ChatModelAgent, ModelRequest, Runner, ScriptedModel, ToolCall, tool
from adk.evals import EvalCase, ReplayDivergence, ReplayModel, assert_score, run_evals

MODEL_ID = os.environ.get("ADK_MODEL")
PRICES = {"tea": 4.0, "cake": 6.5}


def scripted(request: ModelRequest) -> str | ToolCall:
    """Plays the model offline: look the item up, then answer with the tool's result."""
    last = request.messages[-1]
    if last.role == "tool":
        return f"The price is {last.content}."
    item = next((name for name in PRICES if name in last.content.lower()), "tea")
    return ToolCall(id=f"call_{item}", name="price", arguments=f'{{"item": "{item}"}}')


def model() -> ChatModel:
    if MODEL_ID:
        from adk import LiteLLMModel

        return LiteLLMModel(MODEL_ID)
    return ScriptedModel(scripted)


def cashier(llm: ChatModel, *, tax: float = 0.0) -> ChatModelAgent:
    """The agent under test; ``tax`` is the code change the replay catches."""

    @tool
    def price(item: str) -> str:
        """The price of an item on the menu."""
        return f"{PRICES.get(item, 0.0) * (1 + tax):.2f} EUR"

    return ChatModelAgent(
        "cashier", model=llm, tools=[price], instruction="Answer with the item's price."
    )


async def main() -> None:
    folder = Path(tempfile.mkdtemp())
    runner = Runner(cashier(model()), checkpoint_store=folder / "runs.db", trajectories=True)
    result = await runner.invoke("How much is the cake?")
    print("answer:", result.text)

    trajectory = await runner.trajectory(result.run_id)
    for call in trajectory.model_calls:
        print(f"model call {call.key}: {len(call.messages)} messages in")
    for tool_call in trajectory.tool_calls:
        print(f"tool call {tool_call.name}({tool_call.arguments})")
    trajectory.write_jsonl(folder / "cake.jsonl")
    await runner.close()

    # Replay the recording against the same code: no model is called.
    recording = type(trajectory).read_jsonl(folder / "cake.jsonl")
    replay = ReplayModel(recording)
    again = await Runner(cashier(replay)).invoke("How much is the cake?")
    assert again.text == result.text
    print(f"replayed {len(replay.replayed)} model calls, same answer: {again.text == result.text}")

    # The code changed (prices now include tax): the second model call sees another result.
    try:
        await Runner(cashier(ReplayModel(recording), tax=0.2)).invoke("How much is the cake?")
    except ReplayDivergence as divergence:
        print(f"divergence at {divergence.key}: {divergence.reason}")

    if MODEL_ID:
        return  # the dataset below is scored against the offline script
    assert_score(result, tool_calls=[("price", {"item": "cake"})], output="The price is 6.50 EUR.")
    cases = [
        EvalCase("tea", "Tea please", tool_calls=[("price", {"item": "tea"})]),
        EvalCase("cake", "A cake?", output="The price is 6.50 EUR."),
        EvalCase("cake-taxed", "A cake?", output=lambda text: "7.80" in text),
    ]
    summary = await run_evals(lambda case: cashier(ScriptedModel(scripted)), cases)
    print(summary.table())


if __name__ == "__main__":
    anyio.run(main)
