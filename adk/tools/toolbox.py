"""A toolbox: an agent's tools with their optional capabilities read once.

The :class:`~adk.Tool` protocol has optional capabilities with defaults
(``requires_approval``, ``emits_events``, ``uses_context``). They are read
here, once per tool when an agent builds its toolbox, and nowhere else:
running a call consults the toolbox's :class:`ToolTraits` instead of probing
the tool object again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from adk.models.base import ToolSpec
from adk.tools.base import Tool
from adk.tools.function import FunctionTool

ApprovalRule = bool | Callable[[dict[str, Any]], bool]
"""``requires_approval``: always, never, or a predicate of the validated arguments."""


class ToolTraits:
    """What a tool declares beyond the protocol's required members (defaults if it does not)."""

    __slots__ = ("approval", "emits_events", "plain", "uses_context")

    def __init__(self, tool: Tool) -> None:
        # The one place that probes a tool's optional capabilities.
        approval: ApprovalRule = getattr(tool, "requires_approval", False)
        self.approval = approval
        """``requires_approval`` as declared (False when the tool does not say)."""
        self.emits_events = bool(getattr(tool, "emits_events", False))
        """The tool forwards events to the caller's stream while it runs (an agent tool)."""
        self.uses_context = bool(getattr(tool, "uses_context", True))
        """The tool may read its ToolContext (and so change session values)."""
        self.plain = type(tool) is FunctionTool and not self.uses_context
        """A function without a ToolContext parameter: no context is built unless it interrupts."""

    def needs_approval(self, arguments: dict[str, Any]) -> bool:
        """Whether a call with ``arguments`` must be approved before it runs."""
        rule = self.approval
        if rule is False:
            return False
        if callable(rule):
            return bool(rule(arguments))
        return bool(rule)


class Toolbox:
    """The tools of one agent by name, each with its traits, and their specs in canonical order."""

    __slots__ = ("emitting", "specs", "tools", "traits")

    def __init__(self, tools: Mapping[str, Tool]) -> None:
        self.tools: dict[str, Tool] = dict(tools)
        self.traits: dict[str, ToolTraits] = {name: ToolTraits(t) for name, t in tools.items()}
        self.emitting = any(traits.emits_events for traits in self.traits.values())
        """Some tool forwards events (calls then run in a merged event stream)."""
        # Sorted tools keep the prompt prefix stable across calls and agents.
        self.specs: list[ToolSpec] = [self.tools[name].spec for name in sorted(self.tools)]

    def emits_events(self, names: list[str]) -> bool:
        """True if one of the tools named ``names`` forwards events while it runs."""
        traits = self.traits
        return any(name in traits and traits[name].emits_events for name in names)
