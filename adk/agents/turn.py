"""One turn of a ChatModelAgent: its settings, its toolset, and how its results are delivered.

Kept apart from the agent class so that ``ChatModelAgent.run`` reads as its
steps; the pieces here are what those steps share.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from adk.errors import ConfigurationError, ToolError
from adk.messages import Message, repair_message
from adk.models.base import ChatModel
from adk.state.addressing import call_id
from adk.state.context import RunContext
from adk.tools.base import Tool
from adk.tools.execution import ToolOutcome
from adk.tools.provider import ToolProvider
from adk.tools.toolbox import Toolbox

if TYPE_CHECKING:
    from adk.agents.chat_model import ChatModelAgent
    from adk.agents.context_gc import TurnContext


def one_transfer(outcomes: list[ToolOutcome]) -> list[ToolOutcome]:
    """Carry out only the first transfer of a response; tell the model the others were not."""
    if len(outcomes) < 2:
        return outcomes
    chosen: str | None = None
    for outcome in outcomes:
        for action in outcome.actions:
            target = action.transfer_to_agent
            if target is None:
                continue
            if chosen is None:
                chosen = target.dest
                continue
            outcome.actions = [a for a in outcome.actions if a.transfer_to_agent is None]
            outcome.failed = True
            outcome.message = outcome.message.model_copy(
                update={
                    "content": f"Error: not transferred to {target.dest!r}: this response "
                    f"already transfers to {chosen!r} (one transfer per response)"
                }
            )
            break
    return outcomes


def is_ascii(message: Message) -> bool:
    """True when the message's text and tool calls are ASCII (nothing can need repair)."""
    if not message.content.isascii():
        return False
    for call in message.tool_calls:
        if not (call.arguments.isascii() and call.name.isascii() and call.id.isascii()):
            return False
    return True


def ending_last(outcomes: list[ToolOutcome], ending: ToolOutcome | None) -> list[ToolOutcome]:
    """The outcomes with the one that ends the turn delivered last.

    Its message is the turn's answer (``RunResult.text``, an agent tool's
    result), so it must be the last event of the turn. An outcome replayed
    from before a pause keeps its place: the caller already has it there.
    """
    if ending is None or outcomes[-1] is ending or ending.replayed_seq is not None:
        return outcomes
    return [*(outcome for outcome in outcomes if outcome is not ending), ending]


def journaled_reply(turn: Turn, key: str, reply: Message) -> Message:
    """Journal a model's reply (with lone surrogates repaired); the caller flushes if needed.

    Not a coroutine: on every model call's path, and it awaits nothing unless
    the journal must be written now (``turn.journal.step``).
    """
    if not reply.content.isascii() or (reply.tool_calls and not is_ascii(reply)):
        reply = repair_message(reply)
    turn.journal.note_model(key, reply)
    return reply


class Toolset(Toolbox):
    """The toolbox of one agent in one tree position, with its transfer instruction."""

    __slots__ = ("instruction",)

    def __init__(self, tools: dict[str, Tool], instruction: str) -> None:
        super().__init__(tools)
        self.instruction = instruction


async def provided_toolset(
    agent: str,
    base: Toolset,
    providers: tuple[ToolProvider, ...],
    ctx: RunContext,
    cache: dict[tuple[int, ...], Toolset],
) -> Toolset:
    """``base`` plus the tools ``providers`` list for this turn (one toolset per tool list).

    A provider that cannot list its tools, or lists a name the agent already
    has, raises :class:`~adk.ToolError` naming it: the turn ends with that error.
    """
    tools = dict(base.tools)
    for provider in providers:
        try:
            listed = await provider.list_tools(ctx)
        except Exception as exc:
            raise ToolError(
                f"agent {agent!r}: tool provider {provider.name!r} could not list its tools: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        for tool in listed:
            if tool.name in tools:
                raise ToolError(
                    f"agent {agent!r}: tool provider {provider.name!r} lists a tool named "
                    f"{tool.name!r}, a name the agent already has (give the provider a prefix)"
                )
            tools[tool.name] = tool
    key = (id(base), *(id(tool) for tool in tools.values()))
    toolset = cache.get(key)
    if toolset is None:
        if len(cache) >= 8:  # providers that list new tool objects every turn: keep a few
            cache.clear()
        toolset = cache[key] = Toolset(tools, base.instruction)
    return toolset


def output_params(agent: ChatModelAgent, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with the native response format when the agent's output mode is native."""
    output = agent.output
    if output is None or agent.mode != "native" or "response_format" in params:
        return params
    return {**params, "response_format": output.response_format()}


class Turn:
    """One turn of one agent: settings resolved once, the conversation grown per model call."""

    __slots__ = (
        "cache",
        "call_prefix",
        "context",
        "ctx",
        "halted",
        "journal",
        "max_iterations",
        "messages",
        "model",
        "output_failures",
        "params",
        "priority",
        "raise_errors",
        "reply",
        "toolset",
    )

    def __init__(
        self, agent: ChatModelAgent, ctx: RunContext, toolset: Toolset, messages: list[Message]
    ) -> None:
        self.ctx = ctx
        self.journal = ctx.journal
        self.call_prefix = call_id(ctx.run_id, "")
        """What a call id of this run starts with (the journal key follows)."""
        self.toolset = toolset
        self.messages = messages
        self.raise_errors = agent.tool_errors == "raise"
        self.reply: Message | None = None
        self.output_failures = 0
        """Invalid structured answers so far (each was sent back for correction)."""
        self.halted = False
        """A step before a model call ended the turn (a pause, a context error)."""
        self.context: TurnContext | None = None
        """Context management of this turn (None: no ContextPolicy; adk.agents.context_gc)."""
        assignment = ctx.assignment  # a stage mapping's backend and params (stage_mapping.py)
        self.model: ChatModel | str = agent.model if assignment is None else assignment.backend
        """What this turn's model calls go to: the agent's model, or the stage's mapped backend."""
        options = ctx.options_for(agent.name)
        if not options:  # the common case: the agent's own settings
            self.params = agent.model_params
            if assignment is not None and assignment.params:
                self.params = {**self.params, **assignment.params}
            self.max_iterations = agent.max_iterations
            self.priority = agent.priority
            self.cache: str = agent.cache
            if agent.output is not None:
                self.params = output_params(agent, self.params)
            return
        params = agent.model_params
        if options.get("model_params"):
            params = {**params, **options["model_params"]}
        if assignment is not None and assignment.params:
            params = {**params, **assignment.params}
        self.params = output_params(agent, params) if agent.output is not None else params
        self.max_iterations = int(options.get("max_iterations", agent.max_iterations))
        self.priority = int(options.get("priority", agent.priority))
        self.cache = str(options.get("cache", agent.cache))
        if self.max_iterations < 1:
            raise ConfigurationError(
                f"agent {agent.name!r}: max_iterations from run options must be at least 1"
            )
