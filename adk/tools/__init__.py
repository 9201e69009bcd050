"""Tools: the protocol, FunctionTool / @tool, ExitTool, and tool-call execution."""
