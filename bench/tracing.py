"""Overhead of OpenTelemetry tracing on one agent turn (bench/overhead.py's turn).

The turn (2 model calls + 1 tool call, scripted, no latency) is timed with
tracing off and with tracing on: an SDK ``TracerProvider`` with a
``BatchSpanProcessor`` and an exporter that drops every span, so what is
measured is adk's span work plus the SDK's (span objects, attributes, the
processor's queue), not an exporter's I/O. Both sides run in the same process,
in interleaved blocks of equal wall time (``overhead.balanced_blocks``).

    python bench/tracing.py            # full run (about 20 s)
    python bench/tracing.py --quick    # smoke test

Target: traced / untraced <= 1.5. The last stdout line is a JSON object:
untraced_us, traced_us, tracing_ratio, spans_per_turn.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import adk_location, base_parser, emit_json, print_table, ratio, spread, verdict
from overhead import ANSWER, balanced_blocks, build_adk_case

RATIO_TARGET = 1.5


def dropping_provider() -> tuple[Any, list[int]]:
    """An SDK TracerProvider whose batch processor hands spans to an exporter that drops them.

    The list counts the spans exported (dropped), to report spans per turn.
    """
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    exported = [0]

    class DropExporter(SpanExporter):
        """Accepts every batch and keeps nothing."""

        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            exported[0] += len(spans)
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(DropExporter()))
    return provider, exported


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="untraced turns per timed block")
    parser.add_argument("--warmup", type=int, default=200, help="untimed turns per side first")
    parser.set_defaults(repeats=21)
    args = parser.parse_args()
    if args.quick:
        args.runs, args.repeats, args.warmup = 100, 7, 50

    from adk.tracing import Tracing

    provider, exported = dropping_provider()
    untraced = build_adk_case()
    traced = build_adk_case(tracing=Tracing(tracer_provider=provider))

    async def measure() -> dict[str, list[float]]:
        for once in (untraced, traced):
            text = await once()
            if text != ANSWER:
                raise SystemExit(f"unexpected answer {text!r}")
        provider.force_flush()
        before = exported[0]
        await traced()
        provider.force_flush()
        spans_per_turn.append(exported[0] - before)
        return await balanced_blocks(
            {"untraced": untraced, "traced": traced},
            runs=args.runs,
            repeats=args.repeats,
            warmup=args.warmup,
        )

    spans_per_turn: list[int] = []
    turns = asyncio.run(measure())
    provider.shutdown()

    off_us, off_min, off_max = spread(turns["untraced"])
    on_us, on_min, on_max = spread(turns["traced"])
    paired = [ratio(a, b) for a, b in zip(turns["traced"], turns["untraced"], strict=True)]
    tracing_ratio = ratio(on_us, off_us)

    print(
        f"tracing: bench/overhead.py's turn (2 model calls + 1 tool call, scripted) with "
        f"tracing off and on (SDK TracerProvider, BatchSpanProcessor, dropping exporter; "
        f"{spans_per_turn[0]} spans per turn); {args.repeats} repeats x {args.runs} turns "
        f"after {args.warmup} warm-up turns"
    )
    print(f"adk measured: {adk_location()}")
    print()
    print_table(
        ["figure", "median", "min", "max", "target", "status"],
        [
            ["turn, tracing off (µs/run)", off_us, off_min, off_max, "", ""],
            ["turn, tracing on (µs/run)", on_us, on_min, on_max, "", ""],
            ["  per span (µs)", (on_us - off_us) / max(spans_per_turn[0], 1), "", "", "", ""],
            [
                "ratio on/off",
                tracing_ratio,
                min(paired),
                max(paired),
                f"<= {RATIO_TARGET:g}",
                verdict(tracing_ratio, RATIO_TARGET),
            ],
        ],
    )
    emit_json(
        {
            "untraced_us": off_us,
            "traced_us": on_us,
            "tracing_ratio": tracing_ratio,
            "spans_per_turn": spans_per_turn[0],
        }
    )


if __name__ == "__main__":
    main()
