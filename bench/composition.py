"""Framework overhead of a composed workflow: Sequential[agent, Parallel[10 agents], agent].

Each of the 12 agents is a ChatModelAgent doing one turn of 2 model calls
and 1 tool call (scripted model, no latency), so everything measured is
framework work: workflow agents, history rewriting, event merging. The same
pipeline is written by hand with plain asyncio and dicts (the baseline), in
the same process and the same run; the figure that matters is the ratio.

    python bench/composition.py            # full run (7 repeats of 50 pipeline runs)
    python bench/composition.py --quick    # smoke test
    python bench/composition.py --profile  # also cProfile the adk side (report on stderr)

Target: ratio <= 10. The last stdout line is a JSON object: adk_ms,
baseline_ms, ratio, baseline_anyio_ms, agents, model_calls, tool_calls.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections import Counter
from typing import Any

import anyio

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import (
    BASELINE_TOOL_SPECS,
    BASELINE_TOOLS,
    add,
    adk_location,
    base_parser,
    emit_json,
    interleaved_async,
    paired_ratios,
    print_table,
    profile_async,
    ratio,
    spread,
    verdict,
)

QUESTION = "What is 1 + 2?"
CALL_ID = "call_0001"
ARGUMENTS = '{"a": 1, "b": 2}'
BRANCHES = 10
FIRST, LAST = "first", "last"
BRANCH_NAMES = [f"branch_{i}" for i in range(BRANCHES)]
AGENTS = 2 + BRANCHES

RATIO_TARGET = 10.0


def answer_of(agent_name: str) -> str:
    """The final text of one agent (names it, so a mixed-up history shows)."""
    return f"[{agent_name}] 1 + 2 = 3"


# --------------------------------------------------------------------------- the tool


# --------------------------------------------------------------------------- baseline
# The same pipeline by hand. One shared history list of (agent name or None,
# message dict), appended as messages are produced. Each agent's input is
# built when it starts: the root input and its own messages as they are,
# other agents' messages rewritten as user-role context messages (the same
# texts adk's default history rewriter produces). No pydantic, no events.


Entry = tuple[str | None, dict[str, Any]]


async def baseline_model(
    agent_name: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]]
) -> dict[str, Any]:
    """First call: ask for the tool; once a tool result is there: answer."""
    if messages[-1]["role"] == "tool":
        return {"role": "assistant", "content": answer_of(agent_name)}
    return {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"id": CALL_ID, "name": "add", "arguments": ARGUMENTS}],
    }


def baseline_context(who: str, message: dict[str, Any]) -> dict[str, Any] | None:
    """Another agent's message as a user-role context message (None if empty)."""
    if message["role"] == "tool":
        return {
            "role": "user",
            "content": f"For context: [{who}] tool '{message['name']}' returned result: "
            f"{message['content']}",
        }
    parts = []
    if message["content"]:
        parts.append(f"For context: [{who}] said: {message['content']}")
    for call in message.get("tool_calls", ()):
        parts.append(
            f"For context: [{who}] called tool '{call['name']}' with arguments: {call['arguments']}"
        )
    return {"role": "user", "content": "\n".join(parts)} if parts else None


def baseline_input(history: list[Entry], agent_name: str) -> list[dict[str, Any]]:
    messages = []
    for who, message in history:
        if who is None or who == agent_name:
            messages.append(message)
        elif message["role"] != "system":
            rewritten = baseline_context(who, message)
            if rewritten is not None:
                messages.append(rewritten)
    return messages


async def baseline_agent(
    agent_name: str,
    messages: list[dict[str, Any]],
    history: list[Entry],
    max_iterations: int = 20,
) -> str:
    for _ in range(max_iterations):
        reply = await baseline_model(agent_name, messages, BASELINE_TOOL_SPECS)
        history.append((agent_name, reply))
        calls = reply.get("tool_calls")
        if not calls:
            return str(reply["content"])
        results = []
        for call in calls:
            fn = BASELINE_TOOLS[call["name"]]
            arguments = json.loads(call["arguments"])
            result = await fn(**arguments)
            tool_message = {
                "role": "tool",
                "tool_call_id": call["id"],
                "name": call["name"],
                "content": json.dumps(result),
            }
            history.append((agent_name, tool_message))
            results.append(tool_message)
        messages = [*messages, reply, *results]
    raise RuntimeError(f"{agent_name}: no final answer")


async def _gather(runs: list[Any]) -> None:
    await asyncio.gather(*runs)


async def _anyio_group(runs: list[Any]) -> None:
    async def one(run: Any) -> None:
        await run

    async with anyio.create_task_group() as group:
        for run in runs:
            group.start_soon(one, run)


async def baseline_pipeline(
    question: str, parallel: Any = _gather, inputs: dict[str, Any] | None = None
) -> str:
    """first -> 10 branches at once -> last; returns the last agent's answer.

    ``inputs``, if given, receives each agent's input messages (for the check).
    """
    history: list[Entry] = [(None, {"role": "user", "content": question})]

    def start(name: str) -> list[dict[str, Any]]:
        messages = baseline_input(history, name)
        if inputs is not None:
            inputs[name] = messages
        return messages

    await baseline_agent(FIRST, start(FIRST), history)
    # Every branch's input is built before any branch runs, as a parallel step does.
    branch_inputs = [(name, start(name)) for name in BRANCH_NAMES]
    await parallel([baseline_agent(name, messages, history) for name, messages in branch_inputs])
    return await baseline_agent(LAST, start(LAST), history)


async def baseline_once() -> str:
    return await baseline_pipeline(QUESTION)


async def baseline_anyio_once() -> str:
    return await baseline_pipeline(QUESTION, _anyio_group)


# --------------------------------------------------------------------------- adk side


def build_adk_case() -> tuple[Any, Any]:
    """The adk runner's one-run coroutine function, and the model (its requests)."""
    from adk import ChatModelAgent, ParallelAgent, Runner, ScriptedModel, SequentialAgent, ToolCall

    def script(request: Any) -> Any:
        if request.messages[-1].role == "tool":
            return answer_of(request.agent_name)
        return ToolCall(id=CALL_ID, name="add", arguments=ARGUMENTS)

    # One model object for all agents (it is stateless apart from its request log).
    model = ScriptedModel(script)

    def agent(name: str) -> Any:
        return ChatModelAgent(name, model=model, tools=[add])

    pipeline = SequentialAgent(
        "pipeline",
        [
            agent(FIRST),
            ParallelAgent("fan_out", [agent(name) for name in BRANCH_NAMES]),
            agent(LAST),
        ],
    )
    runner = Runner(pipeline)
    requests = model.requests

    async def adk_once() -> str:
        # ScriptedModel records every request; clearing keeps memory (and GC
        # work) flat over many runs, as a real model would.
        requests.clear()
        result = await runner.invoke(QUESTION)
        return result.text

    return adk_once, model


def _shape(messages: list[tuple[str, str]]) -> Counter[tuple[str, str]]:
    # Branch messages interleave in scheduling order, which may differ between
    # the two sides; compare inputs as multisets of (role, content).
    return Counter(messages)


async def check_sides(adk_once: Any, model: Any) -> None:
    """Both sides give the same answer and feed every agent the same input."""
    adk_text = await adk_once()
    adk_inputs: dict[str, list[tuple[str, str]]] = {}
    for request in model.requests:
        adk_inputs.setdefault(request.agent_name, [(m.role, m.content) for m in request.messages])
    inputs: dict[str, Any] = {}
    base_text = await baseline_pipeline(QUESTION, inputs=inputs)
    anyio_text = await baseline_anyio_once()
    base_inputs = {
        name: [(m["role"], m["content"]) for m in messages] for name, messages in inputs.items()
    }
    expected = answer_of(LAST)
    if not (adk_text == base_text == anyio_text == expected):
        raise SystemExit(f"sides disagree: adk={adk_text!r} baseline={base_text!r}")
    if len(model.requests) != 2 * AGENTS:
        raise SystemExit(f"adk made {len(model.requests)} model calls, expected {2 * AGENTS}")
    if set(adk_inputs) != set(base_inputs):
        raise SystemExit(f"agents differ: adk={sorted(adk_inputs)} baseline={sorted(base_inputs)}")
    for name in adk_inputs:
        if _shape(adk_inputs[name]) != _shape(base_inputs[name]):
            raise SystemExit(
                f"inputs of {name!r} differ:\n adk={adk_inputs[name]}\n"
                f" baseline={base_inputs[name]}"
            )
    if len(base_inputs[LAST]) != 1 + 3 * (1 + BRANCHES):
        raise SystemExit(f"the last agent saw {len(base_inputs[LAST])} messages")


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="pipeline runs per timed repeat")
    parser.add_argument("--warmup", type=int, default=20, help="untimed runs per side first")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the adk side; report on stderr"
    )
    args = parser.parse_args()
    if args.quick:
        args.runs, args.repeats, args.warmup = 10, 3, 5

    adk_once, model = build_adk_case()

    async def measure() -> dict[str, list[float]]:
        await check_sides(adk_once, model)
        return await interleaved_async(
            {"adk": adk_once, "baseline": baseline_once, "baseline_anyio": baseline_anyio_once},
            runs=args.runs,
            repeats=args.repeats,
            warmup=args.warmup,
        )

    timings = asyncio.run(measure())
    # interleaved_async reports µs per run; this script reports ms per run.
    ms = {name: [us / 1000.0 for us in values] for name, values in timings.items()}

    adk_ms, adk_min, adk_max = spread(ms["adk"])
    base_ms, base_min, base_max = spread(ms["baseline"])
    anyio_ms, anyio_min, anyio_max = spread(ms["baseline_anyio"])
    paired = paired_ratios(ms["adk"], ms["baseline"])
    paired_anyio = paired_ratios(ms["adk"], ms["baseline_anyio"])
    overhead_ratio = ratio(adk_ms, base_ms)
    anyio_ratio = ratio(adk_ms, anyio_ms)
    model_calls, tool_calls = 2 * AGENTS, AGENTS

    print(
        f"composition: Sequential[{FIRST}, Parallel[{BRANCHES} agents], {LAST}] = {AGENTS} agents, "
        f"each 2 model calls + 1 tool call (scripted, no latency); "
        f"{args.repeats} repeats x {args.runs} runs after {args.warmup} warm-up runs"
    )
    print(f"adk measured: {adk_location()}")
    print()
    print_table(
        ["figure", "median", "min", "max", "target", "status"],
        [
            ["adk run (ms/run)", adk_ms, adk_min, adk_max, "", ""],
            ["baseline run, asyncio.gather (ms/run)", base_ms, base_min, base_max, "", ""],
            ["baseline run, anyio task group (ms/run)", anyio_ms, anyio_min, anyio_max, "", ""],
            [
                "ratio adk/baseline",
                overhead_ratio,
                min(paired),
                max(paired),
                f"<= {RATIO_TARGET:g}",
                verdict(overhead_ratio, RATIO_TARGET),
            ],
            [
                "ratio adk/baseline (anyio)",
                anyio_ratio,
                min(paired_anyio),
                max(paired_anyio),
                "",
                "",
            ],
            ["adk per agent turn (µs)", adk_ms * 1000 / AGENTS, "", "", "", ""],
            ["baseline per agent turn (µs)", base_ms * 1000 / AGENTS, "", "", "", ""],
        ],
    )

    if args.profile:
        report = profile_async(adk_once, runs=max(args.runs, 100), warmup=args.warmup)
        print(
            "cProfile of the adk side (per pipeline run; cProfile inflates absolute times):",
            file=sys.stderr,
        )
        print(report, file=sys.stderr)
        report = profile_async(adk_once, runs=max(args.runs, 100), warmup=args.warmup, sort="own")
        print("\nsame, by own time:", file=sys.stderr)
        print(report, file=sys.stderr)

    emit_json(
        {
            "adk_ms": adk_ms,
            "baseline_ms": base_ms,
            "ratio": overhead_ratio,
            "baseline_anyio_ms": anyio_ms,
            "ratio_anyio": anyio_ratio,
            "agents": AGENTS,
            "model_calls": model_calls,
            "tool_calls": tool_calls,
        }
    )


if __name__ == "__main__":
    main()
