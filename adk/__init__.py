"""adk: a composable agent framework.

Agents are async generators of events; composite agents transform event
streams; control flow is data on the stream; every model call goes through a
serving layer.

Names are loaded on first use so that ``import adk`` stays fast; everything
listed in ``__all__`` is the public API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from adk._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # messages
    "Message": "adk.messages",
    "Role": "adk.messages",
    "ToolCall": "adk.messages",
    "Usage": "adk.messages",
    # content (multimodal parts)
    "AudioPart": "adk.content",
    "FilePart": "adk.content",
    "ImagePart": "adk.content",
    "Part": "adk.content",
    "TextPart": "adk.content",
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
    "ArgumentTypeError": "adk.errors",
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
    "OutputValidationError": "adk.errors",
    "ScriptExhaustedError": "adk.errors",
    "GuardrailTripped": "adk.errors",
    "UsageLimitExceeded": "adk.errors",
    "UsageLimits": "adk.state.limits",
    "ContextPolicy": "adk.state.context_policy",
    "ModelSummariser": "adk.agents.compaction",
    "Summariser": "adk.state.context_policy",
    "SummaryRequest": "adk.state.context_policy",
    "MiddlewareError": "adk.errors",
    "RunCancelled": "adk.errors",
    "RunControlError": "adk.errors",
    "ToolError": "adk.errors",
    # tracing (OpenTelemetry is imported only when tracing is switched on)
    "Tracing": "adk.tracing.config",
    # agents
    "Agent": "adk.agents.base",
    "AgentInput": "adk.agents.base",
    "BaseAgent": "adk.agents.base",
    "ChatModelAgent": "adk.agents.chat_model",
    "GenModelInput": "adk.agents.chat_model",
    "default_model_input": "adk.agents.chat_model",
    "AgentTool": "adk.agents.agent_tool",
    "OutputMode": "adk.agents.output",
    "Guardrail": "adk.agents.guardrails",
    "GuardrailResult": "adk.agents.guardrails",
    "guardrail": "adk.agents.guardrails",
    "Middleware": "adk.agents.middleware",
    "ToolCallInfo": "adk.agents.middleware",
    "HistoryEntry": "adk.events",
    "HistoryRewriter": "adk.agents.history",
    "default_history_rewriter": "adk.agents.history",
    "input_messages": "adk.agents.history",
    "TransferError": "adk.agents.flow",
    "TransferLimitExceeded": "adk.agents.flow",
    "run_agent": "adk.agents.flow",
    "TransferWhenDone": "adk.agents.transfer",
    "AgentTree": "adk.agents.tree",
    "DAGAgent": "adk.agents.dag",
    "Node": "adk.agents.dag_nodes",
    "NodeResult": "adk.agents.dag_nodes",
    "Upstream": "adk.agents.dag_nodes",
    "LoopAgent": "adk.agents.workflow",
    "ParallelAgent": "adk.agents.workflow",
    "SequentialAgent": "adk.agents.workflow",
    "StageAssignment": "adk.agents.stage_mapping",
    "StageMapper": "adk.agents.stage_mapping",
    "StageMappingError": "adk.agents.stage_mapping",
    "StageRequest": "adk.agents.stage_mapping",
    "map_stage": "adk.agents.stage_mapping",
    "ExplicitStageMapping": "adk.agents.stage_mappers",
    "OneBitStageMapper": "adk.agents.stage_mappers",
    "ThresholdStageMapper": "adk.agents.stage_mappers",
    "prompt_score": "adk.agents.stage_mappers",
    # tools
    "ArgumentsInvalid": "adk.tools.base",
    "BaseTool": "adk.tools.base",
    "Tool": "adk.tools.base",
    "ToolContext": "adk.tools.base",
    "ExitTool": "adk.tools.exit",
    "FunctionTool": "adk.tools.function",
    "ToolProvider": "adk.tools.provider",
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
    "SharedRoutingState": "adk.serving.shared_routing",
    "CheckpointStore": "adk.state.stores.base",
    "InMemoryStore": "adk.state.stores.memory",
    "SQLiteStore": "adk.state.stores.sqlite",
    "RedisStore": "adk.state.stores.redis",
    "PostgresStore": "adk.state.stores.postgres",
    "StoreUnavailable": "adk.state.stores.base",
    "Signal": "adk.state.signals",
    "SignalListener": "adk.state.signals",
    "read_signals": "adk.state.signals",
    "send_signal": "adk.state.signals",
    "CheckpointError": "adk.state.serde",
    "CheckpointCorrupted": "adk.state.serde",
    "CheckpointVersionError": "adk.state.serde",
    "SerializationError": "adk.state.serde",
    "register_type": "adk.state.serde",
    "CheckpointAlreadyResumed": "adk.runner.checkpoint",
    "CheckpointMismatch": "adk.runner.checkpoint",
    "CheckpointNotFound": "adk.runner.checkpoint",
    "RunExists": "adk.runner.checkpoint",
    "CheckpointInfo": "adk.runner.records",
    "InterruptAnswerUnread": "adk.state.interrupts",
    "Interrupt": "adk.state.interrupts",
    "RunInProgress": "adk.state.lease",
    "LeaseLost": "adk.state.lease",
    "Approval": "adk.state.interrupts",
    # sessions
    "SessionService": "adk.sessions.service",
    "Session": "adk.sessions.views",
    "SessionInfo": "adk.sessions.views",
    "PausedTurn": "adk.sessions.records",
    "SessionError": "adk.sessions.records",
    "SessionBusy": "adk.sessions.records",
    "SessionPaused": "adk.sessions.records",
    "SessionNotFound": "adk.sessions.records",
    "SessionCorrupted": "adk.sessions.records",
    "SessionVersionError": "adk.sessions.records",
    # runner
    "RunContext": "adk.state.context",
    "RunResult": "adk.runner.result",
    "Trajectory": "adk.runner.trajectory",
    "TrajectoryCorrupted": "adk.runner.trajectory",
    "Runner": "adk.runner.runner",
    "RunHandle": "adk.runner.handle",
    "RunStatusInfo": "adk.runner.status",
}

# Type checkers read the explicit ``import X as X`` re-exports below; at run time the
# names come from _EXPORTS, so the table is the single list of what is public.
__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


if TYPE_CHECKING:
    from adk.agents.agent_tool import (
        AgentTool as AgentTool,
    )
    from adk.agents.base import (
        Agent as Agent,
        AgentInput as AgentInput,
        BaseAgent as BaseAgent,
    )
    from adk.agents.chat_model import (
        ChatModelAgent as ChatModelAgent,
        GenModelInput as GenModelInput,
        default_model_input as default_model_input,
    )
    from adk.agents.compaction import (
        ModelSummariser as ModelSummariser,
    )
    from adk.agents.dag import (
        DAGAgent as DAGAgent,
    )
    from adk.agents.dag_nodes import (
        Node as Node,
        NodeResult as NodeResult,
        Upstream as Upstream,
    )
    from adk.agents.flow import (
        TransferError as TransferError,
        TransferLimitExceeded as TransferLimitExceeded,
        run_agent as run_agent,
    )
    from adk.agents.guardrails import (
        Guardrail as Guardrail,
        GuardrailResult as GuardrailResult,
        guardrail as guardrail,
    )
    from adk.agents.history import (
        HistoryRewriter as HistoryRewriter,
        default_history_rewriter as default_history_rewriter,
        input_messages as input_messages,
    )
    from adk.agents.middleware import (
        Middleware as Middleware,
        ToolCallInfo as ToolCallInfo,
    )
    from adk.agents.output import (
        OutputMode as OutputMode,
    )
    from adk.agents.stage_mappers import (
        ExplicitStageMapping as ExplicitStageMapping,
        OneBitStageMapper as OneBitStageMapper,
        ThresholdStageMapper as ThresholdStageMapper,
        prompt_score as prompt_score,
    )
    from adk.agents.stage_mapping import (
        StageAssignment as StageAssignment,
        StageMapper as StageMapper,
        StageMappingError as StageMappingError,
        StageRequest as StageRequest,
        map_stage as map_stage,
    )
    from adk.agents.transfer import (
        TransferWhenDone as TransferWhenDone,
    )
    from adk.agents.tree import (
        AgentTree as AgentTree,
    )
    from adk.agents.workflow import (
        LoopAgent as LoopAgent,
        ParallelAgent as ParallelAgent,
        SequentialAgent as SequentialAgent,
    )
    from adk.content import (
        AudioPart as AudioPart,
        FilePart as FilePart,
        ImagePart as ImagePart,
        Part as Part,
        TextPart as TextPart,
    )
    from adk.errors import (
        AdkError as AdkError,
        AgentRunError as AgentRunError,
        ArgumentTypeError as ArgumentTypeError,
        ConfigurationError as ConfigurationError,
        ContextWindowExceededError as ContextWindowExceededError,
        GuardrailTripped as GuardrailTripped,
        InstructionError as InstructionError,
        MaxIterationsExceeded as MaxIterationsExceeded,
        MiddlewareError as MiddlewareError,
        ModelAuthenticationError as ModelAuthenticationError,
        ModelBadRequestError as ModelBadRequestError,
        ModelConnectionError as ModelConnectionError,
        ModelError as ModelError,
        ModelRateLimitError as ModelRateLimitError,
        ModelServerError as ModelServerError,
        ModelTimeoutError as ModelTimeoutError,
        OutputValidationError as OutputValidationError,
        RunCancelled as RunCancelled,
        RunControlError as RunControlError,
        ScriptExhaustedError as ScriptExhaustedError,
        ToolError as ToolError,
        UsageLimitExceeded as UsageLimitExceeded,
    )
    from adk.events import (
        AgentAction as AgentAction,
        AgentEvent as AgentEvent,
        AgentOutput as AgentOutput,
        BreakLoop as BreakLoop,
        ErrorInfo as ErrorInfo,
        HistoryEntry as HistoryEntry,
        Interrupted as Interrupted,
        InterruptInfo as InterruptInfo,
        RunPath as RunPath,
        TransferToAgent as TransferToAgent,
    )
    from adk.messages import (
        Message as Message,
        Role as Role,
        ToolCall as ToolCall,
        Usage as Usage,
    )
    from adk.models.base import (
        ChatModel as ChatModel,
        ModelChunk as ModelChunk,
        ModelRequest as ModelRequest,
        ModelResponse as ModelResponse,
        ToolCallDelta as ToolCallDelta,
        ToolSpec as ToolSpec,
    )
    from adk.models.litellm_model import (
        LiteLLMModel as LiteLLMModel,
        RetryPolicy as RetryPolicy,
    )
    from adk.models.scripted import (
        ScriptedModel as ScriptedModel,
    )
    from adk.runner.checkpoint import (
        CheckpointAlreadyResumed as CheckpointAlreadyResumed,
        CheckpointMismatch as CheckpointMismatch,
        CheckpointNotFound as CheckpointNotFound,
        RunExists as RunExists,
    )
    from adk.runner.handle import (
        RunHandle as RunHandle,
    )
    from adk.runner.records import (
        CheckpointInfo as CheckpointInfo,
    )
    from adk.runner.result import (
        RunResult as RunResult,
    )
    from adk.runner.runner import (
        Runner as Runner,
    )
    from adk.runner.status import (
        RunStatusInfo as RunStatusInfo,
    )
    from adk.runner.trajectory import (
        Trajectory as Trajectory,
        TrajectoryCorrupted as TrajectoryCorrupted,
    )
    from adk.serving.cache import (
        CacheDecision as CacheDecision,
        CacheEvent as CacheEvent,
        CachePolicy as CachePolicy,
        MemoryPolicy as MemoryPolicy,
    )
    from adk.serving.config import (
        Backend as Backend,
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
        RunServingStats as RunServingStats,
        ServingSummary as ServingSummary,
    )
    from adk.serving.replica import (
        Replica as Replica,
    )
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
    from adk.serving.shared_routing import (
        SharedRoutingState as SharedRoutingState,
    )
    from adk.sessions.records import (
        PausedTurn as PausedTurn,
        SessionBusy as SessionBusy,
        SessionCorrupted as SessionCorrupted,
        SessionError as SessionError,
        SessionNotFound as SessionNotFound,
        SessionPaused as SessionPaused,
        SessionVersionError as SessionVersionError,
    )
    from adk.sessions.service import (
        SessionService as SessionService,
    )
    from adk.sessions.views import (
        Session as Session,
        SessionInfo as SessionInfo,
    )
    from adk.state.context import (
        RunContext as RunContext,
    )
    from adk.state.context_policy import (
        ContextPolicy as ContextPolicy,
        Summariser as Summariser,
        SummaryRequest as SummaryRequest,
    )
    from adk.state.interrupts import (
        Approval as Approval,
        Interrupt as Interrupt,
        InterruptAnswerUnread as InterruptAnswerUnread,
    )
    from adk.state.lease import (
        LeaseLost as LeaseLost,
        RunInProgress as RunInProgress,
    )
    from adk.state.limits import (
        UsageLimits as UsageLimits,
    )
    from adk.state.serde import (
        CheckpointCorrupted as CheckpointCorrupted,
        CheckpointError as CheckpointError,
        CheckpointVersionError as CheckpointVersionError,
        SerializationError as SerializationError,
        register_type as register_type,
    )
    from adk.state.signals import (
        Signal as Signal,
        SignalListener as SignalListener,
        read_signals as read_signals,
        send_signal as send_signal,
    )
    from adk.state.stores.base import (
        CheckpointStore as CheckpointStore,
        StoreUnavailable as StoreUnavailable,
    )
    from adk.state.stores.memory import (
        InMemoryStore as InMemoryStore,
    )
    from adk.state.stores.postgres import (
        PostgresStore as PostgresStore,
    )
    from adk.state.stores.redis import (
        RedisStore as RedisStore,
    )
    from adk.state.stores.sqlite import (
        SQLiteStore as SQLiteStore,
    )
    from adk.tools.base import (
        ArgumentsInvalid as ArgumentsInvalid,
        BaseTool as BaseTool,
        Tool as Tool,
        ToolContext as ToolContext,
    )
    from adk.tools.exit import (
        ExitTool as ExitTool,
    )
    from adk.tools.function import (
        FunctionTool as FunctionTool,
        tool as tool,
    )
    from adk.tools.provider import (
        ToolProvider as ToolProvider,
    )
    from adk.tracing.config import (
        Tracing as Tracing,
    )
