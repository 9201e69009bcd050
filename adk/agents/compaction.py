"""Compaction: the older part of a long conversation becomes one summary message.

When tool-result GC (adk.agents.context_gc) cannot bring a prompt under the
policy's threshold, the older turns are summarised into the
``compacted_history`` region: the prompt becomes the system prompt, one
summary message, the pinned messages (the latest user request, messages the
policy pins) and the newest messages verbatim (``keep_recent`` of the usable
window). The summary is rewritten only at the next compaction, so between two
compactions the prompt's head (system prompt, tools, summary) is unchanged and
the engine's prefix cache stays warm: compaction is one large, rare step.

The plan (which messages go, which stay) is a pure function of the messages;
the summary comes from a :class:`~adk.state.context_policy.Summariser`,
by default :class:`ModelSummariser`. The outcome is journaled under
``<model call key>|compaction``: a resumed or replayed run applies the same
summary at the same call and never summarises again.
"""

from __future__ import annotations

import inspect
from collections import Counter as Tally
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from adk.messages import Message, Usage
from adk.state.context_policy import SummaryRequest

if TYPE_CHECKING:
    from adk.agents.context_gc import TurnContext
    from adk.models.base import ChatModel

COMPACTION_SUFFIX = "|compaction"
"""Journal values ``<model call key>|compaction`` hold the compaction taken there."""

SUMMARY_HEADER = "[Summary of the earlier conversation, compacted to fit the context window]"
"""The first line of every summary message (how a later compaction recognises one)."""

DEFAULT_INSTRUCTION = (
    "Summarise the conversation below for the assistant that will continue it; the "
    "summary replaces it. Keep the user's goal and constraints, decisions taken, facts and "
    "results found (with their numbers, names and ids), which tools were called and what "
    "they returned in brief, open questions and next steps. If the conversation starts with "
    "an earlier summary, fold it in. Plain sentences and lists, no preamble, at most "
    "{max_tokens} tokens."
)
"""The default summariser's system prompt (``{max_tokens}`` is filled in)."""


def is_summary(message: Message) -> bool:
    """True for a summary message written by a compaction."""
    return message.role == "user" and message.content.startswith(SUMMARY_HEADER)


def summary_message(text: str) -> Message:
    """The user-role message holding a summary (the ``compacted_history`` region)."""
    return Message.user(f"{SUMMARY_HEADER}\n{text.strip()}")


def transcript(messages: tuple[Message, ...] | list[Message]) -> str:
    """The messages as plain text for a summariser: one labelled block per message."""
    lines: list[str] = []
    for message in messages:
        text = message.content
        if message.parts and not text:
            text = " ".join(f"[{type(part).__name__}]" for part in message.parts)
        if message.role == "tool":
            lines.append(f"[tool {message.name or ''} result, call {message.tool_call_id}] {text}")
            continue
        if text:
            lines.append(f"[{message.role}] {text}")
        for call in message.tool_calls:
            lines.append(f"[{message.role} called {call.name}, call {call.id}] {call.arguments}")
    return "\n".join(lines)


class ModelSummariser:
    """Summarises with a model call through the serving layer, as its own stage.

    - ``model``: a :class:`~adk.ChatModel` or a model name (a cheaper backend
      for summaries); default: the agent's own model.
    - ``instruction``: the system prompt (``{max_tokens}`` is filled in).
    - ``params``: inference parameters (default temperature 0 and the
      summary's token budget as ``max_tokens``).

    The call's stage is ``"<agent stage>.compaction"``: the serving layer keeps
    its cache context apart from the agent's, and a ``CachePolicy`` or a
    backend choice can address it by name. It counts against the run's usage
    limits like any model call.
    """

    __slots__ = ("instruction", "model", "params")

    def __init__(
        self,
        model: ChatModel | str | None = None,
        *,
        instruction: str = DEFAULT_INSTRUCTION,
        params: dict[str, Any] | None = None,
    ) -> None:
        from adk.agents.settings import checked_model

        self.model = None if model is None else checked_model("ModelSummariser", model)
        self.instruction = instruction
        self.params = dict(params or {})

    def __repr__(self) -> str:
        """The model the summaries come from."""
        return f"ModelSummariser(model={self.model!r})"

    async def summarise(self, request: SummaryRequest) -> Message:
        """One model call that returns the summary (with its usage)."""
        from adk.agents.guarding import _serving_generate
        from adk.models.base import ModelRequest

        ctx, model = request.ctx, self.model or request.model
        messages = [
            Message.system(self.instruction.replace("{max_tokens}", str(request.max_tokens))),
            Message.user(transcript(request.messages)),
        ]
        account = ctx._shared.account
        if account is not None and account.limited:
            account.before_model(request.agent, model, messages, (), request.call_id)
        params = {"temperature": 0, "max_tokens": request.max_tokens, **self.params}
        response = await _serving_generate(ctx)(
            model,
            ModelRequest(
                messages=messages,
                tools=[],
                params=params,
                stream=False,
                run_id=ctx.run_id,
                session_id=ctx.session_id,
                agent_name=request.agent,
                agent_path=ctx.run_path,
                stage=request.stage,
                call_id=request.call_id,
            ),
        )
        return response.message


@dataclass(slots=True)
class CompactionPlan:
    """Which messages a compaction replaces: ``[head, cut)`` less ``pinned``."""

    head: int
    """Leading system messages (never touched)."""
    cut: int
    """Where the verbatim tail starts."""
    pinned: list[int]
    """Indices in ``[head, cut)`` kept whole (in order), after the summary."""

    def summarised(self, messages: list[Message]) -> list[Message]:
        """The messages the summary stands for."""
        keep = set(self.pinned)
        return [messages[i] for i in range(self.head, self.cut) if i not in keep]

    def apply(self, messages: list[Message], summary: str) -> list[Message]:
        """``messages`` compacted: system prompt, summary, pinned messages, tail."""
        return [
            *messages[: self.head],
            summary_message(summary),
            *(messages[i] for i in self.pinned),
            *messages[self.cut :],
        ]

    def as_value(self) -> dict[str, Any]:
        """The plan as journal data."""
        return {"head": self.head, "cut": self.cut, "pinned": list(self.pinned)}

    @classmethod
    def from_value(cls, value: dict[str, Any]) -> CompactionPlan:
        """The plan journaled by :meth:`as_value`."""
        return cls(int(value["head"]), int(value["cut"]), [int(i) for i in value["pinned"]])


def plan_compaction(state: TurnContext, messages: list[Message]) -> CompactionPlan | None:
    """The compaction of ``messages`` under ``state``'s policy, or None (nothing to summarise).

    The tail is the longest run of newest messages within ``keep_recent`` of
    the usable window that starts at a message a chat API accepts first (not a
    tool result), and at least the last such run. The latest user request and
    the policy's pinned messages stay whole, with the tool call they answer.
    """
    head = 0
    while head < len(messages) and messages[head].role == "system":
        head += 1
    sizes = [state.counter([message], ()) for message in messages]
    budget = state.policy.keep_recent * (state.window - state.policy.headroom)
    cut, tail = len(messages), 0
    for index in range(len(messages) - 1, head, -1):
        tail += sizes[index]
        if messages[index].role == "tool":
            continue
        if tail > budget and cut < len(messages):
            break
        cut = index
    if cut >= len(messages):
        return None
    pinned = _pinned(state, messages, head, cut)
    if all(index in pinned for index in range(head, cut)):
        return None
    return CompactionPlan(head, cut, sorted(pinned))


def _pinned(state: TurnContext, messages: list[Message], head: int, cut: int) -> set[int]:
    """Indices in ``[head, cut)`` to keep: the latest user request, pinned messages, their calls."""
    pinned: set[int] = set()
    for index in range(len(messages) - 1, head - 1, -1):
        message = messages[index]
        if message.role == "user" and not is_summary(message):
            if index < cut:
                pinned.add(index)
            break
    keep = state.policy.pinned
    if keep is not None:
        pinned.update(i for i in range(head, cut) if keep(messages[i]))
    for index in sorted(pinned):  # a kept tool result keeps its call and the call's results
        if messages[index].role != "tool":
            continue
        start = index
        while start > head and messages[start].role == "tool":
            start -= 1
        end = start + 1
        while end < cut and messages[end].role == "tool":
            end += 1
        pinned.update(range(start, end))
    return pinned


def fallback_summary(summarised: list[Message], error: str) -> str:
    """The summary used when the summariser failed: what was dropped, and how to get it back.

    Deterministic, so it can be journaled and replayed like a real one; an
    earlier summary among the dropped messages is carried over whole.
    """
    earlier = [m.content[len(SUMMARY_HEADER) :].strip() for m in summarised if is_summary(m)]
    tools = Tally(call.name for m in summarised for call in m.tool_calls)
    made = ", ".join(f"{name} x{count}" for name, count in sorted(tools.items())) or "none"
    text = (
        f"The summariser failed ({error}); {len(summarised)} earlier messages were dropped "
        f"unsummarised. Tool calls made in them: {made}. An earlier tool result can be "
        "fetched again with recall(call_id) or by calling the tool again."
    )
    return "\n".join([*earlier, text])


async def summarise(summariser: Any, request: SummaryRequest) -> tuple[str, Usage | None]:
    """Ask ``summariser`` (an object with ``summarise`` or an async function) for a summary.

    Raises ValueError for an empty or non-text answer: the caller falls back.
    """
    method = getattr(summariser, "summarise", None)
    result = (method or summariser)(request)
    if inspect.isawaitable(result):
        result = await result
    usage = None
    if isinstance(result, Message):
        usage, result = result.usage, result.content
    if not isinstance(result, str) or not result.strip():
        raise ValueError(f"the summariser returned no summary text: {result!r}")
    return result.strip(), usage


def truncated(text: str, max_tokens: int) -> str:
    """``text`` cut to about ``max_tokens`` tokens (4 characters a token), marked if cut."""
    limit = max_tokens * 4
    if len(text) <= limit:
        return text
    return text[:limit].rstrip() + " [summary truncated]"


MARKER_PREFIX = "adk.compacted:"
"""The ``name`` of the history marker a compaction leaves: ``adk.compacted:<kept>:<pinned>``.

The marker is the compaction event's message: it enters the run's history and
a stored session, and :func:`compacted_view` shows, in its place, the summary
followed by the ``kept`` entries before it (and the pinned ones, at the given
distances back): a later turn starts from the compacted conversation.
"""


def parse_marker(message: Message) -> tuple[int, list[int]] | None:
    """``(kept, pinned distances)`` of a compaction marker, or None for any other message."""
    name = message.name
    if name is None or message.role != "user" or not name.startswith(MARKER_PREFIX):
        return None
    try:
        kept, _, pinned = name[len(MARKER_PREFIX) :].partition(":")
        return int(kept), [int(d) for d in pinned.split(".") if d]
    except ValueError:  # a crafted name: not a marker
        return None


def marker_message(summary: str, kept: int, distances: list[int]) -> Message:
    """The history marker of a compaction (see :data:`MARKER_PREFIX`)."""
    name = f"{MARKER_PREFIX}{kept}:{'.'.join(str(d) for d in distances)}"
    return summary_message(summary).model_copy(update={"name": name})
