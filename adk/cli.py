"""The ``adk`` command: run and inspect agents, serve them over HTTP, work their runs.

``adk run/resume/runs/show/sessions`` are in :mod:`adk.console`; ``adk serve
module:app`` runs the HTTP service, where ``module:app`` names a
:class:`~adk.service.Service` (the app is made with
:func:`~adk.service.create_app`) or an ASGI app made by ``create_app``;
``adk worker`` executes a Service's runs from its queue; ``adk web`` serves
the inspector over a local store. argparse keeps ``adk --help`` instant:
nothing heavy is imported before a subcommand runs.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="adk", description="adk: agents, runs and services.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="serve agents over HTTP (needs the 'server' extra)",
        description="Serve a Service (or an app made by create_app) with uvicorn.",
    )
    serve.add_argument("target", help="module:attribute naming a Service or an app")
    serve.add_argument("--host", default=os.environ.get("ADK_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("ADK_PORT", "8000")))
    serve.add_argument("--log-level", default="info", help="uvicorn's log level")
    add_worker_parser(commands)
    add_web_parser(commands)
    from adk.console import add_console_parsers

    add_console_parsers(commands)
    return parser


def load_app(target: str) -> Any:
    """The ASGI app ``target`` (``module:attribute``) names; SystemExit with a message if none."""
    module_name, _, attribute = target.partition(":")
    if not module_name:
        raise SystemExit(f"adk serve: {target!r} is not module:attribute")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SystemExit(f"adk serve: cannot import {module_name!r}: {exc}") from exc
    value = getattr(module, attribute or "app", None)
    if value is None:
        raise SystemExit(
            f"adk serve: module {module_name!r} has no attribute {attribute or 'app'!r}"
        )
    from adk.service.service import Service

    if isinstance(value, Service):
        from adk.service.app import create_app

        return create_app(value)
    if not callable(value):
        raise SystemExit(f"adk serve: {target!r} is neither a Service nor an ASGI app")
    return value


def serve(target: str, host: str, port: int, log_level: str = "info") -> None:
    """Run the app ``target`` names with uvicorn until interrupted."""
    try:
        import uvicorn
    except ImportError as exc:  # pragma: no cover - the extra is missing
        raise SystemExit("adk serve needs the server extra: pip install 'adk[server]'") from exc
    uvicorn.run(load_app(target), host=host, port=port, log_level=log_level)


def add_worker_parser(commands: Any) -> None:
    """The ``adk worker module:service`` subcommand's arguments."""
    parser = commands.add_parser(
        "worker",
        help="execute a Service's runs from its RedisQueue (needs the 'redis' extra)",
        description="Take runs from the Service's RedisQueue and execute them; SIGTERM drains.",
    )
    parser.add_argument("target", help="module:attribute naming a Service with a RedisQueue")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=int(os.environ.get("ADK_WORKER_CONCURRENCY", "8")),
        help="runs executed at once (default 8, ADK_WORKER_CONCURRENCY)",
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=float(os.environ.get("ADK_WORKER_DRAIN_TIMEOUT", "60")),
        help="seconds SIGTERM waits for running runs (default 60)",
    )
    parser.add_argument("--log-level", default="info", help="logging level")


def worker(target: str, concurrency: int, drain_timeout: float, log_level: str = "info") -> int:
    """Run a :class:`~adk.service.worker.Worker` for the Service ``target`` names until SIGTERM."""
    import logging

    import anyio

    from adk.errors import ConfigurationError
    from adk.service.service import Service
    from adk.service.worker import Worker

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    module_name, _, attribute = target.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        service = getattr(importlib.import_module(module_name), attribute or "service", None)
    except ImportError as exc:
        raise SystemExit(f"adk worker: cannot import {module_name!r}: {exc}") from exc
    if not isinstance(service, Service):
        raise SystemExit(f"adk worker: {target!r} is not a Service")
    try:
        runner = Worker(service, concurrency=concurrency, drain_timeout=drain_timeout)
    except ConfigurationError as exc:
        raise SystemExit(f"adk worker: {exc}") from exc

    async def work() -> None:
        try:
            await runner.run(handle_signals=True)
        finally:
            await service.close()

    anyio.run(work)
    return 0


def add_web_parser(commands: Any) -> None:
    """The ``adk web [module:agent ...] --store PATH`` subcommand's arguments."""
    parser = commands.add_parser(
        "web",
        help="the web inspector over a local store, no API keys (needs the 'server' extra)",
        description="Serve the web inspector (and the HTTP API) over a local store, no API keys. "
        "Name agents to start runs and answer their approvals from the page.",
    )
    parser.add_argument("agents", nargs="*", help="module:agent (or path/to/file.py:agent)")
    parser.add_argument("--store", help="SQLite path or store URL (default: .adk/runs.db)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("ADK_PORT", "8000")))
    parser.add_argument("--log-level", default="warning", help="uvicorn's log level")


def web(args: argparse.Namespace) -> int:
    """Serve the inspector over ``args.store`` until interrupted (``adk web``)."""
    from adk.console.loading import CommandError, load_agent, store_url

    try:
        import uvicorn

        from adk.service.inspector import web_app
    except ImportError as exc:  # pragma: no cover - the extra is missing
        raise SystemExit("adk web needs the server extra: pip install 'adk[server]'") from exc
    try:
        agents = [load_agent(target) for target in args.agents]
    except CommandError as exc:
        raise SystemExit(f"adk web: {exc}") from exc
    store = store_url(args.store)
    if "://" not in store:
        os.makedirs(os.path.dirname(os.path.abspath(store)), exist_ok=True)
    app = web_app(store, agents)
    print(f"adk inspector: http://{args.host}:{args.port}/inspector", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``adk`` command; the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "serve":
        serve(args.target, args.host, args.port, args.log_level)
        return 0
    if args.command == "worker":
        return worker(args.target, args.concurrency, args.drain_timeout, args.log_level)
    if args.command == "web":
        return web(args)
    from adk.console import COMMANDS, run_console_command

    if args.command in COMMANDS:
        return run_console_command(args)
    _parser().print_help()
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
