"""The toolset a ChatModelAgent offers its model in one run, built once and cached on the agent.

What the model sees depends on where the agent sits in the run's tree (the
transfer tool and its instruction name the agents it may hand over to) and on
its structured-output mode (a ``final_result`` tool, or a JSON prompt). Agents
are reusable values, so each distinct toolset is built once per agent and
kept: a turn only looks it up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from adk.agents.history import TRANSFER_TOOL_NAME
from adk.agents.output import FINAL_RESULT_TOOL, FinalResultTool
from adk.agents.transfer import TransferTool, transfer_instruction
from adk.agents.tree import is_workflow, known_tree
from adk.agents.turn import Toolset
from adk.state.context import RunContext
from adk.tools.base import Tool

if TYPE_CHECKING:
    from adk.agents.chat_model import ChatModelAgent


def agent_toolset(agent: ChatModelAgent, ctx: RunContext) -> Toolset:
    """Tools and instruction suffix of ``agent`` in this run (transfer targets: from the tree)."""
    tree = known_tree(ctx)
    parent = tree.parent_of(agent.name) if tree is not None else None
    if parent is not None and (agent.disallow_transfer_to_parent or is_workflow(parent)):
        parent = None
    if not agent.sub_agents and parent is None:
        plain = agent._plain
        if plain is None:
            plain = agent._plain = make_toolset(agent, agent.tools, "")
        return plain
    key = parent.name if parent is not None else None
    toolset = agent._toolsets.get(key)
    if toolset is None:
        targets = [sub.name for sub in agent.sub_agents]
        if parent is not None:
            targets.append(parent.name)
        tools = {**agent.tools, TRANSFER_TOOL_NAME: TransferTool(targets)}
        toolset = make_toolset(agent, tools, transfer_instruction(agent.sub_agents, parent))
        agent._toolsets[key] = toolset
    return toolset


def make_toolset(agent: ChatModelAgent, tools: dict[str, Tool], instruction: str) -> Toolset:
    """A toolset plus what the output mode adds: the final_result tool, or the JSON prompt."""
    output = agent.output
    if output is not None:
        mode = agent.mode
        if mode == "tool":
            tools = {**tools, FINAL_RESULT_TOOL: FinalResultTool(output)}
        elif mode == "prompted":
            prompt = output.prompt()
            instruction = f"{instruction}\n\n{prompt}" if instruction else prompt
    return Toolset(tools, instruction)
