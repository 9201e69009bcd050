"""Quickstart: a weather assistant with two tools, run by a Runner, streaming its answer.

What it shows
- Two ``@tool`` functions. ``get_weather`` takes a ``ToolContext``: it reads the
  user's preferred units from the session values and counts ``lookups`` there.
- An instruction with ``{user_name}`` and ``{units}`` placeholders, filled from
  the session values when the agent runs.
- Several tool calls in one model response (they run concurrently; their
  results come back in call order).
- ``Runner.query(..., streaming=True)``: the final answer arrives as partial
  delta events, then once more as a complete, non-partial message.
- ``output_key``: the final answer is also stored in the session values, which
  the caller sees afterwards because the mapping is used as is.

How to run it
    python cookbook/quickstart.py                                  # offline, ScriptedModel
    ADK_MODEL=openai/gpt-4o-mini python cookbook/quickstart.py     # a real model via litellm

Offline, a ScriptedModel stands in for the LLM: a small function that reads the
request and answers the way a model would (first call the tools, then write
the answer from their results). With ADK_MODEL set to a litellm model id, the
agent gets that string instead and the serving layer resolves it to a
LiteLLMModel; the provider's API key must be in the environment
(e.g. OPENAI_API_KEY).
"""

from __future__ import annotations

import json
import os
from typing import Literal

import anyio

from adk import (
    AgentEvent,
    ChatModel,
    ChatModelAgent,
    ModelRequest,
    Runner,
    ScriptedModel,
    ToolCall,
    ToolContext,
    tool,
)

# --- tools -------------------------------------------------------------------

_FORECASTS = {  # degrees Celsius, sky
    "paris": (18.0, "light rain"),
    "oslo": (7.5, "clear"),
    "lisbon": (24.0, "sunny"),
}


@tool
async def get_weather(city: str, ctx: ToolContext) -> dict[str, object]:
    """Get the current weather in a city, in the user's preferred units.

    Args:
        city: The city name, e.g. "Paris".
    """
    forecast = _FORECASTS.get(city.strip().lower())
    if forecast is None:
        # The model receives "Error: tool 'get_weather' raised ValueError: ..." and can recover.
        raise ValueError(f"no weather data for {city!r}; known cities: Paris, Oslo, Lisbon")
    celsius, sky = forecast
    # Session values are shared by the whole run. An async tool runs on the event loop, so this
    # read-modify-write is safe even with concurrent calls (sync tools run in worker threads).
    ctx.set("lookups", ctx.get("lookups", 0) + 1)
    if ctx.get("units") == "imperial":
        return {
            "city": city,
            "temperature": round(celsius * 9 / 5 + 32, 1),
            "unit": "F",
            "sky": sky,
        }
    return {"city": city, "temperature": celsius, "unit": "C", "sky": sky}


@tool
def convert_temperature(value: float, to: Literal["C", "F"]) -> str:
    """Convert a temperature between Celsius and Fahrenheit.

    Args:
        value: The temperature to convert.
        to: The unit to convert to ("C" or "F").
    """
    converted = value * 9 / 5 + 32 if to == "F" else (value - 32) * 5 / 9
    return f"{converted:.1f} {to}"


# --- the offline model -----------------------------------------------------------


def offline_model(request: ModelRequest) -> str | list[ToolCall]:
    """Plays the LLM: call the tools first, then answer from their results."""
    last = request.messages[-1]
    if last.role == "user":
        return [
            ToolCall.of("get_weather", city="Paris"),
            ToolCall.of("get_weather", city="Oslo"),
            ToolCall.of("convert_temperature", value=30, to="F"),
        ]
    weather = [
        json.loads(m.content)
        for m in request.messages
        if m.role == "tool" and m.name == "get_weather" and not m.content.startswith("Error:")
    ]
    converted = next(m.content for m in request.messages if m.name == "convert_temperature")
    parts = [f"{w['city']}: {w['sky']}, {w['temperature']} {w['unit']}" for w in weather]
    return "; ".join(parts) + f". 30 C is {converted}."


def choose_model() -> ChatModel | str:
    model_id = os.environ.get("ADK_MODEL")
    if model_id:
        return model_id  # e.g. "openai/gpt-4o-mini"; resolved to a LiteLLMModel
    return ScriptedModel(offline_model, chunk_chars=6)


# --- the agent and the run ---------------------------------------------------------

agent = ChatModelAgent(
    "weather",
    model=choose_model(),
    description="Answers questions about the weather.",
    instruction=(
        "You are a concise weather assistant talking to {user_name}. "
        "get_weather already reports temperatures in the user's {units} units. "
        "Call the tools you need, then answer in one or two sentences."
    ),
    tools=[get_weather, convert_temperature],
    output_key="answer",
)


def show(event: AgentEvent, streaming_line: bool) -> bool:
    """Print one event readably; returns whether a streamed line is still open."""
    if event.partial:  # a streaming delta: print it as it comes
        if not streaming_line:
            print(f"[{event.agent_name}] ", end="")
        print(event.text, end="", flush=True)
        return True
    if streaming_line:
        print()  # the complete message follows its deltas; it was already printed
    if event.error is not None:
        print(f"!! {event.error.type}: {event.error.message}")
        return False
    message = event.message
    if message is None:
        return False
    if message.role == "assistant":
        if not streaming_line and message.content:
            print(f"[{event.agent_name}] {message.content}")
        for call in message.tool_calls:
            print(f"  -> {call.name}({call.arguments})")
    elif message.role == "tool":
        print(f"  <- {message.name}: {message.content}")
    return False


async def main() -> None:
    runner = Runner(agent)
    session = {"user_name": "Ada", "units": "metric"}
    question = "What's the weather in Paris and Oslo? And what is 30 C in Fahrenheit?"
    print(f"[user] {question}")
    streaming_line = False
    async for event in runner.query(question, session_values=session, streaming=True):
        streaming_line = show(event, streaming_line)
        if event.error is not None:
            raise SystemExit(1)
    if streaming_line:
        print()
    print(f"session values after the run: {session}")


if __name__ == "__main__":
    anyio.run(main)
