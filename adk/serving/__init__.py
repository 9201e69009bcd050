"""The serving layer: the one door every model call goes through."""

from adk.serving.cache import CacheDecision, CacheEvent, CachePolicy, MemoryPolicy
from adk.serving.config import Backend, Cost
from adk.serving.flushing import FlushRecord
from adk.serving.layer import ServingLayer
from adk.serving.metrics import CallMetrics, RunServingStats, ServingSummary
from adk.serving.replica import Replica
from adk.serving.routing import (
    LeastLoaded,
    PrefixAware,
    RoundRobin,
    RouteRequest,
    RoutingPolicy,
    SessionAffinity,
)
from adk.serving.scheduler import BackendUnavailableError, QueueFullError

__all__ = [
    "Backend",
    "BackendUnavailableError",
    "CacheDecision",
    "CacheEvent",
    "CachePolicy",
    "CallMetrics",
    "Cost",
    "FlushRecord",
    "LeastLoaded",
    "MemoryPolicy",
    "PrefixAware",
    "QueueFullError",
    "Replica",
    "RoundRobin",
    "RouteRequest",
    "RoutingPolicy",
    "RunServingStats",
    "ServingLayer",
    "ServingSummary",
    "SessionAffinity",
]
