"""RunResult: what a finished (or paused) run hands back."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

from adk.events import AgentEvent, ErrorInfo, InterruptInfo
from adk.messages import Message, Usage

if TYPE_CHECKING:
    from adk.serving.layer import ServingLayer
    from adk.serving.metrics import RunServingStats
    from adk.state.budgets import UsageAccount


class RunResult:
    """The outcome of a run: its non-partial events, final message, usage, and pending interrupts.

    A run paused on interrupts ends with the Runner's interrupt event:
    :attr:`interrupts` lists what must be answered and :attr:`checkpoint_id`
    is what to pass to :meth:`Runner.resume`.
    """

    __slots__ = ("_account", "_serving", "events", "history", "run_id", "session_values")

    def __init__(
        self,
        run_id: str,
        events: list[AgentEvent],
        session_values: MutableMapping[str, Any],
        history: list[AgentEvent] | None = None,
        serving: ServingLayer | None = None,
        account: UsageAccount | None = None,
    ) -> None:
        self._serving = serving
        self._account = account
        self.run_id = run_id
        self.events = events
        """The events this call delivered (a resumed run: only the new ones)."""
        self.session_values = session_values
        self.history = history if history is not None else events
        """Every recorded event of the run, also those delivered before a resume."""

    @property
    def message(self) -> Message | None:
        """The last message of the run (the final answer), if any.

        Taken from the whole run's history, so a run resumed after its answer
        was already delivered still reports it.
        """
        for source in (self.events, self.history):
            for event in reversed(source):
                if event.message is not None:
                    return event.message
        return None

    @property
    def text(self) -> str:
        """The final answer's text ("" if the run produced no message)."""
        message = self.message
        return message.content if message is not None else ""

    @property
    def output(self) -> Any:
        """The run's answer: the validated value of an agent with ``output_type``, else the text.

        The last event that outputs a message or a value decides: its value
        if it carries one (a pydantic model instance, a dataclass, a list...:
        whatever the agent's ``output_type`` validates to), else its text.
        None if the run output nothing.
        """
        for source in (self.events, self.history):
            for event in reversed(source):
                output = event.output
                if output is None or output.partial:
                    continue
                if output.value is not None:
                    return output.value
                if output.message is not None:
                    return output.message.content
        return None

    @property
    def errors(self) -> list[ErrorInfo]:
        """Errors the run contained without failing (e.g. a failed parallel branch)."""
        return [event.error for event in self.events if event.error is not None]

    @property
    def interrupts(self) -> tuple[InterruptInfo, ...]:
        """The interrupts the run is paused on (empty if it finished)."""
        last = self.events[-1] if self.events else None
        action = last.action if last is not None else None
        if action is not None and action.interrupted and action.interrupted.checkpoint_id:
            return action.interrupted.interrupts
        return ()

    @property
    def checkpoint_id(self) -> str | None:
        """The checkpoint to resume from, when the run is paused on interrupts."""
        last = self.events[-1] if self.events else None
        if last is not None and last.action is not None and last.action.interrupted is not None:
            return last.action.interrupted.checkpoint_id
        return None

    @property
    def serving(self) -> RunServingStats:
        """This run's model calls as the serving layer saw them: per-call metrics and totals.

        Calls to model objects (not backends) bypass the layer and are not
        listed; a resumed run lists the calls of every execution this layer
        served.
        """
        if self._serving is None:
            from adk.serving.metrics import RunServingStats

            return RunServingStats(self.run_id, ())
        return self._serving.run_stats(self.run_id)

    @property
    def usage(self) -> Usage:
        """Tokens used by every model call of the run, at any depth.

        Counted by the run's usage account (``adk.state.budgets``): also the
        calls of agent tools that forward no events, and for a resumed run
        the calls made before the resume. Without an account (a result built
        by hand) the delivered messages' usage is summed.
        """
        if self._account is not None:
            return self._account.usage
        total = Usage()
        for event in self.events:
            message = event.message
            if message is not None and message.usage is not None:
                total = total + message.usage
        return total

    def __repr__(self) -> str:
        return f"RunResult(run_id={self.run_id!r}, events={len(self.events)}, text={self.text!r})"
