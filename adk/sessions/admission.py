"""Who may take a turn of a session now: the owner, the paused turn, or a resumed one."""

from __future__ import annotations

from adk.sessions.loading import LoadedSession
from adk.sessions.records import SessionError, SessionPaused


def check_turn(
    session: LoadedSession,
    user_id: str | None,
    run_id: str,
    resuming: bool,
    base_seq: int = 0,
) -> None:
    """Raise unless ``run_id`` may take a turn of ``session`` now.

    A new turn: the session must be ``user_id``'s (when given) and not
    paused (:class:`SessionPaused`). A resumed turn (``resuming``) must be
    the session's paused or unfinished turn, or have started at batch
    ``base_seq`` with nothing appended since (its process died before its
    first append); a run whose turn is already appended is refused by name.
    """
    sid, head = session.session_id, session.head
    if user_id is not None and user_id != head.user_id:
        raise SessionError(f"session {sid!r} belongs to user {head.user_id!r}, not {user_id!r}")
    paused = head.paused
    if resuming:
        open_run = session.open_run
        ours = (paused is not None and paused.run_id == run_id) or (
            open_run is not None and open_run[0] == run_id
        )
        untouched = paused is None and open_run is None and head.next_seq == base_seq
        if not ours and session.last_run == run_id:
            raise SessionError(
                f"run {run_id!r} has already finished and its turn is in session {sid!r}"
            )
        if not (ours or untouched):
            raise SessionError(
                f"run {run_id!r} is not the paused or unfinished turn of session {sid!r}: "
                "the session has moved on, so the run cannot be finished in it"
            )
    elif paused is not None:
        raise SessionPaused(
            f"session {sid!r} is paused at interrupts {', '.join(paused.interrupt_ids)}: "
            f"answer them with runner.resume({paused.checkpoint_id!r}, answers) before "
            "its next turn",
            paused.checkpoint_id,
            paused.interrupt_ids,
            paused.run_id,
        )
