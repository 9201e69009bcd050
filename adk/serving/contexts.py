"""The layer's record of each run's cached contexts and of each agent's last prompt.

A context is one stage of one run on one replica: the prompt it last sent.
This module decides, at each call, which of the run's contexts a workflow
boundary flushes (by asking the :class:`~adk.serving.cache.CachePolicy`), and
counts prefix breaks: a call whose prompt does not extend the previous prompt
of the same agent in the same session, so an engine cannot reuse it.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field

from adk.models.base import ModelRequest
from adk.serving.cache import CacheDecision, CacheEvent, CachePolicy
from adk.serving.prefix import BLOCK_CHARS, CHARS_PER_TOKEN, Fingerprint
from adk.serving.replica import Replica

MAX_TRACKED = 10_000
"""Runs (and agent prompts) remembered at most; the least recently used are forgotten."""


@dataclass(eq=False)
class CacheContext:
    """What one stage of one run has cached on one replica."""

    run_id: str
    stage: str
    owner: str
    backend: str
    model: str
    replica: Replica | None = None
    fingerprint: Fingerprint | None = None
    last_used: float = field(default_factory=time.monotonic)
    in_flight: int = 0
    done: bool = False
    """The stage's last answer had no tool calls: its turn is over."""

    @property
    def label(self) -> str:
        """``stage@replica`` for decisions and logs."""
        where = self.replica.label if self.replica is not None else "?"
        return f"{self.stage}@{where}"


@dataclass
class _RunContexts:
    contexts: dict[str, CacheContext] = field(default_factory=dict)
    last_used: float = field(default_factory=time.monotonic)

    @property
    def idle(self) -> bool:
        return all(c.in_flight == 0 for c in self.contexts.values())


def owner_of(request: ModelRequest) -> str:
    """The context key of a request: run, then stage and agent path."""
    stage = request.stage or request.agent_name
    return f"{request.run_id}|{stage}|{'/'.join(request.agent_path)}"


class ContextTracker:
    """Per-run contexts, boundary decisions, and prefix-break counting."""

    def __init__(self, policy: CachePolicy) -> None:
        self.policy = policy
        self._runs: OrderedDict[str, _RunContexts] = OrderedDict()
        self._last_prompt: OrderedDict[tuple[str, str], Fingerprint] = OrderedDict()

    def prefix_break(self, request: ModelRequest, fp: Fingerprint, text: str) -> bool:
        """True if the prompt (``fp``, ``text``) does not extend the same agent's previous
        prompt in this session."""
        key = (
            request.session_id or request.run_id,
            "/".join(request.agent_path) or request.agent_name,
        )
        previous = self._last_prompt.get(key)
        self._last_prompt[key] = fp
        self._last_prompt.move_to_end(key)
        if len(self._last_prompt) > MAX_TRACKED:
            self._last_prompt.popitem(last=False)
        return previous is not None and not fp.extends(previous, text)

    def begin(
        self, request: ModelRequest, backend: str, model: str, fp: Fingerprint
    ) -> tuple[CacheContext, CacheDecision, list[tuple[CacheContext, CacheDecision]]]:
        """Open a call: its context, the decision for it, and the contexts to flush now."""
        run = self._runs.get(request.run_id)
        if run is None:
            run = self._runs[request.run_id] = _RunContexts()
            if len(self._runs) > MAX_TRACKED:
                self._runs.popitem(last=False)
        self._runs.move_to_end(request.run_id)
        now = time.monotonic()
        run.last_used = now
        owner = owner_of(request)
        stage = request.stage or request.agent_name
        context = run.contexts.get(owner)
        flushes: list[tuple[CacheContext, CacheDecision]] = []
        if context is None:
            context = run.contexts[owner] = CacheContext(
                request.run_id, stage, owner, backend, model
            )
            decision = CacheDecision("preserve", "first call of this stage")
            for other in list(run.contexts.values()):
                if other is context or not other.done or other.in_flight:
                    continue
                event = CacheEvent(
                    transition="stage",
                    run_id=request.run_id,
                    prev_stage=other.stage,
                    next_stage=stage,
                    prev_backend=other.backend,
                    next_backend=backend,
                    prev_model=other.model,
                    next_model=model,
                    delta_tokens=_new_tokens(fp, other.fingerprint),
                    total_tokens=fp.tokens,
                )
                verdict = self.policy.decide(event, request.cache)
                if verdict.action == "flush":
                    flushes.append((other, verdict))
                    del run.contexts[other.owner]
                else:
                    decision = CacheDecision(
                        "preserve", f"{verdict.reason}; keeps {other.stage}'s context"
                    )
        else:
            decision = CacheDecision("preserve", "same stage continues")
        context.in_flight += 1
        context.done = False
        context.last_used = now
        return context, decision, flushes

    def end(
        self, context: CacheContext, replica: Replica | None, fp: Fingerprint, done: bool
    ) -> None:
        """Close a call: where the context now lives, and whether the stage's turn is over."""
        context.in_flight -= 1
        context.last_used = time.monotonic()
        if replica is not None:
            context.replica = replica
            context.fingerprint = fp
        context.done = done

    def finish_run(self, run_id: str) -> list[tuple[CacheContext, CacheDecision]]:
        """The run ended: its contexts with the decision for each.

        Contexts to flush are forgotten; preserved ones stay, as an idle run's
        cache that pressure may free later.
        """
        run = self._runs.get(run_id)
        if run is None:
            return []
        decided = []
        for context in list(run.contexts.values()):
            event = CacheEvent(
                transition="complete",
                run_id=run_id,
                prev_stage=context.stage,
                next_stage="",
                prev_backend=context.backend,
                next_backend="",
                prev_model=context.model,
                next_model="",
                delta_tokens=0,
                total_tokens=0,
            )
            decision = self.policy.decide(event)
            decided.append((context, decision))
            if decision.action == "flush":
                del run.contexts[context.owner]
        if not run.contexts:
            del self._runs[run_id]
        return decided

    def oldest_idle(self, replica: Replica) -> list[CacheContext]:
        """The contexts on ``replica`` of the least recently used run with no call in flight."""
        for run_id, run in self._runs.items():
            if not run.idle:
                continue
            here = [c for c in run.contexts.values() if c.replica is replica]
            if here:
                for context in here:
                    del run.contexts[context.owner]
                if not run.contexts:
                    del self._runs[run_id]
                return here
        return []


def _new_tokens(fp: Fingerprint, earlier: Fingerprint | None) -> int:
    """Tokens of ``fp`` beyond the prefix it shares with ``earlier``."""
    if earlier is None:
        return fp.tokens
    return max(0, fp.tokens - fp.shared_blocks(earlier) * BLOCK_CHARS // CHARS_PER_TOKEN)
