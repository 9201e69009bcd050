"""The service under load: one server, 3 workers on Redis, 500 runs, a worker killed mid-way.

What is measured (issue #15). One ``adk serve`` process and three ``adk
worker`` processes share a Redis store and a RedisQueue
(``bench/_service_app.py``). 50 concurrent clients submit 500 runs in all;
each run is four scripted model calls of 20 ms and one tool call
(``Sequential[triage, draft, review]``). Every POST is sent twice with the
same ``Idempotency-Key`` (a client retrying), and every run's events are
read over SSE until it stops. When half the runs were submitted, one worker
is killed with SIGKILL; its jobs' leases (2 s) expire and the other workers
resume its runs from their journals.

- ``runs_completed`` / ``runs_lost``: runs completed, and runs that never did;
- ``repeated_tool_calls``: completed tool calls that ran again (the tool
  counts its completions per run in Redis);
- ``duplicate_runs``: runs created beyond one per idempotency key;
- ``event_p95_ms``: from the moment an event was available to the SSE
  reader to its arrival: from its write to the run's log (the entry's time,
  the client's clock: one machine) or, for an event written before the
  reader's connection was answered (a run starts at its POST), from then;
  ``live_event_p95_ms`` counts only events written while the reader was attached;
- ``runs_per_s``: runs completed per second of the whole load.

Targets: 500, 0, 0, 0, p95 <= 50 ms. A miss is reported, not enforced.

    python bench/service.py              # 500 runs, 50 clients, 3 workers
    python bench/service.py --quick      # 60 runs, 10 clients

The last stdout line is one JSON object.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _common import base_parser, emit_json, print_table

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.dirname(os.path.abspath(__file__))
TARGETS = {"runs_lost": 0, "repeated_tool_calls": 0, "duplicate_runs": 0, "event_p95_ms": 50.0}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def start(argv: Sequence[str], env: dict[str, str], log: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "adk", *argv, "--log-level", "warning"],
        cwd=BENCH,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(log, "wb"),
    )


class Load:
    """The clients' shared record: ids per key, what each SSE reader received, when."""

    def __init__(self, runs: int) -> None:
        import anyio

        self.runs = runs
        self.submitted = 0
        self.half = anyio.Event()
        """Set when half the runs were submitted (then a worker is killed)."""
        self.ids: dict[str, set[str]] = {}
        self.received: dict[str, list[tuple[int, float]]] = {}
        self.attached: dict[str, float] = {}
        """When each run's first SSE connection was answered: events written before are
        caught up on connect, not streamed, and their delay is not the stream's latency."""
        self.statuses: dict[str, str] = {}
        self.errors: list[str] = []


async def client(http: Any, load: Load, numbers: list[int]) -> None:
    """One client: for each of its runs, POST twice (a retry), stream the events, read the end."""
    for number in numbers:
        key = uuid.uuid4().hex
        body = {"agent": "bench", "input": f"task-{number:04d}"}
        headers = {"Idempotency-Key": key}
        first = await http.post("/runs", json=body, headers=headers)
        retry = await http.post("/runs", json=body, headers=headers)
        load.submitted += 1
        if load.submitted >= load.runs // 2:
            load.half.set()
        if first.status_code not in (200, 201) or retry.status_code not in (200, 201):
            load.errors.append(f"POST {first.status_code}/{retry.status_code}: {first.text[:120]}")
            continue
        run_id = first.json()["id"]
        load.ids[key] = {run_id, retry.json()["id"]}
        load.received[run_id] = await stream(http, run_id, load.attached)
        load.statuses[run_id] = await final_status(http, run_id)


async def stream(http: Any, run_id: str, attached: dict[str, float]) -> list[tuple[int, float]]:
    """(entry id, arrival time) of every SSE message until the run ends (reconnecting with
    Last-Event-ID after a stop that is not the end, such as a failure that is retried)."""
    import anyio

    got: list[tuple[int, float]] = []
    for _ in range(50):
        headers = {"Last-Event-ID": str(got[-1][0])} if got else {}
        status = None
        async with http.stream("GET", f"/runs/{run_id}/events", headers=headers) as response:
            attached.setdefault(run_id, time.time())
            async for line in response.aiter_lines():
                if line.startswith("id: "):
                    got.append((int(line[4:]), time.time()))
                elif line.startswith('data: {"status"'):
                    status = json.loads(line[6:]).get("status")
        if status in ("completed", "cancelled"):
            break
        await anyio.sleep(0.2)
    return got


async def final_status(http: Any, run_id: str, wait: float = 60.0) -> str:
    """The run's status once it is completed, cancelled, or failed for good."""
    import anyio

    deadline = time.monotonic() + wait
    while True:
        view = (await http.get(f"/runs/{run_id}")).json()
        if view["status"] in ("completed", "cancelled") or time.monotonic() > deadline:
            return str(view["status"])
        await anyio.sleep(0.1)


async def drive(url: str, runs: int, clients: int, workers: list[Any]) -> tuple[float, Load]:
    import anyio
    import httpx

    load = Load(runs)
    limits = httpx.Limits(max_connections=clients * 2 + 10)
    async with httpx.AsyncClient(base_url=url, timeout=120.0, limits=limits) as http:
        started = time.perf_counter()
        async with anyio.create_task_group() as group:
            for index in range(clients):
                group.start_soon(client, http, load, list(range(runs))[index::clients])
            await load.half.wait()
            workers[0].send_signal(signal.SIGKILL)
            print(f"killed worker pid {workers[0].pid} after {load.submitted} runs submitted")
        return time.perf_counter() - started, load


async def examine(load: Load) -> dict[str, Any]:
    """Read the store and the tool counts: duplicates, repeats, the event latencies."""
    import _service_app

    from adk.service import EventLog
    from adk.service.records import indexed_runs

    service = _service_app.service
    store = service.store_of("default")
    stored = {run_id for run_id, _ in await indexed_runs(store)}
    counts = await _service_app._redis().hgetall(_service_app.TOOL_COUNTS)
    latencies: list[float] = []
    live: list[float] = []
    for run_id, got in load.received.items():
        since = load.attached.get(run_id, 0.0)
        written = {e.seq: e.at for e in await EventLog(store, run_id).read()}
        for seq, arrived in got:
            if seq in written:  # available to this reader from max(written, attached)
                latencies.append((arrived - max(written[seq], since)) * 1000)
                if written[seq] >= since:
                    live.append((arrived - written[seq]) * 1000)
    latencies.sort()
    live.sort()
    completed = sum(1 for s in load.statuses.values() if s == "completed")
    await _service_app._redis().aclose()
    await service.close()
    return {
        "runs_completed": completed,
        "runs_lost": load.runs - completed,
        "repeated_tool_calls": sum(max(0, int(v) - 1) for v in counts.values()),
        "duplicate_runs": len(stored)
        - len(load.ids)
        + sum(len(ids) - 1 for ids in load.ids.values()),
        "event_p50_ms": round(latencies[len(latencies) // 2], 1) if latencies else None,
        "event_p95_ms": round(latencies[int(len(latencies) * 0.95)], 1) if latencies else None,
        "events": len(latencies),
        "live_event_p95_ms": round(live[int(len(live) * 0.95)], 1) if live else None,
        "live_events": len(live),
        "tool_calls": sum(int(v) for v in counts.values()),
    }


def clear(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    for index in range(0, len(keys), 500):
        client.delete(*keys[index : index + 500])
    client.close()


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=None, help="runs in all (default 500)")
    parser.add_argument("--clients", type=int, default=None, help="concurrent clients (50)")
    parser.add_argument("--workers", type=int, default=3, help="worker processes (3)")
    parser.add_argument("--concurrency", type=int, default=64, help="runs per worker at once")
    parser.add_argument(
        "--redis", default=os.environ.get("ADK_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    args = parser.parse_args()
    runs = args.runs or (60 if args.quick else 500)
    clients = args.clients or (10 if args.quick else 50)
    prefix = f"adk-bench-{uuid.uuid4().hex[:8]}:"
    os.environ.update({"ADK_BENCH_REDIS": args.redis, "ADK_BENCH_PREFIX": prefix})
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([BENCH, ROOT])}
    logs = os.path.join(os.environ.get("TMPDIR", "/tmp"), prefix.rstrip(":"))
    os.makedirs(logs, exist_ok=True)
    port = free_port()
    print(
        f"service: {runs} runs from {clients} clients, 1 server + {args.workers} workers on "
        f"Redis ({args.redis}), 4 model calls of 20 ms + 1 tool call per run; SIGKILL of one "
        f"worker half-way; logs in {logs}"
    )
    import anyio
    import httpx

    server = start(
        ["serve", "_service_app:service", "--port", str(port)], env, f"{logs}/server.log"
    )
    workers = [
        start(
            ["worker", "_service_app:service", "--concurrency", str(args.concurrency)],
            env,
            f"{logs}/worker-{n}.log",
        )
        for n in range(args.workers)
    ]
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit(f"the server did not start: see {logs}/server.log")
            time.sleep(0.1)
        time.sleep(2.0)  # the workers import adk and connect
        wall, load = anyio.run(drive, url, runs, clients, workers)
        figures = anyio.run(examine, load)
    finally:
        for process in (server, *workers):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in (server, *workers):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        clear(args.redis, prefix)
    figures["runs_per_s"] = round(figures["runs_completed"] / wall, 1) if wall else 0.0
    figures["wall_s"] = round(wall, 2)
    figures["errors"] = len(load.errors)
    report(figures, runs, load)
    emit_json({"runs": runs, "clients": clients, "workers": args.workers, **figures})


def report(figures: dict[str, Any], runs: int, load: Load) -> None:
    rows = [
        [
            "runs_completed",
            figures["runs_completed"],
            f"== {runs}",
            runs == figures["runs_completed"],
        ],
        *[
            [
                name,
                figures[name],
                f"<= {limit}",
                figures[name] is not None and figures[name] <= limit,
            ]
            for name, limit in TARGETS.items()
        ],
        ["event_p50_ms", figures["event_p50_ms"], "", None],
        ["runs_per_s", figures["runs_per_s"], "", None],
    ]
    table = [[n, v, t, "" if ok is None else "PASS" if ok else "MISS"] for n, v, t, ok in rows]
    print_table(["figure", "value", "target", "status"], table, title="Service under load:")
    for error in load.errors[:3]:
        print(f"error: {error}", file=sys.stderr)


if __name__ == "__main__":
    main()
