"""Replay addressing: the one place that names the parts of a run.

A resumed run executes its agents again from the start and finds what
already happened by name: every agent invocation, model call, tool call and
interrupt of a run has a deterministic address, the same in every execution
of the run. This module builds all of them; agents and tools ask their
context (``ctx.invocation``, ``ToolContext.address``...) and the functions
here, and never format an address themselves.

- An **address** is a tuple of segments from the root: agent names (the
  second and later invocations at one place get ``name@n``, e.g. loop
  iterations) and tool-call segments ``tool:call_id`` (an agent tool's inner
  run continues below its call).
- An **invocation key** is the address joined with ``/``: the journal key of
  one agent invocation, under which its delivered events are counted.
- A **model-call key** is ``<invocation>|m<iteration>``; a **tool-call key**
  is ``<model-call key>|t<index>``.
- An **interrupt id** is a short hash of the address and a key (``0``, ``1``...
  for a tool's questions, ``approval`` for an approval, ``agent:<key>`` for
  an agent's own interrupt).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

APPROVAL_KEY = "approval"
"""The interrupt key of a tool call's approval."""


def invocation_key(address: Sequence[str]) -> str:
    """The journal key of the agent invocation at ``address``."""
    return "/".join(address)


def occurrence_segment(name: str, occurrence: int) -> str:
    """The segment of the ``occurrence``-th invocation (from 0) of agent ``name`` at one place."""
    return f"{name}@{occurrence}" if occurrence else name


def model_call_key(invocation: str, iteration: int) -> str:
    """The journal key of an agent invocation's ``iteration``-th model call."""
    return f"{invocation}|m{iteration}"


def tool_call_key(model_call: str, index: int) -> str:
    """The journal key of the ``index``-th tool call of a model call's response."""
    return f"{model_call}|t{index}"


def tool_call_segment(tool_name: str, call_id: str) -> str:
    """The address segment of one tool call (interrupts and agent-tool runs sit below it)."""
    return f"{tool_name}:{call_id}"


def call_id(run_id: str, key: str) -> str:
    """A call's id across runs (serving metrics, idempotency keys): run id and journal key.

    ``call_id(run_id, "")`` is the prefix every call id of the run starts
    with, so a hot path may compute it once and append the journal keys.
    """
    return f"{run_id}:{key}"


def interrupt_id(address: Sequence[str], key: str) -> str:
    """The stable id of the interrupt ``key`` raised at ``address``."""
    digest = hashlib.sha1(("/".join(address) + "#" + key).encode()).hexdigest()
    return "int_" + digest[:16]


def agent_interrupt_id(address: Sequence[str], key: str) -> str:
    """The id of an agent's own interrupt ``key`` (not a tool's) at ``address``."""
    return interrupt_id(address, "agent:" + key)
