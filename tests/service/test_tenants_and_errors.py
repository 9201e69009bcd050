"""Tenants (a foreign id is a 404 everywhere), bad input (4xx, never 500), health, metrics."""

from __future__ import annotations

import httpx

from tests.service.conftest import KEYS
from tests.service.server import LiveServer, wait_status

ALPHA, BETA = list(KEYS)


def _every_endpoint(client: httpx.Client, run_id: str, session_id: str) -> list[httpx.Response]:
    return [
        client.get(f"/runs/{run_id}"),
        client.get(f"/runs/{run_id}/events"),
        client.post(f"/runs/{run_id}/answers", json={"answers": {"x": True}}),
        client.post(f"/runs/{run_id}/signals", json={"kind": "cancel"}),
        client.get(f"/sessions/{session_id}"),
        client.delete(f"/sessions/{session_id}"),
    ]


def test_no_workspace_reaches_another(tenants: LiveServer) -> None:
    with tenants.client(ALPHA) as alpha, tenants.client(BETA) as beta:
        body = {"agent": "support", "input": "refund", "session_id": "chat-1"}
        run_id = alpha.post("/runs", json=body).json()["id"]
        wait_status(alpha, run_id, "interrupted")
        foreign = _every_endpoint(beta, run_id, "chat-1")
        missing = _every_endpoint(beta, "run-does-not-exist", "no-such-session")
        assert beta.get("/runs").json()["runs"] == []
        assert beta.get("/sessions").json()["sessions"] == []
        # The same idempotency key in two workspaces: two runs, no conflict.
        same = {"agent": "echo", "input": "hi"}
        one = alpha.post("/runs", json=same, headers={"Idempotency-Key": "k"}).json()["id"]
        two = beta.post("/runs", json=same, headers={"Idempotency-Key": "k"}).json()["id"]
        assert one != two
        # The owner still has everything.
        assert alpha.get(f"/runs/{run_id}").json()["status"] == "interrupted"
        assert [s["id"] for s in alpha.get("/sessions").json()["sessions"]] == ["chat-1"]
    assert [r.status_code for r in foreign] == [404] * 6
    # indistinguishable from ids that never existed
    assert [r.json()["error"]["type"] for r in foreign] == [
        r.json()["error"]["type"] for r in missing
    ]


def test_a_key_is_required_and_either_header_works(tenants: LiveServer) -> None:
    with httpx.Client(base_url=tenants.url) as anonymous:
        none = anonymous.get("/runs")
        wrong = anonymous.get("/runs", headers={"Authorization": "Bearer key-alpha-0002"})
        by_header = anonymous.get("/runs", headers={"X-API-Key": ALPHA})
        health = anonymous.get("/health")
    assert none.status_code == 401 and none.json()["error"]["type"] == "Unauthorized"
    assert wrong.status_code == 401 and "key-alpha" not in wrong.text  # never echoed
    assert by_header.status_code == 200
    assert health.json() == {"status": "ok"}


def test_bad_requests_are_clear_4xx(live: LiveServer) -> None:
    with live.client() as client:
        cases = {
            "malformed": client.post(
                "/runs", content=b"{not json", headers={"Content-Type": "application/json"}
            ),
            "unknown agent": client.post("/runs", json={"agent": "nobody", "input": "hi"}),
            "extra field": client.post("/runs", json={"agent": "echo", "input": "x", "typo": 1}),
            "empty input": client.post("/runs", json={"agent": "echo", "input": ""}),
            "bad session": client.post(
                "/runs", json={"agent": "echo", "input": "x", "session_id": "a/b"}
            ),
            "oversize": client.post("/runs", json={"agent": "echo", "input": "x" * 5000}),
            "unknown route": client.get("/nowhere"),
            "bad method": client.delete("/runs"),
            "bad signal": client.post("/runs/run-x/signals", json={"kind": "explode"}),
            "bad limit": client.get("/runs", params={"limit": 0}),
        }
        run_id = client.post("/runs", json={"agent": "echo", "input": "x"}).json()["id"]
        wait_status(client, run_id, "completed")
        cases["bad cursor header"] = client.get(
            f"/runs/{run_id}/events", headers={"Last-Event-ID": "abc"}
        )
        cases["answer a finished run"] = client.post(
            f"/runs/{run_id}/answers", json={"answers": {"x": True}}
        )
        cases["pause a finished run"] = client.post(
            f"/runs/{run_id}/signals", json={"kind": "pause"}
        )
    statuses = {name: response.status_code for name, response in cases.items()}
    assert statuses == {
        "malformed": 422,
        "unknown agent": 422,
        "extra field": 422,
        "empty input": 422,
        "bad session": 422,
        "oversize": 413,
        "unknown route": 404,
        "bad method": 405,
        "bad signal": 422,
        "bad limit": 422,
        "bad cursor header": 422,
        "answer a finished run": 409,
        "pause a finished run": 409,
    }
    for response in cases.values():
        error = response.json()["error"]
        assert isinstance(error["type"], str) and isinstance(error["message"], str)
    assert cases["unknown agent"].json()["error"]["type"] == "UnknownAgent"


def test_metrics_count_runs_by_status(live: LiveServer) -> None:
    with live.client() as client:
        done = client.post("/runs", json={"agent": "echo", "input": "x"}).json()["id"]
        waiting = client.post("/runs", json={"agent": "support", "input": "x"}).json()["id"]
        wait_status(client, done, "completed")
        wait_status(client, waiting, "interrupted")
        text = client.get("/metrics").text
    assert 'adk_runs{status="completed"} 1' in text
    assert 'adk_runs{status="interrupted"} 1' in text
    assert "adk_queue_depth 0" in text
    assert "# TYPE adk_serving_calls_total counter" in text  # one line per backend that served


def test_sessions_over_http(live: LiveServer) -> None:
    with live.client() as client:
        for text in ("one", "two"):
            body = {
                "agent": "echo",
                "input": text,
                "session_id": "s-1",
                "options": {"user_id": "ann"},
            }
            wait_status(client, client.post("/runs", json=body).json()["id"], "completed")
        listed = client.get("/sessions", params={"user_id": "ann"}).json()["sessions"]
        session = client.get("/sessions/s-1").json()
        deleted = client.delete("/sessions/s-1")
        gone = client.get("/sessions/s-1")
    assert [(s["id"], s["turns"]) for s in listed] == [("s-1", 2)]
    contents = [item["message"]["content"] for item in session["history"]]
    assert contents == ["one", "echo: one", "two", "echo: two"]
    assert deleted.status_code == 204 and gone.status_code == 404
