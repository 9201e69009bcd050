"""What an MCP tool result becomes in adk: the text of a tool message.

adk tool results are text for the model. The MCP spec asks servers that
return structured content to also return it serialised in a text block, so
text blocks carry the answer; structured content is used only when a result
has no content blocks. Binary blocks (images, audio, blobs) are described in
a short placeholder instead of pasting base64 into the model's context.
"""

from __future__ import annotations

from typing import Any

import mcp_types

from adk.errors import ToolError


def result_value(result: mcp_types.CallToolResult, tool: str) -> Any:
    """The tool's result for adk: text, or the structured content; raise if ``isError``."""
    parts = [_block_text(block) for block in result.content]
    text = "\n".join(parts)
    if result.is_error:
        raise ToolError(text or f"the MCP tool {tool!r} reported an error without a message")
    if parts:
        return text
    if result.structured_content is not None:
        return result.structured_content
    return ""


def _block_text(block: Any) -> str:
    """One content block as text (a placeholder for binary data)."""
    if isinstance(block, mcp_types.TextContent):
        return block.text
    if isinstance(block, mcp_types.ImageContent | mcp_types.AudioContent):
        kind = "image" if isinstance(block, mcp_types.ImageContent) else "audio"
        size = len(block.data) * 3 // 4
        return f"[{kind}: {block.mime_type}, about {size} bytes]"
    if isinstance(block, mcp_types.EmbeddedResource):
        resource = block.resource
        if isinstance(resource, mcp_types.TextResourceContents):
            return resource.text
        return f"[resource {resource.uri}: {resource.mime_type or 'binary data'}]"
    if isinstance(block, mcp_types.ResourceLink):
        return f"[resource link {block.name}: {block.uri}]"
    return f"[{getattr(block, 'type', type(block).__name__)} content]"
