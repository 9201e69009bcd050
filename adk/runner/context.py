"""RunContext: everything a running agent may know about its run.

Agents are reusable values that hold no run state; the context is where run
state lives. A context is cheap to derive: :meth:`RunContext.child` gives a
sub-agent its own run path while sharing the run's session values, serving
layer and options.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, MutableMapping
from typing import Any

from adk.serving.layer import ServingLayer

_MISSING: Any = object()
_EMPTY: Mapping[str, Any] = {}


class _RunShared:
    """The part of a context every agent of one run shares."""

    __slots__ = ("agent_options", "run_id", "serving", "session_id", "streaming", "values")

    def __init__(
        self,
        run_id: str,
        session_id: str,
        values: MutableMapping[str, Any],
        serving: ServingLayer,
        streaming: bool,
        agent_options: Mapping[str, Mapping[str, Any]],
    ) -> None:
        self.run_id = run_id
        self.session_id = session_id
        self.values = values
        self.serving = serving
        self.streaming = streaming
        self.agent_options = agent_options


class RunContext:
    """The run an agent is part of: ids, session values, run path, serving layer, options.

    Build one with :meth:`create` (the Runner does this for you); derive a
    child for a sub-agent with :meth:`child`.
    """

    __slots__ = ("_shared", "run_path")

    def __init__(self, shared: _RunShared, run_path: tuple[str, ...]) -> None:
        self._shared = shared
        self.run_path = run_path

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
    ) -> RunContext:
        """A fresh context for a new run.

        ``session_values`` is used as is (not copied): the run reads and
        writes that very mapping. ``agent_options`` maps an agent name (or
        ``"*"`` for every agent) to options for that agent.
        """
        shared = _RunShared(
            run_id=run_id or uuid.uuid4().hex,
            session_id=session_id or "",
            values=session_values if session_values is not None else {},
            serving=serving if serving is not None else ServingLayer(),
            streaming=streaming,
            agent_options=agent_options or {},
        )
        return cls(shared, run_path)

    def child(self, agent_name: str) -> RunContext:
        """The context for ``agent_name`` running under this context's agent."""
        return RunContext(self._shared, (*self.run_path, agent_name))

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
    def session_values(self) -> MutableMapping[str, Any]:
        """The run's session values (shared by every agent of the run)."""
        return self._shared.values

    def get(self, key: str, default: Any = None) -> Any:
        """The session value ``key``, or ``default``."""
        return self._shared.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        """Set the session value ``key``."""
        self._shared.values[key] = value

    def update(self, values: Mapping[str, Any]) -> None:
        """Set several session values."""
        self._shared.values.update(values)

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
