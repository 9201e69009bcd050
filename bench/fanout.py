"""Fan-out wall time: a ParallelAgent of 100 agents whose model takes 50 ms per call.

Each of the 100 ChatModelAgents makes 2 model calls (a tool call, then the
answer) to a ScriptedModel with ``latency=0.05``, and 1 call to an async
tool. Run concurrently, the whole run should take about as long as one
agent: 2 x 50 ms = 100 ms (the ideal). Whatever the framework does serially
(building, merging and recording events, validating) adds to that wall
time. The same fan-out is written by hand (100 asyncio tasks, each doing 2 x
``asyncio.sleep(0.05)`` around the same trivial work: a tool-call dict,
``json.loads``, the awaited tool, a tool message, the answer) and measured in
the same process and the same run, as a floor.

    python bench/fanout.py            # full run (7 repeats of 5 runs per case)
    python bench/fanout.py --quick    # smoke test
    python bench/fanout.py --profile  # also cProfile the adk side (report on stderr)

Target: adk wall time <= 1.15 x ideal. The last stdout line is a JSON object:
wall_ms, ideal_ms, ratio_to_ideal, baseline_wall_ms, baseline_ratio_to_ideal,
cpu_ms, baseline_cpu_ms, agents, latency_ms.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

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
AGENTS = 100
LATENCY = 0.05
MODEL_CALLS = 2
IDEAL_MS = MODEL_CALLS * LATENCY * 1000.0

WALL_TARGET = 1.15  # x ideal


def answer_of(agent_name: str) -> str:
    return f"[{agent_name}] 1 + 2 = 3"


AGENT_NAMES = [f"agent_{i:03d}" for i in range(AGENTS)]
EXPECTED = sorted(answer_of(name) for name in AGENT_NAMES)


# --------------------------------------------------------------------------- the tool


# --------------------------------------------------------------------------- baseline
# 100 asyncio tasks, each one agent turn by hand: dict messages, a "model"
# that sleeps then returns a tool call (first) or the answer (once a tool
# result is there), json.loads of the arguments, the awaited tool, a tool
# message. No pydantic, no framework.


def make_baseline_model(latency: float) -> Any:
    async def model(
        agent_name: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]]
    ) -> dict[str, Any]:
        if latency > 0:
            await asyncio.sleep(latency)
        if messages[-1]["role"] == "tool":
            return {"role": "assistant", "content": answer_of(agent_name)}
        return {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"id": CALL_ID, "name": "add", "arguments": ARGUMENTS}],
        }

    return model


async def baseline_agent(
    model: Any, agent_name: str, question: str, max_iterations: int = 20
) -> str:
    messages: list[dict[str, Any]] = [{"role": "user", "content": question}]
    for _ in range(max_iterations):
        reply = await model(agent_name, messages, BASELINE_TOOL_SPECS)
        messages.append(reply)
        calls = reply.get("tool_calls")
        if not calls:
            return str(reply["content"])
        for call in calls:
            fn = BASELINE_TOOLS[call["name"]]
            arguments = json.loads(call["arguments"])
            result = await fn(**arguments)
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": call["id"],
                    "name": call["name"],
                    "content": json.dumps(result),
                }
            )
    raise RuntimeError(f"{agent_name}: no final answer")


def build_baseline_case(latency: float) -> Any:
    model = make_baseline_model(latency)

    async def baseline_once() -> list[str]:
        return list(
            await asyncio.gather(*(baseline_agent(model, name, QUESTION) for name in AGENT_NAMES))
        )

    return baseline_once


# --------------------------------------------------------------------------- adk side


def build_adk_case(latency: float) -> Any:
    """The adk runner's one-run coroutine function; it returns the agents' answers."""
    from adk import ChatModelAgent, ParallelAgent, Runner, ScriptedModel, ToolCall

    def script(request: Any) -> Any:
        if request.messages[-1].role == "tool":
            return answer_of(request.agent_name)
        return ToolCall(id=CALL_ID, name="add", arguments=ARGUMENTS)

    # One model object for all agents; it sleeps ``latency`` before each answer.
    model = ScriptedModel(script, latency=latency)
    agents = [ChatModelAgent(name, model=model, tools=[add]) for name in AGENT_NAMES]
    runner = Runner(ParallelAgent("fan_out", agents))
    requests = model.requests

    async def adk_once() -> list[str]:
        requests.clear()  # keep the request log (memory, GC work) flat over many runs
        result = await runner.invoke(QUESTION)
        return [
            event.message.content
            for event in result.events
            if event.message is not None
            and event.message.role == "assistant"
            and not event.message.tool_calls
        ]

    return adk_once


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per case per timed repeat")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs per case first")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the adk side; report on stderr"
    )
    args = parser.parse_args()
    if args.quick:
        args.runs, args.repeats, args.warmup = 2, 3, 1

    cases = {
        "adk": build_adk_case(LATENCY),
        "baseline": build_baseline_case(LATENCY),
        # The same runs with no model latency: the CPU work each side does,
        # which the sleeps cannot hide entirely (it runs on one thread).
        "adk_cpu": build_adk_case(0.0),
        "baseline_cpu": build_baseline_case(0.0),
    }

    async def measure() -> dict[str, list[float]]:
        for name, fn in cases.items():
            answers = sorted(await fn())
            if answers != EXPECTED:
                raise SystemExit(f"{name}: wrong answers ({len(answers)}): {answers[:3]}...")
        return await interleaved_async(
            cases, runs=args.runs, repeats=args.repeats, warmup=args.warmup
        )

    timings = asyncio.run(measure())
    ms = {name: [us / 1000.0 for us in values] for name, values in timings.items()}

    wall, wall_min, wall_max = spread(ms["adk"])
    base, base_min, base_max = spread(ms["baseline"])
    cpu, cpu_min, cpu_max = spread(ms["adk_cpu"])
    base_cpu, base_cpu_min, base_cpu_max = spread(ms["baseline_cpu"])
    to_ideal = ratio(wall, IDEAL_MS)
    base_to_ideal = ratio(base, IDEAL_MS)
    paired = paired_ratios(ms["adk"], ms["baseline"])
    target_ms = WALL_TARGET * IDEAL_MS

    print(
        f"fanout: Parallel[{AGENTS} agents], each {MODEL_CALLS} model calls "
        f"({LATENCY * 1000:g} ms latency each) + 1 tool call; ideal wall = {IDEAL_MS:g} ms; "
        f"{args.repeats} repeats x {args.runs} runs per case after {args.warmup} warm-up runs"
    )
    print(f"adk measured: {adk_location()}")
    print()
    print_table(
        ["figure", "median", "min", "max", "target", "status"],
        [
            [
                "adk wall (ms/run)",
                wall,
                wall_min,
                wall_max,
                f"<= {target_ms:g}",
                verdict(wall, target_ms),
            ],
            ["baseline wall (ms/run)", base, base_min, base_max, "", ""],
            ["ideal (ms)", IDEAL_MS, "", "", "", ""],
            [
                "adk wall / ideal",
                to_ideal,
                wall_min / IDEAL_MS,
                wall_max / IDEAL_MS,
                f"<= {WALL_TARGET:g}",
                verdict(to_ideal, WALL_TARGET),
            ],
            [
                "baseline wall / ideal",
                base_to_ideal,
                base_min / IDEAL_MS,
                base_max / IDEAL_MS,
                "",
                "",
            ],
            ["adk wall / baseline wall", ratio(wall, base), min(paired), max(paired), "", ""],
            ["adk wall - baseline wall (ms)", wall - base, "", "", "", ""],
            ["adk, no latency (ms/run, CPU work)", cpu, cpu_min, cpu_max, "", ""],
            ["baseline, no latency (ms/run)", base_cpu, base_cpu_min, base_cpu_max, "", ""],
            ["adk CPU per agent (µs)", cpu * 1000 / AGENTS, "", "", "", ""],
        ],
    )

    if args.profile:
        adk_once = cases["adk"]
        for sort, title in (("cum", "cumulative"), ("own", "own")):
            report = profile_async(adk_once, runs=max(args.runs, 10), warmup=args.warmup, sort=sort)
            print(
                f"cProfile of the adk side, by {title} time (per run; suspended time not "
                "counted; cProfile inflates absolute times):",
                file=sys.stderr,
            )
            print(report + "\n", file=sys.stderr)

    emit_json(
        {
            "wall_ms": wall,
            "ideal_ms": IDEAL_MS,
            "ratio_to_ideal": to_ideal,
            "baseline_wall_ms": base,
            "baseline_ratio_to_ideal": base_to_ideal,
            "cpu_ms": cpu,
            "baseline_cpu_ms": base_cpu,
            "agents": AGENTS,
            "latency_ms": LATENCY * 1000.0,
        }
    )


if __name__ == "__main__":
    main()
