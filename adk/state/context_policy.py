"""ContextPolicy: how an agent keeps its conversation inside the model's context window.

Long tool loops and long sessions outgrow a model's window. A policy (per
agent, or a Runner default) says how big the window is, how tokens are
counted, and when old tool results are garbage-collected (docs/context.md).
Nothing here runs unless a policy is set: without one a model call does not
count tokens and litellm is not imported.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from adk.errors import ArgumentTypeError, ConfigurationError
from adk.messages import Message
from adk.state.pricing import estimate_tokens

if TYPE_CHECKING:
    from adk.models.base import ChatModel, ToolSpec
    from adk.state.context import RunContext

REGIONS: dict[str, int] = {
    "tool_results": 1,
    "recent_history": 2,
    "hydrated_context": 3,
    "compacted_history": 4,
    "system_prompt": 5,
}
"""The context's regions by priority: lower ones are evicted first (system prompt never)."""

COMPACTION_STARTING = "compaction_starting"
"""Event kind: a compaction begins (before the summariser is called)."""
COMPACTION_COMPLETE = "compaction_complete"
"""Event kind: a compaction ended, with tokens before and after and the summary."""
GC_COMPLETE = "gc_complete"
"""Event kind: old tool results were elided, with tokens before/after and the call ids."""
CONTEXT_EVENT_KINDS = (COMPACTION_STARTING, COMPACTION_COMPLETE, GC_COMPLETE)
"""Every context event kind: ``event.output.custom["kind"]`` of a context event."""

DEFAULT_WINDOW = 128_000
"""The window of a model litellm does not know (nor the policy's ``window=``)."""

Counter = Callable[[Sequence[Message], Sequence["ToolSpec"]], int]
"""Counts the prompt tokens of messages plus tool specs."""


@dataclass(frozen=True, slots=True)
class SummaryRequest:
    """What a summariser is asked to summarise, and for whom.

    ``messages`` are the older part of the conversation (a summary of an
    earlier compaction among them, first); ``max_tokens`` is the summary's
    budget. ``model``, ``stage`` and ``call_id`` let a model-backed summariser
    call through the serving layer as the agent would (``ctx.serving``).
    """

    messages: tuple[Message, ...]
    max_tokens: int
    agent: str
    model: ChatModel | str
    stage: str
    call_id: str
    ctx: RunContext


@runtime_checkable
class Summariser(Protocol):
    """Writes the summary that replaces the older turns when a context is compacted.

    Return the summary text, or a :class:`~adk.Message` whose ``content`` is
    the summary and whose ``usage`` is charged to the run. Raising (or
    returning nothing) makes compaction use its fallback (docs/context.md).
    A plain ``async def summarise(request) -> str`` function works too.
    """

    async def summarise(self, request: SummaryRequest) -> str | Message:
        """The summary of ``request.messages``."""
        ...


SummariseFunction = Callable[[SummaryRequest], Awaitable["str | Message"]]
"""A summariser given as a plain async function."""


def _number(field: str, value: object, low: float, high: float | None = None) -> float:
    """``value`` as a number in ``[low, high]``; the error names ``field``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ArgumentTypeError(f"ContextPolicy: {field} must be a number, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigurationError(f"ContextPolicy: {field} must be {bound}, got {value!r}")
    return value


def _whole(field: str, value: object, low: int) -> int:
    """``value`` as an int of at least ``low``; the error names ``field``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentTypeError(f"ContextPolicy: {field} must be an int, got {value!r}")
    return int(_number(field, value, low))


class ContextPolicy:
    """How an agent's context is kept within its model's window.

    - ``window``: the model's context window in tokens; default: litellm's
      ``max_input_tokens`` for the model id, else ``fallback_window``.
    - ``fallback_window``: the window of a model nobody knows (128,000).
    - ``threshold``: the fraction of the window at which the context is
      managed (0.6): tool-result GC runs when a call's prompt would pass it.
    - ``headroom``: tokens kept free for the reply (6,400); the usable
      window is ``window - headroom``.
    - ``tool_result_max_age``: a tool result followed by this many model
      replies (3) may be elided by GC.
    - ``gc``: elide old tool results (True); the agent then has a ``recall``
      tool that returns an elided result by call id.
    - ``gc_batch``: also run GC when this many results are old enough, below
      the threshold too (None: only at the threshold). GC runs in rare, large
      steps so the prompt prefix stays identical between them (prefix cache).
    - ``compaction``: when GC cannot bring a prompt under the threshold,
      summarise the older turns into one summary message (True).
    - ``summariser``: writes that summary; default :class:`~adk.ModelSummariser`
      (the agent's own model, through the serving layer as its own stage).
    - ``keep_recent``: the fraction of the usable window kept verbatim, newest
      messages, when compacting (0.25); the rest (but pinned messages and the
      latest user message) is summarised.
    - ``pinned``: ``pinned(message)`` True keeps that message whole, always.
    - ``counter``: counts a prompt's tokens; default: litellm's
      ``token_counter`` for a model id litellm knows, else adk's estimate
      (4 characters a token; the estimate ScriptedModel reports).
    """

    __slots__ = (
        "_models",
        "compaction",
        "counter",
        "fallback_window",
        "gc",
        "gc_batch",
        "headroom",
        "keep_recent",
        "pinned",
        "summariser",
        "threshold",
        "tool_result_max_age",
        "window",
    )

    def __init__(
        self,
        *,
        window: int | None = None,
        fallback_window: int = DEFAULT_WINDOW,
        threshold: float = 0.6,
        headroom: int = 6_400,
        tool_result_max_age: int = 3,
        gc: bool = True,
        gc_batch: int | None = None,
        compaction: bool = True,
        summariser: Summariser | SummariseFunction | None = None,
        keep_recent: float = 0.25,
        pinned: Callable[[Message], bool] | None = None,
        counter: Counter | None = None,
    ) -> None:
        self.window = None if window is None else _whole("window", window, 1)
        self.fallback_window = _whole("fallback_window", fallback_window, 1)
        self.threshold = float(_number("threshold", threshold, 0.01, 1.0))
        self.headroom = _whole("headroom", headroom, 0)
        self.tool_result_max_age = _whole("tool_result_max_age", tool_result_max_age, 1)
        for field, flag in (("gc", gc), ("compaction", compaction)):
            if not isinstance(flag, bool):
                raise ArgumentTypeError(f"ContextPolicy: {field} must be a bool, got {flag!r}")
        self.gc = gc
        self.compaction = compaction
        self.keep_recent = float(_number("keep_recent", keep_recent, 0.0, 0.9))
        if summariser is not None and not (
            callable(summariser) or callable(getattr(summariser, "summarise", None))
        ):
            raise ArgumentTypeError(
                "ContextPolicy: summariser must have an async summarise(request) method "
                f"or be an async function, got {summariser!r}"
            )
        self.summariser = summariser
        self.gc_batch = None if gc_batch is None else _whole("gc_batch", gc_batch, 1)
        for field, fn in (("pinned", pinned), ("counter", counter)):
            if fn is not None and not callable(fn):
                raise ArgumentTypeError(f"ContextPolicy: {field} must be callable, got {fn!r}")
        self.pinned = pinned
        self.counter = counter
        for limit in (self.window, self.fallback_window):
            if limit is not None and self.headroom >= limit:
                raise ConfigurationError(
                    f"ContextPolicy: headroom ({self.headroom}) must be smaller than "
                    f"the window ({limit})"
                )
        self._models: dict[str, tuple[int, Counter]] = {}

    def __repr__(self) -> str:
        """The settings, for logs and error messages."""
        return (
            f"ContextPolicy(window={self.window}, threshold={self.threshold}, "
            f"headroom={self.headroom}, tool_result_max_age={self.tool_result_max_age}, "
            f"gc={self.gc}, gc_batch={self.gc_batch}, compaction={self.compaction}, "
            f"keep_recent={self.keep_recent})"
        )

    async def for_model(self, model: ChatModel | str) -> tuple[int, Counter]:
        """The window and token counter for ``model`` (litellm asked once per model id)."""
        model_id = model if isinstance(model, str) else getattr(model, "model", None)
        if not isinstance(model_id, str) or not model_id:
            return self.window or self.fallback_window, self.counter or estimate_tokens
        known = self._models.get(model_id)
        if known is None:
            from adk.models.litellm_model import _load_litellm

            known = litellm_limits(await _load_litellm(), model_id, self)
            self._models[model_id] = known
        return known


def checked_context(owner: str, context: object) -> ContextPolicy | None:
    """``context`` if it is a ContextPolicy or None; the error names ``owner``."""
    if context is not None and not isinstance(context, ContextPolicy):
        raise ArgumentTypeError(f"{owner}: context must be a ContextPolicy, got {context!r}")
    return context


def litellm_limits(litellm: Any, model_id: str, policy: ContextPolicy) -> tuple[int, Counter]:
    """The window and counter litellm knows for ``model_id`` (the policy's settings first)."""
    window = policy.window
    known = True
    try:
        info = litellm.get_model_info(model_id)
    except Exception:  # litellm does not know the model
        info, known = {}, False
    if window is None:
        size = info.get("max_input_tokens") or info.get("max_tokens")
        window = int(size) if isinstance(size, int) and size > 0 else policy.fallback_window
    if policy.counter is not None:
        return window, policy.counter
    if not known:
        return window, estimate_tokens

    memo: dict[int, tuple[Message, int]] = {}

    def one(message: Message) -> int:
        # Messages are immutable and a conversation only grows: each is tokenized once.
        known = memo.get(id(message))
        if known is not None and known[0] is message:
            return known[1]
        wire = [{"role": message.role, "content": message.content}]
        tokens = int(litellm.token_counter(model=model_id, messages=wire))
        if len(memo) >= 8_192:  # long-lived policies: keep the memo bounded
            memo.clear()
        memo[id(message)] = (message, tokens)
        return tokens

    def count(messages: Sequence[Message], tools: Sequence[ToolSpec] = ()) -> int:
        try:
            tokens = sum(one(message) for message in messages)
            return tokens + (estimate_tokens((), tools) if tools else 0)
        except Exception:  # a tokenizer litellm cannot load: the estimate
            return estimate_tokens(messages, tools)

    return window, count
