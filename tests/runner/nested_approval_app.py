"""An app with an approval inside an agent tool inside a parallel agent inside a loop.

Used by the cross-process test: one process runs it until it pauses, another
(``python -m tests.runner.nested_approval_app resume DB CHECKPOINT ANSWERS``)
resumes it from the SQLite file and prints what it executed, as JSON.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import anyio

from adk import (
    AgentTool,
    Approval,
    ChatModelAgent,
    LoopAgent,
    ModelRequest,
    ParallelAgent,
    Runner,
    ScriptedModel,
    ToolCall,
    tool,
)

EXECUTED: list[str] = []


def build_runner(db: str) -> Runner:
    @tool(requires_approval=True)
    def deploy(service: str) -> str:
        """Deploy a service."""
        EXECUTED.append(f"deploy:{service}")
        return f"deployed {service}"

    def inner_script(request: ModelRequest) -> Any:
        EXECUTED.append(f"model:{request.agent_path[-1]}:{request.call_id.split(':', 1)[1]}")
        last = request.messages[-1]
        if last.role == "tool":
            return f"deployer: {last.content}"
        return ToolCall.of("deploy", service=last.content)

    deployer = ChatModelAgent("deployer", model=ScriptedModel(inner_script), tools=[deploy])

    def worker_script(request: ModelRequest) -> Any:
        EXECUTED.append(f"model:{request.agent_name}")
        last = request.messages[-1]
        if last.role == "tool":
            return f"{request.agent_name} saw: {last.content}"
        return ToolCall.of("deployer", request=f"svc-{request.agent_name}")

    workers = [
        ChatModelAgent(name, model=ScriptedModel(worker_script), tools=[AgentTool(deployer)])
        for name in ("east", "west", "north")
    ]
    loop = LoopAgent("release", [ParallelAgent("regions", workers)], max_iterations=1)
    return Runner(loop, checkpoint_store=db)


async def resume(db: str, checkpoint_id: str, answers: dict[str, Any]) -> dict[str, Any]:
    decoded = {
        key: Approval.approve() if value == "approve" else Approval.reject(value)
        for key, value in answers.items()
    }
    result = await build_runner(db).resume_invoke(checkpoint_id, decoded)
    return {
        "executed": EXECUTED,
        "answers": sorted(e.text for e in result.events if e.message and e.text),
        "pending": [i.id for i in result.interrupts],
        "checkpoint": result.checkpoint_id,
    }


if __name__ == "__main__":
    _, command, db_path, checkpoint, answers_json = sys.argv
    assert command == "resume"
    print(json.dumps(anyio.run(resume, db_path, checkpoint, json.loads(answers_json))))
