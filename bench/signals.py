"""Signal latency: from ``send_signal`` to its effect, per store (memory, SQLite, Redis, Postgres).

Two figures per store, each the p50 and p95 of one repeat's samples, then the
median (min, max) over the repeats:

- **delivery**: from the call of ``send_signal`` on one store object to the
  return of ``SignalListener.next()`` on another (two connections, as two
  processes would have; the in-memory store is shared). The listener has the
  default 50 ms poll: Redis and PostgreSQL wake it by pub/sub, SQLite and
  memory only by polling.
- **cancel**: a run started with ``Runner.start`` sits in a tool call that
  never ends; another store object logs ``cancel`` for its run id, and the
  time runs until the run has ended (its handle's event stream closes on the
  ``RunCancelled`` error event). This is signal to effect as a user sees it.

Signals are sent at random moments (not in step with the poll).

    python bench/signals.py                   # full run (about 1 min)
    python bench/signals.py --quick           # smoke test
    python bench/signals.py --stores redis,postgres

Target: cancel p95 <= 100 ms on Redis and PostgreSQL (SQLite and memory poll:
about the poll interval, reported without a target). The last stdout line is a
JSON object: ``cancel_p95_ms`` (the worst of Redis and PostgreSQL), then every
store's figures.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import adk_location, base_parser, emit_json, print_table, spread, verdict

STORES = ["memory", "sqlite", "redis", "postgres"]
REDIS_URL = os.environ.get("ADK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_DSN = os.environ.get("ADK_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
CANCEL_TARGET_MS = 100.0
PUB_SUB = ("redis", "postgres")


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


def open_pair(kind: str, folder: Path, tag: str) -> tuple[Any, Any]:
    """Two store objects on one backend: the sender's and the run's."""
    from adk import InMemoryStore, PostgresStore, RedisStore, SQLiteStore

    if kind == "memory":
        store = InMemoryStore()
        return store, store
    if kind == "sqlite":
        return SQLiteStore(folder / f"{tag}.db"), SQLiteStore(folder / f"{tag}.db")
    if kind == "redis":
        return RedisStore(REDIS_URL, key_prefix=f"{tag}:"), RedisStore(
            REDIS_URL, key_prefix=f"{tag}:"
        )
    return PostgresStore(POSTGRES_DSN, table=tag), PostgresStore(POSTGRES_DSN, table=tag)


async def clean(kind: str, stores: tuple[Any, Any]) -> None:
    """Delete what the bench wrote and close both store objects."""
    sender, receiver = stores
    if kind == "redis":
        for namespace in await sender.namespaces():
            await sender.delete(namespace)
    await sender.close()
    if receiver is not sender:
        await receiver.close()
    if kind == "postgres":
        import psycopg

        async with await psycopg.AsyncConnection.connect(POSTGRES_DSN, autocommit=True) as conn:
            await conn.execute(f"DROP TABLE IF EXISTS {sender.table}")


async def delivery(sender: Any, receiver: Any, samples: int) -> list[float]:
    """Milliseconds from send to the listener's ``next()`` returning, ``samples`` times."""
    from adk.state.signals import SignalListener, send_signal

    run_id = f"delivery-{uuid.uuid4().hex[:8]}"
    sent: list[float] = []
    got: list[float] = []
    arrivals = [anyio.Event() for _ in range(samples)]
    async with SignalListener(receiver, run_id) as listener, anyio.create_task_group() as group:

        async def listen() -> None:
            for arrived in arrivals:
                await listener.next()
                got.append(time.perf_counter())
                arrived.set()

        group.start_soon(listen)
        for i, arrived in enumerate(arrivals):
            await anyio.sleep(random.uniform(0.02, 0.08))
            sent.append(time.perf_counter())
            await send_signal(sender, run_id, "feedback", {"text": str(i)})
            await arrived.wait()
    return [(b - a) * 1000 for a, b in zip(sent, got, strict=True)]


async def cancels(sender: Any, receiver: Any, samples: int) -> list[float]:
    """Milliseconds from logging ``cancel`` to the run having ended, ``samples`` runs."""
    from adk import ChatModelAgent, Runner, ScriptedModel, ToolCall, tool
    from adk.state.signals import send_signal

    out: list[float] = []
    started: list[anyio.Event] = []

    @tool
    async def wait_forever() -> str:
        """Wait until cancelled."""
        started[-1].set()
        await anyio.sleep(3600)
        return "never"

    for _ in range(samples):
        entered = anyio.Event()
        started.append(entered)
        model = ScriptedModel([ToolCall.of("wait_forever"), "done"])
        agent = ChatModelAgent("worker", model=model, tools=[wait_forever])
        runner = Runner(agent, checkpoint_store=receiver)
        run_id = f"cancel-{uuid.uuid4().hex[:8]}"
        with anyio.fail_after(30):
            async with runner.start("go", run_id=run_id) as handle:
                await entered.wait()
                await anyio.sleep(random.uniform(0.02, 0.08))
                start = time.perf_counter()
                await send_signal(sender, run_id, "cancel")
                last = None
                async for event in handle.events():
                    last = event
                out.append((time.perf_counter() - start) * 1000)
        if last is None or last.error is None or last.error.type != "RunCancelled":
            raise RuntimeError(f"run {run_id} did not end cancelled: {last!r}")
    return out


async def measure(kind: str, args: Any, folder: Path) -> dict[str, Any]:
    """Every repeat's p50/p95 of delivery and cancel on a fresh pair of ``kind`` stores."""
    from adk import StoreUnavailable

    tag = f"adk_signals_{uuid.uuid4().hex[:10]}"
    stores = open_pair(kind, folder, tag)
    try:
        try:
            await stores[0].namespaces()
        except StoreUnavailable as exc:
            return {"skipped": str(exc)[:80]}
        result: dict[str, list[float]] = {k: [] for k in ("d50", "d95", "c50", "c95")}
        await delivery(*stores, 3)  # warm-up: connections, imports
        for _ in range(args.repeats):
            d = await delivery(*stores, args.samples)
            c = await cancels(*stores, args.cancels)
            result["d50"].append(percentile(d, 0.5))
            result["d95"].append(percentile(d, 0.95))
            result["c50"].append(percentile(c, 0.5))
            result["c95"].append(percentile(c, 0.95))
        return result
    finally:
        await clean(kind, stores)


async def run_all(kinds: list[str], args: Any) -> dict[str, dict[str, Any]]:
    """The figures of every store kind, one after the other."""
    with tempfile.TemporaryDirectory() as folder:
        return {kind: await measure(kind, args, Path(folder)) for kind in kinds}


def main() -> None:
    """Measure, print the table, and the JSON line last."""
    parser = base_parser(__doc__.splitlines()[0])
    parser.set_defaults(repeats=5)
    parser.add_argument("--samples", type=int, default=30, help="signals per delivery repeat")
    parser.add_argument("--cancels", type=int, default=20, help="cancelled runs per repeat")
    parser.add_argument("--stores", default=",".join(STORES), help="comma-separated store kinds")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.samples, args.cancels = 2, 10, 5
    kinds = [k.strip() for k in args.stores.split(",") if k.strip()]
    unknown = sorted(set(kinds) - set(STORES))
    if unknown:
        parser.error(f"unknown stores {unknown}; choose among {STORES}")
    import adk  # noqa: F401 - so adk_location() names it

    results = anyio.run(run_all, kinds, args)
    print(
        f"signals: send_signal -> listener.next() ({args.samples} signals) and -> cancelled run "
        f"({args.cancels} runs), p50/p95 per repeat, median (min, max) of {args.repeats} repeats;"
        " listener poll 50 ms"
    )
    print(f"adk measured: {adk_location()}")
    print()
    rows: list[list[Any]] = []
    figures: dict[str, Any] = {}
    for kind in kinds:
        r = results[kind]
        if "skipped" in r:
            rows.append([kind, "", "", "", "", "", "skipped: " + r["skipped"]])
            continue
        for key, label in (("d50", "delivery p50"), ("d95", "delivery p95")):
            rows.append([kind, label, *spread(r[key]), "", ""])
        rows.append([kind, "cancel p50", *spread(r["c50"]), "", ""])
        c95 = spread(r["c95"])
        target = kind in PUB_SUB
        rows.append(
            [
                kind,
                "cancel p95",
                *c95,
                f"<= {CANCEL_TARGET_MS:g}" if target else "",
                verdict(c95[0], CANCEL_TARGET_MS) if target else "",
            ]
        )
        for key, name in (("d50", "delivery_p50"), ("d95", "delivery_p95")):
            figures[f"{kind}_{name}_ms"] = spread(r[key])[0]
        figures[f"{kind}_cancel_p50_ms"] = spread(r["c50"])[0]
        figures[f"{kind}_cancel_p95_ms"] = c95[0]
    print_table(["store", "figure (ms)", "median", "min", "max", "target", "status"], rows)
    judged = [figures[f"{k}_cancel_p95_ms"] for k in PUB_SUB if f"{k}_cancel_p95_ms" in figures]
    every = [v for k, v in figures.items() if k.endswith("_cancel_p95_ms")]
    emit_json({"cancel_p95_ms": max(judged or every or [float("nan")]), **figures})


if __name__ == "__main__":
    main()
