"""Merging concurrent producers into one stream with per-producer backpressure."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import TypeVar

import anyio
from anyio.abc import ObjectSendStream

T = TypeVar("T")

Producer = Callable[[Callable[[T], Awaitable[None]]], Awaitable[None]]
"""An async function that sends items through the callable it is given."""


async def merged(producers: Sequence[Producer[T]]) -> AsyncGenerator[T, None]:
    """Run ``producers`` concurrently and yield their items as they come.

    The channel has no buffer: a producer's ``send`` returns only once its
    item was taken, so a slow consumer slows every producer down instead of
    letting items pile up. Closing this iterator early cancels the producers.
    Producers must not raise (report failures as items): an exception would
    cancel the others.
    """
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
                    # Closed early by the consumer: stop the producers and end quietly,
                    # instead of letting the task group wrap GeneratorExit in a group.
                    group.cancel_scope.cancel()
                    break
