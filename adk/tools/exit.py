"""ExitTool: lets the model end the whole run with a final result."""

from __future__ import annotations

from typing import Any

from adk.events import AgentAction
from adk.tools.base import BaseTool, ToolContext


class ExitTool(BaseTool):
    """A tool named ``exit``: its ``final_result`` argument becomes the run's last message.

    The tool-result event carries the exit action; composite agents stop and
    the run ends.
    """

    def __init__(self, name: str = "exit") -> None:
        super().__init__(
            name,
            "Exit the agent process and return the final result.",
            {
                "type": "object",
                "properties": {
                    "final_result": {"type": "string", "description": "the final result to return"}
                },
                "required": ["final_result"],
            },
        )

    async def call(self, arguments: dict[str, Any], ctx: ToolContext) -> Any:
        """Send the exit action and return the final result."""
        ctx.send_action(AgentAction.exit_run())
        return arguments["final_result"]
