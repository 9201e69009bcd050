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
from adk.agents.chat_steps import answered, out_of_iterations, tools_ran
from adk.agents.chat_toolsets import agent_toolset
from adk.agents.context_gc import start_context
from adk.agents.context_steps import manage_context
from adk.agents.guarding import call_model, stream_model, streamed_response
from adk.agents.guardrails import Guardrail, GuardrailFunction, checked_guardrails
from adk.agents.instruction import InstructionTemplate
from adk.agents.middleware import Middleware, checked_middleware
from adk.agents.output import (
    FINAL_RESULT_TOOL,
    OUTPUT_MODES,
    OutputMode,
    OutputSpec,
    checked_output_type,
    final_result_text,
    resolve_mode,
)
from adk.agents.settings import (
    checked_choice,
    checked_iterations,
    checked_model,
    checked_retries,
    checked_return_directly,
    checked_sub_agents,
    checked_tools,
)
from adk.agents.turn import (
    Toolset,
    Turn,
    journaled_reply,
    provided_toolset,
)
from adk.errors import ConfigurationError, ToolError
from adk.events import AgentEvent
from adk.messages import Message, repair_text
from adk.models.base import ChatModel, ChunkAssembler, ModelRequest
from adk.state.addressing import model_call_key
from adk.state.context import RunContext
from adk.state.context_policy import ContextPolicy, checked_context
from adk.tools.base import Tool
from adk.tools.batch import run_tool_calls, stream_tool_calls
from adk.tools.execution import ToolOutcome
from adk.tools.provider import ToolProvider

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


class ChatModelAgent(BaseAgent):
    """An agent that calls a model, runs the tools it asks for, and repeats until it answers.

    - ``instruction``: the system prompt; ``{key}`` is filled from session
      values (a missing key is an error), ``{{``/``}}`` are literal braces.
    - ``model``: a :class:`~adk.ChatModel`, or a litellm model id such as
      ``"openai/gpt-4o-mini"`` that the serving layer resolves.
    - ``tools``: :class:`~adk.Tool` objects, plain functions (wrapped in
      :class:`~adk.FunctionTool`), or tool providers whose tools are listed
      when a turn starts (an :class:`~adk.mcp.MCPToolset`).
    - ``max_iterations``: most model calls in one turn (default 20); beyond
      it the agent ends with a :class:`~adk.MaxIterationsExceeded` error event.
    - ``output_key``: store the final answer in this session value: its text,
      or with ``output_type`` the validated value as JSON-able data.
    - ``output_type``: the answer must be of this type and arrives validated
      on the final event (``event.value``, ``RunResult.output``): a pydantic
      model, a dataclass, a TypedDict, a ``list[...]`` or union of those, or a
      JSON Schema dict (the value is then the decoded JSON).
    - ``output_mode``: how the model is asked for it: ``"auto"`` (default:
      the model's native JSON-schema response format where it has one, else a
      ``final_result`` tool, else JSON asked for in the instruction),
      ``"native"``, ``"tool"`` or ``"prompted"``.
    - ``output_retries``: invalid answers sent back to the model for
      correction (default 2) before the turn ends with an
      :class:`~adk.OutputValidationError` error event.
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
    - ``middleware``, ``input_guardrails``, ``output_guardrails``: around this
      agent's model and tool calls, on its input and on its answer (inside the
      Runner's; docs/middleware.md).
    - ``context``: a :class:`~adk.ContextPolicy` (tool-result GC and a
      ``recall`` tool; docs/context.md); default: the Runner's, else none.
    """

    def __init__(
        self,
        name: str,
        *,
        model: ChatModel | str,
        description: str = "",
        instruction: str = "",
        tools: Iterable[Tool | ToolProvider | Callable[..., Any]] = (),
        max_iterations: int = 20,
        output_key: str | None = None,
        output_type: object = None,
        output_mode: OutputMode = "auto",
        output_retries: int = 2,
        gen_model_input: GenModelInput | None = None,
        return_directly: Iterable[str] = (),
        model_params: Mapping[str, Any] | None = None,
        tool_errors: Literal["report", "raise"] = "report",
        stage: str | None = None,
        priority: int = 0,
        cache: Literal["auto", "preserve", "flush"] = "auto",
        sub_agents: Iterable[Agent] = (),
        disallow_transfer_to_parent: bool = False,
        middleware: Iterable[Middleware] = (),
        input_guardrails: Iterable[Guardrail | GuardrailFunction] = (),
        output_guardrails: Iterable[Guardrail | GuardrailFunction] = (),
        context: ContextPolicy | None = None,
    ) -> None:
        super().__init__(name, description)
        # Misuse fails here, naming the argument: TypeError for a wrong kind of value,
        # ConfigurationError for a bad value (the rule of adk.runner.arguments).
        self.model = checked_model(name, model)
        self.max_iterations = checked_iterations(name, max_iterations)
        self.tool_errors = checked_choice(name, "tool_errors", tool_errors, ("report", "raise"))
        self.cache = checked_choice(name, "cache", cache, ("auto", "preserve", "flush"))
        self.instruction = instruction
        self._template = InstructionTemplate(instruction, name)
        self.output_key = output_key
        self.gen_model_input: GenModelInput = gen_model_input or default_model_input
        self.model_params: dict[str, Any] = dict(model_params or {})
        self.stage = stage or name
        self.priority = priority
        self.tools, self.providers = checked_tools(name, tools)
        self.return_directly = checked_return_directly(name, return_directly, self.tools)
        self.sub_agents = checked_sub_agents(name, sub_agents)
        self.disallow_transfer_to_parent = disallow_transfer_to_parent
        self.output: OutputSpec | None = checked_output_type(name, output_type)
        """The compiled ``output_type`` (None: the answer is text)."""
        self.output_type = output_type
        self.output_mode = checked_choice(name, "output_mode", output_mode, OUTPUT_MODES)
        self.output_retries = checked_retries(name, output_retries)
        self._mode = "" if self.output is not None else "text"
        if self.output is not None and FINAL_RESULT_TOOL in self.tools:
            raise ConfigurationError(
                f"agent {name!r}: the tool name {FINAL_RESULT_TOOL!r} is reserved for the "
                "structured answer of an agent with an output_type"
            )
        self._plain: Toolset | None = None
        self._toolsets: dict[str | None, Toolset] = {}
        self._provided: dict[tuple[int, ...], Toolset] = {}
        self.middleware = checked_middleware(name, middleware)
        self.input_guardrails = checked_guardrails(name, "input_guardrails", input_guardrails)
        self.output_guardrails = checked_guardrails(name, "output_guardrails", output_guardrails)
        self.context = checked_context(f"agent {name!r}", context)
        """This agent's context policy (None: the Runner's, if any; docs/context.md)."""

    @property
    def mode(self) -> str:
        """The output mode in use: ``"text"`` without ``output_type``, else the resolved one.

        ``""`` until the agent's first turn resolves ``"auto"`` (asking litellm
        about a model id costs an import, done off the event loop).
        """
        return self._mode

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
        turn = await self._turn(input, ctx)
        if isinstance(turn, AgentEvent):  # the turn could not start
            yield turn
            return
        journal, invocation = turn.journal, ctx.invocation
        for iteration in range(turn.max_iterations):
            key = model_call_key(invocation, iteration)
            if ctx._shared.control is not None or turn.context is not None:
                async with aclosing(self._before_call(turn, key)) as managed:
                    async for event in managed:
                        yield event
                if turn.halted:
                    return
            reply = journal.model_result(key)
            if reply is None:
                if ctx.streaming:
                    async with aclosing(self._streamed_reply(turn, key)) as deltas:
                        async for delta in deltas:
                            yield delta
                    reply = turn.reply
                else:
                    reply = await self._called_reply(turn, key)
                if journal.step:
                    await journal.flush()
            assert reply is not None
            account = ctx._shared.account
            if account is not None:  # the run's usage (adk.state.budgets), replayed replies too
                account.charge(self.name, turn.model, reply.usage, key)
            # Every mode meets here (streamed, generated, replayed from the journal): the
            # same complete message, as one non-partial event.
            if not reply.tool_calls:
                events, done = answered(self, turn, reply)
            else:
                yield self.event(ctx, message=reply)
                toolset = turn.toolset
                if toolset.emitting and toolset.emits_events([c.name for c in reply.tool_calls]):
                    outcomes: list[ToolOutcome] = []
                    async with aclosing(self._streamed_tool_calls(turn, reply, key)) as items:
                        async for item in items:
                            if isinstance(item, list):
                                outcomes = item
                            else:
                                yield item
                else:
                    outcomes = await self._run_tools(turn, reply, key)
                events, done = tools_ran(self, turn, reply, outcomes)
            for event in events:
                yield event
            if done:
                return
        yield out_of_iterations(self, turn)

    async def _before_call(self, turn: Turn, key: str) -> AsyncGenerator[AgentEvent, None]:
        """What acts before model call ``key``: signals, then the context policy.

        Yields the events to deliver: a pause's interrupt, GC and compaction
        reports, a context error; after the first and the last the turn stops
        there (``turn.halted``).
        """
        control = turn.ctx._shared.control
        if control is not None:  # signals act here (adk.runner.control)
            paused = await control.safe_point(self, turn, key)
            if paused is not None:
                turn.halted = True
                yield paused
                return
        if turn.context is not None:  # a ContextPolicy (adk.agents.context_steps)
            async with aclosing(manage_context(self, turn, key)) as events:
                async for event in events:
                    turn.halted = turn.halted or event.is_error
                    yield event

    async def _run_tools(self, turn: Turn, reply: Message, key: str) -> list[ToolOutcome]:
        """Run the reply's tool calls (no tool forwards events); their outcomes in call order."""
        return await run_tool_calls(
            reply.tool_calls,
            turn.toolset,
            turn.ctx,
            self.name,
            key_prefix=key,
            raise_errors=turn.raise_errors,
        )

    async def _turn(self, input: AgentInput, ctx: RunContext) -> Turn | AgentEvent:
        """A new turn: output mode resolved, tools listed, first messages built.

        A tool provider that cannot list its tools ends the turn before any
        model call: its error event comes back instead.
        """
        if not self._mode:
            self._mode = await resolve_mode(self.model, self.output_mode)
        toolset = agent_toolset(self, ctx)
        if self.providers:
            try:
                toolset = await provided_toolset(
                    self.name, toolset, self.providers, ctx, self._provided
                )
            except ToolError as exc:
                return self.error_event(ctx, exc)
        turn = Turn(self, ctx, toolset, await self.build_messages(input, ctx, toolset.instruction))
        policy = self.context or ctx._shared.settings.context
        if policy is not None:
            await start_context(turn, policy)
        return turn

    async def _called_reply(self, turn: Turn, key: str) -> Message:
        """Call the model (not streaming) and journal its reply under ``key``."""
        response = await call_model(self, turn, key)(turn.model, self._request(turn, key, False))
        return journaled_reply(turn, key, response.message)

    def _request(self, turn: Turn, key: str, stream: bool) -> ModelRequest:
        """The request of the model call journaled under ``key``."""
        ctx = turn.ctx
        return ModelRequest(
            messages=turn.messages,
            tools=turn.toolset.specs,
            params=turn.params,
            stream=stream,
            run_id=ctx.run_id,
            session_id=ctx.session_id,
            agent_name=self.name,
            agent_path=ctx.run_path,
            stage=self.stage,
            call_id=turn.call_prefix + key,
            priority=turn.priority,
            cache=turn.cache,
        )

    async def _streamed_reply(self, turn: Turn, key: str) -> AsyncGenerator[AgentEvent, None]:
        """Stream the model's reply as text deltas; the journaled reply lands in ``turn.reply``.

        Partial events carry the text as it arrives (a structured answer too:
        its JSON, also when it comes as ``final_result`` arguments); the
        final event that follows carries the validated value.
        """
        ctx = turn.ctx
        assembler = ChunkAssembler()
        chunks = stream_model(self, turn, key)(turn.model, self._request(turn, key, True))
        # In "tool" mode the answer arrives as final_result arguments: stream those as text.
        finals: set[int] | None = set() if self.output is not None and self.mode == "tool" else None
        try:
            async for chunk in chunks:
                assembler.add(chunk)
                if chunk.content:
                    text = repair_text(chunk.content)
                    yield self.event(ctx, message=Message.assistant(text), partial=True)
                elif finals is not None and chunk.tool_calls:
                    text = repair_text(final_result_text(chunk.tool_calls, finals))
                    if text:
                        yield self.event(ctx, message=Message.assistant(text), partial=True)
        finally:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()
        turn.reply = journaled_reply(turn, key, streamed_response(chunks, assembler).message)

    def _streamed_tool_calls(
        self, turn: Turn, reply: Message, key: str
    ) -> AsyncGenerator[AgentEvent | list[ToolOutcome], None]:
        """Run the reply's tool calls: the events tools forward, then the list of outcomes."""
        return stream_tool_calls(
            reply.tool_calls,
            turn.toolset,
            turn.ctx,
            self.name,
            key_prefix=key,
            raise_errors=turn.raise_errors,
        )
