"""Evals for adk agents: replay recorded runs, score runs, run datasets of cases.

- :class:`ReplayModel`: a chat model answering from a recorded
  :class:`~adk.Trajectory` (``Runner(..., trajectories=True)``), reporting a
  :class:`ReplayDivergence` when changed code asks something else.
- :func:`score` and the ``assert_*`` helpers: expected tool calls (modes
  ``"exact"``, ``"in_order"``, ``"any_order"``, with or without arguments)
  and expected output (text, or a predicate).
- :class:`EvalCase`, :func:`run_evals`, :class:`EvalSummary`,
  :func:`pytest_params`: a dataset of cases run against an agent.

``import adk`` does not import this package: ``from adk.evals import ...``.
See docs/evals.md.
"""

from __future__ import annotations

from adk.evals.cases import (
    CaseResult,
    EvalCase,
    EvalSummary,
    pytest_params,
    run_case,
    run_evals,
)
from adk.evals.replay import ReplayDivergence, ReplayModel
from adk.evals.scoring import (
    Score,
    actual_calls,
    assert_output,
    assert_score,
    assert_tool_calls,
    score,
)
from adk.runner.trajectory import (
    Execution,
    ModelCall,
    ToolCallRecord,
    Trajectory,
    TrajectoryCorrupted,
    TrajectoryEvent,
)

__all__ = [
    "CaseResult",
    "EvalCase",
    "EvalSummary",
    "Execution",
    "ModelCall",
    "ReplayDivergence",
    "ReplayModel",
    "Score",
    "ToolCallRecord",
    "Trajectory",
    "TrajectoryCorrupted",
    "TrajectoryEvent",
    "actual_calls",
    "assert_output",
    "assert_score",
    "assert_tool_calls",
    "pytest_params",
    "run_case",
    "run_evals",
    "score",
]
