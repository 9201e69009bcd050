"""The live terminal view of ``adk run``: the agent tree, streamed text, tool calls, a footer.

What has happened scrolls up as ordinary lines (tool calls and results,
collapsed when long; each agent's complete answers; errors), so the
terminal's scrollback keeps the run's story. Below them a live region is
redrawn a few times a second: the agent tree with the active path
highlighted (fan-outs show their branches done/total), the text being
streamed now, and a footer with model calls, tokens, cached tokens, cost
and elapsed time. Only this module and the prompts import rich, and only
when a command runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.text import Text
from rich.tree import Tree

from adk.agents.tree import sub_agents_of
from adk.console.driver import RunSummary
from adk.events import AgentEvent

if TYPE_CHECKING:
    from adk.agents.base import Agent

COLLAPSE_AT = 160
"""Tool arguments and results longer than this many characters are shown collapsed."""
_FAN_OUTS = ("ParallelAgent", "DAGAgent")


def collapse(text: str, limit: int = COLLAPSE_AT) -> str:
    """``text`` on one line, cut at ``limit`` characters with how much was left out."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    return f"{flat[:limit]}… (+{len(flat) - limit} chars)"


def footer_text(summary: RunSummary) -> str:
    """The footer's one line: model calls, tokens, cached tokens, cost and elapsed time."""
    tokens = summary.prompt_tokens + summary.completion_tokens
    return (
        f"model calls {summary.model_calls} · tokens {tokens} "
        f"(in {summary.prompt_tokens} / out {summary.completion_tokens}) · "
        f"cached {summary.cached_tokens} · cost ${summary.cost:.4f} · {summary.elapsed:.1f}s"
    )


def _last_leaf(agent: Agent) -> str:
    """The agent whose final answer ends ``agent``'s work (itself, or its last child's)."""
    children = sub_agents_of(agent)
    if not children or type(agent).__name__ in _FAN_OUTS:
        return agent.name
    return _last_leaf(children[-1])


class _FanOut:
    """Branches of one parallel agent or DAG: which started and which finished."""

    def __init__(self, agent: Agent) -> None:
        self.branches = {child.name: _last_leaf(child) for child in sub_agents_of(agent)}
        self.done: set[str] = set()

    def see(self, event: AgentEvent, depth: int) -> None:
        """Note a branch finished: its last agent answered, or it failed."""
        path = event.run_path
        if event.partial or len(path) <= depth or path[depth] not in self.branches:
            return
        branch = path[depth]
        message = event.message
        answered = (
            message is not None
            and message.role == "assistant"
            and not message.tool_calls
            and event.agent_name == self.branches[branch]
        )
        if answered or (event.error is not None and path[-1] == branch):
            self.done.add(branch)


class LiveView:
    """A :class:`~adk.console.driver.Display` drawing the run in the terminal with rich."""

    interactive = True

    def __init__(
        self, console: Console, root: Agent, progress: Callable[[str], RunSummary]
    ) -> None:
        self.console = console
        self.root = root
        self.progress = progress
        self.run_id = ""
        self.active: tuple[str, ...] = ()
        self.seen: set[str] = set()
        self.streaming: dict[str, str] = {}
        self.fan_outs: dict[str, _FanOut] = {}
        self._live: Live | None = None

    # -- the Display protocol -----------------------------------------------------------

    def start(self, run_id: str, agent: str, resumed_from: str | None) -> None:
        """Print the run's header and start the live region."""
        self.run_id = run_id
        self.active = (agent,)
        how = f" · resumed from {escape(resumed_from)}" if resumed_from else ""
        self.console.print(f"[bold]▶ run {escape(run_id)}[/] · agent {escape(agent)}{how}")
        self._live = Live(self, console=self.console, refresh_per_second=8, transient=True)
        self._live.start()

    def event(self, event: AgentEvent, run_id: str) -> None:
        """Take one event: update the tree and streamed text, print what completed."""
        self.active = event.run_path
        self.seen.update(event.run_path)
        self._fan_out(event)
        name = event.agent_name
        if event.partial:
            self.streaming[name] = self.streaming.get(name, "") + event.text
            return
        for line in self.lines(event):
            self.console.print(line, highlight=False)
        if event.message is not None and event.message.role == "assistant":
            self.streaming.pop(name, None)

    def pause(self) -> None:
        """Stop the live region (a prompt follows)."""
        if self._live is not None:
            self._live.stop()
            self._live = None

    def finish(self, summary: RunSummary) -> None:
        """Stop the live region and print how the run stopped, with the footer."""
        self.pause()
        self.active = ()
        self.console.print(self.tree())
        style = {"completed": "green", "failed": "red", "cancelled": "red"}.get(
            summary.status, "yellow"
        )
        self.console.print(f"[{style}]■ {summary.status}[/] · {footer_text(summary)}")

    def note(self, text: str) -> None:
        """A dim line for the person."""
        self.console.print(f"[dim]{escape(text)}[/]")

    # -- what scrolls up -----------------------------------------------------------------

    def lines(self, event: AgentEvent) -> list[str]:
        """The permanent lines (rich markup) of one complete event."""
        who = f"[cyan]{escape(event.agent_name)}[/]"
        if event.error is not None:
            return [
                f"{who} [bold red]✗ {escape(event.error.type)}[/]: {escape(event.error.message)}"
            ]
        action = event.action
        if action is not None and action.interrupted is not None:
            if action.interrupted.checkpoint_id is None:
                return []  # the agent's own; the Runner's, with the checkpoint, follows
            count = len(action.interrupted.interrupts)
            return [f"{who} [yellow]⏸ waiting for {count} answer{'s' * (count != 1)}[/]"]
        out: list[str] = []
        message = event.message
        if message is not None and message.role == "tool":
            result = escape(collapse(message.content))
            out.append(f"{who}   [green]←[/] {escape(str(message.name))}: {result}")
        elif message is not None:
            if message.content:
                out.append(f"{who} {escape(message.content)}")
            for call in message.tool_calls:
                args = collapse(call.arguments)
                out.append(f"{who}   [magenta]→[/] [bold]{escape(call.name)}[/]({escape(args)})")
        if action is not None and action.transfer_to_agent is not None:
            out.append(f"{who}   [blue]⇒ transfer to {escape(action.transfer_to_agent.dest)}[/]")
        if event.output is not None and event.output.custom is not None and message is None:
            custom = json.dumps(event.output.custom, default=str, ensure_ascii=False)
            out.append(f"{who}   [dim]{escape(collapse(custom))}[/]")
        return out

    # -- the live region ---------------------------------------------------------------

    def _fan_out(self, event: AgentEvent) -> None:
        for depth, name in enumerate(event.run_path[:-1], start=1):
            fan_out = self.fan_outs.get(name)
            if fan_out is None:
                agent = self._agent(name)
                if agent is None or type(agent).__name__ not in _FAN_OUTS:
                    continue
                fan_out = self.fan_outs[name] = _FanOut(agent)
            fan_out.see(event, depth)

    def _agent(self, name: str) -> Agent | None:
        stack = [self.root]
        while stack:
            agent = stack.pop()
            if agent.name == name:
                return agent
            stack.extend(sub_agents_of(agent))
        return None

    def tree(self) -> Tree:
        """The agent tree: the active path bold green, agents not yet heard from dim."""
        shown: set[str] = set()

        def label(agent: Agent) -> Text:
            name = agent.name
            if name in self.active:
                text = Text(f"▶ {name}", style="bold green")
            else:
                text = Text(f"  {name}", style="" if name in self.seen else "dim")
            fan_out = self.fan_outs.get(name)
            if fan_out is not None:
                text.append(f"  branches {len(fan_out.done)}/{len(fan_out.branches)}", "cyan")
            return text

        def add(node: Tree, agent: Agent) -> None:
            for child in sub_agents_of(agent):
                if child.name in shown:  # a transfer back up: shown once
                    continue
                shown.add(child.name)
                add(node.add(label(child)), child)

        shown.add(self.root.name)
        top = Tree(label(self.root), guide_style="dim")
        add(top, self.root)
        return top

    def __rich__(self) -> RenderableType:
        parts: list[RenderableType] = [self.tree()]
        for name, text in self.streaming.items():
            tail = "\n".join(text.splitlines()[-8:]) if text else ""
            parts.append(Text.assemble((f"{name} ", "cyan"), (tail, "")))
        parts.append(Text(footer_text(self.progress(self.run_id)), style="dim"))
        return Group(*parts)
