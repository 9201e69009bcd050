"""How a Runner traces its runs: the :class:`Tracing` settings and the ``tracing=`` argument.

Nothing here imports OpenTelemetry at module level: ``import adk`` and a run
with tracing off never load it. The API is imported when tracing is switched
on (the Runner is built with it), so a missing extra fails there, once, with
a message naming the extra, and not in the middle of a run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer, TracerProvider

    from adk.tracing.spans import RunTracer

INSTRUMENTATION = "adk"
"""The instrumentation scope name of adk's spans (what a backend shows as the library)."""

EXTRA_HINT = "pip install 'adk[otel]'"


def require_otel() -> None:
    """Import the OpenTelemetry API, or raise ImportError naming the extra to install."""
    try:
        import opentelemetry.trace  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"tracing needs the OpenTelemetry API: install it with {EXTRA_HINT}"
        ) from exc


class Tracing:
    """OpenTelemetry tracing of a Runner's runs (``Runner(tracing=Tracing(...))``).

    - ``tracer_provider``: where spans go; None uses the global provider
      (``opentelemetry.trace.set_tracer_provider``), read at every run start so
      a provider installed after the Runner was built is honoured.
    - ``record_content``: also record message contents (prompts, answers,
      tool arguments and results) as ``gen_ai.*`` span attributes. Off by
      default: contents often hold personal data, and traces are kept and
      shared more widely than the data itself.

    ``Runner(tracing=True)`` is ``Tracing()``. See docs/tracing.md.
    """

    __slots__ = ("_provider", "_tracer", "record_content", "tracer_provider")

    def __init__(
        self, *, tracer_provider: TracerProvider | None = None, record_content: bool = False
    ) -> None:
        if not isinstance(record_content, bool):
            raise TypeError(f"record_content must be a bool, got {record_content!r}")
        require_otel()
        from opentelemetry.trace import TracerProvider

        if tracer_provider is not None and not isinstance(tracer_provider, TracerProvider):
            raise TypeError(
                "tracer_provider must be an opentelemetry TracerProvider (or None for the "
                f"global one), got {tracer_provider!r}"
            )
        self.tracer_provider = tracer_provider
        self.record_content = record_content
        self._provider: Any = None
        self._tracer: Tracer | None = None

    def __repr__(self) -> str:
        return (
            f"Tracing(tracer_provider={self.tracer_provider!r}, "
            f"record_content={self.record_content!r})"
        )

    def tracer(self) -> Tracer:
        """The OpenTelemetry tracer for the next run (cached while the provider stays the same)."""
        provider = self.tracer_provider
        if provider is None:
            from opentelemetry import trace

            provider = trace.get_tracer_provider()
        if provider is not self._provider or self._tracer is None:
            from adk import __version__

            self._tracer = provider.get_tracer(INSTRUMENTATION, __version__)
            self._provider = provider
        return self._tracer

    def run_tracer(self, link: str | None = None) -> RunTracer:
        """A tracer for one run; ``link`` is the stored trace of the run it continues."""
        from adk.tracing.spans import RunTracer

        return RunTracer(self.tracer(), self.record_content, link)


def tracing_setting(tracing: object) -> Tracing | None:
    """The Runner's ``tracing`` argument as settings: None (off), True, or a Tracing.

    TypeError for any other kind of value; ImportError (naming the extra)
    when tracing is switched on without OpenTelemetry installed.
    """
    if tracing is None or tracing is False:
        return None
    if tracing is True:
        return Tracing()
    if isinstance(tracing, Tracing):
        return tracing
    raise TypeError(f"tracing must be True, False, None or an adk.tracing.Tracing, got {tracing!r}")
