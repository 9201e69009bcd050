"""Agents: the protocol, BaseAgent for application code, and the built-in agents."""
