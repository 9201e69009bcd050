"""The parts of a DAG agent's graph: node specs, node results, and the graph's checks.

A :class:`~adk.DAGAgent` is built from :class:`Node` specs (an agent, the
nodes it waits for, an optional condition and an optional input builder).
Everything here is decided at build time or from upstream results only,
never from timing, so a resumed run (deterministic replay) makes the same
decisions as the run it resumes.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from adk.agents.base import Agent
from adk.errors import ArgumentTypeError, ConfigurationError
from adk.events import AgentEvent, ErrorInfo
from adk.messages import Message

NodeStatus = Literal["completed", "skipped", "failed", "upstream_failed", "not_run"]
"""How a node ended: ran to its end, skipped by its condition, failed, not run because an
upstream node failed, or not run because the DAG stopped early (a loop break)."""


@dataclass(frozen=True, slots=True)
class NodeResult:
    """What a node left for the nodes after it (and for :meth:`DAGAgent.results`).

    ``message`` and ``value`` are the node's final answer as a
    :class:`~adk.RunResult` would report it: the last non-partial event of the
    node (at any depth inside it) that outputs a message or a structured value.
    """

    node: str
    status: NodeStatus
    message: Message | None = None
    value: Any = None
    error: ErrorInfo | None = None

    @property
    def text(self) -> str:
        """The final answer's text ("" when the node output no message)."""
        return self.message.content if self.message is not None else ""

    @property
    def skipped(self) -> bool:
        """True when the node's condition was false (it did not run)."""
        return self.status == "skipped"

    @property
    def answer(self) -> str:
        """The result as text for a prompt: the text, else the value as JSON, else ""."""
        if self.text:
            return self.text
        if self.value is None:
            return ""
        value = self.value
        dump = getattr(value, "model_dump", None)
        if callable(dump):
            value = dump(mode="json")
        return json.dumps(value, default=str, ensure_ascii=False)


class Upstream(Mapping[str, NodeResult]):
    """A node's view of the nodes it waits for: their results, by node name.

    Only the node's direct dependencies are in it, each ``completed`` or
    ``skipped`` (a node whose dependency failed never runs). :attr:`history`
    is the node's view of the conversation as it was when the DAG started
    (the run's input and what agents before the DAG said), the same for every
    run of the DAG whatever order its nodes finish in.
    """

    __slots__ = ("_results", "history")

    def __init__(self, results: Mapping[str, NodeResult], history: Sequence[Message]) -> None:
        self._results = dict(results)
        self.history: list[Message] = list(history)

    def __getitem__(self, name: str) -> NodeResult:
        return self._results[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._results)

    def __len__(self) -> int:
        return len(self._results)

    def __repr__(self) -> str:
        return f"Upstream({', '.join(f'{k}={v.status}' for k, v in self._results.items())})"


Condition = Callable[[Upstream], bool | Awaitable[bool]]
"""``when=``: decides from the upstream results whether a node runs (sync or async)."""

InputBuilder = Callable[[Upstream], Sequence[Message] | str | Awaitable[Sequence[Message] | str]]
"""``input=``: a node's input messages (or one prompt string) from its upstream results."""


@dataclass(frozen=True, slots=True, init=False)
class Node:
    """One node of a :class:`~adk.DAGAgent`: an agent and what it waits for.

    - ``after``: the names of the nodes that must finish first (a name, an
      agent, or a list of them); none: the node starts with the DAG.
    - ``when``: a condition on the upstream results; false skips the node.
    - ``input``: builds the node's input from the upstream results instead of
      the default (its view of the conversation plus its dependencies'
      answers, labelled by node name).
    """

    agent: Agent
    after: tuple[str, ...]
    when: Condition | None
    input: InputBuilder | None

    def __init__(
        self,
        agent: Agent,
        *,
        after: str | Agent | Iterable[str | Agent] = (),
        when: Condition | None = None,
        input: InputBuilder | None = None,
    ) -> None:
        if not isinstance(agent, Agent):
            raise ArgumentTypeError(
                f"Node: agent must be an agent, got {type(agent).__name__} {agent!r}"
            )
        for label, value in (("when", when), ("input", input)):
            if value is not None and not callable(value):
                raise ArgumentTypeError(
                    f"node {agent.name!r}: {label}= must be a function of the upstream "
                    f"results, got {type(value).__name__} {value!r}"
                )
        object.__setattr__(self, "agent", agent)
        object.__setattr__(self, "after", _dependency_names(agent.name, after))
        object.__setattr__(self, "when", when)
        object.__setattr__(self, "input", input)

    @property
    def name(self) -> str:
        """The node's name: its agent's name."""
        return self.agent.name


def _dependency_names(node: str, after: str | Agent | Iterable[str | Agent]) -> tuple[str, ...]:
    """``after`` as a tuple of distinct node names, in the order given."""
    items: Iterable[Any] = (after,) if isinstance(after, str | Agent) else after
    if not isinstance(items, Iterable):
        raise ArgumentTypeError(
            f"node {node!r}: after= must be node names (or agents), "
            f"got {type(after).__name__} {after!r}"
        )
    names: list[str] = []
    for item in items:
        if isinstance(item, Agent):
            item = item.name
        if not isinstance(item, str):
            raise ArgumentTypeError(
                f"node {node!r}: after= must be node names (or agents), "
                f"got {type(item).__name__} {item!r}"
            )
        if item not in names:
            names.append(item)
    return tuple(names)


def check_graph(dag: str, nodes: Iterable[Node | Agent]) -> dict[str, Node]:
    """The nodes of DAG ``dag`` by name, checked, in a topological order.

    Raises :class:`~adk.ConfigurationError` for no nodes, two nodes with one
    name, a node named like the DAG, an unknown dependency, or a cycle (named
    in the message). Ties keep the order the nodes were given in.
    """
    if isinstance(nodes, Node | Agent | str) or not isinstance(nodes, Iterable):
        raise ArgumentTypeError(
            f"DAG agent {dag!r}: nodes must be a list of Node(...) or agents, "
            f"got {type(nodes).__name__} {nodes!r}"
        )
    by_name: dict[str, Node] = {}
    for item in nodes:
        node = item if isinstance(item, Node) else _as_node(dag, item)
        if node.name in by_name:
            raise ConfigurationError(f"DAG agent {dag!r} has two nodes named {node.name!r}")
        if node.name == dag:
            raise ConfigurationError(
                f"DAG agent {dag!r} has a node named like itself; "
                "agent names must be unique within a tree"
            )
        by_name[node.name] = node
    if not by_name:
        raise ConfigurationError(f"DAG agent {dag!r} needs at least one node")
    for node in by_name.values():
        for dep in node.after:
            if dep not in by_name:
                known = ", ".join(by_name)
                raise ConfigurationError(
                    f"DAG agent {dag!r}: node {node.name!r} waits for {dep!r}, "
                    f"which is not a node of it (nodes: {known})"
                )
    cycle = _find_cycle(by_name)
    if cycle is not None:
        raise ConfigurationError(
            f"DAG agent {dag!r}: nodes wait for each other in a cycle: "
            f"{' -> '.join(cycle)} (each waits for the next); no node of it could ever start"
        )
    return {name: by_name[name] for name in _topological(by_name)}


def _as_node(dag: str, item: object) -> Node:
    if not isinstance(item, Agent):
        raise ArgumentTypeError(f"DAG agent {dag!r}: {item!r} is not a Node(...) or an agent")
    return Node(item)


def _find_cycle(nodes: Mapping[str, Node]) -> list[str] | None:
    """A cycle of waits (first node repeated at the end), or None; depth-first, in order."""
    state: dict[str, int] = {}  # 1: on the current path, 2: known to lead to no cycle
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        path.append(name)
        for dep in nodes[name].after:
            if state.get(dep) == 1:
                return [*path[path.index(dep) :], dep]
            if dep not in state:
                found = visit(dep)
                if found is not None:
                    return found
        path.pop()
        state[name] = 2
        return None

    for name in nodes:
        if name not in state:
            found = visit(name)
            if found is not None:
                return found
    return None


def _topological(nodes: Mapping[str, Node]) -> list[str]:
    """Node names with every node after its dependencies (ties: the order given)."""
    placed: set[str] = set()
    order: list[str] = []
    while len(order) < len(nodes):
        for name, node in nodes.items():
            if name not in placed and all(dep in placed for dep in node.after):
                placed.add(name)
                order.append(name)
                break
    return order


def default_input(upstream: Upstream) -> list[Message]:
    """A node's default input: its conversation view, then its dependencies' answers.

    The answers come as one user-role context message, each labelled with
    its node name, in the order the node lists its dependencies; skipped
    dependencies (and answers with no text) add nothing.
    """
    messages = list(upstream.history)
    parts = [f"[{name}] said: {r.answer}" for name, r in upstream.items() if r.answer]
    if parts:
        lead = "For context: results of the earlier steps this step builds on:"
        messages.append(Message.user("\n\n".join([lead, *parts])))
    return messages


async def build_input(node: str, builder: InputBuilder | None, upstream: Upstream) -> list[Message]:
    """Run ``builder`` (sync or async) and check what it made; the default without one."""
    if builder is None:
        return default_input(upstream)
    made: Any = builder(upstream)
    if inspect.isawaitable(made):
        made = await made
    if isinstance(made, str):
        return [Message.user(made)]
    if isinstance(made, Sequence) and all(isinstance(m, Message) for m in made):
        return list(made)
    raise ArgumentTypeError(
        f"node {node!r}: input= must return a list of messages or a prompt str, "
        f"got {type(made).__name__} {made!r:.80}"
    )


async def check_condition(condition: Condition, upstream: Upstream) -> bool:
    """Evaluate ``when=`` (sync or async) on the upstream results."""
    verdict: Any = condition(upstream)
    if inspect.isawaitable(verdict):
        verdict = await verdict
    return bool(verdict)


class ResultFolder:
    """Folds a node's events, as they pass, into its :class:`NodeResult`."""

    __slots__ = ("error", "interrupted", "message", "value")

    def __init__(self) -> None:
        self.message: Message | None = None
        self.value: Any = None
        self.error: ErrorInfo | None = None
        self.interrupted = False

    def see(self, event: AgentEvent) -> None:
        """Take one event of the node (at any depth inside it) into account."""
        if event.error is not None and self.error is None:
            self.error = event.error
        action = event.action
        if action is not None and action.interrupted is not None:
            self.interrupted = True
        output = event.output
        if output is None or output.partial:
            return
        if output.value is not None or output.message is not None:
            self.message, self.value = output.message, output.value

    def result(self, node: str, status: NodeStatus) -> NodeResult:
        """The node's result, ended with ``status``."""
        return NodeResult(node, status, self.message, self.value, self.error)
