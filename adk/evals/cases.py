"""Eval cases and datasets: run each case against an agent, score it, summarise the lot.

An :class:`EvalCase` is an input with the tool calls and output expected of
it. :func:`run_evals` runs every case (each on a fresh Runner from the
factory given: a scripted or stateful model then starts over for each
case) and scores it (:func:`adk.evals.score`); the :class:`EvalSummary`
prints as a table and :meth:`EvalSummary.assert_passed` fails a test with
every failing case. Under pytest, :func:`pytest_params` makes one
parametrized test per case.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from adk.agents.base import Agent
from adk.evals.scoring import ExpectedCall, ExpectedOutput, Mode, Score, score
from adk.messages import Content
from adk.runner.runner import Runner


@dataclass(slots=True)
class EvalCase:
    """One case: ``input`` and what is expected of the run (None: not checked)."""

    name: str
    input: Content
    tool_calls: Sequence[ExpectedCall] | None = None
    output: ExpectedOutput | None = None
    mode: Mode = "exact"
    arguments: bool = True


@dataclass(slots=True)
class CaseResult:
    """A case's outcome: its :class:`~adk.evals.Score`, or the error that ended the run."""

    case: EvalCase
    score: Score | None
    error: str | None = None
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        """True if the run ended normally and its score passed."""
        return self.error is None and self.score is not None and self.score.passed

    def problems(self) -> list[str]:
        """What went wrong (empty if the case passed)."""
        if self.error is not None:
            return [f"run failed: {self.error}"]
        return list(self.score.problems) if self.score is not None else []


@dataclass(slots=True)
class EvalSummary:
    """Every case's result, and the table of them."""

    results: list[CaseResult] = field(default_factory=list)

    @property
    def passed(self) -> int:
        """How many cases passed."""
        return sum(1 for result in self.results if result.passed)

    @property
    def failed(self) -> list[CaseResult]:
        """The cases that did not pass."""
        return [result for result in self.results if not result.passed]

    def table(self) -> str:
        """One line a case (name, PASS/FAIL, tool calls, first problem) and a total line."""
        width = max([4, *(len(result.case.name) for result in self.results)])
        lines = [f"{'case':<{width}}  result  calls  problem"]
        for result in self.results:
            calls = len(result.score.tool_calls) if result.score is not None else 0
            problems = result.problems()
            first = problems[0].splitlines()[0] if problems else ""
            verdict = "PASS" if result.passed else "FAIL"
            lines.append(f"{result.case.name:<{width}}  {verdict:<6}  {calls:>5}  {first}".rstrip())
        lines.append(f"{self.passed}/{len(self.results)} passed")
        return "\n".join(lines)

    def assert_passed(self) -> None:
        """Raise ``AssertionError`` with the table and every failing case's problems."""
        if not self.failed:
            return
        details = [
            f"{result.case.name}:\n" + "\n".join(f"  - {p}" for p in result.problems())
            for result in self.failed
        ]
        raise AssertionError(self.table() + "\n\n" + "\n".join(details))


RunnerFactory = Callable[[EvalCase], Runner | Agent | Awaitable[Runner | Agent]]
"""Builds the Runner (or the agent, run with a default Runner) for one case."""


async def run_case(make: RunnerFactory, case: EvalCase) -> CaseResult:
    """Run one case on a fresh Runner from ``make`` and score it; a failed run is a result."""
    import time

    built: Any = make(case)
    if not isinstance(built, Runner | Agent):
        built = await built
    runner = built if isinstance(built, Runner) else Runner(built)
    started = time.perf_counter()
    try:
        result = await runner.invoke(case.input)
    except Exception as exc:
        return CaseResult(case, None, f"{type(exc).__name__}: {exc}")
    seconds = time.perf_counter() - started
    scored = score(
        result,
        tool_calls=case.tool_calls,
        mode=case.mode,
        arguments=case.arguments,
        output=case.output,
    )
    return CaseResult(case, scored, seconds=seconds)


async def run_evals(make: RunnerFactory, cases: Sequence[EvalCase]) -> EvalSummary:
    """Run every case in order (see the module docstring)."""
    for case in cases:
        if not isinstance(case, EvalCase):
            raise TypeError(f"run_evals needs EvalCase items, got {type(case).__name__}")
    summary = EvalSummary()
    for case in cases:
        summary.results.append(await run_case(make, case))
    return summary


def pytest_params(cases: Sequence[EvalCase]) -> list[Any]:
    """One ``pytest.param(case, id=case.name)`` a case, for ``@pytest.mark.parametrize``."""
    import pytest

    return [pytest.param(case, id=case.name) for case in cases]
