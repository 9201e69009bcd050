"""What a user configures: named backends, their replicas, limits and prices."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from adk.errors import ConfigurationError
from adk.messages import Usage

EngineKind = Literal["litellm", "openai", "vllm", "sglang", "llamacpp", "ollama"]
"""What serves a backend: any litellm provider (``"litellm"``, no endpoint
needed), a generic OpenAI-compatible server, or one of the engines whose cache
and health endpoints the layer knows."""

SchedulingOrder = Literal["fcfs", "priority"]
FlushMode = Literal["soft", "hard"]
PromptCacheHints = Literal["auto", "cache_control", "key", "none"]

ENGINE_KINDS: tuple[str, ...] = ("litellm", "openai", "vllm", "sglang", "llamacpp", "ollama")


@dataclass(frozen=True, slots=True)
class Cost:
    """Price per token, in whatever currency the user thinks in.

    ``cached`` is the price of a prompt token read from the provider's cache
    (usually a fraction of ``prompt``).
    """

    prompt: float = 0.0
    cached: float = 0.0
    completion: float = 0.0

    def of(self, usage: Usage) -> float:
        """The price of one call's ``usage``."""
        cached = min(usage.cached_tokens, usage.prompt_tokens)
        return (
            (usage.prompt_tokens - cached) * self.prompt
            + cached * self.cached
            + usage.completion_tokens * self.completion
        )


@dataclass(frozen=True)
class Backend:
    """A named model deployment: the model, what serves it, where, and how much it takes.

    - ``name``: what agents put in ``model=`` to use this backend.
    - ``model``: the model id the engine serves (for ``kind="litellm"``, a
      litellm model id such as ``"anthropic/claude-sonnet-4-5"``).
    - ``kind``: ``"litellm"``, ``"openai"`` (any OpenAI-compatible server),
      ``"vllm"``, ``"sglang"``, ``"llamacpp"`` or ``"ollama"``.
    - ``replicas``: base URLs of servers holding the same model
      (``"http://10.0.0.5:8000"``; a trailing ``/v1`` is dropped, the layer adds
      it for calls); ``endpoint`` is the one-replica shorthand.
      A ``"litellm"`` backend may have none (the provider's own endpoint).
    - ``max_concurrency``: calls in flight per replica; more wait in the queue.
    - ``queue_capacity``: calls that may wait; one more fails at once with
      :class:`~adk.QueueFullError`.
    - ``scheduling``: ``"fcfs"`` or ``"priority"`` (higher ``priority`` first,
      first come first served among equals).
    - ``routing``: a policy name (``"round_robin"``, ``"least_loaded"``,
      ``"session_affinity"``, ``"prefix_aware"``) or a policy object; ``None``
      uses the layer's default.
    - ``cost``: price per token, for the per-call cost figure.
    - ``flush``: ``"soft"`` (default) only drops the layer's affinity when a
      cache is flushed; ``"hard"`` also calls the engine's flush endpoint
      (SGLang ``/flush_cache``, vLLM ``/reset_prefix_cache``, llama.cpp slot
      erase), and only while that engine is idle.
    - ``prompt_cache``: provider prompt-cache hints: ``"auto"`` picks per
      provider, ``"cache_control"`` (Anthropic-style breakpoints), ``"key"``
      (a stable ``prompt_cache_key`` per session), ``"none"``.
    - ``cache_tokens``: how many prompt tokens one replica's KV cache holds,
      for the layer's own record of what is cached where.
    - ``slots``: llama.cpp: parallel slots per server (its ``--parallel``);
      the layer pins each stage of a run to a slot so the slot's cache is its own.
    - ``params``: default call parameters (``api_key``, ``temperature``...).
    - ``timeout``: seconds per attempt: the whole answer, or a stream's first chunk and
      then each next chunk (see :class:`~adk.LiteLLMModel`).
    - ``probe_interval``: seconds before an unavailable replica is probed again.
    """

    name: str
    model: str
    kind: EngineKind = "openai"
    replicas: Sequence[str] = ()
    endpoint: str | None = None
    max_concurrency: int = 16
    queue_capacity: int = 1024
    scheduling: SchedulingOrder = "fcfs"
    routing: Any = None
    cost: Cost | None = None
    flush: FlushMode = "soft"
    prompt_cache: PromptCacheHints = "auto"
    cache_tokens: int = 65_536
    slots: int = 4
    params: Mapping[str, Any] = field(default_factory=dict)
    timeout: float | None = 60.0
    probe_interval: float = 2.0

    def __post_init__(self) -> None:
        where = f"backend {self.name!r}"
        if not self.name:
            raise ConfigurationError("a backend needs a name")
        if not self.model:
            raise ConfigurationError(f"{where} needs a model id")
        if self.kind not in ENGINE_KINDS:
            raise ConfigurationError(
                f"{where}: unknown kind {self.kind!r} (one of {', '.join(ENGINE_KINDS)})"
            )
        if isinstance(self.replicas, str):
            raise ConfigurationError(f"{where}: replicas is a list of URLs, not one string")
        if self.endpoint is not None and self.replicas:
            raise ConfigurationError(f"{where}: give endpoint or replicas, not both")
        if not self.endpoints and self.kind != "litellm":
            raise ConfigurationError(f"{where}: kind {self.kind!r} needs an endpoint or replicas")
        if len(set(self.endpoints)) != len(self.endpoints):
            raise ConfigurationError(f"{where}: the same replica URL is listed twice")
        for url in self.endpoints:
            if not url.startswith(("http://", "https://")):
                raise ConfigurationError(f"{where}: replica {url!r} is not an http(s) URL")
        if self.max_concurrency < 1:
            raise ConfigurationError(f"{where}: max_concurrency must be at least 1")
        if self.queue_capacity < 0:
            raise ConfigurationError(f"{where}: queue_capacity must not be negative")
        if self.scheduling not in ("fcfs", "priority"):
            raise ConfigurationError(f"{where}: scheduling must be 'fcfs' or 'priority'")
        if self.flush not in ("soft", "hard"):
            raise ConfigurationError(f"{where}: flush must be 'soft' or 'hard'")
        if self.prompt_cache not in ("auto", "cache_control", "key", "none"):
            raise ConfigurationError(
                f"{where}: prompt_cache must be 'auto', 'cache_control', 'key' or 'none'"
            )
        if self.slots < 0:
            raise ConfigurationError(f"{where}: slots must not be negative")
        if self.cache_tokens < 1:
            raise ConfigurationError(f"{where}: cache_tokens must be positive")

    @property
    def endpoints(self) -> tuple[str, ...]:
        """The replica base URLs, without a trailing slash (empty: the provider's default)."""
        urls = (self.endpoint,) if self.endpoint is not None else tuple(self.replicas)
        # The server's root: the layer adds /v1 for calls and knows the engine's own paths.
        return tuple(url.rstrip("/").removesuffix("/v1") for url in urls)
