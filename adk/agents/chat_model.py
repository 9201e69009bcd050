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
from adk.messages import Message, repair_message, repair_text
from adk.models.base import ChatModel, ChunkAssembler, ModelRequest
from adk.state.addressing import call_id
from adk.state.context import RunContext
from adk.tools.base import Tool
from adk.tools.batch import order_for_delivery, run_tool_calls, stream_tool_calls
from adk.tools.execution import ToolOutcome
from adk.tools.function import FunctionTool
from adk.tools.toolbox import Toolbox

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


def _ending_last(outcomes: list[ToolOutcome], ending: ToolOutcome | None) -> list[ToolOutcome]:
    """The outcomes with the one that ends the turn delivered last.

    Its message is the turn's answer (``RunResult.text``, an agent tool's
    result), so it must be the last event of the turn. An outcome replayed
    from before a pause keeps its place: the caller already has it there.
    """
    if ending is None or outcomes[-1] is ending or ending.replayed_seq is not None:
        return outcomes
    return [*(outcome for outcome in outcomes if outcome is not ending), ending]


async def _journaled(ctx: RunContext, key: str, reply: Message) -> Message:
    """Journal a model's reply (with lone surrogates repaired) before the run goes on."""
    reply = repair_message(reply)
    journal = ctx.journal
    journal.note_model(key, reply)
    if journal.step:
        await journal.flush()
    return reply


class _Toolset(Toolbox):
    """The toolbox of one agent in one tree position, with its transfer instruction."""

    __slots__ = ("instruction",)

    def __init__(self, tools: dict[str, Tool], instruction: str) -> None:
        super().__init__(tools)
        self.instruction = instruction


class _Turn:
    """One turn of one agent: settings resolved once, the conversation grown per model call."""

    __slots__ = (
        "cache",
        "ctx",
        "max_iterations",
        "messages",
        "params",
        "priority",
        "raise_errors",
        "reply",
        "toolset",
    )

    def __init__(
        self, agent: ChatModelAgent, ctx: RunContext, toolset: _Toolset, messages: list[Message]
    ) -> None:
        self.ctx = ctx
        self.toolset = toolset
        self.messages = messages
        self.raise_errors = agent.tool_errors == "raise"
        self.reply: Message | None = None
        options = ctx.options_for(agent.name)
        params = agent.model_params
        if options.get("model_params"):
            params = {**params, **options["model_params"]}
        self.params = params
        self.max_iterations = int(options.get("max_iterations", agent.max_iterations))
        self.priority = int(options.get("priority", agent.priority))
        self.cache = str(options.get("cache", agent.cache))
        if self.max_iterations < 1:
            raise ConfigurationError(
                f"agent {agent.name!r}: max_iterations from run options must be at least 1"
            )


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
        # Misuse fails here, naming the argument: TypeError for a wrong kind of value,
        # ConfigurationError for a bad value (the rule of adk.runner.arguments).
        if not isinstance(model, str | ChatModel):
            raise TypeError(
                f"agent {name!r}: model must be a ChatModel (with generate and stream) or a "
                "litellm model id such as 'openai/gpt-4o-mini', "
                f"got {type(model).__name__} {model!r}"
            )
        if model == "":
            raise ConfigurationError(f"agent {name!r} needs a model, got ''")
        if isinstance(max_iterations, bool) or not isinstance(max_iterations, int):
            raise TypeError(
                f"agent {name!r}: max_iterations must be an int, "
                f"got {type(max_iterations).__name__} {max_iterations!r}"
            )
        if max_iterations < 1:
            raise ConfigurationError(
                f"agent {name!r}: max_iterations must be at least 1, got {max_iterations}"
            )
        if tool_errors not in ("report", "raise"):
            raise ConfigurationError(f"agent {name!r}: tool_errors must be 'report' or 'raise'")
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
        if isinstance(tools, str | Tool) or callable(tools) or not isinstance(tools, Iterable):
            single = getattr(tools, "name", None) or getattr(tools, "__name__", None)
            given = f"{type(tools).__name__} {tools!r}"
            if isinstance(single, str) and not isinstance(tools, str):
                given = f"a single tool {single!r}; write tools=[{single}]"
            raise TypeError(
                f"agent {name!r}: tools must be a list of tools or functions, got {given}"
            )
        self.tools: dict[str, Tool] = {}
        for index, item in enumerate(tools):
            if not (isinstance(item, Tool) or callable(item)):
                raise TypeError(
                    f"agent {name!r}: tools[{index}] must be a Tool or a function, "
                    f"got {type(item).__name__} {item!r}"
                )
            as_tool: Tool = item if isinstance(item, Tool) else FunctionTool(item)
            if as_tool.name in self.tools:
                raise ConfigurationError(f"agent {name!r} has two tools named {as_tool.name!r}")
            self.tools[as_tool.name] = as_tool
        if isinstance(return_directly, str):
            raise TypeError(
                f"agent {name!r}: return_directly must be a list of tool names, "
                f"got str {return_directly!r}; write return_directly=[{return_directly!r}]"
            )
        self.return_directly = frozenset(return_directly)
        unknown = self.return_directly - set(self.tools)
        if unknown:
            raise ConfigurationError(
                f"agent {name!r}: return_directly names unknown tools: {', '.join(sorted(unknown))}"
            )
        if isinstance(sub_agents, Agent | str) or not isinstance(sub_agents, Iterable):
            given = f"{type(sub_agents).__name__} {sub_agents!r}"
            if isinstance(sub_agents, Agent):
                given = f"a single agent {sub_agents.name!r}; write sub_agents=[{sub_agents.name}]"
            raise TypeError(f"agent {name!r}: sub_agents must be a list of agents, got {given}")
        self.sub_agents = tuple(sub_agents)
        self.disallow_transfer_to_parent = disallow_transfer_to_parent
        for index, agent in enumerate(self.sub_agents):
            if not isinstance(agent, Agent):
                raise TypeError(
                    f"agent {name!r}: sub_agents[{index}] must be an agent, "
                    f"got {type(agent).__name__} {agent!r}"
                )
        names = [agent.name for agent in self.sub_agents]
        if name in names:
            raise ConfigurationError(
                f"agent {name!r} has a sub-agent named like itself; sub-agent names must be "
                "unique (the agent above is offered as a transfer target without being listed)"
            )
        if len(set(names)) != len(names):
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
        """Call the model, run requested tools, repeat until a final answer or an action.

        Each step: get the model's reply (from the journal when replaying),
        deliver it, run the tool calls it asks for, deliver their results,
        and stop at a final answer, a turn-ending tool or a pause.
        """
        toolset = self._toolset(ctx)
        turn = _Turn(self, ctx, toolset, await self.build_messages(input, ctx, toolset.instruction))
        for iteration in range(turn.max_iterations):
            key = ctx.model_call_key(iteration)
            reply = ctx.journal.model_result(key)
            if reply is None:
                if ctx.streaming:
                    async with aclosing(self._streamed_reply(turn, key)) as deltas:
                        async for delta in deltas:
                            yield delta
                    reply = turn.reply
                else:
                    reply = await self._generated_reply(turn, key)
            assert reply is not None
            # Every mode meets here (streamed, generated, replayed from the journal): the
            # same complete message, as one non-partial event.
            yield self.event(ctx, message=reply)
            if not reply.tool_calls:
                self._store_output(ctx, reply.content)
                return
            outcomes: list[ToolOutcome] = []
            async with aclosing(self._tool_results(turn, reply, key)) as items:
                async for item in items:
                    if isinstance(item, list):
                        outcomes = item
                    else:
                        yield item
            completed = _one_transfer(order_for_delivery(outcomes))
            if len(completed) < len(outcomes):  # some calls wait for an answer
                for outcome in completed:
                    yield self.event(ctx, message=outcome.message, action=outcome.merged_action())
                pending = tuple(info for outcome in outcomes for info in outcome.interrupts)
                yield self.event(
                    ctx, action=AgentAction(interrupted=Interrupted(interrupts=pending))
                )
                return
            ending = self._turn_end(completed)
            for outcome in _ending_last(completed, ending):
                yield self.event(ctx, message=outcome.message, action=outcome.merged_action())
            if ending is not None:
                if not any(action.transfer_to_agent for action in ending.actions):
                    self._store_output(ctx, ending.message.content)
                return
            turn.messages = [*turn.messages, reply, *[outcome.message for outcome in completed]]
        yield self.error_event(
            ctx,
            MaxIterationsExceeded(
                f"agent {self.name!r} made {turn.max_iterations} model calls without a final "
                "answer (raise max_iterations if the task needs more tool rounds)"
            ),
        )

    def _request(self, turn: _Turn, key: str, stream: bool) -> ModelRequest:
        """The request of the model call journaled under ``key``."""
        ctx = turn.ctx
        run_id = ctx.run_id
        return ModelRequest(
            messages=turn.messages,
            tools=turn.toolset.specs,
            params=turn.params,
            stream=stream,
            run_id=run_id,
            session_id=ctx.session_id,
            agent_name=self.name,
            agent_path=ctx.run_path,
            stage=self.stage,
            call_id=call_id(run_id, key),
            priority=turn.priority,
            cache=turn.cache,
        )

    async def _generated_reply(self, turn: _Turn, key: str) -> Message:
        """Call the model (not streaming) and journal its repaired reply."""
        response = await turn.ctx.serving.generate(self.model, self._request(turn, key, False))
        return await _journaled(turn.ctx, key, response.message)

    async def _streamed_reply(self, turn: _Turn, key: str) -> AsyncGenerator[AgentEvent, None]:
        """Stream the model's reply as text deltas; the journaled reply lands in ``turn.reply``."""
        ctx = turn.ctx
        assembler = ChunkAssembler()
        chunks = ctx.serving.stream(self.model, self._request(turn, key, True))
        try:
            async for chunk in chunks:
                assembler.add(chunk)
                if chunk.content:
                    text = repair_text(chunk.content)
                    yield self.event(ctx, message=Message.assistant(text), partial=True)
        finally:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()
        turn.reply = await _journaled(ctx, key, assembler.response().message)

    async def _tool_results(
        self, turn: _Turn, reply: Message, key: str
    ) -> AsyncGenerator[AgentEvent | list[ToolOutcome], None]:
        """Run the reply's tool calls: events tools forward, then the list of outcomes."""
        ctx, toolset, calls = turn.ctx, turn.toolset, reply.tool_calls
        if toolset.emitting and toolset.emits_events([call.name for call in calls]):
            stream = stream_tool_calls(
                calls, toolset, ctx, self.name, key_prefix=key, raise_errors=turn.raise_errors
            )
            async with aclosing(stream) as items:
                async for item in items:
                    yield item
            return
        yield await run_tool_calls(
            calls, toolset, ctx, self.name, key_prefix=key, raise_errors=turn.raise_errors
        )

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
