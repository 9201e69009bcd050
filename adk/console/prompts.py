"""Answering a run's interrupts in the terminal: approvals, questions, a paused run.

An approval offers what :class:`~adk.Approval` can say: approve, reject
with a message, or edit the arguments (a JSON object that replaces the
model's). A question takes JSON, or text when the line is not JSON. Lines
are read from the terminal without blocking the event loop, so Ctrl-C
still reaches the driver while a prompt waits; Ctrl-D (end of input) leaves
the run waiting, to be answered later with ``adk resume``.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, TextIO

import anyio

from adk.events import InterruptInfo


class TerminalPrompter:
    """Asks a person at the terminal for the answers to pending interrupts.

    ``out`` receives the questions (a rich ``Console`` or a text stream);
    ``fd`` is the terminal's input (stdin by default).
    """

    def __init__(self, out: Any = None, fd: int | None = None) -> None:
        self.out = out
        self.fd = sys.stdin.fileno() if fd is None else fd
        self._pending = b""

    def say(self, text: str) -> None:
        """Print one line (rich markup when ``out`` is a rich console)."""
        if self.out is not None and hasattr(self.out, "print"):
            self.out.print(text, highlight=False)
        else:
            stream: TextIO = self.out if self.out is not None else sys.stdout
            stream.write(_plain(text) + "\n")
            stream.flush()

    async def line(self, prompt: str) -> str | None:
        """One line typed at the terminal (None at end of input)."""
        if self.out is not None and hasattr(self.out, "print"):
            self.out.print(prompt, end="", highlight=False)
            self.out.file.flush()
        else:
            sys.stdout.write(_plain(prompt))
            sys.stdout.flush()
        while b"\n" not in self._pending:
            await anyio.wait_readable(self.fd)
            data = os.read(self.fd, 4096)
            if not data:
                self.say("")
                return None
            self._pending += data
        line, _, self._pending = self._pending.partition(b"\n")
        return line.decode("utf-8", "replace").strip()

    async def __call__(self, interrupts: tuple[InterruptInfo, ...]) -> dict[str, Any] | None:
        """The answers, one per interrupt; None if the person ended the input (Ctrl-D)."""
        answers: dict[str, Any] = {}
        for interrupt in interrupts:
            info = interrupt.info
            if isinstance(info, dict) and info.get("type") == "pause":
                reply = await self.line("[bold]the run is paused[/]: resume it? \\[y/n] ")
                if reply is None or not reply.lower().startswith("y"):
                    return None
                continue
            if isinstance(info, dict) and info.get("type") == "approval":
                answer = await self.approval(interrupt)
            else:
                answer = await self.question(interrupt)
            if answer is _NO_ANSWER:
                return None
            answers[interrupt.id] = answer
        return answers

    async def approval(self, interrupt: InterruptInfo) -> Any:
        """Approve, reject with a message, or edit the arguments of one tool call."""
        from adk.state.interrupts import Approval

        info = interrupt.info
        arguments = json.dumps(info.get("arguments", {}), ensure_ascii=False)
        self.say(
            f"[bold yellow]approval needed[/]: [bold]{_esc(str(info.get('tool')))}[/]"
            f"({_esc(arguments)})"
        )
        while True:
            choice = await self.line("approve \\[a], reject \\[r], edit the arguments \\[e]? ")
            if choice is None:
                return _NO_ANSWER
            choice = choice.lower()
            if choice in ("a", "approve", "y", "yes"):
                return Approval.approve()
            if choice in ("r", "reject", "n", "no"):
                reason = await self.line("reason (optional): ")
                return _NO_ANSWER if reason is None else Approval.reject(reason)
            if choice in ("e", "edit"):
                edited = await self.edited(arguments)
                return _NO_ANSWER if edited is None else Approval.edit(edited)
            self.say("type a, r or e")

    async def edited(self, current: str) -> dict[str, Any] | None:
        """New arguments as a JSON object, asked again until they parse."""
        self.say(f"current arguments: {_esc(current)}")
        while True:
            text = await self.line("new arguments (a JSON object): ")
            if text is None:
                return None
            try:
                value = json.loads(text)
            except ValueError as exc:
                self.say(f"[red]not JSON[/]: {_esc(str(exc))}")
                continue
            if isinstance(value, dict):
                return value
            self.say("[red]the arguments must be a JSON object[/]")

    async def question(self, interrupt: InterruptInfo) -> Any:
        """Any other interrupt: show what it asks; the answer is JSON, or the text typed."""
        info = interrupt.info
        shown = info.get("question", info) if isinstance(info, dict) else info
        text = shown if isinstance(shown, str) else json.dumps(shown, ensure_ascii=False)
        self.say(f"[bold yellow]question[/] ({_esc(interrupt.id)}): {_esc(text)}")
        reply = await self.line("answer: ")
        if reply is None:
            return _NO_ANSWER
        try:
            return json.loads(reply)
        except ValueError:
            return reply


_NO_ANSWER = object()


def _esc(text: str) -> str:
    """``text`` with rich markup escaped."""
    from rich.markup import escape

    return escape(text)


def _plain(text: str) -> str:
    """``text`` without rich markup, for a plain stream."""
    from rich.text import Text

    return Text.from_markup(text).plain


def parse_answers(pairs: list[str]) -> dict[str, Any]:
    """``--answer ID=VALUE`` pairs (``approve``, ``reject[:reason]``, JSON, or text)."""
    from adk.console.loading import CommandError
    from adk.state.interrupts import Approval

    answers: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise CommandError(f"--answer {pair!r}: expected INTERRUPT_ID=ANSWER")
        if raw == "approve":
            answers[key] = Approval.approve()
        elif raw == "reject" or raw.startswith("reject:"):
            answers[key] = Approval.reject(raw.partition(":")[2])
        else:
            try:
                answers[key] = json.loads(raw)
            except ValueError:
                answers[key] = raw
    return answers
