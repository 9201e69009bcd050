"""Test support code: a real OpenAI-compatible HTTP server for model tests."""

from tests.support.openai_server import OpenAIServer, Reply, ScriptedCall, start_server

__all__ = ["OpenAIServer", "Reply", "ScriptedCall", "start_server"]
