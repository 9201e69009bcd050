"""Preparing one execution of a run: its context, journal and checkpoint writer.

A new run gets a fresh journal and a checkpointer that writes nothing until the
run first needs the store. A resumed run reads the run's records, checks that
this Runner can resume them with the given answers, folds the journal back in,
claims the checkpoint (single-shot) and takes the run's lease: in that order,
so that a record that cannot be read, or an answer that does not fit, uses
nothing up.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

from adk.agents.run_guards import GuardState
from adk.errors import ConfigurationError
from adk.messages import Message
from adk.runner.checkpoint import (
    CheckpointAlreadyResumed,
    Checkpointer,
    check_resumable,
    claim_name,
    load_run,
    namespace,
    new_meta,
)
from adk.runner.control import attach_replay_control
from adk.runner.execution import NewRunCheckpointer
from adk.state.budgets import UsageAccount
from adk.state.context import RunContext, _RunShared
from adk.state.journal import RunJournal
from adk.state.lease import RunLease
from adk.state.run_settings import new_run_id
from adk.state.serde import SerializationError, dumps

if TYPE_CHECKING:
    from adk.runner.records import LoadedRun
    from adk.runner.runner import Options, Runner
    from adk.runner.session_turn import SessionRequest

Prepared = tuple[RunContext, RunJournal, Checkpointer, "SessionRequest | None"]
_EMPTY_VALUES = dumps({})
_NO_OPTIONS: Mapping[str, Mapping[str, Any]] = {}


def new_run(
    runner: Runner,
    messages: Sequence[Message],
    session_values: MutableMapping[str, Any] | None,
    session_id: str | None,
    run_id: str | None,
    agent_options: Options | None,
    streaming: bool | None,
    user_id: str | None = None,
) -> Prepared:
    explicit_id = bool(run_id)
    if not run_id:
        run_id = new_run_id()
    elif "/" in run_id:
        raise ConfigurationError(f"run id {run_id!r} must not contain '/'")
    values: MutableMapping[str, Any] = session_values if session_values is not None else {}
    stream_mode = runner.streaming if streaming is None else streaming
    journal = RunJournal(durability=runner.durability)
    ctx = run_context(
        runner, messages, values, session_id, run_id, agent_options, stream_mode, journal
    )
    # Snapshot the starting values now (agents will change them); a value that cannot
    # be checkpointed only matters if the run is ever checkpointed.
    encoded_values: bytes | SerializationError = _EMPTY_VALUES
    if values:
        try:
            encoded_values = dumps(dict(values))
        except SerializationError as exc:
            encoded_values = exc
    # The metadata builder must not hold the context: the journal holds the
    # checkpointer, so that would be a reference cycle, and every run's objects would
    # wait for the garbage collector instead of being freed when the run ends.
    root_input, session = ctx.root_input, session_id or ""
    service = runner.sessions if session_id else None
    stored_session = service is not None
    checkpointer = NewRunCheckpointer(
        runner.store,
        run_id,
        lambda values, session_seq, session_user: new_meta(
            root=runner.agent.name,
            tree=runner.tree,
            root_input=root_input,
            values=values,
            streaming=stream_mode,
            durability=runner.durability,
            session_id=session,
            stored_session=stored_session,
            session_seq=session_seq,
            session_user=session_user,
        ),
        runner.checkpoint_ttl,
        RunLease(runner.store, run_id, runner.resume_lease),
        explicit_id=explicit_id,
        start_values=encoded_values,
    )
    journal.sink = checkpointer
    request = None
    if service is not None:
        from adk.runner.session_turn import SessionRequest

        request = SessionRequest(
            service, session, user_id, keep_agent=runner.keep_agent, runs=runner.store
        )
    return ctx, journal, checkpointer, request


async def resumed_run(
    runner: Runner,
    checkpoint_id: str,
    answers: Mapping[str, Any] | None,
    session_values: MutableMapping[str, Any] | None,
    agent_options: Options | None,
    streaming: bool | None,
) -> Prepared:
    loaded = await load_run(runner.store, checkpoint_id)
    given = dict(answers or {})
    check_resumable(loaded, checkpoint_id, given, runner.tree)
    request = _resumed_turn(runner, loaded) if loaded.meta.stored_session else None
    # Every record is decoded before the checkpoint is claimed: a damaged one raises
    # CheckpointCorrupted (naming the run, the record and the field) and uses nothing up.
    journal = RunJournal(durability=loaded.meta.durability, answers={**loaded.answers, **given})
    for chunk in loaded.chunks:
        chunk.load_into(journal)
    journal.expect_reads(given)
    values: MutableMapping[str, Any] = loaded.session_values()
    await _claim(runner, loaded, checkpoint_id)
    if session_values is not None:
        session_values.clear()
        session_values.update(values)
        values = session_values
    stream_mode = loaded.meta.streaming if streaming is None else streaming
    ctx = run_context(
        runner,
        loaded.root_input,
        values,
        loaded.meta.session_id or None,
        loaded.run_id,
        agent_options,
        stream_mode,
        journal,
    )
    checkpointer = Checkpointer(
        runner.store,
        loaded.run_id,
        loaded.meta,
        ttl=runner.checkpoint_ttl,
        next_chunk=loaded.journal.next_chunk,
        next_checkpoint=loaded.checkpoint_count + 1,
        meta_written=True,
        lease=RunLease(runner.store, loaded.run_id, runner.resume_lease),
        journal=loaded.journal,
    )
    checkpointer.stored_answers.update(loaded.answers)
    journal.sink = checkpointer
    if ctx.tracer is not None and loaded.checkpoint is not None:
        ctx.tracer.link = loaded.checkpoint.trace  # the paused execution's trace
    attach_replay_control(ctx)  # feedback journaled by signals is injected again
    assert checkpointer.lease is not None
    # Last: nothing below can fail and leave it held.
    await checkpointer.lease.acquire(released=loaded.released_lease)
    return ctx, journal, checkpointer, request


def _resumed_turn(runner: Runner, loaded: LoadedRun) -> SessionRequest:
    """The session turn a resumed run belongs to (its metadata names the session)."""
    if runner.sessions is None:
        raise ConfigurationError(
            f"run {loaded.run_id!r} is a turn of stored session {loaded.meta.session_id!r}: "
            "resume it with a Runner that has sessions (not sessions=False)"
        )
    from adk.runner.session_turn import SessionRequest

    return SessionRequest(
        runner.sessions,
        loaded.meta.session_id,
        loaded.meta.session_user,
        resuming=True,
        keep_agent=runner.keep_agent,
        base_seq=loaded.meta.session_seq,
        runs=runner.store,
    )


def run_context(
    runner: Runner,
    messages: Sequence[Message],
    values: MutableMapping[str, Any],
    session_id: str | None,
    run_id: str | None,
    agent_options: Options | None,
    streaming: bool,
    journal: RunJournal,
) -> RunContext:
    # RunContext.create without its defaulting: every value is known here.
    shared = _RunShared(
        run_id or new_run_id(),
        session_id or "",
        values,
        runner.serving,
        streaming,
        agent_options or _NO_OPTIONS,
        runner.settings,
        messages,
        runner.tree,
        journal,
        None if runner.guards is None else GuardState(runner.guards),
    )
    # Always an account: its usage total is RunResult.usage (adk.state.budgets).
    shared.account = UsageAccount(runner.usage_limits, runner.serving, shared.run_id)
    if runner.trajectories:  # docs/evals.md: the run's trajectory is recorded
        from adk.agents.recording import TrajectoryRecorder

        shared.recorder = TrajectoryRecorder(shared.run_id, runner.checkpoint_ttl)
    if runner.tracing is not None:  # Runner(tracing=...): the run's spans (adk.tracing)
        shared.tracer = runner.tracing.run_tracer()
    return RunContext(shared, runner._root_path)


async def _claim(runner: Runner, loaded: LoadedRun, checkpoint_id: str) -> None:
    """Use the checkpoint up (single-shot), or raise CheckpointAlreadyResumed.

    A checkpoint is answered once (a permanent claim); a run id (crash
    recovery) is guarded only by the lease, so a resume that dies does not
    block the next one. A paused run resumed by its run id uses up its latest
    checkpoint.
    """
    claim = claim_name(checkpoint_id)
    if claim is None and loaded.status == "interrupted" and loaded.checkpoint is not None:
        claim = claim_name(loaded.checkpoint.id)
    if claim is not None and not await runner.store.put_if_absent(
        namespace(loaded.run_id), claim, dumps({"by": os.getpid()}), ttl=runner.checkpoint_ttl
    ):
        raise CheckpointAlreadyResumed(
            f"checkpoint {checkpoint_id!r} was already resumed; resume the checkpoint of "
            "its latest interrupt instead (Runner.checkpoints lists them)"
        )
