"""GET /metrics: Prometheus text for the whole service.

Runs by status (every workspace, no workspace label: metrics are not a way
to learn tenants' names), queue depth, and the serving layer's figures
(:meth:`adk.serving.ServingLayer.summaries`) of the Runners in this process.
Counting runs reads every run's state record: cheap for thousands of runs,
a scrape every 15 s or more for more than that.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from adk.service.records import RunRecords, indexed_runs
from adk.service.tenancy import stored_workspaces

if TYPE_CHECKING:
    from adk.service.service import Service

STATUSES = ("queued", "running", "paused", "interrupted", "completed", "failed", "cancelled")
_SERVING = (
    ("calls", "adk_serving_calls_total", "counter", "Model calls through the serving layer."),
    ("errors", "adk_serving_errors_total", "counter", "Model calls that failed."),
    ("prompt_tokens", "adk_serving_prompt_tokens_total", "counter", "Prompt tokens sent."),
    ("cached_tokens", "adk_serving_cached_tokens_total", "counter", "Prompt tokens from a cache."),
    ("completion_tokens", "adk_serving_completion_tokens_total", "counter", "Tokens generated."),
    ("ttft_p50", "adk_serving_ttft_p50_seconds", "gauge", "Median time to first token."),
    ("ttft_p95", "adk_serving_ttft_p95_seconds", "gauge", "95th percentile time to first token."),
)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


async def run_counts(service: Service) -> dict[str, int]:
    """Runs per status over every workspace of the store."""
    counts = dict.fromkeys(STATUSES, 0)
    for workspace in sorted(
        set(service.workspaces()) | set(await stored_workspaces(service.store))
    ):
        store = service.store_of(workspace)
        for run_id, _ in await indexed_runs(store):
            state = await RunRecords(store, run_id).state()
            if state is not None and state.status in counts:
                counts[state.status] += 1
    return counts


async def render(service: Service) -> str:
    """The metrics page."""
    lines = ["# HELP adk_runs Runs in the store by status.", "# TYPE adk_runs gauge"]
    for status, count in (await run_counts(service)).items():
        lines.append(f'adk_runs{{status="{status}"}} {count}')
    lines += [
        "# HELP adk_queue_depth Runs submitted and not finished.",
        "# TYPE adk_queue_depth gauge",
        f"adk_queue_depth {await service.queue.depth()}",
    ]
    layers = {id(runner.serving): runner.serving for runner in service.runners()}
    summaries = {}
    for layer in layers.values():
        summaries.update(layer.summaries())
    for field, name, kind, text in _SERVING:
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
        for backend, summary in sorted(summaries.items()):
            value = getattr(summary, field)
            if value is not None:
                lines.append(f'{name}{{backend="{_label(backend)}"}} {value}')
    return "\n".join(lines) + "\n"
