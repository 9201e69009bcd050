"""MCP (Model Context Protocol) for adk, both ways; needs the ``mcp`` extra.

- :class:`MCPToolset`: the tools of an MCP server (stdio or streamable
  HTTP) as tools of an adk agent: ``ChatModelAgent(tools=[MCPToolset(...)])``.
- :func:`serve`: adk agents as the tools of an MCP server, for other MCP
  clients (desktop apps, IDEs, other agent frameworks).

``import adk`` never imports this package (nor the SDK): import it as
``from adk.mcp import MCPToolset``. See docs/mcp.md.
"""

from __future__ import annotations

try:
    import mcp as _mcp  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError("adk.mcp needs the MCP SDK: install it with pip install 'adk[mcp]'") from exc

from adk.mcp.server import agent_server, serve
from adk.mcp.toolset import MCPTool, MCPToolset

__all__ = ["MCPTool", "MCPToolset", "agent_server", "serve"]
