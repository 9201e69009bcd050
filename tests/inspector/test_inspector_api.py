"""The inspector's routes over real HTTP (no browser), and ``adk web`` as a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.inspector import apps
from tests.inspector.conftest import KEYS
from tests.service.apps import wait_until
from tests.service.server import LiveServer, free_port, wait_status

ALPHA, BETA = list(KEYS)
ROOT = Path(__file__).resolve().parents[2]


def test_the_page_and_its_two_files_are_served_plainly(live: LiveServer) -> None:
    with live.client() as client:  # no key: the page itself is public, the data is not
        page = client.get("/inspector")
        script = client.get("/inspector/static/inspector.js")
        style = client.get("/inspector/static/inspector.css")
        others = [client.get(f"/inspector/static/{name}") for name in ("index.html", "app.py")]
        escape = client.get("/inspector/static/..%2Fapp.py")
        data = client.get("/inspector/api/runs")
    assert page.status_code == 200 and "inspector/static/inspector.js" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "http" not in page.text.replace("http-equiv", "")  # nothing fetched from elsewhere
    assert script.headers["content-type"].startswith("text/javascript")
    assert style.headers["content-type"].startswith("text/css")
    assert len(script.content) < 24_000  # a few KB, no framework
    assert [r.status_code for r in others] == [404, 404] and escape.status_code == 404
    assert data.status_code == 401


def test_calls_carry_the_serving_metrics_of_the_workspace_runs_only(live: LiveServer) -> None:
    with live.client(ALPHA) as alpha, live.client(BETA) as beta:
        run_id = alpha.post("/runs", json={"agent": "support", "input": "refund"}).json()["id"]
        view = wait_status(alpha, run_id, "interrupted")
        answer = {view["interrupts"][0]["id"]: {"decision": "approve"}}
        assert alpha.post(f"/runs/{run_id}/answers", json={"answers": answer}).status_code == 202
        wait_status(alpha, run_id, "completed")
        found = alpha.get(f"/inspector/api/runs/{run_id}/calls").json()
        listed = alpha.get("/inspector/api/runs", params={"status": "completed"}).json()
        foreign = beta.get(f"/inspector/api/runs/{run_id}/calls")
        unknown = alpha.get("/inspector/api/runs/run-nope/calls")
        agents = alpha.get("/inspector/api/agents").json()
    calls = found["calls"]
    assert len(calls) == 2 and {c["backend"] for c in calls} == {"local"}
    assert all(c["replica"].startswith("http://127.0.0.1:") for c in calls)
    assert all(c["ttft"] is not None and c["queue_wait"] >= 0 for c in calls)
    assert calls[1]["cached_tokens"] > 0  # the second call found the first one's prefix
    summary = found["summary"]
    assert summary["calls"] == 2 and summary["cost"] == pytest.approx(sum(c["cost"] for c in calls))
    assert summary["cached_tokens"] == sum(c["cached_tokens"] for c in calls)
    row = next(r for r in listed["runs"] if r["id"] == run_id)
    assert row["serving"] == summary and row["status"] == "completed"
    assert foreign.status_code == 404 and unknown.status_code == 404
    assert agents == {"agents": ["support", "worker"]}
    assert apps.REFUNDS == [30]


@pytest.fixture
def web_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    port = free_port()
    command = [sys.executable, "-m", "adk", "web", "tests.inspector.apps:echo"]
    command += ["--store", str(tmp_path / "runs.db"), "--port", str(port)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        yield process, f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_adk_web_serves_the_inspector_over_a_local_store_without_keys(
    web_process: tuple[subprocess.Popen[str], str],
) -> None:
    process, url = web_process
    assert process.stdout is not None
    assert process.stdout.readline().strip() == f"adk inspector: {url}/inspector"

    def up() -> bool:
        try:
            return httpx.get(f"{url}/health").status_code == 200
        except httpx.TransportError:
            return False

    wait_until(up, timeout=30)
    with httpx.Client(base_url=url) as client:
        assert client.get("/inspector").status_code == 200
        assert client.get("/inspector/api/agents").json() == {"agents": ["echo"]}
        run_id = client.post("/runs", json={"agent": "echo", "input": "hi"}).json()["id"]
        assert wait_status(client, run_id, "completed")["text"] == "echo: hi"


def test_adk_web_without_agents_only_browses(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from adk.service.inspector import web_app

    with TestClient(web_app(str(tmp_path / "runs.db"))) as client:
        assert client.get("/inspector/api/agents").json() == {"agents": []}
        assert client.get("/inspector/api/runs").json() == {"runs": [], "next_cursor": None}


def test_adk_web_names_a_bad_agent_clearly(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "adk", "web", "tests.inspector.apps:nothing"]
    command += ["--store", str(tmp_path / "runs.db")]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "adk web:" in done.stderr and "'nothing'" in done.stderr
