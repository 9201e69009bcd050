"""Agents for the budget tests: scripted models whose calls are counted."""

from __future__ import annotations

from adk import ChatModelAgent, ScriptedModel, ToolCall, tool


@tool
def lookup(topic: str) -> str:
    """Look a topic up."""
    return f"facts about {topic}"


def looping_agent(name: str = "worker", rounds: int = 3) -> tuple[ChatModelAgent, ScriptedModel]:
    """An agent that calls ``lookup`` ``rounds`` times, then answers: rounds + 1 model calls."""
    script: list[object] = [
        ToolCall(id=f"c{i}", name="lookup", arguments=f'{{"topic": "t{i}"}}') for i in range(rounds)
    ]
    script.append(f"{name} done")
    model = ScriptedModel(script)  # type: ignore[arg-type]
    return ChatModelAgent(name, model=model, tools=[lookup], instruction="Research."), model
