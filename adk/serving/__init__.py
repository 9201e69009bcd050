"""The serving layer: the one door every model call goes through.

Names are loaded on first use, so that importing one of them (the Runner
imports :class:`ServingLayer`) does not import the routing, caching and
engine machinery a model-object-only app never needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from adk._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "CacheDecision": "adk.serving.cache",
    "CacheEvent": "adk.serving.cache",
    "CachePolicy": "adk.serving.cache",
    "MemoryPolicy": "adk.serving.cache",
    "Backend": "adk.serving.config",
    "Cost": "adk.serving.config",
    "FlushRecord": "adk.serving.flushing",
    "ServingLayer": "adk.serving.layer",
    "CallMetrics": "adk.serving.metrics",
    "RunServingStats": "adk.serving.metrics",
    "ServingSummary": "adk.serving.metrics",
    "Replica": "adk.serving.replica",
    "LeastLoaded": "adk.serving.routing",
    "PrefixAware": "adk.serving.routing",
    "RoundRobin": "adk.serving.routing",
    "RouteRequest": "adk.serving.routing",
    "RoutingPolicy": "adk.serving.routing",
    "SessionAffinity": "adk.serving.routing",
    "BackendUnavailableError": "adk.serving.scheduler",
    "QueueFullError": "adk.serving.scheduler",
    "SharedRoutingState": "adk.serving.shared_routing",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from adk.serving.cache import (
        CacheDecision as CacheDecision,
        CacheEvent as CacheEvent,
        CachePolicy as CachePolicy,
        MemoryPolicy as MemoryPolicy,
    )
    from adk.serving.config import Backend as Backend, Cost as Cost
    from adk.serving.flushing import FlushRecord as FlushRecord
    from adk.serving.layer import ServingLayer as ServingLayer
    from adk.serving.metrics import (
        CallMetrics as CallMetrics,
        RunServingStats as RunServingStats,
        ServingSummary as ServingSummary,
    )
    from adk.serving.replica import Replica as Replica
    from adk.serving.routing import (
        LeastLoaded as LeastLoaded,
        PrefixAware as PrefixAware,
        RoundRobin as RoundRobin,
        RouteRequest as RouteRequest,
        RoutingPolicy as RoutingPolicy,
        SessionAffinity as SessionAffinity,
    )
    from adk.serving.scheduler import (
        BackendUnavailableError as BackendUnavailableError,
        QueueFullError as QueueFullError,
    )
    from adk.serving.shared_routing import SharedRoutingState as SharedRoutingState


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
