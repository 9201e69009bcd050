"""Transfer between agents: the ``transfer_to_agent`` tool and the supervisor wrapper."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from adk.agents.base import Agent, AgentInput, BaseAgent
from adk.agents.flow import is_control
from adk.agents.history import TRANSFER_TOOL_NAME
from adk.agents.tree import sub_agents_of
from adk.events import AgentAction, AgentEvent
from adk.messages import Message, ToolCall
from adk.state.context import RunContext
from adk.tools.base import BaseTool, ToolContext


def transfer_result_text(dest: str) -> str:
    """The tool-result text of a successful transfer."""
    return f"Successfully transferred to agent [{dest}]"


class TransferTool(BaseTool):
    """``transfer_to_agent``: its ``agent_name`` argument is an enum of the reachable agents."""

    def __init__(self, targets: Sequence[str]) -> None:
        super().__init__(
            TRANSFER_TOOL_NAME,
            "Transfer the question to another agent.",
            {
                "type": "object",
                "properties": {
                    "agent_name": {
                        "type": "string",
                        "enum": list(targets),
                        "description": "the name of the agent to hand the conversation to",
                    }
                },
                "required": ["agent_name"],
            },
        )

    async def call(self, arguments: dict[str, Any], ctx: ToolContext) -> Any:
        """Send the transfer action; the agent's turn ends after this call."""
        dest = str(arguments["agent_name"])
        ctx.send_action(AgentAction.transfer(dest))
        return transfer_result_text(dest)


def transfer_instruction(agents: Sequence[Agent], parent: Agent | None) -> str:
    """The instruction paragraph that lists the agents a model may transfer to."""
    lines = [
        "You can hand the conversation to another agent with the "
        f"'{TRANSFER_TOOL_NAME}' tool when that agent is better suited to answer:"
    ]
    for agent in agents:
        lines.append(f"- {agent.name}: {agent.description or '(no description)'}")
    if parent is not None:
        lines.append(
            f"- {parent.name} (the agent that handed you this conversation): "
            f"{parent.description or '(no description)'}"
        )
    lines.append(
        f"When you transfer, call '{TRANSFER_TOOL_NAME}' and do not answer the question yourself."
    )
    return "\n".join(lines)


class TransferWhenDone(BaseAgent):
    """Wraps an agent so that it always transfers to ``to`` when it finishes normally.

    This is the supervisor pattern: workers hand control back to their
    supervisor after each task. No transfer happens after an exit, an
    interrupt, an error or a transfer the agent made itself. The wrapper
    takes the wrapped agent's name, description and sub-agents.
    """

    def __init__(self, agent: Agent, *, to: str) -> None:
        super().__init__(agent.name, agent.description)
        self.agent = agent
        self.to = to
        self.sub_agents = sub_agents_of(agent)

    async def run(self, input: AgentInput, ctx: RunContext) -> AsyncIterator[AgentEvent]:
        """Run the wrapped agent, then transfer to ``to`` unless it ended otherwise."""
        ended_otherwise = False
        stream = self.agent.run(input, ctx)
        try:
            async for event in stream:
                if event.run_path == ctx.run_path and (
                    event.error is not None or is_control(event.action)
                ):
                    ended_otherwise = True
                yield event
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()
        if ended_otherwise:
            return
        call = ToolCall.of(TRANSFER_TOOL_NAME, agent_name=self.to)
        yield self.message_event(ctx, Message.assistant(tool_calls=[call]))
        result = Message.tool(transfer_result_text(self.to), tool_call_id=call.id, name=call.name)
        yield self.event(ctx, message=result, action=AgentAction.transfer(self.to))
