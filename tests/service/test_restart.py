"""A server restart loses nothing: SSE resumes with Last-Event-ID, unfinished runs go on."""

from __future__ import annotations

from adk.service import Service
from tests.service import apps
from tests.service.server import LiveServer, sse, wait_status


def test_sse_resumes_across_a_restart_with_no_gap_and_no_duplicate(db: str) -> None:
    first = LiveServer(Service(apps.agents(), store=db))
    try:
        with first.client() as client:
            run_id = client.post("/runs", json={"agent": "support", "input": "refund"}).json()["id"]
            before = sse(client, run_id)
    finally:
        first.stop()
    second = LiveServer(Service(apps.agents(), store=db))  # a new process, as far as state goes
    try:
        with second.client() as client:
            view = client.get(f"/runs/{run_id}").json()
            assert view["status"] == "interrupted"
            answer = {"answers": {view["interrupts"][0]["id"]: True}}
            assert client.post(f"/runs/{run_id}/answers", json=answer).status_code == 202
            after = sse(client, run_id, **{"Last-Event-ID": str(before[-1]["id"])})
            replay = sse(client, run_id)  # a finished run replays whole, then the stream ends
            middle = client.get(f"/runs/{run_id}/events", params={"after": 3})
    finally:
        second.stop()
    ids = [m["id"] for m in before + after]
    assert ids == list(range(1, len(ids) + 1))  # no gap, no duplicate
    assert replay == before + after
    assert after[-1]["data"]["status"] == "completed"
    assert middle.text.startswith("id: 4\n")


def test_a_run_cut_off_by_a_shutdown_resumes_on_the_next_server(db: str) -> None:
    first = LiveServer(Service(apps.agents(), store=db))
    try:
        with first.client() as client:
            run_id = client.post("/runs", json={"agent": "worker", "input": "go"}).json()["id"]
            apps.wait_until(lambda: apps.CALLS.get("work") == 1)  # mid tool call
    finally:
        first.stop()  # the executor is cancelled; the run stays "running" in the store
    apps.RELEASE.set()
    second = LiveServer(Service(apps.agents(), store=db))
    try:
        with second.client() as client:
            view = wait_status(client, run_id, "completed")
            events = sse(client, run_id)
    finally:
        second.stop()
    assert view["text"] == "Finished (worked on report)"
    assert apps.CALLS["worker-model"] == 2  # the first model call was journaled, not repeated
    assert apps.CALLS["work"] == 2  # the tool call in flight at the shutdown ran again
    tool_calls = [
        m
        for m in events
        if m["event"] == "event" and m["data"]["output"]["message"].get("tool_calls")
    ]
    assert len(tool_calls) == 1  # delivered again by the recovery, logged once
    statuses = [m["data"]["status"] for m in events if m["event"] == "status"]
    assert statuses == ["queued", "running", "running", "completed"]
