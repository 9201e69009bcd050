"""Compaction: older turns summarised into one message, journaled, with a fallback."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import pytest

from adk import (
    AgentTool,
    ArgumentTypeError,
    ChatModelAgent,
    ConfigurationError,
    ContextPolicy,
    Message,
    ModelRequest,
    ModelSummariser,
    ParallelAgent,
    Runner,
    ScriptedModel,
    SequentialAgent,
    SummaryRequest,
    ToolCall,
    Usage,
    tool,
)
from adk.agents.compaction import SUMMARY_HEADER
from adk.state.context_policy import COMPACTION_COMPLETE, COMPACTION_STARTING, GC_COMPLETE
from adk.state.pricing import estimate_tokens
from tests.context.helpers import fetch

pytestmark = pytest.mark.anyio

PAGE = re.compile(r"page (\d+):")


def is_summary_request(request: ModelRequest) -> bool:
    first = request.messages[0]
    return first.role == "system" and first.content.startswith("Summarise the conversation")


def reading_script(pages: int) -> Any:
    """Fetch pages one by one (the next after the last result), then answer; also summarise."""

    def script(request: ModelRequest) -> Any:
        if is_summary_request(request):
            read = [int(n) for n in PAGE.findall(request.messages[-1].content)]
            return f"Read pages up to {max(read, default=0)}."
        last = request.messages[-1]
        match = PAGE.match(last.content) if last.role == "tool" else None
        done = int(match.group(1)) if match else 0
        if last.role == "tool" and last.name == "publish":
            return "published"
        if done < pages:
            return ToolCall.of("fetch", page=done + 1)
        if any(spec.name == "publish" for spec in request.tools):
            return ToolCall.of("publish", title="report")
        return f"done after {done} pages"

    return script


def reader(
    pages: int, policy: ContextPolicy, tools: list[Any] | None = None
) -> tuple[ChatModelAgent, ScriptedModel]:
    model = ScriptedModel(reading_script(pages))
    agent = ChatModelAgent(
        "reader",
        model=model,
        instruction="You read reports.",
        tools=tools or [fetch],
        context=policy,
        max_iterations=200,
    )
    return agent, model


def kinds(events: list[Any]) -> list[str]:
    found = []
    for event in events:
        custom = event.output.custom if event.output is not None else None
        if isinstance(custom, dict) and "kind" in custom:
            found.append(custom["kind"])
    return found


def customs(events: list[Any], kind: str) -> list[dict[str, Any]]:
    return [
        e.output.custom
        for e in events
        if e.output is not None
        and isinstance(e.output.custom, dict)
        and e.output.custom.get("kind") == kind
    ]


def policy(**overrides: Any) -> ContextPolicy:
    settings: dict[str, Any] = {"window": 4_000, "headroom": 0, **overrides}
    return ContextPolicy(**settings)


async def test_a_long_loop_finishes_within_the_window_by_compacting() -> None:
    agent, model = reader(60, policy())
    events = [e async for e in Runner(agent).query("read the report")]
    assert events[-1].text == "done after 60 pages"
    found = kinds(events)
    assert found.count(COMPACTION_STARTING) == found.count(COMPACTION_COMPLETE) >= 1
    assert GC_COMPLETE in found
    agent_calls = [r for r in model.requests if not is_summary_request(r)]
    assert max(estimate_tokens(r.messages, r.tools) for r in agent_calls) <= 4_000
    last = agent_calls[-1].messages
    # System prompt first and whole, the summary next, then the pinned request.
    assert last[0].content == "You read reports."
    assert last[1].content.startswith(SUMMARY_HEADER) and "Read pages up to" in last[1].content
    assert last[2].role == "user" and last[2].content == "read the report"
    [done] = customs(events, COMPACTION_COMPLETE)[-1:]
    assert done["tokens_after"] < done["tokens_before"] and done["fallback"] is False
    assert done["tokens_saved"] == done["tokens_before"] - done["tokens_after"]


async def test_summaries_are_model_calls_on_their_own_stage_and_counted_in_usage() -> None:
    agent, model = reader(60, policy())
    result = await Runner(agent).invoke("read the report")
    summaries = [r for r in model.requests if is_summary_request(r)]
    assert summaries and all(r.stage == "reader.compaction" for r in summaries)
    assert all(r.params.get("temperature") == 0 for r in summaries)
    assert result.text == "done after 60 pages"


async def test_a_summariser_message_usage_is_charged_to_the_run() -> None:
    async def costly(request: SummaryRequest) -> Message:
        return Message.assistant("short", usage=Usage(prompt_tokens=100_000, completion_tokens=3))

    agent, _ = reader(60, policy(summariser=costly))
    result = await Runner(agent).invoke("read the report")
    compactions = sum(
        1
        for e in result.events
        if e.output is not None
        and isinstance(e.output.custom, dict)
        and e.output.custom.get("kind") == COMPACTION_COMPLETE
    )
    assert compactions >= 1 and result.usage.prompt_tokens >= 100_000 * compactions


async def test_the_prefix_stays_identical_between_compactions() -> None:
    # Between two context steps a request extends the one before it: the cache holds.
    # With a window that holds many results, the steps are rare.
    agent, model = reader(100, policy(window=12_000))
    events = [e async for e in Runner(agent).query("read the report")]
    calls = [r.messages for r in model.requests if not is_summary_request(r)]
    rewrites = sum(
        1 for before, after in itertools.pairwise(calls) if after[: len(before)] != before
    )
    steps = len(customs(events, GC_COMPLETE)) + len(customs(events, COMPACTION_COMPLETE))
    assert 0 < rewrites <= steps < len(calls) // 4


async def test_a_failing_summariser_falls_back_and_the_run_goes_on() -> None:
    async def broken(request: SummaryRequest) -> str:
        raise RuntimeError("summary backend down")

    agent, _model = reader(60, policy(summariser=broken))
    events = [e async for e in Runner(agent).query("read the report")]
    assert events[-1].text == "done after 60 pages"
    done = customs(events, COMPACTION_COMPLETE)
    assert done and all(d["fallback"] for d in done)
    assert "RuntimeError: summary backend down" in done[0]["error"]
    assert "fetch x" in done[0]["summary"]  # what was dropped is named


async def test_a_custom_summariser_gets_the_older_messages_and_a_budget() -> None:
    seen: list[SummaryRequest] = []

    class Notes:
        async def summarise(self, request: SummaryRequest) -> str:
            seen.append(request)
            return f"notes on {len(request.messages)} messages"

    agent, _ = reader(60, policy(summariser=Notes()))
    events = [e async for e in Runner(agent).query("read the report")]
    assert seen and all(r.max_tokens == 600 and r.agent == "reader" for r in seen)
    assert all(m.content != "read the report" for r in seen for m in r.messages)  # pinned
    assert customs(events, COMPACTION_COMPLETE)[0]["summary"].startswith("notes on")


async def test_a_summariser_model_can_be_another_backend() -> None:
    cheap = ScriptedModel(lambda request: "cheap summary")
    agent, model = reader(60, policy(summariser=ModelSummariser(cheap)))
    events = [e async for e in Runner(agent).query("read the report")]
    assert not any(is_summary_request(r) for r in model.requests)
    assert cheap.calls >= 1 and customs(events, COMPACTION_COMPLETE)[0]["summary"] == (
        "cheap summary"
    )


@tool(requires_approval=True)
def publish(title: str) -> str:
    """Publish the report."""
    return f"published {title}"


async def test_resume_replays_compactions_without_summarising_again(tmp_path: Path) -> None:
    db = str(tmp_path / "runs.sqlite")
    agent, first = reader(60, policy(), tools=[fetch, publish])
    paused = await Runner(agent, checkpoint_store=db, durability="step").invoke("read")
    [pending] = paused.interrupts
    assert any(is_summary_request(r) for r in first.requests)
    before = [r for r in first.requests if not is_summary_request(r)][-1].messages

    agent2, second = reader(60, policy(), tools=[fetch, publish])
    runner = Runner(agent2, checkpoint_store=db, durability="step")
    events = [e async for e in runner.resume(paused.run_id, {pending.id: True})]
    assert events[-1].text == "published"
    assert not any(is_summary_request(r) for r in second.requests)
    assert second.calls == 1  # only the call after the approval is live
    assert second.requests[0].messages[: len(before)] == before


async def test_a_long_session_is_compacted_across_turns(tmp_path: Path) -> None:
    db = str(tmp_path / "sessions.sqlite")
    agent, model = reader(30, policy())
    runner = Runner(agent, checkpoint_store=db)
    first = await runner.invoke("read the report", session_id="s1")
    assert first.text == "done after 30 pages"
    summaries = sum(1 for r in model.requests if is_summary_request(r))
    assert summaries >= 1

    agent2, model2 = reader(0, policy())
    second = await Runner(agent2, checkpoint_store=db).invoke("and now?", session_id="s1")
    assert second.text == "done after 0 pages"
    [request] = model2.requests
    sent = request.messages
    assert sent[1].content.startswith(SUMMARY_HEADER) and sent[1].name is None
    assert sent[-1].content == "and now?"
    assert not any(PAGE.match(m.content) and "page 1:" in m.content for m in sent)
    assert estimate_tokens(sent, request.tools) < 0.6 * 4_000


async def test_policy_arguments_are_checked() -> None:
    with pytest.raises(ArgumentTypeError, match="summariser"):
        ContextPolicy(summariser="gpt")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="keep_recent"):
        ContextPolicy(keep_recent=0.95)
    with pytest.raises(ArgumentTypeError, match="compaction"):
        ContextPolicy(compaction="yes")  # type: ignore[arg-type]
    assert Message.user("x").name is None


def compacting_agents(events: list[Any]) -> set[str]:
    return {
        e.agent_name
        for e in events
        if e.output is not None
        and isinstance(e.output.custom, dict)
        and e.output.custom.get("kind") == COMPACTION_COMPLETE
    }


def named_reader(name: str, pages: int) -> tuple[ChatModelAgent, ScriptedModel]:
    model = ScriptedModel(reading_script(pages))
    return ChatModelAgent(name, model=model, tools=[fetch], max_iterations=200), model


async def test_parallel_branches_compact_their_own_turns() -> None:
    (left, left_model), (right, right_model) = named_reader("left", 50), named_reader("right", 60)
    runner = Runner(ParallelAgent("both", [left, right]), context=policy())
    events = [e async for e in runner.query("read")]
    assert compacting_agents(events) == {"left", "right"}
    assert not any(e.is_error for e in events)
    for model in (left_model, right_model):
        summaries = [r for r in model.requests if is_summary_request(r)]
        assert summaries and {r.stage for r in summaries} == {
            f"{r.agent_name}.compaction" for r in summaries
        }


async def test_an_agent_tool_and_a_transfer_compact_inside_their_turns() -> None:
    inner, inner_model = named_reader("inner", 60)

    def outer_script(request: ModelRequest) -> Any:
        if request.messages[-1].role == "tool":
            return "outer done"
        return ToolCall.of("inner", request="read everything")

    outer = ChatModelAgent("outer", model=ScriptedModel(outer_script), tools=[AgentTool(inner)])
    result = await Runner(outer, context=policy()).invoke("go")
    assert result.text == "outer done"  # the agent tool's events stay inside it
    assert any(is_summary_request(r) for r in inner_model.requests)

    target, _ = named_reader("reader", 60)
    router = ChatModelAgent(
        "router",
        model=ScriptedModel([ToolCall.of("transfer_to_agent", agent_name="reader")]),
        sub_agents=[target],
    )
    moved = await Runner(router, context=policy()).invoke("read")
    assert moved.text == "done after 60 pages" and compacting_agents(moved.events) == {"reader"}


async def test_the_next_agent_sees_the_summary_not_what_it_replaced() -> None:
    first, _ = named_reader("reader", 60)
    writer_model = ScriptedModel(["written"])
    writer = ChatModelAgent("writer", model=writer_model)
    result = await Runner(SequentialAgent("flow", [first, writer]), context=policy()).invoke("go")
    assert result.text == "written"
    seen = writer_model.requests[0].messages
    assert any(m.content.startswith(SUMMARY_HEADER) for m in seen)
    assert not any("page 1:" in m.content for m in seen)


async def test_a_summarised_part_larger_than_half_the_window_is_summarised_in_chunks() -> None:
    seen: list[SummaryRequest] = []

    async def notes(request: SummaryRequest) -> str:
        seen.append(request)
        return f"notes {len(seen)}"

    # Nothing is elided by GC (max age 50): compaction alone must take ~25 results at once.
    settings = {"threshold": 1.0, "keep_recent": 0.1, "tool_result_max_age": 50}
    agent, _ = reader(40, policy(window=16_000, summariser=notes, **settings))
    events = [e async for e in Runner(agent).query("read the report")]
    assert events[-1].text == "done after 40 pages"
    assert len(seen) >= 2  # one compaction, several chunks
    first_call = seen[0].call_id
    assert seen[1].call_id.startswith(first_call.rsplit(".", 1)[0])
    assert seen[1].messages[0].content.startswith(SUMMARY_HEADER)  # the last chunk's notes fold in
    assert "notes 1" in seen[1].messages[0].content


def test_crafted_or_damaged_markers_never_break_the_history_view() -> None:
    from adk.agents.compaction import marker_message
    from adk.agents.history import compacted_view
    from adk.events import HistoryEntry

    entries = [HistoryEntry(None, Message.user(f"m{i}")) for i in range(6)]
    crafted = Message.user("x", name="adk.compacted:abc:1")  # not a number: not a marker
    assert compacted_view([*entries, HistoryEntry("a", crafted)])[-1].message is crafted
    huge = marker_message("sum", 10_000, [99_999, 2])  # kept and pinned beyond the start
    view = compacted_view([*entries, HistoryEntry("a", huge)])
    assert view[0].message.content.endswith("sum") and view[0].message.name is None
    assert [e.message.content for e in view[1:]] == [f"m{i}" for i in range(6)]
    normal = marker_message("sum2", 2, [5])
    view = compacted_view(
        [*entries, HistoryEntry("a", normal), HistoryEntry(None, Message.user("after"))]
    )
    assert [e.message.content for e in view[1:]] == ["m1", "m4", "m5", "after"]
