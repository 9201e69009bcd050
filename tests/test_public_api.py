"""The public API: every exported name resolves, and user code type-checks against it."""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap
from pathlib import Path

import adk


def test_every_exported_name_resolves_and_is_documented() -> None:
    for name in adk.__all__:
        value = getattr(adk, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert (value.__doc__ or "").strip(), f"adk.{name} has no docstring"


def test_unknown_names_raise_attribute_error() -> None:
    try:
        adk.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_user_code_type_checks_with_mypy_strict(tmp_path: Path) -> None:
    source = tmp_path / "app.py"
    source.write_text(
        textwrap.dedent(
            '''
            from adk import AgentTool, ChatModelAgent, Runner, ScriptedModel, SequentialAgent, tool


            @tool
            def add(a: int, b: int) -> int:
                """Add two numbers."""
                return a + b


            async def main() -> str:
                helper = ChatModelAgent("helper", model=ScriptedModel(["hi"]))
                agent = ChatModelAgent(
                    "calc", model=ScriptedModel(["3"]), tools=[add, AgentTool(helper)]
                )
                result = await Runner(SequentialAgent("flow", [agent])).invoke("1+2")
                return result.text
            '''
        )
    )
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_type_checking_re_exports_match_the_runtime_table() -> None:
    """Type checkers see exactly the names ``import adk`` serves, from the same modules."""
    import ast

    tree = ast.parse(Path(adk.__file__).read_text())
    guarded = next(
        node
        for node in tree.body
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
    )
    seen = {
        alias.name: node.module
        for node in guarded.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if alias.asname == alias.name
    }
    assert seen == adk._EXPORTS
