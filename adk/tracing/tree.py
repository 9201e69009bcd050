"""A readable tree of finished spans: for tests, docs and a quick look at a trace.

Works on any objects shaped like the OpenTelemetry SDK's ``ReadableSpan``
(``name``, ``context.span_id``, ``parent.span_id``, ``start_time``,
``attributes``), e.g. what an ``InMemorySpanExporter`` holds; nothing is
imported from OpenTelemetry here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


def span_tree(spans: Iterable[Any], attributes: Sequence[str] = ()) -> str:
    """The spans as an indented tree, children in start order, one line per span.

    ``attributes`` names attributes to show after each span's name (those it has).
    """
    items = sorted(spans, key=lambda span: span.start_time or 0)
    ids = {span.context.span_id for span in items}
    children: dict[int | None, list[Any]] = {}
    for span in items:
        parent = span.parent.span_id if span.parent is not None else None
        children.setdefault(parent if parent in ids else None, []).append(span)
    lines: list[str] = []

    def walk(parent: int | None, depth: int) -> None:
        for span in children.get(parent, ()):
            shown = [
                f"{name}={span.attributes[name]!r}"
                for name in attributes
                if span.attributes and name in span.attributes
            ]
            lines.append("  " * depth + span.name + (f" [{', '.join(shown)}]" if shown else ""))
            walk(span.context.span_id, depth + 1)

    walk(None, 0)
    return "\n".join(lines)
