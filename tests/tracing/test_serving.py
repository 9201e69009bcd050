"""Chat spans of calls through a serving backend over HTTP carry the serving layer's figures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from adk import Backend, ChatModelAgent, ModelBadRequestError, Runner, ServingLayer
from adk.tracing import Tracing
from tests.support.openai_server import OpenAIServer, Reply, start_server
from tests.tracing.helpers import attrs, named, one

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ["asyncio"])]


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with start_server() as running:
        yield running


def runner_for(
    server: OpenAIServer, provider: TracerProvider, *, streaming: bool = False
) -> Runner:
    layer = ServingLayer(
        [Backend("local", model="test-model", kind="openai", endpoint=server.base_url)]
    )
    agent = ChatModelAgent("assistant", model="local", instruction="Be brief.")
    return Runner(
        agent, serving=layer, streaming=streaming, tracing=Tracing(tracer_provider=provider)
    )


@pytest.mark.parametrize("streaming", [False, True])
async def test_serving_figures_are_attributes_of_the_chat_span(
    server: OpenAIServer,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    streaming: bool,
) -> None:
    server.enqueue(
        Reply.text("hello there", prompt_tokens=40, completion_tokens=3, cached_tokens=32)
    )
    runner = runner_for(server, provider, streaming=streaming)
    result = await runner.invoke("hi", session_id="s-1")
    assert result.text == "hello there"
    metrics = result.serving.calls[0]
    span = one(exporter.get_finished_spans(), "chat test-model")
    found = attrs(span)
    assert found["gen_ai.operation.name"] == "chat"
    assert found["gen_ai.request.model"] == "test-model"
    assert found["gen_ai.conversation.id"] == "s-1"
    assert found["gen_ai.usage.input_tokens"] == 40
    assert found["gen_ai.usage.output_tokens"] == 3
    assert found["gen_ai.usage.cache_read.input_tokens"] == 32
    assert found["gen_ai.response.finish_reasons"] == ("stop",)
    assert found["adk.serving.backend"] == "local"
    assert found["adk.serving.replica"] == metrics.replica
    assert found["adk.serving.queue_wait"] == metrics.queue_wait
    assert found["adk.serving.ttft"] == metrics.ttft
    assert found["adk.serving.cached_tokens"] == 32
    assert found["adk.serving.cache"] == metrics.cache
    assert found["adk.serving.attempts"] == 1
    assert found.get("gen_ai.request.stream", False) is streaming
    assert span.status.status_code is StatusCode.UNSET


async def test_a_failed_http_call_has_an_error_span_with_its_serving_figures(
    server: OpenAIServer, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    server.enqueue(Reply.error(400, "prompt too long"))
    runner = runner_for(server, provider)
    with pytest.raises(ModelBadRequestError):
        await runner.invoke("hi")
    spans = exporter.get_finished_spans()
    span = one(spans, "chat test-model")
    assert span.status.status_code is StatusCode.ERROR
    assert attrs(span)["error.type"] == "ModelBadRequestError"
    assert attrs(span)["adk.serving.backend"] == "local"
    assert "adk.serving.ttft" not in attrs(span)  # a failed attempt has no first token
    (root,) = named(spans, "invoke_workflow assistant")
    assert attrs(root)["error.type"] == "ModelBadRequestError"
