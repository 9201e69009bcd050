"""OpenTelemetry tracing of adk runs, following the GenAI semantic conventions.

``Runner(agent, tracing=True)`` (the global tracer provider) or
``Runner(agent, tracing=Tracing(tracer_provider=..., record_content=False))``
gives every run a trace: an ``invoke_workflow {root}`` span, an
``invoke_agent {agent}`` span per agent invocation, ``chat {model}`` per
model call and ``execute_tool {tool}`` per tool call, nested as the agent
tree runs (parallel branches and agent tools included), with ``gen_ai.*``
attributes and the serving layer's figures (``adk.serving.*``). A resumed run
links to the trace of the execution that paused. Message contents are
recorded only with ``record_content=True``.

Tracing is off by default and then costs one ``None`` check per hook;
OpenTelemetry (the ``otel`` extra: ``pip install 'adk[otel]'``) is imported
only when tracing is switched on. See docs/tracing.md.
"""

from __future__ import annotations

from adk.tracing.config import Tracing
from adk.tracing.tree import span_tree

__all__ = ["Tracing", "span_tree"]
