"""ToolProvider: a source of tools that are known only at run time (an MCP server's tools).

A plain :class:`~adk.Tool` is fixed when the agent is built. A provider is
asked for its tools when an agent's turn starts (it may connect to a server
to list them); the tools it returns then run through the same validation,
approval, interrupt and journaling path as any other tool. The Runner closes
every provider of its agent tree in :meth:`~adk.Runner.close`, and tells
each one when a run ends, so a provider that holds a connection per run can
release it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from adk.state.context import RunContext
from adk.tools.base import Tool


@runtime_checkable
class ToolProvider(Protocol):
    """Tools listed at run time, for one agent turn.

    - ``name``: names the provider in errors (e.g. the MCP server).
    - ``list_tools(ctx)``: the tools for this turn; called when a turn starts.
      Tool names must be unique across an agent's tools and providers. A
      failure to list ends the agent's turn with an error event naming the
      provider.
    - ``end_run(run_id)``: the run ``run_id`` ended (finished, failed or
      paused); release what was held for it.
    - ``close()``: release everything (the Runner's ``close``).
    """

    name: str

    async def list_tools(self, ctx: RunContext) -> Sequence[Tool]:
        """The tools this provider offers to a turn of the run ``ctx``."""
        ...

    async def end_run(self, run_id: str) -> None:
        """Release what was held for the run ``run_id``."""
        ...

    async def close(self) -> None:
        """Release every connection; the provider may be used again afterwards (it reopens)."""
        ...
