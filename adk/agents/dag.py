"""DAGAgent: a workflow agent whose nodes are agents and whose edges are dependencies.

Each node starts as soon as every node it waits for has finished, not level
by level, so a branch whose inputs are ready never waits for unrelated
work. Nodes run through :func:`~adk.run_agent` like any child of a workflow
agent, so errors are data, events are attributed to their node, and
streaming, budgets, tracing and interrupts work unchanged.

A resumed run executes the DAG again (deterministic replay: completed model
and tool calls come from the journal). Under concurrency nodes finish in a
different order each time, so nothing that decides whether a node runs, or
what it is told, depends on timing: only on its upstream results and on the
conversation as it was when the DAG started. The DAG therefore needs no
resume code of its own.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, ClassVar

import anyio

from adk._streams import merged
from adk.agents.base import Agent, AgentInput, BaseAgent, error_event
from adk.agents.dag_nodes import (
    InputBuilder,
    Node,
    NodeResult,
    NodeStatus,
    ResultFolder,
    Upstream,
    build_input,
    check_condition,
    check_graph,
)
from adk.agents.flow import run_agent
from adk.agents.history import input_messages
from adk.errors import ArgumentTypeError, ConfigurationError
from adk.events import AgentEvent, AgentOutput
from adk.messages import Message
from adk.state.context import RunContext

if TYPE_CHECKING:
    from adk.agents.stage_mapping import StageMapper

Send = Callable[[AgentEvent], Awaitable[None]]

NODE_SKIPPED = "dag_node_skipped"
"""``custom["kind"]`` of the event a node that does not run leaves in its place."""

DAG_DONE = "dag_done"
"""``custom["kind"]`` of the DAG's own last event: every node's status."""


class DAGAgent(BaseAgent):
    """Runs agents as the nodes of a dependency graph, each as soon as its inputs are ready.

    ``nodes`` lists :class:`~adk.Node` specs (or plain agents: nodes that wait
    for nothing). ``max_concurrency`` caps how many nodes run at once (None:
    no cap). ``mapper`` (a stage mapper, :mod:`adk.agents.stage_mapping`)
    assigns each node a backend before it runs.

    - A node whose condition (``when=``) is false is skipped; nodes after it
      still run if their own condition allows, and see it as ``skipped``.
    - A failing node fails every node after it (they do not run; each leaves
      an event saying why); other branches run to their end and the DAG
      fails at the end.
    - An interrupt (or a loop break) inside a node halts the DAG: running
      nodes finish, no node that waits for others starts, and the resumed
      run goes on in place. An exit ends the whole run at once.

    When it ends (not paused) the DAG emits one event of its own, a
    ``dag_done`` custom payload with every node's status; :meth:`results`
    reads a finished run back. See docs/workflows.md.
    """

    workflow: ClassVar[bool] = True

    def __init__(
        self,
        name: str,
        nodes: Iterable[Node | Agent],
        *,
        max_concurrency: int | None = None,
        mapper: StageMapper | None = None,
        description: str = "",
    ) -> None:
        super().__init__(name, description)
        if max_concurrency is not None:
            if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int):
                raise ArgumentTypeError(
                    f"DAG agent {name!r}: max_concurrency must be an int or None (no cap), "
                    f"got {type(max_concurrency).__name__} {max_concurrency!r}"
                )
            if max_concurrency < 1:
                raise ConfigurationError(
                    f"DAG agent {name!r}: max_concurrency must be >= 1 (None: no cap), "
                    f"got {max_concurrency}"
                )
        if mapper is not None and not callable(getattr(mapper, "assign", None)):
            raise ArgumentTypeError(
                f"DAG agent {name!r}: mapper must be a stage mapper (with an async "
                f"assign(stage, ctx)), got {type(mapper).__name__} {mapper!r}"
            )
        self.nodes: dict[str, Node] = check_graph(name, nodes)
        """The nodes by name, every node after the nodes it waits for."""
        self.sub_agents: tuple[Agent, ...] = tuple(node.agent for node in self.nodes.values())
        self.max_concurrency = max_concurrency
        self.mapper = mapper

    async def run(self, input: AgentInput, ctx: RunContext) -> AsyncIterator[AgentEvent]:
        """Run every node as its dependencies finish and pass their events on as they come."""
        run = _DagRun(self, ctx)
        async with aclosing(merged([run.producer(name) for name in self.nodes])) as events:
            async for event in events:
                yield event
                if event.action is not None and event.action.exit:
                    return
        if run.paused:
            return  # the resumed run settles the DAG (and says so once)
        yield self.custom_event(ctx, run.summary())
        if run.failed:
            ctx.failed = True

    def results(self, events: Iterable[AgentEvent]) -> dict[str, NodeResult]:
        """Each node's result in ``events`` (e.g. ``RunResult.history``), by node name.

        From this DAG's last finished run in ``events`` (its ``dag_done``
        event gives the statuses); nodes not in that run are left out. Empty
        if the DAG never finished (paused, or ended by an exit).
        """
        folders: dict[str, ResultFolder] = {}
        found: dict[str, NodeResult] = {}
        for event in events:
            custom = event.output.custom if event.output is not None else None
            if (
                isinstance(custom, dict)
                and custom.get("kind") == DAG_DONE
                and custom.get("dag") == self.name
                and event.run_path[-1:] == (self.name,)
            ):
                statuses: dict[str, NodeStatus] = custom["nodes"]
                empty = ResultFolder()
                found = {
                    name: folders.get(name, empty).result(name, status)
                    for name, status in statuses.items()
                }
                folders = {}
                continue
            node = self._node_of(event.run_path)
            if node is not None:
                folders.setdefault(node, ResultFolder()).see(event)
        return found

    def _node_of(self, run_path: tuple[str, ...]) -> str | None:
        """The node of this DAG an event at ``run_path`` belongs to, if any."""
        for index in range(len(run_path) - 1):
            if run_path[index] == self.name and run_path[index + 1] in self.nodes:
                return run_path[index + 1]
        return None


class _NodeRun:
    """A node's unit of work as :func:`run_agent` runs it: input, stage mapping, the agent.

    It carries the node agent's name, so the node's events, run path, journal
    address and trace span are the agent's own; building the input inside
    the run makes a failing ``input=`` builder an error event of the node.
    """

    __slots__ = ("agent", "builder", "description", "mapper", "name", "upstream")

    def __init__(self, node: Node, upstream: Upstream, mapper: StageMapper | None) -> None:
        self.agent = node.agent
        self.name = node.agent.name
        self.description = node.agent.description
        self.builder: InputBuilder | None = node.input
        self.upstream = upstream
        self.mapper = mapper

    async def run(self, input: AgentInput, ctx: RunContext) -> AsyncGenerator[AgentEvent, None]:
        """Build the node's input, map its stage if a mapper is set, then run its agent."""
        messages = await build_input(self.name, self.builder, self.upstream)
        node_input = AgentInput(messages=messages)
        if self.mapper is not None:
            from adk.agents.stage_mapping import map_stage

            mapped = await map_stage(self.mapper, self.name, self.agent, node_input, ctx)
            if mapped is not None:
                yield mapped
        stream = self.agent.run(node_input, ctx)
        try:
            async for event in stream:
                yield event
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()


class _DagRun:
    """One run of a DAG agent: results so far, a finish signal per node, the pause flag."""

    def __init__(self, dag: DAGAgent, ctx: RunContext) -> None:
        self.dag = dag
        self.ctx = ctx
        # Every node's view of the conversation, taken now: what a node is told must not
        # depend on which unrelated nodes happened to finish before it started.
        self.history: dict[str, list[Message]] = {
            name: input_messages(ctx, name) for name in dag.nodes
        }
        self.results: dict[str, NodeResult] = {}
        self.finished = {name: anyio.Event() for name in dag.nodes}
        self.limiter = anyio.Semaphore(dag.max_concurrency) if dag.max_concurrency else None
        self.halted = False
        """An interrupt or a loop break was seen: no node starts from now on."""
        self.paused = False
        """An interrupt was seen: the run will pause, the resumed run settles the DAG."""
        self.failed = False
        self.causes: dict[str, list[str]] = {}
        """For each node that did not run because of failures upstream: the failed nodes."""

    def producer(self, name: str) -> Callable[[Send], Awaitable[None]]:
        """The task of node ``name``: wait for its dependencies, then settle it."""

        async def produce(send: Send) -> None:
            try:
                for dep in self.dag.nodes[name].after:
                    await self.finished[dep].wait()
                await self._settle(name, send)
            finally:
                self.finished[name].set()

        return produce

    def summary(self) -> dict[str, Any]:
        """The payload of the DAG's last event: every node's status, in graph order."""
        results = self.results
        nodes = {
            name: results[name].status if name in results else "not_run" for name in self.dag.nodes
        }
        return {"kind": DAG_DONE, "dag": self.dag.name, "nodes": nodes, "failed": self.failed}

    async def _settle(self, name: str, send: Send) -> None:
        """Run node ``name``, or record why it does not run.

        Whether a node runs is decided from its upstream results alone (a
        failed dependency, its condition), so the decision is the same in a
        resumed run. Only starting it also depends on the DAG not being
        halted: nodes that wait for nothing start with the DAG whatever
        happens; a node that waited for others (or for a slot) does not start
        once the DAG halted.
        """
        node = self.dag.nodes[name]
        upstream = {dep: self.results[dep] for dep in node.after if dep in self.results}
        if len(upstream) < len(node.after):
            return  # a dependency did not finish: the DAG is pausing
        causes = self._failed_before(node)
        if causes:
            self.results[name] = NodeResult(name, "upstream_failed")
            self.causes[name] = causes
            failed = ", ".join(repr(cause) for cause in causes)
            reason = f"upstream node{'s' if len(causes) > 1 else ''} {failed} failed"
            await send(self._notice(name, "upstream_failed", reason, causes))
            return
        view = Upstream(upstream, self.history[name])
        if node.when is not None:
            try:
                runs = await check_condition(node.when, view)
            except Exception as exc:
                await send(self._condition_failed(name, exc))
                return
            if not runs:
                self.results[name] = NodeResult(name, "skipped")
                await send(self._notice(name, "skipped", "its condition (when=) is false", []))
                return
        if self.halted and node.after:
            return
        if self.limiter is None:
            await self._execute(node, view, send)
            return
        async with self.limiter:
            if not self.halted:
                await self._execute(node, view, send)

    async def _execute(self, node: Node, upstream: Upstream, send: Send) -> None:
        """Run ``node``'s agent, forwarding its events and noting how it ended."""
        name = node.name
        node_ctx = self.ctx.child(name)
        unit = _NodeRun(node, upstream, self.dag.mapper)
        folder = ResultFolder()
        async with aclosing(run_agent(unit, AgentInput(messages=[]), node_ctx)) as events:
            async for event in events:
                folder.see(event)
                action = event.action
                if action is not None:
                    if action.interrupted is not None:
                        self.halted = self.paused = True
                    elif action.break_loop is not None and not action.break_loop.done:
                        self.halted = True
                await send(event)
        if node_ctx.failed:
            self.failed = True
            self.results[name] = folder.result(name, "failed")
        elif not folder.interrupted:  # an interrupted node has not finished: no result
            self.results[name] = folder.result(name, "completed")

    def _failed_before(self, node: Node) -> list[str]:
        """The failed nodes upstream of ``node`` (through nodes they kept from running)."""
        found: set[str] = set()
        for dep in node.after:
            status = self.results[dep].status
            if status == "failed":
                found.add(dep)
            elif status == "upstream_failed":
                found.update(self.causes[dep])
        return [name for name in self.dag.nodes if name in found]  # in graph order

    def _condition_failed(self, name: str, exc: Exception) -> AgentEvent:
        """The error event of node ``name`` whose condition raised ``exc``: the node failed."""
        self.failed = True
        event = self._own(name, lambda ctx: error_event(name, ctx, exc))
        self.results[name] = NodeResult(name, "failed", error=event.error)
        return event

    def _notice(self, name: str, status: str, reason: str, failed: list[str]) -> AgentEvent:
        """The event a node that does not run leaves (kind ``dag_node_skipped``)."""
        payload: dict[str, Any] = {
            "kind": NODE_SKIPPED,
            "dag": self.dag.name,
            "node": name,
            "status": status,
            "reason": reason,
        }
        if failed:
            payload["failed_upstream"] = failed
        return self._own(
            name,
            lambda ctx: AgentEvent(
                agent_name=name, run_path=ctx.run_path, output=AgentOutput(custom=payload)
            ),
        )

    def _own(self, name: str, make: Callable[[RunContext], AgentEvent]) -> AgentEvent:
        """An event of node ``name`` emitted in its place, recorded and counted for replay.

        Counted under a key of its own next to the node's invocation, not the
        invocation itself: should the node run after all in a resumed run (a
        failed dependency succeeding on its retry), its own events still
        start at zero.
        """
        node_ctx = self.ctx.child(name)
        node_ctx.enter(name)
        event = make(node_ctx)
        node_ctx.record(event)
        journal = node_ctx.journal
        if journal.count_event(f"{node_ctx.invocation}|dag", 0):
            journal.mark_replayed(event)
        return event
