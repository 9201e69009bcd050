"""Merging concurrent producers into one stream with per-producer backpressure."""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from contextlib import aclosing
from typing import TYPE_CHECKING, Generic, TypeVar

import anyio
from anyio.abc import ObjectSendStream

if TYPE_CHECKING:
    import asyncio

T = TypeVar("T")

Producer = Callable[[Callable[[T], Awaitable[None]]], Awaitable[None]]
"""An async function that sends items through the callable it is given."""


def _on_asyncio() -> bool:
    # Not imported means not running: importing adk does not import asyncio for this.
    asyncio = sys.modules.get("asyncio")
    if asyncio is None:
        return False
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class _Handoff(Generic[T]):
    """An unbuffered asyncio channel: ``send`` returns once the consumer took the item.

    anyio's memory streams do the same portably, but pay a scheduling
    checkpoint, a backend lookup and an exception per item; on asyncio a
    future per item is several times cheaper, which matters with 100 branches.
    """

    def __init__(self, producers: int) -> None:
        import asyncio

        self._loop = asyncio.get_running_loop()
        self._items: deque[tuple[T, asyncio.Future[None]]] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._active = producers

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def send(self, item: T) -> None:
        taken: asyncio.Future[None] = self._loop.create_future()
        self._items.append((item, taken))
        self._wake()
        await taken

    def producer_done(self) -> None:
        self._active -= 1
        self._wake()

    async def items(self) -> AsyncGenerator[T, None]:
        while True:
            if self._items:
                item, taken = self._items.popleft()
                yield item
                if not taken.done():
                    taken.set_result(None)
            elif self._active <= 0:
                return
            else:
                self._waiter = self._loop.create_future()
                try:
                    await self._waiter
                finally:
                    self._waiter = None


async def merged(producers: Sequence[Producer[T]]) -> AsyncGenerator[T, None]:
    """Run ``producers`` concurrently and yield their items as they come.

    There is no buffer: a producer's ``send`` returns only once its item was
    taken, so a slow consumer slows every producer down instead of letting
    items pile up. Closing this iterator early cancels the producers.
    Producers must not raise (report failures as items): an exception would
    cancel the others.
    """
    if not _on_asyncio():
        # Closed explicitly: left to the garbage collector, a generator suspended inside
        # a task group corrupts trio's cancel-scope stack.
        async with aclosing(_merged_portable(producers)) as portable:
            async for item in portable:
                yield item
        return
    channel: _Handoff[T] = _Handoff(len(producers))

    async def drive(producer: Producer[T]) -> None:
        try:
            await producer(channel.send)
        finally:
            channel.producer_done()

    # asyncio's own TaskGroup spawns a task several times faster than anyio's, and is just
    # as structured: leaving the block (normally, by error or by cancellation) cancels and
    # awaits every producer.
    import asyncio

    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(drive(producer)) for producer in producers]
        items = channel.items()
        try:
            async for item in items:
                try:
                    yield item
                except GeneratorExit:
                    # Closed early by the consumer: stop the producers and end quietly,
                    # instead of letting the task group wrap GeneratorExit in a group.
                    for task in tasks:
                        task.cancel()
                    break
        finally:
            await items.aclose()


async def _merged_portable(producers: Sequence[Producer[T]]) -> AsyncGenerator[T, None]:
    """:func:`merged` on any anyio backend, with a zero-buffer memory object stream."""
    send_stream, receive_stream = anyio.create_memory_object_stream[T](0)

    async def drive(producer: Producer[T], sender: ObjectSendStream[T]) -> None:
        async with sender:
            await producer(sender.send)

    async with anyio.create_task_group() as group:
        async with send_stream:
            for producer in producers:
                group.start_soon(drive, producer, send_stream.clone())
        async with receive_stream:
            async for item in receive_stream:
                try:
                    yield item
                except GeneratorExit:
                    group.cancel_scope.cancel()
                    break
