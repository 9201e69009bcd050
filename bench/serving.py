"""Cache-aware serving: prefill computed by engine replicas under each routing policy.

What is measured, and why. adk's serving layer claims that routing calls to
the replica that already holds their prompt prefix saves the engines from
recomputing it. The only honest judge of that is the *engine*: this script
counts what the engines themselves computed, not what the layer predicts.

The workload (the issue's): ``runs`` concurrent runs (16) of a multi-agent
workflow, ``SequentialAgent[planner, ParallelAgent[worker_1..worker_4],
reviewer]``. Every agent's instruction is the same ~1,500-token shared prefix
(measured with the engine's own tokenizer) plus one agent-specific line; each
agent makes 3-5 model calls (tool calls, then a final text; the count depends
on the agent and the run), each tool result is 100-300 tokens, so every
agent's history grows call after call, and later agents see the earlier ones'
work as context. Each run has its own task text.

For each routing policy (``round_robin``, ``least_loaded``,
``session_affinity``, ``prefix_aware``): fresh replicas (cold caches) and a
fresh :class:`~adk.serving.ServingLayer`, all runs at once (anyio task group),
then

- ``prefill_tokens``: prompt tokens the engines computed (not served from
  their prefix cache), summed over replicas, from the engines' counters;
- ``hit_rate``: cached / prompt tokens, engines' counters;
- ``imbalance``: max / mean requests per replica (engines' counters in
  simulation; the layer's per-replica call count with llama-server, whose
  ``/metrics`` has no request counter);
- ``prefix_breaks``: calls whose prompt does not extend the same agent's
  previous prompt (the layer's metric), and ``tool_turn_breaks``: those among
  *tool-only turns* (calls whose previous call by the same agent in the run
  answered with tool calls only: every call after an agent's first), which a
  prefix-stable client must never break.

Each policy is repeated (3 times by default) and medians are reported:
counts move with concurrency timing on a shared machine. The target (from
the issue): prefix-aware computes <= 0.5 x the prefill tokens of round-robin,
with imbalance <= 1.25 and zero prefix breaks on tool-only turns. A miss is
reported, not enforced (exit status 0).

Two engines:

- default: 4 replicas of the reference engine ``tests/support/engine_server.py``
  (a vLLM-like block-hashed LRU prefix cache, 65,536 tokens per replica,
  simulated prefill time per computed token), scripted by a handler that
  answers by agent (read from the system message) and by the number of tool
  results in the prompt;
- ``--engine``: 4 real ``llama-server`` replicas (``bench/_llama.py``,
  random-weight model, ``ADK_LLAMA_SERVER``), backend kind ``"llamacpp"``.
  A random model cannot decide to call tools, so the agents are custom
  :class:`~adk.BaseAgent` subclasses that build each ``ModelRequest`` and
  force the engine's answer (assistant prefill + ``tool_choice: "required"``
  for tool calls, a grammar for the final text), with the same growing
  history. Also reports TTFT p50/p95 (the layer's, from streamed calls).
  Skips with a message when the binary is missing; it never runs in CI.

    python bench/serving.py                 # simulation: 16 runs x 4 policies x 3 repeats
    python bench/serving.py --quick         # smoke test (2 runs, 1 repeat)
    python bench/serving.py --engine        # llama-server replicas (16 runs, 1 repeat: ~5 min)
    python bench/serving.py --workers 3     # the runs split over 3 worker processes, routing
                                            # blind or shared through Redis (SharedRoutingState)

The last stdout line is one JSON object: ``{"mode": ..., "round_robin":
{"prefill_tokens", "hit_rate", "imbalance", "prefix_breaks", ...}, ...}``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import re
import sys
import time
import urllib.request
import zlib
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# The repository root, for tests.support; appended so that an adk exported on
# PYTHONPATH (see bench/README.md) is still the one measured.
sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _common import adk_location, base_parser, emit_json, median, print_table
from _llama import EOG_TOKEN_ID, forced_text, tool_call_text

from adk import AgentEvent, AgentInput, BaseAgent, Message, RunContext
from adk.models.base import ChunkAssembler, ModelRequest
from adk.tools.function import FunctionTool

POLICIES = ("round_robin", "least_loaded", "session_affinity", "prefix_aware")
REPLICAS = 4
RUNS = 16
REPEATS = 3
PREFIX_TOKENS = 1500
BACKEND = "local"
MODEL = "test-model"
WORKERS = ("worker_1", "worker_2", "worker_3", "worker_4")
AGENT_LINES = {
    "planner": "ROLE: planner. Split the task into four pieces of work, one per worker.",
    "worker_1": "ROLE: worker_1. Research prior art and the relevant documentation.",
    "worker_2": "ROLE: worker_2. Analyse the data and the constraints of the task.",
    "worker_3": "ROLE: worker_3. Draft the implementation plan and its interfaces.",
    "worker_4": "ROLE: worker_4. Design the tests and the checks for the result.",
    "reviewer": "ROLE: reviewer. Review the workers' results and write the final answer.",
}
AGENTS = ("planner", *WORKERS, "reviewer")
TOOL_NAMES = ("read_file", "run_check", "search_docs")

# Targets (from the issue).
PREFILL_RATIO_TARGET = 0.5  # prefix_aware prefill / round_robin prefill
IMBALANCE_TARGET = 1.25
TOOL_TURN_BREAKS_TARGET = 0

# Simulated engine costs (reference engine only).
SIM_PREFILL_S_PER_TOKEN = 40e-6
SIM_S_PER_OUTPUT_TOKEN = 0.5e-3

REUSE_TOLERANCE = 16
"""Tokens of a previous prompt an engine may recompute and still count as reusing it
(the reference engine caches whole 16-token blocks; llama.cpp recomputes the last token)."""

_ROLE = re.compile(r"ROLE: (\w+)\.")
_CALL_INDEX = re.compile(r"\|m(\d+)$")

# --------------------------------------------------------------------------- texts

_VOCABULARY = (
    "the", "system", "service", "request", "cache", "replica", "prompt", "token", "agent",
    "model", "tool", "result", "workflow", "stage", "runner", "session", "context", "history",
    "message", "answer", "engine", "queue", "slot", "policy", "router", "prefix", "block",
    "memory", "budget", "latency", "throughput", "planner", "worker", "reviewer", "document",
    "report", "table", "figure", "value", "record", "field", "schema", "version", "release",
    "change", "module", "function", "class", "method", "argument", "return", "error", "failure",
    "retry", "timeout", "limit", "a", "an", "of", "to", "in", "for", "with", "on", "by", "from",
    "at", "as", "into", "over", "under", "after", "before", "between", "must", "should", "may",
    "can", "will", "does", "keeps", "sends", "reads", "writes", "checks", "builds", "measures",
    "every", "each", "some", "any", "all", "most", "few", "many", "more", "less", "first", "last",
    "next", "previous", "same", "new", "old", "large", "small", "fast", "slow", "stable",
    "shared", "private", "careful", "simple", "clear", "exact", "user", "customer", "team",
    "project", "plan", "task", "step", "goal", "test", "check", "review", "note", "summary",
)  # fmt: skip


def prose(seed: str, words: int) -> str:
    """Deterministic English-like sentences of about ``words`` words (seeded by ``seed``)."""
    rng = random.Random(zlib.crc32(seed.encode()))
    sentences: list[str] = []
    count = 0
    while count < words:
        length = min(rng.randint(8, 16), max(1, words - count))
        chosen = [rng.choice(_VOCABULARY) for _ in range(length)]
        chosen[0] = chosen[0].capitalize()
        sentences.append(" ".join(chosen) + ".")
        count += length
    return " ".join(sentences)


@dataclass(frozen=True)
class Corpus:
    """The workload's texts, sized in the tokens of one engine's tokenizer."""

    shared_prefix: str
    prefix_tokens: int
    words_per_token: float

    @classmethod
    def build(cls, count: Callable[[str], int], target: int = PREFIX_TOKENS) -> Corpus:
        """A shared prefix of at least ``target`` tokens by ``count``, and the ratio to size
        the other texts with."""
        words = target
        text = prose("shared-prefix", words)
        tokens = count(text)
        while tokens < target:  # converges in 2-3 steps: the ratio is stable
            words = int(words * target / max(1, tokens)) + 8
            text = prose("shared-prefix", words)
            tokens = count(text)
        # Trim whole sentences from the end while staying at or above the target.
        while True:
            head = text.rsplit(". ", 1)[0] + "."
            if head == text:
                break
            head_tokens = count(head)
            if head_tokens < target:
                break
            text, tokens = head, head_tokens
        return cls(text, tokens, len(text.split()) / tokens)

    def sized(self, seed: str, tokens: int) -> str:
        """About ``tokens`` tokens of text."""
        return prose(seed, max(1, round(tokens * self.words_per_token)))

    def instruction(self, agent: str) -> str:
        """The agent's instruction: the shared prefix, then its own line."""
        return f"{self.shared_prefix}\n\n{AGENT_LINES[agent]}"

    def task(self, run: int) -> str:
        """Run ``run``'s distinct task (its first words identify the run)."""
        return f"Task {run:03d}: " + self.sized(f"task-{run}", 60)


def task_key(task: str) -> str:
    """The run's identity in its task text."""
    return task.split(":", 1)[0]


def calls_for(agent: str, task: str) -> int:
    """Model calls agent ``agent`` makes in the run of ``task``: 3 to 5."""
    return 3 + zlib.crc32(f"{agent}|{task_key(task)}".encode()) % 3


def tool_step(agent: str, task: str, step: int) -> tuple[str, dict[str, str]]:
    """The tool call of ``agent``'s call number ``step`` (0-based)."""
    name = TOOL_NAMES[(step + zlib.crc32(agent.encode())) % len(TOOL_NAMES)]
    key = task_key(task).replace(" ", "_").lower()
    argument = {"read_file": "path", "run_check": "target", "search_docs": "query"}[name]
    return name, {argument: f"{key}/{agent}/item_{step}"}


def final_text(corpus: Corpus, agent: str, task: str) -> str:
    """``agent``'s final answer in the run of ``task`` (about 30 tokens)."""
    return f"[{agent}] done with {task_key(task)}. " + corpus.sized(f"final|{agent}|{task}", 30)


def tool_text(corpus: Corpus, name: str, argument: str) -> str:
    """What tool ``name`` returns for ``argument``: deterministic, 100-300 tokens."""
    return corpus.sized(f"{name}|{argument}", 100 + zlib.crc32(f"{name}|{argument}".encode()) % 201)


def make_tools(corpus: Corpus) -> list[Callable[..., Any]]:
    """The three tools every agent has (async functions for ChatModelAgent)."""

    async def read_file(path: str) -> str:
        """Read a file of the project.

        Args:
            path: The file's path.
        """
        return tool_text(corpus, "read_file", path)

    async def run_check(target: str) -> str:
        """Run a check (tests, linters) on a target and report the output.

        Args:
            target: What to check.
        """
        return tool_text(corpus, "run_check", target)

    async def search_docs(query: str) -> str:
        """Search the documentation.

        Args:
            query: What to look for.
        """
        return tool_text(corpus, "search_docs", query)

    return [read_file, run_check, search_docs]


# --------------------------------------------------------------------------- results


@dataclass
class Trial:
    """One policy, one repeat: what the engines computed and what the layer saw."""

    policy: str
    prefill_tokens: int
    prompt_tokens: int
    cached_tokens: int
    requests: list[int]
    prefix_breaks: int
    tool_turn_breaks: int
    tool_turns: int
    calls: int
    errors: int
    sticky: float
    """Share of tool-only turns routed to the replica of the agent's previous call."""
    unreused: int
    """Of those, turns where the engine did not reuse the previous prompt (real breaks)."""
    floor: int
    """The least prefill any routing could achieve with these prompts (see analyse_calls)."""
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None
    wall_s: float
    layer_prefill_tokens: int
    """Prefill by the usage the engines reported per call (cross-check of the counters)."""
    break_examples: list[str] = field(default_factory=list)
    error_examples: list[str] = field(default_factory=list)

    @property
    def hit_rate(self) -> float:
        return self.cached_tokens / self.prompt_tokens if self.prompt_tokens else 0.0

    @property
    def imbalance(self) -> float:
        total = sum(self.requests)
        return max(self.requests) / (total / len(self.requests)) if total else 1.0


_SEEN = (
    "prefix_breaks",
    "tool_turn_breaks",
    "tool_turns",
    "calls",
    "errors",
    "sticky",
    "unreused",
    "floor",
    "ttft_p50_ms",
    "ttft_p95_ms",
    "layer_prefill_tokens",
    "break_examples",
    "error_examples",
)
"""The Trial fields that come from :func:`analyse_calls`."""


def make_trial(seen: dict[str, Any], wall: float, **engine: Any) -> Trial:
    """A Trial from what the layer saw (``seen``) and what the engines counted (``engine``)."""
    return Trial(wall_s=wall, **engine, **{key: seen[key] for key in _SEEN})


def analyse_calls(layer: Any, prefix_tokens: int, prefix_copies: int) -> dict[str, Any]:
    """Per-call figures from the layer: breaks on tool-only turns, stickiness, TTFT."""
    calls = layer.calls()
    by_context: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for call in calls:
        if call.error is None:  # a failed attempt is recorded too; its retry follows
            by_context[(call.run_id, call.agent)].append(call)
    tool_turns = tool_breaks = same = unreused = 0
    # The least any routing could compute: the shared prefix once per cache (``prefix_copies``:
    # one per replica, or one per llama.cpp slot), each agent's first call beyond it, and
    # each later call beyond the agent's previous prompt.
    floor = prefix_copies * prefix_tokens
    examples: list[str] = []
    for (run_id, agent), items in by_context.items():
        items.sort(key=lambda c: _call_index(c.call_id))
        floor += max(0, items[0].prompt_tokens - prefix_tokens)
        floor += sum(
            max(0, b.prompt_tokens - a.prompt_tokens) for a, b in itertools.pairwise(items)
        )
        for previous, call in itertools.pairwise(items):
            if _call_index(call.call_id) == 0:
                continue
            tool_turns += 1
            if call.replica == previous.replica:
                same += 1
                # The engine's own verdict: did it reuse the previous prompt (to a block)?
                unreused += call.cached_tokens < previous.prompt_tokens - REUSE_TOLERANCE
            if call.prefix_break:
                tool_breaks += 1
                if len(examples) < 3:
                    examples.append(f"{run_id[:8]} {agent} call {_call_index(call.call_id)}")
    ttfts = sorted(c.ttft for c in calls if c.ttft is not None and c.error is None)
    summary = layer.summary(BACKEND)
    return {
        "calls": len(calls),
        "errors": summary.errors,
        "prefix_breaks": summary.prefix_breaks,
        "tool_turns": tool_turns,
        "tool_turn_breaks": tool_breaks,
        "sticky": same / tool_turns if tool_turns else 0.0,
        "unreused": unreused,
        "floor": floor,
        "ttft_p50_ms": _percentile(ttfts, 0.50),
        "ttft_p95_ms": _percentile(ttfts, 0.95),
        "layer_prefill_tokens": summary.prefill_tokens,
        "per_replica": dict(summary.per_replica),
        "break_examples": examples,
        "error_examples": sorted({c.error[:160] for c in calls if c.error is not None})[:3],
    }


def _call_index(call_id: str) -> int:
    match = _CALL_INDEX.search(call_id)
    return int(match.group(1)) if match else 0


def _percentile(sorted_values: Sequence[float], q: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index] * 1000.0


# --------------------------------------------------------------------------- simulation


def sim_handler(corpus: Corpus) -> Callable[[dict[str, Any]], Any]:
    """The scripted LLM of the reference engine: by agent and by tool results so far."""
    from tests.support.openai_server import Reply

    def answer(body: dict[str, Any]) -> Any:
        messages = body.get("messages") or []
        system = next((m for m in messages if m.get("role") == "system"), None)
        found = _ROLE.search(str(system.get("content") if system else ""))
        task = next((str(m.get("content")) for m in messages if m.get("role") == "user"), "")
        if found is None or not task:
            return Reply.error(400, "the bench handler found no agent role or task")
        agent = found.group(1)
        done = sum(1 for m in messages if m.get("role") == "tool")
        if done < calls_for(agent, task) - 1:
            name, arguments = tool_step(agent, task, done)
            return Reply.call(name, arguments)
        return Reply.text(final_text(corpus, agent, task))

    return answer


def build_workflow(corpus: Corpus) -> Any:
    """``Sequential[planner, Parallel[worker_1..4], reviewer]`` of ChatModelAgents."""
    from adk import ChatModelAgent, ParallelAgent, SequentialAgent

    tools = make_tools(corpus)

    def agent(name: str) -> Any:
        return ChatModelAgent(
            name, model=BACKEND, instruction=corpus.instruction(name), tools=tools
        )

    return SequentialAgent(
        "pipeline",
        [agent("planner"), ParallelAgent("team", [agent(w) for w in WORKERS]), agent("reviewer")],
    )


async def run_workflow(runner: Any, corpus: Corpus, runs: int) -> float:
    """All runs at once; returns the wall time in seconds."""
    import anyio

    failures: list[str] = []

    async def one(run: int) -> None:
        try:
            result = await runner.invoke(corpus.task(run))
        except Exception as exc:  # reported, then the trial fails as a whole
            failures.append(f"run {run}: {type(exc).__name__}: {exc}")
            return
        if result.errors:
            failures.append(f"run {run}: {result.errors[0]}")

    started = time.perf_counter()
    async with anyio.create_task_group() as group:
        for run in range(runs):
            group.start_soon(one, run)
    wall = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} runs failed; first: {failures[0]}")
    return wall


async def sim_trial(policy: str, corpus: Corpus, runs: int) -> Trial:
    """One policy on fresh reference engines and a fresh layer."""
    from adk import Runner
    from adk.serving import Backend, ServingLayer
    from tests.support.engine_server import start_engines

    with start_engines(
        REPLICAS,
        handler=sim_handler(corpus),
        prefill_seconds_per_token=SIM_PREFILL_S_PER_TOKEN,
        seconds_per_output_token=SIM_S_PER_OUTPUT_TOKEN,
    ) as engines:
        layer = ServingLayer(
            [
                Backend(
                    BACKEND,
                    model=MODEL,
                    kind="vllm",
                    replicas=[engine.url for engine in engines],
                    routing=policy,
                )
            ]
        )
        runner = Runner(build_workflow(corpus), serving=layer, streaming=True)
        try:
            wall = await run_workflow(runner, corpus, runs)
        finally:
            await layer.aclose()
        for engine in engines:
            engine.wait_idle()
        stats = [engine.stats() for engine in engines]
    seen = analyse_calls(layer, corpus.prefix_tokens, REPLICAS)
    return make_trial(
        seen,
        wall,
        policy=policy,
        prefill_tokens=sum(s["prefill_tokens_total"] for s in stats),
        prompt_tokens=sum(s["prompt_tokens_total"] for s in stats),
        cached_tokens=sum(s["cached_tokens_total"] for s in stats),
        requests=[s["requests"] for s in stats],
    )


# --------------------------------------------------------------------------- llama-server


def forced_workflow(corpus: Corpus) -> Any:
    """The same workflow of custom agents that force llama-server's answers."""
    from adk import ParallelAgent, SequentialAgent

    tools = make_tools(corpus)
    return SequentialAgent(
        "pipeline",
        [
            ForcedAgent("planner", corpus, tools),
            ParallelAgent("team", [ForcedAgent(w, corpus, tools) for w in WORKERS]),
            ForcedAgent("reviewer", corpus, tools),
        ],
    )


class ForcedAgent(BaseAgent):
    """An agent that scripts a random-weight llama-server: the same calls as the simulation.

    Each call is a ``ModelRequest`` built here (identity fields from the run
    context, as ChatModelAgent fills them) and streamed through the run's
    serving layer. A tool call is forced by an assistant prefill holding the
    call, ``tool_choice: "required"`` and a logit bias ending the turn
    (``_llama.forced_tool_calls``); the final text by a grammar
    (``_llama.forced_text``). The answer and a tool result are appended to
    the history, so the next prompt extends the last one, as with a model
    that chose those calls.
    """

    def __init__(self, name: str, corpus: Corpus, tools: Sequence[Callable[..., Any]]) -> None:
        super().__init__(name)
        self.corpus = corpus
        self.instruction = corpus.instruction(name)
        self.specs = [FunctionTool(fn).spec for fn in sorted(tools, key=lambda f: f.__name__)]

    async def run(self, input: AgentInput, ctx: RunContext) -> AsyncIterator[AgentEvent]:
        messages = [Message.system(self.instruction), *input.messages]
        task = next((m.content for m in input.messages if m.role == "user"), "")
        total = calls_for(self.name, task)
        for step in range(total):
            if step < total - 1:
                name, arguments = tool_step(self.name, task, step)
                # _llama.forced_tool_calls, on adk messages: the call as an assistant prefill.
                sent = [*messages, Message.assistant(tool_call_text(name, arguments))]
                params: dict[str, Any] = {
                    "tool_choice": "required",
                    "logit_bias": {str(EOG_TOKEN_ID): 100},
                    "max_tokens": 8,
                }
            else:
                text = final_text(self.corpus, self.name, task)
                sent = list(messages)
                fields = forced_text(text)
                params = {
                    "tool_choice": fields["tool_choice"],
                    "extra_body": {"grammar": fields["grammar"]},
                    "max_tokens": 512,
                }
            request = ModelRequest(
                messages=sent,
                tools=self.specs,
                params=params,
                stream=True,
                run_id=ctx.run_id,
                session_id=ctx.session_id,
                agent_name=self.name,
                agent_path=ctx.run_path,
                stage=self.name,
                call_id=f"{ctx.run_id}:{ctx.invocation}|m{step}",
            )
            assembler = ChunkAssembler()
            async for chunk in ctx.serving.stream(BACKEND, request):
                assembler.add(chunk)
            reply = assembler.response().message
            if step < total - 1:
                got = [(c.name, json.loads(c.arguments)) for c in reply.tool_calls]
                if got != [(name, arguments)]:
                    raise RuntimeError(f"{self.name}: forced {name}{arguments}, got {got}")
            elif reply.content != text:
                raise RuntimeError(f"{self.name}: forced text, got {reply.content[:80]!r}")
            # History keeps the call as it was sent (the prefill): the engine renders it
            # exactly like the structured call, and the layer sees the next prompt extend
            # this one, as it would with a model that chose the call itself.
            messages.append(sent[-1] if reply.tool_calls else reply)
            yield self.event(ctx, message=reply)
            if not reply.tool_calls:
                return
            for call in reply.tool_calls:
                (argument,) = json.loads(call.arguments).values()
                result = Message.tool(
                    tool_text(self.corpus, call.name, argument),
                    tool_call_id=call.id,
                    name=call.name,
                )
                messages.append(result)
                yield self.event(ctx, message=result)


def llama_tokens(url: str) -> Callable[[str], int]:
    """Token count of a text by a llama-server's own tokenizer (``POST /tokenize``)."""

    def count(text: str) -> int:
        body = json.dumps({"content": text}).encode()
        request = urllib.request.Request(
            url + "/tokenize", body, {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return len(json.loads(response.read())["tokens"])

    return count


def llama_counters(url: str) -> dict[str, float]:
    """A llama-server's ``/metrics`` counters (``llamacpp:`` names without the prefix)."""
    from adk.serving.engines import parse_prometheus

    with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
        samples = parse_prometheus(response.read().decode())
    return {k.removeprefix("llamacpp:"): v for k, v in samples.items()}


@dataclass(frozen=True)
class LlamaSetup:
    """How the llama-server replicas are started."""

    binary: str
    model: str
    slots: int
    ctx: int
    threads: int
    pin_slots: bool = True
    """Let the layer pin each context to a slot (``id_slot``); else llama-server picks one."""


@contextmanager
def llama_replicas(setup: LlamaSetup) -> Iterator[list[str]]:
    """Fresh replicas (cold caches) for one trial."""
    from _llama import start_llama_servers

    with start_llama_servers(
        REPLICAS,
        binary=setup.binary,
        model=setup.model,
        ctx=setup.ctx,
        slots=setup.slots,
        threads=setup.threads,
    ) as urls:
        yield urls


async def llama_trial(policy: str, corpus: Corpus, runs: int, setup: LlamaSetup) -> Trial:
    """One policy on fresh llama-server replicas and a fresh layer."""
    from adk import Runner
    from adk.serving import Backend, ServingLayer

    with llama_replicas(setup) as urls:
        layer = ServingLayer(
            [
                Backend(
                    BACKEND,
                    model=MODEL,
                    kind="llamacpp",
                    replicas=urls,
                    routing=policy,
                    slots=setup.slots if setup.pin_slots else 0,
                    # One call per slot: more would run slot-less (and evict a context).
                    max_concurrency=setup.slots,
                    cache_tokens=setup.ctx * setup.slots,
                    timeout=600.0,
                )
            ]
        )
        runner = Runner(forced_workflow(corpus), serving=layer, streaming=True)
        try:
            wall = await run_workflow(runner, corpus, runs)
        finally:
            await layer.aclose()
        counters = [llama_counters(url) for url in urls]
    # Each llama.cpp slot is a cache of its own: every slot computes the shared prefix once.
    seen = analyse_calls(layer, corpus.prefix_tokens, REPLICAS * setup.slots)
    computed = int(sum(c.get("prompt_tokens_total", 0.0) for c in counters))
    cached = int(sum(c.get("prompt_tokens_cached_total", 0.0) for c in counters))
    per_replica: dict[str, int] = seen["per_replica"]
    return make_trial(
        seen,
        wall,
        policy=policy,
        prefill_tokens=computed,
        prompt_tokens=computed + cached,
        cached_tokens=cached,
        requests=[per_replica.get(url, 0) for url in urls],
    )


# --------------------------------------------------------------------------- report


def med(trials: Sequence[Trial], value: Callable[[Trial], float | None]) -> float | None:
    """Median of a figure over repeats (None if no repeat has it)."""
    values = [v for v in (value(t) for t in trials) if v is not None]
    return median(values) if values else None


def report(
    by_policy: dict[str, list[Trial]], *, mode: str, engine_ttft: bool
) -> dict[str, dict[str, Any]]:
    """Print the table and the target check; return the JSON figures per policy."""
    figures: dict[str, dict[str, Any]] = {}
    rows: list[list[Any]] = []
    for policy, trials in by_policy.items():
        prefill = med(trials, lambda t: t.prefill_tokens) or 0.0
        values: dict[str, Any] = {
            "prefill_tokens": int(prefill),
            "hit_rate": round(med(trials, lambda t: t.hit_rate) or 0.0, 4),
            "imbalance": round(med(trials, lambda t: t.imbalance) or 0.0, 3),
            "prefix_breaks": int(med(trials, lambda t: t.prefix_breaks) or 0),
            "tool_turn_breaks": int(med(trials, lambda t: t.tool_turn_breaks) or 0),
            "prompt_tokens": int(med(trials, lambda t: t.prompt_tokens) or 0),
            "calls": int(med(trials, lambda t: t.calls) or 0),
            "errors": int(med(trials, lambda t: t.errors) or 0),
            "sticky": round(med(trials, lambda t: t.sticky) or 0.0, 3),
            "engine_breaks": int(med(trials, lambda t: t.unreused) or 0),
            "prefill_floor": int(med(trials, lambda t: t.floor) or 0),
            "ttft_p50_ms": _round(med(trials, lambda t: t.ttft_p50_ms), 1),
            "ttft_p95_ms": _round(med(trials, lambda t: t.ttft_p95_ms), 1),
            "wall_s": round(med(trials, lambda t: t.wall_s) or 0.0, 2),
        }
        figures[policy] = values
        low = min(t.prefill_tokens for t in trials)
        high = max(t.prefill_tokens for t in trials)
        row = [
            policy,
            f"{values['prefill_tokens']:,}",
            f"{low:,}-{high:,}",
            f"{values['prefill_floor']:,}",
            f"{values['prompt_tokens']:,}",
            f"{values['hit_rate']:.3f}",
            f"{values['imbalance']:.3f}",
            values["prefix_breaks"],
            values["tool_turn_breaks"],
            f"{values['sticky']:.2f}",
            values["engine_breaks"],
            values["calls"],
            values["errors"],
        ]
        if engine_ttft:
            row += [_fmt(values["ttft_p50_ms"]), _fmt(values["ttft_p95_ms"])]
        row.append(f"{values['wall_s']:.1f}")
        rows.append(row)
    headers = [
        "policy",
        "prefill tok",
        "range",
        "floor",
        "prompt tok",
        "hit rate",
        "imbalance",
        "breaks",
        "tool-turn breaks",
        "sticky",
        "not reused",
        "calls",
        "failed",
    ]
    if engine_ttft:
        headers += ["ttft p50 ms", "ttft p95 ms"]
    headers.append("wall s")
    print_table(headers, rows, title=f"Per policy (median over repeats; {mode}):")
    legend = (
        "prefill/prompt tok, hit rate: the engines' counters (range: min-max over repeats)",
        "floor: the least prefill any routing could achieve with these prompts (the shared prefix",
        "  once per cache, each agent's first call beyond it, later calls beyond the previous);",
        "  a cache is a replica (reference engine) or a slot (llama-server)",
        "imbalance: max/mean requests per replica; breaks: the layer's prefix breaks",
        "tool-turn breaks: breaks on tool-only turns (every call after an agent's first)",
        "sticky: share of tool-only turns routed to the replica of the agent's previous call",
        "not reused: sticky tool-only turns whose previous prompt the engine did not reuse",
        "calls: model calls the layer recorded; failed: attempts that failed (and failed over)",
    )
    print("\n".join(legend))
    print()
    if "prefix_aware" in figures and "round_robin" in figures:
        aware, rr = figures["prefix_aware"], figures["round_robin"]
        share = aware["prefill_tokens"] / rr["prefill_tokens"] if rr["prefill_tokens"] else 0.0
        aware["prefill_vs_round_robin"] = round(share, 3)
        checks = [
            [
                "prefill prefix_aware / round_robin",
                f"{share:.3f}",
                f"<= {PREFILL_RATIO_TARGET}",
                _status(share <= PREFILL_RATIO_TARGET),
            ],
            [
                "imbalance prefix_aware",
                f"{aware['imbalance']:.3f}",
                f"<= {IMBALANCE_TARGET}",
                _status(aware["imbalance"] <= IMBALANCE_TARGET),
            ],
            [
                "prefix breaks on tool-only turns (prefix_aware)",
                aware["tool_turn_breaks"],
                f"== {TOOL_TURN_BREAKS_TARGET}",
                _status(aware["tool_turn_breaks"] == TOOL_TURN_BREAKS_TARGET),
            ],
        ]
        met = all(row[-1] == "PASS" for row in checks)
        checks.append(["target", "", "", "PASS" if met else "MISS"])
        print_table(["check", "value", "target", "status"], checks, title="Target:")
    return figures


def _status(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def print_breaks(by_policy: dict[str, list[Trial]]) -> None:
    """Where tool-turn prefix breaks happened, and failed attempts (stderr), if any."""
    for policy, trials in by_policy.items():
        for number, trial in enumerate(trials, 1):
            if trial.errors:
                print(
                    f"{policy} repeat {number}: {trial.errors} failed attempts (failed over), "
                    f"e.g. {trial.error_examples[0]}",
                    file=sys.stderr,
                )
            if trial.break_examples:
                print(
                    f"{policy} repeat {number}: {trial.tool_turn_breaks} tool-turn breaks, "
                    f"e.g. {'; '.join(trial.break_examples)}",
                    file=sys.stderr,
                )


# --------------------------------------------------------------------------- main


def warm_up() -> None:
    """Import litellm now (seconds), so the first policy's wall time does not pay for it."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm  # noqa: F401


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.set_defaults(repeats=None)
    parser.add_argument("--runs", type=int, default=None, help=f"concurrent runs (default {RUNS})")
    parser.add_argument(
        "--policies", default=",".join(POLICIES), help="comma-separated routing policies"
    )
    parser.add_argument(
        "--engine", action="store_true", help="real llama-server replicas (ADK_LLAMA_SERVER)"
    )
    parser.add_argument(
        "--slots",
        type=int,
        default=16,
        help="llama-server: slots (and calls in flight) per replica",
    )
    parser.add_argument("--ctx", type=int, default=12288, help="llama-server: tokens per slot")
    parser.add_argument("--threads", type=int, default=1, help="llama-server: threads per replica")
    parser.add_argument(
        "--no-pin",
        action="store_true",
        help="llama-server: Backend(slots=0): no id_slot, the server picks slots by prefix",
    )
    parser.add_argument(
        "--width", type=int, default=64, help="llama-server: random model's embedding width"
    )
    parser.add_argument("--layers", type=int, default=2, help="llama-server: random model's layers")
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="drive the workload from N worker processes (bench/_serving_workers.py)",
    )
    parser.add_argument(
        "--redis",
        default=os.environ.get("ADK_REDIS_URL", "redis://127.0.0.1:6379/0"),
        help="--workers: the Redis of the shared routing state",
    )
    parser.add_argument("--worker-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker_child is not None:
        from _serving_workers import child

        child(sys.modules[__name__], args.worker_child)
        return
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    unknown = set(policies) - set(POLICIES)
    if unknown:
        parser.error(f"unknown policies: {', '.join(sorted(unknown))}")
    if args.engine:
        # About 5 minutes on 2 shared cores; 3 repeats would take about 15.
        default_runs, default_repeats = RUNS, 1
    else:
        default_runs, default_repeats = RUNS, REPEATS
    if args.quick:
        default_runs, default_repeats = 2, 1
    runs = args.runs if args.runs is not None else default_runs
    repeats = args.repeats if args.repeats is not None else default_repeats

    import anyio

    warm_up()
    if args.engine:
        main_engine(args, policies, runs, repeats)
        return
    if args.workers:
        from _serving_workers import parent

        parent(sys.modules[__name__], args, runs, repeats)
        return

    from tests.support.engine_server import tokenize

    corpus = Corpus.build(lambda text: len(tokenize(text)))
    import adk  # noqa: F401 - for adk_location

    print(
        f"serving: {runs} concurrent runs of Sequential[planner, Parallel[4 workers], reviewer] "
        f"on {REPLICAS} reference engines (tests/support/engine_server.py, "
        f"{SIM_PREFILL_S_PER_TOKEN * 1e6:g} µs prefill per computed token); "
        f"{repeats} repeat(s) per policy"
    )
    print(
        f"shared prefix: {corpus.prefix_tokens} tokens (engine tokenizer); "
        "3-5 calls per agent; tool results 100-300 tokens"
    )
    print(f"adk measured: {adk_location()}")
    print()
    started = time.perf_counter()
    by_policy: dict[str, list[Trial]] = {p: [] for p in policies}
    for _ in range(repeats):
        for policy in policies:  # policies alternate inside each repeat
            by_policy[policy].append(anyio.run(sim_trial, policy, corpus, runs))
    figures = report(by_policy, mode="simulated engines", engine_ttft=False)
    print_breaks(by_policy)
    print(f"total wall: {time.perf_counter() - started:.1f} s")
    print()
    emit_json({"mode": "sim", "runs": runs, "repeats": repeats, **figures})


def main_engine(args: Any, policies: list[str], runs: int, repeats: int) -> None:
    """``--engine``: the same on real llama-server replicas."""
    import anyio
    from _llama import default_model_path, llama_server_binary, write_random_model

    binary = llama_server_binary()
    if binary is None:
        print("serving --engine: skipped: set ADK_LLAMA_SERVER to a llama-server executable")
        emit_json({"mode": "engine", "skipped": "no llama-server (ADK_LLAMA_SERVER)"})
        return
    try:
        name = f"random-llama-w{args.width}-l{args.layers}-ctx{args.ctx}.gguf"
        model = write_random_model(
            default_model_path().with_name(name),
            width=args.width,
            layers=args.layers,
            heads=max(1, args.width // 32),
            kv_heads=max(1, args.width // 32),
            ctx=args.ctx,
        )
    except ImportError as exc:
        print(f"serving --engine: skipped: {exc} (pip install gguf)")
        emit_json({"mode": "engine", "skipped": f"{exc}"})
        return
    setup = LlamaSetup(binary, str(model), args.slots, args.ctx, args.threads, not args.no_pin)
    with llama_replicas(setup) as urls:
        corpus = Corpus.build(llama_tokens(urls[0]))
    import adk  # noqa: F401 - for adk_location

    print(
        f"serving --engine: {runs} concurrent runs of Sequential[planner, Parallel[4 workers], "
        f"reviewer] on {REPLICAS} llama-server replicas (random model, {args.slots} slots x "
        f"{args.ctx} tokens, {args.threads} thread(s) each"
        f"{'' if setup.pin_slots else ', no slot pinning'}); {repeats} repeat(s) per policy"
    )
    print(
        f"scale: {runs} runs (issue: {RUNS}), {repeats} repeat(s) (issue: {REPEATS}); "
        f"shared prefix: {corpus.prefix_tokens} tokens (llama-server tokenizer)"
    )
    print(f"llama-server: {binary}")
    print(f"adk measured: {adk_location()}")
    print()
    started = time.perf_counter()
    by_policy: dict[str, list[Trial]] = {p: [] for p in policies}
    for _ in range(repeats):
        for policy in policies:
            trial = anyio.run(llama_trial, policy, corpus, runs, setup)
            by_policy[policy].append(trial)
            print(
                f"  {policy}: {trial.wall_s:.1f} s, prefill {trial.prefill_tokens:,}, "
                f"layer's view {trial.layer_prefill_tokens:,}",
                file=sys.stderr,
            )
    figures = report(by_policy, mode="llama-server", engine_ttft=True)
    print_breaks(by_policy)
    print(f"total wall: {time.perf_counter() - started:.1f} s")
    print()
    emit_json({"mode": "engine", "runs": runs, "repeats": repeats, **figures})


if __name__ == "__main__":
    main()
