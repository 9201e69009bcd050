"""adk.mcp stays optional: ``import adk`` never loads it, and user code type-checks."""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap
from pathlib import Path

import adk.mcp

from .conftest import ROOT


def test_import_adk_does_not_import_mcp() -> None:
    code = textwrap.dedent(
        """
        import sys
        import adk
        from adk import ChatModelAgent, Runner, ScriptedModel
        Runner(ChatModelAgent("a", model=ScriptedModel(["x"])))
        loaded = sorted(m for m in sys.modules if m == "mcp" or m.startswith(("mcp.", "adk.mcp")))
        assert not loaded, loaded
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


def test_public_names_are_documented() -> None:
    assert (adk.mcp.__doc__ or "").strip()
    for name in adk.mcp.__all__:
        value = getattr(adk.mcp, name)
        assert inspect.isclass(value) or inspect.isfunction(value)
        assert (value.__doc__ or "").strip(), f"adk.mcp.{name} has no docstring"


def test_user_code_type_checks_with_mypy_strict(tmp_path: Path) -> None:
    source = tmp_path / "app.py"
    source.write_text(
        textwrap.dedent(
            """
            from adk import ChatModelAgent, Runner, ScriptedModel
            from adk.mcp import MCPToolset
            from adk.tools.provider import ToolProvider

            toolset = MCPToolset("python", ["server.py"], prefix="s_", requires_approval=["rm"])
            provider: ToolProvider = toolset


            async def main() -> str:
                agent = ChatModelAgent("a", model=ScriptedModel(["hi"]), tools=[toolset])
                runner = Runner(agent)
                try:
                    return (await runner.invoke("hi")).text
                finally:
                    await runner.close()
            """
        )
    )
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", str(source)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
