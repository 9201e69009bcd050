"""The workload of bench/context.py: texts, tools, scripted LLM, windowed engine, naive strategies.

Sizes are in the *engine's* tokens (tests/support/engine_server.py's
tokenizer: a word or one punctuation mark with the whitespace before it), so
"a 2,500-token tool result" is what the engine computes, whatever adk
estimates. Everything is deterministic: tool-result sizes come from a seeded
RNG, texts from seeded prose, so every strategy and repeat sees the same
results.
"""

from __future__ import annotations

import json
import random
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from adk import Message, Middleware, ModelRequest, ModelResponse
from adk.agents.middleware import ModelCallNext
from adk.models._openai_format import message_to_openai, tools_to_openai
from adk.models.base import ToolSpec
from tests.support.engine_server import EngineServer, render_prompt, tokenize
from tests.support.openai_server import Body, Reply

SUMMARY_PREFIX = "Summarise the conversation"
"""How a summary request's system prompt starts (adk's ModelSummariser's, and naive-summarise's)."""

SYSTEM_TOKENS = 1_000
SUMMARY_TOKENS = 150
RESULT_TOKENS = (1_000, 4_000)
TOOL_NAMES = ("read_record", "fetch_log", "query_ledger")
_ITEM = re.compile(r"\bitem\W{0,6}(\d+)", re.IGNORECASE)

_WORDS = (
    "the", "account", "ledger", "entry", "invoice", "payment", "vendor", "contract", "balance",
    "period", "review", "control", "approval", "amount", "currency", "record", "report", "note",
    "quarter", "policy", "audit", "finding", "evidence", "sample", "journal", "reconciled",
    "posted", "approved", "pending", "missing", "matched", "flagged", "late", "early", "large",
    "small", "manual", "automatic", "monthly", "annual", "a", "an", "of", "to", "in", "for",
    "with", "on", "by", "from", "at", "as", "was", "is", "were", "has", "had", "no", "one", "two",
    "three", "each", "every", "some", "most", "before", "after", "between", "under", "over",
)  # fmt: skip

_SYSTEM_HEAD = (
    "You are the audit assistant of a finance team. You work through the audit queue one item "
    "at a time: for each item, call the tool the queue names for it, read what it returns, and "
    "record any finding. Rules: never skip an item; never call a tool for an item you already "
    "processed; quote amounts exactly as the records give them; when a record and the ledger "
    "disagree, say which one and by how much; when evidence is missing, say what is missing. "
    "Keep your notes short. When the whole queue is done, answer with a one-line summary. "
    "Reference notes from the audit manual follow."
)


def prose(seed: str, tokens: int) -> str:
    """Deterministic sentences of exactly ``tokens`` engine tokens (seeded by ``seed``)."""
    rng = random.Random(seed)
    pieces: list[str] = []
    while len(pieces) < tokens:
        words = [rng.choice(_WORDS) for _ in range(rng.randint(8, 16))]
        words[0] = words[0].capitalize()
        pieces += [" " + word for word in words] + ["."]
    return "".join(pieces[:tokens])


def engine_tokens(text: str) -> int:
    """Tokens of ``text`` in the engine's tokenizer."""
    return len(tokenize(text))


_COUNTS: dict[tuple[str, str, str, str], int] = {}


def message_tokens(message: Message) -> int:
    """Engine tokens of one rendered message (remembered: messages recur in every prompt)."""
    calls = json.dumps([c.model_dump() for c in message.tool_calls]) if message.tool_calls else ""
    key = (message.role, message.content, message.tool_call_id or "", calls)
    count = _COUNTS.get(key)
    if count is None:
        count = engine_tokens(render_prompt({"messages": [message_to_openai(message)]}))
        count -= engine_tokens("<|assistant|>")
        if len(_COUNTS) > 50_000:
            _COUNTS.clear()
        _COUNTS[key] = count
    return count


def engine_counter(messages: Sequence[Message], specs: Sequence[ToolSpec]) -> int:
    """A prompt's tokens as the engine renders and counts them (a ContextPolicy ``counter``).

    Each message is rendered and counted once (then remembered): the engine's
    template renders messages independently, so the sum is the whole prompt's
    count, plus the tool specs and the generation prompt.
    """
    tools = engine_tokens(render_prompt({"messages": [], "tools": tools_to_openai(specs)}))
    return tools + sum(message_tokens(m) for m in messages)


# --------------------------------------------------------------------------- workload


@dataclass(frozen=True)
class Workload:
    """The loop's texts: system prompt, task, and every tool result (sized in engine tokens)."""

    iterations: int
    system_prompt: str
    task: str
    results: tuple[str, ...]
    sizes: tuple[int, ...]
    final_prefix: str = "Audit complete"

    @classmethod
    def build(cls, iterations: int, seed: int = 13) -> Workload:
        """``iterations`` results of 1,000-4,000 tokens each (sizes from ``seed``)."""
        rng = random.Random(seed)
        sizes = tuple(rng.randint(*RESULT_TOKENS) for _ in range(iterations))
        head = _SYSTEM_HEAD + "\n\n"
        system = head + prose(f"system-{seed}", SYSTEM_TOKENS - engine_tokens(head))
        results = []
        for index, size in enumerate(sizes, 1):
            name = TOOL_NAMES[(index - 1) % len(TOOL_NAMES)]
            header = f"ITEM {index} of {iterations} ({name}):"
            body = prose(f"result-{seed}-{index}", size - engine_tokens(header))
            results.append(header + body)
        task = f"Work through the audit queue: {iterations} entries, in order, starting now."
        return cls(iterations, system, task, tuple(results), sizes)

    def result_tokens(self, items: int) -> int:
        """Engine tokens of the first ``items`` results."""
        return sum(self.sizes[:items])

    def summary(self, done: int) -> str:
        """The scripted summary of a conversation that processed items up to ``done``."""
        head = f"Summary: ITEM 1 to ITEM {done} of {self.iterations} are done; findings so far:"
        return head + prose(f"summary-{done}", SUMMARY_TOKENS - engine_tokens(head))

    def tools(self, progress: dict[str, int]) -> list[Callable[..., Any]]:
        """The three tools; each records the highest item it served in ``progress``."""

        def serve(item: int) -> str:
            if not 1 <= item <= self.iterations:
                return f"Error: no item {item} in the queue"
            progress["items"] = max(progress["items"], item)
            return self.results[item - 1]

        def read_record(item: int) -> str:
            """Read the audit record of one queue entry: amounts, dates, approvals.

            Args:
                item: the queue entry's number.
            """
            return serve(item)

        def fetch_log(item: int) -> str:
            """Fetch the change log of one queue entry: who changed what, and when.

            Args:
                item: the queue entry's number.
            """
            return serve(item)

        def query_ledger(item: int) -> str:
            """Query the general ledger for the postings of one queue entry.

            Args:
                item: the queue entry's number.
            """
            return serve(item)

        return [read_record, fetch_log, query_ledger]


def scripted_llm(workload: Workload) -> Callable[[Body], Reply]:
    """The engine's LLM: a summary when asked for one, else the next item's tool call.

    Its progress is the highest item number in the prompt (tool-call
    arguments, results, a summary): what the strategy let it see.
    """

    def answer(body: Body) -> Reply:
        messages = body.get("messages") or []
        text = "\n".join(
            str(m.get("content") or "") + json.dumps(m.get("tool_calls") or []) for m in messages
        )
        done = max((int(found) for found in _ITEM.findall(text)), default=0)
        system = str(messages[0].get("content") or "") if messages else ""
        if system.startswith(SUMMARY_PREFIX):
            return Reply.text(workload.summary(done))
        if done >= workload.iterations:
            return Reply.text(f"{workload.final_prefix}: {done} entries processed.")
        item = done + 1
        return Reply.call(TOOL_NAMES[(item - 1) % len(TOOL_NAMES)], {"item": item})

    return answer


# --------------------------------------------------------------------------- engine


@dataclass(frozen=True)
class CallRecord:
    """One answered chat completion, as the engine counted it."""

    prompt: int
    cached: int
    summary: bool


class WindowedEngine(EngineServer):
    """The reference engine with a context limit: a longer prompt is refused, uncomputed.

    Like vLLM's ``max_model_len``: the request fails with 400 and OpenAI's
    ``context_length_exceeded`` code (adk raises ``ContextWindowExceededError``),
    and no prompt token is counted. Keeps a record per answered call.
    """

    def __init__(self, *, max_context: int, **options: Any) -> None:
        super().__init__(**options)
        self.max_context = max_context
        self.records: list[CallRecord] = []
        self.rejected = 0
        self.max_attempted = 0
        self._records_lock = threading.Lock()

    def respond(self, body: Body) -> Reply:
        """Refuse a prompt over ``max_context`` tokens; otherwise answer as usual."""
        tokens = engine_tokens(render_prompt(body))
        with self._records_lock:
            self.max_attempted = max(self.max_attempted, tokens)
            if tokens > self.max_context:
                self.rejected += 1
        if tokens > self.max_context:
            return Reply.error(
                400,
                f"This model's maximum context length is {self.max_context} tokens. However, "
                f"your messages resulted in {tokens} tokens. Please reduce the length.",
                code="context_length_exceeded",
            )
        return super().respond(body)

    @contextmanager
    def answering(self, body: Body, reply: Reply) -> Iterator[Reply]:
        """The base engine's answer, recorded with its prompt and cached tokens."""
        with super().answering(body, reply) as final:
            messages = body.get("messages") or [{}]
            summary = str(messages[0].get("content") or "").startswith(SUMMARY_PREFIX)
            with self._records_lock:
                self.records.append(
                    CallRecord(final.prompt_tokens or 0, final.cached_tokens, summary)
                )
            yield final


# --------------------------------------------------------------------------- naive strategies


def _units(messages: Sequence[Message]) -> tuple[list[Message], list[list[Message]]]:
    """The head (system prompt and task) and the rest in units: a message with its results."""
    first_user = next((i for i, m in enumerate(messages) if m.role == "user"), -1)
    head, units = list(messages[: first_user + 1]), []
    for message in messages[first_user + 1 :]:
        if message.role == "tool" and units:
            units[-1].append(message)
        else:
            units.append([message])
    return head, units


class SlidingWindow(Middleware):
    """Naive (a): over ``limit`` tokens, drop the oldest units after the head until it fits.

    A unit is an assistant tool call with its results (never split: a result
    without its call is an invalid prompt). Trimming the front changes the
    prompt right after the system prompt, so the engine recomputes the rest.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.trims = 0
        """Calls this middleware trimmed."""

    async def model_call(self, request: ModelRequest, call_next: ModelCallNext) -> ModelResponse:
        """Send the request trimmed from the front to ``limit`` tokens."""
        head, units = _units(request.messages)
        sizes = [sum(message_tokens(m) for m in unit) for unit in units]
        total = engine_counter(head, request.tools) + sum(sizes)
        dropped = 0
        while dropped < len(units) - 1 and total > self.limit:
            total -= sizes[dropped]
            dropped += 1
        self.trims += dropped > 0
        kept = head + [m for unit in units[dropped:] for m in unit]
        return await call_next(replace(request, messages=kept))


class SummariseOverThreshold(Middleware):
    """Naive (b): over ``limit`` tokens, summarise all but the newest unit with a model call.

    The summary (a model call on the same backend, whose system prompt starts
    with :data:`SUMMARY_PREFIX`) replaces the older part, and the next
    summary folds the previous one in. Every summary rewrites the prompt right
    after the system prompt and the task.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.summary: str | None = None
        self.covered = 0
        """Units of the conversation (after the head) folded into ``summary``."""
        self.summaries = 0
        """Summaries made (model calls)."""

    def _view(self, head: list[Message], units: list[list[Message]]) -> list[Message]:
        summary = [] if self.summary is None else [Message.user(self.summary)]
        return head + summary + [m for unit in units[self.covered :] for m in unit]

    async def model_call(self, request: ModelRequest, call_next: ModelCallNext) -> ModelResponse:
        """Summarise first when the prompt is over the limit, then send it."""
        head, units = _units(request.messages)
        view = self._view(head, units)
        if engine_counter(view, request.tools) > self.limit and len(units) - self.covered > 1:
            older = [m for unit in units[self.covered : -1] for m in unit]
            lines = [] if self.summary is None else [self.summary]
            lines += [_line(m) for m in older]
            ask = replace(
                request,
                messages=[
                    Message.system(f"{SUMMARY_PREFIX} below in about {SUMMARY_TOKENS} tokens."),
                    Message.user("\n".join(lines)),
                ],
                tools=[],
                call_id=request.call_id + "|summary",
            )
            answer = await call_next(ask)
            self.summary = f"[Summary of the earlier conversation] {answer.message.content}"
            self.covered = len(units) - 1
            self.summaries += 1
            view = self._view(head, units)
        return await call_next(replace(request, messages=view))


def _line(message: Message) -> str:
    calls = "".join(f" -> {call.name}({call.arguments})" for call in message.tool_calls)
    return f"[{message.role}] {message.content}{calls}"
