"""Drives one run for the ``adk`` command: its segments, the answers to its interrupts, Ctrl-C.

A run the command starts is an ordinary tracked run of the store (``adk
runs`` lists it, ``adk show`` reads its trajectory): the driver builds the
run's execution the way :meth:`adk.Runner.run` does and keeps its status
record the way ``track_runs=True`` does, but holds the execution itself, so
the footer can read the run's usage account while it runs and a resume after
an answered interrupt updates the same status record. How events are shown
is a :class:`Display`'s business (live view or JSON Lines); how interrupts
are answered is a :data:`Prompter`'s (the terminal, or nobody).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from adk.console.loading import CommandError
from adk.events import AgentEvent, InterruptInfo
from adk.messages import Message

if TYPE_CHECKING:
    from adk.runner.execution import RunExecution
    from adk.runner.runner import Runner
    from adk.runner.status import RunStatusInfo


@dataclass(frozen=True, slots=True)
class RunSummary:
    """Where a run stands: its status, what it waits on, and what it used so far."""

    run_id: str
    status: str
    """``running`` while it runs, then completed, failed, interrupted, paused or cancelled."""
    checkpoint_id: str | None = None
    interrupts: tuple[InterruptInfo, ...] = ()
    error: str | None = None
    model_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cost: float = 0.0
    elapsed: float = 0.0


class Display(Protocol):
    """Shows a run: the live terminal view or JSON Lines."""

    interactive: bool
    """Whether a person watches (the driver then asks the :data:`Prompter`)."""

    def start(self, run_id: str, agent: str, resumed_from: str | None) -> None:
        """A segment of the run starts (the first, or one after a resume)."""

    def event(self, event: AgentEvent, run_id: str) -> None:
        """One event of the run, partial deltas included."""

    def pause(self) -> None:
        """Stop drawing: the terminal is about to prompt."""

    def finish(self, summary: RunSummary) -> None:
        """The run stopped (ended, waits at interrupts, or was cancelled)."""

    def note(self, text: str) -> None:
        """A line for the person (never on stdout in plain mode)."""


Prompter = Callable[[tuple[InterruptInfo, ...]], Awaitable[dict[str, Any] | None]]
"""Asks for the answers to pending interrupts; None leaves the run waiting."""


class RunDriver:
    """Runs segments of one run on ``runner``, shows them on ``display``, answers with ``prompter``.

    Ctrl-C (SIGINT) cancels the running segment cleanly: in-flight calls are
    cancelled, the status record says ``cancelled``, and the summary's
    status is ``cancelled`` (exit status 130). At a prompt it leaves the run
    waiting at its interrupts.
    """

    def __init__(self, runner: Runner, display: Display, prompter: Prompter | None) -> None:
        self.runner = runner
        self.display = display
        self.prompter = prompter
        self.execution: RunExecution | None = None
        self.started = time.monotonic()
        self._scope: anyio.CancelScope | None = None
        self.cancelled = False

    def snapshot(self, run_id: str, status: str = "running") -> RunSummary:
        """What the run used so far (read from its usage account: replayed calls count)."""
        execution = self.execution
        account = execution.ctx.account if execution is not None else None
        if account is None:
            return RunSummary(run_id, status, elapsed=time.monotonic() - self.started)
        usage = account.usage
        return RunSummary(
            run_id,
            status,
            model_calls=account.model_calls,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cached_tokens=usage.cached_tokens,
            cost=account.cost,
            elapsed=time.monotonic() - self.started,
        )

    async def run(
        self,
        text: str,
        *,
        session_values: MutableMapping[str, Any],
        session_id: str | None,
        user_id: str | None,
        run_id: str | None,
        before: Callable[[str], Awaitable[None]] | None = None,
    ) -> RunSummary:
        """Start a new run on ``text``; answer its interrupts while a person answers."""
        from adk.runner.execution import RunExecution
        from adk.runner.preparation import new_run
        from adk.runner.status import begin_status

        runner = self.runner
        messages = [Message.user(text)]
        prepared = new_run(
            runner, messages, session_values, session_id, run_id, None, True, user_id
        )
        execution = RunExecution(runner.agent, *prepared)
        new_id = execution.ctx.run_id
        if before is not None:
            await before(new_id)
        info = await begin_status(
            runner.store,
            new_id,
            runner.agent.name,
            durability=runner.durability,
            controlled=False,
            ttl=runner.checkpoint_ttl,
        )
        return await self._follow(await self._segment(execution, info, None))

    async def resume(
        self, run_id: str, checkpoint_id: str, answers: Mapping[str, Any] | None
    ) -> RunSummary:
        """Continue a waiting run (``answers`` given, or asked for when a person watches)."""
        if answers is None:
            summary = await self._waiting(run_id, checkpoint_id)
            return await self._follow(summary)
        return await self._follow(await self._resumed(run_id, checkpoint_id, dict(answers)))

    async def _waiting(self, run_id: str, checkpoint_id: str) -> RunSummary:
        """The summary of a run that waits at a checkpoint (its interrupts read from the store)."""
        from adk.runner.checkpoint import list_checkpoints

        for checkpoint in await list_checkpoints(self.runner.store, run_id):
            if checkpoint.id == checkpoint_id:
                return RunSummary(
                    run_id, "interrupted", checkpoint_id, tuple(checkpoint.interrupts)
                )
        raise CommandError(f"run {run_id!r} has no checkpoint {checkpoint_id!r}")

    async def _follow(self, summary: RunSummary) -> RunSummary:
        """Ask for answers and resume while the run waits and someone answers."""
        while summary.status in ("interrupted", "paused") and self.prompter is not None:
            assert summary.checkpoint_id is not None
            self.display.pause()
            answers = await self._ask(summary.interrupts)
            if answers is None:
                break
            summary = await self._resumed(summary.run_id, summary.checkpoint_id, answers)
        if self.cancelled and summary.status in ("interrupted", "paused"):
            self.display.note("left waiting at its interrupts")
        return summary

    async def _ask(self, interrupts: tuple[InterruptInfo, ...]) -> dict[str, Any] | None:
        assert self.prompter is not None
        with anyio.CancelScope() as scope:
            self._scope = scope
            answers = await self.prompter(interrupts)
            self._scope = None
            return answers
        self._scope = None
        return None

    async def _resumed(
        self, run_id: str, checkpoint_id: str, answers: dict[str, Any]
    ) -> RunSummary:
        from adk.errors import AdkError
        from adk.runner.execution import RunExecution
        from adk.runner.preparation import resumed_run
        from adk.runner.status import read_status, write_status

        runner = self.runner
        try:
            prepared = await resumed_run(runner, checkpoint_id, answers, None, None, True)
        except AdkError as exc:
            raise CommandError(f"cannot resume {checkpoint_id!r}: {exc}") from exc
        execution = RunExecution(runner.agent, *prepared)
        info = await read_status(runner.store, run_id)
        if info is None:  # pragma: no cover - a checkpoint always has the run's records
            raise CommandError(f"no run {run_id!r} in the store")
        info = await write_status(runner.store, info, "running", ttl=runner.checkpoint_ttl)
        return await self._segment(execution, info, checkpoint_id)

    async def _segment(
        self, execution: RunExecution, info: RunStatusInfo, resumed_from: str | None
    ) -> RunSummary:
        """Execute one segment to its end, showing every event; how it stopped."""
        from adk.runner.tracking import outcome, tracked_events

        runner, display = self.runner, self.display
        run_id = execution.ctx.run_id
        self.execution = execution
        display.start(run_id, runner.agent.name, resumed_from)
        last: AgentEvent | None = None
        stream = tracked_events(execution, runner.store, info, runner.checkpoint_ttl)
        with anyio.CancelScope() as scope:
            self._scope = scope
            async with aclosing(stream) as events:
                async for event in events:
                    if not event.partial:
                        last = event
                    display.event(event, run_id)
        self._scope = None
        if scope.cancelled_caught:
            summary = self.snapshot(run_id, "cancelled")
        else:
            status, error, checkpoint = outcome(execution.ctx.failed, last)
            interrupted = last.action.interrupted if last and last.action else None
            pending = interrupted.interrupts if interrupted is not None else ()
            summary = self.snapshot(run_id, status)
            summary = RunSummary(run_id, status, checkpoint, pending, error, *_figures(summary))
        display.finish(summary)
        return summary

    async def watch_sigint(self, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        """Cancel the running segment (or the prompt) on Ctrl-C; a second Ctrl-C is ignored."""
        with anyio.open_signal_receiver(signal.SIGINT) as signals:
            task_status.started()
            async for _ in signals:
                self.cancelled = True
                if self._scope is not None:
                    self._scope.cancel()


def _figures(summary: RunSummary) -> tuple[int, int, int, int, float, float]:
    return (
        summary.model_calls,
        summary.prompt_tokens,
        summary.completion_tokens,
        summary.cached_tokens,
        summary.cost,
        summary.elapsed,
    )


async def drive(driver: RunDriver, work: Callable[[], Awaitable[RunSummary]]) -> RunSummary:
    """Run ``work`` with Ctrl-C handled by ``driver``; the summary it returns."""
    result: list[RunSummary] = []
    failures: list[Exception] = []
    async with anyio.create_task_group() as group:
        await group.start(driver.watch_sigint)
        try:
            result.append(await work())
        except Exception as exc:  # raised as itself below, not in an exception group
            failures.append(exc)
        group.cancel_scope.cancel()
    if failures:
        raise failures[0]
    return result[0]


def exit_status(summary: RunSummary) -> int:
    """0 completed, 1 failed, 3 waiting at interrupts (or paused), 130 cancelled."""
    return {"completed": 0, "failed": 1, "cancelled": 130}.get(summary.status, 3)


def parse_values(pairs: Sequence[str]) -> dict[str, Any]:
    """``--value key=value`` pairs as session values (a value that reads as JSON is JSON)."""
    import json

    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise CommandError(f"--value {pair!r}: expected key=value")
        try:
            values[key] = json.loads(raw)
        except ValueError:
            values[key] = raw
    return values
