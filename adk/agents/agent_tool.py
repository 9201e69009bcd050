"""AgentTool: any agent used as a tool by another agent."""

from __future__ import annotations

from contextlib import aclosing
from typing import Any

from pydantic import BaseModel

from adk.agents.base import Agent, AgentInput
from adk.agents.flow import run_agent
from adk.agents.history import input_messages
from adk.agents.output import OutputSpec
from adk.agents.tree import AgentTree
from adk.errors import AgentRunError, ArgumentTypeError
from adk.events import AgentEvent, ErrorInfo, InterruptInfo
from adk.messages import Message
from adk.state.interrupts import Interrupt
from adk.tools.base import BaseTool, ToolContext

_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"request": {"type": "string", "description": "what you ask the agent to do"}},
    "required": ["request"],
}


class AgentTool(BaseTool):
    """Wraps ``agent`` as a tool: the tool's result is the agent's final message.

    - Name and description default to the agent's.
    - Arguments: ``{"request": string}`` by default, or the fields of
      ``input_model`` (a pydantic model), sent to the agent as JSON.
    - ``full_history=True`` gives the inner agent the calling run's history
      (rewritten for it) before the request, instead of the request alone.
    - ``forward_events=True`` forwards the inner agent's events to the outer
      stream while it runs; their run paths continue the caller's path.
    - An inner agent with an ``output_type`` gives the tool its validated
      value, returned to the calling model as JSON; the tool's description
      ends with that value's JSON Schema.
    - The inner run shares session values with the outer run. Inner exit,
      transfer and break-loop stay inside the tool; an inner error becomes a
      tool error the calling model reads.
    """

    def __init__(
        self,
        agent: Agent,
        *,
        name: str | None = None,
        description: str | None = None,
        input_model: type[BaseModel] | None = None,
        full_history: bool = False,
        forward_events: bool = False,
        return_directly: bool = False,
    ) -> None:
        if not isinstance(agent, Agent):
            raise ArgumentTypeError(
                f"AgentTool needs an agent (name, description, run), "
                f"got {type(agent).__name__} {agent!r}"
            )
        if input_model is not None and not (
            isinstance(input_model, type) and issubclass(input_model, BaseModel)
        ):
            raise ArgumentTypeError(
                f"AgentTool({agent.name!r}): input_model must be a pydantic model class, "
                f"got {type(input_model).__name__} {input_model!r}"
            )
        schema = _REQUEST_SCHEMA
        if input_model is not None:
            schema = input_model.model_json_schema()
            schema.pop("title", None)
        output = getattr(agent, "output", None)
        self.output = output if isinstance(output, OutputSpec) else None
        """The inner agent's compiled ``output_type``: the tool then returns its value as JSON."""
        text = description if description is not None else agent.description
        if self.output is not None:
            text = f"{text}\n\n{self.output.describe()}" if text else self.output.describe()
        super().__init__(name or agent.name, text, schema, return_directly=return_directly)
        self.agent = agent
        self.input_model = input_model
        self.full_history = full_history
        self.emits_events = forward_events
        # The inner agent's own tree: transfers inside it resolve here, not in the caller's tree.
        self._tree = AgentTree(agent)

    def request_text(self, arguments: dict[str, Any]) -> str:
        """The user message sent to the inner agent for ``arguments``."""
        if self.input_model is not None:
            return self.input_model.model_validate(arguments).model_dump_json()
        return str(arguments["request"])

    async def call(self, arguments: dict[str, Any], ctx: ToolContext) -> Any:
        """Run the inner agent to its end and return its final message's text."""
        messages = [Message.user(self.request_text(arguments))]
        if self.full_history:
            messages = [*input_messages(ctx.run, self.agent.name), *messages]
        segment = ctx.address[-1]
        inner = ctx.run.sub_run(self.agent.name, messages, self._tree, segment)
        final: Message | None = None
        value: Any = None
        last_error: ErrorInfo | None = None
        pending: dict[str, InterruptInfo] = {}
        stream = run_agent(self.agent, AgentInput(messages=messages), inner)
        async with aclosing(stream) as events:
            async for event in events:
                if event.error is not None:
                    last_error = event.error
                elif event.message is not None and not event.partial:
                    final, value = event.message, event.value
                action = event.action
                if action is not None and action.interrupted is not None:
                    for info in action.interrupted.interrupts:
                        pending.setdefault(info.id, info)
                if self.emits_events:
                    observed = _observed(event)
                    if observed is not event and inner.journal.is_replayed(event):
                        inner.journal.mark_replayed(observed)
                    await ctx.emit(observed)
        if pending and not inner.failed:
            # The inner run paused: pause the caller too, with the same root causes.
            raise Interrupt.of_nested(list(pending.values()))
        if inner.failed and last_error is not None:
            if last_error.exception is not None:
                raise last_error.exception
            raise AgentRunError(last_error.type, last_error.message, last_error.run_path)
        if value is not None and self.output is not None:
            return self.output.dump(value)  # JSON-able data: the model reads it as JSON
        return final.content if final is not None else ""


def _observed(event: AgentEvent) -> AgentEvent:
    """A forwarded copy of an inner event: its control actions stay inside the tool.

    Interrupts are forwarded too (they surface through the tool anyway), and
    the copy keeps the replay mark of the original.
    """
    action = event.action
    if action is None or not (
        action.exit or action.transfer_to_agent is not None or action.break_loop is not None
    ):
        return event
    return event.model_copy(
        update={
            "action": action.model_copy(
                update={"exit": False, "transfer_to_agent": None, "break_loop": None}
            )
        }
    )
