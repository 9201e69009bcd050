"""Recording a run's trajectory: model calls, tool calls, events and timings (opt-in).

``Runner(..., trajectories=True)`` gives each run a :class:`TrajectoryRecorder`
(``RunContext._shared.recorder``); without it the slot is None and every hook
below costs one ``is None`` check. The recorder keeps what one execution of
the run did in memory and writes it as one record when the execution ends
(finished, failed or paused at interrupts): a resumed run adds a record of
its own, so the trajectory read back covers every execution
(:mod:`adk.runner.trajectory` reads it).

Calls replayed from the journal on a resume are not recorded again (they
never reach the hooks), and events replayed to agents are skipped, so the
records of successive executions add up without repeats.

Record ``tr:<n>`` (msgpack, :mod:`adk.state.serde`) holds execution ``n``::

    {"v": 1, "n": n, "s": started, "e": ended, "st": status,
     "ev": [event...], "mc": [model call...], "tc": [tool call...]}

Messages are stored as the journal stores them
(:func:`adk.state.journal.encode_message`): binary parts stay msgpack bytes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any

from adk.events import AgentEvent
from adk.messages import Message, ToolCall
from adk.models.base import ChatModel, ChunkAssembler, ModelChunk, ModelRequest, ModelResponse
from adk.state.journal import RunJournal, encode_message
from adk.state.serde import dumps
from adk.state.stores.base import CheckpointStore

logger = logging.getLogger("adk.runner")

RECORD_PREFIX = "tr:"
"""Names of trajectory records in a run's namespace (``tr:0000000000``, one per execution)."""
RECORD_VERSION = 1

Generate = Callable[[ChatModel | str, ModelRequest], Awaitable[ModelResponse]]
Stream = Callable[[ChatModel | str, ModelRequest], AsyncIterator[ModelChunk]]


def record_name(execution: int) -> str:
    """The name of the trajectory record of execution ``execution`` of a run."""
    return f"{RECORD_PREFIX}{execution:010d}"


def encode_event(event: AgentEvent) -> dict[str, Any]:
    """The stored form of a delivered event: who, its message, error, and control action."""
    encoded: dict[str, Any] = {"a": event.agent_name, "p": list(event.run_path)}
    message = event.message
    if message is not None:
        encoded["m"] = encode_message(message)
    error = event.error
    if error is not None:
        encoded["x"] = [error.type, error.message, list(error.run_path)]
    action = event.action
    if action is not None:
        if action.interrupted is not None:
            encoded["i"] = [info.id for info in action.interrupted.interrupts]
        if action.transfer_to_agent is not None:
            encoded["t"] = action.transfer_to_agent.dest
        if action.exit:
            encoded["q"] = True
    return encoded


class TrajectoryRecorder:
    """What one execution of a run did, kept until it ends, then written to the store."""

    __slots__ = ("ended", "events", "model_calls", "run_id", "started", "tool_calls", "ttl")

    def __init__(self, run_id: str, ttl: float | None = None) -> None:
        self.run_id = run_id
        self.ttl = ttl
        self.started = time.time()
        self.ended = 0.0
        self.events: list[dict[str, Any]] = []
        self.model_calls: list[dict[str, Any]] = []
        self.tool_calls: list[dict[str, Any]] = []

    # -- model calls ------------------------------------------------------------------

    def _model_call(
        self,
        key: str,
        request: ModelRequest,
        started: float,
        response: ModelResponse | None,
        error: BaseException | None,
    ) -> None:
        record: dict[str, Any] = {
            "k": key,
            "a": request.agent_name,
            "q": [encode_message(message) for message in request.messages],
            "tl": [spec.name for spec in request.tools],
            "s": started,
            "e": time.time(),
            "st": request.stream,
        }
        if response is not None:
            record["r"] = encode_message(response.message)
            usage = response.usage
            record["u"] = [usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens]
            record["f"] = response.finish_reason
            record["md"] = response.model
        if error is not None:
            record["x"] = f"{type(error).__name__}: {error}"
        self.model_calls.append(record)

    def generate(self, inner: Generate, key: str) -> Generate:
        """``inner`` (how the agent makes model call ``key``), recording the call."""

        async def call(model: ChatModel | str, request: ModelRequest) -> ModelResponse:
            started = time.time()
            try:
                response = await inner(model, request)
            except BaseException as exc:
                self._model_call(key, request, started, None, exc)
                raise
            self._model_call(key, request, started, response, None)
            return response

        return call

    def stream(self, inner: Stream, key: str) -> Stream:
        """``inner`` (how the agent streams model call ``key``), recording the call."""

        def call(model: ChatModel | str, request: ModelRequest) -> RecordedStream:
            return RecordedStream(self, key, request, inner(model, request))

        return call

    # -- tool calls -------------------------------------------------------------------

    async def tool_call(
        self, run: Awaitable[Any], call: ToolCall, key: str, agent_name: str
    ) -> Any:
        """Await ``run`` (tool call ``key`` running) and record its result and timing."""
        started = time.time()
        record: dict[str, Any] = {
            "k": key,
            "a": agent_name,
            "i": call.id,
            "n": call.name,
            "g": call.arguments,
            "s": started,
        }
        try:
            outcome = await run
        except BaseException as exc:
            record["e"] = time.time()
            record["x"] = f"{type(exc).__name__}: {exc}"
            self.tool_calls.append(record)
            raise
        record["e"] = time.time()
        message = getattr(outcome, "message", None)
        if isinstance(message, Message):
            record["r"] = encode_message(message)
        record["fl"] = bool(getattr(outcome, "failed", False))
        if getattr(outcome, "interrupts", None):
            record["pi"] = [info.id for info in outcome.interrupts]
        self.tool_calls.append(record)
        return outcome

    # -- events and the end of the execution ------------------------------------------

    async def watch(
        self, events: AsyncGenerator[AgentEvent, None], journal: RunJournal
    ) -> AsyncGenerator[AgentEvent, None]:
        """Pass ``events`` through, recording each complete one not replayed from before."""
        try:
            async for event in events:
                if not event.partial and not journal.is_replayed(event):
                    self.events.append(encode_event(event))
                yield event
        finally:
            await events.aclose()

    async def save(self, store: CheckpointStore, namespace: str, status: str) -> None:
        """Write this execution's record (after any earlier execution's); a failure is logged."""
        self.ended = time.time()
        try:
            earlier = await store.scan(namespace, RECORD_PREFIX)
            record = {
                "v": RECORD_VERSION,
                "n": len(earlier),
                "s": self.started,
                "e": self.ended,
                "st": status,
                "ev": self.events,
                "mc": self.model_calls,
                "tc": self.tool_calls,
            }
            await store.put(namespace, record_name(len(earlier)), dumps(record), ttl=self.ttl)
        except Exception as exc:
            logger.warning("run %s: trajectory not recorded: %r", self.run_id, exc)


class RecordedStream:
    """A streamed model call passed through as is, recorded when it ends.

    :attr:`response` is the response a middleware chain gave (when the inner
    stream has one), for :func:`adk.agents.guarding.streamed_response`.
    """

    __slots__ = ("_assembler", "_inner", "_key", "_recorder", "_request", "_started", "response")

    def __init__(
        self,
        recorder: TrajectoryRecorder,
        key: str,
        request: ModelRequest,
        inner: AsyncIterator[ModelChunk],
    ) -> None:
        self._recorder = recorder
        self._key = key
        self._request = request
        self._inner = inner
        self._assembler = ChunkAssembler()
        self._started = time.time()
        self.response: ModelResponse | None = None

    def __aiter__(self) -> RecordedStream:
        return self

    async def __anext__(self) -> ModelChunk:
        try:
            chunk = await self._inner.__anext__()
        except StopAsyncIteration:
            inner = getattr(self._inner, "response", None)
            self.response = inner if isinstance(inner, ModelResponse) else None
            response = self.response or self._assembler.response()
            self._recorder._model_call(self._key, self._request, self._started, response, None)
            raise
        except BaseException as exc:
            self._recorder._model_call(self._key, self._request, self._started, None, exc)
            raise
        self._assembler.add(chunk)
        return chunk

    async def aclose(self) -> None:
        """Close the inner stream."""
        aclose = getattr(self._inner, "aclose", None)
        if aclose is not None:
            await aclose()
