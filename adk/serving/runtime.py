"""A configured backend at run time: replicas with clients, queue, routing policy, hints."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from adk.models.base import ModelRequest
from adk.models.litellm_model import LiteLLMModel, RetryPolicy
from adk.serving.config import Backend
from adk.serving.engines import ENGINES, EngineClient
from adk.serving.prefix import BLOCK_CHARS, CHARS_PER_TOKEN
from adk.serving.replica import Replica
from adk.serving.routing import RouteRequest, RoutingPolicy, routing_policy
from adk.serving.scheduler import BackendQueue, BackendUnavailableError

if TYPE_CHECKING:
    from adk.serving.shared_routing import SharedRoutingState, SharedView


class BackendRuntime:
    """One backend's replicas, queue and routing, built from its :class:`Backend` config."""

    def __init__(self, backend: Backend, default_routing: str | RoutingPolicy | None) -> None:
        self.config = backend
        self.spec = ENGINES[backend.kind]
        self.policy: RoutingPolicy = routing_policy(
            backend.routing if backend.routing is not None else default_routing
        )
        endpoints: Sequence[str | None] = backend.endpoints or (None,)
        # With several replicas the layer fails over itself; one replica retries in place.
        retry = RetryPolicy(max_retries=0) if len(endpoints) > 1 else None
        cache_blocks = backend.cache_tokens * CHARS_PER_TOKEN // BLOCK_CHARS
        self.replicas = [
            Replica(
                backend.name,
                index,
                endpoint,
                self._client(endpoint, retry),
                backend.max_concurrency,
                cache_blocks,
                backend.slots if self.spec.slot_erase else 0,
            )
            for index, endpoint in enumerate(endpoints)
        ]
        hints: str = backend.prompt_cache
        if hints == "auto":
            hints = _auto_hints(backend.model) if backend.kind == "litellm" else "none"
        self.hints = hints
        """The provider prompt-cache hints this backend's calls get (``"auto"`` resolved)."""
        self.queue = BackendQueue(
            backend.name, self.replicas, backend.queue_capacity, backend.scheduling
        )
        self.shared: SharedRoutingState | None = None
        """Routing figures shared with other processes (``ServingLayer(shared_state=...)``)."""

    def _client(self, endpoint: str | None, retry: RetryPolicy | None) -> LiteLLMModel:
        config = self.config
        params: dict[str, Any] = dict(config.params)
        if endpoint is not None:
            params["api_base"] = self.spec.api_base(endpoint)
            params.setdefault("api_key", "adk-no-key")
        return LiteLLMModel(
            self.spec.litellm_model(config.model), retry=retry, timeout=config.timeout, **params
        )

    @property
    def name(self) -> str:
        """The backend's name."""
        return self.config.name

    def chooser(self, call: RouteRequest, avoid: set[int], view: SharedView | None = None) -> Any:
        """The function the queue calls to pick among free replicas (skipping ``avoid``);
        with a shared ``view`` the policy sees every process's figures."""
        replicas = self.replicas

        def choose(free: Sequence[Replica]) -> Replica | None:
            if not any(r.routable and r.index not in avoid for r in replicas):
                raise BackendUnavailableError(self.unavailable_message(avoid))
            candidates = [r for r in free if r.routable and r.index not in avoid]
            healthy = [r for r in candidates if r.health == "healthy"]
            if healthy:
                candidates = healthy
            if not candidates:
                return None
            if view is not None and self.shared is not None:
                shared = self.shared.wrap(replicas, view)
                by_index = {r.index: r for r in shared}
                chosen = self.policy.choose(call, [by_index[r.index] for r in candidates], shared)
                real: Replica = getattr(chosen, "replica", chosen)
                return real
            return self.policy.choose(call, candidates, replicas)

        return choose

    def unavailable_message(self, avoid: set[int]) -> str:
        """Why no replica can take a call."""
        states = ", ".join(
            f"{r.label}: {'failed this call' if r.index in avoid else r.health}"
            for r in self.replicas
        )
        return f"backend {self.name!r}: no replica can take the call ({states})"

    async def revive(self, engines: EngineClient) -> None:
        """Probe replicas out of routing whose probe is due; bring back those that answer."""
        now = time.monotonic()
        for replica in self.replicas:
            if not replica.probe_due(now) or replica.endpoint is None:
                continue
            replica.next_probe_at = now + self.config.probe_interval
            if await engines.probe(self.spec, replica.endpoint):
                replica.succeeded()
                self.queue.wake()
            else:
                replica.probe_failed(self.config.probe_interval)

    def params_for(
        self, request: ModelRequest, replica: Replica, slot: int | None
    ) -> dict[str, Any]:
        """The call's parameters plus the cache hints this engine or provider understands."""
        params = dict(request.params)
        kind = self.config.kind
        if kind == "llamacpp":
            extra = dict(params.get("extra_body") or {})
            extra.setdefault("cache_prompt", True)
            if slot is not None:
                extra.setdefault("id_slot", slot)
            params["extra_body"] = extra
            return params
        if self.hints == "key":
            params.setdefault("prompt_cache_key", prompt_cache_key(request))
        return params

    def marked(self, request: ModelRequest) -> ModelRequest:
        """``request`` with cache-control breakpoints if this provider needs them."""
        if self.hints != "cache_control":
            return request
        return with_cache_breakpoints(request)


def _auto_hints(model: str) -> str:
    provider = model.split("/", 1)[0].lower() if "/" in model else ""
    if provider == "anthropic" or "claude" in model.lower():
        return "cache_control"
    if provider in ("openai", "azure"):
        return "key"
    return "none"


def prompt_cache_key(request: ModelRequest) -> str:
    """A stable key per session and agent, for providers that route on one (OpenAI)."""
    source = f"{request.session_id or request.run_id}|{request.agent_name}"
    return "adk-" + hashlib.blake2b(source.encode(), digest_size=12).hexdigest()


def with_cache_breakpoints(request: ModelRequest) -> ModelRequest:
    """Anthropic-style breakpoints: after the static system prompt and on the newest message.

    The first lets every call of every agent with that instruction and tools
    read it from the cache; the second lets the next call of this agent read
    the whole history so far. Providers allow four breakpoints; we use two.
    """
    messages = request.messages
    marks: list[int] = []
    last_system = max((i for i, m in enumerate(messages) if m.role == "system"), default=None)
    if last_system is not None:
        marks.append(last_system)
    if messages and len(messages) - 1 not in marks:
        marks.append(len(messages) - 1)
    return replace(request, cache_breakpoints=tuple(marks))
