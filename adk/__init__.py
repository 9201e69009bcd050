"""adk: a composable agent framework.

Agents are async generators of events; composite agents transform event
streams; control flow is data on the stream; every model call goes through a
serving layer.

Names are loaded on first use so that ``import adk`` stays fast; everything
listed in ``__all__`` is the public API.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # messages
    "Message": "adk.messages",
    "Role": "adk.messages",
    "ToolCall": "adk.messages",
    "Usage": "adk.messages",
    # events
    "AgentAction": "adk.events",
    "AgentEvent": "adk.events",
    "AgentOutput": "adk.events",
    "BreakLoop": "adk.events",
    "ErrorInfo": "adk.events",
    "InterruptInfo": "adk.events",
    "Interrupted": "adk.events",
    "RunPath": "adk.events",
    "TransferToAgent": "adk.events",
    # errors
    "AdkError": "adk.errors",
    "AgentRunError": "adk.errors",
    "ConfigurationError": "adk.errors",
    "ContextWindowExceededError": "adk.errors",
    "InstructionError": "adk.errors",
    "MaxIterationsExceeded": "adk.errors",
    "ModelAuthenticationError": "adk.errors",
    "ModelBadRequestError": "adk.errors",
    "ModelConnectionError": "adk.errors",
    "ModelError": "adk.errors",
    "ModelRateLimitError": "adk.errors",
    "ModelServerError": "adk.errors",
    "ModelTimeoutError": "adk.errors",
    "ScriptExhaustedError": "adk.errors",
    "ToolError": "adk.errors",
    # agents
    "Agent": "adk.agents.base",
    "AgentInput": "adk.agents.base",
    "BaseAgent": "adk.agents.base",
    "ChatModelAgent": "adk.agents.chat_model",
    "GenModelInput": "adk.agents.chat_model",
    "default_model_input": "adk.agents.chat_model",
    "AgentTool": "adk.agents.agent_tool",
    "HistoryEntry": "adk.agents.history",
    "HistoryRewriter": "adk.agents.history",
    "default_history_rewriter": "adk.agents.history",
    "input_messages": "adk.agents.history",
    "TransferError": "adk.agents.flow",
    "TransferLimitExceeded": "adk.agents.flow",
    "run_agent": "adk.agents.flow",
    "TransferWhenDone": "adk.agents.transfer",
    "AgentTree": "adk.agents.tree",
    "LoopAgent": "adk.agents.workflow",
    "ParallelAgent": "adk.agents.workflow",
    "SequentialAgent": "adk.agents.workflow",
    # tools
    "ArgumentsInvalid": "adk.tools.base",
    "BaseTool": "adk.tools.base",
    "Tool": "adk.tools.base",
    "ToolContext": "adk.tools.base",
    "ExitTool": "adk.tools.exit",
    "FunctionTool": "adk.tools.function",
    "tool": "adk.tools.function",
    # models
    "ChatModel": "adk.models.base",
    "ModelChunk": "adk.models.base",
    "ModelRequest": "adk.models.base",
    "ModelResponse": "adk.models.base",
    "ToolCallDelta": "adk.models.base",
    "ToolSpec": "adk.models.base",
    "LiteLLMModel": "adk.models.litellm_model",
    "RetryPolicy": "adk.models.litellm_model",
    "ScriptedModel": "adk.models.scripted",
    # serving
    "ServingLayer": "adk.serving.layer",
    "FlushRecord": "adk.serving.flushing",
    "Backend": "adk.serving.config",
    "Cost": "adk.serving.config",
    "CacheDecision": "adk.serving.cache",
    "CacheEvent": "adk.serving.cache",
    "CachePolicy": "adk.serving.cache",
    "MemoryPolicy": "adk.serving.cache",
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
    "CheckpointStore": "adk.runner.stores.base",
    "InMemoryStore": "adk.runner.stores.memory",
    "SQLiteStore": "adk.runner.stores.sqlite",
    "RedisStore": "adk.runner.stores.redis",
    "PostgresStore": "adk.runner.stores.postgres",
    "CheckpointError": "adk.runner.serde",
    "CheckpointCorrupted": "adk.runner.serde",
    "CheckpointVersionError": "adk.runner.serde",
    "SerializationError": "adk.runner.serde",
    "register_type": "adk.runner.serde",
    "CheckpointAlreadyResumed": "adk.runner.checkpoint",
    "CheckpointMismatch": "adk.runner.checkpoint",
    "CheckpointNotFound": "adk.runner.checkpoint",
    "Interrupt": "adk.interrupts",
    "RunInProgress": "adk.runner.lease",
    "LeaseLost": "adk.runner.lease",
    "Approval": "adk.interrupts",
    # runner
    "RunContext": "adk.runner.context",
    "RunResult": "adk.runner.result",
    "Runner": "adk.runner.runner",
}

# Type checkers read the explicit ``import X as X`` re-exports below; at run time the
# names come from _EXPORTS, so the table is the single list of what is public.
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'adk' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


if TYPE_CHECKING:
    from adk.agents.agent_tool import (
        AgentTool as AgentTool,
    )
    from adk.agents.base import (
        Agent as Agent,
    )
    from adk.agents.base import (
        AgentInput as AgentInput,
    )
    from adk.agents.base import (
        BaseAgent as BaseAgent,
    )
    from adk.agents.chat_model import (
        ChatModelAgent as ChatModelAgent,
    )
    from adk.agents.chat_model import (
        GenModelInput as GenModelInput,
    )
    from adk.agents.chat_model import (
        default_model_input as default_model_input,
    )
    from adk.agents.flow import (
        TransferError as TransferError,
    )
    from adk.agents.flow import (
        TransferLimitExceeded as TransferLimitExceeded,
    )
    from adk.agents.flow import (
        run_agent as run_agent,
    )
    from adk.agents.history import (
        HistoryEntry as HistoryEntry,
    )
    from adk.agents.history import (
        HistoryRewriter as HistoryRewriter,
    )
    from adk.agents.history import (
        default_history_rewriter as default_history_rewriter,
    )
    from adk.agents.history import (
        input_messages as input_messages,
    )
    from adk.agents.transfer import (
        TransferWhenDone as TransferWhenDone,
    )
    from adk.agents.tree import (
        AgentTree as AgentTree,
    )
    from adk.agents.workflow import (
        LoopAgent as LoopAgent,
    )
    from adk.agents.workflow import (
        ParallelAgent as ParallelAgent,
    )
    from adk.agents.workflow import (
        SequentialAgent as SequentialAgent,
    )
    from adk.errors import (
        AdkError as AdkError,
    )
    from adk.errors import (
        AgentRunError as AgentRunError,
    )
    from adk.errors import (
        ConfigurationError as ConfigurationError,
    )
    from adk.errors import (
        ContextWindowExceededError as ContextWindowExceededError,
    )
    from adk.errors import (
        InstructionError as InstructionError,
    )
    from adk.errors import (
        MaxIterationsExceeded as MaxIterationsExceeded,
    )
    from adk.errors import (
        ModelAuthenticationError as ModelAuthenticationError,
    )
    from adk.errors import (
        ModelBadRequestError as ModelBadRequestError,
    )
    from adk.errors import (
        ModelConnectionError as ModelConnectionError,
    )
    from adk.errors import (
        ModelError as ModelError,
    )
    from adk.errors import (
        ModelRateLimitError as ModelRateLimitError,
    )
    from adk.errors import (
        ModelServerError as ModelServerError,
    )
    from adk.errors import (
        ModelTimeoutError as ModelTimeoutError,
    )
    from adk.errors import (
        ScriptExhaustedError as ScriptExhaustedError,
    )
    from adk.errors import (
        ToolError as ToolError,
    )
    from adk.events import (
        AgentAction as AgentAction,
    )
    from adk.events import (
        AgentEvent as AgentEvent,
    )
    from adk.events import (
        AgentOutput as AgentOutput,
    )
    from adk.events import (
        BreakLoop as BreakLoop,
    )
    from adk.events import (
        ErrorInfo as ErrorInfo,
    )
    from adk.events import (
        Interrupted as Interrupted,
    )
    from adk.events import (
        InterruptInfo as InterruptInfo,
    )
    from adk.events import (
        RunPath as RunPath,
    )
    from adk.events import (
        TransferToAgent as TransferToAgent,
    )
    from adk.interrupts import (
        Approval as Approval,
    )
    from adk.interrupts import (
        Interrupt as Interrupt,
    )
    from adk.messages import (
        Message as Message,
    )
    from adk.messages import (
        Role as Role,
    )
    from adk.messages import (
        ToolCall as ToolCall,
    )
    from adk.messages import (
        Usage as Usage,
    )
    from adk.models.base import (
        ChatModel as ChatModel,
    )
    from adk.models.base import (
        ModelChunk as ModelChunk,
    )
    from adk.models.base import (
        ModelRequest as ModelRequest,
    )
    from adk.models.base import (
        ModelResponse as ModelResponse,
    )
    from adk.models.base import (
        ToolCallDelta as ToolCallDelta,
    )
    from adk.models.base import (
        ToolSpec as ToolSpec,
    )
    from adk.models.litellm_model import (
        LiteLLMModel as LiteLLMModel,
    )
    from adk.models.litellm_model import (
        RetryPolicy as RetryPolicy,
    )
    from adk.models.scripted import (
        ScriptedModel as ScriptedModel,
    )
    from adk.runner.checkpoint import (
        CheckpointAlreadyResumed as CheckpointAlreadyResumed,
    )
    from adk.runner.checkpoint import (
        CheckpointMismatch as CheckpointMismatch,
    )
    from adk.runner.checkpoint import (
        CheckpointNotFound as CheckpointNotFound,
    )
    from adk.runner.context import (
        RunContext as RunContext,
    )
    from adk.runner.lease import (
        LeaseLost as LeaseLost,
    )
    from adk.runner.lease import (
        RunInProgress as RunInProgress,
    )
    from adk.runner.result import (
        RunResult as RunResult,
    )
    from adk.runner.runner import (
        Runner as Runner,
    )
    from adk.runner.serde import (
        CheckpointCorrupted as CheckpointCorrupted,
    )
    from adk.runner.serde import (
        CheckpointError as CheckpointError,
    )
    from adk.runner.serde import (
        CheckpointVersionError as CheckpointVersionError,
    )
    from adk.runner.serde import (
        SerializationError as SerializationError,
    )
    from adk.runner.serde import (
        register_type as register_type,
    )
    from adk.runner.stores.base import (
        CheckpointStore as CheckpointStore,
    )
    from adk.runner.stores.memory import (
        InMemoryStore as InMemoryStore,
    )
    from adk.runner.stores.postgres import (
        PostgresStore as PostgresStore,
    )
    from adk.runner.stores.redis import (
        RedisStore as RedisStore,
    )
    from adk.runner.stores.sqlite import (
        SQLiteStore as SQLiteStore,
    )
    from adk.serving.cache import (
        CacheDecision as CacheDecision,
    )
    from adk.serving.cache import (
        CacheEvent as CacheEvent,
    )
    from adk.serving.cache import (
        CachePolicy as CachePolicy,
    )
    from adk.serving.cache import (
        MemoryPolicy as MemoryPolicy,
    )
    from adk.serving.config import (
        Backend as Backend,
    )
    from adk.serving.config import (
        Cost as Cost,
    )
    from adk.serving.flushing import (
        FlushRecord as FlushRecord,
    )
    from adk.serving.layer import (
        ServingLayer as ServingLayer,
    )
    from adk.serving.metrics import (
        CallMetrics as CallMetrics,
    )
    from adk.serving.metrics import (
        RunServingStats as RunServingStats,
    )
    from adk.serving.metrics import (
        ServingSummary as ServingSummary,
    )
    from adk.serving.replica import (
        Replica as Replica,
    )
    from adk.serving.routing import (
        LeastLoaded as LeastLoaded,
    )
    from adk.serving.routing import (
        PrefixAware as PrefixAware,
    )
    from adk.serving.routing import (
        RoundRobin as RoundRobin,
    )
    from adk.serving.routing import (
        RouteRequest as RouteRequest,
    )
    from adk.serving.routing import (
        RoutingPolicy as RoutingPolicy,
    )
    from adk.serving.routing import (
        SessionAffinity as SessionAffinity,
    )
    from adk.serving.scheduler import (
        BackendUnavailableError as BackendUnavailableError,
    )
    from adk.serving.scheduler import (
        QueueFullError as QueueFullError,
    )
    from adk.tools.base import (
        ArgumentsInvalid as ArgumentsInvalid,
    )
    from adk.tools.base import (
        BaseTool as BaseTool,
    )
    from adk.tools.base import (
        Tool as Tool,
    )
    from adk.tools.base import (
        ToolContext as ToolContext,
    )
    from adk.tools.exit import (
        ExitTool as ExitTool,
    )
    from adk.tools.function import (
        FunctionTool as FunctionTool,
    )
    from adk.tools.function import (
        tool as tool,
    )
