"""``adk runs``, ``adk show`` and ``adk sessions``: what the store knows, read back.

None of them runs an agent, so none needs one: runs and their statuses,
recorded trajectories and stored sessions are all in the store. Each prints
a rich table or tree on a terminal, JSON Lines with ``--plain`` (or in a
pipe).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from adk.console.commands import open_store
from adk.console.loading import CommandError

if TYPE_CHECKING:
    from rich.tree import Tree

    from adk.runner.trajectory import Trajectory
    from adk.state.stores.base import CheckpointStore


def _plain(args: argparse.Namespace) -> bool:
    return bool(args.plain) or not sys.stdout.isatty()


def _when(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp)) if stamp else ""


def _print_json(record: dict[str, Any]) -> None:
    print(json.dumps(record, ensure_ascii=False, default=str))


async def runs(args: argparse.Namespace) -> int:
    """List the store's runs, newest first, filtered by ``--status`` and ``--agent``."""
    from adk.errors import ConfigurationError
    from adk.runner.status import list_statuses

    if args.limit is not None and args.limit < 1:
        raise CommandError(f"--limit must be >= 1, got {args.limit}")
    store = await open_store(args, create=False)
    try:
        found = await list_statuses(store, args.status, args.agent, args.limit)
    except ConfigurationError as exc:
        raise CommandError(str(exc).replace("list_runs(status=...)", "--status")) from exc
    finally:
        await store.close()
    if _plain(args):
        for info in found:
            record = {"run_id": info.run_id, **info.encode()}
            _print_json(record)
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table("run", "status", "agent", "started", "updated", "error / checkpoint")
    for info in found:
        table.add_row(
            info.run_id,
            info.status,
            info.agent,
            _when(info.started),
            _when(info.updated),
            info.error or info.checkpoint_id or "",
        )
    Console().print(table if found else "no runs in the store")
    return 0


async def show(args: argparse.Namespace) -> int:
    """A run's recorded trajectory as a tree (JSON Lines: the trajectory's own format)."""
    from adk.runner.checkpoint import CheckpointNotFound
    from adk.runner.status import read_status
    from adk.runner.trajectory import read_trajectory

    store = await open_store(args, create=False)
    try:
        info = await read_status(store, args.run_id)
        if info is None:
            raise CommandError(f"no run {args.run_id!r} in the store")
        try:
            trajectory = await read_trajectory(store, args.run_id)
        except CheckpointNotFound as exc:
            raise CommandError(
                f"run {args.run_id!r} ({info.status}) recorded no trajectory "
                "(runs started by `adk run`, or by Runner(trajectories=True), record one)"
            ) from exc
    finally:
        await store.close()
    if _plain(args):
        sys.stdout.write(trajectory.to_jsonl())
        return 0
    from rich.console import Console

    Console(highlight=False).print(trajectory_tree(trajectory, info.status))
    return 0


def trajectory_tree(trajectory: Trajectory, status: str) -> Tree:
    """The run as a tree: executions, then agents by run path, each with its events."""
    from rich.markup import escape
    from rich.tree import Tree

    from adk.console.view import collapse

    usage = trajectory.usage
    root = Tree(
        f"[bold]run {escape(trajectory.run_id)}[/] · {status} · "
        f"{len(trajectory.model_calls)} model calls · {len(trajectory.tool_calls)} tool calls · "
        f"tokens {usage.total_tokens} (cached {usage.cached_tokens}) · {trajectory.duration:.2f}s"
    )
    for execution in trajectory.executions:
        node = root.add(
            f"execution {execution.number} · {execution.status} · "
            f"{execution.ended - execution.started:.2f}s"
        )
        agents: dict[tuple[str, ...], Tree] = {}
        asked: set[str] = set()
        for event in trajectory.events:
            if event.execution != execution.number:
                continue
            if event.interrupts and asked.issuperset(event.interrupts):
                continue  # the Runner's event repeats the interrupts its agents raised
            asked.update(event.interrupts)
            parent = node
            for depth in range(1, len(event.run_path) + 1):
                path = event.run_path[:depth]
                if path not in agents:
                    agents[path] = parent.add(f"[cyan]{escape(path[-1])}[/]")
                parent = agents[path]
            for line in _event_lines(event, collapse):
                parent.add(line)
    return root


def _event_lines(event: Any, collapse: Any) -> list[str]:
    from rich.markup import escape

    if event.error_type is not None:
        return [f"[red]✗ {escape(event.error_type)}[/]: {escape(event.error_message or '')}"]
    if event.interrupts:
        return [f"[yellow]⏸ interrupted[/]: {escape(', '.join(event.interrupts))}"]
    message = event.message
    lines: list[str] = []
    if message is not None and message.role == "tool":
        lines.append(
            f"[green]←[/] {escape(str(message.name))}: {escape(collapse(message.content))}"
        )
    elif message is not None:
        if message.content:
            lines.append(escape(collapse(message.content, 400)))
        for call in message.tool_calls:
            lines.append(f"[magenta]→[/] {escape(call.name)}({escape(collapse(call.arguments))})")
    if event.transfer_to:
        lines.append(f"[blue]⇒ transfer to {escape(event.transfer_to)}[/]")
    return lines


async def sessions(args: argparse.Namespace) -> int:
    """List stored sessions (every app), or show one session's history and values."""
    store = await open_store(args, create=False)
    try:
        found = await _sessions(store, args.app)
        if args.session_id is None:
            return _list_sessions(args, found)
        return await _one_session(args, store, found)
    finally:
        await store.close()


async def _sessions(store: CheckpointStore, app: str | None) -> list[dict[str, Any]]:
    """Every session in the store (of ``app`` if given), most recently updated first."""
    from adk.sessions.records import SessionHead

    found: list[dict[str, Any]] = []
    for namespace in await store.namespaces("session:"):
        _, app_part, id_part = namespace.split(":", 2)
        session_app, session_id = unquote(app_part), unquote(id_part)
        if app is not None and session_app != app:
            continue
        data = await store.get(namespace, "head")
        if data is None:
            continue
        head = SessionHead.decode(data, f"session {session_id!r}, head")
        found.append(
            {
                "id": session_id,
                "app": session_app,
                "user_id": head.user_id,
                "turns": head.turns,
                "created": head.created,
                "updated": head.updated,
                "paused": head.paused is not None,
            }
        )
    found.sort(key=lambda record: float(record["updated"]), reverse=True)
    return found


def _list_sessions(args: argparse.Namespace, found: list[dict[str, Any]]) -> int:
    if _plain(args):
        for record in found:
            _print_json(record)
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table("session", "app", "user", "turns", "updated", "paused")
    for record in found:
        table.add_row(
            record["id"],
            record["app"],
            record["user_id"],
            str(record["turns"]),
            _when(record["updated"]),
            "yes" if record["paused"] else "",
        )
    Console().print(table if found else "no sessions in the store")
    return 0


async def _one_session(
    args: argparse.Namespace, store: CheckpointStore, found: list[dict[str, Any]]
) -> int:
    from adk.sessions.service import SessionService

    apps = sorted({r["app"] for r in found if r["id"] == args.session_id})
    if not apps:
        raise CommandError(f"no session {args.session_id!r} in the store")
    if len(apps) > 1:
        raise CommandError(
            f"session {args.session_id!r} exists in several apps ({', '.join(apps)}): pass --app"
        )
    service = SessionService(store, app=apps[0])
    session = await service.get_session(args.session_id)
    history = [
        {"agent": entry.agent_name, "role": entry.message.role, "text": entry.message.content}
        for entry in session.history
    ]
    if _plain(args):
        _print_json(
            {
                "id": session.id,
                "app": session.app,
                "user_id": session.user_id,
                "turns": session.turns,
                "values": session.values,
                "history": history,
            }
        )
        return 0
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False)
    console.print(
        f"[bold]session {escape(session.id)}[/] · app {escape(session.app)} · "
        f"user {escape(session.user_id)!r} · {session.turns} turns"
    )
    for entry in history:
        who = entry["agent"] or "user"
        if entry["text"]:
            console.print(f"[cyan]{escape(who)}[/] ({entry['role']}): {escape(entry['text'])}")
    if session.values:
        console.print(f"values: {escape(json.dumps(session.values, default=str))}")
    return 0
