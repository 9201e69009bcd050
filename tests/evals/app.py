"""A composite app for the trajectory and eval tests.

``root`` = a sequence of a parallel pair (``a`` calls the ``lookup`` tool,
``b`` answers) and ``c``, which calls an agent tool (``helper``) and then
``refund``, a tool that needs approval: a run pauses once, then finishes.
"""

from __future__ import annotations

from adk import (
    AgentTool,
    ChatModel,
    ChatModelAgent,
    ModelRequest,
    ParallelAgent,
    ScriptedModel,
    SequentialAgent,
    ToolCall,
    tool,
)


def clerk_script(request: ModelRequest) -> str | ToolCall:
    """``c``'s model: the helper first, then the refund, then the answer."""
    last = request.messages[-1]
    if last.role == "tool" and last.name == "helper":
        return ToolCall(id="call_refund", name="refund", arguments='{"order": "A1"}')
    if last.role == "tool":
        return "All refunded."
    return ToolCall(id="call_helper", name="helper", arguments='{"request": "hi"}')


def build(model: ChatModel | None = None, *, shipped: str = "shipped") -> SequentialAgent:
    """The app; every agent uses ``model`` when given (a replay), else its own script.

    ``shipped``: what ``lookup`` answers (change it to change the code).
    """

    @tool(requires_approval=True)
    def refund(order: str) -> str:
        """Refund an order."""
        return f"refunded {order}"

    @tool
    def lookup(order: str) -> str:
        """Look an order up."""
        return f"{order}: {shipped}"

    def pick(script: object) -> ChatModel:
        return model if model is not None else ScriptedModel(script)  # type: ignore[arg-type]

    helper = ChatModelAgent("helper", model=pick(["helper says hi"]), description="Helps.")
    lookup_call = ToolCall(id="call_lookup", name="lookup", arguments='{"order": "A1"}')
    a = ChatModelAgent("a", model=pick([lookup_call, "a done"]), tools=[lookup])
    b = ChatModelAgent("b", model=pick(["b done"]))
    c = ChatModelAgent("c", model=pick(clerk_script), tools=[refund, AgentTool(helper)])
    return SequentialAgent("root", [ParallelAgent("par", [a, b]), c])
