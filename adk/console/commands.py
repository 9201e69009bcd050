"""The ``adk`` run commands: ``run``, ``resume``, ``runs``, ``show`` and ``sessions``.

:func:`add_console_parsers` adds their arguments to the ``adk`` parser
(:mod:`adk.cli`), :func:`run_console_command` runs one. Each command is one
``anyio.run``; a :class:`~adk.console.loading.CommandError` (or a store that
fails) becomes one line on stderr and exit status 2, never a traceback. rich
is imported only here, when a command runs: ``import adk`` never loads it.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from adk.console.loading import CommandError

if TYPE_CHECKING:
    from adk.agents.base import Agent
    from adk.console.driver import Display, Prompter, RunDriver
    from adk.runner.runner import Runner
    from adk.state.stores.base import CheckpointStore

COMMANDS = ("run", "resume", "runs", "show", "sessions")
"""The subcommands this package adds to ``adk``."""
_STORE_HELP = (
    "SQLite path, redis://..., postgresql://... or 'memory' (default: $ADK_STORE or .adk/runs.db)"
)
_PLAIN_HELP = "print JSON Lines (the default when stdout is not a terminal)"


def add_console_parsers(commands: Any) -> None:
    """Add ``run``, ``resume``, ``runs``, ``show`` and ``sessions`` to the ``adk`` subparsers."""
    run = commands.add_parser(
        "run",
        help="run an agent with a live terminal view",
        description="Run module:agent (or path/to/file.py:agent) on TEXT; answer its approvals.",
    )
    run.add_argument("target", help="module:agent or path/to/file.py:agent (name default: agent)")
    run.add_argument("text", nargs="?", help="the user's message (default: read from stdin)")
    run.add_argument("--session", help="continue (or start) the stored session with this id")
    run.add_argument("--user", help="the session's user id (default: '')")
    run.add_argument("--run-id", help="the new run's id (default: a fresh one)")
    run.add_argument(
        "--value",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a session value (JSON, or text); repeat for several",
    )
    run.add_argument("--durability", choices=("interrupt", "step"), default="interrupt")
    _common(run)
    resume = commands.add_parser(
        "resume",
        help="answer a waiting run's interrupts and continue it",
        description="Continue a run waiting at interrupts (asked in the terminal, or --answer).",
    )
    resume.add_argument("run_id")
    resume.add_argument("--agent", help="module:agent (default: the one `adk run` ran)")
    resume.add_argument(
        "--answer",
        action="append",
        default=[],
        metavar="ID=ANSWER",
        help="answer an interrupt: approve, reject[:reason], JSON or text; repeatable",
    )
    _common(resume)
    runs = commands.add_parser("runs", help="list the runs in the store, newest first")
    runs.add_argument("--status", action="append", help="only runs with this status (repeatable)")
    runs.add_argument("--agent", help="only runs of this root agent")
    runs.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    _common(runs)
    show = commands.add_parser("show", help="a run's trajectory as a tree")
    show.add_argument("run_id")
    _common(show)
    sessions = commands.add_parser("sessions", help="list stored sessions, or show one")
    sessions.add_argument("session_id", nargs="?", help="show this session's history")
    sessions.add_argument("--app", help="the app (the root agent's name) when ids clash")
    _common(sessions)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", help=_STORE_HELP)
    parser.add_argument("--plain", action="store_true", help=_PLAIN_HELP)


def run_console_command(args: argparse.Namespace) -> int:
    """Run the command ``args`` names; its exit status (2, with one line, for a bad request)."""
    import anyio

    from adk.errors import AdkError
    from adk.state.stores.base import StoreUnavailable

    handlers: dict[str, Callable[[argparse.Namespace], Awaitable[int]]] = {
        "run": _run,
        "resume": _resume,
        "runs": _listing("runs"),
        "show": _listing("show"),
        "sessions": _listing("sessions"),
    }
    try:
        return anyio.run(handlers[args.command], args)
    except (CommandError, StoreUnavailable) as exc:
        print(f"adk {args.command}: {exc}", file=sys.stderr)
    except AdkError as exc:
        print(f"adk {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
    except ModuleNotFoundError as exc:
        if exc.name != "rich":
            raise
        print(
            f"adk {args.command}: the terminal view needs rich: pip install 'adk[cli]' "
            "(or pass --plain)",
            file=sys.stderr,
        )
    except KeyboardInterrupt:
        print(f"adk {args.command}: interrupted", file=sys.stderr)
        return 130
    return 2


def _listing(name: str) -> Callable[[argparse.Namespace], Awaitable[int]]:
    async def command(args: argparse.Namespace) -> int:
        from adk.console import listing

        handler: Callable[[argparse.Namespace], Awaitable[int]] = getattr(listing, name)
        return await handler(args)

    return command


async def open_store(args: argparse.Namespace, *, create: bool) -> CheckpointStore:
    """The store ``--store`` names, reached once (CommandError naming it if it cannot be)."""
    from adk.console.loading import check_store, open_cli_store, store_url

    url = store_url(args.store)
    store = open_cli_store(url, create=create)
    try:
        await check_store(store, url)
    except CommandError:
        await _quietly_close(store)
        raise
    return store


async def _quietly_close(store: CheckpointStore) -> None:
    with contextlib.suppress(Exception):  # the store was not reachable: closing may fail too
        await store.close()


def _runner(agent: Agent, store: CheckpointStore, durability: str = "interrupt") -> Runner:
    """The Runner the commands run with: streaming, tracked, recorded, priced."""
    from adk.runner.runner import Runner
    from adk.state.limits import UsageLimits

    return Runner(
        agent,
        checkpoint_store=store,
        streaming=True,
        trajectories=True,
        durability="step" if durability == "step" else "interrupt",
        # A cost limit no run reaches: the run's account then prices every call (the footer).
        usage_limits=UsageLimits(max_cost=1e12),
    )


def _display(args: argparse.Namespace, agent: Agent) -> tuple[Display, Prompter | None, Any]:
    """The live view (and the terminal prompter) on a terminal, else JSON Lines."""
    if args.plain or not sys.stdout.isatty():
        from adk.console.plain import JsonLinesDisplay

        return JsonLinesDisplay(), None, None
    from rich.console import Console

    from adk.console.prompts import TerminalPrompter
    from adk.console.view import LiveView

    console = Console(highlight=False)
    view = LiveView(console, agent, lambda run_id: _no_progress(run_id))
    prompter = TerminalPrompter(console) if sys.stdin.isatty() else None
    return view, prompter, view


def _no_progress(run_id: str) -> Any:
    from adk.console.driver import RunSummary

    return RunSummary(run_id, "running")


def _driver(args: argparse.Namespace, runner: Runner) -> RunDriver:
    from adk.console.driver import RunDriver

    display, prompter, view = _display(args, runner.agent)
    driver = RunDriver(runner, display, prompter)
    if view is not None:
        view.progress = driver.snapshot
    return driver


async def _run(args: argparse.Namespace) -> int:
    from adk.console.driver import drive, exit_status, parse_values
    from adk.console.loading import load_agent, remember_target

    text = args.text
    if text is None:
        if sys.stdin.isatty():
            raise CommandError("give the message as TEXT (or pipe it on stdin)")
        text = sys.stdin.read().strip()
    values = parse_values(args.value)
    agent = load_agent(args.target)
    store = await open_store(args, create=True)
    runner = _runner(agent, store, args.durability)
    driver = _driver(args, runner)

    async def remember(run_id: str) -> None:
        await remember_target(store, run_id, args.target)

    try:
        summary = await drive(
            driver,
            lambda: driver.run(
                text,
                session_values=values,
                session_id=args.session,
                user_id=args.user,
                run_id=args.run_id,
                before=remember,
            ),
        )
    finally:
        await runner.close()
    _hint(driver, summary.status, summary.run_id)
    return exit_status(summary)


def _hint(driver: RunDriver, status: str, run_id: str) -> None:
    if status in ("interrupted", "paused"):
        driver.display.note(f"run {run_id} is waiting: answer with `adk resume {run_id}`")


async def _resume(args: argparse.Namespace) -> int:
    from adk.console.driver import drive, exit_status
    from adk.console.loading import load_agent, recall_target
    from adk.console.prompts import parse_answers
    from adk.runner.status import read_status

    answers = parse_answers(args.answer) if args.answer else None
    store = await open_store(args, create=False)
    try:
        info = await read_status(store, args.run_id)
        if info is None:
            raise CommandError(f"no run {args.run_id!r} in the store")
        if info.status not in ("interrupted", "paused"):
            raise CommandError(f"run {args.run_id!r} is {info.status}: nothing to resume")
        target = args.agent or await recall_target(store, args.run_id)
        if target is None:
            raise CommandError(
                f"run {args.run_id!r} was not started by `adk run`: pass --agent module:agent"
            )
        agent = load_agent(target)
    except BaseException:
        await store.close()
        raise
    runner = _runner(agent, store, info.durability)
    driver = _driver(args, runner)
    if answers is None and driver.prompter is None:
        await runner.close()
        raise CommandError(
            f"run {args.run_id!r} waits for answers: run `adk resume` in a terminal, "
            "or pass --answer INTERRUPT_ID=ANSWER"
        )
    checkpoint = info.checkpoint_id or args.run_id
    try:
        summary = await drive(driver, lambda: driver.resume(args.run_id, checkpoint, answers))
    finally:
        await runner.close()
    _hint(driver, summary.status, summary.run_id)
    return exit_status(summary)
