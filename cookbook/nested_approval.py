"""Nested approval: an approval deep inside an agent tool, inside a parallel fan-out.

What it shows
- A ``deployer`` agent (a ChatModelAgent) runs checks, then calls ``deploy``,
  which is marked ``requires_approval=True``. Two region agents, ``eu`` and
  ``us``, each use the deployer as a tool (``AgentTool``); they run in a
  ``ParallelAgent`` next to a ``notes`` agent that needs nobody's approval, and
  a ``reporter`` runs after the parallel step:

      release (SequentialAgent)
      +-- regions (ParallelAgent)
      |   +-- eu     --AgentTool--> deployer --> run_checks, deploy (needs approval)
      |   +-- us     --AgentTool--> deployer --> run_checks, deploy (needs approval)
      |   +-- notes
      +-- reporter

- The interrupt goes out through the agent tool: the run pauses with two
  pending approvals, one per region, as a flat list. Each has a stable id and
  an address, the path of agent and tool-call segments down to it:
  release / regions / eu / deployer:<call> / deployer / deploy:<call>.
- Resuming with an answer for ``eu`` only: eu's deployment runs and eu
  finishes; ``us`` had no answer, so it pauses again, with the same interrupt
  id, in a new checkpoint. A second resume edits us's arguments (a canary
  version) and the run finishes with the reporter.
- Counters prove that nothing completed ran again: the checks, the notes
  agent, and every model call that had answered before a pause.

How to run it
    python cookbook/nested_approval.py                                  # offline
    ADK_MODEL=openai/gpt-4o-mini python cookbook/nested_approval.py     # a real model

Offline, ScriptedModels play the LLMs. With ADK_MODEL set to a litellm model id
every agent uses that model; the first round then approves the first pending
interrupt only and later rounds approve whatever is pending.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from typing import Any

import anyio

from adk import (
    AgentEvent,
    AgentTool,
    Approval,
    ChatModel,
    ChatModelAgent,
    InterruptInfo,
    ModelRequest,
    ParallelAgent,
    Runner,
    ScriptedModel,
    SequentialAgent,
    ToolCall,
    tool,
)

MODEL_ID = os.environ.get("ADK_MODEL")  # e.g. "openai/gpt-4o-mini"; unset: offline
RAN: Counter[str] = Counter()  # every tool call and model call that really happened


# --- tools of the inner agent ------------------------------------------------------------


@tool
def run_checks(service: str) -> str:
    """Run the pre-deployment checks of a service.

    Args:
        service: The service to check, e.g. "api-eu".
    """
    RAN[f"run_checks {service}"] += 1
    return f"{service}: 42 checks green"


@tool(requires_approval=True)
def deploy(service: str, version: str) -> str:
    """Deploy a version of a service to production.

    Args:
        service: The service, e.g. "api-eu".
        version: The version to deploy, e.g. "2.0".
    """
    RAN[f"deploy {service} {version}"] += 1
    return f"{service} {version} is live"


# --- offline stand-ins for the LLMs ---------------------------------------------------------


def deployer_script(request: ModelRequest) -> str | ToolCall:
    RAN["model deployer"] += 1
    service = [m for m in request.messages if m.role == "user"][-1].content
    results = [m for m in request.messages if m.role == "tool"]
    if not results:
        return ToolCall.of("run_checks", service=service)
    if len(results) == 1:
        return ToolCall.of("deploy", service=service, version="2.0")
    return f"deployer: {results[-1].content}"


def region_script(request: ModelRequest) -> str | ToolCall:
    RAN[f"model {request.agent_name}"] += 1
    last = request.messages[-1]
    if last.role == "tool":
        return f"{request.agent_name} done ({last.content})"
    return ToolCall.of("deployer", request=f"api-{request.agent_name}")


def notes_script(request: ModelRequest) -> str:
    RAN["model notes"] += 1
    return "Release notes for 2.0 are written."


def reporter_script(request: ModelRequest) -> str:
    RAN["model reporter"] += 1
    return "Report: eu and us are on 2.0 (us as a canary); notes are published."


def model(script: Callable[[ModelRequest], Any]) -> ChatModel | str:
    return MODEL_ID or ScriptedModel(script)


# --- the agents ----------------------------------------------------------------------------------

deployer = ChatModelAgent(
    "deployer",
    description="Deploys one service: runs its checks, then deploys version 2.0.",
    instruction=(
        "You get a service name. Call run_checks for it, then deploy it with version "
        "2.0, then say in one sentence what happened."
    ),
    model=model(deployer_script),
    tools=[run_checks, deploy],
)


def region(name: str) -> ChatModelAgent:
    # The same deployer agent object serves both regions: agents hold no run state.
    return ChatModelAgent(
        name,
        instruction=f"Deploy the service api-{name} with the deployer tool, then report briefly.",
        model=model(region_script),
        tools=[AgentTool(deployer, forward_events=True)],
    )


release = SequentialAgent(
    "release",
    [
        ParallelAgent(
            "regions",
            [
                region("eu"),
                region("us"),
                ChatModelAgent(
                    "notes",
                    instruction="Write one sentence of release notes for 2.0.",
                    model=model(notes_script),
                ),
            ],
        ),
        ChatModelAgent(
            "reporter",
            instruction="Summarise the release in one sentence.",
            model=model(reporter_script),
        ),
    ],
)

# --- running it ---------------------------------------------------------------------------------


def show(event: AgentEvent) -> None:
    where = "/".join(event.run_path)
    message = event.message
    if message is not None and message.role == "tool":
        print(f"  {where:<28} <- {message.name}: {message.content}")
    elif message is not None:
        for call in message.tool_calls:
            print(f"  {where:<28} -> {call.name}({call.arguments})")
        if message.content:
            print(f"  {where:<28} {message.content}")


def show_pending(interrupts: tuple[InterruptInfo, ...]) -> None:
    for pending in interrupts:
        info = pending.info
        print(f"  pending {pending.id}: {info['tool']}({info['arguments']})")
        print(f"    address: {' / '.join(pending.address)}")


def show_counts(title: str) -> None:
    print(f"  {title}: " + ", ".join(f"{name} x{count}" for name, count in sorted(RAN.items())))


def region_of(pending: InterruptInfo) -> str:
    return pending.address[2]  # release / regions / <region> / ...


async def main() -> None:
    runner = Runner(release)

    print("== round 1: run until the approvals")
    result = await runner.invoke("Release version 2.0")
    for event in result.events:
        show(event)
    show_pending(result.interrupts)
    show_counts("ran so far")
    first = {region_of(p): p for p in result.interrupts}
    after_round_1 = RAN.copy()
    if result.checkpoint_id is None:  # a real model may deploy nothing
        assert MODEL_ID is not None, "the offline run should pause for approvals"
        print(f"\nthe run finished without asking for approvals: {result.text}")
        return

    print("\n== round 2: approve eu only; us gets no answer and pauses again")
    target = first.get("eu") or result.interrupts[0]
    assert result.checkpoint_id is not None
    result = await runner.resume_invoke(result.checkpoint_id, {target.id: Approval.approve()})
    for event in result.events:
        show(event)
    show_pending(result.interrupts)
    show_counts("ran so far")
    second = {region_of(p): p for p in result.interrupts}
    after_round_2 = RAN.copy()

    print("\n== round 3: edit us's arguments (a canary version) and finish")
    resumes = 1
    while result.checkpoint_id is not None:
        answers = {
            p.id: Approval.edit({**p.info["arguments"], "version": "2.0-canary"})
            if region_of(p) == "us"
            else Approval.approve()
            for p in result.interrupts
        }
        result = await runner.resume_invoke(result.checkpoint_id, answers)
        for event in result.events:
            show(event)
        resumes += 1
    show_counts("ran in total")
    print(f"\nfinal answer: {result.text}")

    if MODEL_ID is None:
        assert set(first) == {"eu", "us"}
        eu, us = first["eu"], first["us"]
        assert eu.address[:4] == ("release", "regions", "eu", eu.address[3])
        assert eu.address[3].startswith("deployer:") and eu.address[4] == "deployer"
        assert eu.address[5].startswith("deploy:")
        # Round 1: everything up to the approvals ran once; nothing was deployed.
        assert after_round_1 == {
            "model eu": 1,
            "model us": 1,
            "model notes": 1,
            "model deployer": 4,  # two per region: run_checks, then deploy
            "run_checks api-eu": 1,
            "run_checks api-us": 1,
        }
        # Round 2: only eu's deployment and the model calls after it ran (+1 deployer, +1 eu).
        assert second == {"us": us}  # the unanswered interrupt keeps its id
        assert after_round_2 - after_round_1 == {
            "deploy api-eu 2.0": 1,
            "model deployer": 1,
            "model eu": 1,
        }
        # Round 3: us's edited deployment, its follow-up model calls, then the reporter.
        assert RAN - after_round_2 == {
            "deploy api-us 2.0-canary": 1,
            "model deployer": 1,
            "model us": 1,
            "model reporter": 1,
        }
        assert resumes == 2 and result.text.startswith("Report:")


if __name__ == "__main__":
    anyio.run(main)
