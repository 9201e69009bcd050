"""A reference inference engine with a prefix (KV) cache, speaking the OpenAI API over HTTP.

adk's cache-aware serving layer claims to make model calls cheaper by keeping
prompts prefix-stable and sending related calls to the replica that already
holds their prefix. That claim must be measured by the *server*, the way a
real engine would see it, not by the client grading itself. This module plays
such an engine (vLLM / SGLang / llama.cpp-server with prefix caching) on
loopback, on top of :class:`~tests.support.openai_server.OpenAIServer`, so it
keeps that server's scripting (a queue of replies, then a handler; with
neither, it answers ``"ok"``).

How it sees a request
    :func:`render_prompt` renders the body the way a chat template would, in the
    order the client sent it (tools after the first system message, then every
    message, then the generation prompt ``<|assistant|>``), and :func:`tokenize`
    cuts that text into tokens: a word with the whitespace before it, or one
    punctuation character. So a 1,500-word text is ~1,500 tokens (plus one per
    punctuation mark), and JSON is token-heavy, as with real tokenizers.

The prefix cache (:class:`PrefixCache`)
    Like vLLM's automatic prefix caching: the prompt's tokens are cut into full
    blocks of ``block_tokens``; a block's key hashes its tokens *and the key of
    the block before it*, so a block only matches when the whole prefix before
    it matches. A request's cached tokens are its leading blocks found in the
    cache times ``block_tokens``, at most ``prompt_tokens - 1`` (an engine
    always computes at least one token). Once its prefill is done, all its full
    prompt blocks are inserted; when full, least-recently-used blocks are evicted, and
    a request's blocks are touched tail first so that its *tail* is evicted
    before its head (vLLM frees a finished request's blocks in reverse order for
    the same reason). Output tokens are not cached.

What it reports
    ``usage.prompt_tokens`` (real count), ``usage.prompt_tokens_details.cached_tokens``,
    ``usage.completion_tokens`` (the reply's text plus tool names and argument
    JSON, same tokenizer), and a llama.cpp-style top-level ``timings`` object
    (``cache_n``, ``prompt_n`` = tokens computed, ``predicted_n``) in a
    non-streamed answer and in the last streamed chunk. Streams send one token
    per chunk (``Reply.chunk_chars`` is ignored). Counters (:meth:`EngineServer.stats`)
    let a benchmark read what the engine actually computed.

Engine endpoints, so one class can stand in for any of the three engines
    ``GET /health``; ``POST /flush_cache`` (SGLang, also GET) and
    ``POST /reset_prefix_cache`` (vLLM), both refused with 400 while a request is
    in flight (unless ``flush_when_busy``); llama.cpp slots (``id_slot`` and
    ``cache_prompt`` in the body, ``GET /slots``, ``POST /slots/{id}?action=erase``);
    ``GET /metrics`` in Prometheus text with the vLLM, SGLang and llama.cpp names
    of KV-cache usage and the vLLM prefix-cache counters.

Holding requests, so tests synchronise on events instead of sleeping
    :meth:`EngineServer.hold` returns a :class:`Hold`: chat completions it matches
    wait in the engine's queue, before they run, until the test calls
    :meth:`Hold.release`. The test knows when one arrived (:meth:`Hold.wait_held`),
    and for as long as it is held the call is in flight for its client while the
    engine reports it as waiting, not running (``in_flight`` stays 0), like a
    request in vLLM's or SGLang's queue.

Simulated latency (``prefill_seconds_per_token`` per computed prompt token
before the first byte, ``seconds_per_output_token`` per output token) uses the
base server's interruptible wait, so :meth:`~OpenAIServer.stop` kills a replica
mid-request: the client's connection drops without an answer (or mid-stream),
which failover tests rely on. A restarted engine starts cold.

Usage::

    with start_engines(2, block_tokens=16) as (a, b):
        ...  # point clients at a.base_url / b.base_url; then read a.stats()
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio.to_thread

from tests.support.openai_server import Body, Handler, OpenAIServer, Reply, RouteResponse

logger = logging.getLogger(__name__)

MODEL_NAME = "test-model"
"""The model name in ``/metrics`` labels (the one ``/v1/models`` lists)."""

HOLD_TIMEOUT = 120.0
"""Seconds :meth:`Hold.wait_held` waits before failing the test (a hung test's safety net;
generous, since a first model call may import litellm on a loaded machine first)."""

_TOKEN = re.compile(r"\s*\w+|\s*[^\w\s]")
_SYSTEM_ROLES = ("system", "developer")
_JSON_SEPARATORS = (",", ":")

# -- tokenization --------------------------------------------------------------------------------


def tokenize(text: str) -> list[str]:
    """The tokens of ``text``: each is a word (``\\w+``) or one punctuation character,
    with the whitespace before it.

    Deterministic and cheap, and close enough to a BPE tokenizer in count for
    English prose (~1 token per word, so 1,500 words are ~1,500 tokens plus
    punctuation). Whitespace at the very end of ``text`` is not a token.
    """
    return _TOKEN.findall(text)


def render_prompt(body: Body) -> str:
    """The prompt text an engine would compute for a chat-completions ``body``.

    Like a chat template, and in the order the client sent things: ``tools``
    (one ``json.dumps(tool, separators=(",", ":"))`` per line, keys as sent, so a
    client that reorders tools or keys changes the prefix) in a
    ``<|tools|>...<|end|>`` section right after the first system message (at the
    start if there is none); then each message as ``<|role|>``, its content, its
    ``tool_calls`` (JSON as sent), its ``tool_call_id`` and ``<|end|>``; then the
    generation prompt ``<|assistant|>``, which the next turn's assistant message
    repeats, so it does not break the prefix of a growing conversation.
    """
    messages: list[Body] = list(body.get("messages") or [])
    tools: list[Any] = list(body.get("tools") or [])
    tools_text = ""
    if tools:
        lines = "\n".join(json.dumps(tool, separators=_JSON_SEPARATORS) for tool in tools)
        tools_text = f"<|tools|>\n{lines}<|end|>\n"
    parts: list[str] = []
    placed = not tools_text
    for message in messages:
        parts.append(_render_message(message))
        if not placed and message.get("role") in _SYSTEM_ROLES:
            parts.append(tools_text)
            placed = True
    if not placed:
        parts.insert(0, tools_text)
    parts.append("<|assistant|>")
    return "".join(parts)


def _render_message(message: Body) -> str:
    text = f"<|{message.get('role', 'user')}|>{_content_text(message.get('content'))}"
    if message.get("tool_calls"):
        text += json.dumps(message["tool_calls"], separators=_JSON_SEPARATORS)
    if message.get("tool_call_id"):
        text += f"<|call|>{message['tool_call_id']}"
    return text + "<|end|>\n"


def _content_text(content: Any) -> str:
    """String content as is; content parts: text parts' text, other parts as JSON."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text", ""))
            if isinstance(part, dict) and part.get("type") == "text"
            else json.dumps(part, separators=_JSON_SEPARATORS)
            for part in content
        )
    return json.dumps(content, separators=_JSON_SEPARATORS)


def completion_text(reply: Reply) -> str:
    """What the engine generates for ``reply``: its text, then each tool's name and arguments."""
    return reply.content + "".join(f" {call.name}{call.arguments}" for call in reply.tool_calls)


def token_pieces(text: str) -> list[str]:
    """``text`` cut into one-token pieces that add up to it (for streaming)."""
    starts = [match.start() for match in _TOKEN.finditer(text)]
    if not starts:
        return [text] if text else []
    starts[0] = 0
    ends = [*starts[1:], len(text)]
    return [text[start:end] for start, end in zip(starts, ends, strict=True)]


# -- the prefix cache ----------------------------------------------------------------------------


def block_keys(tokens: Sequence[str], block_tokens: int) -> list[str]:
    """The chained keys of the full blocks of ``tokens`` (a partial last block has none)."""
    keys: list[str] = []
    previous = ""
    for start in range(0, len(tokens) - block_tokens + 1, block_tokens):
        digest = hashlib.blake2b(previous.encode(), digest_size=16)
        for token in tokens[start : start + block_tokens]:
            digest.update(b"\x00" + token.encode())
        previous = digest.hexdigest()
        keys.append(previous)
    return keys


class PrefixCache:
    """An LRU set of block keys with a capacity in blocks. Not locked: the engine locks."""

    def __init__(self, capacity_blocks: int) -> None:
        self.capacity = max(0, capacity_blocks)
        self._blocks: OrderedDict[str, None] = OrderedDict()
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._blocks)

    def __contains__(self, key: object) -> bool:
        return key in self._blocks

    def match(self, keys: Sequence[str]) -> int:
        """How many leading ``keys`` are cached; touches them (the request uses them)."""
        count = 0
        for key in keys:
            if key not in self._blocks:
                break
            count += 1
        self._touch(keys[:count])
        return count

    def insert(self, keys: Sequence[str]) -> None:
        """Add (or touch) ``keys``, evicting least-recently-used blocks beyond capacity.

        Touched tail first, so a request's head outlives its tail, and a prompt
        larger than the whole cache keeps its head.
        """
        for key in reversed(keys):
            self._blocks[key] = None
            self._blocks.move_to_end(key)
            while len(self._blocks) > self.capacity:
                self._blocks.popitem(last=False)
                self.evictions += 1

    def remove(self, keys: Iterable[str]) -> int:
        """Drop ``keys``; returns how many were cached."""
        removed = 0
        for key in keys:
            if key in self._blocks:
                del self._blocks[key]
                removed += 1
        return removed

    def clear(self) -> int:
        """Drop every block; returns how many there were."""
        count = len(self._blocks)
        self._blocks.clear()
        return count

    def _touch(self, keys: Sequence[str]) -> None:
        for key in reversed(keys):
            self._blocks.move_to_end(key)


# -- the engine ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FlushRecord:
    """One attempt to flush the whole cache (``/flush_cache`` or ``/reset_prefix_cache``)."""

    endpoint: str
    time: float
    idle: bool
    """Whether no request was in flight at the time."""
    flushed: bool
    """Whether the cache was cleared (refused attempts are recorded too)."""
    in_flight: int = 0


@dataclass
class _Slot:
    """A llama.cpp slot: the blocks of the last prompt it processed."""

    keys: list[str] = field(default_factory=list)
    prompt_tokens: int = 0
    processing: int = 0
    last_used: float = 0.0


@dataclass
class _Admission:
    """What the engine decided for one request when it came in."""

    keys: list[str]
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    cache_prompt: bool
    slot: int | None


def _default_answer(body: Body) -> Reply | str:
    return "ok"


class Hold:
    """Chat completions an engine keeps waiting, before running them, until the test lets go.

    Timing a test on a slow reply ("this call surely lasts longer than that
    one") fails on a loaded machine; a hold makes the order explicit: the test
    waits until a matching request is held (:meth:`wait_held`), does what must
    happen while that call is in flight, then lets it go (:meth:`release`).
    Made by :meth:`EngineServer.hold`.
    """

    def __init__(self, matches: Callable[[Body], bool]) -> None:
        self.matches = matches
        """Which request bodies are held (called on the engine's threads: keep it quick)."""
        self.held = threading.Event()
        """Set once a matching request has arrived and is being held."""
        self._released = threading.Event()

    @property
    def released(self) -> bool:
        """Whether :meth:`release` was called (matching requests then pass at once)."""
        return self._released.is_set()

    def release(self) -> None:
        """Let the held requests run, and every later matching one through."""
        self._released.set()

    def wait_released(self) -> None:
        """Block the engine thread of a held request until :meth:`release`."""
        self._released.wait()

    async def wait_held(self) -> None:
        """Wait, without blocking the event loop, until a matching request is held.

        :data:`HOLD_TIMEOUT` is only a safety net against a hung test, nothing is
        timed with it: it raises :class:`AssertionError` when it expires.
        """
        if not await anyio.to_thread.run_sync(self.held.wait, HOLD_TIMEOUT, abandon_on_cancel=True):
            raise AssertionError(f"no matching request reached the engine in {HOLD_TIMEOUT} s")


class EngineServer(OpenAIServer):
    """An OpenAI-compatible engine with a block-hashed, LRU prefix cache (see the module doc).

    ``cache_tokens`` is the KV-cache capacity (``cache_tokens // block_tokens``
    blocks); ``prefill_seconds_per_token`` is slept per prompt token not found in
    the cache before answering, ``seconds_per_output_token`` per output token;
    ``n_slots`` llama.cpp slots are listed by ``GET /slots``; with
    ``flush_when_busy`` a flush is performed even while requests are in flight
    (then counted in :attr:`flushed_while_busy`), as a less careful engine would.
    Set :attr:`kv_usage_override` to force the KV-usage figure of ``/metrics``.
    Prompt, cached and completion token counts of a scripted :class:`Reply` are
    replaced by the engine's own.
    """

    def __init__(
        self,
        replies: Iterable[Reply | str] = (),
        *,
        handler: Handler | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        cache_tokens: int = 65536,
        block_tokens: int = 16,
        prefill_seconds_per_token: float = 0.0,
        seconds_per_output_token: float = 0.0,
        n_slots: int = 4,
        flush_when_busy: bool = False,
        name: str = "engine",
    ) -> None:
        if block_tokens < 1:
            raise ValueError("block_tokens must be at least 1")
        super().__init__(replies, handler=handler or _default_answer, host=host, port=port)
        self.name = name
        self.cache_tokens = cache_tokens
        self.block_tokens = block_tokens
        self.prefill_seconds_per_token = prefill_seconds_per_token
        self.seconds_per_output_token = seconds_per_output_token
        self.n_slots = n_slots
        self.flush_when_busy = flush_when_busy
        self.kv_usage_override: float | None = None
        """When set, the KV-cache usage fraction reported (``/metrics``, :attr:`kv_usage`)."""
        self._engine_lock = threading.Lock()
        self._idle = threading.Condition(self._engine_lock)
        self._holds: list[Hold] = []
        self._waiting = 0
        """Requests held (see :meth:`hold`): waiting, not running, like an engine's queue."""
        self._cache = PrefixCache(cache_tokens // block_tokens)
        self._slots = [_Slot() for _ in range(n_slots)]
        self._reset_counters()

    def __repr__(self) -> str:
        state = f"port={self.port}" if self._httpd is not None else "stopped"
        return f"EngineServer({self.name!r}, {state})"

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> EngineServer:
        """Bind and serve; a (re)started engine has a cold cache, like a new process."""
        if self._httpd is None:
            self.clear_cache()
        super().start()
        return self

    def __enter__(self) -> EngineServer:
        return self.start() if self._httpd is None else self

    def stop(self) -> None:
        """Stop serving; requests still held are let go, and dropped unanswered like the rest."""
        super().stop()
        with self._engine_lock:
            holds = list(self._holds)
        for hold in holds:
            hold.release()

    # -- counters ------------------------------------------------------------------------------

    def _reset_counters(self) -> None:
        self._requests = 0
        self._prompt_tokens = 0
        self._cached_tokens = 0
        self._prefill_tokens = 0
        self._completion_tokens = 0
        self._flushes: list[FlushRecord] = []
        self._slot_erases = 0
        self._in_flight = 0

    def reset_stats(self) -> None:
        """Zero the counters and forget the flush records (the cache is kept; see
        :meth:`clear_cache`). Requests in flight stay counted as in flight."""
        with self._engine_lock:
            in_flight = self._in_flight
            self._reset_counters()
            self._in_flight = in_flight

    def clear_cache(self) -> None:
        """Empty the cache and the slots' records, without counting a flush."""
        with self._engine_lock:
            self._cache.clear()
            for slot in self._slots:
                slot.keys, slot.prompt_tokens = [], 0

    @property
    def requests_total(self) -> int:
        """Chat completions answered (``requests`` is the base class's list of bodies)."""
        with self._engine_lock:
            return self._requests

    @property
    def prompt_tokens_total(self) -> int:
        """Prompt tokens of every answered request."""
        with self._engine_lock:
            return self._prompt_tokens

    @property
    def cached_tokens_total(self) -> int:
        """Prompt tokens found in the cache (not computed)."""
        with self._engine_lock:
            return self._cached_tokens

    @property
    def prefill_tokens_total(self) -> int:
        """Prompt tokens computed: ``prompt_tokens_total - cached_tokens_total``."""
        with self._engine_lock:
            return self._prefill_tokens

    @property
    def completion_tokens_total(self) -> int:
        """Output tokens generated."""
        with self._engine_lock:
            return self._completion_tokens

    @property
    def in_flight(self) -> int:
        """Requests being processed right now (from prefill to the last byte sent)."""
        with self._engine_lock:
            return self._in_flight

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no request is in flight; ``False`` on timeout.

        A client gets its last byte a moment *before* the engine's bookkeeping for
        that request ends (as with any real server), so a test that asserts on
        :attr:`in_flight` or flushes right after a response should wait for this.
        """
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout)

    @property
    def flushes(self) -> list[FlushRecord]:
        """Every whole-cache flush attempt, oldest first."""
        with self._engine_lock:
            return list(self._flushes)

    @property
    def flushed_while_busy(self) -> int:
        """Flushes performed while requests were in flight (only with ``flush_when_busy``)."""
        with self._engine_lock:
            return sum(1 for f in self._flushes if f.flushed and not f.idle)

    @property
    def slot_erases(self) -> int:
        """Successful ``POST /slots/{id}?action=erase`` calls."""
        with self._engine_lock:
            return self._slot_erases

    @property
    def cached_blocks(self) -> int:
        """Blocks in the cache now."""
        with self._engine_lock:
            return len(self._cache)

    @property
    def kv_usage(self) -> float:
        """The fraction of cache blocks in use (or :attr:`kv_usage_override`)."""
        with self._engine_lock:
            return self._kv_usage()

    def _kv_usage(self) -> float:
        if self.kv_usage_override is not None:
            return self.kv_usage_override
        return len(self._cache) / self._cache.capacity if self._cache.capacity else 0.0

    def stats(self) -> dict[str, Any]:
        """A snapshot of every counter, for benchmarks and assertions."""
        with self._engine_lock:
            prompt, cached = self._prompt_tokens, self._cached_tokens
            return {
                "name": self.name,
                "requests": self._requests,
                "prompt_tokens_total": prompt,
                "cached_tokens_total": cached,
                "prefill_tokens_total": self._prefill_tokens,
                "completion_tokens_total": self._completion_tokens,
                "cache_hit_rate": cached / prompt if prompt else 0.0,
                "in_flight": self._in_flight,
                "waiting": self._waiting,
                "flushes": len(self._flushes),
                "flushed_while_busy": sum(1 for f in self._flushes if f.flushed and not f.idle),
                "slot_erases": self._slot_erases,
                "cached_blocks": len(self._cache),
                "capacity_blocks": self._cache.capacity,
                "evictions": self._cache.evictions,
                "kv_usage": self._kv_usage(),
            }

    # -- answering -----------------------------------------------------------------------------

    def hold(self, matches: Callable[[Body], bool]) -> Hold:
        """Hold chat completions whose body ``matches`` before they run, until released.

        A held request is waiting, not running: it is not in :attr:`in_flight`
        (the engine's ``/metrics`` count it among waiting requests), and its
        reply is chosen once it is let go. :meth:`stop` lets held requests go.
        """
        hold = Hold(matches)
        with self._engine_lock:
            self._holds.append(hold)
        return hold

    def _wait_for_holds(self, body: Body) -> None:
        """Keep ``body`` waiting while a hold that matches it has not been released."""
        with self._engine_lock:
            holds = [hold for hold in self._holds if not hold.released]
        holding = [hold for hold in holds if hold.matches(body)]
        if not holding:
            return
        with self._engine_lock:
            self._waiting += 1
        try:
            for hold in holding:
                hold.held.set()
            for hold in holding:
                hold.wait_released()
        finally:
            with self._engine_lock:
                self._waiting -= 1

    @property
    def waiting(self) -> int:
        """Requests held (:meth:`hold`) right now."""
        with self._engine_lock:
            return self._waiting

    def respond(self, body: Body) -> Reply:
        """Refuse an invalid ``id_slot`` (like llama.cpp), and keep held requests waiting,
        before using up a scripted reply."""
        slot = body.get("id_slot")
        valid = slot is None or slot == -1 or (isinstance(slot, int) and 0 <= slot < self.n_slots)
        if not valid:
            return Reply.error(400, f"invalid id_slot {slot!r} (n_slots={self.n_slots})")
        self._wait_for_holds(body)
        return super().respond(body)

    @contextmanager
    def answering(self, body: Body, reply: Reply) -> Iterator[Reply]:
        """Look the prompt up, count it in flight, sleep its prefill, cache its blocks (as
        soon as they are computed, like vLLM, so a concurrent request can hit them
        during this one's decoding), sleep the decoding when unstreamed, and answer
        with the engine's usage."""
        admission = self._admit(body, reply)
        try:
            computed = admission.prompt_tokens - admission.cached_tokens
            self._work(computed * self.prefill_seconds_per_token)
            self._prefilled(admission)
            if not body.get("stream"):
                self._work(admission.completion_tokens * self.seconds_per_output_token)
            yield replace(
                reply,
                prompt_tokens=admission.prompt_tokens,
                cached_tokens=admission.cached_tokens,
                completion_tokens=admission.completion_tokens,
            )
        finally:
            self._release(admission)

    def _work(self, seconds: float) -> None:
        """Simulated compute; a stopped (killed) engine then drops the connection unanswered."""
        self.wait(seconds)
        if self.stopping:
            raise ConnectionAbortedError(f"{self.name} stopped")

    def _admit(self, body: Body, reply: Reply) -> _Admission:
        tokens = tokenize(render_prompt(body))
        keys = block_keys(tokens, self.block_tokens)
        cache_prompt = body.get("cache_prompt") is not False
        completion = len(tokenize(completion_text(reply)))
        with self._engine_lock:
            cached = 0
            if cache_prompt:
                hits = self._cache.match(keys)
                cached = max(0, min(hits * self.block_tokens, len(tokens) - 1))
            slot = self._pick_slot(body.get("id_slot"), keys)
            if slot is not None:
                self._slots[slot].processing += 1
            self._in_flight += 1
            self._requests += 1
            self._prompt_tokens += len(tokens)
            self._cached_tokens += cached
            self._prefill_tokens += len(tokens) - cached
            self._completion_tokens += completion
        logger.debug("%s: prompt=%d cached=%d slot=%s", self.name, len(tokens), cached, slot)
        return _Admission(keys, len(tokens), cached, completion, cache_prompt, slot)

    def _prefilled(self, admission: _Admission) -> None:
        """The prompt's KV exists now: cache its blocks and record them in its slot."""
        with self._engine_lock:
            if admission.cache_prompt:
                self._cache.insert(admission.keys)
            if admission.slot is not None:
                slot = self._slots[admission.slot]
                slot.keys = admission.keys if admission.cache_prompt else []
                slot.prompt_tokens = admission.prompt_tokens

    def _release(self, admission: _Admission) -> None:
        with self._engine_lock:
            if admission.slot is not None:
                slot = self._slots[admission.slot]
                slot.processing -= 1
                slot.last_used = time.monotonic()
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.notify_all()

    def _pick_slot(self, requested: Any, keys: Sequence[str]) -> int | None:
        """The requested slot, else (like llama.cpp) the idle slot sharing the longest
        prefix, else the least recently used idle one; ``None`` when all are busy
        (llama.cpp would queue the request; this engine runs it slot-less)."""
        if isinstance(requested, int) and 0 <= requested < len(self._slots):
            return requested
        idle = [i for i, slot in enumerate(self._slots) if not slot.processing]
        if not idle:
            return None

        def shared(index: int) -> int:
            count = 0
            for mine, theirs in zip(keys, self._slots[index].keys, strict=False):
                if mine != theirs:
                    break
                count += 1
            return count

        return max(idle, key=lambda i: (shared(i), -self._slots[i].last_used))

    def completion(self, body: Body, reply: Reply) -> Body:
        """The base ``chat.completion`` plus llama.cpp's ``timings``."""
        return {**super().completion(body, reply), "timings": _timings(reply)}

    def chunks(self, body: Body, reply: Reply) -> Iterator[Body]:
        """The base chunks, one token each, paced at ``seconds_per_output_token``;
        the last one carries ``timings``."""
        pending: Body | None = None
        for chunk in super().chunks(body, reply):
            if pending is not None:
                yield pending
            self._work(_output_tokens(chunk) * self.seconds_per_output_token)
            pending = chunk
        if pending is not None:
            yield {**pending, "timings": _timings(reply)}

    def pieces(self, text: str, reply: Reply) -> Iterator[str]:
        """One token per streamed piece, as an engine decodes."""
        return iter(token_pieces(text))

    # -- engine endpoints ----------------------------------------------------------------------

    def route(self, method: str, path: str, body: Body) -> RouteResponse | None:
        """``/health``, ``/flush_cache``, ``/reset_prefix_cache``, ``/slots``, ``/metrics``."""
        parts = urlsplit(path)
        route = parts.path.rstrip("/") or "/"
        if method == "GET" and route == "/health":
            return RouteResponse(200, {"status": "ok"})
        if route == "/flush_cache" or (method == "POST" and route == "/reset_prefix_cache"):
            return self._flush(route)
        if method == "GET" and route == "/slots":
            return RouteResponse(200, self._slot_states())
        if method == "POST" and route.startswith("/slots/"):
            action = parse_qs(parts.query).get("action", [""])[0]
            return self._slot_action(route.removeprefix("/slots/"), action)
        if method == "GET" and route == "/metrics":
            return RouteResponse(200, self.metrics_text(), "text/plain; version=0.0.4")
        return None

    def flush(self, endpoint: str = "/flush_cache") -> bool:
        """Flush the whole cache as the endpoint would; ``False`` when refused as busy."""
        with self._engine_lock:
            idle = self._in_flight == 0
            flushed = idle or self.flush_when_busy
            if flushed:
                self._cache.clear()
                for slot in self._slots:
                    slot.keys = []
            self._flushes.append(FlushRecord(endpoint, time.time(), idle, flushed, self._in_flight))
        logger.info("%s: %s %s", self.name, endpoint, "flushed" if flushed else "refused (busy)")
        return flushed

    def _flush(self, endpoint: str) -> RouteResponse:
        if self.flush(endpoint):
            return RouteResponse(200, {"status": "ok", "message": "Cache flushed."})
        message = (
            "Cache not flushed: there are running or waiting requests "
            f"({self.in_flight} in flight)."
        )
        return RouteResponse(400, {"error": {"message": message, "type": "invalid_request_error"}})

    def _slot_states(self) -> list[Body]:
        with self._engine_lock:
            return [
                {
                    "id": index,
                    "is_processing": slot.processing > 0,
                    "n_ctx": self.cache_tokens,
                    "n_prompt_tokens": slot.prompt_tokens,
                    "cached_blocks": sum(1 for key in slot.keys if key in self._cache),
                }
                for index, slot in enumerate(self._slots)
            ]

    def _slot_action(self, slot_id: str, action: str) -> RouteResponse:
        if not slot_id.isdigit() or int(slot_id) >= len(self._slots):
            return RouteResponse(400, {"error": {"message": f"invalid slot {slot_id!r}"}})
        if action != "erase":
            return RouteResponse(400, {"error": {"message": f"unsupported action {action!r}"}})
        index = int(slot_id)
        with self._engine_lock:
            slot = self._slots[index]
            if slot.processing:
                return RouteResponse(400, {"error": {"message": f"slot {index} is processing"}})
            erased = self._cache.remove(slot.keys) * self.block_tokens
            slot.keys, slot.prompt_tokens = [], 0
            self._slot_erases += 1
        return RouteResponse(200, {"id_slot": index, "n_erased": erased})

    def metrics_text(self) -> str:
        """The ``/metrics`` page: Prometheus text, with each engine's name for the figures."""
        with self._engine_lock:
            usage = self._kv_usage()
            running, waiting = self._in_flight, self._waiting
            queries, hits = self._prompt_tokens, self._cached_tokens
            prefill, completion, requests = (
                self._prefill_tokens,
                self._completion_tokens,
                self._requests,
            )
        label = f'{{model_name="{MODEL_NAME}"}}'
        metrics: list[tuple[str, str, str, str, float]] = [
            ("vllm:kv_cache_usage_perc", "gauge", "KV-cache usage, 1 = 100%.", label, usage),
            ("vllm:gpu_cache_usage_perc", "gauge", "KV-cache usage (old name).", label, usage),
            ("vllm:num_requests_running", "gauge", "Requests running.", label, running),
            ("vllm:num_requests_waiting", "gauge", "Requests waiting.", label, waiting),
            (
                "vllm:prefix_cache_queries_total",
                "counter",
                "Prompt tokens queried.",
                label,
                queries,
            ),
            ("vllm:prefix_cache_hits_total", "counter", "Prompt tokens hit.", label, hits),
            ("vllm:prompt_tokens_total", "counter", "Prompt tokens.", label, queries),
            ("vllm:generation_tokens_total", "counter", "Output tokens.", label, completion),
            ("sglang:token_usage", "gauge", "KV-cache token usage.", label, usage),
            ("sglang:num_running_reqs", "gauge", "Requests running.", label, running),
            ("sglang:num_queue_reqs", "gauge", "Requests queued.", label, waiting),
            (
                "sglang:cache_hit_rate",
                "gauge",
                "Prefix-cache hit rate.",
                label,
                hits / queries if queries else 0.0,
            ),
            ("llamacpp:kv_cache_usage_ratio", "gauge", "KV-cache usage, 1 = 100%.", "", usage),
            ("llamacpp:requests_processing", "gauge", "Requests processing.", "", running),
            ("llamacpp:requests_deferred", "gauge", "Requests deferred.", "", waiting),
            ("llamacpp:prompt_tokens_total", "counter", "Prompt tokens computed.", "", prefill),
            ("engine_requests_total", "counter", "Chat completions answered.", "", requests),
            ("engine_prompt_tokens_total", "counter", "Prompt tokens.", "", queries),
            ("engine_cached_tokens_total", "counter", "Prompt tokens from cache.", "", hits),
            ("engine_prefill_tokens_total", "counter", "Prompt tokens computed.", "", prefill),
        ]
        lines: list[str] = []
        for name, kind, help_text, labels, value in metrics:
            lines += [
                f"# HELP {name} {help_text}",
                f"# TYPE {name} {kind}",
                f"{name}{labels} {float(value)!r}",
            ]
        return "\n".join(lines) + "\n"


def _timings(reply: Reply) -> Body:
    """llama.cpp's ``timings`` (token counts only) from the usage the engine put on ``reply``."""
    prompt = reply.prompt_tokens or 0
    return {
        "cache_n": reply.cached_tokens,
        "prompt_n": prompt - reply.cached_tokens,
        "predicted_n": reply.completion_tokens or 0,
    }


def _output_tokens(chunk: Body) -> int:
    """Output tokens carried by one streamed chunk (content, tool names, argument pieces)."""
    count = 0
    for choice in chunk.get("choices") or []:
        delta = choice.get("delta") or {}
        count += len(tokenize(delta.get("content") or ""))
        for call in delta.get("tool_calls") or []:
            function = call.get("function") or {}
            count += len(tokenize(function.get("name") or ""))
            count += len(tokenize(function.get("arguments") or ""))
    return count


@contextmanager
def start_engines(n: int, **options: Any) -> Iterator[list[EngineServer]]:
    """Start ``n`` :class:`EngineServer` replicas on free ports; stop them all on exit.

    ``options`` go to every replica; each is named ``engine-<i>`` unless ``name``
    is given (then ``<name>-<i>``).
    """
    prefix = options.pop("name", "engine")
    with ExitStack() as stack:
        engines: list[EngineServer] = []
        for index in range(n):
            engine = EngineServer(name=f"{prefix}-{index}", **options)
            stack.callback(engine.stop)
            engines.append(engine.start())
        yield engines
