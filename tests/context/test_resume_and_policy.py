"""Journaled GC decisions on resume; policy validation; token counting per model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adk import (
    Approval,
    ArgumentTypeError,
    ChatModelAgent,
    ConfigurationError,
    ContextPolicy,
    Message,
    ModelRequest,
    Runner,
    ScriptedModel,
    ToolCall,
    tool,
)
from adk.state.pricing import estimate_tokens
from tests.context.helpers import fetch, loop_script, small_policy, stubs

pytestmark = pytest.mark.anyio


@tool(requires_approval=True)
def publish(title: str) -> str:
    """Publish the summary."""
    return f"published {title}"


def publishing_script(pages: int) -> Any:
    """Fetch ``pages`` pages, then publish (needs approval), then answer."""
    fetching = loop_script(pages)

    def script(request: ModelRequest) -> Any:
        last = request.messages[-1]
        if last.role == "tool" and last.name == "publish":
            return "all done"
        done = sum(1 for m in request.messages if m.role == "tool")
        if done < pages:
            return fetching(request)
        return ToolCall.of("publish", title="summary")

    return script


def publisher(policy: ContextPolicy) -> tuple[ChatModelAgent, ScriptedModel]:
    model = ScriptedModel(publishing_script(10))
    agent = ChatModelAgent(
        "reader", model=model, tools=[fetch, publish], context=policy, max_iterations=40
    )
    return agent, model


async def test_resumed_run_replays_gc_decisions_without_counting(tmp_path: Path) -> None:
    db = str(tmp_path / "runs.sqlite")
    agent, first_model = publisher(small_policy())
    paused = await Runner(agent, checkpoint_store=db, durability="step").invoke("read")
    [pending] = paused.interrupts
    before = list(first_model.requests[-1].messages)
    assert stubs(before)  # GC happened before the pause

    replaying = True

    def counter(messages: Any, tools: Any = ()) -> int:
        if replaying:
            raise AssertionError("token counting during replay")
        return estimate_tokens(messages, tools)

    published = publish.fn

    def publish_now(title: str) -> str:
        nonlocal replaying
        replaying = False  # the first live step after the replayed ones
        return str(published(title))

    agent2, second_model = publisher(small_policy(counter=counter))
    agent2.tools["publish"].fn = publish_now  # type: ignore[attr-defined]
    runner = Runner(agent2, checkpoint_store=db, durability="step")
    done = await runner.resume_invoke(paused.checkpoint_id or "", {pending.id: Approval.approve()})
    assert done.text == "all done" and not replaying
    [resumed] = second_model.requests  # only the call after the approval is live
    after = list(resumed.messages)
    assert after[: len(before)] == before  # the same context, stubs and all
    assert set(stubs(before)) <= set(stubs(after))


def test_policy_validation_names_the_field() -> None:
    with pytest.raises(ConfigurationError, match="threshold"):
        ContextPolicy(threshold=1.5)
    with pytest.raises(ArgumentTypeError, match="window"):
        ContextPolicy(window="big")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="tool_result_max_age"):
        ContextPolicy(tool_result_max_age=0)
    with pytest.raises(ConfigurationError, match="headroom"):
        ContextPolicy(window=1_000, headroom=1_000)
    with pytest.raises(ArgumentTypeError, match="pinned"):
        ContextPolicy(pinned="yes")  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match="gc_batch"):
        ContextPolicy(gc_batch=True)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="context must be a ContextPolicy"):
        ChatModelAgent("a", model=ScriptedModel([]), context={"window": 10})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Runner: context"):
        Runner(ChatModelAgent("a", model=ScriptedModel([])), context=0.6)  # type: ignore[arg-type]
    policy = ContextPolicy()
    assert (policy.threshold, policy.headroom, policy.tool_result_max_age) == (0.6, 6_400, 3)
    assert policy.fallback_window == 128_000 and policy.window is None


async def test_scripted_model_uses_the_estimate_and_the_fallback_window() -> None:
    window, counter = await ContextPolicy().for_model(ScriptedModel([]))
    assert (window, counter) == (128_000, estimate_tokens)
    window, _ = await ContextPolicy(fallback_window=9_000).for_model(ScriptedModel([]))
    assert window == 9_000


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_known_model_id_counts_with_litellm() -> None:
    window, counter = await ContextPolicy().for_model("openai/gpt-4o-mini")
    import litellm  # loaded by now, the way adk loads it (no cost-map download)

    assert window == litellm.get_model_info("openai/gpt-4o-mini")["max_input_tokens"]
    messages = [Message.user("The quick brown fox jumps over the lazy dog. " * 20)]
    expected = litellm.token_counter(
        model="openai/gpt-4o-mini", messages=[{"role": "user", "content": messages[0].content}]
    )
    assert counter(messages, ()) == expected != estimate_tokens(messages)
    # A conversation is counted message by message, each tokenized once (memoised).
    second = Message.assistant("Noted: " + "a fox, a dog. " * 30)
    alone = counter([second], ())
    calls = 0
    real = litellm.token_counter

    def counting(**kwargs: Any) -> int:
        nonlocal calls
        calls += 1
        return int(real(**kwargs))

    litellm.token_counter = counting
    try:
        assert counter([*messages, second], ()) == expected + alone
        assert calls == 0  # both were counted before
    finally:
        litellm.token_counter = real
    window, counter = await ContextPolicy(window=5_000, headroom=0).for_model("nobody/knows-this")
    assert (window, counter) == (5_000, estimate_tokens)
