"""What the ``adk`` run commands load: an agent named ``module:agent``, and a store named by URL.

Both are where a person's typo lands, so both fail with one clear line
(:class:`CommandError`, exit status 2) instead of a traceback: a module that
does not import, a name that is missing or is not an agent, a store URL that
cannot be reached (named without its password).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from adk.agents.base import Agent
    from adk.state.stores.base import CheckpointStore

DEFAULT_STORE = ".adk/runs.db"
"""The SQLite file the commands use when neither ``--store`` nor ``ADK_STORE`` names a store."""
TARGETS_NAMESPACE = "cli:targets"
"""Where ``adk run`` notes which ``module:agent`` a run came from (for ``adk resume``)."""


class CommandError(Exception):
    """A command cannot do what it was asked; its message is the one line printed (exit 2)."""


def load_agent(target: str) -> Agent:
    """The agent ``target`` names: ``package.module:name`` or ``path/to/file.py:name``.

    The name defaults to ``agent``. The current directory is importable, as
    it is for ``python -m``.
    """
    from adk.agents.base import Agent

    module_part, _, attribute = target.rpartition(":") if ":" in target else (target, "", "")
    attribute = attribute or "agent"
    if not module_part:
        raise CommandError(f"{target!r} is not module:agent or path/to/file.py:agent")
    module = _import(module_part)
    value = getattr(module, attribute, None)
    if value is None:
        names = sorted(n for n, v in vars(module).items() if isinstance(v, Agent))
        known = f" (agents there: {', '.join(names)})" if names else " (it defines no agent)"
        raise CommandError(f"{module_part!r} has no attribute {attribute!r}{known}")
    if not isinstance(value, Agent):
        raise CommandError(
            f"{target!r} is not an agent but {type(value).__name__} {_short(value)} "
            "(an agent has name, description and run, e.g. a ChatModelAgent)"
        )
    return value


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _import(module_part: str) -> Any:
    """Import a module by dotted name or by file path; CommandError naming why it failed."""
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        if module_part.endswith(".py") or os.sep in module_part:
            path = Path(module_part)
            if not path.is_file():
                raise CommandError(f"no such file: {module_part}")
            sys.path.insert(0, str(path.resolve().parent))
            spec = importlib.util.spec_from_file_location(path.stem, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[path.stem] = module
            spec.loader.exec_module(module)
            return module
        return importlib.import_module(module_part)
    except CommandError:
        raise
    except SystemExit as exc:
        raise CommandError(f"importing {module_part!r} exited (status {exc.code})") from exc
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        reason = " ".join(str(exc).split()) or "no detail"
        raise CommandError(
            f"cannot import {module_part!r}: {type(exc).__name__}: {reason}"
        ) from exc


def store_url(given: str | None) -> str:
    """The store the command uses: ``--store``, else ``$ADK_STORE``, else ``.adk/runs.db``."""
    return given or os.environ.get("ADK_STORE") or DEFAULT_STORE


def open_cli_store(url: str, *, create: bool = True) -> CheckpointStore:
    """The store ``url`` names: a SQLite path, ``redis://...``, ``postgresql://...``, ``memory``.

    Nothing is contacted yet (see :func:`check_store`). ``create=False``
    refuses a SQLite file that does not exist (the read-only commands must
    not leave an empty database behind a typo).
    """
    from adk.state.stores import InMemoryStore, SQLiteStore
    from adk.state.stores.base import redact_address

    shown = redact_address(url)
    try:
        if url == "memory":
            return InMemoryStore()
        if url.startswith(("redis://", "rediss://", "unix://")):
            from adk.state.stores.redis import RedisStore

            return RedisStore(url, connect_timeout=3.0)
        if url.startswith(("postgresql://", "postgres://")):
            from adk.state.stores.postgres import PostgresStore

            return PostgresStore(url, connect_timeout=3.0)
    except ImportError as exc:
        raise CommandError(f"store {shown}: its driver is not installed ({exc.name})") from exc
    except Exception as exc:
        raise CommandError(f"store {shown}: {type(exc).__name__}: {_scrub(exc, url)}") from exc
    if "://" in url:
        raise CommandError(
            f"store {shown}: unknown scheme (use a SQLite path, redis://, postgresql:// or memory)"
        )
    path = Path(url)
    if not create and not path.exists():
        raise CommandError(f"store {shown}: no such SQLite file (nothing was run with it)")
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    return SQLiteStore(path)


async def check_store(store: CheckpointStore, url: str) -> None:
    """Reach the store once now, so an unreachable one is one clear line before anything runs."""
    from adk.state.stores.base import redact_address

    try:
        await store.get(TARGETS_NAMESPACE, "-")
    except Exception as exc:
        shown = redact_address(url)
        raise CommandError(
            f"cannot reach the store at {shown}: {type(exc).__name__}: {_scrub(exc, url)}"
        ) from exc


def _scrub(exc: BaseException, url: str) -> str:
    """The error's text on one line, without the URL's password if it quotes it."""
    from urllib.parse import urlsplit

    from adk.state.stores.base import redact_address

    text = " ".join(str(exc).split()) or "no detail"
    text = text.replace(url, redact_address(url))
    password = urlsplit(url).password if "://" in url else None
    return text.replace(password, "***") if password else text


async def remember_target(store: CheckpointStore, run_id: str, target: str) -> None:
    """Note which ``module:agent`` run ``run_id`` came from, for ``adk resume``."""
    record = {"target": target, "cwd": os.getcwd()}
    await store.put(TARGETS_NAMESPACE, run_id, json.dumps(record).encode())


async def recall_target(store: CheckpointStore, run_id: str) -> str | None:
    """The ``module:agent`` ``adk run`` noted for ``run_id`` (None if another program ran it)."""
    data = await store.get(TARGETS_NAMESPACE, run_id)
    if data is None:
        return None
    record = json.loads(data)
    target = record.get("target")
    cwd = record.get("cwd")
    if isinstance(cwd, str) and cwd not in sys.path:
        sys.path.append(cwd)
    if isinstance(target, str) and isinstance(cwd, str) and ".py" in target:
        path, _, name = target.rpartition(":")
        if not os.path.isabs(path):
            target = f"{os.path.join(cwd, path)}:{name}"
    return target if isinstance(target, str) else None
