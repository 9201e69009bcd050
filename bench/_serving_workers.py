"""``bench/serving.py --workers N``: the serving workload driven from N worker processes.

In a service, runs execute in several ``adk worker`` processes that share
the same engines; each process has its own :class:`~adk.serving.ServingLayer`.
This mode splits the runs of the single-process workload over N child
processes (``--workers 3``: 6, 5 and 5 of 16 runs), started together against
the same reference engines, and compares:

- ``round_robin``: every worker cycles over the replicas (the baseline);
- ``prefix_aware_blind``: prefix-aware routing on each worker's own record
  (what N processes did before shared state);
- ``prefix_aware_shared``: prefix-aware routing on the record every worker
  shares through Redis (:class:`~adk.serving.shared_routing.SharedRoutingState`).

The engines count what they computed, as in the single-process mode. The
target (issue #15): shared prefix-aware prefill <= 0.55 x round robin.

Then a *chat hand-off* phase on the same engines and processes: 24 chats of
4 turns, each turn a new request with the chat's whole history, and each
turn continued by another worker than the previous one (in no particular
order), as when a service's next turn is taken by whichever worker is free.
``chat_prefill_tokens`` is what the engines computed for it: a worker can
only find the replica holding a chat's history if the routing record is shared.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from typing import Any

VARIANTS = ("round_robin", "prefix_aware_blind", "prefix_aware_shared")
CHAT_SESSIONS = 24
CHAT_TURNS = 4
WORKERS_RATIO_TARGET = 0.55


def split_runs(runs: int, workers: int) -> list[list[int]]:
    """Run numbers per worker, as even as possible (the first workers take the extra)."""
    return [list(range(runs))[index::workers] for index in range(workers)]


def redis_reachable(url: str) -> bool:
    """Whether the Redis at ``url`` answers (the shared variant needs it)."""
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=1)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def parent(bench: Any, args: Any, runs: int, repeats: int) -> None:
    """Run every variant ``repeats`` times with ``args.workers`` children; report."""
    from tests.support.engine_server import start_engines, tokenize

    corpus = bench.Corpus.build(lambda text: len(tokenize(text)))
    variants = list(VARIANTS)
    if not redis_reachable(args.redis):
        print(f"serving --workers: Redis at {args.redis} unreachable: no shared variant")
        variants.remove("prefix_aware_shared")
    print(
        f"serving --workers {args.workers}: {runs} runs of Sequential[planner, Parallel[4 "
        f"workers], reviewer] split over {args.workers} worker processes, each with its own "
        f"ServingLayer, on {bench.REPLICAS} shared reference engines; {repeats} repeat(s)"
    )
    print(
        f"shared state: {args.redis} (SharedRoutingState), shared prefix: "
        f"{corpus.prefix_tokens} tokens"
    )
    print()
    started = time.perf_counter()
    by_variant: dict[str, list[Any]] = {v: [] for v in variants}
    chats: dict[str, list[int]] = {v: [] for v in variants}
    for _ in range(repeats):
        for variant in variants:
            with start_engines(
                bench.REPLICAS,
                handler=bench.sim_handler(corpus),
                prefill_seconds_per_token=bench.SIM_PREFILL_S_PER_TOKEN,
                seconds_per_output_token=bench.SIM_S_PER_OUTPUT_TOKEN,
            ) as engines:
                seen, wall, stats = _drive(variant, engines, runs, args)
                chats[variant].append(seen.pop("chat_prefill"))
            seen["floor"] += bench.REPLICAS * corpus.prefix_tokens
            by_variant[variant].append(
                bench.make_trial(
                    seen,
                    wall,
                    policy=variant,
                    prefill_tokens=sum(s["prefill_tokens_total"] for s in stats),
                    prompt_tokens=sum(s["prompt_tokens_total"] for s in stats),
                    cached_tokens=sum(s["cached_tokens_total"] for s in stats),
                    requests=[s["requests"] for s in stats],
                )
            )
    figures = bench.report(by_variant, mode=f"{args.workers} workers", engine_ttft=False)
    _check(figures)
    _chat_report(bench, figures, chats, args.workers)
    print(f"total wall: {time.perf_counter() - started:.1f} s")
    print()
    bench.emit_json(
        {"mode": "workers", "workers": args.workers, "runs": runs, "repeats": repeats, **figures}
    )


def _chat_report(
    bench: Any, figures: dict[str, dict[str, Any]], chats: dict[str, list[int]], workers: int
) -> None:
    rr = bench.median(chats["round_robin"])
    rows = []
    for variant, values in chats.items():
        prefill = bench.median(values)
        figures[variant]["chat_prefill_tokens"] = int(prefill)
        rows.append([variant, f"{int(prefill):,}", f"{prefill / rr:.3f}" if rr else "-"])
    print_table = bench.print_table
    print_table(
        ["policy", "chat prefill tok", "vs round_robin"],
        rows,
        title=f"Chat hand-off ({CHAT_SESSIONS} chats x {CHAT_TURNS} turns, each turn on another "
        f"of the {workers} workers; median):",
    )


def _check(figures: dict[str, dict[str, Any]]) -> None:
    rr = figures["round_robin"]["prefill_tokens"]
    rows = []
    for variant in ("prefix_aware_shared", "prefix_aware_blind"):
        if variant not in figures:
            continue
        share = figures[variant]["prefill_tokens"] / rr if rr else 0.0
        figures[variant]["prefill_vs_round_robin"] = round(share, 3)
        target = variant == "prefix_aware_shared"
        rows.append(
            [
                f"prefill {variant} / round_robin",
                f"{share:.3f}",
                f"<= {WORKERS_RATIO_TARGET}" if target else "(for comparison)",
                ("PASS" if share <= WORKERS_RATIO_TARGET else "MISS") if target else "",
            ]
        )
    from _common import print_table

    print_table(["check", "value", "target", "status"], rows, title="Target:")


def _drive(
    variant: str, engines: list[Any], runs: int, args: Any
) -> tuple[dict[str, Any], float, list[dict[str, Any]]]:
    """Start the children, release them together, merge what their layers saw; then the
    chat hand-off rounds (the engines' prefill over them is ``chat_prefill``)."""
    urls = [engine.url for engine in engines]
    namespace = f"adk-bench-routing:{uuid.uuid4().hex[:10]}"
    children = []
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "serving.py")
    for index, share in enumerate(split_runs(runs, args.workers)):
        spec = {
            "index": index,
            "workers": args.workers,
            "urls": urls,
            "policy": "round_robin" if variant == "round_robin" else "prefix_aware",
            "redis": args.redis if variant == "prefix_aware_shared" else None,
            "namespace": namespace,
            "runs": share,
        }
        children.append(
            subprocess.Popen(
                [sys.executable, script, "--worker-child", json.dumps(spec)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        )
    for child in children:  # each has built its layer and imported litellm
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    started = time.perf_counter()
    _tell(children, "go")
    results = [json.loads(_line(child)) for child in children]
    wall = time.perf_counter() - started
    for engine in engines:
        engine.wait_idle()
    stats = [engine.stats() for engine in engines]  # the pipeline's figures
    before = sum(engine.stats()["prefill_tokens_total"] for engine in engines)
    for turn in range(CHAT_TURNS):  # every turn of a chat on another worker than the last
        _tell(children, f"round {turn}")
        for child in children:
            assert _line(child) == "done"
    after = sum(engine.stats()["prefill_tokens_total"] for engine in engines)
    _tell(children, "end")
    for child in children:
        if child.wait(timeout=120) != 0:
            raise RuntimeError(f"a worker failed (exit {child.returncode})")
    if variant == "prefix_aware_shared":
        _reset(args.redis, namespace)
    seen = _merge(results)
    seen["chat_prefill"] = after - before
    return seen, wall, stats


def _tell(children: list[Any], line: str) -> None:
    for child in children:
        child.stdin.write(line + "\n")
        child.stdin.flush()


def _line(child: Any) -> str:
    line = str(child.stdout.readline()).strip()
    if not line:
        raise RuntimeError(f"a worker stopped (exit {child.wait(timeout=30)})")
    return line


def _reset(url: str, namespace: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{namespace}:*"))
    if keys:
        client.delete(*keys)
    client.close()


def _merge(results: list[dict[str, Any]]) -> dict[str, Any]:
    merged: Counter[str] = Counter()
    for key in (
        "calls",
        "errors",
        "prefix_breaks",
        "tool_turns",
        "tool_turn_breaks",
        "unreused",
        "floor",
        "layer_prefill_tokens",
        "sticky_turns",
    ):
        merged[key] = sum(int(r[key]) for r in results)
    seen: dict[str, Any] = dict(merged)
    seen["sticky"] = seen.pop("sticky_turns") / seen["tool_turns"] if seen["tool_turns"] else 0.0
    seen["ttft_p50_ms"] = seen["ttft_p95_ms"] = None
    seen["break_examples"] = [e for r in results for e in r["break_examples"]][:3]
    seen["error_examples"] = [e for r in results for e in r["error_examples"]][:3]
    return seen


def child(bench: Any, spec_text: str) -> None:
    """One worker process: its share of the runs on its own layer, figures as JSON."""
    import anyio

    from tests.support.engine_server import tokenize

    spec = json.loads(spec_text)
    bench.warm_up()
    # litellm builds its response models' schemas on first use; the first calls of many
    # concurrent runs racing to do so can fail ("Message has no __pydantic_core_schema__").
    from litellm.types.utils import ModelResponse

    ModelResponse()
    corpus = bench.Corpus.build(lambda text: len(tokenize(text)))
    anyio.run(_child_runs, bench, corpus, spec)


async def _child_runs(bench: Any, corpus: Any, spec: dict[str, Any]) -> None:
    import anyio

    from adk import Runner
    from adk.serving import Backend, ServingLayer

    state = None
    if spec["redis"]:
        from adk.serving.shared_routing import SharedRoutingState

        state = SharedRoutingState(spec["redis"], namespace=spec["namespace"])
    backend = Backend(
        bench.BACKEND,
        model=bench.MODEL,
        kind="vllm",
        replicas=spec["urls"],
        routing=spec["policy"],
    )
    layer = ServingLayer([backend], shared_state=state)
    runner = Runner(bench.build_workflow(corpus), serving=layer, streaming=True)
    print("ready", flush=True)
    await _wait_go()

    tasks = [corpus.task(n) for n in spec["runs"]]

    class Share:  # the worker's runs: task(i) is its i-th run's task, as numbered overall
        def task(self, index: int) -> str:
            return tasks[index]

    try:
        await bench.run_workflow(runner, Share(), len(tasks))
    finally:
        await layer.aclose()
    seen = bench.analyse_calls(layer, corpus.prefix_tokens, 0)
    seen["sticky_turns"] = round(seen["sticky"] * seen["tool_turns"])
    seen.pop("per_replica", None)
    print(json.dumps(seen), flush=True)
    chat = ServingLayer([backend], shared_state=state)
    try:
        while (line := await _read_line()) not in ("end", ""):  # "": the parent is gone
            turn = int(line.split()[1])
            mine = chat_sessions(turn, spec["index"], spec["workers"])
            async with anyio.create_task_group() as group:
                for session in mine:
                    request = chat_request(bench, corpus, session, turn)
                    group.start_soon(chat.generate, bench.BACKEND, request)
            print("done", flush=True)
    finally:
        await chat.aclose()


def chat_sessions(turn: int, index: int, workers: int) -> list[int]:
    """The chats worker ``index`` continues at ``turn``, in an order of their own (arrivals
    in a service come in no particular order)."""
    import random

    mine = [s for s in range(CHAT_SESSIONS) if (s + turn) % workers == index]
    random.Random(turn * 1000 + index).shuffle(mine)
    return mine


def chat_request(bench: Any, corpus: Any, session: int, turn: int) -> Any:
    """Turn ``turn`` of chat ``session``: its whole history so far, then a new question
    (the same text whichever worker builds it)."""
    from adk import Message, ModelRequest

    messages = [Message.system(corpus.instruction("reviewer"))]
    for n in range(turn + 1):
        messages.append(Message.user(corpus.sized(f"chat-{session}-{n}-question", 200)))
        if n < turn:
            messages.append(Message.assistant(corpus.sized(f"chat-{session}-{n}-answer", 250)))
    return ModelRequest(
        messages=messages,
        run_id=f"chat-{session}-{turn}",
        agent_name="chat",
        session_id=f"chat-{session}",
    )


async def _wait_go() -> None:
    if await _read_line() != "go":
        raise SystemExit("worker: no go from the parent")


async def _read_line() -> str:
    import anyio.to_thread

    return str(await anyio.to_thread.run_sync(sys.stdin.readline)).strip()
