"""UsageLimits: what one run may use (model calls, tokens, cost, tool calls, wall time).

A value object checked when it is built, so a bad limit fails where it is
written, naming the field. The account that enforces it is
``adk.state.budgets``; docs/budgets.md explains each field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

from adk.errors import ConfigurationError

if TYPE_CHECKING:
    from adk.serving.config import Cost

_LIMITS = (
    "max_model_calls",
    "max_input_tokens",
    "max_output_tokens",
    "max_total_tokens",
    "max_cost",
    "max_tool_calls",
    "max_seconds",
)


def _checked_count(name: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"UsageLimits {name} must be an int or None, got {value!r}")
    if value < 0:
        raise ConfigurationError(f"UsageLimits {name} must be >= 0, got {value}")
    return value


def _checked_amount(name: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"UsageLimits {name} must be a number or None, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ConfigurationError(f"UsageLimits {name} must be a finite number >= 0, got {value}")
    return float(value)


class UsageLimits:
    """Limits on what one run may use; every field None (the default) means no limit.

    - ``max_model_calls``: model calls; ``max_tool_calls``: tool calls.
    - ``max_input_tokens`` / ``max_output_tokens`` / ``max_total_tokens``:
      prompt, completion and prompt-plus-completion tokens.
    - ``max_cost``: cost in USD (or whatever currency the prices are in).
    - ``max_seconds``: wall time of the run's execution (a resumed run's
      clock starts again at the resume).
    - ``price``: a :class:`~adk.Cost` for calls no backend prices (a model
      object such as ``ScriptedModel``, a litellm id): a backend's own
      ``cost`` wins, else this, else litellm's prices for the model id, else 0.
    - ``agents``: limits per agent name, on what that agent's own calls use
      (an agent tool's inner agents count for themselves, not for the caller).

    Limits are checked before each model call with the request's estimated
    size and before each tool call; the run stops before it would pass one.
    """

    __slots__ = (
        "agents",
        "max_cost",
        "max_input_tokens",
        "max_model_calls",
        "max_output_tokens",
        "max_seconds",
        "max_tool_calls",
        "max_total_tokens",
        "price",
    )

    def __init__(
        self,
        *,
        max_model_calls: int | None = None,
        max_input_tokens: int | None = None,
        max_output_tokens: int | None = None,
        max_total_tokens: int | None = None,
        max_cost: float | None = None,
        max_tool_calls: int | None = None,
        max_seconds: float | None = None,
        price: Cost | None = None,
        agents: Mapping[str, UsageLimits] | None = None,
    ) -> None:
        self.max_model_calls = _checked_count("max_model_calls", max_model_calls)
        self.max_input_tokens = _checked_count("max_input_tokens", max_input_tokens)
        self.max_output_tokens = _checked_count("max_output_tokens", max_output_tokens)
        self.max_total_tokens = _checked_count("max_total_tokens", max_total_tokens)
        self.max_tool_calls = _checked_count("max_tool_calls", max_tool_calls)
        self.max_cost = _checked_amount("max_cost", max_cost)
        self.max_seconds = _checked_amount("max_seconds", max_seconds)
        if price is not None:
            from adk.serving.config import Cost

            if not isinstance(price, Cost):
                raise TypeError(f"UsageLimits price must be an adk.Cost or None, got {price!r}")
        self.price = price
        self.agents: dict[str, UsageLimits] = {}
        if agents is not None:
            if not isinstance(agents, Mapping):
                raise TypeError(
                    f"UsageLimits agents must map agent names to UsageLimits, got {agents!r}"
                )
            for name, limits in agents.items():
                if not isinstance(name, str) or not name:
                    raise TypeError(f"UsageLimits agents: keys must be agent names, got {name!r}")
                if not isinstance(limits, UsageLimits):
                    raise TypeError(
                        f"UsageLimits agents[{name!r}] must be a UsageLimits, got {limits!r}"
                    )
                if limits.agents:
                    raise ConfigurationError(
                        f"UsageLimits agents[{name!r}] must not have agents of its own"
                    )
                self.agents[name] = limits

    def __repr__(self) -> str:
        fields = [
            f"{name}={getattr(self, name)!r}"
            for name in self.__slots__
            if getattr(self, name) not in (None, {})
        ]
        return f"UsageLimits({', '.join(fields)})"

    def _limits_usage(self) -> bool:
        return any(getattr(self, name) is not None for name in _LIMITS)
