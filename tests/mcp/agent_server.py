"""adk agents served over MCP (stdio, or ``http PORT``), run by the tests as a subprocess."""

from __future__ import annotations

import sys

from adk import ChatModelAgent, ModelRequest, ScriptedModel, ToolCall, tool
from adk.errors import ModelError
from adk.mcp import serve


def _echo(request: ModelRequest) -> str:
    return f"echo: {request.messages[-1].content}"


def _broken(request: ModelRequest) -> ModelError:
    return ModelError("the model is down")


@tool
def wire_money(amount: int) -> str:
    """Send money (needs a person's approval)."""
    return f"sent {amount}"


wire_money.requires_approval = True

echo = ChatModelAgent("echo", description="Repeats the request.", model=ScriptedModel(_echo))
broken = ChatModelAgent("broken", description="Always fails.", model=ScriptedModel(_broken))
banker = ChatModelAgent(
    "banker",
    description="Moves money.",
    model=ScriptedModel(lambda request: ToolCall.of("wire_money", amount=5)),
    tools=[wire_money],
)

if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "http":
        serve(
            [echo, broken, banker],
            name="agents",
            transport="streamable-http",
            port=int(sys.argv[2]),
        )
    else:
        serve([echo, broken, banker], name="agents")
