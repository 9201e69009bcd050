"""The parts under the HTTP layer: jobs, workspaces, the event log, configuration, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import anyio
import httpx
import pytest

from adk import ChatModelAgent, ConfigurationError, InMemoryStore, ScriptedModel
from adk.errors import ArgumentTypeError
from adk.service import EventLog, RunJob, Service, execute_job
from adk.service.runs import create_run
from adk.service.tenancy import WorkspaceStore, stored_workspaces
from tests.service import apps
from tests.service.server import free_port

pytestmark = pytest.mark.anyio


def test_a_job_round_trips_through_json() -> None:
    job = RunJob("r1", "ws", "echo", [{"role": "user", "content": "hi"}], "s1", {"a": 1}, 2)
    assert RunJob.from_json(job.to_json()) == job
    for bad in (
        "[]",
        "{}",
        "not json",
        '{"run_id": "r", "workspace": "w", "agent": "a", "attempt": true}',
    ):
        with pytest.raises(ConfigurationError):
            RunJob.from_json(bad)


async def test_workspaces_share_a_store_and_see_nothing_of_each_other() -> None:
    inner = InMemoryStore()
    alpha, beta = WorkspaceStore(inner, "alpha"), WorkspaceStore(inner, "beta")
    await alpha.put("run:1", "meta", b"a")
    assert await beta.get("run:1", "meta") is None
    assert await alpha.namespaces("run:") == ["run:1"] and await beta.namespaces() == []
    assert await stored_workspaces(inner) == ["alpha"]
    with pytest.raises(ConfigurationError):
        WorkspaceStore(inner, "a/b")


async def test_the_event_log_is_gapless_under_concurrent_writers() -> None:
    store = InMemoryStore()
    writers = [EventLog(store, "r1") for _ in range(4)]
    async with anyio.create_task_group() as group:
        for n, log in enumerate(writers):
            for i in range(10):
                group.start_soon(log.append, "event", {"writer": n, "i": i})
    await writers[0].append_status("completed")
    entries = await EventLog(store, "r1").read()
    assert [e.seq for e in entries] == list(range(1, 42))
    followed = [e async for e in EventLog(store, "r1").follow(after=38) if e is not None]
    assert [e.seq for e in followed] == [39, 40, 41]  # then the stream ends: the run stopped


async def test_a_job_delivered_twice_runs_once() -> None:
    service = Service(apps.agents())
    run_id, _ = await create_run(service, "default", "echo", "hi", None, {}, None)
    job = RunJob(run_id, "default", "echo", "hi")
    assert await execute_job(service, job) == "completed"
    assert await execute_job(service, job) == "completed"  # nothing to do the second time
    entries = await EventLog(service.store_of("default"), run_id).read()
    assert [e.data.get("status") for e in entries if e.kind == "status"] == [
        "queued",
        "running",
        "completed",
    ]
    assert await execute_job(service, RunJob("nope", "default", "echo", "hi")) == "missing"


def test_service_settings_are_checked() -> None:
    agent = ChatModelAgent("a", model=ScriptedModel(["x"]))
    with pytest.raises(ArgumentTypeError):
        Service({})
    with pytest.raises(ConfigurationError, match="8 characters"):
        Service({"a": agent}, api_keys={"short": "ws"})
    with pytest.raises(ConfigurationError, match="set by the service"):
        Service({"a": agent}, runner_options={"durability": "interrupt"})
    with pytest.raises(ConfigurationError, match="not a Runner option"):
        Service({"a": agent}, runner_options={"colour": "red"})
    with pytest.raises(ConfigurationError, match="unknown scheme"):
        Service({"a": agent}, store="ftp://x")
    with pytest.raises(ConfigurationError):
        Service({"a": agent}, max_input_bytes=0)
    keyed = Service({"a": agent}, api_keys={"0123456789": "ws"})
    assert keyed.workspace_for_key("0123456789") == "ws"
    assert keyed.workspace_for_key("0123456788") is None and keyed.workspace_for_key(None) is None


def test_importing_adk_does_not_import_fastapi() -> None:
    code = "import adk, adk.service, sys; adk.Runner; print('fastapi' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_adk_serve_runs_a_service_named_by_module_and_attribute() -> None:
    port = free_port()
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    command = [
        sys.executable,
        "-m",
        "adk",
        "serve",
        "tests.service.apps:service",
        "--port",
        str(port),
    ]
    process = subprocess.Popen(command, cwd=root, env=env, stderr=subprocess.PIPE, text=True)
    try:
        health = None
        for _ in range(500):
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None:
                    break
                anyio.run(anyio.sleep, 0.02)
        assert health is not None and health.json() == {"status": "ok"}, process.stderr
    finally:
        process.terminate()
        process.wait(timeout=10)
    bad = subprocess.run(
        [sys.executable, "-m", "adk", "serve", "tests.service.apps:nothing"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0 and "has no attribute 'nothing'" in bad.stderr
