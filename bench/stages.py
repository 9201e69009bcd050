"""Stage mapping: cost and accuracy of per-task backend choice against all-large and all-small.

What is measured, and why. A stage mapper claims that sending easy work to
a small model and hard work to a large one keeps (nearly) the large model's
accuracy at a fraction of its cost. Two reference engines on loopback
(``tests/support/engine_server.py``) stand in for the two models; the cost of
each call is priced by the serving layer from the backend's ``Cost`` table
and the tokens the *engine* reported, so the mapper's own calls (the one-bit
classifier) are paid for too.

- ``small``: fast and cheap (0.2 / 0.8 per million prompt / completion
  tokens), but it answers hard tasks wrongly;
- ``large``: slow and ten times dearer, always right.

The workload: ``TASKS`` (40) tasks, ``HARD_FRACTION`` (30%) of them hard,
worded in three ways (the third with fewer of the words a heuristic looks
for). Each task is one run of ``DAGAgent[solve -> format]``; ``format``
always runs on ``small`` (an explicit mapping), ``solve`` is mapped by each
configuration in turn:

- ``all_large``, ``all_small``: ``ExplicitStageMapping`` baselines;
- ``threshold@0.5`` and ``threshold@0.35``: ``ThresholdStageMapper`` with
  the default :func:`~adk.prompt_score` heuristic;
- ``one_bit``: ``OneBitStageMapper`` asking ``small`` at temperature 0.

The engines are scripted, so the mappers' *judgement* here is by
construction: the small engine, asked as the one-bit classifier, recognises
the hard tasks' words, and ``prompt_score`` misses the third wording at 0.5.
What the bench measures is what mapping costs and saves around that
judgement: the classifier's extra calls and tokens, the share of work left on
the large model, and the accuracy lost by a mapper that misroutes.

A task is right when the final answer carries its expected value. All
tasks of a configuration run at once; each configuration is repeated
(fresh serving layer, cold engine caches) and medians are reported. The
target: the best mapper costs <= 0.5x all-large at >= 0.95x its accuracy.
A miss is reported, not enforced (exit status 0). The last stdout line is
one JSON object; it also carries ``dag_wall_over_critical_path`` from
``bench/_dag_timing.py`` (a DAG's wall time over its critical path).

    python bench/stages.py            # 40 tasks x 5 configurations x 3 repeats (about 40 s)
    python bench/stages.py --quick    # 1 repeat
"""

from __future__ import annotations

import os
import random
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# The repository root, for tests.support; appended so that an adk exported on
# PYTHONPATH (see bench/README.md) is still the one measured.
sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _common import adk_location, base_parser, emit_json, median, print_table, verdict

TASKS = 40
HARD_FRACTION = 0.3
REPEATS = 3
COST_TARGET = 0.5  # best mapper's cost / all-large cost
ACCURACY_TARGET = 0.95  # best mapper's accuracy / all-large accuracy
SMALL_COST = (0.2e-6, 0.02e-6, 0.8e-6)  # prompt, cached, completion (per token)
LARGE_COST = (2.0e-6, 0.2e-6, 8.0e-6)
CONFIGS = ("all_large", "all_small", "threshold@0.5", "threshold@0.35", "one_bit")
MAPPERS = ("threshold@0.5", "threshold@0.35", "one_bit")

SOLVE = "You solve the task. End with answer=<number>."
FORMAT = "You format the answer for the customer: keep answer=<number>."
EASY = (
    "Task {i}: what is {a} plus {b}?",
    "Task {i}: how many metres are {a} kilometres and {b} metres?",
)
HARD = (
    "Task {i}: prove the bound, analyse the complexity and derive the sum of {a} and {b}.",
    "Task {i}: plan a strategy to estimate the total of {a} and {b} under load.",
    "Task {i}: why does the queue lose items? Debug it with {a} and {b} workers.",
)
CLASSIFIER_HARD_WORDS = ("prove", "derive", "analyse", "plan", "strategy", "why", "debug")


@dataclass(frozen=True)
class Task:
    """One task: its text, whether it is hard, and the value a right answer carries."""

    index: int
    text: str
    hard: bool
    expected: int


def make_tasks(count: int, hard_fraction: float, seed: int = 7) -> list[Task]:
    """``count`` tasks, ``round(count * hard_fraction)`` of them hard, in a seeded order."""
    rng = random.Random(seed)
    hard = set(rng.sample(range(count), round(count * hard_fraction)))
    tasks = []
    for i in range(count):
        a, b = rng.randint(10, 99), rng.randint(10, 99)
        templates = HARD if i in hard else EASY
        template = templates[i % len(templates)]
        expected = a * 1000 + b if "kilometres" in template else a + b
        tasks.append(Task(i, template.format(i=i, a=a, b=b), i in hard, expected))
    return tasks


# --------------------------------------------------------------------------- the engines


def engine_handler(name: str, tasks: dict[int, Task]) -> Callable[[dict[str, Any]], Any]:
    """The scripted LLM of engine ``name``: classifier, solver and formatter."""
    from adk.agents.stage_mappers import DEFAULT_ONE_BIT_INSTRUCTION
    from tests.support.openai_server import Reply

    def handle(body: dict[str, Any]) -> Any:
        messages = body["messages"]
        system = messages[0]["content"] if messages[0]["role"] == "system" else ""
        text = " ".join(str(m.get("content") or "") for m in messages[1:])
        if system == DEFAULT_ONE_BIT_INSTRUCTION:
            hard = any(word in text.lower() for word in CLASSIFIER_HARD_WORDS)
            return Reply.text("hard" if hard else "easy")
        if system.startswith(FORMAT):
            found = re.findall(r"answer=(-?\d+)", text)
            return Reply.text(f"Here is your result: answer={found[-1] if found else '?'}")
        task = tasks[int(re.search(r"Task (\d+):", text).group(1))]  # type: ignore[union-attr]
        value = task.expected + 1 if task.hard and name == "small" else task.expected
        steps = " Step by step, checking each part." * (4 if name == "large" else 1)
        return Reply.text(f"Worked on task {task.index}.{steps} answer={value}")

    return handle


# --------------------------------------------------------------------------- one configuration


@dataclass
class Trial:
    """One configuration's figures over the task set, in one repeat."""

    cost: float
    accuracy: float
    large_share: float
    classifier_calls: int
    wall: float


def mapper_for(config: str) -> Any:
    """The DAG's stage mapper for ``config`` (``format`` always on ``small``)."""
    from adk import ExplicitStageMapping, OneBitStageMapper, ThresholdStageMapper

    if config == "all_large":
        return ExplicitStageMapping({"format": "small"}, default="large")
    if config == "all_small":
        return ExplicitStageMapping({}, default="small")
    if config.startswith("threshold@"):
        threshold = float(config.split("@")[1])
        solve: Any = ThresholdStageMapper(None, threshold, low="small", high="large")
    else:
        solve = OneBitStageMapper("small", low="small", high="large")
    return ExplicitStageMapping({"solve": solve, "format": "small"})


async def run_config(config: str, tasks: list[Task], urls: dict[str, str]) -> Trial:
    """Every task once through the DAG with ``config``'s mapper, all at once."""
    import anyio

    from adk import Backend, ChatModelAgent, Cost, DAGAgent, Node, Runner, ServingLayer

    prices = {"small": Cost(*SMALL_COST), "large": Cost(*LARGE_COST)}
    layer = ServingLayer(
        Backend(name, model="test-model", kind="vllm", endpoint=url, cost=prices[name])
        for name, url in urls.items()
    )
    solve = ChatModelAgent("solve", model="small", instruction=SOLVE)
    formatter = ChatModelAgent("format", model="small", instruction=FORMAT)
    dag = DAGAgent("task", [solve, Node(formatter, after="solve")], mapper=mapper_for(config))
    runner = Runner(dag, serving=layer)
    right = 0

    async def one(task: Task) -> None:
        nonlocal right
        result = await runner.invoke(task.text)
        if f"answer={task.expected}" in result.text:
            right += 1

    start = time.perf_counter()
    async with anyio.create_task_group() as group:
        for task in tasks:
            group.start_soon(one, task)
    wall = time.perf_counter() - start
    calls = layer.calls()
    await layer.aclose()
    solves = [c for c in calls if c.agent == "solve" and c.error is None]
    return Trial(
        cost=sum(c.cost or 0.0 for c in calls if c.error is None),
        accuracy=right / len(tasks),
        large_share=sum(c.backend == "large" for c in solves) / max(1, len(solves)),
        classifier_calls=sum(c.agent == "stage_mapper" for c in calls),
        wall=wall,
    )


# --------------------------------------------------------------------------- main


async def measure(repeats: int, tasks: list[Task]) -> dict[str, list[Trial]]:
    """Every configuration ``repeats`` times, on two engines with cold caches each time."""
    from tests.support.engine_server import start_engines

    by_task = {task.index: task for task in tasks}
    trials: dict[str, list[Trial]] = {config: [] for config in CONFIGS}
    with (
        start_engines(1, name="small", handler=engine_handler("small", by_task)) as (small,),
        start_engines(1, name="large", handler=engine_handler("large", by_task)) as (large,),
    ):
        small.seconds_per_output_token, small.prefill_seconds_per_token = 0.2e-3, 2e-6
        large.seconds_per_output_token, large.prefill_seconds_per_token = 2e-3, 20e-6
        urls = {"small": small.url, "large": large.url}
        for _ in range(repeats):
            for config in CONFIGS:
                for engine in (small, large):
                    engine.clear_cache()
                trials[config].append(await run_config(config, tasks, urls))
    return trials


async def dag_timing() -> dict[str, Any] | None:
    """``bench/_dag_timing.py``'s figures, or None when that helper is not there."""
    try:
        from _dag_timing import dag_wall_over_critical_path
    except ImportError as exc:
        print(f"bench/_dag_timing.py not available: {exc}", file=sys.stderr)
        return None
    figures: dict[str, Any] = await dag_wall_over_critical_path()
    return figures


def summarise(trials: dict[str, list[Trial]]) -> dict[str, dict[str, float]]:
    """Medians per configuration, with cost and accuracy relative to all-large."""
    medians = {
        config: {
            "cost": median(t.cost for t in runs),
            "accuracy": median(t.accuracy for t in runs),
            "large_share": median(t.large_share for t in runs),
            "classifier_calls": median(t.classifier_calls for t in runs),
            "wall": median(t.wall for t in runs),
        }
        for config, runs in trials.items()
    }
    large = medians["all_large"]
    for figures in medians.values():
        figures["cost_ratio"] = figures["cost"] / large["cost"]
        figures["accuracy_ratio"] = figures["accuracy"] / large["accuracy"]
    return medians


def best_mapper(medians: dict[str, dict[str, float]]) -> str:
    """The cheapest mapper that keeps the accuracy target, else the most accurate one."""
    keeping = [m for m in MAPPERS if medians[m]["accuracy_ratio"] >= ACCURACY_TARGET]
    if keeping:
        return min(keeping, key=lambda m: medians[m]["cost_ratio"])
    return max(MAPPERS, key=lambda m: (medians[m]["accuracy_ratio"], -medians[m]["cost_ratio"]))


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.set_defaults(repeats=REPEATS)
    parser.add_argument("--tasks", type=int, default=TASKS, help=f"tasks (default {TASKS})")
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import anyio
    import litellm  # noqa: F401  (seconds to import: not on the first configuration's clock)

    import adk  # noqa: F401  (for adk_location)

    tasks = make_tasks(args.tasks, HARD_FRACTION)
    print(__doc__.splitlines()[0])
    print(f"adk measured: {adk_location()}")
    print(f"{len(tasks)} tasks, {sum(t.hard for t in tasks)} hard; {repeats} repeat(s); medians\n")
    trials = anyio.run(measure, repeats, tasks)
    medians = summarise(trials)
    best = best_mapper(medians)
    rows = [
        [
            config,
            f"{figures['cost'] * 1e3:.3f}",
            figures["cost_ratio"],
            figures["accuracy"],
            figures["accuracy_ratio"],
            figures["large_share"],
            int(figures["classifier_calls"]),
            figures["wall"],
        ]
        for config, figures in medians.items()
    ]
    headers = ["config", "cost x1e-3", "vs large", "accuracy", "vs large", "large share"]
    headers += ["classifier calls", "wall s"]
    print_table(headers, rows, title="Per configuration (solve mapped; format always small)")
    cost_ratio, accuracy_ratio = medians[best]["cost_ratio"], medians[best]["accuracy_ratio"]
    met = cost_ratio <= COST_TARGET and accuracy_ratio >= ACCURACY_TARGET
    cost_ok = verdict(cost_ratio, COST_TARGET)
    accuracy_ok = verdict(accuracy_ratio, ACCURACY_TARGET, lower_is_better=False)
    print_table(
        ["best mapper", "figure", "value", "target", ""],
        [
            [best, "cost vs all-large", cost_ratio, f"<= {COST_TARGET}", cost_ok],
            [best, "accuracy vs all-large", accuracy_ratio, f">= {ACCURACY_TARGET}", accuracy_ok],
        ],
    )
    timing = anyio.run(dag_timing)
    ratio = None
    if timing is not None:
        ratio = timing.get("ratio", timing.get("dag_wall_over_critical_path"))
        print(f"DAG wall / critical path: {ratio} ({timing})\n")
    emit_json(
        {
            "tasks": len(tasks),
            "hard_fraction": HARD_FRACTION,
            "repeats": repeats,
            "best_mapper": best,
            "cost_ratio_vs_large": cost_ratio,
            "accuracy_ratio_vs_large": accuracy_ratio,
            "targets_met": met,
            "dag_wall_over_critical_path": ratio,
            "configs": {c: {k: round(v, 4) for k, v in f.items()} for c, f in medians.items()},
        }
    )


if __name__ == "__main__":
    main()
