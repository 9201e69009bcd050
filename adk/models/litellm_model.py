"""LiteLLMModel: any provider litellm supports, as a ChatModel, with bounded retries.

litellm is imported on the first call (in a worker thread, so the event loop
keeps running), never when this module is imported: it takes seconds. Retries
are adk's own (:class:`RetryPolicy`); litellm's and the openai SDK's are turned
off, so the number of HTTP attempts is exactly ``max_retries + 1``.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from adk.content import unsupported_input
from adk.errors import (
    ContextWindowExceededError,
    ModelAuthenticationError,
    ModelBadRequestError,
    ModelConnectionError,
    ModelError,
    ModelRateLimitError,
    ModelServerError,
    ModelTimeoutError,
)
from adk.models._openai_format import (
    chunk_from_litellm,
    mark_cache_breakpoint,
    messages_to_openai,
    response_from_litellm,
    tools_to_openai,
)
from adk.models._openai_parts import accepted_input
from adk.models.base import ModelChunk, ModelRequest, ModelResponse

logger = logging.getLogger("adk.models.litellm")

_litellm: Any = None
_skip_mcp = False

_T = TypeVar("_T")
_END: Any = object()
"""What ``anext`` returns at the end of a stream."""


class _AttemptTimedOut(TimeoutError):
    """An attempt passed the model's ``timeout`` (adk's own deadline, not the HTTP client's)."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently a failed model call is retried.

    Rate limits (429), server errors (5xx), timeouts and connection errors are
    retried up to ``max_retries`` times; other errors are raised at once.
    Before retry ``n`` (1-based) the call waits
    ``min(max_backoff, initial_backoff * multiplier ** (n - 1))`` seconds,
    shortened by a random fraction of up to ``jitter`` (so concurrent callers
    spread out). A ``Retry-After`` (or ``retry-after-ms``) header from the
    provider replaces that wait, capped by ``max_backoff``.
    """

    max_retries: int = 3
    initial_backoff: float = 0.5
    max_backoff: float = 8.0
    multiplier: float = 2.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("max_retries must be at least 0")
        if self.initial_backoff < 0 or self.max_backoff < 0:
            raise ValueError("backoff times must not be negative")
        if self.multiplier < 1:
            raise ValueError("multiplier must be at least 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be between 0 and 1")

    @property
    def attempts(self) -> int:
        """The most attempts one call makes: ``max_retries + 1``."""
        return self.max_retries + 1

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_backoff)
        exponent = min(max(attempt - 1, 0), 64)
        delay = min(self.max_backoff, self.initial_backoff * self.multiplier**exponent)
        return delay * (1.0 - self.jitter * random.random())


class LiteLLMModel:
    """A :class:`~adk.ChatModel` calling ``litellm.acompletion``.

    - ``model``: a litellm model id such as ``"openai/gpt-4o-mini"``.
    - ``retry``: the :class:`RetryPolicy` (default: ``RetryPolicy()``).
    - ``timeout``: seconds per attempt. :meth:`generate` must have the whole
      answer within it; a stream its first chunk, then each next chunk
      within ``timeout`` seconds of the one before (a long answer that keeps
      coming is not cut off, a stalled or trickling one is). A timeout is a
      :class:`~adk.ModelTimeoutError`, retried like other timeouts. It is
      adk's own deadline, because the HTTP client's timeout restarts with
      every byte read. ``None``: no deadline of adk's (litellm's defaults).
    - ``params``: default call parameters (``temperature``, ``api_base``,
      ``api_key``...); a request's own ``params`` override them.
    - ``accepts``: the kinds of input besides text the model takes (``"image"``,
      ``"audio"``, ``"file"``). By default litellm's model map says (its
      ``supports_vision``, ``supports_audio_input``, ``supports_pdf_input``), and a
      model it does not know is assumed to take everything. A request with a
      part the model cannot take fails before the call with
      :class:`~adk.ModelBadRequestError` (docs/multimodal.md).

    Failures are raised as :class:`~adk.ModelError` subclasses carrying the
    HTTP status (if any), chained to litellm's exception.
    """

    def __init__(
        self,
        model: str,
        *,
        retry: RetryPolicy | None = None,
        timeout: float | None = 60,
        accepts: Iterable[str] | None = None,
        **params: Any,
    ) -> None:
        if not model:
            raise ValueError("LiteLLMModel needs a model id such as 'openai/gpt-4o-mini'")
        if timeout is not None and not timeout > 0:  # also refuses NaN
            raise ValueError(f"timeout must be positive seconds or None, got {timeout!r}")
        self.model = model
        self.retry = retry if retry is not None else RetryPolicy()
        self.timeout = timeout
        self.params: dict[str, Any] = params
        self.accepts: frozenset[str] | None = None if accepts is None else frozenset(accepts)
        """The kinds of non-text input the model takes; None: as litellm's model map says."""
        self._supports: dict[str, bool] = {}

    def __repr__(self) -> str:
        return f"LiteLLMModel({self.model!r})"

    async def generate(self, request: ModelRequest) -> ModelResponse:
        """Return the complete answer to ``request``, retrying transient failures."""
        litellm = await _load_litellm()
        kwargs = self._call_kwargs(request, stream=False)
        attempt = 0
        while True:
            attempt += 1
            try:
                raw = await self._before(self._deadline(), litellm.acompletion(**kwargs))
            except Exception as exc:
                await self._after_failure(exc, attempt)
                continue
            return response_from_litellm(raw, self.model)

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelChunk]:
        """Yield the answer to ``request`` chunk by chunk.

        A failure before the first chunk is retried like in :meth:`generate`;
        once a chunk has been yielded, a failure is raised (a retry would
        repeat text the caller already has). The first chunk from the
        provider must come within ``timeout`` seconds of the attempt's start,
        each next one within ``timeout`` seconds of the one before. The last
        chunks carry the finish reason and the usage.
        """
        litellm = await _load_litellm()
        kwargs = self._call_kwargs(request, stream=True)
        attempt = 0
        yielded = 0
        while True:
            attempt += 1
            response: Any = None
            failure: Exception | None = None
            try:
                deadline, awaited = self._deadline(), "first chunk"
                response = await self._before(deadline, litellm.acompletion(**kwargs), awaited)
                chunks = aiter(response)
                while True:
                    raw = await self._before(deadline, anext(chunks, _END), awaited)
                    if raw is _END:
                        break
                    deadline, awaited = self._deadline(), "next chunk"
                    chunk = chunk_from_litellm(raw, self.model)
                    if chunk is not None:
                        yielded += 1
                        yield chunk
            except Exception as exc:
                failure = exc
            finally:
                if response is not None and hasattr(response, "aclose"):
                    await response.aclose()
            if failure is None:
                return
            if yielded:
                raise self._error(failure, attempt, f"after {yielded} chunks") from failure
            await self._after_failure(failure, attempt)

    def _deadline(self) -> float:
        """When an attempt (or a stream's wait for its next chunk) starting now times out."""
        return math.inf if self.timeout is None else anyio.current_time() + self.timeout

    async def _before(self, deadline: float, step: Awaitable[_T], what: str = "answer") -> _T:
        """Await ``step``; :class:`_AttemptTimedOut` if it has not finished by ``deadline``.

        ``what`` names what did not arrive, for the error message.
        """
        with anyio.CancelScope(deadline=deadline) as scope:
            try:
                return await step
            except Exception as exc:
                if scope.cancel_called:  # cancellation turned into another error on its way out
                    raise _AttemptTimedOut(f"no {what} within {self.timeout:g} s") from exc
                raise
        raise _AttemptTimedOut(f"no {what} within {self.timeout:g} s")

    def _call_kwargs(self, request: ModelRequest, *, stream: bool) -> dict[str, Any]:
        """The keyword arguments of ``litellm.acompletion`` for ``request``."""
        kwargs: dict[str, Any] = {}
        if self.timeout is not None:
            kwargs["timeout"] = self.timeout
        kwargs.update(self.params)
        kwargs.update(request.params)
        kwargs.pop("stream", None)
        stream_options = kwargs.pop("stream_options", None)
        kwargs["model"] = self.model
        for message in request.messages:
            if message.parts:
                self._check_input(request)
                break
        kwargs["messages"] = messages_to_openai(request.messages)
        for index in request.cache_breakpoints:
            mark_cache_breakpoint(kwargs["messages"][index])
        if request.tools:
            kwargs["tools"] = tools_to_openai(request.tools)
        if stream:
            kwargs["stream"] = True
            kwargs["stream_options"] = {**(stream_options or {}), "include_usage": True}
        # Our RetryPolicy is the only retry loop: litellm's and the openai SDK's are off.
        kwargs["num_retries"] = 0
        kwargs["max_retries"] = 0
        if _skip_mcp:
            kwargs["_skip_mcp_handler"] = True
        return kwargs

    def _check_input(self, request: ModelRequest) -> None:
        """Refuse, before the call, a part the model cannot take (images for a text model)."""
        accepts = self.accepts
        if accepts is None:
            accepts = accepted_input(_litellm, self.model, self._supports)
        problem = unsupported_input(request.messages, accepts, self.model)
        if problem is not None:
            source = "as declared" if self.accepts is not None else "by litellm's model map"
            raise ModelBadRequestError(
                f"{problem} ({source}; LiteLLMModel(..., accepts=[...]) overrides it)"
            )

    async def _after_failure(self, exc: Exception, attempt: int) -> None:
        """Raise the adk error for ``exc``, or wait before the next attempt if it is retryable."""
        error = self._error(exc, attempt)
        if not error.retryable or attempt >= self.retry.attempts:
            raise error from exc
        delay = self.retry.backoff(attempt, _retry_after(exc))
        logger.warning("%s; retrying in %.2fs", error, delay)
        await anyio.sleep(delay)

    def _error(self, exc: Exception, attempt: int, note: str = "") -> ModelError:
        """The adk error for litellm's ``exc``; other exceptions are re-raised unchanged."""
        kind, status = _classify(exc)
        if kind is None:
            raise exc
        failure = _unwrap(exc)
        label = str(status) if status is not None else _LABELS.get(kind, "error")
        where = f"attempt {attempt}/{self.retry.attempts}" + (f" ({note})" if note else "")
        detail = " ".join(str(failure).split())
        if len(detail) > 600:
            detail = detail[:600] + "..."
        root = _root_cause(failure) if kind in _LABELS or kind is ModelError else None
        if root is not None and str(root) and str(root) not in detail:
            detail += f" [caused by {type(root).__name__}: {' '.join(str(root).split())[:300]}]"
        return kind(f"model {self.model!r} at {where}: {label} {detail}", status_code=status)


_LABELS: dict[type[ModelError], str] = {
    ModelTimeoutError: "timeout:",
    ModelConnectionError: "connection failed:",
}


async def _load_litellm() -> Any:
    """The litellm module, imported (once, off the event loop) on first use."""
    if _litellm is None:
        await anyio.to_thread.run_sync(_import_litellm)
    return _litellm


def _import_litellm() -> None:
    """Import litellm, configured for adk: no network at import, no telemetry, no MCP hook."""
    global _litellm, _skip_mcp
    if _litellm is not None:
        return
    # Read by litellm at import: unless it is "True", litellm downloads its model cost map
    # (with retries), which stalls the first call for many seconds on a machine without
    # internet. adk uses the map bundled with litellm unless the user set the variable
    # (LITELLM_LOCAL_MODEL_COST_MAP=False opts in to the download; see docs/models.md).
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    if hasattr(litellm, "telemetry"):
        litellm.telemetry = False
    # Where litellm has an MCP gateway, any call with tools imports its proxy code (which
    # needs the optional `mcp` package); adk only sends plain function tools, so skip it.
    handler = importlib.util.find_spec("litellm.responses.mcp.chat_completions_handler")
    _skip_mcp = handler is not None
    _litellm = litellm


def _classify(exc: BaseException) -> tuple[type[ModelError] | None, int | None]:
    """The adk error class and HTTP status for an exception from litellm.

    ``(None, None)`` for exceptions that did not come from litellm, the openai
    SDK or httpx (e.g. bugs), which are not wrapped.
    """
    import httpx
    import openai

    exceptions = _litellm.exceptions if _litellm is not None else None
    exc = _unwrap(exc)
    if isinstance(exc, _AttemptTimedOut):
        return ModelTimeoutError, None
    if not (
        isinstance(exc, openai.OpenAIError | httpx.HTTPError)
        or type(exc).__module__.startswith("litellm")
    ):
        return None, None
    status = getattr(exc, "status_code", None)
    status = status if isinstance(status, int) else None
    context_window = getattr(exceptions, "ContextWindowExceededError", None)
    if context_window is not None and isinstance(exc, context_window):
        return ContextWindowExceededError, status or 400
    if isinstance(exc, openai.RateLimitError):
        return ModelRateLimitError, 429
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return ModelAuthenticationError, status
    if isinstance(
        exc, openai.BadRequestError | openai.NotFoundError | openai.UnprocessableEntityError
    ):
        return ModelBadRequestError, status
    if _missing_credentials(exc):
        # The provider SDK refused to build a client; litellm reports that as a 500.
        return ModelAuthenticationError, None
    # litellm reports a refused connection as a 500 and wraps odd failures as "connection
    # errors": what actually happened is the network exception in the chain, if any.
    network = _network_cause(exc)
    if network is not None:
        return network, None
    if isinstance(exc, openai.APITimeoutError):
        return ModelTimeoutError, None
    if isinstance(exc, openai.APIConnectionError | httpx.TransportError):
        return ModelError, None
    if status is None:
        return ModelError, None
    if status == 429:
        return ModelRateLimitError, status
    if status in (401, 403):
        return ModelAuthenticationError, status
    if status == 408:
        return ModelTimeoutError, status
    if status >= 500:
        return ModelServerError, status
    return ModelBadRequestError, status


_CREDENTIAL_HINTS = ("missing credentials", "api_key client option must be set", "no api key")


def _missing_credentials(exc: BaseException) -> bool:
    """True if ``exc`` (or its cause) says no API key was configured."""
    return any(hint in str(cause).lower() for cause in _chain(exc) for hint in _CREDENTIAL_HINTS)


def _unwrap(exc: BaseException) -> BaseException:
    """The failure inside litellm's ``MidStreamFallbackError``, else ``exc`` itself."""
    fallback = getattr(getattr(_litellm, "exceptions", None), "MidStreamFallbackError", None)
    original = getattr(exc, "original_exception", None)
    if fallback is not None and isinstance(exc, fallback) and isinstance(original, Exception):
        return original
    return exc


def _network_cause(exc: BaseException) -> type[ModelError] | None:
    """Timeout or connection error if a network failure caused ``exc``."""
    import httpx
    import openai

    for cause in _chain(exc):
        if isinstance(cause, httpx.TimeoutException | openai.APITimeoutError | TimeoutError):
            return ModelTimeoutError
        if isinstance(cause, httpx.TransportError | OSError):
            return ModelConnectionError
        if type(cause).__module__.split(".")[0] in ("aiohttp", "httpcore"):
            return ModelConnectionError
    return None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and its causes/contexts, without cycles."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _root_cause(exc: BaseException) -> BaseException | None:
    causes = list(_chain(exc))
    return causes[-1] if len(causes) > 1 else None


def _retry_after(exc: BaseException) -> float | None:
    """Seconds the provider asked us to wait (``retry-after-ms`` or ``Retry-After``), if any."""
    for source in (
        getattr(exc, "litellm_response_headers", None),
        getattr(exc, "headers", None),
        getattr(getattr(exc, "response", None), "headers", None),
    ):
        if not source:
            continue
        try:
            headers = {str(key).lower(): str(value) for key, value in source.items()}
        except (AttributeError, TypeError):
            continue
        try:
            if "retry-after-ms" in headers:
                return float(headers["retry-after-ms"]) / 1000.0
            if "retry-after" in headers:
                return _parse_retry_after(headers["retry-after"])
        except ValueError:
            continue
    return None


def _parse_retry_after(value: str) -> float:
    """A ``Retry-After`` value, seconds or an HTTP date, as seconds from now."""
    try:
        return float(value)
    except ValueError:
        import email.utils  # rarely needed; costs ~10 ms at import

        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
