"""The run endpoints over real HTTP: create, stream, list, idempotency, approvals, signals."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import anyio

from adk import SQLiteStore
from adk.service.records import RunRecords
from adk.service.tenancy import WorkspaceStore
from tests.service import apps
from tests.service.server import LiveServer, sse, wait_status


def test_a_run_streams_its_events_and_reports_its_result(live: LiveServer) -> None:
    with live.client() as client:
        created = client.post("/runs", json={"agent": "echo", "input": "hello"})
        assert created.status_code == 201
        run_id = created.json()["id"]
        messages = sse(client, run_id)
        view = client.get(f"/runs/{run_id}").json()
    assert [m["id"] for m in messages] == list(range(1, len(messages) + 1))  # gapless
    statuses = [m["data"]["status"] for m in messages if m["event"] == "status"]
    assert statuses == ["queued", "running", "completed"]
    texts = [m["data"]["output"]["message"]["content"] for m in messages if m["event"] == "event"]
    assert texts == ["echo: hello"]
    assert view["status"] == "completed" and view["text"] == "echo: hello"
    assert view["output"] == "echo: hello" and view["agent"] == "echo"


def test_messages_as_input(live: LiveServer) -> None:
    body = {
        "agent": "echo",
        "input": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
    }
    with live.client() as client:
        run_id = client.post("/runs", json=body).json()["id"]
        assert wait_status(client, run_id, "completed")["text"] == "echo: hi"


def test_the_same_idempotency_key_and_body_give_the_same_run(live: LiveServer) -> None:
    body = {"agent": "echo", "input": "once"}
    headers = {"Idempotency-Key": "order-42"}
    with live.client() as client:
        first = client.post("/runs", json=body, headers=headers)
        again = client.post("/runs", json=body, headers=headers)
        other = client.post("/runs", json={**body, "input": "twice"}, headers=headers)
        assert (first.status_code, again.status_code) == (201, 200)
        assert again.json()["id"] == first.json()["id"]
        assert other.status_code == 409
        assert other.json()["error"]["type"] == "IdempotencyConflict"

        def post(_: int) -> str:
            response = client.post("/runs", json=body, headers={"Idempotency-Key": "race"})
            assert response.status_code in (200, 201)
            return str(response.json()["id"])

        with ThreadPoolExecutor(8) as pool:
            ids = set(pool.map(post, range(16)))
        assert len(ids) == 1
        wait_status(client, ids.pop(), "completed")
        listed = client.get("/runs", params={"limit": 500}).json()["runs"]
    assert len(listed) == 2  # "order-42" and "race": one run each


def test_listing_filters_and_pages_with_a_cursor(live: LiveServer) -> None:
    with live.client() as client:
        ids = [
            client.post("/runs", json={"agent": "echo", "input": str(i)}).json()["id"]
            for i in range(5)
        ]
        support = client.post("/runs", json={"agent": "support", "input": "refund"}).json()["id"]
        for run_id in ids:
            wait_status(client, run_id, "completed")
        wait_status(client, support, "interrupted")
        seen, cursor = [], None
        while True:
            params = {"agent": "echo", "limit": 2, **({"cursor": cursor} if cursor else {})}
            page = client.get("/runs", params=params).json()
            seen += [run["id"] for run in page["runs"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        interrupted = client.get("/runs", params={"status": "interrupted"}).json()["runs"]
        bad = client.get("/runs", params={"status": "sleeping"})
    assert seen == list(reversed(ids))  # newest first, each once
    assert [run["id"] for run in interrupted] == [support]
    assert bad.status_code == 422 and bad.json()["error"]["type"] == "ValidationError"


def test_an_approval_answered_over_http(live: LiveServer) -> None:
    with live.client() as client:
        run_id = client.post("/runs", json={"agent": "support", "input": "refund me"}).json()["id"]
        first = sse(client, run_id)
        view = client.get(f"/runs/{run_id}").json()
        assert view["status"] == "interrupted" and apps.CALLS.get("refund") is None
        (interrupt,) = view["interrupts"]
        assert interrupt["info"]["tool"] == "refund"
        unknown = client.post(f"/runs/{run_id}/answers", json={"answers": {"int_nope": True}})
        assert unknown.status_code == 422 and unknown.json()["error"]["type"] == "UnknownInterrupt"
        answered = client.post(
            f"/runs/{run_id}/answers", json={"answers": {interrupt["id"]: {"approved": True}}}
        )
        assert answered.status_code == 202 and answered.json()["status"] == "queued"
        twice = client.post(f"/runs/{run_id}/answers", json={"answers": {interrupt["id"]: True}})
        assert twice.status_code == 409
        rest = sse(client, run_id, **{"Last-Event-ID": str(first[-1]["id"])})
        view = client.get(f"/runs/{run_id}").json()
    assert rest[0]["id"] == first[-1]["id"] + 1
    assert view["status"] == "completed" and view["text"] == "Done: refunded 30"
    assert apps.CALLS["refund"] == 1 and apps.CALLS["support-model"] == 2  # nothing repeated


def test_a_rejection_sent_as_a_signal(live: LiveServer) -> None:
    with live.client() as client:
        run_id = client.post("/runs", json={"agent": "support", "input": "refund"}).json()["id"]
        view = wait_status(client, run_id, "interrupted")
        missing = client.post(f"/runs/{run_id}/signals", json={"kind": "reject"})
        assert missing.status_code == 422
        rejected = client.post(
            f"/runs/{run_id}/signals",
            json={"kind": "reject", "interrupt_id": view["interrupts"][0]["id"], "reason": "no"},
        )
        assert rejected.status_code == 202
        view = wait_status(client, run_id, "completed")
    assert "refund" not in apps.CALLS and view["text"].startswith("Done: ")


def test_cancel_a_running_run(live: LiveServer) -> None:
    with live.client() as client:
        run_id = client.post("/runs", json={"agent": "worker", "input": "go"}).json()["id"]
        wait_status(client, run_id, "running")
        apps.wait_until(lambda: apps.CALLS.get("work") == 1)
        cancelled = client.post(f"/runs/{run_id}/signals", json={"kind": "cancel"})
        assert cancelled.status_code == 202
        view = wait_status(client, run_id, "cancelled")
        events = sse(client, run_id)
        again = client.post(f"/runs/{run_id}/signals", json={"kind": "cancel"})
    assert view["error"]["type"] == "RunCancelled"
    assert events[-2]["data"]["error"]["type"] == "RunCancelled"
    assert events[-1]["data"]["status"] == "cancelled"
    assert again.status_code == 409 and again.json()["error"]["type"] == "SignalNotApplicable"


def applied(db: str, run_id: str) -> int:
    """The seq of the last signal the run's executor applied, read from the store."""

    async def read() -> int:
        store = SQLiteStore(db.removeprefix("sqlite:///"))
        try:
            return await RunRecords(WorkspaceStore(store, "default"), run_id).applied()
        finally:
            await store.close()

    return anyio.run(read)


def test_pause_feedback_and_resume(live: LiveServer, db: str) -> None:
    with live.client() as client:
        run_id = client.post("/runs", json={"agent": "worker", "input": "go"}).json()["id"]
        apps.wait_until(lambda: apps.CALLS.get("work") == 1)
        assert client.post(f"/runs/{run_id}/signals", json={"kind": "pause"}).status_code == 202
        apps.wait_until(lambda: applied(db, run_id) == 1)  # the executor took the pause in
        apps.RELEASE.set()
        paused = wait_status(client, run_id, "paused")
        feedback = {"kind": "feedback", "text": "Keep it short."}
        assert client.post(f"/runs/{run_id}/signals", json=feedback).status_code == 202
        assert client.post(f"/runs/{run_id}/signals", json={"kind": "resume"}).status_code == 202
        view = wait_status(client, run_id, "completed")
    assert paused["checkpoint_id"] is not None
    assert view["text"] == "Noted: Keep it short."  # the feedback was the last message
    assert apps.CALLS["work"] == 1 and apps.CALLS["worker-model"] == 2


def test_cancel_an_interrupted_run_and_retry_a_failed_one(live: LiveServer) -> None:
    with live.client() as client:
        run_id = client.post("/runs", json={"agent": "support", "input": "refund"}).json()["id"]
        wait_status(client, run_id, "interrupted")
        assert client.post(f"/runs/{run_id}/signals", json={"kind": "cancel"}).status_code == 202
        assert client.get(f"/runs/{run_id}").json()["status"] == "cancelled"
        assert sse(client, run_id)[-1]["data"]["status"] == "cancelled"
        late = client.post(f"/runs/{run_id}/answers", json={"answers": {"x": True}})
        assert late.status_code == 409

        run_id = client.post("/runs", json={"agent": "flaky", "input": "get x"}).json()["id"]
        failed = wait_status(client, run_id, "failed")
        assert failed["error"]["type"] == "ConnectionError"
        assert client.post(f"/runs/{run_id}/signals", json={"kind": "retry"}).status_code == 202
        view = wait_status(client, run_id, "completed")
    assert view["text"] == "Got it."
    assert apps.CALLS["flaky"] == 2 and apps.CALLS["flaky-model"] == 2  # the first call replayed
