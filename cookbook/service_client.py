"""Service client: a run over HTTP, its events streamed, an approval answered, the result read.

What it shows
- ``Service(agents=..., store="sqlite:///...")`` and ``create_app(service)``:
  the HTTP service, started here in-process on a free loopback port (uvicorn
  in a thread; in production ``adk serve module:service``).
- ``POST /runs`` with an ``Idempotency-Key``: a retried request gets the same run.
- ``GET /runs/{id}/events``: Server-Sent Events from the run's durable log;
  the stream ends when the run stops (here: waiting for an approval).
- ``POST /runs/{id}/answers``: approve the refund; the run continues and
  the client streams the rest with ``Last-Event-ID`` (no gap, no duplicate).
- ``GET /runs/{id}``: status and the final answer.

How to run it
    python cookbook/service_client.py          # needs the server extra (fastapi, uvicorn)

Offline: a ScriptedModel plays the LLM.
"""

from __future__ import annotations

import json
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from adk import ChatModelAgent, ModelRequest, ScriptedModel, ToolCall, tool
from adk.service import Service, create_app


@tool(requires_approval=True)
def refund(order: str, amount: int) -> str:
    """Refund an order."""
    return f"refunded {amount} EUR on order {order}"


def support_model(request: ModelRequest) -> str | ToolCall:
    if not any(m.role == "tool" for m in request.messages):
        return ToolCall.of("refund", order="A-7", amount=30)
    return "Your refund of 30 EUR is on its way."


def support() -> ChatModelAgent:
    return ChatModelAgent("support", model=ScriptedModel(support_model), tools=[refund])


def start_server(service: Service) -> tuple[uvicorn.Server, threading.Thread, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(service), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    return server, thread, f"http://127.0.0.1:{port}"


def stream(client: httpx.Client, run_id: str, after: int = 0) -> int:
    """Print the run's events until its stream ends; the last event id."""
    last, kind = after, ""
    headers = {"Last-Event-ID": str(after)} if after else {}
    with client.stream("GET", f"/runs/{run_id}/events", headers=headers) as response:
        for line in response.iter_lines():
            if line.startswith("id: "):
                last = int(line[4:])
            elif line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                show(kind, json.loads(line[6:]))
    return last


def show(kind: str, data: dict[str, Any]) -> None:
    if kind == "status":
        print(f"  [status] {data['status']}")
        return
    message = (data.get("output") or {}).get("message") or {}
    if message.get("tool_calls"):
        call = message["tool_calls"][0]
        print(f"  [{data['agent_name']}] calls {call['name']} {call['arguments']}")
    elif message:
        print(f"  [{message['role']}] {message['content']}")
    elif "checkpoint_id" in data.get("action", {}).get("interrupted", {}):  # the run paused
        interrupts = data["action"]["interrupted"]["interrupts"]
        print(f"  [interrupt] approval needed for {interrupts[0]['info']['tool']}")


def talk(client: httpx.Client) -> None:
    """The client's side: start, stream, approve, stream the rest, read the result."""
    body = {"agent": "support", "input": "Please refund order A-7."}
    headers = {"Idempotency-Key": "refund-A-7"}
    created = client.post("/runs", json=body, headers=headers)
    retried = client.post("/runs", json=body, headers=headers)  # a retry after a timeout, say
    run_id = created.json()["id"]
    same = retried.json()["id"] == run_id
    print(
        f"POST /runs -> {created.status_code}; retried -> {retried.status_code}, same run: {same}"
    )
    print("events:")
    last = stream(client, run_id)
    run = client.get(f"/runs/{run_id}").json()
    interrupt = run["interrupts"][0]
    print(f"status: {run['status']}; approving {interrupt['info']['tool']}")
    answer = {"answers": {interrupt["id"]: {"approved": True}}}
    answered = client.post(f"/runs/{run_id}/answers", json=answer)
    print(f"POST /runs/{{id}}/answers -> {answered.status_code}")
    print(f"events after {last} (Last-Event-ID):")
    stream(client, run_id, after=last)
    run = client.get(f"/runs/{run_id}").json()
    print(f"status: {run['status']}; answer: {run['text']}")


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        service = Service({"support": support}, store=f"sqlite:///{Path(folder) / 'runs.db'}")
        server, thread, url = start_server(service)
        try:
            with httpx.Client(base_url=url, timeout=10) as client:
                talk(client)
        finally:
            server.should_exit = True
            thread.join()


if __name__ == "__main__":
    main()
