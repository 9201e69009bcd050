"""Prices and sizes for usage budgets: what a call costs, how big a request is.

Kept apart from the account (``adk.state.budgets``): prices come from three
places (a backend's ``Cost``, ``UsageLimits.price``, litellm's data for a
model id) and a request's size is estimated before it is sent.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from adk.content import SEEN, media_tokens
from adk.messages import Message, Usage

if TYPE_CHECKING:
    from adk.models.base import ToolSpec


def free(usage: Usage) -> float:
    """The price of a call nothing prices."""
    return 0.0


def litellm_price(model_id: str) -> Callable[[Usage], float]:
    """litellm's per-token prices for ``model_id`` (0 when litellm is not loaded or has none).

    litellm is not imported here: a model id is only called through it, so it
    is loaded by the time a reply is priced (a first call's estimate may be free).
    """

    def price(usage: Usage) -> float:
        litellm: Any = sys.modules.get("litellm")
        if litellm is None:
            return 0.0
        try:
            prompt, completion = litellm.cost_per_token(
                model=model_id,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
            )
        except Exception:  # litellm knows no price for this id
            return 0.0
        return float(prompt) + float(completion)

    return price


def estimate_tokens(messages: Sequence[Message], tools: Sequence[ToolSpec] = ()) -> int:
    """A request's estimated prompt tokens: 4 characters a token, plus media parts.

    The same estimate as ``ScriptedModel``'s usage figures (docs/multimodal.md
    for parts), so a scripted run's checks match its replies exactly.
    """
    chars = 16 * len(messages)
    for message in messages:
        chars += len(message.content)
        if message.tool_calls:
            for call in message.tool_calls:
                chars += len(call.name) + len(call.arguments)
    for spec in tools:
        chars += len(spec.name) + len(spec.description) + 32
    tokens = (chars + 3) // 4
    if SEEN.parts:
        for message in messages:
            if message.parts:
                tokens += media_tokens(message.parts)
    return tokens
