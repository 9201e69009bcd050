"""Argument checks for the Runner's public methods: a clear error at the call, cheap when right.

Misuse should fail where it is made, naming the argument, rather than deep
inside a run with an ``AttributeError`` or a ``RecursionError``. One rule
decides the exception type, here and in the constructors of agents and tools:

- :class:`~adk.ArgumentTypeError` (a ``TypeError``, as Python's convention
  wants, and a :class:`~adk.ConfigurationError`) when an argument is not the
  kind of object the parameter takes: a wrong type, a single item where a
  collection is expected (``tools=add``), a class where an instance is
  expected (``run(Message)``), a ``bool`` where a number is expected
  (``max_iterations=True``).
- :class:`~adk.ConfigurationError` when the argument has the right type but a
  value that is not allowed: out of range (``max_iterations=0``), not one of
  the choices (``cache="never"``), an unknown agent name, an empty checkpoint
  id, an agent tree with a cycle.

So ``except ConfigurationError`` catches every misuse, and ``except
TypeError`` the wrong kinds of value.

Every message names the method or agent, the argument, what was expected and
what was given (type and value: ``str '5'`` and ``5`` print alike otherwise).
Where the checks are: this module checks the arguments of ``Runner`` and its
run methods; agents check theirs in their constructors; :class:`~adk.AgentTree`
(built by ``Runner(...)`` and ``AgentTool(...)``) rejects an agent that is its
own sub-agent and workflow agents that contain each other; ``open_store``
rejects a ``checkpoint_store`` that is not a store.

Cost: constructors may check anything. ``query``, ``run`` and ``invoke`` are
on every run's path, so when their arguments are right the checks are a few
exact type comparisons (one per input message), and ``agent_options=None``
costs nothing; the ``isinstance`` checks against abstract classes and the
error messages run only when a fast comparison did not pass. Given agent
options are checked at every call, a few dictionary lookups per option (the
options adk reads are type-checked; other keys are left to the custom agents
that read them). Nothing here runs pydantic validation.

When: ``query``, ``invoke`` and ``resume_invoke`` check at the call. ``run``
and ``resume`` are async generators, so they check when iteration starts,
before any event.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, MutableMapping, Sequence
from typing import Any

from adk.agents.base import Agent
from adk.agents.tree import AgentTree, sub_agents_of
from adk.content import PART_TYPES
from adk.errors import ArgumentTypeError, ConfigurationError
from adk.messages import Message

CACHE_MODES = ("auto", "preserve", "flush")
"""The values of the ``cache`` agent option: the choices of ``ChatModelAgent(cache=...)``."""


def describe(value: object) -> str:
    """How a message shows a wrong value: its type, then its (shortened) repr.

    Both matter: ``'5'`` and ``5`` look alike in a log line, ``str '5'`` does not.
    """
    if value is None:
        return "None"
    if isinstance(value, type):
        return f"the {value.__name__} class"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def is_int(value: object) -> bool:
    """True for an int that is not a bool (``True`` as a count is a mistake, not a 1)."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_count(label: str, value: object, minimum: int) -> None:
    """Check a count such as ``max_iterations``: an int (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentTypeError(f"{label} must be an int, got {describe(value)}")
    if value < minimum:
        raise ConfigurationError(f"{label} must be at least {minimum}, got {value}")


def check_seconds(label: str, value: object, alternative: str = "") -> None:
    """Check a duration: a positive int or float (not a bool, not NaN).

    ``alternative`` completes the TypeError's list of what is accepted (e.g. None).
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ArgumentTypeError(
            f"{label} must be a number of seconds (int or float){alternative}, "
            f"got {describe(value)}"
        )
    if not value > 0:
        raise ConfigurationError(f"{label} must be a positive number of seconds, got {value}")


# -- Runner(...) ----------------------------------------------------------------------


def check_runner_settings(
    checkpoint_ttl: object, resume_lease: object, max_transfers: object
) -> None:
    """Check the Runner's numeric settings, so that a typo fails now, not at the first pause."""
    if checkpoint_ttl is not None:
        check_seconds("Runner: checkpoint_ttl", checkpoint_ttl, " or None (never expire)")
    check_seconds("Runner: resume_lease", resume_lease)
    check_count("Runner: max_transfers", max_transfers, 0)


# -- query, run, invoke ---------------------------------------------------------------


def check_query(
    tree: AgentTree, text: object, session_values: object, agent_options: object
) -> None:
    """Check the arguments of ``query``: one str or list of parts, then as :func:`check_run`.

    ``query`` is a plain function, so these fail at the call; the ``run`` it
    returns checks again (a few type comparisons) when iterated.
    """
    if type(text) is not str and not isinstance(text, str) and not is_content(text):
        _check_content("query: text", text)
    if session_values is not None or agent_options is not None:
        _check_state("query", tree, session_values, agent_options)


def check_run(
    tree: AgentTree, messages: object, session_values: object, agent_options: object
) -> None:
    """Check the arguments of ``run``: a list of :class:`~adk.Message`, a mapping, options."""
    if type(messages) is not list or not _all_messages(messages):
        _check_messages("run: messages", messages)
    if session_values is not None or agent_options is not None:
        _check_state("run", tree, session_values, agent_options)


def check_invoke(
    tree: AgentTree, input: object, session_values: object, agent_options: object
) -> None:
    """Check the arguments of ``invoke``: a str or a list of :class:`~adk.Message`, etc."""
    if type(input) is list:
        if not _all_messages(input):
            _check_messages("invoke: input", input)
    elif not isinstance(input, str):
        _check_messages("invoke: input", input)
    if session_values is not None or agent_options is not None:
        _check_state("invoke", tree, session_values, agent_options)


def is_content(value: object) -> bool:
    """True for one user message's content given as parts: a part, or a list of parts and str.

    (A list with at least one part: a list of str alone is not taken for parts.)
    """
    if isinstance(value, PART_TYPES):
        return True
    if type(value) not in (list, tuple) or not value:
        return False
    assert isinstance(value, list | tuple)
    return all(type(item) is str or isinstance(item, PART_TYPES) for item in value) and any(
        isinstance(item, PART_TYPES) for item in value
    )


def _check_content(label: str, value: object) -> None:
    """Say what is wrong with content that is neither a str nor a list of parts."""
    if type(value) in (list, tuple) and any(
        type(item) is str or isinstance(item, PART_TYPES)
        for item in value  # type: ignore[attr-defined]
    ):
        assert isinstance(value, list | tuple)
        for index, item in enumerate(value):
            if type(item) is not str and not isinstance(item, PART_TYPES):
                raise ArgumentTypeError(
                    f"{label}[{index}] must be a str or a part (TextPart, ImagePart, AudioPart, "
                    f"FilePart), got {describe(item)}; to send a list of Message, use run(...) "
                    "or invoke(...)"
                )
    raise ArgumentTypeError(
        f"{label} must be a str (one user message) or a list of parts, got {describe(value)}; "
        "to send a list of Message, use run(...) or invoke(...)"
    )


def _all_messages(messages: list[Any], message_class: type[Message] = Message) -> bool:
    """True if every item is exactly a Message: one comparison per message, no isinstance.

    (Subclasses and tuples take the slow path, which accepts them.) A plain loop:
    ``all()`` over a generator costs about twice as much on this hot path.
    """
    for message in messages:  # noqa: SIM110
        if type(message) is not message_class:
            return False
    return True


def _check_state(
    method: str, tree: AgentTree, session_values: object, agent_options: object
) -> None:
    """Check ``session_values`` and ``agent_options``: two comparisons when both are usual."""
    if session_values is not None and type(session_values) is not dict:
        _check_session_values(method, session_values)
    if agent_options is not None:
        check_agent_options(method, tree, agent_options)


def _check_messages(label: str, messages: object) -> None:
    """The slow path of the message checks: find what is wrong, and say how to fix it.

    ``invoke`` also takes a str, and lists any other iterable itself (so a
    generator is not consumed here, nor its items checked); ``run`` keeps its
    messages as the run's input, so it needs a sequence.
    """
    invoke = label.startswith("invoke")
    expected = f"{label} must be a {'str or a ' if invoke else ''}list of Message (oldest first)"
    if messages is Message or isinstance(messages, Message):
        given = describe(messages) if messages is Message else "a single Message"
        raise ArgumentTypeError(f"{expected}, got {given}; pass a list, e.g. [Message.user('hi')]")
    if isinstance(messages, str):
        raise ArgumentTypeError(
            f"{expected}, got {describe(messages)}; use query(text) for one message"
        )
    if isinstance(messages, Sequence):
        _check_items(label, messages)
    elif not invoke or not isinstance(messages, Iterable) or isinstance(messages, Mapping):
        raise ArgumentTypeError(f"{expected}, got {describe(messages)}")


def _check_items(label: str, messages: Sequence[object]) -> None:
    """Name the first item that is not a Message, by its index."""
    for index, message in enumerate(messages):
        if not isinstance(message, Message):
            hint = (
                "put parts in a message: [Message.user([...parts])], or use query([...parts])"
                if isinstance(message, PART_TYPES)
                else "build messages with Message.user(...), Message.assistant(...)"
            )
            raise ArgumentTypeError(
                f"{label}[{index}] must be a Message, got {describe(message)}; {hint}"
            )


def _check_session_values(method: str, values: object) -> None:
    """Session values are written by the run, so they must be a mutable mapping."""
    if not isinstance(values, MutableMapping):
        raise ArgumentTypeError(
            f"{method}: session_values must be a mutable mapping (e.g. a dict) of name to "
            f"value, got {describe(values)}"
        )


# -- agent options --------------------------------------------------------------------


def check_agent_options(method: str, tree: AgentTree, options: object) -> None:
    """Check ``agent_options``: agent name (or ``"*"``) -> mapping of options.

    The names must be agents of the run: of ``tree``, or inside an agent tool
    (the inner run shares the options). The options adk reads are type-checked;
    other keys are left to the custom agents that read them.
    """
    if not isinstance(options, Mapping):
        raise ArgumentTypeError(
            f"{method}: agent_options must be a mapping of agent name (or '*') to options, "
            f"got {describe(options)}"
        )
    for name, given in options.items():
        label = f"{method}: agent_options[{name!r}]"
        if not isinstance(given, Mapping):
            raise ArgumentTypeError(
                f"{label} must be a mapping of option name to value, e.g. "
                f"{{'max_iterations': 5}}, got {describe(given)}"
            )
        if name != "*" and name not in tree:
            _check_agent_name(method, tree, name)
        for key, value in given.items():
            _check_option(f"{label}[{key!r}]", key, value)


def _check_option(label: str, key: object, value: object) -> None:
    """Check one of the options ``ChatModelAgent`` reads; other keys pass unchecked."""
    if key == "model_params" and not isinstance(value, Mapping):
        raise ArgumentTypeError(
            f"{label} must be a mapping such as {{'temperature': 0.2}}, got {describe(value)}"
        )
    elif key == "max_iterations":
        check_count(label, value, 1)
    elif key == "priority" and not is_int(value):
        raise ArgumentTypeError(
            f"{label} must be an int (higher runs first), got {describe(value)}"
        )
    elif key == "cache" and value not in CACHE_MODES:
        choices = "'auto', 'preserve' or 'flush'"
        if not isinstance(value, str):
            raise ArgumentTypeError(f"{label} must be a str: {choices}, got {describe(value)}")
        raise ConfigurationError(f"{label} must be {choices}, got {value!r}")


def _check_agent_name(method: str, tree: AgentTree, name: object) -> None:
    """Accept ``name`` if an agent tool's inner agent has it; otherwise say which names exist."""
    if not isinstance(name, str):
        raise ArgumentTypeError(
            f"{method}: agent_options keys must be agent names (str) or '*', got {describe(name)}"
        )
    known = tree.names()
    known += [agent.name for agent in _tool_agents_of(tree) if agent.name not in known]
    if name not in known:
        raise ConfigurationError(
            f"{method}: agent_options names {name!r}, which is not an agent of this runner "
            f"(agents: {', '.join(known)}; '*' addresses every agent)"
        )


def _tool_agents_of(tree: AgentTree) -> list[Agent]:
    """The agents inside agent tools, at any depth below ``tree``: they get the run's options.

    Computed only for a name missing from the tree, so trees need not cache it.
    """
    seen: set[int] = set()
    found: list[Agent] = []
    pending: list[Agent] = [tree.root]
    while pending:
        agent = pending.pop()
        if id(agent) in seen:
            continue
        seen.add(id(agent))
        inner = list(_tool_agents(agent))
        found += inner
        pending += [*sub_agents_of(agent), *inner]
    return found


def _tool_agents(agent: Agent) -> Iterator[Agent]:
    """The agents of ``agent``'s agent tools (tools with an ``agent`` attribute, as AgentTool)."""
    tools: Any = getattr(agent, "tools", ())
    if isinstance(tools, Mapping):
        tools = tools.values()
    elif isinstance(tools, str) or not isinstance(tools, Iterable):
        return
    for tool in tools:
        inner = getattr(tool, "agent", None)
        if isinstance(inner, Agent):
            yield inner


# -- resume, resume_invoke ------------------------------------------------------------


def check_resume(
    method: str,
    tree: AgentTree,
    checkpoint_id: object,
    answers: object,
    session_values: object,
    agent_options: object,
) -> None:
    """Check the arguments of ``resume``/``resume_invoke``, before the checkpoint is touched."""
    if not isinstance(checkpoint_id, str):
        raise ArgumentTypeError(
            f"{method}: checkpoint_id must be a str (RunResult.checkpoint_id, or the "
            f"checkpoint id of the interrupt event), got {describe(checkpoint_id)}"
        )
    if not checkpoint_id:
        raise ConfigurationError(f"{method}: checkpoint_id must not be empty")
    if answers is not None and not isinstance(answers, Mapping):
        raise ArgumentTypeError(
            f"{method}: answers must be a mapping of interrupt id to answer, e.g. "
            f"{{info.id: 'yes'}}, got {describe(answers)}"
        )
    _check_state(method, tree, session_values, agent_options)


def check_user_id(user_id: object) -> None:
    """``user_id`` must be a str (or None)."""
    if user_id is not None and not isinstance(user_id, str):
        raise ArgumentTypeError(f"user_id must be a str, got {type(user_id).__name__} {user_id!r}")


def check_sessions(sessions: object) -> None:
    """The Runner's ``sessions`` argument must be one of the kinds it takes."""
    from pathlib import Path

    from adk.state.stores import CheckpointStore

    if sessions is None or isinstance(sessions, bool | str | Path | CheckpointStore):
        return
    from adk.sessions.service import SessionService  # only when an app passes one

    if not isinstance(sessions, SessionService):
        raise ArgumentTypeError(
            "sessions must be a SessionService, a CheckpointStore, a SQLite file path, None "
            f"(the checkpoint store) or False (no stored sessions), got {describe(sessions)}"
        )
