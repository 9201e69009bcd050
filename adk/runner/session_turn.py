"""A run that is a turn of a stored session: begin it, append as it goes, settle it.

The Runner knows sessions only through this: before the root agent starts,
the session is taken and read (its history becomes the run's ``prior``, its
values of every scope fill the run's mapping); when the run ends, what the
turn added is appended, or, if it paused, the session records the paused
turn. The run's own records name the session instead of copying its history,
so a checkpoint stays the size of the turn.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from adk.agents.tree import AgentTree, is_workflow
from adk.events import AgentEvent, HistoryEntry
from adk.runner.checkpoint import namespace
from adk.sessions.loading import without_unanswered
from adk.sessions.records import PausedTurn, SessionPaused
from adk.sessions.service import SessionService
from adk.sessions.turn import SessionTurn
from adk.state.context import RunContext
from adk.state.serde import SerializationError, dumps
from adk.state.stores import CheckpointStore

logger = logging.getLogger("adk.runner")

if TYPE_CHECKING:
    from adk.runner.execution import NewRunCheckpointer


def session_service(
    sessions: SessionService | CheckpointStore | str | Path | bool | None,
    store: CheckpointStore,
    app: str,
) -> SessionService | None:
    """The Runner's session service from its ``sessions`` argument (see :class:`~adk.Runner`)."""
    if sessions is False:
        return None
    if isinstance(sessions, SessionService):
        return sessions
    if sessions is None or sessions is True:
        return SessionService(store, app=app)
    assert isinstance(sessions, str | Path | CheckpointStore)  # checked by the Runner
    return SessionService(sessions, app=app)


@dataclass(slots=True)
class SessionRequest:
    """Which session a run is a turn of, and how to treat it."""

    service: SessionService
    session_id: str
    user_id: str | None
    resuming: bool = False
    keep_agent: bool = False
    base_seq: int = 0
    """For a resumed turn: the session's next batch number when the turn started."""
    runs: CheckpointStore | None = None
    """The Runner's checkpoint store (where a paused turn's run is kept)."""


class SessionBinding:
    """The Runner's side of one session turn."""

    __slots__ = ("ctx", "request", "turn")

    def __init__(self, request: SessionRequest, ctx: RunContext) -> None:
        self.request = request
        self.ctx = ctx
        self.turn: SessionTurn | None = None

    async def begin(self, checkpointer: NewRunCheckpointer | None) -> None:
        """Take and read the session; fill the run's prior history and values.

        For a new run, the values the run starts with become its checkpoint
        metadata's starting values (``checkpointer``); a resumed run already
        has them from its checkpoint.
        """
        request, ctx = self.request, self.ctx
        try:
            turn = await self._begin_turn("")
        except SessionPaused as exc:
            # A paused turn whose run is gone (deleted, or expired) can never be answered:
            # the session must not stay locked by it.
            if request.runs is None or await request.runs.get(namespace(exc.run_id), "meta"):
                raise
            logger.warning(
                "session %s: its paused run %s is gone from the checkpoint store; "
                "the paused turn is dropped",
                request.session_id,
                exc.run_id,
            )
            turn = await self._begin_turn(exc.run_id)
        self.turn = turn
        ctx.continue_conversation(turn.prior)
        if request.resuming:
            turn.resume_values(ctx.session_values)
            return
        values = turn.values(ctx.session_values)  # stored values, then those the app passed
        if checkpointer is not None:
            checkpointer.session_seq = turn.session.head.next_seq
            checkpointer.session_user = turn.session.user_id
            try:
                checkpointer.start_values = dumps(dict(values))
            except SerializationError as exc:
                checkpointer.start_values = exc

    def held_by(self, tree: AgentTree) -> list[str] | None:
        """The run path to the agent holding the conversation, if the turn starts there.

        Only with ``keep_agent``, and only for an agent reached from the root
        by transfers alone (an agent inside a workflow runs as its step, never
        on its own); None means the turn starts at the root.
        """
        turn = self.turn
        name = turn.session.head.agent if turn is not None and self.request.keep_agent else None
        if not name or name == tree.root.name or name not in tree:
            return None
        path = [name]
        parent = tree.parent_of(name)
        while parent is not None:
            if is_workflow(parent):
                return None
            path.append(parent.name)
            parent = tree.parent_of(parent.name)
        return path[::-1]

    async def _begin_turn(self, give_up: str) -> SessionTurn:
        request = self.request
        return await request.service.begin_turn(
            request.session_id,
            request.user_id,
            self.ctx.run_id,
            resuming=request.resuming,
            base_seq=request.base_seq,
            give_up=give_up,
        )

    async def step(self) -> None:
        """Append the messages completed since the last append (``durability="step"``)."""
        turn = self.turn
        if turn is not None:
            await turn.append(turn_entries(self.ctx, failed=False), final=False)

    async def settle(self, final: AgentEvent | None) -> None:
        """Append the finished turn, or record the paused one (``final`` is the interrupt event)."""
        turn, ctx = self.turn, self.ctx
        if turn is None:
            return
        interrupted = final.action.interrupted if final is not None and final.action else None
        if interrupted is not None and interrupted.checkpoint_id is not None:
            ids = tuple(info.id for info in interrupted.interrupts)
            await turn.pause(PausedTurn(ctx.run_id, interrupted.checkpoint_id, ids))
            return
        agent = last_speaker(ctx) if self.request.keep_agent else None
        entries = turn_entries(ctx, failed=ctx.failed)
        await turn.append(
            entries, final=True, values=ctx.session_values, agent=agent, events=ctx.events
        )

    async def release(self) -> None:
        """Let the session take its next turn."""
        turn, self.turn = self.turn, None
        if turn is not None:
            await turn.release()


def turn_entries(ctx: RunContext, *, failed: bool) -> list[HistoryEntry]:
    """What the turn adds to the conversation: its input, then every completed message.

    A failed turn keeps what it completed, but not a model's tool calls left
    without results: chat APIs refuse a history with unanswered calls.
    """
    entries = [HistoryEntry(None, message) for message in ctx.root_input]
    for event in ctx.events:
        message = event.message
        if message is not None:
            entries.append(HistoryEntry(event.agent_name, message))
    if failed:
        answered = {e.message.tool_call_id for e in entries if e.message.role == "tool"}
        cut_off = {
            index
            for index, entry in enumerate(entries)
            if any(call.id not in answered for call in entry.message.tool_calls)
        }
        if cut_off:
            entries = without_unanswered(entries, cut_off)
    return entries


def last_speaker(ctx: RunContext) -> str | None:
    """The agent whose message ended the turn (the one holding the conversation)."""
    for event in reversed(ctx.events):
        message = event.message
        if message is not None and message.role == "assistant":
            return event.agent_name
    return None
