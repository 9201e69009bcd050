"""Resume cost over a long human-in-the-loop conversation: one long run vs. session turns.

The conversation of ``bench/checkpoint.py``: a writer writes one message per
round and asks a person to review it (an interrupt); the review answers and
the conversation goes on. Two ways to hold it, in the same SQLite file kind,
the same process and the same run:

- **one run** (the baseline): the whole conversation is one run, resumed at
  every review. A resume replays the run from its journal (deterministic
  replay: completed calls are not made again, but the agent code runs
  through them), so round k costs O(k) and the conversation O(n^2);
- **session turns**: each round is one turn of a stored session
  (``runner.query(..., session_id=...)``); its review pauses the turn and
  ``runner.resume`` finishes it. A resume replays only its own turn; the
  earlier turns are the session's history, read once.

Printed: the round time (the resume of round k, median over a window) near
the start and near the end, and their ratio for each way. The last line is
one JSON object: ``late_to_early_one_run``, ``late_to_early_session``,
``round_ms_*``.

    python bench/resume_growth.py            # 100 rounds, 5 repeats
    python bench/resume_growth.py --quick
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import adk_location, base_parser, emit_json, median, print_table, ratio

WINDOW = 5


def writer(rounds: int, per_turn: bool) -> tuple[Any, Any]:
    from adk import ChatModelAgent, Message, ScriptedModel, ToolCall, ToolContext, tool

    @tool
    def review(ctx: ToolContext) -> str:
        """Have a person review the message just written."""
        return str(ctx.interrupt("review the last message"))

    def script(request: Any) -> Any:
        written = sum(1 for m in request.messages if m.content.startswith("[message"))
        last = request.messages[-1]
        if per_turn and last.role == "tool":
            return "reviewed"  # the turn ends after its review
        if written < rounds:
            text = f"[message {written:03d}] " + "word " * 90
            call = ToolCall(id=f"call_{written:03d}", name="review", arguments="{}")
            return Message(role="assistant", content=text, tool_calls=(call,))
        return "done"

    model = ScriptedModel(script)
    agent = ChatModelAgent("writer", model=model, tools=[review], max_iterations=rounds * 2 + 2)
    return agent, model


async def one_run(db: Path, rounds: int) -> list[float]:
    from adk import Runner, SQLiteStore

    agent, _ = writer(rounds, per_turn=False)
    runner = Runner(agent, checkpoint_store=SQLiteStore(db))
    result = await runner.invoke("Write the conversation.")
    times = []
    while result.checkpoint_id is not None:
        answers = {result.interrupts[0].id: "ok"}
        start = time.perf_counter_ns()
        result = await runner.resume_invoke(result.checkpoint_id, answers)
        times.append((time.perf_counter_ns() - start) / 1e6)
    if len(times) != rounds:
        raise SystemExit(f"one run: {len(times)} resumes, not {rounds}")
    return times


async def session_turns(db: Path, rounds: int) -> list[float]:
    from adk import Runner, SQLiteStore

    agent, _ = writer(rounds, per_turn=True)
    runner = Runner(agent, checkpoint_store=SQLiteStore(db))
    times = []
    for index in range(rounds):
        paused = await runner.invoke(f"Write message {index}.", session_id="chat", user_id="u")
        if paused.checkpoint_id is None:
            raise SystemExit(f"session turn {index} did not pause for its review")
        answers = {paused.interrupts[0].id: "ok"}
        start = time.perf_counter_ns()
        done = await runner.resume_invoke(paused.checkpoint_id, answers)
        times.append((time.perf_counter_ns() - start) / 1e6)
        if done.text != "reviewed":
            raise SystemExit(f"session turn {index} ended with {done.text!r}")
    session = await runner.sessions.get_session("chat")  # type: ignore[union-attr]
    if session.turns != rounds:
        raise SystemExit(f"session holds {session.turns} turns, not {rounds}")
    return times


def window(times: list[float], end: int) -> float:
    """Median of the ``WINDOW`` rounds ending at round ``end`` (1-based)."""
    return median(times[max(0, end - WINDOW) : end])


async def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--rounds", type=int, default=100, help="rounds in the conversation")
    args = parser.parse_args()
    rounds = 40 if args.quick else args.rounds
    repeats = 2 if args.quick else min(args.repeats, 5)
    early_at, late_at = max(WINDOW, rounds // 4), rounds
    import adk  # noqa: F401  (so that adk_location names the copy measured)

    print(f"adk from {adk_location()}; {rounds} rounds, {repeats} repeats, SQLite")
    figures: dict[str, list[tuple[float, float]]] = {"one run": [], "session turns": []}
    with tempfile.TemporaryDirectory() as folder:
        for repeat in range(repeats):
            for name, fn in (("one run", one_run), ("session turns", session_turns)):
                gc.collect()
                times = await fn(Path(folder) / f"{name.replace(' ', '_')}{repeat}.db", rounds)
                figures[name].append((window(times, early_at), window(times, late_at)))
    rows = []
    result: dict[str, Any] = {}
    for name, pairs in figures.items():
        early = median(p[0] for p in pairs)
        late = median(p[1] for p in pairs)
        growth = ratio(late, early)
        rows.append([name, f"{early:.2f}", f"{late:.2f}", f"{growth:.2f}"])
        key = "one_run" if name == "one run" else "session"
        result[f"round_ms_early_{key}"] = early
        result[f"round_ms_late_{key}"] = late
        result[f"late_to_early_{key}"] = growth
    print_table(
        ["conversation held as", f"round {early_at} (ms)", f"round {late_at} (ms)", "late / early"],
        rows,
        title=f"resume of one review round (median of rounds {early_at - WINDOW + 1}-{early_at} "
        f"and {late_at - WINDOW + 1}-{late_at})",
    )
    result["rounds"] = rounds
    emit_json(result)


if __name__ == "__main__":
    asyncio.run(main())
