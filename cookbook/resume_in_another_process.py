"""Resume in another process: one process pauses a run in a SQLite file, another finishes it.

What it shows
- ``Runner(agent, checkpoint_store="refunds.db")``: a path is a SQLite file
  (``SQLiteStore``, the embedded default); several processes can share it.
- ``start DB``: a support agent looks an order up, then asks to refund it.
  ``issue_refund`` needs approval above 50 EUR
  (``requires_approval=lambda args: args["amount"] > 50``), so the run pauses.
  The process prints the checkpoint id and the pending interrupts, and exits.
- ``resume DB CHECKPOINT ANSWER``: a new process builds the same agent, loads
  the checkpoint from the file and resumes it with the answer. The run's
  session values come back from the store; the completed model call and the
  ``lookup_order`` call are not made again (the process prints what it ran).
- A checkpoint is single-shot: resuming the same checkpoint a second time fails
  with CheckpointAlreadyResumed, whichever process tries.

How to run it
    python cookbook/resume_in_another_process.py           # the whole story, in a temp dir
    python cookbook/resume_in_another_process.py start refunds.db
    python cookbook/resume_in_another_process.py resume refunds.db CHECKPOINT approve
    python cookbook/resume_in_another_process.py resume refunds.db CHECKPOINT "reject too late"
    python cookbook/resume_in_another_process.py resume refunds.db CHECKPOINT 'edit {"amount": 60}'
    ADK_MODEL=openai/gpt-4o-mini python cookbook/resume_in_another_process.py

With no arguments the script runs ``start`` in its own process, then spawns
``resume`` in a second Python process (``subprocess`` with ``sys.executable``)
and checks what that process did. ANSWER is ``approve``, ``reject [reason]``
or ``edit <json>`` (changed arguments) and answers every pending interrupt of
the checkpoint. Offline, a ScriptedModel plays the LLM; with ADK_MODEL set to
a litellm model id, both processes use that model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio

from adk import (
    Approval,
    ChatModel,
    ChatModelAgent,
    CheckpointAlreadyResumed,
    ModelRequest,
    Runner,
    RunResult,
    ScriptedModel,
    ToolCall,
    ToolContext,
    tool,
)

MODEL_ID = os.environ.get("ADK_MODEL")  # e.g. "openai/gpt-4o-mini"; unset: offline
ORDERS = {"A-1042": {"item": "espresso machine", "paid": 120, "customer": "Ada"}}


def say(text: str) -> None:
    print(f"[pid {os.getpid()}] {text}", flush=True)


# --- tools --------------------------------------------------------------------------------


@tool
def lookup_order(order_id: str, ctx: ToolContext) -> str:
    """Look an order up.

    Args:
        order_id: The order number, e.g. "A-1042".
    """
    say(f"ran lookup_order({order_id!r})")
    order = ORDERS.get(order_id)
    if order is None:
        raise ValueError(f"no order {order_id!r}")
    ctx.set("order", {"id": order_id, **order})  # a session value: it is journaled with the call
    return json.dumps(order)


@tool(requires_approval=lambda args: args["amount"] > 50)  # small refunds need no approval
def issue_refund(order_id: str, amount: int, ctx: ToolContext) -> str:
    """Refund (part of) an order to the customer.

    Args:
        order_id: The order number.
        amount: The amount to refund, in EUR.
    """
    say(f"ran issue_refund({order_id!r}, {amount})")
    order = ctx.get("order")  # set by lookup_order, in the first process
    if order is None or order["id"] != order_id:
        raise ValueError("look the order up first")
    ctx.set("refunded", amount)
    return f"refunded {amount} EUR to {order['customer']}"


# --- the offline model and the agent ---------------------------------------------------------


def offline_model(request: ModelRequest) -> str | ToolCall:
    say(f"model call by {request.agent_name}")
    results = [m for m in request.messages if m.role == "tool"]
    if not results:
        return ToolCall.of("lookup_order", order_id="A-1042")
    if len(results) == 1:
        return ToolCall.of("issue_refund", order_id="A-1042", amount=120)
    return f"Update for the customer: {results[-1].content}."


def choose_model() -> ChatModel | str:
    return MODEL_ID or ScriptedModel(offline_model)


def build_runner(db: str) -> Runner:
    """The same agent tree in every process; the checkpoint store is the SQLite file ``db``."""
    agent = ChatModelAgent(
        "support",
        model=choose_model(),
        instruction=(
            "You handle refund requests. Look the order up with lookup_order, then refund "
            "what the customer paid with issue_refund. Finish with one sentence for the customer."
        ),
        tools=[lookup_order, issue_refund],
    )
    return Runner(agent, checkpoint_store=db)


def report(result: RunResult) -> None:
    for event in result.events:
        message = event.message
        if message is not None and message.role == "assistant" and message.content:
            say(f"answer: {message.content}")
    say(f"session values: {json.dumps(dict(result.session_values), sort_keys=True)}")
    if result.checkpoint_id is None:
        say("the run finished")
        return
    say(f"paused at checkpoint {result.checkpoint_id}, waiting for:")
    for pending in result.interrupts:
        say(f"  {pending.id} at {' / '.join(pending.address)}: {json.dumps(pending.info)}")


# --- the two commands --------------------------------------------------------------------------


async def start(db: str) -> RunResult:
    runner = build_runner(db)
    request = "Order A-1042 arrived broken. I'd like my 120 EUR back."
    say(f"start: {request}")
    result = await runner.invoke(request, session_values={"channel": "email"})
    report(result)
    if result.checkpoint_id is not None:
        say(f"records of run {result.run_id} in {db}:")
        records = await runner.store.scan(f"run:{result.run_id}")
        say("  " + ", ".join(f"{name} ({len(data)} B)" for name, data in records))
        say(f"resume with: python {__file__} resume {db} {result.checkpoint_id} approve")
    await runner.store.close()
    return result


def parse_answer(text: str, arguments: dict[str, Any]) -> Approval:
    word, _, rest = text.strip().partition(" ")
    if word == "approve":
        return Approval.approve()
    if word == "reject":
        return Approval.reject(rest.strip())
    if word == "edit":
        return Approval.edit({**arguments, **json.loads(rest)})
    raise SystemExit(f"ANSWER must be approve, reject [reason] or edit <json>, not {text!r}")


async def resume(db: str, checkpoint_id: str, answer: str) -> RunResult | None:
    runner = build_runner(db)
    run_id = checkpoint_id.rpartition("/")[0]
    listed = {c.id: c for c in await runner.checkpoints(run_id)}
    if checkpoint_id not in listed:
        raise SystemExit(f"no checkpoint {checkpoint_id!r} in {db}")
    answers = {
        i.id: parse_answer(answer, i.info.get("arguments", {}))
        for i in listed[checkpoint_id].interrupts
    }
    say(f"resume {checkpoint_id} with {answer!r}")
    try:
        result = await runner.resume_invoke(checkpoint_id, answers)
    except CheckpointAlreadyResumed as exc:
        say(f"refused: {exc}")
        return None
    finally:
        await runner.store.close()
    report(result)
    return result


# --- the demo: both halves, the second in a child process -----------------------------------


def run_child(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, timeout=60, check=False
    )
    print(done.stdout, end="")
    if done.returncode != 0:
        raise SystemExit(f"the child process failed:\n{done.stderr}")
    return done.stdout


async def demo() -> None:
    with tempfile.TemporaryDirectory() as folder:
        db = str(Path(folder) / "refunds.db")
        paused = await start(db)
        if paused.checkpoint_id is None:  # a real model may not ask for a large refund
            assert MODEL_ID is not None, "the offline run should pause for approval"
            print("the run finished without asking for an approval: nothing to resume")
            return
        checkpoint = paused.checkpoint_id
        print("\n--- a second process resumes the run ---")
        second = run_child("resume", db, checkpoint, "approve")
        print("\n--- a third process tries the same checkpoint again ---")
        third = run_child("resume", db, checkpoint, "approve")
        assert "refused:" in third and "ran " not in third
        if MODEL_ID is None:
            # The second process made one model call and ran only the approved refund:
            # the first model call and lookup_order completed in the first process.
            assert second.count("model call") == 1, second
            assert "ran issue_refund('A-1042', 120)" in second
            assert "ran lookup_order" not in second
            # lookup_order's session value came back from the file; channel from the start.
            assert '"channel": "email"' in second and '"refunded": 120' in second
            assert "Update for the customer: refunded 120 EUR to Ada." in second


def main() -> None:
    args = sys.argv[1:]
    if not args:
        anyio.run(demo)
    elif args[0] == "start" and len(args) == 2:
        anyio.run(start, args[1])
    elif args[0] == "resume" and len(args) == 4:
        anyio.run(resume, args[1], args[2], args[3])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
