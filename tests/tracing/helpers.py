"""Reading finished spans back as shapes and lookups the tests can compare."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

Shape = tuple[str, tuple[Any, ...]]


def shape(spans: Sequence[ReadableSpan]) -> list[Shape]:
    """The span forest as nested (name, children) tuples, children sorted by name.

    Sorting makes parallel branches (whose start order varies) comparable.
    """
    by_parent: dict[int | None, list[ReadableSpan]] = {}
    ids = {span.context.span_id for span in spans if span.context is not None}
    for span in spans:
        parent = span.parent.span_id if span.parent is not None else None
        by_parent.setdefault(parent if parent in ids else None, []).append(span)

    def build(parent: int | None) -> tuple[Shape, ...]:
        children = by_parent.get(parent, [])
        built = [(c.name, build(c.context.span_id if c.context else None)) for c in children]
        return tuple(sorted(built))

    return list(build(None))


def named(spans: Sequence[ReadableSpan], name: str) -> list[ReadableSpan]:
    """Spans called ``name``, in start order."""
    return sorted((s for s in spans if s.name == name), key=lambda s: s.start_time or 0)


def one(spans: Sequence[ReadableSpan], name: str) -> ReadableSpan:
    """The one span called ``name``."""
    found = named(spans, name)
    assert len(found) == 1, [s.name for s in spans]
    return found[0]


def parent_of(spans: Sequence[ReadableSpan], span: ReadableSpan) -> ReadableSpan | None:
    """The finished span that is ``span``'s parent, if any."""
    if span.parent is None:
        return None
    for candidate in spans:
        if candidate.context is not None and candidate.context.span_id == span.parent.span_id:
            return candidate
    return None


def attrs(span: ReadableSpan) -> dict[str, Any]:
    """The span's attributes as a plain dict."""
    return dict(span.attributes or {})
