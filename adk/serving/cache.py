"""Cache policies: when a run's cached context is worth keeping and when to let it go.

A *context* is what one stage (agent) of one run has cached on a replica:
its last prompt. A stage whose model call returned a final answer (no tool
calls) is *done*. When a run's next call belongs to another stage (a
workflow boundary) every done context of the run is judged by the policy:

- per call or stage: ``"preserve"`` or ``"flush"`` decide outright;
  ``"auto"`` (the default) asks the workflow policy;
- workflow policy, in order: custom :class:`MemoryPolicy` objects (the first
  answer other than ``"auto"`` wins); flush at the boundary when the next
  stage uses another backend or model; preserve when the next stage adds
  fewer than ``preserve_threshold`` new tokens to the context (it can reuse
  it); otherwise flush at the boundary;
- when the run finishes: flush every context (``flush_on_complete``);
- under pressure: when an engine reports KV usage at or above
  ``pressure_threshold``, the oldest idle run's contexts there are flushed.

A flush is soft by default (the layer stops routing for that context);
backends with ``flush="hard"`` also free the engine's memory, see
:mod:`adk.serving.layer`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from adk.errors import ConfigurationError

CacheMode = Literal["auto", "preserve", "flush"]
CACHE_MODES = ("auto", "preserve", "flush")


@dataclass(frozen=True, slots=True)
class CacheEvent:
    """A boundary a policy judges: a done context of a run, and the run's next call.

    ``transition`` is ``"stage"`` (the run's next call belongs to another
    stage) or ``"complete"`` (the run finished). ``delta_tokens`` is how many
    tokens the next call adds beyond what it shares with the context;
    ``total_tokens`` its whole prompt.
    """

    transition: Literal["stage", "complete"]
    run_id: str
    prev_stage: str
    next_stage: str
    prev_backend: str
    next_backend: str
    prev_model: str
    next_model: str
    delta_tokens: int
    total_tokens: int


@runtime_checkable
class MemoryPolicy(Protocol):
    """Decides ``"preserve"``, ``"flush"`` or ``"auto"`` (no opinion) for a boundary."""

    def decide(self, event: CacheEvent) -> CacheMode:
        """The decision for ``event``."""
        ...


@dataclass(frozen=True, slots=True)
class CacheDecision:
    """What was decided for a context and why."""

    action: Literal["preserve", "flush"]
    reason: str

    def __str__(self) -> str:
        return f"{self.action} ({self.reason})"


@dataclass(frozen=True)
class CachePolicy:
    """The workflow-level cache policy of a serving layer.

    - ``preserve_threshold``: a next stage adding fewer new tokens than this
      keeps the previous context (default 256; None: never by size).
    - ``flush_at_boundary``: flush a done context at a stage boundary (always
      when the backend or model changes; otherwise when the increment is not
      small).
    - ``flush_on_complete``: flush a run's contexts when it finishes.
    - ``pressure_threshold``: engine KV usage (0..1) at which the oldest idle
      run's cache is freed (None: never).
    - ``stages``: per-stage overrides, stage name → ``"preserve"``/``"flush"``/``"auto"``.
    - ``policies``: custom :class:`MemoryPolicy` objects consulted first.
    - ``pressure_interval``: seconds between reads of an engine's KV usage.
    """

    preserve_threshold: int | None = 256
    flush_at_boundary: bool = True
    flush_on_complete: bool = True
    pressure_threshold: float | None = 0.85
    stages: Mapping[str, CacheMode] = field(default_factory=dict)
    policies: Sequence[MemoryPolicy] = ()
    pressure_interval: float = 1.0

    def __post_init__(self) -> None:
        if self.preserve_threshold is not None and self.preserve_threshold < 0:
            raise ConfigurationError("preserve_threshold must not be negative")
        if self.pressure_threshold is not None and not 0 < self.pressure_threshold <= 1:
            raise ConfigurationError("pressure_threshold must be in (0, 1]")
        for stage, mode in self.stages.items():
            if mode not in CACHE_MODES:
                raise ConfigurationError(
                    f"cache mode of stage {stage!r} must be one of {', '.join(CACHE_MODES)}"
                )

    def decide(self, event: CacheEvent, call_mode: str = "auto") -> CacheDecision:
        """Preserve or flush the context ``event`` describes."""
        if call_mode not in CACHE_MODES:
            raise ConfigurationError(
                f"cache mode {call_mode!r} of stage {event.next_stage!r} must be one of "
                f"{', '.join(CACHE_MODES)}"
            )
        if call_mode != "auto":
            return CacheDecision(call_mode, f"call asks to {call_mode}")  # type: ignore[arg-type]
        stage_mode = self.stages.get(event.prev_stage, "auto")
        if stage_mode != "auto":
            return CacheDecision(stage_mode, f"stage {event.prev_stage!r} is set to {stage_mode}")
        for policy in self.policies:
            mode = policy.decide(event)
            if mode != "auto":
                return CacheDecision(mode, f"{type(policy).__name__}")
        if event.transition == "complete":
            if self.flush_on_complete:
                return CacheDecision("flush", "run complete")
            return CacheDecision("preserve", "run complete, flush_on_complete off")
        changed = event.prev_backend != event.next_backend or event.prev_model != event.next_model
        if changed and self.flush_at_boundary:
            return CacheDecision("flush", f"next stage uses backend {event.next_backend!r}")
        small = self.preserve_threshold is not None and event.delta_tokens < self.preserve_threshold
        if small:
            return CacheDecision("preserve", f"small increment: {event.delta_tokens} new tokens")
        if self.flush_at_boundary:
            return CacheDecision("flush", f"stage boundary: {event.delta_tokens} new tokens")
        return CacheDecision("preserve", "no policy flushes")
