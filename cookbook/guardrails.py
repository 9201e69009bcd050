"""Guardrails and middleware: a support agent that logs, redacts, caches, and refuses.

What it shows
- ``Runner(middleware=[...])``: a logging middleware around every model and
  tool call of the run, and a cache that answers a repeated question without
  calling the model.
- ``ChatModelAgent(middleware=[...])``: a redaction middleware on the agent's
  tool calls (card numbers never reach the model).
- ``Runner(input_guardrails=[...])``: a check on the user's message that runs
  while the first model call is in flight; a trip cancels that call and ends
  the run with a ``GuardrailTripped`` error event.
- ``ChatModelAgent(output_guardrails=[...])``: a check on the answer before it
  is delivered.

How to run it
    python cookbook/guardrails.py                                  # offline, ScriptedModel
    ADK_MODEL=openai/gpt-4o-mini python cookbook/guardrails.py     # a real model via litellm

Offline, a ScriptedModel answers the way a model would (look the order up,
then answer from the result). With ADK_MODEL set to a litellm model id the
agent uses that model; the provider's API key must be in the environment.
"""

from __future__ import annotations

import os
import re
from typing import Any

import anyio

from adk import (
    ChatModel,
    ChatModelAgent,
    GuardrailResult,
    Message,
    Middleware,
    ModelRequest,
    ModelResponse,
    RunContext,
    Runner,
    ScriptedModel,
    ToolCall,
    ToolCallInfo,
    guardrail,
    tool,
)

# --- a tool ----------------------------------------------------------------------


@tool
def find_order(order_id: str) -> dict[str, str]:
    """Look an order up by its id.

    Args:
        order_id: The order id, e.g. "A-17".
    """
    return {"id": order_id, "status": "shipped", "paid_with": "card 4111 1111 1111 1111"}


# --- middleware ------------------------------------------------------------------


class Log(Middleware):
    """Prints every model and tool call of the run."""

    async def model_call(self, request: ModelRequest, call_next: Any) -> ModelResponse:
        response: ModelResponse = await call_next(request)
        calls = [call.name for call in response.message.tool_calls]
        print(f"  [log] model call by {request.agent_name}: {calls or 'answer'}")
        return response

    async def after_tool(self, call: ToolCallInfo, result: Any) -> Any:
        print(f"  [log] tool {call.name}({call.arguments})")
        return result


class Cache(Middleware):
    """Answers a question asked before (same conversation) without calling the model."""

    def __init__(self) -> None:
        self.answers: dict[tuple[str, ...], ModelResponse] = {}

    async def model_call(self, request: ModelRequest, call_next: Any) -> ModelResponse:
        key = tuple(f"{m.role}:{m.content}" for m in request.messages)
        if key not in self.answers:
            self.answers[key] = await call_next(request)
        else:
            print("  [cache] answered from the cache")
        return self.answers[key]


CARD = re.compile(r"\b(?:\d{4} ){3}\d{4}\b")


class RedactCards(Middleware):
    """Masks card numbers in tool results before the model reads them."""

    async def after_tool(self, call: ToolCallInfo, result: Any) -> Any:
        if isinstance(result, dict):
            return {k: CARD.sub("**** redacted ****", str(v)) for k, v in result.items()}
        return result


# --- guardrails ------------------------------------------------------------------


@guardrail
async def on_topic(ctx: RunContext, messages: list[Message]) -> GuardrailResult:
    """Refuses requests that are not about orders (a real one might ask a small model)."""
    text = messages[-1].content.lower()
    tripped = "order" not in text
    return GuardrailResult(tripped=tripped, info="not about an order" if tripped else None)


@guardrail
def no_card_numbers(ctx: RunContext, answer: Message) -> bool:
    """True (tripped) if the answer would show a card number."""
    return bool(CARD.search(answer.content))


# --- the model -------------------------------------------------------------------


def offline_model(request: ModelRequest) -> str | ToolCall:
    last = request.messages[-1]
    if last.role == "tool":
        status = "shipped" if "shipped" in last.content else "unknown"
        return f"Your order A-17 is {status}."
    return ToolCall.of("find_order", order_id="A-17")


def model() -> ChatModel | str:
    return os.environ.get("ADK_MODEL") or ScriptedModel(offline_model)


agent = ChatModelAgent(
    "support",
    model=model(),
    instruction="You help customers with their orders. Use find_order.",
    tools=[find_order],
    middleware=[RedactCards()],
    output_guardrails=[no_card_numbers],
)
runner = Runner(agent, middleware=[Log(), Cache()], input_guardrails=[on_topic])


async def ask(question: str) -> None:
    print(f"user: {question}")
    async for event in runner.query(question):
        if event.error is not None:
            print(f"refused: {event.error.type}: {event.error.message}")
        elif event.message is not None and event.message.role == "tool":
            print(f"  tool result: {event.text}")
        elif event.message is not None and not event.message.tool_calls:
            print(f"assistant: {event.text}")


async def main() -> None:
    await ask("Where is my order A-17?")
    await ask("Where is my order A-17?")  # the same conversation again: cached
    await ask("Write me a poem about the sea.")


if __name__ == "__main__":
    anyio.run(main)
