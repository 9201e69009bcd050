"""Run ids and the settings that say how a run's agents compose.

Kept apart from :mod:`adk.state.context` (the per-run state agents see):
these are made before a run starts, by the Runner, and outlive it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from adk.messages import Message
    from adk.state.context_policy import ContextPolicy

HistoryRewriterFn = Callable[[Sequence[Any], str], "list[Message]"]
"""A history rewriter as the run state sees it (``adk.HistoryRewriter`` is the typed name)."""

_RUN_IDS: list[str] = []


def new_run_id() -> str:
    """A fresh random run id (32 hex digits).

    Ids are cut from one ``os.urandom`` read per 64 of them (a system call per
    run is a measurable part of a short run); a forked child drops the parent's
    unused ids, so two processes never hand out the same one.
    """
    try:
        return _RUN_IDS.pop()
    except IndexError:
        block = os.urandom(16 * 64).hex()
        _RUN_IDS.extend(block[start : start + 32] for start in range(0, len(block), 32))
        return _RUN_IDS.pop()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_RUN_IDS.clear)

DEFAULT_MAX_TRANSFERS = 32
"""Transfers one run may make before it stops with a TransferLimitExceeded error."""


class RunSettings:
    """How agents of a run compose: history rewriting and transfer limits (set on the Runner)."""

    __slots__ = ("context", "history_rewriter", "max_transfers", "skip_transfer_messages")

    def __init__(
        self,
        *,
        history_rewriter: HistoryRewriterFn | None = None,
        skip_transfer_messages: bool = False,
        max_transfers: int = DEFAULT_MAX_TRANSFERS,
        context: ContextPolicy | None = None,
    ) -> None:
        self.history_rewriter = history_rewriter
        self.skip_transfer_messages = skip_transfer_messages
        self.max_transfers = max_transfers
        self.context = context
        """The context policy of agents that set none (docs/context.md)."""
