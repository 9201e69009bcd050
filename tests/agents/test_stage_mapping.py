"""Stage mapping: the three mappers, assignments applied under a stage, errors, bad arguments."""

from __future__ import annotations

from typing import Any

import pytest

from adk import (
    AgentTool,
    ArgumentTypeError,
    ChatModelAgent,
    ConfigurationError,
    ExplicitStageMapping,
    Message,
    ModelConnectionError,
    ModelRequest,
    ModelResponse,
    OneBitStageMapper,
    RunContext,
    Runner,
    ScriptedModel,
    SequentialAgent,
    StageAssignment,
    StageRequest,
    ThresholdStageMapper,
    ToolCall,
    Usage,
    map_stage,
    prompt_score,
)
from adk.agents.stage_mappers import DEFAULT_ONE_BIT_INSTRUCTION, parse_bit
from adk.state.serde import CheckpointCorrupted
from tests.agents.stage_helpers import NamedModels, Staged, mapped_events, names

pytestmark = pytest.mark.anyio

EASY = "What is the capital of France?"
HARD = "Prove that the algorithm is optimal, analyse its complexity and derive a bound."


def scripted(name: str) -> ScriptedModel:
    return ScriptedModel(lambda request: f"{name} answers", name=name)


def agent(name: str, model: ScriptedModel, **options: Any) -> ChatModelAgent:
    return ChatModelAgent(name, model=model, **options)


async def run_flow(flow: Staged, text: str = "go", **models: ScriptedModel) -> list[Any]:
    runner = Runner(flow, serving=NamedModels(**models))
    return [event async for event in runner.query(text)]


# -- explicit mapping ---------------------------------------------------------------------------


async def test_explicit_mapping_routes_each_stage_and_lays_params_over() -> None:
    small, large, own = scripted("small"), scripted("large"), scripted("own")
    children = [
        agent("a", own, model_params={"temperature": 0.7, "seed": 1}),
        agent("b", own),
        agent("c", own),
    ]
    mapper = ExplicitStageMapping(
        {"a": StageAssignment("large", {"temperature": 0.0}), "b": "small"}
    )
    events = await run_flow(Staged("flow", children, mapper), small=small, large=large)
    assert (names(large), names(small), names(own)) == (["a"], ["b"], ["c"])
    assert large.requests[0].params == {"temperature": 0.0, "seed": 1}
    assert mapped_events(events) == [
        {
            "kind": "stage_mapped",
            "stage": "a",
            "mapper": "ExplicitStageMapping",
            "backend": "large",
            "params": {"temperature": 0.0},
            "reason": "explicit (listed)",
        },
        {
            "kind": "stage_mapped",
            "stage": "b",
            "mapper": "ExplicitStageMapping",
            "backend": "small",
            "params": {},
            "reason": "explicit (listed)",
        },
    ]
    # The event belongs to the stage it maps, and comes before the stage's own events.
    first = next(e for e in events if e.run_path == ("flow", "a"))
    assert first.output is not None and first.output.custom["kind"] == "stage_mapped"


async def test_explicit_default_and_delegation_to_another_mapper() -> None:
    small, large, own = scripted("small"), scripted("large"), scripted("own")
    threshold = ThresholdStageMapper(low="small", high="large")
    mapper = ExplicitStageMapping({"think": threshold}, default="small")
    children = [agent("intro", own), agent("think", own)]
    events = await run_flow(Staged("flow", children, mapper), HARD, small=small, large=large)
    assert (names(small), names(large), names(own)) == (["intro"], ["think"], [])
    reasons = [m["reason"] for m in mapped_events(events)]
    assert reasons[0] == "explicit (default)"
    assert reasons[1].startswith("score 0.6") and ">= threshold 0.5" in reasons[1]


# -- threshold mapper ---------------------------------------------------------------------------


def test_default_prompt_score_is_the_documented_heuristic() -> None:
    assert prompt_score("") == 0.0
    assert prompt_score(EASY) < 0.05
    assert prompt_score("Why?") == pytest.approx(0.2 + 0.4 / 300)  # one hard word, one word
    assert prompt_score(HARD) == pytest.approx(0.6 + 0.4 * 13 / 300)
    assert prompt_score("word " * 600) == pytest.approx(0.4)  # length alone caps at 0.4


@pytest.mark.parametrize(("text", "backend"), [(EASY, "small"), (HARD, "large")])
async def test_threshold_picks_low_or_high_by_score(text: str, backend: str) -> None:
    small, large = scripted("small"), scripted("large")
    mapper = ThresholdStageMapper(low="small", high=StageAssignment("large", {"max_tokens": 99}))
    flow = Staged("flow", [agent("a", scripted("own"))], mapper)
    events = await run_flow(flow, text, small=small, large=large)
    (decision,) = mapped_events(events)
    assert decision["backend"] == backend
    assert decision["score"] == pytest.approx(prompt_score(text))
    assert names(small if backend == "small" else large) == ["a"]
    if backend == "large":
        assert large.requests[0].params == {"max_tokens": 99}


async def test_an_async_scorer_and_the_threshold_boundary() -> None:
    async def by_length(prompt: str) -> float:
        return float(len(prompt))

    small, large = scripted("small"), scripted("large")
    for threshold, text, chosen in [(5, "12345", large), (5, "1234", small), (6, "12345", small)]:
        mapper = ThresholdStageMapper(by_length, threshold, low="small", high="large")
        before = len(chosen.requests)
        events = await run_flow(
            Staged("flow", [agent("a", scripted("own"))], mapper), text, small=small, large=large
        )
        assert len(chosen.requests) == before + 1, (threshold, text)
        assert mapped_events(events)[0]["score"] == len(text)
    assert (len(small.requests), len(large.requests)) == (2, 1)  # 5 >= 5 is high


async def test_a_scorer_that_fails_ends_the_run_with_an_error_naming_it() -> None:
    def broken(prompt: str) -> float:
        raise ValueError("no score today")

    child = agent("a", scripted("own"))
    events = await run_flow(
        Staged("flow", [child], ThresholdStageMapper(broken, low="s", high="l"))
    )
    error = events[-1].error
    assert error is not None and error.type == "StageMappingError"
    assert "ThresholdStageMapper for stage 'a' failed: ValueError: no score today" in error.message

    bad = ThresholdStageMapper(lambda prompt: "hard", low="s", high="l")  # type: ignore[arg-type,return-value]
    events = await run_flow(Staged("flow", [child], bad))
    error = events[-1].error
    assert error is not None and error.type == "ArgumentTypeError"
    assert "scorer's result for stage 'a' must be a number, got str 'hard'" in error.message


# -- one-bit mapper -----------------------------------------------------------------------------


def classifier_answering(*answers: str | BaseException) -> ScriptedModel:
    """A classifier that answers in turn, each with a usage of 1000 prompt tokens."""
    script: list[Any] = [
        answer
        if isinstance(answer, BaseException)
        else ModelResponse(
            message=Message.assistant(answer), usage=Usage(prompt_tokens=1000, completion_tokens=1)
        )
        for answer in answers
    ]
    return ScriptedModel(script, name="tiny")


async def test_one_bit_classifier_call_and_its_usage() -> None:
    tiny = classifier_answering("hard")
    answer = Message.assistant("done", usage=Usage(prompt_tokens=10, completion_tokens=2))
    small, large = scripted("small"), ScriptedModel([answer], name="large")
    mapper = OneBitStageMapper(tiny, low="small", high="large", params={"max_tokens": 2})
    flow = Staged("flow", [agent("a", scripted("own"))], mapper)
    result = await Runner(flow, serving=NamedModels(small=small, large=large)).invoke(HARD)
    (request,) = tiny.requests
    assert request.params == {"temperature": 0, "max_tokens": 2}
    assert (request.stage, request.agent_name, request.agent_path) == (
        "stage_mapper",
        "stage_mapper",
        ("flow", "a", "stage_mapper"),
    )
    assert [m.content for m in request.messages] == [DEFAULT_ONE_BIT_INSTRUCTION, HARD]
    assert request.call_id == f"{result.run_id}:flow/a|stage"
    assert names(large) == ["a"] and not small.requests
    (decision,) = mapped_events(result.events)
    assert decision["reason"] == "classifier answered 'hard'"
    assert "usage" not in decision  # journaled, not shown
    # The classifier's call counts in the run's usage.
    assert result.usage == Usage(prompt_tokens=1010, completion_tokens=3)


@pytest.mark.parametrize(
    ("answer", "backend", "reason"),
    [
        ("easy", "small", "classifier answered 'easy'"),
        (" 1\n", "large", "classifier answered ' 1\\n'"),
        ("Probably hard.", "large", "not one bit (easy/hard, 0/1): high by default"),
        ("", "large", "classifier answered '', not one bit"),
        (
            ModelConnectionError("refused"),
            "large",
            "classifier call failed (ModelConnectionError: refused): high by default",
        ),
    ],
)
async def test_one_bit_answers_and_malformed_ones(
    answer: str | BaseException, backend: str, reason: str
) -> None:
    small, large = scripted("small"), scripted("large")
    mapper = OneBitStageMapper(classifier_answering(answer), low="small", high="large")
    events = await run_flow(
        Staged("flow", [agent("a", scripted("own"))], mapper), "task", small=small, large=large
    )
    (decision,) = mapped_events(events)
    assert decision["backend"] == backend
    assert reason in decision["reason"]
    assert names(small if backend == "small" else large) == ["a"]


async def test_one_bit_with_a_predictor_sync_or_async() -> None:
    async def hard_if_long(prompt: str) -> str:
        return "hard" if len(prompt) > 10 else "easy"

    small, large = scripted("small"), scripted("large")
    for predictor, text, backend in [
        (lambda prompt: True, "x", "large"),
        (lambda prompt: 0, "x", "small"),
        (hard_if_long, "short", "small"),
        (hard_if_long, "a much longer task", "large"),
        (lambda prompt: 2, "x", "large"),  # not a bit: high by default
    ]:
        mapper = OneBitStageMapper(predictor=predictor, low="small", high="large")
        events = await run_flow(
            Staged("flow", [agent("a", scripted("own"))], mapper), text, small=small, large=large
        )
        (decision,) = mapped_events(events)
        assert decision["backend"] == backend, (text, decision)
    assert "predictor answered 2, not one bit" in decision["reason"]


def test_parse_bit_is_strict() -> None:
    for answer in (True, 1, "1", "hard", " HARD ", "high"):
        assert parse_bit(answer) is True, answer
    for answer in (False, 0, "0", "easy", "Easy\n", "low"):
        assert parse_bit(answer) is False, answer
    for answer in (2, -1, "", "hard.", "easy or hard", "yes", None, 1.0, ["hard"]):
        assert parse_bit(answer) is None, answer


# -- where an assignment applies ----------------------------------------------------------------


def per_agent(request: ModelRequest) -> Any:
    """One scripted LLM for every agent: the writer asks the inner agent first."""
    if request.agent_name == "writer" and not any(m.role == "tool" for m in request.messages):
        return ToolCall.of("inner", request="draft it")
    return f"{request.agent_name} answers"


async def test_an_assignment_applies_to_every_model_call_under_the_stage_in_this_run_only() -> None:
    own, large = ScriptedModel(per_agent, name="own"), ScriptedModel(per_agent, name="large")
    inner = ChatModelAgent("inner", model=own)
    writer = ChatModelAgent("writer", model=own, tools=[AgentTool(inner)])
    stage = SequentialAgent("stage", [ChatModelAgent("first", model=own), writer])
    after = ChatModelAgent("after", model=own)
    mapper = ExplicitStageMapping({"stage": StageAssignment("large", {"temperature": 0.2})})
    events = await run_flow(Staged("flow", [stage, after], mapper), large=large)
    assert events[-1].error is None
    assert names(large) == ["first", "writer", "inner", "writer"]
    assert all(request.params == {"temperature": 0.2} for request in large.requests)
    assert names(own) == ["after"]
    assert writer.model is own and inner.model is own  # the agents are not changed
    # Another run of the same agents without a mapping: their own model again.
    result = await Runner(SequentialAgent("plain", [stage]), serving=NamedModels()).invoke("go")
    assert result.text == "writer answers"
    assert names(own) == ["after", "first", "writer", "inner", "writer"]


async def test_a_mapper_answering_none_leaves_the_stage_alone() -> None:
    own, small = scripted("own"), scripted("small")
    mapper = ExplicitStageMapping({"b": "small"})  # no default: "a" keeps its model
    events = await run_flow(Staged("flow", [agent("a", own), agent("b", own)], mapper), small=small)
    assert [m["stage"] for m in mapped_events(events)] == ["b"]
    assert (names(own), names(small)) == (["a"], ["b"])


async def test_streamed_calls_use_the_assignment_too() -> None:
    large = ScriptedModel(["streamed from large"], chunk_chars=4, name="large")
    flow = Staged("flow", [agent("a", scripted("own"))], ExplicitStageMapping({}, default="large"))
    runner = Runner(flow, serving=NamedModels(large=large), streaming=True)
    events = [event async for event in runner.query("go")]
    assert sum(1 for e in events if e.partial) == 5
    assert events[-1].message is not None and events[-1].message.content == "streamed from large"


# -- misuse -------------------------------------------------------------------------------------


class Answers:
    """A custom mapper that answers whatever it was given."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer

    async def assign(self, stage: StageRequest, ctx: RunContext) -> Any:
        return self.answer


async def test_a_custom_mapper_may_name_a_backend_but_not_answer_nonsense() -> None:
    small = scripted("small")
    events = await run_flow(
        Staged("flow", [agent("a", scripted("own"))], Answers("small")), small=small
    )
    assert mapped_events(events)[0]["reason"] == "Answers named it"
    assert names(small) == ["a"]
    events = await run_flow(Staged("flow", [agent("a", scripted("own"))], Answers(42)))
    error = events[-1].error
    assert error is not None and error.type == "StageMappingError"
    assert "Answers for stage 'a' returned int 42: return a StageAssignment" in error.message


async def test_a_damaged_journaled_decision_is_reported() -> None:
    ctx = RunContext.create(run_path=("flow", "a"))
    ctx.journal.note_value("flow/a|stage", {"backend": 7})
    with pytest.raises(CheckpointCorrupted, match=r"'flow/a\|stage': not a stage decision"):
        await map_stage(Answers("small"), "a", agent("a", scripted("own")), [], ctx)
    ctx.journal.note_value("flow/a|stage", ["not", "a", "dict"])
    with pytest.raises(CheckpointCorrupted, match="a dict, got list"):
        await map_stage(Answers("small"), "a", agent("a", scripted("own")), [], ctx)


async def test_map_stage_needs_a_mapper() -> None:
    ctx = RunContext.create(run_path=("a",))
    with pytest.raises(ArgumentTypeError, match="mapper must have an async assign"):
        await map_stage(object(), "a", agent("a", scripted("own")), [], ctx)  # type: ignore[arg-type]


BAD_ARGUMENTS: list[tuple[type[Exception], str, Any]] = [
    (ArgumentTypeError, "must be a serving-layer model name", lambda: StageAssignment(3)),
    (ConfigurationError, "backend must not be empty", lambda: StageAssignment("")),
    (ArgumentTypeError, "params must be a mapping", lambda: StageAssignment("x", [1])),
    (ConfigurationError, r"params\['f'\] is a type", lambda: StageAssignment("x", {"f": int})),
    (ArgumentTypeError, "keys must be str", lambda: StageAssignment("x", {"a": {1: 2}})),
    (ArgumentTypeError, "'a' must be a StageAssignment", lambda: ExplicitStageMapping({"a": 3})),
    (ConfigurationError, "bad stage name ''", lambda: ExplicitStageMapping({"": "x"})),
    (ArgumentTypeError, "stages must be a mapping", lambda: ExplicitStageMapping(["a"])),
    (
        ArgumentTypeError,
        "threshold must be a number, got str",
        lambda: ThresholdStageMapper(None, "0.5", low="a", high="b"),
    ),
    (
        ConfigurationError,
        "threshold must be a number, got NaN",
        lambda: ThresholdStageMapper(None, float("nan"), low="a", high="b"),
    ),
    (
        ArgumentTypeError,
        "scorer must be a function",
        lambda: ThresholdStageMapper(0.5, low="a", high="b"),
    ),
    (
        ArgumentTypeError,
        "high must be a StageAssignment",
        lambda: ThresholdStageMapper(low="a", high=None),
    ),
    (ConfigurationError, "exactly one of classifier", lambda: OneBitStageMapper(low="a", high="b")),
    (
        ConfigurationError,
        "exactly one of classifier",
        lambda: OneBitStageMapper("m", low="a", high="b", predictor=bool),
    ),
    (
        ArgumentTypeError,
        "classifier must be a ChatModel",
        lambda: OneBitStageMapper(42, low="a", high="b"),
    ),
    (
        ConfigurationError,
        "classifier must not be ''",
        lambda: OneBitStageMapper("", low="a", high="b"),
    ),
    (
        ArgumentTypeError,
        "predictor must be a function",
        lambda: OneBitStageMapper(low="a", high="b", predictor=1),
    ),
    (
        ConfigurationError,
        "instruction must be a non-empty",
        lambda: OneBitStageMapper("m", low="a", high="b", instruction=" "),
    ),
]


@pytest.mark.parametrize(("kind", "message", "make"), BAD_ARGUMENTS)
def test_bad_arguments_are_named(kind: type[Exception], message: str, make: Any) -> None:
    with pytest.raises(kind, match=message):
        make()
