"""The in-run side of signals: what a run does at its safe points when it has a control.

A run started through a handle (:mod:`adk.runner.handle`) carries a
:class:`RunControl` in ``ctx.control`` (shared by every agent and agent-tool
sub-run). A ChatModelAgent calls :meth:`RunControl.safe_point` before each of
its model calls; that is where pause and feedback act:

- pause: the agent yields a run-level interrupt (``{"type": "pause"}``)
  instead of calling the model; the Runner checkpoints the run as for any
  interrupt. The interrupt needs no answer: the resumed run reaches the same
  safe point with no pause asked and makes the call (journal replay repeats
  nothing before it).
- feedback: the texts sent since the last model call become user messages
  appended to the agent's conversation, and are journaled (as a value keyed
  by the model call) so that a replay appends the very same messages.

Cancel does not wait for a safe point: the handle cancels the scope the run
executes in (in-flight model and tool calls are cancelled; calls already
completed stay journaled).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from adk.events import AgentEvent
from adk.messages import Message

if TYPE_CHECKING:
    from adk.agents.chat_model import ChatModelAgent
    from adk.agents.turn import Turn
    from adk.state.context import RunContext

PAUSE_INFO: dict[str, Any] = {"type": "pause"}
"""The info of the interrupt a pause leaves at a safe point."""

FEEDBACK_SUFFIX = "|feedback"
"""Journal values ``<model call key>|feedback`` hold the feedback texts injected there."""


def is_pause(info: object) -> bool:
    """Whether an interrupt's info is a pause's (not a question that needs an answer)."""
    return isinstance(info, dict) and info.get("type") == "pause"


class RunControl:
    """One run's control state: a pause asked for, feedback waiting for the next model call.

    Signals arrive through the run's handle (one watcher task applies them in
    order); the run reads this state only at safe points, so it needs no lock.
    """

    __slots__ = ("feedback", "pause_requested", "paused_at")

    def __init__(self, feedback: list[str] | None = None) -> None:
        self.pause_requested = False
        """A pause was asked for: every agent stops at its next safe point."""
        self.feedback: list[str] = feedback if feedback is not None else []
        """Feedback texts not yet injected, oldest first."""
        self.paused_at: list[str] = []
        """Model-call keys where this execution paused."""

    async def safe_point(self, agent: ChatModelAgent, turn: Turn, key: str) -> AgentEvent | None:
        """Act on signals before model call ``key``: the pause interrupt to yield, or None.

        Feedback injected here before (replayed from the journal) is
        appended again; new feedback is appended only before a live call.
        """
        journal = turn.journal
        live = journal.model_result(key) is None
        if live and self.pause_requested:
            self.paused_at.append(key)
            return agent.interrupt_event(turn.ctx, dict(PAUSE_INFO), key=f"pause:{key}")
        value_key = key + FEEDBACK_SUFFIX
        texts = journal.value(value_key)
        injected = list(texts) if isinstance(texts, list) else []
        if live and self.feedback:
            injected.extend(self.feedback)
            self.feedback.clear()
            journal.note_value(value_key, injected)
        if injected:
            turn.messages = [*turn.messages, *(Message.user(str(text)) for text in injected)]
        return None


def attach_replay_control(ctx: RunContext) -> None:
    """Give a resumed run a control if its journal holds feedback, so replay re-injects it.

    A run resumed without a handle has no control otherwise, and would
    rebuild its conversation without the feedback messages it had.
    """
    if ctx.control is not None:
        return
    values = ctx.journal._values  # the journal's values, read once per resume
    if any(key.endswith(FEEDBACK_SUFFIX) for key in values):
        ctx.set_operations(control=RunControl())
