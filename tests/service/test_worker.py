"""Workers on a real Redis: the queue's protocol, retries, lanes, drain, and a kill -9 takeover."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from adk.errors import ArgumentTypeError, ConfigurationError
from adk.service import RunJob, Service
from adk.service.records import RunRecords
from adk.service.redis_queue import RedisQueue, RunRetry
from adk.service.runs import create_run
from adk.service.worker import Worker
from tests.service.worker_apps import REDIS_URL, calls, make_service

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def stream() -> Iterator[str]:
    name = f"adk-test:{uuid.uuid4().hex[:10]}"
    yield name

    async def clear() -> None:
        queue = RedisQueue(REDIS_URL, stream=name)
        await queue.clear()
        await queue.close()

    anyio.run(clear)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "fail-times").write_text("0")
    return tmp_path


def store_url(workdir: Path) -> str:
    return f"sqlite:///{workdir / 'runs.db'}"


async def until(predicate: Callable[[], Any], limit: float = 15.0) -> None:
    """Poll an async or plain predicate (a deadline for the test, not a timing assertion)."""
    with anyio.fail_after(limit):
        while True:
            value = predicate()
            if hasattr(value, "__await__"):
                value = await value
            if value:
                return
            await anyio.sleep(0.02)


async def status(service: Service, run_id: str) -> str | None:
    state = await RunRecords(service.store_of("default"), run_id).state()
    return None if state is None else state.status


async def is_status(service: Service, run_id: str, *wanted: str) -> bool:
    return await status(service, run_id) in wanted


async def drained(service: Service) -> bool:
    return await service.queue.depth() == 0


def test_queue_settings_are_checked() -> None:
    with pytest.raises(ArgumentTypeError):
        RedisQueue(42)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        RedisQueue(REDIS_URL, lanes={"a": 0})
    with pytest.raises(ConfigurationError):
        RedisQueue(REDIS_URL, lease=0)
    with pytest.raises(ArgumentTypeError):
        RedisQueue(REDIS_URL, retry=3)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        RunRetry(max_attempts=0)
    with pytest.raises(ConfigurationError):
        RunRetry(factor=0.5)
    retry = RunRetry(max_attempts=3, backoff=1.0, factor=2.0, max_delay=1.5)
    assert [retry.delay(n) for n in range(3)] == [1.0, 1.5, None]
    service = Service({"a": make_agent()})
    with pytest.raises(ConfigurationError, match="RedisQueue"):
        Worker(service)  # an embedded queue has no workers
    with pytest.raises(ConfigurationError):
        Worker(service, RedisQueue(REDIS_URL), concurrency=0)


def make_agent() -> Any:
    from adk import ChatModelAgent, ScriptedModel

    return ChatModelAgent("a", model=ScriptedModel(["x"]))


async def test_the_queue_hands_out_renews_reclaims_and_delays_jobs(stream: str) -> None:
    queue = RedisQueue(REDIS_URL, stream=stream, lease=0.2)
    job = RunJob("r1", "default", "echo", "hi")
    await queue.submit(job)
    assert await queue.depth() == 1
    [taken] = await queue.take("alpha", {"echo": 4}, block=0.1)
    assert taken.job == job
    assert await queue.take("beta", {"echo": 4}, block=0.05) == []  # one consumer at a time
    assert await queue.renew(taken, "alpha")
    assert await queue.reclaim("beta", {"echo": 1}) == []  # renewed: not idle long enough
    await anyio.sleep(0.3)  # alpha "died": no renewal for longer than the lease
    [again] = await queue.reclaim("beta", {"echo": 1})
    assert again.entry == taken.entry
    assert not await queue.renew(taken, "alpha")  # alpha lost it and learns so
    await queue.ack(again)
    assert await queue.depth() == 0
    with queue.delayed(0.2, attempt=2):
        await queue.submit(job)
    assert await queue.depth() == 1 and await queue.promote() == 0  # not due yet
    await until(queue.promote)
    [later] = await queue.take("beta", {"echo": 1}, block=0.1)
    assert later.job.attempt == 2
    await queue.requeue(later)  # given back: the next reader gets it
    [back] = await queue.take("gamma", {"echo": 1}, block=0.1)
    assert back.job == later.job
    await queue.close()


@pytest.fixture
async def running(workdir: Path, stream: str) -> AsyncIterator[Callable[..., Any]]:
    """Start in-process workers on services made with ``make_service(workdir, ..., stream)``."""
    async with anyio.create_task_group() as group:
        workers: list[Worker] = []

        def start(service: Service, concurrency: int = 4) -> Worker:
            worker = Worker(service, concurrency=concurrency, drain_timeout=5)
            workers.append(worker)
            group.start_soon(worker.run)
            return worker

        yield start
        for worker in workers:
            worker.stop()


async def test_a_worker_executes_runs_and_retries_failed_ones(
    workdir: Path, stream: str, running: Callable[..., Worker]
) -> None:
    service = make_service(workdir, store_url(workdir), stream)
    (workdir / "fail-times").write_text("2")  # fails twice: the third attempt succeeds
    worker = running(service)
    steps, _ = await create_run(service, "default", "steps", "t1", None, {}, None)
    flaky, _ = await create_run(service, "default", "flaky", "t2", None, {}, None)
    await until(lambda: is_status(service, steps, "completed"))
    await until(lambda: is_status(service, flaky, "completed"))
    log = calls(workdir)
    assert [c for c in log if c.startswith("step:")] == ["step:t1:1", "step:t1:2", "step:t1:3"]
    assert log.count("flaky:t2") == 3
    assert worker.stats["retried"] == 2 and worker.stats["failed"] == 2
    await until(lambda: drained(service))


async def test_retries_stop_after_max_attempts(
    workdir: Path, stream: str, running: Callable[..., Worker]
) -> None:
    service = make_service(
        workdir, store_url(workdir), stream, retry=RunRetry(max_attempts=2, backoff=0.01)
    )
    (workdir / "fail-times").write_text("9")
    running(service)
    run_id, _ = await create_run(service, "default", "flaky", "t3", None, {}, None)
    await until(lambda: calls(workdir).count("flaky:t3") == 2)
    await until(lambda: is_status(service, run_id, "failed"))
    await anyio.sleep(0.2)  # no third attempt comes
    assert calls(workdir).count("flaky:t3") == 2
    assert await status(service, run_id) == "failed"


async def test_a_lane_bounds_the_runs_of_an_agent_in_a_worker(
    workdir: Path, stream: str, running: Callable[..., Worker]
) -> None:
    service = make_service(workdir, store_url(workdir), stream, lanes={"slow": 1})
    running(service, concurrency=4)
    ids = [
        (await create_run(service, "default", "slow", f"x{n}", None, {}, None))[0] for n in range(3)
    ]
    for run_id in ids:
        await until(lambda run_id=run_id: is_status(service, run_id, "completed"))
    log = calls(workdir)
    assert len(log) == 6
    for start, end in zip(log[::2], log[1::2], strict=True):  # never two at once
        assert start.startswith("slow-start:") and end == start.replace("start", "end")


async def test_a_worker_never_runs_more_than_its_concurrency(
    workdir: Path, stream: str, running: Callable[..., Worker]
) -> None:
    service = make_service(workdir, store_url(workdir), stream)
    ids = [
        (await create_run(service, "default", agent, "c", None, {}, None))[0]
        for agent in ("slow", "flaky", "slow")
    ]
    worker = running(service, concurrency=1)  # one read may bring a job from each lane
    for run_id in ids:
        await until(lambda run_id=run_id: is_status(service, run_id, "completed"))
    log = calls(workdir)
    for start in (i for i, entry in enumerate(log) if entry == "slow-start:c"):
        assert log[start + 1] == "slow-end:c"  # nothing ran beside a slow run
    assert log.count("flaky:c") == 1 and worker.stats["completed"] == 3


def spawn_worker(workdir: Path, stream: str, lease: float = 1.0) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "ADK_TEST_DIR": str(workdir),
        "ADK_TEST_STORE": store_url(workdir),
        "ADK_TEST_STREAM": stream,
        "ADK_TEST_LEASE": str(lease),
    }
    command = [sys.executable, "-m", "adk", "worker", "tests.service.worker_apps:service"]
    return subprocess.Popen(
        [*command, "--concurrency", "4", "--log-level", "warning"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(workdir / f"worker-{time.monotonic_ns()}.err", "wb"),
    )


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> int:
    if process.poll() is None:
        process.send_signal(sig)
    return process.wait(timeout=20)


async def test_a_killed_worker_s_run_resumes_on_another_without_repeating_calls(
    workdir: Path, stream: str
) -> None:
    service = make_service(workdir, store_url(workdir), stream)
    (workdir / "hold").touch()  # step 2 blocks: the worker is killed in the middle of it
    first = spawn_worker(workdir, stream)
    second: subprocess.Popen[bytes] | None = None
    try:
        run_id, _ = await create_run(service, "default", "steps", "job", None, {}, None)
        await until(lambda: "step:job:2" in calls(workdir))
        stop(first)  # kill -9, holding the job and the run's lease
        (workdir / "go").touch()
        second = spawn_worker(workdir, stream)
        await until(lambda: is_status(service, run_id, "completed"), limit=30)
        log = [c for c in calls(workdir) if c.startswith("step:")]
        # Step 1 completed before the kill: never again. Step 2 was in flight: it runs again.
        assert log.count("step:job:1") == 1 and log.count("step:job:3") == 1
        assert log.count("step:job:2") == 2
        await until(lambda: drained(service))
    finally:
        stop(first)
        if second is not None:
            assert stop(second, signal.SIGTERM) == 0  # drains and exits cleanly
    await service.close()


async def test_sigterm_lets_the_running_run_finish(workdir: Path, stream: str) -> None:
    service = make_service(workdir, store_url(workdir), stream)
    process = spawn_worker(workdir, stream)
    try:
        run_id, _ = await create_run(service, "default", "slow", "drain", None, {}, None)
        await until(lambda: "slow-start:drain" in calls(workdir))
        process.send_signal(signal.SIGTERM)
        assert await anyio.to_thread.run_sync(process.wait, 20) == 0
        assert await status(service, run_id) == "completed"
        assert calls(workdir) == ["slow-start:drain", "slow-end:drain"]
    finally:
        stop(process)
    await service.close()


def test_adk_worker_refuses_a_service_without_a_redis_queue() -> None:
    found = subprocess.run(
        [sys.executable, "-m", "adk", "worker", "tests.service.apps:service"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
    )
    assert found.returncode == 1
    assert "Worker needs a RedisQueue" in found.stderr
