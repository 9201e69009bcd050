"""Plan, execute, replan: a planner writes a plan, then a loop executes and revises it.

What it shows
- ``SequentialAgent("plan_and_solve", [planner, LoopAgent(...), report])``: the
  planner runs once, then the loop of ``executor`` and ``replanner`` runs until
  the plan is done, then a small report agent runs.
- The plan flows through session values: the planner stores its answer with
  ``output_key="plan"``; the executor's and replanner's instructions read it
  through the ``{plan}`` placeholder (filled again at every iteration); the
  executor stores its step result with ``output_key="last_result"``; the
  replanner rewrites ``plan`` with its ``update_plan`` tool.
- Ending the loop: the replanner's ``finish`` tool sends
  ``AgentAction.break_loop_from(...)`` through ``ToolContext.send_action``. The
  loop ends after the replanner's turn, marks the action ``done=True`` with the
  iteration it stopped at, and the sequence goes on with ``report``. An
  ``ExitTool`` would be wrong here: exit ends the whole run, so ``report`` (and
  anything else after the loop) would never run.
- ``finish`` is ``return_directly``: the tool result ends the replanner's turn at
  once. Without it the replanner would call its model once more after the break
  (a loop stops only after the breaking child's remaining events).
- ``max_iterations=6`` bounds the loop in case a model never calls ``finish``.

How to run it
    python cookbook/plan_execute_replan.py                                  # offline
    ADK_MODEL=openai/gpt-4o-mini python cookbook/plan_execute_replan.py     # a real model

Offline, each agent gets a ScriptedModel whose function plays the LLM. The
executor and replanner read the current plan from their system message, where
the ``{plan}`` placeholder put it, just as a real model would. With ADK_MODEL
set to a litellm model id, every model-backed agent uses that model instead.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio

from adk import (
    AgentAction,
    AgentEvent,
    AgentInput,
    BaseAgent,
    ChatModel,
    ChatModelAgent,
    LoopAgent,
    ModelRequest,
    RunContext,
    Runner,
    ScriptedModel,
    SequentialAgent,
    ToolCall,
    ToolContext,
    tool,
)

MODEL_ID = os.environ.get("ADK_MODEL")  # e.g. "openai/gpt-4o-mini"; unset: offline

# --- tools ----------------------------------------------------------------------------

_POPULATION = {"france": 68_400_000, "germany": 84_500_000, "italy": 58_900_000}


@tool
def population(country: str) -> int:
    """The population of a country.

    Args:
        country: The country name, e.g. "France".
    """
    value = _POPULATION.get(country.strip().lower())
    if value is None:
        raise ValueError(f"no data for {country!r}")
    return value


@tool
def add(numbers: list[int]) -> int:
    """Add integers.

    Args:
        numbers: The integers to add.
    """
    return sum(numbers)


@tool(return_directly=True)
def update_plan(steps: list[str], ctx: ToolContext) -> str:
    """Replace the plan with the steps that remain to be done.

    Args:
        steps: The remaining steps, next one first.
    """
    ctx.set("plan", "\n".join(f"{i}. {step}" for i, step in enumerate(steps, 1)))
    return f"plan updated, {len(steps)} step(s) left"


@tool(return_directly=True)
def finish(answer: str, ctx: ToolContext) -> str:
    """Finish: the plan is done. Give the final answer for the user.

    Args:
        answer: The final answer.
    """
    ctx.set("answer", answer)
    # Break the enclosing LoopAgent (not the whole run, as exit would).
    ctx.send_action(AgentAction.break_loop_from(ctx.agent_name))
    return answer


# --- offline stand-ins for the LLM -------------------------------------------------------


def numbered_steps(text: str) -> list[str]:
    """The "1. do this" lines of a text."""
    return re.findall(r"^\d+\. (.+)$", text, re.M)


def planner_script(request: ModelRequest) -> str:
    return (
        "1. Look up the population of France\n"
        "2. Look up the population of Germany\n"
        "3. Add the two populations"
    )


def executor_script(request: ModelRequest) -> str | ToolCall:
    """Do the first step of the plan in the system message."""
    step = numbered_steps(request.messages[0].content)[0]
    last = request.messages[-1]
    country = re.search(r"population of (\w+)", step)
    if last.role == "tool":
        if country is not None:
            return f"{country.group(1)} has {int(last.content):,} inhabitants."
        return f"Together they have {int(last.content):,} inhabitants."
    if country is not None:
        return ToolCall.of("population", country=country.group(1))
    # The executor's own earlier tool results are in its history (they keep their role).
    found = [json.loads(m.content) for m in request.messages if m.name == "population"]
    return ToolCall.of("add", numbers=found)


def replanner_script(request: ModelRequest) -> ToolCall:
    """Drop the step just done; finish when nothing is left."""
    system = request.messages[0].content
    remaining = numbered_steps(system)[1:]
    if remaining:
        return ToolCall.of("update_plan", steps=remaining)
    last_result = system.split("Result of the step just executed: ", 1)[1].splitlines()[0]
    return ToolCall.of("finish", answer=last_result)


def model(script: Callable[[ModelRequest], Any]) -> ChatModel | str:
    """The litellm model id from ADK_MODEL, or the offline stand-in playing ``script``."""
    return MODEL_ID or ScriptedModel(script)


# --- the agents ------------------------------------------------------------------------------

planner = ChatModelAgent(
    "planner",
    instruction=(
        "Break the user's request into at most 4 short steps, one per line, numbered "
        "'1. ', '2. '... Each step must be doable with one tool: population(country) or "
        "add(numbers). Reply with the numbered steps only."
    ),
    model=model(planner_script),
    output_key="plan",
)

executor = ChatModelAgent(
    "executor",
    instruction=(
        "You execute plans one step at a time.\n"
        "The plan (steps not done yet, the next one first):\n{plan}\n\n"
        "Do only the first step, with the tools, and report its result in one sentence."
    ),
    model=model(executor_script),
    tools=[population, add],
    output_key="last_result",
)

replanner = ChatModelAgent(
    "replanner",
    instruction=(
        "You track progress on a plan.\n"
        "The plan (steps not done yet, the step just executed first):\n{plan}\n\n"
        "Result of the step just executed: {last_result}\n\n"
        "If no steps remain after the one just executed, call finish with the final "
        "answer to the user's request. Otherwise call update_plan with the remaining "
        "steps (adjust them if the result calls for it)."
    ),
    model=model(replanner_script),
    tools=[update_plan, finish],
)


class Report(BaseAgent):
    """Reports how the loop ended: the break action says at which iteration."""

    async def run(self, input: AgentInput, ctx: RunContext) -> AsyncIterator[AgentEvent]:
        breaks = [e.action.break_loop for e in ctx.events if e.action and e.action.break_loop]
        if breaks and breaks[-1].done:
            text = f"Finished in {breaks[-1].current_iterations} iteration(s): {ctx.get('answer')}"
        else:
            text = "The loop hit max_iterations before the plan was finished."
        yield self.text_event(ctx, text)


root = SequentialAgent(
    "plan_and_solve",
    [
        planner,
        LoopAgent("execute_loop", [executor, replanner], max_iterations=6),
        Report("report"),
    ],
)


def show(event: AgentEvent) -> None:
    """Print one event on a line, prefixed with its run path."""
    where = f"[{'/'.join(event.run_path)}]"
    if event.error is not None:
        print(f"{where} !! {event.error.type}: {event.error.message}")
        return
    action = event.action
    note = ""
    if action is not None and action.break_loop is not None:
        brk = action.break_loop
        note = f"   [break loop: done={brk.done}, at iteration {brk.current_iterations}]"
    message = event.message
    if message is None:
        return
    if message.role == "tool":
        print(f"{where}   <- {message.name}: {message.content}{note}")
        return
    if message.content:
        print(f"{where} {message.content}".replace("\n", "\n" + " " * (len(where) + 1)))
    for call in message.tool_calls:
        print(f"{where}   -> {call.name}({call.arguments})")


async def main() -> None:
    question = "How many people live in France and Germany together?"
    print(f"[user] {question}")
    session: dict[str, Any] = {}
    async for event in Runner(root).query(question, session_values=session):
        show(event)
        if event.error is not None:
            raise SystemExit(1)
    print(f"answer: {session.get('answer')}")
    if MODEL_ID is None:
        assert session["answer"] == "Together they have 152,900,000 inhabitants."
        assert session["plan"] == "1. Add the two populations"  # the last plan the loop saw


if __name__ == "__main__":
    anyio.run(main)
