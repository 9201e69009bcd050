"""DAG scheduling: a DAG's wall time against its critical path.

A DAGAgent starts each node as soon as its own dependencies finish, so a run
should take about as long as its longest chain of dependent nodes (the
critical path), not the sum of the slowest node of each level. The nodes
here are agents that only sleep a fixed time, so everything above the
critical path is scheduling overhead (or a node waiting for unrelated ones).

The graph (node: sleep in ms, after):

    src 20 ──┬─ b 40 ──┐
             ├─ c 20 ──┴─ d 30 ──────┐
             │   └──── f 20 ──┐      ├─ h 10
             └─ e 60 ─────────┴─ g 30┤
    i 50 ────────────────────────────┘

Critical path src → e → g → h: 120 ms. Level by level it would take
max(src, i) + max(b, c, e) + max(d, f) + g + h = 180 ms.

``await dag_wall_over_critical_path()`` returns the median wall time of 5 runs
(after a warm-up run), the critical path, their ratio (target <= 1.1) and the
level-by-level time for comparison. bench/stages.py reports it;
``python bench/_dag_timing.py`` prints it as one JSON line.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio

from adk import AgentEvent, AgentInput, BaseAgent, DAGAgent, Node, RunContext, Runner

GRAPH: dict[str, tuple[int, tuple[str, ...]]] = {
    "src": (20, ()),
    "i": (50, ()),
    "b": (40, ("src",)),
    "c": (20, ("src",)),
    "e": (60, ("src",)),
    "d": (30, ("b", "c")),
    "f": (20, ("c",)),
    "g": (30, ("e", "f")),
    "h": (10, ("d", "g", "i")),
}
"""Node name -> (sleep in ms, the nodes it waits for)."""

REPEATS = 5
RATIO_TARGET = 1.1


class Sleeper(BaseAgent):
    """A node whose work is a fixed sleep: its latency is known exactly."""

    def __init__(self, name: str, ms: int) -> None:
        super().__init__(name)
        self.seconds = ms / 1000

    async def run(self, input: AgentInput, ctx: RunContext) -> AsyncIterator[AgentEvent]:
        """Sleep, then say so."""
        await anyio.sleep(self.seconds)
        yield self.text_event(ctx, f"{self.name} done")


def build_dag() -> DAGAgent:
    """The benchmark graph as a DAGAgent."""
    return DAGAgent(
        "timing",
        [Node(Sleeper(name, ms), after=after) for name, (ms, after) in GRAPH.items()],
    )


def critical_path_ms() -> int:
    """The longest chain of dependent sleeps."""
    finish: dict[str, int] = {}
    for name, (ms, after) in GRAPH.items():  # listed after their dependencies
        finish[name] = ms + max((finish[dep] for dep in after), default=0)
    return max(finish.values())


def level_by_level_ms() -> int:
    """What the graph would take if each level waited for the slowest node of the last."""
    level: dict[str, int] = {}
    for name, (_, after) in GRAPH.items():
        level[name] = 1 + max((level[dep] for dep in after), default=-1)
    slowest: dict[int, int] = {}
    for name, (ms, _) in GRAPH.items():
        slowest[level[name]] = max(slowest.get(level[name], 0), ms)
    return sum(slowest.values())


async def dag_wall_over_critical_path() -> dict[str, Any]:
    """Median wall time of the benchmark DAG over its critical path (target <= 1.1)."""
    runner = Runner(build_dag())
    await runner.invoke("warm up")
    walls = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        result = await runner.invoke("go")
        walls.append((time.perf_counter() - start) * 1000)
        assert len([e for e in result.events if e.text.endswith(" done")]) == len(GRAPH)
    wall = statistics.median(walls)
    critical = critical_path_ms()
    return {
        "dag_nodes": len(GRAPH),
        "dag_wall_ms": round(wall, 2),
        "dag_critical_path_ms": critical,
        "dag_level_by_level_ms": level_by_level_ms(),
        "dag_wall_over_critical_path": round(wall / critical, 3),
        "dag_ratio_target": RATIO_TARGET,
    }


if __name__ == "__main__":
    print(json.dumps(anyio.run(dag_wall_over_critical_path)))
