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
    # runner
    "RunContext": "adk.runner.context",
    "RunResult": "adk.runner.runner",
    "Runner": "adk.runner.runner",
}

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
    from adk.agents.agent_tool import AgentTool
    from adk.agents.base import Agent, AgentInput, BaseAgent
    from adk.agents.chat_model import ChatModelAgent, GenModelInput, default_model_input
    from adk.agents.flow import TransferError, TransferLimitExceeded, run_agent
    from adk.agents.history import HistoryEntry, HistoryRewriter, default_history_rewriter
    from adk.agents.transfer import TransferWhenDone
    from adk.agents.tree import AgentTree
    from adk.agents.workflow import LoopAgent, ParallelAgent, SequentialAgent
    from adk.errors import (
        AdkError,
        AgentRunError,
        ConfigurationError,
        ContextWindowExceededError,
        InstructionError,
        MaxIterationsExceeded,
        ModelAuthenticationError,
        ModelBadRequestError,
        ModelConnectionError,
        ModelError,
        ModelRateLimitError,
        ModelServerError,
        ModelTimeoutError,
        ScriptExhaustedError,
        ToolError,
    )
    from adk.events import (
        AgentAction,
        AgentEvent,
        AgentOutput,
        BreakLoop,
        ErrorInfo,
        Interrupted,
        InterruptInfo,
        RunPath,
        TransferToAgent,
    )
    from adk.messages import Message, Role, ToolCall, Usage
    from adk.models.base import (
        ChatModel,
        ModelChunk,
        ModelRequest,
        ModelResponse,
        ToolCallDelta,
        ToolSpec,
    )
    from adk.models.litellm_model import LiteLLMModel, RetryPolicy
    from adk.models.scripted import ScriptedModel
    from adk.runner.context import RunContext
    from adk.runner.runner import Runner, RunResult
    from adk.serving.layer import ServingLayer
    from adk.tools.base import ArgumentsInvalid, BaseTool, Tool, ToolContext
    from adk.tools.exit import ExitTool
    from adk.tools.function import FunctionTool, tool
