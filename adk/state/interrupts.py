"""Interrupts: pausing a run until a human (or an external system) answers.

A tool raises :class:`Interrupt` (or calls ``ctx.interrupt(info)``), a tool
built with ``requires_approval`` asks before it runs, a custom agent yields
``self.interrupt_event(ctx, info)``. The Runner checkpoints the run; on
``runner.resume(checkpoint_id, answers={interrupt_id: value})`` the run is
replayed from its journal (completed model and tool calls are not repeated)
and the interrupted code runs again, this time finding its answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from adk.errors import AdkError
from adk.events import InterruptInfo


class Interrupt(Exception):
    """Raised by a tool to pause the run until someone answers ``info``.

    ``info`` must be JSON-like (or a registered pydantic model): it is
    stored in the checkpoint and shown to whoever answers. On resume the tool
    is called again; ``ctx.answer`` then holds the answer.
    """

    def __init__(self, info: Any = None, *, key: str | None = None) -> None:
        super().__init__(f"interrupted: {info!r}")
        self.info = info
        self.key = key
        self.nested: tuple[InterruptInfo, ...] = ()

    @classmethod
    def of_nested(cls, interrupts: Sequence[InterruptInfo]) -> Interrupt:
        """An interrupt that carries interrupts raised deeper (inside an agent tool)."""
        interrupt = cls(None)
        interrupt.nested = tuple(interrupts)
        return interrupt


class InterruptAnswerUnread(AdkError):
    """A resumed run paused again on an interrupt it was given the answer to, unread.

    The code that raised the interrupt did not ask for its answer the way it
    was addressed, so resuming again would pause again, forever.
    """


class Approval(BaseModel):
    """The answer to an approval interrupt: approve, reject with a message, or edit arguments.

    Build it with :meth:`approve`, :meth:`reject` or :meth:`edit`; plain
    ``True``/``False`` and dicts such as ``{"approved": False, "message":
    "..."}`` are accepted as answers too.
    """

    model_config = ConfigDict(frozen=True, defer_build=True)

    decision: Literal["approve", "reject", "edit"]
    message: str = ""
    arguments: dict[str, Any] | None = None

    @classmethod
    def approve(cls) -> Approval:
        """Run the call as the model asked."""
        return cls(decision="approve")

    @classmethod
    def reject(cls, message: str = "") -> Approval:
        """Do not run the call; the model reads ``message``."""
        return cls(decision="reject", message=message)

    @classmethod
    def edit(cls, arguments: dict[str, Any]) -> Approval:
        """Run the call with ``arguments`` instead (validated like the model's)."""
        return cls(decision="edit", arguments=arguments)

    @classmethod
    def parse(cls, answer: Any) -> Approval:
        """Read an answer given as an Approval, a bool, a decision string or a dict."""
        if isinstance(answer, Approval):
            return answer
        if isinstance(answer, bool):
            return cls.approve() if answer else cls.reject()
        if isinstance(answer, str) and answer in ("approve", "reject"):
            return cls(decision=answer)
        if isinstance(answer, dict):
            if "decision" in answer:
                return cls.model_validate(answer)
            if answer.get("arguments") is not None:
                return cls.edit(dict(answer["arguments"]))
            if answer.get("approved") is False:
                return cls.reject(str(answer.get("message", "")))
            if answer.get("approved") is True:
                return cls.approve()
        raise ValueError(
            f"cannot read {answer!r} as an approval: use Approval.approve(), "
            "Approval.reject(message) or Approval.edit(arguments)"
        )


def _register() -> None:
    from adk.state.serde import register_type

    register_type(Approval, "adk.Approval")


_register()
