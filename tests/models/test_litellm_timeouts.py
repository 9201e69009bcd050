"""LiteLLMModel's ``timeout`` bounds an attempt, not a socket read: real servers that drip bytes.

The bounds asserted on elapsed time are generous (several seconds of slack);
an implementation that only has the HTTP client's per-read timeout takes 20 s
or more on these servers, so it fails them clearly.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from adk import LiteLLMModel, Message, ModelRequest, ModelTimeoutError, RetryPolicy
from adk.models.base import ModelChunk
from tests.support.drip_server import (
    DripServer,
    completion_response,
    stream_burst,
    stream_response,
)
from tests.support.openai_server import OpenAIServer, Reply

pytestmark = pytest.mark.filterwarnings(
    # litellm's own pydantic models, built on first use
    "ignore:Item .* is using the `ReadOnly` qualifier:UserWarning"
)

ONE_RETRY = RetryPolicy(max_retries=1, initial_backoff=0.01, max_backoff=0.05)
PIECES = ["Hello", " there,", " this", " answer", " drips."]


def model_for(base_url: str, *, timeout: float, retry: RetryPolicy = ONE_RETRY) -> LiteLLMModel:
    return LiteLLMModel(
        "openai/test-model", api_base=base_url, api_key="test", timeout=timeout, retry=retry
    )


def ask() -> ModelRequest:
    return ModelRequest(messages=[Message.user("hi")])


@pytest.fixture
async def litellm_imported() -> None:
    """Import litellm before the clock starts (it takes seconds the first time)."""
    from adk.models.litellm_model import _load_litellm

    await _load_litellm()


@pytest.mark.anyio
@pytest.mark.usefixtures("litellm_imported")
async def test_an_answer_dripping_one_byte_a_second_times_out_per_attempt_and_is_retried() -> None:
    with DripServer(completion_response("a late answer"), interval=1, duration=20) as server:
        model = model_for(server.base_url, timeout=2)

        started = time.monotonic()
        with pytest.raises(ModelTimeoutError) as caught:
            await model.generate(ask())
        elapsed = time.monotonic() - started

        assert elapsed < 8  # two attempts of 2 s; per-read timeouts alone take 20 s or more
        assert server.requests == 2  # timed out, retried once, timed out again
    assert str(caught.value).startswith("model 'openai/test-model' at attempt 2/2: timeout:")
    assert str(caught.value).endswith("timeout: no answer within 2 s")
    assert caught.value.retryable and caught.value.status_code is None


@pytest.mark.anyio
@pytest.mark.usefixtures("litellm_imported")
async def test_a_stream_whose_first_chunk_drips_times_out_per_attempt_and_is_retried() -> None:
    # The response head arrives at once; the events then come one byte a second.
    response = stream_response(PIECES)
    with DripServer(response, burst=stream_burst(PIECES, 0), duration=20) as server:
        model = model_for(server.base_url, timeout=2)
        received: list[ModelChunk] = []

        started = time.monotonic()
        with pytest.raises(ModelTimeoutError) as caught:
            async for chunk in model.stream(ask()):
                received.append(chunk)
        elapsed = time.monotonic() - started

        assert elapsed < 8
        assert server.requests == 2
    assert received == []
    assert "attempt 2/2: timeout: no first chunk within 2 s" in str(caught.value)


@pytest.mark.anyio
@pytest.mark.usefixtures("litellm_imported")
async def test_a_stream_that_drips_after_its_first_chunk_times_out_without_a_retry() -> None:
    # Role chunk and "Hello" arrive at once; the rest comes one byte a second.
    response = stream_response(PIECES)
    with DripServer(response, burst=stream_burst(PIECES, 2), duration=20) as server:
        model = model_for(server.base_url, timeout=2)
        received: list[ModelChunk] = []

        started = time.monotonic()
        with pytest.raises(ModelTimeoutError) as caught:
            async for chunk in model.stream(ask()):
                received.append(chunk)
        elapsed = time.monotonic() - started

        assert elapsed < 8
        assert server.requests == 1  # text already reached the caller: no retry
    assert [chunk.content for chunk in received] == ["Hello"]
    assert "attempt 1/2 (after 1 chunks): timeout: no next chunk within 2 s" in str(caught.value)


class SteadyServer(OpenAIServer):
    """Streams each piece a fixed time after the previous one, like a model decoding steadily."""

    def __init__(self, gap: float) -> None:
        super().__init__()
        self.gap = gap

    def pieces(self, text: str, reply: Reply) -> Iterator[str]:
        for piece in super().pieces(text, reply):
            self.wait(self.gap)
            yield piece


@pytest.mark.anyio
@pytest.mark.usefixtures("litellm_imported")
async def test_a_steady_stream_longer_than_the_timeout_is_not_cut_off() -> None:
    text = "one two three four five six seven eight nine ten eleven twelve"
    with SteadyServer(gap=0.2) as server:
        server.enqueue(Reply.text(text, chunk_chars=5))  # 13 pieces: about 2.6 s in all
        model = model_for(server.base_url, timeout=1)

        started = time.monotonic()
        chunks = [chunk async for chunk in model.stream(ask())]
        elapsed = time.monotonic() - started

    assert "".join(chunk.content for chunk in chunks) == text
    assert elapsed > 1  # the stream as a whole did outlast the timeout
    assert len(server.requests) == 1


@pytest.mark.parametrize("timeout", [0, -1, float("nan")])
def test_a_timeout_that_is_not_positive_is_refused(timeout: float) -> None:
    with pytest.raises(ValueError, match="timeout must be positive seconds or None, got"):
        LiteLLMModel("openai/test-model", timeout=timeout)
