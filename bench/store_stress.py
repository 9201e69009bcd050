"""Store stress: 2,000 concurrent step-durability runs on one store object, per store.

Each run is ``Runner(ChatModelAgent("adder", ScriptedModel, tools=[add]),
durability="step").invoke(...)``: a model call that calls the tool, the tool
call, a model call that answers; every call is journaled, so a run writes its
lease, its metadata, several journal chunks and its final status. All runs
start at once (one anyio task group) against ONE store object, as the runs of
a busy server process would. Then every run's records are loaded back and
checked (present, decodable, checksums, finished status).

For Redis and PostgreSQL the peak number of server connections the store held
is sampled while the runs go (this process's sockets to the Redis port;
``pg_stat_activity`` rows with the store's application name): it must stay
within the store's pool size.

    python bench/store_stress.py                        # 2,000 runs per store, 3 repeats
    python bench/store_stress.py --quick                # 200 runs, 1 repeat
    python bench/store_stress.py --runs 500 --stores redis,postgres

The last stdout line is a JSON object. The exit status is 1 if any run
failed, any record was missing or damaged, a pool bound was exceeded, or a
store's server could not be reached.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import traceback
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
# The repository root, for ``tests.state.workload``; appended, so an ``adk`` put first on
# the path (PYTHONPATH) is still the one measured.
sys.path.append(os.path.dirname(HERE))

import anyio  # noqa: E402
from _common import adk_location, emit_json, format_table, spread  # noqa: E402

STORES = ["memory", "sqlite", "redis", "postgres"]
REDIS_URL = os.environ.get("ADK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_DSN = os.environ.get("ADK_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
HAS_PROC = os.path.isdir("/proc/self/fd")  # where this process's sockets can be counted


def own_connections(port: int) -> int:
    """TCP connections this process has established to ``port`` (Linux ``/proc``)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if remote_port == port and fields[3] == "01" and fields[9] in inodes:
                count += 1
    return count


class Sampler:
    """Peak connections of one store to its server, sampled every 10 ms while runs go.

    Redis: this process's established connections to the server's port (the
    shared server has other clients). PostgreSQL: ``pg_stat_activity`` rows
    with the store's own application name.
    """

    def __init__(self, kind: str, tag: str) -> None:
        self.kind = kind
        self.tag = tag
        self.peak = 0
        self._client: Any = None

    async def open(self) -> None:
        if self.kind == "postgres":
            import psycopg

            self._client = await psycopg.AsyncConnection.connect(POSTGRES_DSN, autocommit=True)

    async def _count(self) -> int:
        if self.kind == "redis":
            return own_connections(urlsplit(REDIS_URL).port or 6379)
        cursor = await self._client.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (self.tag,)
        )
        row = await cursor.fetchone()
        return int(row[0])

    async def watch(self, done: anyio.Event) -> None:
        if self.kind == "postgres" or (self.kind == "redis" and HAS_PROC):
            while not done.is_set():
                self.peak = max(self.peak, await self._count())
                await anyio.sleep(0.01)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()


def open_store(kind: str, folder: Path, tag: str) -> Any:
    from adk import InMemoryStore, PostgresStore, RedisStore, SQLiteStore

    if kind == "memory":
        return InMemoryStore()
    if kind == "sqlite":
        return SQLiteStore(folder / f"{tag}.db")
    if kind == "redis":
        return RedisStore(REDIS_URL, key_prefix=f"{tag}:")
    separator = "&" if "?" in POSTGRES_DSN else "?"
    return PostgresStore(f"{POSTGRES_DSN}{separator}application_name={tag}", table=tag)


async def clean(kind: str, store: Any) -> None:
    if kind == "redis":
        for namespace in await store.namespaces():
            await store.delete(namespace)
    await store.close()
    if kind == "postgres":
        import psycopg

        async with await psycopg.AsyncConnection.connect(POSTGRES_DSN, autocommit=True) as conn:
            await conn.execute(f"DROP TABLE IF EXISTS {store.table}")


async def one_round(kind: str, runs: int, folder: Path) -> dict[str, Any]:
    """``runs`` concurrent runs on a fresh store of ``kind``; what happened."""
    from tests.state.workload import start_runs, stored_run_problems

    tag = f"adk_stress_{uuid.uuid4().hex[:10]}"
    store = open_store(kind, folder, tag)
    sampler = Sampler(kind, tag)
    try:
        await sampler.open()
        done = anyio.Event()
        async with anyio.create_task_group() as group:
            group.start_soon(sampler.watch, done)
            elapsed, failures = await start_runs(store, runs)
            done.set()
        problems = await stored_run_problems(store, runs)
    finally:
        await sampler.close()
        await clean(kind, store)
    limit = {"redis": "max_connections", "postgres": "pool_size"}.get(kind)
    bound = getattr(store, limit) if limit else None
    return {
        "wall_s": elapsed,
        "failed": len(failures),
        "bad_records": len(problems),
        "peak_connections": sampler.peak if bound is not None else None,
        "bound": bound,
        "examples": (failures + problems)[:3],
    }


async def stress(kinds: list[str], runs: int, repeats: int) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="adk-store-stress-") as name:
        for kind in kinds:
            rounds: list[dict[str, Any]] = []
            try:
                for _ in range(repeats):
                    rounds.append(await one_round(kind, runs, Path(name)))
            except Exception as exc:  # an unreachable server, a broken store
                traceback.print_exc(file=sys.stderr)
                results[kind] = {"error": f"{type(exc).__name__}: {exc}"}
                continue
            walls = [r["wall_s"] for r in rounds]
            peaks = [r["peak_connections"] for r in rounds if r["peak_connections"] is not None]
            results[kind] = {
                "wall_s": spread(walls),
                "failed": sum(r["failed"] for r in rounds),
                "bad_records": sum(r["bad_records"] for r in rounds),
                "peak_connections": max(peaks) if peaks else None,
                "bound": rounds[0]["bound"],
            }
            for r in rounds:
                for example in r["examples"]:
                    print(f"{kind}: {example}", file=sys.stderr)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000, help="concurrent runs per store")
    parser.add_argument("--repeats", type=int, default=3, help="rounds per store (median kept)")
    parser.add_argument("--stores", default=",".join(STORES), help="comma-separated store kinds")
    parser.add_argument("--quick", action="store_true", help="200 runs, 1 repeat")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.repeats = 200, 1
    kinds = [k.strip() for k in args.stores.split(",") if k.strip()]
    unknown = sorted(set(kinds) - set(STORES))
    if unknown:
        parser.error(f"unknown stores {unknown}; choose among {STORES}")

    import adk  # noqa: F401 - so adk_location() names it

    results = anyio.run(stress, kinds, args.runs, args.repeats)

    print(
        f"store_stress: {args.runs} concurrent runs (durability='step', one tool call each) "
        f"on one store object, {args.repeats} round(s) per store"
    )
    print(f"adk measured: {adk_location()}")
    print()
    rows = []
    failed = False
    figures: dict[str, Any] = {"runs": args.runs, "repeats": args.repeats}
    for kind in kinds:
        r = results[kind]
        if "error" in r:
            failed = True
            rows.append([kind, "", "", "", "", "", "", "", "FAIL: " + r["error"][:60]])
            figures[f"{kind}_error"] = r["error"]
            continue
        median_s, low, high = r["wall_s"]
        peak, bound = r["peak_connections"], r["bound"]
        over = peak is not None and bound is not None and peak > bound
        ok = r["failed"] == 0 and r["bad_records"] == 0 and not over
        failed = failed or not ok
        rows.append(
            [
                kind,
                median_s,
                low,
                high,
                args.runs / median_s,
                r["failed"],
                r["bad_records"],
                "" if peak is None else f"{peak}/{bound}",
                "ok" if ok else "FAIL",
            ]
        )
        figures.update(
            {
                f"{kind}_wall_s": median_s,
                f"{kind}_runs_per_s": args.runs / median_s,
                f"{kind}_failed": r["failed"],
                f"{kind}_bad_records": r["bad_records"],
            }
        )
        if peak is not None:
            figures[f"{kind}_peak_connections"] = peak
            figures[f"{kind}_pool_bound"] = bound
    headers = ["store", "wall s", "min", "max", "runs/s", "failed", "bad", "conns", "check"]
    print(format_table(headers, rows))
    print()
    figures["ok"] = not failed
    emit_json(figures)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
