"""Usage budgets: a run's one shared usage account, which enforces its :class:`UsageLimits`.

Every run the Runner starts gets a :class:`UsageAccount` in its context,
shared by every agent of the run, its parallel branches and its agent-tool
sub-runs. Each model reply adds its usage to it (a few integer additions: this
is also what ``RunResult.usage`` reports, whatever events were delivered),
replayed replies included, so a resumed run counts what it spent before the
resume. With limits, the account is asked before each new model call (with
the request's estimated size) and each new tool call whether it would pass
one; if so it raises :class:`~adk.UsageLimitExceeded` and every later check of
the run raises it again. It lives with run state (below agents and tools),
which both call it; the Runner's side is ``adk.runner.budgets``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from adk.errors import UsageLimitExceeded
from adk.messages import Message, Usage
from adk.state.limits import UsageLimits
from adk.state.pricing import estimate_tokens, free, litellm_price

if TYPE_CHECKING:
    from adk.models.base import ToolSpec
    from adk.serving.layer import ServingLayer

__all__ = ["UsageAccount", "UsageLimits", "estimate_tokens"]


class _Tally:
    """What one scope (the run, or one agent's own calls) used so far."""

    __slots__ = (
        "cached_tokens",
        "cost",
        "input_tokens",
        "model_calls",
        "output_tokens",
        "reserved_calls",
        "reserved_cost",
        "reserved_tokens",
        "tools",
    )

    def __init__(self) -> None:
        self.model_calls = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.cached_tokens = 0
        self.cost = 0.0
        self.tools = 0
        # Calls checked but not answered yet (parallel branches): counted as if made.
        self.reserved_calls = 0
        self.reserved_tokens = 0
        self.reserved_cost = 0.0

    def reserve(self, estimate: int, cost: float, sign: int = 1) -> None:
        """Count a checked call as running (``sign=-1``: its reply came, uncount it)."""
        self.reserved_calls += sign
        self.reserved_tokens += sign * estimate
        self.reserved_cost += sign * cost

    def add(self, usage: Usage | None, cost: float) -> None:
        """Add one model reply's usage and cost."""
        self.model_calls += 1
        if usage is not None:
            self.input_tokens += usage.prompt_tokens
            self.output_tokens += usage.completion_tokens
            self.cached_tokens += usage.cached_tokens
        self.cost += cost

    def check_model(
        self, limits: UsageLimits, estimate: int, cost: float, agent: str, run_id: str
    ) -> None:
        """Raise if one more model call of ``estimate`` prompt tokens would pass a limit."""
        tokens = self.input_tokens + self.reserved_tokens + estimate
        checks: list[tuple[str, float | None, float]] = [
            ("max_model_calls", limits.max_model_calls, self.model_calls + self.reserved_calls + 1),
            ("max_input_tokens", limits.max_input_tokens, tokens),
            ("max_output_tokens", limits.max_output_tokens, self.output_tokens + 1),
            ("max_total_tokens", limits.max_total_tokens, tokens + self.output_tokens),
            ("max_cost", limits.max_cost, self.cost + self.reserved_cost + cost),
        ]
        for name, maximum, amount in checks:
            if maximum is not None and amount > maximum:
                raise UsageLimitExceeded(name, maximum, amount, agent=agent, run_id=run_id)


_UNUSED: dict[Any, Any] = {}
"""The tables of an account without limits (never written: only limited accounts use them)."""


class UsageAccount:
    """One run's usage so far and its limits (shared by every agent of the run).

    :meth:`charge` adds a model reply's usage (the always-on part: integer
    additions); :meth:`before_model` and :meth:`before_tool` check the limits
    and are only called when :attr:`limited`. :attr:`exceeded` is the stop,
    once one happened.
    """

    __slots__ = (
        "_agents",
        "_prices",
        "_reserved",
        "_serving",
        "_tally",
        "counts_tools",
        "exceeded",
        "limited",
        "limits",
        "run_id",
        "started",
    )

    def __init__(
        self, limits: UsageLimits | None, serving: ServingLayer | None = None, run_id: str = ""
    ) -> None:
        self.limits = limits
        self.run_id = run_id
        self._serving = serving
        self._tally = _Tally()
        self.exceeded: UsageLimitExceeded | None = None
        """The limit that stopped the run, once one did."""
        self.limited = limits is not None and (
            limits._limits_usage() or any(a._limits_usage() for a in limits.agents.values())
        )
        """Whether there is any limit to check (else only :meth:`charge` is called)."""
        self._agents: dict[str, _Tally]
        self._prices: dict[object, Callable[[Usage], float]]
        self._reserved: dict[str, tuple[int, float, float, str]]
        """Model calls checked and not answered yet, by call key: estimate, costs, agent."""
        if not self.limited:  # every run has an account: this one must cost next to nothing
            self.counts_tools = False
            self.started = 0.0
            self._agents = self._prices = self._reserved = _UNUSED  # read and written only
            return  # when limited
        assert limits is not None
        self.counts_tools = (
            limits.max_tool_calls is not None
            or limits.max_seconds is not None
            or any(
                a.max_tool_calls is not None or a.max_seconds is not None
                for a in limits.agents.values()
            )
        )
        """Whether tool calls are checked (a tool-call or wall-time limit exists)."""
        self.started = time.monotonic()
        """When the execution started (read only by a wall-time limit)."""
        self._agents = {}
        self._prices = {}
        self._reserved = {}

    # -- the always-on part -------------------------------------------------------------

    def charge(self, agent: str, model: object, usage: Usage | None, key: str = "") -> None:
        """Add one model reply (new or replayed) of ``agent``'s ``model`` to the run's usage.

        ``key`` is the model call's journal key: its reservation (made when it
        was checked) is released.
        """
        if not self.limited:
            tally = self._tally
            tally.model_calls += 1
            if usage is not None:
                tally.input_tokens += usage.prompt_tokens
                tally.output_tokens += usage.completion_tokens
                tally.cached_tokens += usage.cached_tokens
            return
        limits = self.limits
        assert limits is not None
        priced = limits.max_cost is not None or (
            agent in limits.agents and limits.agents[agent].max_cost is not None
        )
        cost = self.price_of(model, usage) if priced and usage is not None else 0.0
        reserved = self._reserved.pop(key, None)
        if reserved is not None:
            self._release(reserved)
        self._tally.add(usage, cost)
        if agent in limits.agents:
            self._agent_tally(agent).add(usage, cost)

    def _release(self, reserved: tuple[int, float, float, str]) -> None:
        estimate, cost, own_cost, agent = reserved
        self._tally.reserve(estimate, cost, -1)
        if agent:
            self._agent_tally(agent).reserve(estimate, own_cost, -1)

    @property
    def usage(self) -> Usage:
        """Tokens used by every model call of the run so far (replayed ones included)."""
        tally = self._tally
        return Usage(
            prompt_tokens=tally.input_tokens,
            completion_tokens=tally.output_tokens,
            cached_tokens=tally.cached_tokens,
        )

    @property
    def model_calls(self) -> int:
        """Model calls of the run so far (replayed ones included)."""
        return self._tally.model_calls

    @property
    def tool_calls(self) -> int:
        """Tool calls counted so far (counted only when a tool-call or time limit is set)."""
        return self._tally.tools

    @property
    def cost(self) -> float:
        """Cost so far (priced only when a cost limit is set; see :class:`UsageLimits`)."""
        return self._tally.cost

    # -- limits ---------------------------------------------------------------------------

    def before_model(
        self,
        agent: str,
        model: object,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        key: str = "",
    ) -> None:
        """Raise :class:`~adk.UsageLimitExceeded` if a new model call would pass a limit.

        Else the call ``key`` is reserved until :meth:`charge` adds its reply,
        so parallel branches checking at once cannot pass a limit together.
        """
        if self.exceeded is not None:
            raise self.exceeded.again()
        limits = self.limits
        assert limits is not None
        own = limits.agents.get(agent)
        try:
            self._check_time(limits, "")
            if own is not None:
                self._check_time(own, agent)
            estimate = estimate_tokens(messages, tools)
            cost = self._prompt_cost(limits, model, estimate)
            self._tally.check_model(limits, estimate, cost, "", self.run_id)
            own_cost = 0.0
            if own is not None:
                own_cost = self._prompt_cost(own, model, estimate)
                self._agent_tally(agent).check_model(own, estimate, own_cost, agent, self.run_id)
        except UsageLimitExceeded as exc:
            self.exceeded = exc
            raise
        previous = self._reserved.pop(key, None)  # a retried call: its first try's reservation
        if previous is not None:
            self._release(previous)
        self._reserved[key] = (estimate, cost, own_cost, agent if own is not None else "")
        self._tally.reserve(estimate, cost)
        if own is not None:
            self._agent_tally(agent).reserve(estimate, own_cost)

    def before_tool(self, agent: str, replayed: bool) -> None:
        """Count one tool call of ``agent``; unless replayed, raise if it would pass a limit."""
        if self.exceeded is not None and not replayed:
            raise self.exceeded.again()
        limits = self.limits
        assert limits is not None
        own = limits.agents.get(agent)
        tally = self._tally
        mine = self._agent_tally(agent) if own is not None else None
        if not replayed:
            try:
                self._check_tools(limits, tally, "")
                if own is not None and mine is not None:
                    self._check_tools(own, mine, agent)
            except UsageLimitExceeded as exc:
                self.exceeded = exc
                raise
        tally.tools += 1
        if mine is not None:
            mine.tools += 1

    def _check_tools(self, limits: UsageLimits, tally: _Tally, agent: str) -> None:
        self._check_time(limits, agent)
        maximum = limits.max_tool_calls
        if maximum is not None and tally.tools + 1 > maximum:
            raise UsageLimitExceeded(
                "max_tool_calls", maximum, tally.tools + 1, agent=agent, run_id=self.run_id
            )

    def _check_time(self, limits: UsageLimits, agent: str) -> None:
        maximum = limits.max_seconds
        if maximum is not None:
            elapsed = time.monotonic() - self.started
            if elapsed > maximum:
                raise UsageLimitExceeded(
                    "max_seconds", maximum, round(elapsed, 3), agent=agent, run_id=self.run_id
                )

    def _agent_tally(self, agent: str) -> _Tally:
        tally = self._agents.get(agent)
        if tally is None:
            tally = self._agents[agent] = _Tally()
        return tally

    # -- prices ---------------------------------------------------------------------------

    def _prompt_cost(self, limits: UsageLimits, model: object, estimate: int) -> float:
        if limits.max_cost is None or not estimate:
            return 0.0
        return self.price_of(model, Usage(prompt_tokens=estimate))

    def price_of(self, model: object, usage: Usage) -> float:
        """The cost of ``usage`` on ``model`` (:class:`UsageLimits` says where prices come from)."""
        key: object = model if isinstance(model, str) else id(model)
        price = self._prices.get(key)
        if price is None:
            price = self._prices[key] = self._price(model)
        return price(usage)

    def _price(self, model: object) -> Callable[[Usage], float]:
        if isinstance(model, str) and self._serving is not None:
            backend = self._serving.backends.get(model)
            if backend is not None:
                if backend.cost is not None:
                    return backend.cost.of
                model = backend.model
        limits = self.limits
        if limits is not None and limits.price is not None:
            return limits.price.of
        model_id = model if isinstance(model, str) else getattr(model, "model", None)
        if isinstance(model_id, str):
            return litellm_price(model_id)
        return free
