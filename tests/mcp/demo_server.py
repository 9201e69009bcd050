"""A small MCP server made with the SDK, run by the tests as a subprocess.

``python demo_server.py`` serves over stdio; ``python demo_server.py http PORT``
serves streamable HTTP on 127.0.0.1:PORT at /mcp. ``ADK_MCP_LOG``, when set,
names a file where every call of ``record`` appends a line (so tests can count
real calls across server restarts).
"""

from __future__ import annotations

import base64
import os
import sys

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("demo")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def record(label: str) -> str:
    """Append a label to the call log and say how many calls it holds."""
    path = os.environ["ADK_MCP_LOG"]
    with open(path, "a", encoding="utf-8") as log:
        log.write(label + "\n")
    with open(path, encoding="utf-8") as log:
        return f"recorded {label} (call {len(log.readlines())})"


@server.tool()
def refuse(reason: str) -> str:
    """Always fails with the reason given."""
    raise ToolError(f"refused: {reason}")


@server.tool()
def pid() -> int:
    """The server's process id."""
    return os.getpid()


@server.tool()
def crash() -> str:
    """Exit the server process in the middle of the call."""
    os._exit(3)


@server.tool()
async def nap(seconds: float) -> str:
    """Sleep, then answer."""
    await anyio.sleep(seconds)
    return "rested"


@server.tool()
def picture() -> list[object]:
    """A one-pixel PNG with a caption."""
    from mcp_types import ImageContent, TextContent

    data = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()
    return [
        TextContent(type="text", text="a tiny picture"),
        ImageContent(type="image", data=data, mime_type="image/png"),
    ]


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "http":
        anyio.run(lambda: server.run_streamable_http_async(host="127.0.0.1", port=int(sys.argv[2])))
    else:
        server.run()
