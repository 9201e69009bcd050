"""RunContext: everything a running agent may know about its run.

Agents are reusable values that hold no run state; the context is where run
state lives. A context is cheap to derive: :meth:`RunContext.child` gives a
sub-agent its own run path while sharing the run's session values, serving
layer, options and recorded history.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

from adk.events import InterruptInfo
from adk.state.addressing import (
    agent_interrupt_id,
    invocation_key,
    occurrence_segment,
)
from adk.state.journal import RunJournal, record_session_write
from adk.state.run_settings import RunSettings, new_run_id

if TYPE_CHECKING:
    from adk.events import AgentEvent, HistoryEntry
    from adk.messages import Message
    from adk.serving.layer import ServingLayer

_EMPTY: Mapping[str, Any] = {}

_DEFAULT_SETTINGS = RunSettings()


class _RunShared:
    """The part of a context every agent of one run (or one agent-tool sub-run) shares."""

    __slots__ = (
        "account",
        "agent_options",
        "control",
        "events",
        "guards",
        "journal",
        "prior",
        "recorder",
        "root_input",
        "run_id",
        "serving",
        "session_id",
        "settings",
        "streaming",
        "tracer",
        "transfers",
        "tree",
        "values",
    )

    def __init__(
        self,
        run_id: str,
        session_id: str,
        values: MutableMapping[str, Any],
        serving: ServingLayer,
        streaming: bool,
        agent_options: Mapping[str, Mapping[str, Any]],
        settings: RunSettings,
        root_input: Sequence[Message],
        tree: object | None,
        journal: RunJournal,
        guards: Any = None,
        account: Any = None,
        tracer: Any = None,
        control: Any = None,
        recorder: Any = None,
    ) -> None:
        self.run_id = run_id
        self.session_id = session_id
        self.values = values
        self.serving = serving
        self.streaming = streaming
        self.agent_options = agent_options
        self.settings = settings
        self.root_input = list(root_input)
        self.prior: Sequence[HistoryEntry] = ()
        self.tree = tree
        self.events: list[AgentEvent] = []
        self.transfers = 0
        self.journal = journal
        self.guards = guards
        """The run's middleware and guardrail state (``adk.agents.guardrails.GuardState``), or
        None when no middleware or guardrail is configured anywhere (the fast path)."""
        self.account = account
        """The run's usage account and limits, shared by every nested agent and agent
        tool (None: no limits and no account beyond the messages' usage; the fast path)."""
        self.tracer = tracer
        """The run's tracer (OpenTelemetry spans), or None when tracing is off."""
        self.control = control
        """The run's control channel (signals from a handle or the store), or None."""
        self.recorder = recorder
        """The run's trajectory recorder (``adk.agents.recording``), or None (the default)."""


class RunContext:
    """The run an agent is part of: ids, session values, run path, serving layer, options.

    Build one with :meth:`create` (the Runner does this for you); derive a
    child for a sub-agent with :meth:`child`.
    """

    __slots__ = ("_shared", "address", "assignment", "failed", "invocation", "run_path")

    def __init__(
        self,
        shared: _RunShared,
        run_path: tuple[str, ...],
        address: tuple[str, ...] | None = None,
        assignment: Any = None,
    ) -> None:
        self._shared = shared
        self.assignment = assignment
        """A ``StageAssignment`` (adk.agents.stage_mapping) for every model call below, or None."""
        self.run_path = run_path
        self.address = run_path if address is None else address
        """Agent (with occurrence, e.g. ``body@2``) and tool-call segments down to this agent."""
        self.invocation = invocation_key(self.address)
        """The key of this agent invocation in the run journal."""
        self.failed = False
        """Set when the agent running with this context ended in error (read by its parent)."""

    @classmethod
    def create(
        cls,
        *,
        run_id: str | None = None,
        session_id: str | None = None,
        session_values: MutableMapping[str, Any] | None = None,
        serving: ServingLayer | None = None,
        streaming: bool = False,
        agent_options: Mapping[str, Mapping[str, Any]] | None = None,
        run_path: tuple[str, ...] = (),
        root_input: Sequence[Message] = (),
        settings: RunSettings | None = None,
        tree: object | None = None,
        journal: RunJournal | None = None,
    ) -> RunContext:
        """A fresh context for a new run.

        ``session_values`` is used as is (not copied): the run reads and
        writes that very mapping. ``agent_options`` maps an agent name (or
        ``"*"`` for every agent) to options for that agent.
        """
        if serving is None:
            from adk.serving.layer import ServingLayer

            serving = ServingLayer()
        shared = _RunShared(
            run_id=run_id or new_run_id(),
            session_id=session_id or "",
            values=session_values if session_values is not None else {},
            serving=serving,
            streaming=streaming,
            agent_options=agent_options or {},
            settings=settings or _DEFAULT_SETTINGS,
            root_input=root_input,
            tree=tree,
            journal=journal if journal is not None else RunJournal(),
        )
        return cls(shared, run_path)

    def child(self, agent_name: str) -> RunContext:
        """The context for ``agent_name`` running under this context's agent."""
        return RunContext(
            self._shared, (*self.run_path, agent_name), (*self.address, agent_name), self.assignment
        )

    def back_to(self, depth: int) -> RunContext:
        """The context of an agent ``depth`` levels up this context's run path, entered anew.

        A transfer back to an agent on the path returns there: the path is cut
        back instead of growing (its new invocation gets its own address when
        it is entered).
        """
        path = self.run_path[: len(self.run_path) - depth]
        # The agent's own name as the last segment (not ``name@n`` of an earlier
        # invocation): entering counts its invocations at that place, so each gets its own.
        address = (*self.address[: len(self.address) - depth - 1], path[-1])
        return RunContext(self._shared, path, address, self.assignment)

    def sub_run(
        self,
        agent_name: str,
        root_input: Sequence[Message],
        tree: object,
        call_segment: str,
    ) -> RunContext:
        """A nested run (an agent used as a tool) with its own history and agent tree.

        It shares session values, serving layer, options, streaming mode, run
        id and journal; its run path continues this context's path, and its
        address continues through ``call_segment`` (the tool call).
        """
        outer = self._shared
        shared = _RunShared(
            run_id=outer.run_id,
            session_id=outer.session_id,
            values=outer.values,
            serving=outer.serving,
            streaming=outer.streaming,
            agent_options=outer.agent_options,
            settings=outer.settings,
            root_input=root_input,
            tree=tree,
            journal=outer.journal,
            guards=outer.guards,
            account=outer.account,
            tracer=outer.tracer,
            control=outer.control,
            recorder=outer.recorder,
        )
        return RunContext(
            shared,
            (*self.run_path, agent_name),
            (*self.address, call_segment, agent_name),
            self.assignment,
        )

    def enter(self, name: str) -> None:
        """Mark the start of an agent invocation at this context's address.

        The second and later agents to start at the same address (loop
        iterations) get an ``@n`` suffix, so every invocation has its own
        journal key.
        """
        occurrence = self._shared.journal.occurrence(self.invocation)
        if occurrence:
            # Built on the segment as it is (``body@1`` again becomes ``body@1@1``), so a
            # repeat never takes the address of another invocation.
            segment = occurrence_segment(self.address[-1], occurrence)
            self.address = (*self.address[:-1], segment)
            self.invocation = invocation_key(self.address)

    @property
    def journal(self) -> RunJournal:
        """The run's journal: completed calls and replay state."""
        return self._shared.journal

    def answer_for(self, key: str = "", default: Any = None) -> Any:
        """The answer to this agent's interrupt ``key`` when the run was resumed with one."""
        return self._shared.journal.answer(agent_interrupt_id(self.address, key), default)

    def interrupt_info(self, info: Any, key: str = "") -> InterruptInfo:
        """A pending interrupt of this agent: stable id, address and ``info``."""
        return InterruptInfo(
            id=agent_interrupt_id(self.address, key), address=self.address, info=info
        )

    @property
    def guards(self) -> Any:
        """The run's middleware and guardrail state, or None (see ``adk.agents.guardrails``).

        Typed loosely because run state sits below agents: agents read it
        through ``adk.agents.guardrails``.
        """
        return self._shared.guards

    def set_guards(self, guards: Any) -> None:
        """Give the run a middleware and guardrail state (the Runner does, or a first trip)."""
        self._shared.guards = guards

    @property
    def account(self) -> Any:
        """The run's usage account (``adk.runner.budgets``), or None: see ``_RunShared``."""
        return self._shared.account

    @property
    def tracer(self) -> Any:
        """The run's tracer, or None when tracing is off."""
        return self._shared.tracer

    @property
    def control(self) -> Any:
        """The run's control channel (signals), or None."""
        return self._shared.control

    def set_operations(
        self, *, account: Any = None, tracer: Any = None, control: Any = None
    ) -> None:
        """Give the run its usage account, tracer and control channel (the Runner does).

        Arguments left None keep what the run has.
        """
        shared = self._shared
        if account is not None:
            shared.account = account
        if tracer is not None:
            shared.tracer = tracer
        if control is not None:
            shared.control = control

    def tool_invoker(self, agent_name: str) -> Any:
        """How ``agent_name``'s tool calls run through middleware, or None to call tools as is.

        Tool execution sits below agents and cannot import the middleware; it
        calls what this returns: ``await invoker(tool, arguments, call_id, ctx, tool_ctx)``.
        """
        guards = self._shared.guards
        return None if guards is None else guards.tool_invoker(self, agent_name)

    @property
    def run_id(self) -> str:
        """The id of this run."""
        return self._shared.run_id

    @property
    def session_id(self) -> str:
        """The id of the conversation this run belongs to ("" if none was given)."""
        return self._shared.session_id

    @property
    def serving(self) -> ServingLayer:
        """The serving layer every model call of this run goes through."""
        return self._shared.serving

    @property
    def streaming(self) -> bool:
        """Whether agents should stream model output as partial events."""
        return self._shared.streaming

    @property
    def settings(self) -> RunSettings:
        """The run's composition settings (history rewriting, transfer limit)."""
        return self._shared.settings

    @property
    def session_values(self) -> MutableMapping[str, Any]:
        """The run's session values (shared by every agent of the run)."""
        return self._shared.values

    @property
    def root_input(self) -> list[Message]:
        """The messages the run started with."""
        return self._shared.root_input

    @property
    def prior(self) -> Sequence[HistoryEntry]:
        """The conversation before this run: a stored session's earlier turns (else empty).

        Agents see it before the root input (``adk.agents.history``); it is
        not part of the run's records, which name the session instead.
        """
        return self._shared.prior

    def continue_conversation(self, prior: Sequence[HistoryEntry]) -> None:
        """Set :attr:`prior`: the Runner does this when a run is a turn of a stored session."""
        self._shared.prior = prior

    @property
    def events(self) -> list[AgentEvent]:
        """The non-partial events recorded so far in this run, in the order they happened."""
        return self._shared.events

    @property
    def tree(self) -> object | None:
        """The agent tree of this run (an :class:`~adk.AgentTree` built by the Runner), if known.

        Typed as ``object`` because run state sits below agents and does not import
        them; agents read it through ``adk.agents.tree.tree_of``.
        """
        return self._shared.tree

    def ensure_tree(self, build: Callable[[], object]) -> object:
        """The run's agent tree, built with ``build`` the first time it is needed."""
        tree = self._shared.tree
        if tree is None:
            tree = self._shared.tree = build()
        return tree

    def record(self, event: AgentEvent) -> None:
        """Append a non-partial event to the run's history."""
        self._shared.events.append(event)

    def count_transfer(self) -> int:
        """Count one more transfer in this run and return the new total."""
        self._shared.transfers += 1
        return self._shared.transfers

    def get(self, key: str, default: Any = None) -> Any:
        """The session value ``key``, or ``default``."""
        return self._shared.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        """Set the session value ``key`` (journaled with the tool call making the change)."""
        self._shared.values[key] = value
        record_session_write(key, value)

    def update(self, values: Mapping[str, Any]) -> None:
        """Set several session values."""
        for key, value in values.items():
            self.set(key, value)

    def options_for(self, agent_name: str) -> Mapping[str, Any]:
        """Options addressed to ``agent_name``, over those addressed to every agent (``"*"``)."""
        options = self._shared.agent_options
        if not options:
            return _EMPTY
        common = options.get("*", _EMPTY)
        specific = options.get(agent_name, _EMPTY)
        if not common:
            return specific
        if not specific:
            return common
        return {**common, **specific}
