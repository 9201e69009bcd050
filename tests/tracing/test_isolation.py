"""Tracing off costs no import; tracing on without the extra fails clearly; global provider."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=ROOT,
    )


RUN_A_TURN = """
    import anyio
    from adk import ChatModelAgent, Runner, ScriptedModel, ToolCall, tool

    @tool
    def add(a: int, b: int) -> int:
        \"\"\"Add.\"\"\"
        return a + b

    model = ScriptedModel([ToolCall.of("add", a=1, b=2), "3"])
    runner = Runner(ChatModelAgent("assistant", model=model, tools=[add]){options})
    print(anyio.run(runner.invoke, "go").text)
"""


def test_import_adk_and_a_run_with_tracing_off_never_import_opentelemetry() -> None:
    code = (
        "import sys\n"
        + textwrap.dedent(RUN_A_TURN.format(options=""))
        + "import adk.tracing\nassert adk.Tracing is adk.tracing.Tracing\n"
        + "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["3", "[]"]


def test_tracing_without_the_extra_is_an_import_error_naming_it() -> None:
    code = """
        import sys
        sys.modules["opentelemetry"] = None  # as if the otel extra were not installed
        from adk import Runner, Tracing
        from tests.agents.helpers import Say
        for make in (lambda: Runner(Say("a"), tracing=True), lambda: Tracing()):
            try:
                make()
            except ImportError as exc:
                print(exc)
        Runner(Say("a"), tracing=False)
    """
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    expected = "tracing needs the OpenTelemetry API: install it with pip install 'adk[otel]'"
    assert done.stdout.splitlines() == [expected, expected]


def test_tracing_true_uses_the_global_tracer_provider() -> None:
    setup = textwrap.dedent(
        """
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from adk.tracing import span_tree

        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        """
    )
    turn = textwrap.dedent(RUN_A_TURN.format(options=", tracing=True"))
    # The global provider is installed after the Runner was built: read at each run.
    turn = turn.replace("print(anyio.run", "trace.set_tracer_provider(provider)\nprint(anyio.run")
    code = setup + turn + "print(span_tree(exporter.get_finished_spans()))\n"
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "3",
        "invoke_workflow assistant",
        "  invoke_agent assistant",
        "    chat scripted",
        "    execute_tool add",
        "    chat scripted",
    ]
