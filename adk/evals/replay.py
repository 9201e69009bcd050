"""Replay: run an agent (perhaps changed code) against a recorded trajectory's model answers.

A :class:`ReplayModel` is a :class:`~adk.ChatModel` that answers each call
with the response recorded for the same call key (``<agent address>|m<n>``,
stable across runs), so a run replays with zero real model calls. Before
answering it checks the request against the recorded one: when the code now
sends the model something else (another prompt, a different tool result,
more calls than were recorded) it raises :class:`ReplayDivergence` saying
which call and what differs. The run ends with that error, as with any
model error: ``Runner.invoke`` raises it, ``Runner.run`` ends with its
error event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from adk.errors import AdkError
from adk.messages import Message
from adk.models.base import ModelChunk, ModelRequest, ModelResponse, ToolCallDelta
from adk.runner.trajectory import ModelCall, Trajectory


class ReplayDivergence(AdkError):
    """The replayed run asked the model something the recording did not (see :class:`ReplayModel`).

    Attributes: ``key`` (the call key), ``agent_name`` and ``reason``.
    """

    def __init__(self, key: str, agent_name: str, reason: str) -> None:
        self.key = key
        self.agent_name = agent_name
        self.reason = reason
        super().__init__(f"replay diverged at model call {key!r} of agent {agent_name!r}: {reason}")

    def __reduce__(self) -> tuple[type[ReplayDivergence], tuple[str, str, str]]:
        return type(self), (self.key, self.agent_name, self.reason)


def _shown(message: Message) -> str:
    """One message as a diff line: role, text (cut) and tool calls, without ids."""
    text = message.content if len(message.content) <= 120 else message.content[:117] + "..."
    line = f"{message.role}: {text!r}"
    if message.name and message.role == "tool":
        line = f"tool {message.name!r}: {text!r}"
    if message.tool_calls:
        calls = ", ".join(f"{call.name}({call.arguments})" for call in message.tool_calls)
        line += f" calls {calls}"
    if message.parts:
        line += f" +{len(message.parts)} parts"
    return line


def _same(recorded: Message, sent: Message) -> bool:
    """Equal for the model: role, text, tool calls (name and arguments), parts."""
    return (
        recorded.role == sent.role
        and recorded.content == sent.content
        and [(c.name, c.arguments) for c in recorded.tool_calls]
        == [(c.name, c.arguments) for c in sent.tool_calls]
        and recorded.parts == sent.parts
    )


def request_difference(recorded: ModelCall, request: ModelRequest) -> str | None:
    """What differs between the recorded call's messages and ``request``'s (None: nothing)."""
    before, now = recorded.messages, request.messages
    for index in range(max(len(before), len(now))):
        if index >= len(before):
            return f"message {index} is new: {_shown(now[index])}"
        if index >= len(now):
            return f"message {index} is missing: recorded {_shown(before[index])}"
        if not _same(before[index], now[index]):
            return (
                f"message {index} differs: recorded {_shown(before[index])}, "
                f"now {_shown(now[index])}"
            )
    return None


class ReplayModel:
    """Answers model calls from a recorded :class:`~adk.Trajectory` (see the module docstring).

    - ``check_requests``: compare each request with the recorded one (the
      default); False only serves the recorded answers by call key.
    - Every answered call key is in :attr:`replayed`; :attr:`unused` lists
      recorded calls the run never made (fewer calls than recorded).

    Give it to every chat-model agent of the replayed tree (one instance
    serves them all: calls are matched by key, not by order).
    """

    def __init__(self, trajectory: Trajectory, *, check_requests: bool = True) -> None:
        if not isinstance(trajectory, Trajectory):
            raise TypeError(f"ReplayModel needs a Trajectory, got {type(trajectory).__name__}")
        self.trajectory = trajectory
        self.check_requests = check_requests
        self.name = f"replay:{trajectory.run_id}"
        self._calls: dict[str, ModelCall] = {}
        for call in trajectory.model_calls:
            if call.response is not None:
                self._calls[call.key] = call  # a call retried after a resume: the last answer
        self.replayed: list[str] = []
        """Keys of the calls answered, in order."""
        self.divergences: list[ReplayDivergence] = []
        """Every divergence raised (also when the agent's code caught it)."""

    @property
    def unused(self) -> list[str]:
        """Keys of recorded calls the replay has not made (yet)."""
        done = set(self.replayed)
        return [key for key in self._calls if key not in done]

    def _diverged(self, key: str, agent: str, reason: str) -> ReplayDivergence:
        error = ReplayDivergence(key, agent, reason)
        self.divergences.append(error)
        return error

    def _recorded(self, request: ModelRequest) -> ModelCall:
        key = request.call_id.partition(":")[2] or request.call_id
        recorded = self._calls.get(key)
        if recorded is None:
            where = f"{len(self._calls)} recorded calls"
            reason = (
                "the recording has no such call (the code makes more or other model calls "
                f"than the recorded run: {where}, keys {sorted(self._calls)[:8]})"
            )
            raise self._diverged(key, request.agent_name, reason)
        if key in self.replayed:
            raise self._diverged(key, request.agent_name, "this call was already replayed")
        if self.check_requests:
            difference = request_difference(recorded, request)
            if difference is not None:
                raise self._diverged(key, request.agent_name, difference)
        self.replayed.append(key)
        return recorded

    async def generate(self, request: ModelRequest) -> ModelResponse:
        """The recorded answer to this call (:class:`ReplayDivergence` if it differs)."""
        recorded = self._recorded(request)
        assert recorded.response is not None
        usage = recorded.usage if recorded.usage is not None else recorded.response.usage
        response: dict[str, Any] = {"message": recorded.response, "model": self.name}
        if usage is not None:
            response["usage"] = usage
        return ModelResponse(finish_reason=recorded.finish_reason, **response)

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelChunk]:
        """:meth:`generate`'s answer as chunks (text, then each tool call, then usage)."""
        response = await self.generate(request)
        message = response.message
        if message.content:
            yield ModelChunk(content=message.content)
        for index, call in enumerate(message.tool_calls):
            delta = ToolCallDelta(index=index, id=call.id, name=call.name, arguments=call.arguments)
            yield ModelChunk(tool_calls=(delta,))
        yield ModelChunk(
            usage=response.usage, finish_reason=response.finish_reason, model=response.model
        )
