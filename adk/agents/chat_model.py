"""ChatModelAgent: the model + tools loop."""

from __future__ import annotations

import functools
import inspect
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from contextlib import aclosing
from typing import Any, Literal

from adk.agents.base import Agent, AgentInput, BaseAgent
from adk.agents.history import TRANSFER_TOOL_NAME
from adk.agents.instruction import InstructionTemplate
from adk.agents.transfer import TransferTool, transfer_instruction
from adk.agents.tree import is_workflow, known_tree
from adk.errors import ConfigurationError, MaxIterationsExceeded
from adk.events import AgentAction, AgentEvent, Interrupted
from adk.messages import Message
from adk.models.base import ChatModel, ChunkAssembler, ModelRequest
from adk.state.context import RunContext
from adk.tools.base import Tool
from adk.tools.execution import (
    ToolOutcome,
    emits_events,
    order_for_delivery,
    run_tool_calls,
    stream_tool_calls,
)
from adk.tools.function import FunctionTool

GenModelInput = Callable[
    [str, AgentInput, RunContext], "Sequence[Message] | Awaitable[Sequence[Message]]"
]
"""Builds the model's messages from the filled instruction, the input and the context."""


def default_model_input(instruction: str, input: AgentInput, ctx: RunContext) -> list[Message]:
    """The instruction as a system message (if any), then the input messages."""
    if instruction:
        return [system_message(instruction), *input.messages]
    return list(input.messages)


@functools.lru_cache(maxsize=1024)
def system_message(text: str) -> Message:
    """The system message with ``text``; messages are immutable, so one is shared per text."""
    return Message.system(text)


def _one_transfer(outcomes: list[ToolOutcome]) -> list[ToolOutcome]:
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


class _Toolset:
    """The tools of one agent in one tree position, with their specs in canonical order."""

    __slots__ = ("emitting", "instruction", "specs", "tools")

    def __init__(self, tools: dict[str, Tool], instruction: str) -> None:
        self.tools = tools
        self.emitting = any(getattr(tool, "emits_events", False) for tool in tools.values())
        # Sorted tools keep the prompt prefix stable across calls and agents.
        self.specs = [tools[key].spec for key in sorted(tools)]
        self.instruction = instruction


class ChatModelAgent(BaseAgent):
    """An agent that calls a model, runs the tools it asks for, and repeats until it answers.

    - ``instruction``: the system prompt; ``{key}`` is filled from session
      values (a missing key is an error), ``{{``/``}}`` are literal braces.
    - ``model``: a :class:`~adk.ChatModel`, or a litellm model id such as
      ``"openai/gpt-4o-mini"`` that the serving layer resolves.
    - ``tools``: :class:`~adk.Tool` objects or plain functions (wrapped in
      :class:`~adk.FunctionTool`).
    - ``max_iterations``: most model calls in one turn (default 20); beyond
      it the agent ends with a :class:`~adk.MaxIterationsExceeded` error event.
    - ``output_key``: store the final answer's text in this session value.
    - ``gen_model_input``: replaces how instruction and input become messages.
    - ``return_directly``: names of tools whose result ends the turn (in
      addition to tools created with ``return_directly=True``).
    - ``model_params``: parameters for every model call (``temperature``...);
      run options ``{"<agent name>": {"model_params": {...}}}`` override them.
    - ``tool_errors``: ``"report"`` (default) turns tool failures into tool
      messages the model can act on; ``"raise"`` ends the run with the error.
    - ``stage``: the serving-layer stage name of this agent's calls (default:
      the agent name).
    - ``priority``: scheduling priority of this agent's calls on backends that
      order their queue by priority (higher first); run options
      ``{"<agent name>": {"priority": n}}`` override it.
    - ``cache``: the cache policy of this agent's calls: ``"auto"`` (the
      serving layer's workflow policy decides), ``"preserve"`` or ``"flush"``
      (the previous stage's cache at this agent's boundary); run option ``"cache"``.
    - ``sub_agents``: agents this one may transfer the conversation to; it
      gets a ``transfer_to_agent`` tool and an instruction listing them. It
      may also transfer back to the agent it sits under, unless
      ``disallow_transfer_to_parent`` (or that agent is a workflow agent).
    """

    def __init__(
        self,
        name: str,
        *,
        model: ChatModel | str,
        description: str = "",
        instruction: str = "",
        tools: Iterable[Tool | Callable[..., Any]] = (),
        max_iterations: int = 20,
        output_key: str | None = None,
        gen_model_input: GenModelInput | None = None,
        return_directly: Iterable[str] = (),
        model_params: Mapping[str, Any] | None = None,
        tool_errors: Literal["report", "raise"] = "report",
        stage: str | None = None,
        priority: int = 0,
        cache: Literal["auto", "preserve", "flush"] = "auto",
        sub_agents: Iterable[Agent] = (),
        disallow_transfer_to_parent: bool = False,
    ) -> None:
        super().__init__(name, description)
        if max_iterations < 1:
            raise ConfigurationError(f"agent {name!r}: max_iterations must be at least 1")
        if tool_errors not in ("report", "raise"):
            raise ConfigurationError(f"agent {name!r}: tool_errors must be 'report' or 'raise'")
        if model is None or (isinstance(model, str) and not model):
            raise ConfigurationError(f"agent {name!r} needs a model")
        self.model = model
        self.instruction = instruction
        self._template = InstructionTemplate(instruction, name)
        self.max_iterations = max_iterations
        self.output_key = output_key
        self.gen_model_input: GenModelInput = gen_model_input or default_model_input
        self.model_params: dict[str, Any] = dict(model_params or {})
        self.tool_errors = tool_errors
        self.stage = stage or name
        if cache not in ("auto", "preserve", "flush"):
            raise ConfigurationError(
                f"agent {name!r}: cache must be 'auto', 'preserve' or 'flush', not {cache!r}"
            )
        self.priority = priority
        self.cache = cache
        self.tools: dict[str, Tool] = {}
        for item in tools:
            as_tool: Tool = item if isinstance(item, Tool) else FunctionTool(item)
            if as_tool.name in self.tools:
                raise ConfigurationError(f"agent {name!r} has two tools named {as_tool.name!r}")
            self.tools[as_tool.name] = as_tool
        self.return_directly = frozenset(return_directly)
        unknown = self.return_directly - set(self.tools)
        if unknown:
            raise ConfigurationError(
                f"agent {name!r}: return_directly names unknown tools: {', '.join(sorted(unknown))}"
            )
        self.sub_agents = tuple(sub_agents)
        self.disallow_transfer_to_parent = disallow_transfer_to_parent
        names = [agent.name for agent in self.sub_agents]
        if len(set(names)) != len(names) or name in names:
            raise ConfigurationError(f"agent {name!r}: sub-agent names must be unique")
        if TRANSFER_TOOL_NAME in self.tools:
            raise ConfigurationError(
                f"agent {name!r}: the tool name {TRANSFER_TOOL_NAME!r} is reserved for transfers"
            )
        self._plain = _Toolset(self.tools, "")
        self._toolsets: dict[str | None, _Toolset] = {}

    def _toolset(self, ctx: RunContext) -> _Toolset:
        """Tools and instruction suffix for this run: transfer targets depend on the tree."""
        tree = known_tree(ctx)
        parent = tree.parent_of(self.name) if tree is not None else None
        if parent is not None and (self.disallow_transfer_to_parent or is_workflow(parent)):
            parent = None
        if not self.sub_agents and parent is None:
            return self._plain
        key = parent.name if parent is not None else None
        toolset = self._toolsets.get(key)
        if toolset is None:
            targets = [agent.name for agent in self.sub_agents]
            if parent is not None:
                targets.append(parent.name)
            tools = {**self.tools, TRANSFER_TOOL_NAME: TransferTool(targets)}
            toolset = _Toolset(tools, transfer_instruction(self.sub_agents, parent))
            self._toolsets[key] = toolset
        return toolset

    async def build_messages(
        self, input: AgentInput, ctx: RunContext, suffix: str = ""
    ) -> list[Message]:
        """The messages of the first model call: filled instruction plus input."""
        instruction = self._template.fill(ctx.session_values, self.name)
        if suffix:
            instruction = f"{instruction}\n\n{suffix}" if instruction else suffix
        built = self.gen_model_input(instruction, input, ctx)
        if not isinstance(built, list) and inspect.isawaitable(built):
            built = await built
        return list(built)

    async def run(self, input: AgentInput, ctx: RunContext) -> AsyncIterator[AgentEvent]:
        """Call the model, run requested tools, repeat until a final answer or an action."""
        toolset = self._toolset(ctx)
        messages = await self.build_messages(input, ctx, toolset.instruction)
        options = ctx.options_for(self.name)
        params = self.model_params
        if options.get("model_params"):
            params = {**params, **options["model_params"]}
        max_iterations = int(options.get("max_iterations", self.max_iterations))
        priority = int(options.get("priority", self.priority))
        cache_mode = str(options.get("cache", self.cache))
        if max_iterations < 1:
            raise ConfigurationError(
                f"agent {self.name!r}: max_iterations from run options must be at least 1"
            )
        streaming, serving, run_path = ctx.streaming, ctx.serving, ctx.run_path
        run_id, session_id = ctx.run_id, ctx.session_id
        raise_errors = self.tool_errors == "raise"
        journal, invocation = ctx.journal, ctx.invocation
        for iteration in range(max_iterations):
            call_key = f"{invocation}|m{iteration}"
            reply = journal.model_result(call_key)
            if reply is None:
                request = ModelRequest(
                    messages=messages,
                    tools=toolset.specs,
                    params=params,
                    stream=streaming,
                    run_id=run_id,
                    session_id=session_id,
                    agent_name=self.name,
                    agent_path=run_path,
                    stage=self.stage,
                    call_id=f"{run_id}:{call_key}",
                    priority=priority,
                    cache=cache_mode,
                )
                if streaming:
                    assembler = ChunkAssembler()
                    async with aclosing(self._stream_deltas(request, ctx, assembler)) as deltas:
                        async for delta in deltas:
                            yield delta
                    reply = assembler.response().message
                else:
                    reply = (await serving.generate(self.model, request)).message
                journal.note_model(call_key, reply)
                if journal.step:
                    await journal.flush()
            # Every mode meets here (streamed, generated, replayed from the journal): the
            # same complete message, as one non-partial event.
            yield self.event(ctx, message=reply)
            if not reply.tool_calls:
                self._store_output(ctx, reply.content)
                return
            if toolset.emitting and emits_events(reply.tool_calls, toolset.tools):
                outcomes = []
                stream = stream_tool_calls(
                    reply.tool_calls,
                    toolset.tools,
                    ctx,
                    self.name,
                    key_prefix=call_key,
                    raise_errors=raise_errors,
                )
                async with aclosing(stream) as items:
                    async for item in items:
                        if isinstance(item, list):
                            outcomes = item
                        else:
                            yield item
            else:
                outcomes = await run_tool_calls(
                    reply.tool_calls,
                    toolset.tools,
                    ctx,
                    self.name,
                    key_prefix=call_key,
                    raise_errors=raise_errors,
                )
            completed = _one_transfer(order_for_delivery(outcomes))
            for outcome in completed:
                yield self.event(ctx, message=outcome.message, action=outcome.merged_action())
            if len(completed) < len(outcomes):
                pending = tuple(info for outcome in outcomes for info in outcome.interrupts)
                yield self.event(
                    ctx, action=AgentAction(interrupted=Interrupted(interrupts=pending))
                )
                return
            final = self._turn_end(completed)
            if final is not None:
                if not any(action.transfer_to_agent for action in final.actions):
                    self._store_output(ctx, final.message.content)
                return
            messages = [*messages, reply, *[outcome.message for outcome in completed]]
        yield self.error_event(
            ctx,
            MaxIterationsExceeded(
                f"agent {self.name!r} made {max_iterations} model calls without a final answer "
                "(raise max_iterations if the task needs more tool rounds)"
            ),
        )

    async def _stream_deltas(
        self, request: ModelRequest, ctx: RunContext, assembler: ChunkAssembler
    ) -> AsyncGenerator[AgentEvent, None]:
        """Stream the model's answer: fold chunks into ``assembler``, yield text deltas."""
        chunks = ctx.serving.stream(self.model, request)
        try:
            async for chunk in chunks:
                assembler.add(chunk)
                if chunk.content:
                    yield self.event(ctx, message=Message.assistant(chunk.content), partial=True)
        finally:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()

    def _turn_end(self, outcomes: list[ToolOutcome]) -> ToolOutcome | None:
        """The outcome that ends this turn (exit, transfer, break-loop, return-directly)."""
        for outcome in outcomes:
            if not outcome.actions:
                continue
            for action in outcome.actions:
                if action.exit or action.transfer_to_agent is not None or action.break_loop:
                    return outcome
        for outcome in outcomes:
            if not outcome.failed and (
                outcome.return_directly or outcome.message.name in self.return_directly
            ):
                return outcome
        return None

    def _store_output(self, ctx: RunContext, text: str) -> None:
        if self.output_key:
            ctx.set(self.output_key, text)
