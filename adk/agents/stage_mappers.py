"""The stage mappers: an explicit table, a threshold on a prompt score, a one-bit classifier.

Each is a :class:`~adk.agents.stage_mapping.StageMapper` (after the Orla
serving client's mappers), applied per stage and per run by
:func:`~adk.agents.stage_mapping.map_stage`:

- :class:`ExplicitStageMapping`: a fixed table, stage name → backend (or a
  mapper of its own);
- :class:`ThresholdStageMapper`: a score of the prompt's text against a
  threshold picks the low or the high assignment;
- :class:`OneBitStageMapper`: a temperature-0 call on a small classifier
  model (or your own predictor) answers one bit, easy or hard.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

from adk.agents.stage_mapping import (
    CLASSIFIER_STAGE,
    STAGE_SUFFIX,
    StageAssignment,
    StageMapper,
    StageRequest,
    as_assignment,
    checked_number,
)
from adk.errors import ArgumentTypeError, ConfigurationError, ModelError
from adk.messages import Message
from adk.models.base import ChatModel, ModelRequest, ModelResponse
from adk.state.addressing import call_id
from adk.state.context import RunContext

Entry = StageAssignment | str | StageMapper
"""A table entry: an assignment, a backend name, or a mapper deciding that stage."""


class ExplicitStageMapping:
    """A fixed table: stage name → assignment, backend name, or another mapper.

    Stages not in the table get ``default`` (same kinds), or keep their
    agents' own models when it is None. A mapper as a value delegates that
    stage (``{"answer": ThresholdStageMapper(...), "polish": "small"}``).
    """

    def __init__(self, stages: Mapping[str, Entry], default: Entry | None = None) -> None:
        if not isinstance(stages, Mapping):
            raise ArgumentTypeError(
                f"ExplicitStageMapping: stages must be a mapping of stage name to backend, "
                f"got {type(stages).__name__}"
            )
        self.stages: dict[str, StageAssignment | StageMapper] = {}
        for name, entry in stages.items():
            if not isinstance(name, str) or not name:
                raise ConfigurationError(f"ExplicitStageMapping: bad stage name {name!r}")
            self.stages[name] = _entry(entry, f"ExplicitStageMapping: stage {name!r}")
        self.default = None if default is None else _entry(default, "ExplicitStageMapping default")

    async def assign(self, stage: StageRequest, ctx: RunContext) -> StageAssignment | None:
        """The table's entry for ``stage.stage`` (or the default)."""
        entry = self.stages.get(stage.stage, self.default)
        if entry is None or isinstance(entry, StageAssignment):
            if entry is not None and not entry.reason:
                listed = "listed" if stage.stage in self.stages else "default"
                entry = replace(entry, reason=f"explicit ({listed})")
            return entry
        return await entry.assign(stage, ctx)


def _entry(entry: object, where: str) -> StageAssignment | StageMapper:
    if isinstance(entry, StageMapper):
        return entry
    return as_assignment(entry, where)


_HARD_WORDS = re.compile(
    r"\b(prove|proof|derive|analy[sz]e|analysis|compare|evaluate|design|architect\w*|"
    r"optimi[sz]e|debug|refactor|plan|trade-?offs?|why|step by step|multi-step|reason\w*|"
    r"algorithm\w*|complexity|calculate|estimate|strategy|concurren\w*|edge cases?)\b",
    re.IGNORECASE,
)


def prompt_score(prompt: str) -> float:
    """The default difficulty score of a prompt, from 0 (easy) to 1 (hard).

    A deliberately simple heuristic: ``0.4 * min(words / 300, 1) + 0.6 *
    min(hard words / 3, 1)``, where hard words are distinct markers of
    reasoning work (prove, derive, analyse, compare, design, optimise, debug,
    plan, trade-off, why, step by step, algorithm, complexity, estimate...).
    A short factual question scores near 0; "prove the algorithm's complexity"
    scores 0.6. Pass your own ``scorer`` for anything that matters.
    """
    words = len(prompt.split())
    hits = {match.lower() for match in _HARD_WORDS.findall(prompt)}
    return 0.4 * min(words / 300, 1.0) + 0.6 * min(len(hits) / 3, 1.0)


Scorer = Callable[[str], "float | Awaitable[float]"]
"""``scorer(prompt_text) -> float`` (or a coroutine function)."""


class ThresholdStageMapper:
    """A prompt score at or above ``threshold`` picks ``high``, below it ``low``.

    ``scorer(prompt_text)`` returns a number (sync or async; default
    :func:`prompt_score`). ``low`` and ``high`` are assignments or backend names.
    """

    def __init__(
        self,
        scorer: Scorer | None = None,
        threshold: float = 0.5,
        *,
        low: StageAssignment | str,
        high: StageAssignment | str,
    ) -> None:
        if scorer is not None and not callable(scorer):
            raise ArgumentTypeError(
                f"ThresholdStageMapper: scorer must be a function of the prompt text, "
                f"got {type(scorer).__name__}"
            )
        self.scorer: Scorer = scorer or prompt_score
        self.threshold = checked_number(threshold, "ThresholdStageMapper: threshold")
        self.low = as_assignment(low, "ThresholdStageMapper: low")
        self.high = as_assignment(high, "ThresholdStageMapper: high")

    async def assign(self, stage: StageRequest, ctx: RunContext) -> StageAssignment:
        """``high`` if the stage's prompt scores at least the threshold, else ``low``."""
        score: Any = self.scorer(stage.prompt)
        if inspect.isawaitable(score):
            score = await score
        where = f"ThresholdStageMapper: the scorer's result for stage {stage.stage!r}"
        score = checked_number(score, where)
        above = score >= self.threshold
        chosen = self.high if above else self.low
        relation = ">=" if above else "<"
        reason = f"score {score:.3g} {relation} threshold {self.threshold:.3g}"
        return replace(chosen, reason=reason, score=float(score))


DEFAULT_ONE_BIT_INSTRUCTION = (
    "You route tasks between a small and a large language model. Read the task and "
    "answer with exactly one word: easy (a small model can do it well) or hard (it "
    "needs careful multi-step reasoning, expertise or long work). Answer easy or hard."
)
"""The classifier's system prompt (its answer is read by :func:`parse_bit`)."""


Predictor = Callable[[str], "bool | int | str | Awaitable[bool | int | str]"]
"""``predictor(prompt_text)``: True/1/"hard" for the high stage, False/0/"easy" for the low."""

_LOW_WORDS = frozenset({"0", "easy", "low"})
_HIGH_WORDS = frozenset({"1", "hard", "high"})


def parse_bit(answer: object) -> bool | None:
    """The bit in a classifier's or predictor's answer: True (hard), False (easy), None.

    Strict: a bool, 0 or 1, or one of ``0 1 easy hard low high`` once
    surrounding whitespace is stripped and case ignored. Anything else
    (``"probably hard"``, ``"Easy."``) is None: not an answer.
    """
    if isinstance(answer, bool):
        return answer
    if isinstance(answer, int):
        return {0: False, 1: True}.get(answer)
    if isinstance(answer, str):
        word = answer.strip().lower()
        if word in _HIGH_WORDS:
            return True
        if word in _LOW_WORDS:
            return False
    return None


class OneBitStageMapper:
    """A temperature-0 classifier call answers one bit: ``low`` (easy) or ``high`` (hard).

    - ``classifier``: a small model (a :class:`~adk.ChatModel` or a
      serving-layer name), asked with ``instruction`` as system prompt and
      the stage's prompt as user message, at ``temperature=0`` (plus
      ``params``). Its call goes through the run's serving layer as stage
      ``"stage_mapper"``; its usage counts in the run's usage.
    - ``predictor``: instead of a classifier, your own function of the
      prompt text (sync or async) answering True/1/"hard" or False/0/"easy".
    - An answer :func:`parse_bit` cannot read, or a failed classifier call
      (a :class:`~adk.ModelError`), picks ``high``, and the reason says so.
    """

    def __init__(
        self,
        classifier: ChatModel | str | None = None,
        *,
        low: StageAssignment | str,
        high: StageAssignment | str,
        instruction: str = DEFAULT_ONE_BIT_INSTRUCTION,
        predictor: Predictor | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        if (classifier is None) == (predictor is None):
            raise ConfigurationError(
                "OneBitStageMapper needs exactly one of classifier (a model) or predictor "
                "(a function of the prompt)"
            )
        if classifier is not None and not isinstance(classifier, str | ChatModel):
            raise ArgumentTypeError(
                "OneBitStageMapper: classifier must be a ChatModel or a serving-layer model "
                f"name, got {type(classifier).__name__} {classifier!r}"
            )
        if classifier == "":
            raise ConfigurationError("OneBitStageMapper: classifier must not be ''")
        if predictor is not None and not callable(predictor):
            raise ArgumentTypeError(
                f"OneBitStageMapper: predictor must be a function, got {type(predictor).__name__}"
            )
        if not isinstance(instruction, str) or not instruction.strip():
            raise ConfigurationError("OneBitStageMapper: instruction must be a non-empty str")
        self.classifier = classifier
        self.predictor = predictor
        self.instruction = instruction
        self.params: dict[str, Any] = {"temperature": 0, **(params or {})}
        self.low = as_assignment(low, "OneBitStageMapper: low")
        self.high = as_assignment(high, "OneBitStageMapper: high")

    async def assign(self, stage: StageRequest, ctx: RunContext) -> StageAssignment:
        """Ask the classifier (or predictor) one bit about ``stage``'s prompt."""
        if self.predictor is not None:
            answer: Any = self.predictor(stage.prompt)
            if inspect.isawaitable(answer):
                answer = await answer
            return self._chosen(answer, "predictor")
        assert self.classifier is not None
        try:
            response = await self._ask(stage, ctx, self.classifier)
        except ModelError as exc:
            reason = f"classifier call failed ({type(exc).__name__}: {exc}): high by default"
            return replace(self.high, reason=reason)
        stage.spent(response.usage, self.classifier)
        return self._chosen(response.message.content, "classifier")

    def _chosen(self, answer: object, who: str) -> StageAssignment:
        bit = parse_bit(answer)
        shown = repr(answer)[:80]
        if bit is None:
            reason = f"{who} answered {shown}, not one bit (easy/hard, 0/1): high by default"
            return replace(self.high, reason=reason)
        return replace(self.high if bit else self.low, reason=f"{who} answered {shown}")

    async def _ask(
        self, stage: StageRequest, ctx: RunContext, model: ChatModel | str
    ) -> ModelResponse:
        """The classifier's answer, through the run's serving layer (and tracer)."""
        key = ctx.invocation + STAGE_SUFFIX
        messages = [Message.system(self.instruction), Message.user(stage.prompt)]
        request = ModelRequest(
            messages=messages,
            params=dict(self.params),
            run_id=ctx.run_id,
            session_id=ctx.session_id,
            agent_name=CLASSIFIER_STAGE,
            agent_path=(*ctx.run_path, CLASSIFIER_STAGE),
            stage=CLASSIFIER_STAGE,
            call_id=call_id(ctx.run_id, key),
        )
        generate = ctx.serving.generate
        tracer = ctx.tracer
        if tracer is not None:  # a chat span for the classifier call (adk.tracing)
            generate = tracer.generate(generate, ctx)
        return await generate(model, request)
