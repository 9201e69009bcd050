"""The ``adk`` command's run commands: ``run``, ``resume``, ``runs``, ``show``, ``sessions``.

People who build agents want to watch one run: which agent is active, what
it streams, which tools it calls and where it waits for them, what it
costs. ``adk run module:agent "text"`` shows that live in the terminal
(rich) and asks for approvals there; ``--plain`` (the default in a pipe)
prints JSON Lines instead. This package is imported by :mod:`adk.cli` only;
it imports rich only when a command runs, so ``import adk`` never does.
"""

from __future__ import annotations

from adk.console.commands import COMMANDS, add_console_parsers, run_console_command

__all__ = ["COMMANDS", "add_console_parsers", "run_console_command"]
