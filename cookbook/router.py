"""Router: a front-desk agent hands the conversation to specialists, who hand it back.

What it shows
- A router ``ChatModelAgent`` with ``sub_agents=[billing, tech_support]``. It gets a
  ``transfer_to_agent`` tool whose ``agent_name`` argument is an enum of the
  specialists, and an instruction paragraph listing them with their descriptions.
- Transfer ends the router's turn; the specialist runs next on the shared
  history (it sees the user's question, and the router's messages as
  "For context: [router] ..." user messages).
- Transfer to the parent: each specialist may hand the conversation back to the
  router (the agent it sits under). Billing answers its half of the question and
  transfers back; the router then sends the rest to tech support.
- Run paths follow the hand-offs: router, router/billing, back to router (a
  return cuts the path back), then router/tech_support.

How to run it
    python cookbook/router.py                                  # offline, ScriptedModel
    ADK_MODEL=openai/gpt-4o-mini python cookbook/router.py     # a real model via litellm

Offline, each agent gets a ScriptedModel whose function plays the LLM: it reads
the request (history, tool results) and answers the way a model would. With
ADK_MODEL set, every agent uses that litellm model id instead (the provider's
API key must be in the environment), and the route the model picks may differ.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import anyio

from adk import (
    AgentEvent,
    ChatModel,
    ChatModelAgent,
    Message,
    ModelRequest,
    Runner,
    ScriptedModel,
    ToolCall,
    tool,
)

MODEL_ID = os.environ.get("ADK_MODEL")  # e.g. "openai/gpt-4o-mini"; unset: offline

# --- tools of the specialists -------------------------------------------------

_INVOICES = {"INV-1042": {"id": "INV-1042", "amount": 49.0, "charges": 2, "status": "paid"}}


@tool
def lookup_invoice(invoice_id: str) -> dict[str, object]:
    """Look up an invoice by id.

    Args:
        invoice_id: The invoice id, e.g. "INV-1042".
    """
    invoice = _INVOICES.get(invoice_id.strip().upper())
    if invoice is None:
        raise ValueError(f"no invoice {invoice_id!r}")
    return invoice


@tool
def service_status(service: str) -> str:
    """Current status of one of our services ("web", "mobile-app", "api").

    Args:
        service: The service name.
    """
    statuses = {
        "web": "operational",
        "mobile-app": "degraded: login crashes on app version 3.2.0, fixed in 3.2.1",
        "api": "operational",
    }
    return statuses.get(service, f"unknown service {service!r}")


# --- offline stand-ins for the LLM ----------------------------------------------------


def transfer(dest: str) -> ToolCall:
    return ToolCall.of("transfer_to_agent", agent_name=dest)


def router_script(request: ModelRequest) -> str | ToolCall:
    """Send each part of the question to the right specialist, one at a time."""
    history = "\n".join(m.content for m in request.messages)
    if "[billing] said" not in history:
        return transfer("billing")
    if "[tech_support] said" not in history:
        return transfer("tech_support")
    return "Both of your issues have been handled."


def billing_script(request: ModelRequest) -> Message | ToolCall:
    """Look the invoice up, answer the billing half, hand the rest back to the router."""
    last = request.messages[-1]
    if last.role != "tool":
        return ToolCall.of("lookup_invoice", invoice_id="INV-1042")
    invoice = json.loads(last.content)
    return Message.assistant(
        f"Invoice {invoice['id']} was charged {invoice['charges']} times; I refunded the "
        f"duplicate charge of {invoice['amount']:.2f} EUR. The app crash is not a billing "
        "question, so I'm handing you back to the front desk.",
        tool_calls=[transfer("router")],  # text and a transfer in one reply
    )


def tech_script(request: ModelRequest) -> str | ToolCall:
    last = request.messages[-1]
    if last.role != "tool":
        return ToolCall.of("service_status", service="mobile-app")
    return f"Known issue ({last.content}). Please update the app to 3.2.1."


def model(script: Callable[[ModelRequest], Any]) -> ChatModel | str:
    """The litellm model id from ADK_MODEL, or the offline stand-in playing ``script``."""
    return MODEL_ID or ScriptedModel(script)


# --- the agents ------------------------------------------------------------------------

billing = ChatModelAgent(
    "billing",
    description="Invoices, charges, refunds and payment methods.",
    instruction=(
        "You handle billing questions only. Look invoices up with lookup_invoice. "
        "If the user also has a question that is not about billing, answer your part, "
        "then transfer back to the router."
    ),
    model=model(billing_script),
    tools=[lookup_invoice],
)

tech_support = ChatModelAgent(
    "tech_support",
    description="Crashes, login problems, outages and other technical issues.",
    instruction="You handle technical problems. Check service_status before answering.",
    model=model(tech_script),
    tools=[service_status],
)

router = ChatModelAgent(
    "router",
    description="The front desk: routes each request to the right specialist.",
    instruction=(
        "You are the front desk of ACME. Never answer questions yourself: transfer to "
        "the specialist for the part of the request that is not handled yet. When every "
        "part is handled, say so in one sentence."
    ),
    model=model(router_script),
    sub_agents=[billing, tech_support],
)


def show(event: AgentEvent) -> None:
    """Print one event on a line, prefixed with its run path."""
    where = f"[{'/'.join(event.run_path)}]"
    if event.error is not None:
        print(f"{where} !! {event.error.type}: {event.error.message}")
        return
    action = event.action
    note = ""
    if action is not None and action.transfer_to_agent is not None:
        note = f"   [transfer -> {action.transfer_to_agent.dest}]"
    message = event.message
    if message is None:
        if note:
            print(f"{where}{note}")
        return
    if message.role == "tool":
        print(f"{where}   <- {message.name}: {message.content}{note}")
        return
    if message.content:
        print(f"{where} {message.content}")
    for call in message.tool_calls:
        print(f"{where}   -> {call.name}({call.arguments})")


async def main() -> None:
    question = "I was charged twice for invoice INV-1042, and the mobile app crashes at login."
    print(f"[user] {question}")
    paths: list[str] = []
    async for event in Runner(router).query(question):
        show(event)
        path = "/".join(event.run_path)
        if path not in paths:
            paths.append(path)
        if event.error is not None:
            raise SystemExit(1)
    print("run paths:", ", ".join(paths))
    if MODEL_ID is None:  # the offline script takes exactly this route
        assert paths == [
            "router",
            "router/billing",
            "router/tech_support",
        ], paths


if __name__ == "__main__":
    anyio.run(main)
