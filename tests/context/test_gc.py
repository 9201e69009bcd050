"""Tool-result GC: stubs, recall, a stable prompt prefix, events, bad input, no policy."""

from __future__ import annotations

import itertools

import pytest

from adk import ContextPolicy, ContextWindowExceededError, Message, Runner
from adk.state.context_policy import GC_COMPLETE
from tests.context.helpers import RESULT_CHARS, looping_agent, small_policy, stubs

pytestmark = pytest.mark.anyio


def gc_events(events: list) -> list[dict]:  # type: ignore[type-arg]
    return [
        e.output.custom
        for e in events
        if e.output is not None
        and isinstance(e.output.custom, dict)
        and e.output.custom.get("kind") == GC_COMPLETE
    ]


async def test_old_results_become_stubs_and_recall_returns_them() -> None:
    agent, model = looping_agent(8, small_policy(), recall_first=True)
    events = [e async for e in Runner(agent).query("read the document")]
    assert not any(e.is_error for e in events)
    first = model.requests[1].messages[-1]  # page 1's result, as first sent
    assert first.role == "tool" and first.content.startswith("page 1: ")
    last = model.requests[-1].messages
    assert first.tool_call_id in stubs(last)
    [stub] = [m for m in last if m.role == "tool" and m.tool_call_id == first.tool_call_id]
    assert f"fetch call {first.tool_call_id}" in stub.content
    assert f"{len(first.content)} characters" in stub.content
    assert "recall(" in stub.content and "call fetch again" in stub.content
    # The recall call's result (the last tool message) is the original, in full.
    assert last[-1].name == "recall" and last[-1].content == first.content
    assert "recall" in [spec.name for spec in model.requests[0].tools]
    found = gc_events(events)
    assert found and found[0]["tokens_after"] < found[0]["tokens_before"]
    assert first.tool_call_id in found[0]["elided"]


async def test_prefix_is_identical_between_gc_steps() -> None:
    # An 8,000-token window: GC at 4,800 tokens, about 9 results; then 3 stay.
    agent, model = looping_agent(24, small_policy(window=8_000))
    events = [e async for e in Runner(agent).query("read the document")]
    gcs = gc_events(events)
    requests = [list(r.messages) for r in model.requests]
    steps = 0
    for before, after in itertools.pairwise(requests):
        if stubs(before) == stubs(after):  # no GC in between: the prompt only grew
            assert after[: len(before)] == before
        else:
            steps += 1
            first = next(i for i, (a, b) in enumerate(zip(after, before, strict=False)) if a != b)
            assert after[:first] == before[:first]
            assert after[first].content.startswith("[elided tool result")
    assert steps == len(gcs) >= 2
    assert steps <= len(requests) // 3  # rare, large steps: several results at once
    assert all(len(g["elided"]) >= 2 for g in gcs[1:])


async def test_pinned_results_and_system_prompt_are_never_elided() -> None:
    policy = small_policy(pinned=lambda m: m.content.startswith("page 2:"))
    agent, model = looping_agent(10, policy, instruction="You read documents.")
    [e async for e in Runner(agent).query("read")]
    last = model.requests[-1].messages
    assert last[0] == Message.system("You read documents.")
    assert any(m.content.startswith("page 2:") for m in last)
    assert not any(m.content.startswith("page 1:") for m in last)


async def test_gc_batch_collects_below_the_threshold() -> None:
    policy = ContextPolicy(window=1_000_000, headroom=0, gc_batch=2, tool_result_max_age=2)
    agent, model = looping_agent(6, policy)
    events = [e async for e in Runner(agent).query("read")]
    assert [len(g["elided"]) for g in gc_events(events)] == [2, 2]
    assert len(stubs(model.requests[-1].messages)) == 4


async def test_oversized_message_is_an_error_naming_it() -> None:
    agent, model = looping_agent(3, small_policy())
    events = [e async for e in Runner(agent).query("y" * 40_000)]
    error = events[-1].error
    assert error is not None and error.type == "ContextWindowExceededError"
    assert error.details == {"index": 0, "role": "user", "tokens": 10_004}
    assert "message 0 (user)" in error.message
    assert isinstance(error.exception, ContextWindowExceededError)
    assert model.calls == 0


async def test_over_the_window_after_gc_the_call_goes_ahead() -> None:
    # Nothing old enough to elide yet: the call is made (the provider decides).
    policy = ContextPolicy(window=2_000, headroom=0, tool_result_max_age=10, compaction=False)
    agent, model = looping_agent(5, policy)
    events = [e async for e in Runner(agent).query("read")]
    assert not any(e.is_error for e in events) and model.calls == 6
    assert not stubs(model.requests[-1].messages)


async def test_no_policy_leaves_requests_unchanged() -> None:
    plain, plain_model = looping_agent(8, None)
    [e async for e in Runner(plain).query("read")]
    assert "recall" not in [spec.name for spec in plain_model.requests[0].tools]
    for request in plain_model.requests:
        assert not stubs(list(request.messages))
        for m in request.messages:
            if m.role == "tool":
                assert len(m.content) > RESULT_CHARS
    # The same run with a policy that never acts sends the same messages.
    idle, idle_model = looping_agent(8, ContextPolicy(window=1_000_000))
    [e async for e in Runner(idle).query("read")]
    strip = [[(m.role, m.content) for m in r.messages] for r in plain_model.requests]
    assert strip == [[(m.role, m.content) for m in r.messages] for r in idle_model.requests]


async def test_runner_default_applies_to_agents_without_a_policy() -> None:
    agent, model = looping_agent(8, None)
    events = [e async for e in Runner(agent, context=small_policy()).query("read")]
    assert gc_events(events)
    assert "recall" in [spec.name for spec in model.requests[0].tools]
    assert stubs(list(model.requests[-1].messages))


async def test_streaming_run_collects_the_same_way() -> None:
    agent, model = looping_agent(8, small_policy())
    events = [e async for e in Runner(agent, streaming=True).query("read")]
    assert gc_events(events)
    assert any(e.partial for e in events)
    assert stubs(list(model.requests[-1].messages))
