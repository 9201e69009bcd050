"""What the layer knows about each kind of engine: URLs, health probes, cache endpoints, metrics.

All engine I/O of the layer (probes, flushes, metrics reads) is here, over one
shared httpx client; model calls themselves go through litellm.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("adk.serving")

KV_USAGE_METRICS = (
    "vllm:kv_cache_usage_perc",
    "vllm:gpu_cache_usage_perc",
    "sglang:token_usage",
    "llamacpp:kv_cache_usage_ratio",
)
"""Prometheus gauges engines report their KV-cache use in (a fraction 0..1)."""
RUNNING_METRICS = ("vllm:num_requests_running", "sglang:num_running_reqs")
"""Prometheus gauges of the requests an engine is processing now."""


@dataclass(frozen=True, slots=True)
class EngineSpec:
    """How one kind of engine is addressed and controlled."""

    kind: str
    health_path: str | None
    """GET path that answers 200 while the engine can serve (None: cannot probe)."""
    flush_path: str | None
    """POST path that drops the engine's whole prefix cache (None: no such endpoint)."""
    api_suffix: str = "/v1"
    slot_erase: bool = False
    """llama.cpp: ``POST /slots/{id}?action=erase`` drops one slot's cache."""
    metrics_path: str | None = "/metrics"

    def api_base(self, endpoint: str) -> str:
        """The OpenAI-compatible base URL litellm is given for ``endpoint``."""
        return endpoint if endpoint.endswith(self.api_suffix) else endpoint + self.api_suffix

    def litellm_model(self, model: str) -> str:
        """The litellm model id that reaches ``model`` on this engine."""
        return model if self.kind == "litellm" else f"openai/{model}"


ENGINES: dict[str, EngineSpec] = {
    "litellm": EngineSpec("litellm", None, None, api_suffix="", metrics_path=None),
    "openai": EngineSpec("openai", "/v1/models", None, metrics_path=None),
    "vllm": EngineSpec("vllm", "/health", "/reset_prefix_cache"),
    "sglang": EngineSpec("sglang", "/health", "/flush_cache"),
    "llamacpp": EngineSpec("llamacpp", "/health", None, slot_erase=True),
    "ollama": EngineSpec("ollama", "/api/version", None, metrics_path=None),
}


class EngineClient:
    """Probes, flushes and metrics reads against engines, over one lazily created httpx client."""

    def __init__(self, timeout: float = 2.0) -> None:
        self.timeout = timeout
        self._client: Any = None

    def _http(self) -> Any:
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(timeout=self.timeout)
        return self._client

    async def aclose(self) -> None:
        """Close the HTTP client (it is recreated on next use)."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def probe(self, spec: EngineSpec, endpoint: str) -> bool:
        """True if the engine at ``endpoint`` answers its health check."""
        if spec.health_path is None:
            return True
        try:
            response = await self._http().get(endpoint + spec.health_path)
        except Exception as exc:
            logger.debug("probe of %s failed: %s", endpoint, exc)
            return False
        return bool(response.status_code == 200)

    async def flush(self, spec: EngineSpec, endpoint: str) -> bool:
        """Drop the engine's whole prefix cache; True if the engine did."""
        if spec.flush_path is None:
            return False
        return await self._post(endpoint + spec.flush_path)

    async def erase_slot(self, endpoint: str, slot: int) -> bool:
        """llama.cpp: drop one slot's cache; True if the engine did."""
        return await self._post(f"{endpoint}/slots/{slot}?action=erase")

    async def _post(self, url: str) -> bool:
        try:
            response = await self._http().post(url)
        except Exception as exc:
            logger.warning("cache flush %s failed: %s", url, exc)
            return False
        if response.status_code != 200:
            logger.warning(
                "cache flush %s refused: %s %s", url, response.status_code, response.text
            )
        return bool(response.status_code == 200)

    async def slots(self, endpoint: str) -> list[dict[str, Any]] | None:
        """llama.cpp: the server's slots (``GET /slots``), or None if unavailable."""
        try:
            response = await self._http().get(endpoint + "/slots")
        except Exception as exc:
            logger.debug("slots of %s unavailable: %s", endpoint, exc)
            return None
        if response.status_code != 200:
            return None
        found = response.json()
        if not isinstance(found, list):
            return None
        return [slot for slot in found if isinstance(slot, dict)]

    async def kv_usage(self, spec: EngineSpec, endpoint: str) -> float | None:
        """The engine's KV-cache usage (0..1) where it reports one, else None.

        vLLM and SGLang report it in their metrics; llama.cpp does not, so it
        is the share of slot context its slots hold (``GET /slots``).
        """
        if spec.slot_erase:
            slots = await self.slots(endpoint)
            if slots:
                held = sum(int(slot.get("n_prompt_tokens") or 0) for slot in slots)
                size = sum(int(slot.get("n_ctx") or 0) for slot in slots)
                if size:
                    return held / size
        samples = await self.metrics(spec, endpoint)
        return kv_usage(samples) if samples else None

    async def busy(self, spec: EngineSpec, endpoint: str) -> bool:
        """True if the engine reports requests being processed (from any client).

        Unknown counts as busy only if the engine could not be asked at all,
        so a flush is never sent to an engine in an unknown state.
        """
        if spec.slot_erase:
            slots = await self.slots(endpoint)
            if slots is None:
                return True
            return any(slot.get("is_processing") for slot in slots)
        samples = await self.metrics(spec, endpoint)
        if samples is None:
            return spec.metrics_path is not None
        running = [
            value for key, value in samples.items() if key.split("{", 1)[0] in RUNNING_METRICS
        ]
        return any(value > 0 for value in running)

    async def metrics(self, spec: EngineSpec, endpoint: str) -> dict[str, float] | None:
        """The engine's Prometheus metrics (name with labels → value), or None if unavailable."""
        if spec.metrics_path is None:
            return None
        try:
            response = await self._http().get(endpoint + spec.metrics_path)
        except Exception as exc:
            logger.debug("metrics of %s unavailable: %s", endpoint, exc)
            return None
        if response.status_code != 200:
            return None
        return parse_prometheus(response.text)


_SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*(?:\{[^}]*\})?)\s+(\S+)")


def parse_prometheus(text: str) -> dict[str, float]:
    """Samples of a Prometheus text exposition: ``name{labels}`` → value (comments skipped)."""
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            continue
        try:
            samples[match.group(1)] = float(match.group(2))
        except ValueError:
            continue
    return samples


def kv_usage(samples: dict[str, float]) -> float | None:
    """The KV-cache usage fraction among ``samples`` (highest if several models report)."""
    found: list[float] = []
    for key, value in samples.items():
        name = key.split("{", 1)[0]
        if name in KV_USAGE_METRICS:
            found.append(value / 100.0 if value > 1.0 else value)
    return max(found) if found else None
