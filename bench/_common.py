"""Shared helpers for the bench scripts.

Every bench script follows the same contract:

- it measures on a shared, noisy machine, so every figure is the **median of
  several repeats** taken after a warm-up, and comparisons are made against a
  baseline measured **in the same process and the same run** (a ratio);
- it prints a readable, aligned table of its figures;
- its **last line of stdout is one JSON object** with its figures, so that a
  driver can run ``python bench/<script>.py | tail -n 1`` and parse it.

Helpers here have no dependency on ``adk`` so that importing them never
changes what a script measures.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import json
import math
import os
import pstats
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

# --------------------------------------------------------------------------- statistics


def median(values: Iterable[float]) -> float:
    """The median of ``values`` (the mean of the two middle values for an even count)."""
    data = list(values)
    if not data:
        raise ValueError("median of no values")
    return float(statistics.median(data))


def spread(values: Sequence[float]) -> tuple[float, float, float]:
    """``(median, min, max)`` of ``values``."""
    return median(values), float(min(values)), float(max(values))


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, ``inf`` when the denominator is zero."""
    return numerator / denominator if denominator else math.inf


def paired_ratios(numerators: Sequence[float], denominators: Sequence[float]) -> list[float]:
    """Per-repeat ratios of two equally long series (cases timed in the same repeat)."""
    return [ratio(a, b) for a, b in zip(numerators, denominators, strict=True)]


# --------------------------------------------------------------------------- timing


async def time_async_runs(fn: Callable[[], Awaitable[Any]], runs: int) -> float:
    """Await ``fn()`` ``runs`` times in a row; return the mean wall time of one run in µs."""
    perf = time.perf_counter_ns
    start = perf()
    for _ in range(runs):
        await fn()
    return (perf() - start) / runs / 1000.0


async def interleaved_async(
    cases: dict[str, Callable[[], Awaitable[Any]]],
    *,
    runs: int,
    repeats: int,
    warmup: int,
) -> dict[str, list[float]]:
    """Time several async cases fairly on a noisy machine.

    Each case is first warmed up with ``warmup`` runs. Then, ``repeats``
    times, each case runs ``runs`` times back to back (cases alternate inside
    every repeat, so drifts in machine load hit them alike). Returns, per
    case, the list of µs-per-run figures of each repeat; take the median.
    A ``gc.collect()`` before each block keeps one case's garbage from being
    collected on the other's clock.
    """
    for fn in cases.values():
        for _ in range(warmup):
            await fn()
    results: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            gc.collect()
            results[name].append(await time_async_runs(fn, runs))
    return results


def command_wall_ms(argv: Sequence[str], *, cwd: str | None = None) -> float:
    """Wall time in ms of running ``argv`` to completion (its output discarded).

    Raises ``RuntimeError`` with the command's stderr if it fails, so a broken
    import is not timed as a fast one.
    """
    return _wall_ms_env(list(argv), None, cwd)


def python_code_wall_ms(
    snippets: dict[str, str], *, repeats: int, warmup: int = 1, cwd: str | None = None
) -> dict[str, list[float]]:
    """Wall times (ms) of ``sys.executable -c <code>`` for each snippet, interleaved.

    Uses ``sys.executable`` (the real interpreter, not a pyenv/venv shim
    script, whose own startup would be timed too). ``warmup`` untimed rounds
    fill the OS page cache and ``__pycache__``. The environment is inherited
    except ``PYTHONPROFILEIMPORTTIME`` and similar noise switches.
    """
    env = {k: v for k, v in os.environ.items() if k not in _NOISY_ENV}
    results: dict[str, list[float]] = {name: [] for name in snippets}

    def run(code: str) -> float:
        return _wall_ms_env([sys.executable, "-c", code], env, cwd)

    for _ in range(warmup):
        for code in snippets.values():
            run(code)
    for _ in range(repeats):
        for name, code in snippets.items():
            results[name].append(run(code))
    return results


_NOISY_ENV = frozenset({"PYTHONPROFILEIMPORTTIME", "PYTHONTRACEMALLOC", "PYTHONDEVMODE"})


def _wall_ms_env(argv: list[str], env: dict[str, str] | None, cwd: str | None) -> float:
    start = time.perf_counter_ns()
    proc = subprocess.run(
        argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False
    )
    elapsed = (time.perf_counter_ns() - start) / 1e6
    if proc.returncode != 0:
        stderr = proc.stderr.decode(errors="replace")
        raise RuntimeError(f"{' '.join(argv)} exited with {proc.returncode}: {stderr}")
    return elapsed


# --------------------------------------------------------------------------- profiling


def profile_async(
    fn: Callable[[], Awaitable[Any]],
    *,
    runs: int,
    warmup: int = 50,
    top: int = 25,
    sort: str = "cum",
) -> str:
    """cProfile ``runs`` awaits of ``fn`` (after ``warmup``); return a per-run report.

    The report lists the ``top`` functions by cumulative time (``sort="cum"``)
    or by own time (``sort="own"``), in µs per run (cProfile's own overhead
    inflates absolute figures, roughly 2-3x for call-heavy code; read them as
    shares, not as timings). For coroutines, time spent suspended (sleeping,
    waiting on another task) is not counted: a resumption is a new call.
    """
    if sort not in ("cum", "own"):
        raise ValueError(f"sort must be 'cum' or 'own', not {sort!r}")

    async def body(profiler: cProfile.Profile) -> None:
        for _ in range(warmup):
            await fn()
        profiler.enable()
        for _ in range(runs):
            await fn()
        profiler.disable()

    profiler = cProfile.Profile()
    asyncio.run(body(profiler))
    stats = pstats.Stats(profiler, stream=io.StringIO())
    rows: list[tuple[float, float, int, str]] = []
    for (filename, line, func), (_cc, ncalls, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        where = _short_path(filename)
        label = f"{where}:{line}({func})" if line else f"{func}"
        rows.append((cumtime / runs * 1e6, tottime / runs * 1e6, ncalls, label))
    rows.sort(key=(lambda row: row[0]) if sort == "cum" else (lambda row: row[1]), reverse=True)
    table = [
        [f"{cum:.1f}", f"{tot:.1f}", f"{calls / runs:.1f}", label]
        for cum, tot, calls, label in rows[:top]
    ]
    return format_table(["cum µs/run", "own µs/run", "calls/run", "function"], table)


def _short_path(filename: str) -> str:
    for marker in ("/site-packages/", "/lib/python"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    cwd = os.getcwd()
    if filename.startswith(cwd):
        return os.path.relpath(filename, cwd)
    return filename


# --------------------------------------------------------------------------- output


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """An aligned plain-text table: text columns left-aligned, numeric ones right-aligned."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    width = max(len(row) for row in cells)
    for row in cells:
        row.extend([""] * (width - len(row)))
    numeric = [
        all(_is_number(row[i]) or row[i] == "" for row in cells[1:]) and len(cells) > 1
        for i in range(width)
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(width)]

    def line(row: list[str]) -> str:
        parts = [
            row[i].rjust(widths[i]) if numeric[i] else row[i].ljust(widths[i]) for i in range(width)
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])


def print_table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str | None = None
) -> None:
    """Print :func:`format_table` (with an optional title line) to stdout."""
    if title:
        print(title)
    print(format_table(headers, rows))
    print()


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if math.isinf(value) or math.isnan(value):
            return str(value)
        return f"{value:.2f}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", ""))
    except ValueError:
        return False
    return True


def verdict(value: float, target: float, *, lower_is_better: bool = True) -> str:
    """``"ok"`` if ``value`` meets ``target``, else ``"OVER"`` (or ``"UNDER"``)."""
    if lower_is_better:
        return "ok" if value <= target else "OVER"
    return "ok" if value >= target else "UNDER"


def emit_json(figures: dict[str, Any]) -> None:
    """Print ``figures`` as one compact JSON object: the script's last line of stdout."""
    clean = {k: _json_number(v) for k, v in figures.items()}
    sys.stdout.flush()
    print(json.dumps(clean, sort_keys=False, allow_nan=False), flush=True)


def _json_number(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isinf(value) or math.isnan(value) else round(value, 3)
    return value


def adk_location() -> str:
    """Where the measured ``adk`` package is imported from (call after importing it)."""
    module = sys.modules.get("adk")
    path = getattr(module, "__file__", None)
    return os.path.dirname(path) if path else "(adk not imported)"


def base_parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the options every bench script accepts."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats (median is kept)")
    parser.add_argument("--quick", action="store_true", help="fewer runs/repeats, for a smoke test")
    return parser


# --------------------------------------------------------------------------- the shared tool
# Every agent benchmark calls the same tool, on the adk side (wrapped by @tool)
# and in the hand-written baseline (called directly, with this spec).


async def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


BASELINE_TOOL_SPECS: list[dict[str, Any]] = [
    {
        "name": "add",
        "description": "Add two integers.",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
        },
    }
]
BASELINE_TOOLS = {"add": add}
