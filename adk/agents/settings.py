"""Construction checks of ChatModelAgent's settings: each names the argument and what was given.

A wrong kind of value is a ``TypeError``, a value of the right kind that is not
allowed a :class:`~adk.ConfigurationError` (the rule of
``adk.runner.arguments``). Checked once, when the agent is built, so that a
misconfigured agent fails at its definition instead of deep inside a run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from adk.agents.base import Agent
from adk.agents.history import TRANSFER_TOOL_NAME
from adk.errors import ArgumentTypeError, ConfigurationError
from adk.models.base import ChatModel
from adk.tools.base import Tool
from adk.tools.function import FunctionTool
from adk.tools.provider import ToolProvider

S = TypeVar("S", bound=str)


def checked_model(agent: str, model: object) -> ChatModel | str:
    """``model`` if it is a ChatModel or a non-empty model id."""
    if not isinstance(model, str | ChatModel):
        raise ArgumentTypeError(
            f"agent {agent!r}: model must be a ChatModel (with generate and stream) or a "
            "litellm model id such as 'openai/gpt-4o-mini', "
            f"got {type(model).__name__} {model!r}"
        )
    if model == "":
        raise ConfigurationError(f"agent {agent!r} needs a model, got ''")
    return model


def checked_iterations(agent: str, value: object) -> int:
    """``max_iterations`` if it is an int of at least 1 (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentTypeError(
            f"agent {agent!r}: max_iterations must be an int, got {type(value).__name__} {value!r}"
        )
    if value < 1:
        raise ConfigurationError(f"agent {agent!r}: max_iterations must be at least 1, got {value}")
    return value


def checked_retries(agent: str, value: object) -> int:
    """``output_retries`` if it is an int of at least 0 (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentTypeError(
            f"agent {agent!r}: output_retries must be an int, got {type(value).__name__} {value!r}"
        )
    if value < 0:
        raise ConfigurationError(f"agent {agent!r}: output_retries must be at least 0, got {value}")
    return value


def checked_choice(agent: str, argument: str, value: S, choices: tuple[str, ...]) -> S:
    """``value`` if it is one of ``choices``."""
    if value not in choices:
        listed = ", ".join(repr(choice) for choice in choices)
        raise ConfigurationError(
            f"agent {agent!r}: {argument} must be one of {listed}, not {value!r}"
        )
    return value


def checked_tools(agent: str, tools: object) -> tuple[dict[str, Tool], tuple[ToolProvider, ...]]:
    """The agent's tools by name (functions wrapped in FunctionTool) and its tool providers."""
    if (
        isinstance(tools, str | Tool | ToolProvider)
        or callable(tools)
        or not isinstance(tools, Iterable)
    ):
        single = getattr(tools, "name", None) or getattr(tools, "__name__", None)
        given = f"{type(tools).__name__} {tools!r}"
        if isinstance(single, str) and not isinstance(tools, str):
            given = f"a single tool {single!r}; write tools=[{single}]"
        raise ArgumentTypeError(
            f"agent {agent!r}: tools must be a list of tools or functions, got {given}"
        )
    by_name: dict[str, Tool] = {}
    providers: list[ToolProvider] = []
    for index, item in enumerate(tools):
        if isinstance(item, ToolProvider) and not isinstance(item, Tool):
            providers.append(item)
            continue
        if not (isinstance(item, Tool) or callable(item)):
            raise ArgumentTypeError(
                f"agent {agent!r}: tools[{index}] must be a Tool, a tool provider (such as "
                f"an MCPToolset) or a function, got {type(item).__name__} {item!r}"
            )
        as_tool: Tool = item if isinstance(item, Tool) else FunctionTool(_function(item))
        if as_tool.name in by_name:
            raise ConfigurationError(f"agent {agent!r} has two tools named {as_tool.name!r}")
        by_name[as_tool.name] = as_tool
    if TRANSFER_TOOL_NAME in by_name:
        raise ConfigurationError(
            f"agent {agent!r}: the tool name {TRANSFER_TOOL_NAME!r} is reserved for transfers"
        )
    return by_name, tuple(providers)


def _function(item: object) -> Callable[..., Any]:
    assert callable(item)
    return item


def checked_return_directly(
    agent: str, names: Iterable[str], tools: dict[str, Tool]
) -> frozenset[str]:
    """The names of tools whose result ends the turn; each must be one of ``tools``."""
    if isinstance(names, str):
        raise ArgumentTypeError(
            f"agent {agent!r}: return_directly must be a list of tool names, "
            f"got str {names!r}; write return_directly=[{names!r}]"
        )
    chosen = frozenset(names)
    unknown = chosen - set(tools)
    if unknown:
        raise ConfigurationError(
            f"agent {agent!r}: return_directly names unknown tools: {', '.join(sorted(unknown))}"
        )
    return chosen


def checked_sub_agents(agent: str, sub_agents: object) -> tuple[Agent, ...]:
    """The agents ``agent`` may transfer to: agents, uniquely named, none named ``agent``."""
    if isinstance(sub_agents, Agent | str) or not isinstance(sub_agents, Iterable):
        given = f"{type(sub_agents).__name__} {sub_agents!r}"
        if isinstance(sub_agents, Agent):
            given = f"a single agent {sub_agents.name!r}; write sub_agents=[{sub_agents.name}]"
        raise ArgumentTypeError(
            f"agent {agent!r}: sub_agents must be a list of agents, got {given}"
        )
    children = tuple(sub_agents)
    for index, child in enumerate(children):
        if not isinstance(child, Agent):
            raise ArgumentTypeError(
                f"agent {agent!r}: sub_agents[{index}] must be an agent, "
                f"got {type(child).__name__} {child!r}"
            )
    names = [child.name for child in children]
    if agent in names:
        raise ConfigurationError(
            f"agent {agent!r} has a sub-agent named like itself; sub-agent names must be "
            "unique (the agent above is offered as a transfer target without being listed)"
        )
    if len(set(names)) != len(names):
        raise ConfigurationError(f"agent {agent!r}: sub-agent names must be unique")
    return children
