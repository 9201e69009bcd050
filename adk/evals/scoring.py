"""Scoring a run against what was expected: the tool calls it made and its final output.

:func:`score` compares a :class:`~adk.RunResult` or a :class:`~adk.Trajectory`
with expected tool calls and an expected output and returns a
:class:`Score`: pass or fail, and every difference found. The ``assert_*``
helpers raise ``AssertionError`` with a readable diff, so they read well
under plain pytest.

Tool calls are those the model asked for, in the order the run delivered
them. Modes:

- ``"exact"``: the same calls in the same order, nothing else;
- ``"in_order"``: the expected calls appear in this order, other calls may
  come between them;
- ``"any_order"``: the same calls in any order, nothing else.

An expected call is a tool name (arguments not checked), a
``(name, arguments)`` pair, a :class:`~adk.ToolCall`, or
``{"name": ..., "arguments": {...}}``. Arguments compare as decoded JSON
(key order does not matter); ``arguments=False`` ignores them everywhere.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from adk.errors import ConfigurationError
from adk.messages import ToolCall
from adk.runner.result import RunResult
from adk.runner.trajectory import Trajectory

Mode = Literal["exact", "in_order", "any_order"]
MODES = ("exact", "in_order", "any_order")
ExpectedCall = str | tuple[str, Mapping[str, Any]] | ToolCall | Mapping[str, Any]
"""A tool call expected: a name, ``(name, arguments)``, a ToolCall or ``{"name", "arguments"}``."""
ExpectedOutput = str | Callable[[str], bool]
"""The final output expected: the exact text, or a predicate of the text."""


@dataclass(frozen=True, slots=True)
class CallSpec:
    """A tool call as compared: name, and decoded arguments (None: not checked)."""

    name: str
    arguments: Any = None

    def matches(self, actual: CallSpec) -> bool:
        """True if ``actual`` is this call (its arguments too, when they are checked)."""
        return self.name == actual.name and (
            self.arguments is None or self.arguments == actual.arguments
        )

    def __str__(self) -> str:
        if self.arguments is None:
            return f"{self.name}(...)"
        return f"{self.name}({json.dumps(self.arguments, sort_keys=True, default=str)})"


def _decoded(arguments: str) -> Any:
    try:
        return json.loads(arguments) if arguments else {}
    except ValueError:
        return arguments


def expected_spec(expected: ExpectedCall, check_arguments: bool = True) -> CallSpec:
    """An expected call in compared form; TypeError naming a call of the wrong kind."""
    if isinstance(expected, str):
        return CallSpec(expected)
    if isinstance(expected, ToolCall):
        spec = CallSpec(expected.name, _decoded(expected.arguments))
    elif isinstance(expected, tuple) and len(expected) == 2 and isinstance(expected[0], str):
        spec = CallSpec(expected[0], dict(expected[1]))
    elif isinstance(expected, Mapping) and isinstance(expected.get("name"), str):
        arguments = expected.get("arguments")
        spec = CallSpec(expected["name"], None if arguments is None else dict(arguments))
    else:
        raise TypeError(
            "an expected tool call is a name, a (name, arguments) pair, a ToolCall or "
            f"{{'name': ..., 'arguments': {{...}}}}, got {expected!r}"
        )
    return spec if check_arguments else CallSpec(spec.name)


def actual_calls(run: RunResult | Trajectory) -> list[ToolCall]:
    """The tool calls the model asked for in ``run``, in the order they were delivered."""
    if isinstance(run, RunResult | Trajectory):
        messages = [event.message for event in run.events]
    else:
        raise TypeError(f"score a RunResult or a Trajectory, got {type(run).__name__}")
    return [
        call
        for message in messages
        if message is not None and message.role == "assistant"
        for call in message.tool_calls
    ]


def final_output(run: RunResult | Trajectory) -> str:
    """The final answer's text of ``run``."""
    return run.text if isinstance(run, RunResult) else run.output


def _sequence_problems(expected: list[CallSpec], actual: list[CallSpec], mode: str) -> list[str]:
    if mode == "exact":
        if len(expected) == len(actual) and all(
            e.matches(a) for e, a in zip(expected, actual, strict=True)
        ):
            return []
        return ["tool calls differ (exact):\n" + _diff(expected, actual)]
    if mode == "in_order":
        position = 0
        for spec in expected:
            while position < len(actual) and not spec.matches(actual[position]):
                position += 1
            if position == len(actual):
                return [f"expected call {spec} not found in order:\n" + _diff(expected, actual)]
            position += 1
        return []
    left = list(actual)
    missing = []
    for spec in expected:
        found = next((index for index, call in enumerate(left) if spec.matches(call)), None)
        if found is None:
            missing.append(str(spec))
        else:
            del left[found]
    problems = []
    if missing:
        problems.append(f"missing tool calls (any order): {', '.join(missing)}")
    if left:
        problems.append(f"unexpected tool calls (any order): {', '.join(map(str, left))}")
    return problems


def _diff(expected: list[CallSpec], actual: list[CallSpec]) -> str:
    """A unified diff of the calls; an expected call that matches is shown as the actual one."""
    shown = [
        str(actual[index]) if index < len(actual) and spec.matches(actual[index]) else str(spec)
        for index, spec in enumerate(expected)
    ]
    lines = difflib.unified_diff(
        shown,
        [str(spec) for spec in actual],
        "expected",
        "actual",
        lineterm="",
    )
    return "\n".join(lines) or "(same calls; arguments not shown differ)"


@dataclass(slots=True)
class Score:
    """The outcome of :func:`score`: :attr:`passed`, and every difference in :attr:`problems`."""

    passed: bool
    problems: list[str] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    """The calls the run made."""
    output: str = ""
    """The run's final answer."""

    def __bool__(self) -> bool:
        return self.passed

    def report(self) -> str:
        """A readable account: PASS, or FAIL with each problem."""
        if self.passed:
            return "PASS"
        return "FAIL\n" + "\n".join(f"- {problem}" for problem in self.problems)


def score(
    run: RunResult | Trajectory,
    *,
    tool_calls: Sequence[ExpectedCall] | None = None,
    mode: Mode = "exact",
    arguments: bool = True,
    output: ExpectedOutput | None = None,
) -> Score:
    """Compare ``run`` with the expected ``tool_calls`` (None: not checked) and ``output``."""
    if mode not in MODES:
        raise ConfigurationError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    calls = actual_calls(run)
    text = final_output(run)
    problems: list[str] = []
    if tool_calls is not None:
        if isinstance(tool_calls, str | bytes):
            raise TypeError("tool_calls must be a list of expected calls, not a str")
        expected = [expected_spec(item, arguments) for item in tool_calls]
        made = [CallSpec(c.name, _decoded(c.arguments) if arguments else None) for c in calls]
        problems += _sequence_problems(expected, made, mode)
    if output is not None:
        if callable(output):
            if not output(text):
                name = getattr(output, "__name__", repr(output))
                problems.append(f"output {text!r} does not satisfy {name}")
        elif not isinstance(output, str):
            raise TypeError(f"output must be a str or a predicate, got {type(output).__name__}")
        elif text != output:
            diff = difflib.unified_diff(
                output.splitlines(), text.splitlines(), "expected", "actual", lineterm=""
            )
            problems.append(
                f"output {_cut(text)} is not the expected {_cut(output)}:\n" + "\n".join(diff)
            )
    return Score(not problems, problems, calls, text)


def _cut(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")


def _raise(result: Score) -> None:
    if not result.passed:
        raise AssertionError(result.report())


def assert_tool_calls(
    run: RunResult | Trajectory,
    expected: Sequence[ExpectedCall],
    *,
    mode: Mode = "exact",
    arguments: bool = True,
) -> None:
    """Raise ``AssertionError`` (with a diff) unless ``run`` made the ``expected`` calls."""
    _raise(score(run, tool_calls=expected, mode=mode, arguments=arguments))


def assert_output(run: RunResult | Trajectory, expected: ExpectedOutput) -> None:
    """Raise ``AssertionError`` (with a diff) unless ``run``'s final output is ``expected``."""
    _raise(score(run, output=expected))


def assert_score(
    run: RunResult | Trajectory,
    *,
    tool_calls: Sequence[ExpectedCall] | None = None,
    mode: Mode = "exact",
    arguments: bool = True,
    output: ExpectedOutput | None = None,
) -> None:
    """:func:`score`, raising ``AssertionError`` with every problem unless it passed."""
    _raise(score(run, tool_calls=tool_calls, mode=mode, arguments=arguments, output=output))
