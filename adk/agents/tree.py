"""The agent tree of a run, computed from the root instead of stored on agents.

One agent object may appear in several trees, so parents are never kept on
agents: the Runner computes the tree when it is built (and an agent tool for
its inner agent), and transfers are resolved against it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adk.agents.base import Agent
from adk.errors import ConfigurationError
from adk.state.context import RunContext
from adk.tools.provider import ToolProvider


def sub_agents_of(agent: Agent) -> Sequence[Agent]:
    """The agents directly under ``agent`` (workflow children or transfer targets)."""
    children: Any = getattr(agent, "sub_agents", ())
    return tuple(children)


def is_workflow(agent: Agent) -> bool:
    """True for Sequential/Parallel/Loop agents: their children cannot transfer back to them."""
    return bool(getattr(agent, "workflow", False))


class AgentTree:
    """Names, agents and parents of one tree; agent names must be unique within it."""

    __slots__ = ("_agents", "_parents", "_providers", "root")

    def __init__(self, root: Agent) -> None:
        """Walk the tree from ``root``: ``ConfigurationError`` on a name clash or a cycle."""
        self.root = root
        self._agents: dict[str, Agent] = {}
        self._parents: dict[str, Agent] = {}
        self._providers: list[ToolProvider] | None = None
        self._walk(root, None)
        _check_no_cycle(list(self._agents.values()))

    def _walk(self, agent: Agent, parent: Agent | None) -> None:
        known = self._agents.get(agent.name)
        if known is not None:
            if known is agent:
                return  # the same agent reachable twice (e.g. a transfer back up): one node
            raise ConfigurationError(
                f"two different agents are named {agent.name!r} in the tree of "
                f"{self.root.name!r}; agent names must be unique within a tree"
            )
        self._agents[agent.name] = agent
        if parent is not None:
            self._parents[agent.name] = parent
        for child in sub_agents_of(agent):
            self._walk(child, agent)

    def get(self, name: str) -> Agent | None:
        """The agent named ``name``, or None."""
        return self._agents.get(name)

    def parent_of(self, name: str) -> Agent | None:
        """The agent ``name`` sits under, or None for the root."""
        return self._parents.get(name)

    def names(self) -> list[str]:
        """Every agent name in the tree, root first."""
        return list(self._agents)

    def __contains__(self, name: object) -> bool:
        return name in self._agents

    def tool_providers(self) -> list[ToolProvider]:
        """Every tool provider of the tree's agents, also inside agent tools (each once)."""
        providers = self._providers
        if providers is None:
            providers = self._providers = _providers_under(list(self._agents.values()))
        return providers


def _providers_under(agents: list[Agent]) -> list[ToolProvider]:
    """The tool providers of ``agents`` and of the agents inside their agent tools."""
    found: dict[int, ToolProvider] = {}
    seen: set[int] = set()
    pending = list(agents)
    while pending:
        agent = pending.pop()
        if id(agent) in seen:
            continue
        seen.add(id(agent))
        for provider in getattr(agent, "providers", ()):
            found.setdefault(id(provider), provider)
        pending.extend(sub_agents_of(agent))
        tools: Any = getattr(agent, "tools", {})
        for tool in tools.values() if isinstance(tools, dict) else ():
            inner = getattr(tool, "agent", None)
            if isinstance(inner, Agent):
                pending.append(inner)
    return list(found.values())


def _check_no_cycle(agents: list[Agent]) -> None:
    """Raise if an agent is its own sub-agent, or if workflow agents contain each other in a ring.

    A workflow agent runs its children nested in its own run, so a workflow
    child that is also its ancestor would nest forever (a ``RecursionError``
    at run time). Only workflow-to-workflow links can form such a ring: the
    sub-agents of other agents are transfer targets, and a transfer back up
    (to an agent already in the tree) is a hand-off bounded by
    ``max_transfers``, not nesting.
    """
    for agent in agents:
        if any(child is agent for child in sub_agents_of(agent)):
            raise ConfigurationError(
                f"agent {agent.name!r} is its own sub-agent; remove it from its sub_agents"
            )
    done: set[int] = set()
    for agent in agents:
        ring = _workflow_ring(agent, [], done) if is_workflow(agent) else None
        if ring is not None:
            raise ConfigurationError(
                f"workflow agents form a cycle: {' -> '.join(a.name for a in ring)}; a workflow "
                "agent must not contain itself, even through other workflow agents (its run "
                "would never end). To go back to an earlier agent, transfer to it instead."
            )


def _workflow_ring(agent: Agent, path: list[Agent], done: set[int]) -> list[Agent] | None:
    """A ring of workflow agents through ``agent`` (depth-first from it), or None.

    ``path`` holds the workflow agents being explored, ``done`` those known to
    lead to no ring.
    """
    if id(agent) in done:
        return None
    for index, ancestor in enumerate(path):
        if ancestor is agent:
            return [*path[index:], agent]
    path.append(agent)
    for child in sub_agents_of(agent):
        ring = _workflow_ring(child, path, done) if is_workflow(child) else None
        if ring is not None:
            return ring
    path.pop()
    done.add(id(agent))
    return None


def tree_of(ctx: RunContext, root: Agent) -> AgentTree:
    """The agent tree of ``ctx``'s run, computed from ``root`` if the run has none yet.

    The run state layer keeps the tree as an opaque value (it does not import
    agents); this is the one place that gives it its type back.
    """
    tree = ctx.tree
    if tree is None:
        tree = ctx.ensure_tree(lambda: AgentTree(root))
    if not isinstance(tree, AgentTree):
        raise TypeError(f"the run's agent tree is a {type(tree).__name__}, not an AgentTree")
    return tree


def known_tree(ctx: RunContext) -> AgentTree | None:
    """The agent tree of ``ctx``'s run if one was computed (by the Runner or an agent tool)."""
    tree = ctx.tree
    return tree if isinstance(tree, AgentTree) else None
