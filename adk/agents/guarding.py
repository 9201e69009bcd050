"""Model-call sites of a ChatModelAgent: middleware chains and the guardrails due at a call.

A ChatModelAgent asks :func:`call_model` / :func:`stream_model` how to make
a model call. With no middleware and no guardrail anywhere they hand back the
serving layer's own method: an agent without middleware pays one function
call and a few attribute reads per model call, and nothing per tool call
(``RunContext.tool_invoker`` is None).

Otherwise a call runs through the chain (Runner middleware outermost, then
the agent's) while the input guardrails due at that call run concurrently:
its result (or any streamed delta) is held until they pass, and a trip
cancels it. Output guardrails check an answer before the agent delivers it.
One trip ends the run: the run's state remembers it (``adk.agents.run_guards``)
and every later model call of the run raises it again.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from functools import partial
from typing import TYPE_CHECKING, Any

from adk._streams import merged
from adk.agents.guardrails import concurrently, run_guardrails
from adk.agents.middleware import Middleware, run_model_chain
from adk.agents.output import FINAL_RESULT_TOOL
from adk.agents.recording import RecordedStream
from adk.agents.run_guards import GuardState, record_trip
from adk.errors import GuardrailTripped
from adk.messages import Message
from adk.models.base import ChatModel, ChunkAssembler, ModelChunk, ModelRequest, ModelResponse
from adk.state.addressing import model_call_key
from adk.state.context import RunContext

if TYPE_CHECKING:
    from adk.agents.chat_model import ChatModelAgent
    from adk.agents.turn import Turn

Generate = Callable[[ChatModel | str, ModelRequest], Awaitable[ModelResponse]]
Stream = Callable[[ChatModel | str, ModelRequest], AsyncIterator[ModelChunk]]


def _chain(agent: ChatModelAgent, state: GuardState | None) -> tuple[Middleware, ...]:
    if state is None or state.config is None or not state.config.middleware:
        return agent.middleware
    return (*state.config.middleware, *agent.middleware)


def _input_checks(
    agent: ChatModelAgent, ctx: RunContext, key: str, request: ModelRequest
) -> Callable[[], Awaitable[None]] | None:
    """The input guardrails due at model call ``key``, as one coroutine function (or None)."""
    state = ctx.guards
    if state is not None and state.tripped is not None:
        raise state.tripped.again()
    run_level = state is not None and not state.input_done
    agent_level = bool(agent.input_guardrails) and key == model_call_key(ctx.invocation, 0)
    if not (run_level or agent_level):
        return None

    async def checks() -> None:
        if run_level:
            assert state is not None
            await state.check_run_input(ctx)
        if agent_level:
            messages = [message for message in request.messages if message.role != "system"]
            await run_guardrails(agent.input_guardrails, "input", ctx, messages, key)

    return checks


async def _check_output(agent: ChatModelAgent, ctx: RunContext, key: str, reply: Message) -> None:
    """Run the agent's output guardrails if ``reply`` is its answer (no tool calls to run)."""
    guardrails = agent.output_guardrails
    if not guardrails:
        return
    calls = reply.tool_calls
    if calls and not (
        getattr(agent, "output", None) is not None
        and any(call.name == FINAL_RESULT_TOOL for call in calls)
    ):
        return
    await run_guardrails(guardrails, "output", ctx, reply, key)


def call_model(agent: ChatModelAgent, turn: Turn, key: str) -> Generate:
    """How ``agent`` makes its (non-streamed) model call ``key``: ``call(model, request)``.

    Layers, innermost first: the serving layer (in a chat span when traced),
    middleware and guardrails, the trajectory recorder. The common case has
    none of them and gets the serving layer's own method.
    """
    shared = _before_call(agent, turn, key)
    if shared is None:
        return turn.ctx._shared.serving.generate
    call = _unrecorded_call(agent, turn.ctx, key)
    recorder = shared.recorder
    if recorder is None:
        return call
    recorded: Generate = recorder.generate(call, key)  # adk.agents.recording
    return recorded


def _before_call(agent: ChatModelAgent, turn: Turn, key: str) -> Any:
    """Check usage limits before the call; the run's shared state if any layer wraps it.

    None is the fast path (inlined checks: this runs for every model call of
    every agent): no middleware, guardrail, recorder or tracer anywhere.
    """
    shared = turn.ctx._shared
    account = shared.account
    if account is not None and account.limited:  # usage limits: checked before the call
        account.before_model(agent.name, turn.model, turn.messages, turn.toolset.specs, key)
    if (
        shared.guards is None
        and shared.recorder is None
        and shared.tracer is None
        and not (agent.middleware or agent.input_guardrails or agent.output_guardrails)
    ):
        return None
    return shared


def _unguarded(agent: ChatModelAgent, ctx: RunContext) -> bool:
    """No middleware or guardrail on the run nor on ``agent`` (:func:`_before_call` inlines it)."""
    return ctx._shared.guards is None and not (
        agent.middleware or agent.input_guardrails or agent.output_guardrails
    )


def _unrecorded_call(agent: ChatModelAgent, ctx: RunContext, key: str) -> Generate:
    """:func:`call_model` as it is without a trajectory recorder."""
    if _unguarded(agent, ctx):
        return _serving_generate(ctx)
    return partial(_generate, agent, ctx, key)


def _serving_generate(ctx: RunContext) -> Generate:
    """The serving layer's generate; in a traced run, inside a chat span (adk.tracing)."""
    shared = ctx._shared
    if shared.tracer is None:
        return shared.serving.generate
    traced: Generate = shared.tracer.generate(shared.serving.generate, ctx)
    return traced


def _serving_stream(ctx: RunContext) -> Stream:
    """The serving layer's stream; in a traced run, inside a chat span (adk.tracing)."""
    shared = ctx._shared
    if shared.tracer is None:
        return shared.serving.stream
    traced: Stream = shared.tracer.stream(shared.serving.stream, ctx)
    return traced


async def _generate(
    agent: ChatModelAgent, ctx: RunContext, key: str, model: ChatModel | str, request: ModelRequest
) -> ModelResponse:
    generate = _serving_generate(ctx)
    chain = _chain(agent, ctx.guards)

    async def call() -> ModelResponse:
        if chain:
            return await run_model_chain(chain, request, partial(generate, model))
        return await generate(model, request)

    try:
        checks = _input_checks(agent, ctx, key, request)
        response = await (concurrently(call, checks) if checks is not None else call())
        await _check_output(agent, ctx, key, response.message)
    except GuardrailTripped as trip:
        record_trip(ctx, trip)
        raise
    return response


def stream_model(agent: ChatModelAgent, turn: Turn, key: str) -> Stream:
    """How ``agent`` streams its model call ``key``: ``stream(model, request)`` gives chunks.

    The same layers as :func:`call_model`.
    """
    shared = _before_call(agent, turn, key)
    if shared is None:
        return turn.ctx._shared.serving.stream
    stream = _unrecorded_stream(agent, turn.ctx, key)
    recorder = shared.recorder
    if recorder is None:
        return stream
    recorded: Stream = recorder.stream(stream, key)  # adk.agents.recording
    return recorded


def _unrecorded_stream(agent: ChatModelAgent, ctx: RunContext, key: str) -> Stream:
    """:func:`stream_model` as it is without a trajectory recorder."""
    if _unguarded(agent, ctx):
        return _serving_stream(ctx)
    return partial(GuardedStream, agent, ctx, key)


def streamed_response(
    chunks: AsyncIterator[ModelChunk], assembler: ChunkAssembler
) -> ModelResponse:
    """The complete response of a streamed call: the middleware's, else the chunks' sum."""
    if type(chunks) is GuardedStream and chunks.response is not None:
        return chunks.response
    if type(chunks) is RecordedStream and chunks.response is not None:
        return chunks.response
    return assembler.response()


class GuardedStream:
    """A streamed model call through middleware and guardrails (see the module docstring).

    Deltas pass as they arrive once the input guardrails due have passed
    (held until then). A middleware that answers without calling the model
    streams its answer's text as one delta. :attr:`response` is the chain's
    final response, set when the stream ends.
    """

    __slots__ = ("_items", "response")

    def __init__(
        self,
        agent: ChatModelAgent,
        ctx: RunContext,
        key: str,
        model: ChatModel | str,
        request: ModelRequest,
    ) -> None:
        self.response: ModelResponse | None = None
        self._items = self._run(agent, ctx, key, model, request)

    def __aiter__(self) -> GuardedStream:
        return self

    async def __anext__(self) -> ModelChunk:
        return await self._items.__anext__()

    async def aclose(self) -> None:
        """Stop the call (and the guardrails still running)."""
        await self._items.aclose()

    async def _run(
        self,
        agent: ChatModelAgent,
        ctx: RunContext,
        key: str,
        model: ChatModel | str,
        request: ModelRequest,
    ) -> AsyncGenerator[ModelChunk, None]:
        try:
            checks = _input_checks(agent, ctx, key, request)
            producers = [partial(_produce_call, agent, ctx, model, request)]
            if checks is not None:
                producers.append(partial(_produce_checks, checks))
            held: list[ModelChunk] | None = [] if checks is not None else None
            failure: Exception | None = None
            async with aclosing(merged(producers)) as items:
                async for kind, value in items:
                    if kind == "chunk":
                        if held is None:
                            yield value
                        else:
                            held.append(value)
                    elif kind == "done":
                        self.response = value
                    elif kind == "passed":
                        assert held is not None
                        for chunk in held:
                            yield chunk
                        held = None
                        if failure is not None:
                            break
                    else:  # "error" from the call, "tripped" from the checks
                        failure = value
                        if kind == "tripped" or held is None:
                            break
            if failure is not None:
                raise failure
            assert self.response is not None
            await _check_output(agent, ctx, key, self.response.message)
        except GuardrailTripped as trip:
            record_trip(ctx, trip)
            raise


Send = Callable[[tuple[str, Any]], Awaitable[None]]


async def _produce_call(
    agent: ChatModelAgent,
    ctx: RunContext,
    model: ChatModel | str,
    request: ModelRequest,
    send: Send,
) -> None:
    """Run the streamed call through the chain, sending its chunks, then its response."""
    serving_stream = _serving_stream(ctx)
    streamed = False

    async def call(request: ModelRequest) -> ModelResponse:
        nonlocal streamed
        assembler = ChunkAssembler()
        chunks = serving_stream(model, request)
        try:
            async for chunk in chunks:
                assembler.add(chunk)
                streamed = True
                await send(("chunk", chunk))
        finally:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()
        return assembler.response()

    try:
        chain = _chain(agent, ctx.guards)
        response = await (run_model_chain(chain, request, call) if chain else call(request))
    except Exception as exc:
        await send(("error", exc))
        return
    if not streamed and response.message.content:
        await send(("chunk", ModelChunk(content=response.message.content)))
    await send(("done", response))


async def _produce_checks(checks: Callable[[], Awaitable[None]], send: Send) -> None:
    try:
        await checks()
    except Exception as exc:
        await send(("tripped", exc))
        return
    await send(("passed", None))
