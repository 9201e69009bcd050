"""The thread that owns every MCP connection of a toolset.

Why a thread of its own: the SDK's transports and ``Client`` are async context
managers that must be entered and exited by the same task, and they keep
background tasks alive for as long as they are open. adk calls tools from
whatever task (and event loop) a run happens to be in, asyncio or trio, and a
Runner may outlive one ``anyio.run`` and be used by the next. So connections
live in a host task on a dedicated event loop (an asyncio loop in a daemon
thread, driven through an anyio :class:`~anyio.from_thread.BlockingPortal`),
and runs send it requests:

- :meth:`Host.run` schedules a coroutine on the host loop and waits for it in a
  worker thread of the caller's loop, so it works from asyncio and trio alike
  and never blocks the caller's loop;
- a caller that is cancelled (its run was cancelled, or a timeout hit)
  cancels the coroutine on the host loop too, so nothing is left running;
- the thread is a daemon: a program that never calls ``Runner.close()`` still
  exits (its stdio servers see their stdin close and end as well).
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from anyio.abc import TaskGroup
from anyio.from_thread import BlockingPortal

T = TypeVar("T")


class Host:
    """An event loop in a daemon thread, with a task group for long-lived connection tasks."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._portal: BlockingPortal | None = None
        self._task_group: TaskGroup | None = None
        self._thread: threading.Thread | None = None

    @property
    def task_group(self) -> TaskGroup:
        """The host loop's task group (use only from coroutines running on the host loop)."""
        if self._task_group is None:
            raise RuntimeError("the MCP host thread is not running")
        return self._task_group

    def _start(self) -> BlockingPortal:
        """Start the thread if needed and return its portal (blocking, thread-safe)."""
        with self._lock:
            if self._portal is not None and self._thread is not None and self._thread.is_alive():
                return self._portal
            ready: concurrent.futures.Future[BlockingPortal] = concurrent.futures.Future()
            thread = threading.Thread(
                target=self._main, args=(ready,), name=f"adk-mcp-{self._name}", daemon=True
            )
            thread.start()
            self._portal = ready.result()
            self._thread = thread
            return self._portal

    def _main(self, ready: concurrent.futures.Future[BlockingPortal]) -> None:
        async def serve() -> None:
            async with anyio.create_task_group() as group:
                self._task_group = group
                async with BlockingPortal() as portal:
                    ready.set_result(portal)
                    await portal.sleep_until_stopped()
                group.cancel_scope.cancel()  # connections were closed before; nothing is left

        try:
            anyio.run(serve)
        except BaseException as exc:  # pragma: no cover - only if the loop itself breaks
            if not ready.done():
                ready.set_exception(exc)
        finally:
            self._task_group = None

    async def run(self, func: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``func(*args)`` on the host loop and return its result (from any event loop).

        If the caller is cancelled, the coroutine on the host loop is cancelled
        too before this returns.
        """
        portal = self._portal
        if portal is None or self._thread is None or not self._thread.is_alive():
            portal = await anyio.to_thread.run_sync(self._start)
        future = portal.start_task_soon(func, *args)
        try:
            return await anyio.to_thread.run_sync(future.result, abandon_on_cancel=True)
        except BaseException:
            future.cancel()
            raise

    def run_blocking(self, func: Callable[..., Awaitable[T]], *args: Any, timeout: float) -> T:
        """Run ``func(*args)`` on the host loop from a thread that has no event loop."""
        portal = self._start()
        future = portal.start_task_soon(func, *args)
        try:
            return future.result(timeout)
        except BaseException:
            future.cancel()
            raise

    @property
    def running(self) -> bool:
        """Whether the host thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    async def stop(self) -> None:
        """Stop the loop and wait for the thread to end (connections must be closed first)."""
        with self._lock:
            portal, thread = self._portal, self._thread
            self._portal = self._thread = None
        if portal is None or thread is None:
            return
        await anyio.to_thread.run_sync(lambda: portal.call(portal.stop))
        await anyio.to_thread.run_sync(thread.join)
