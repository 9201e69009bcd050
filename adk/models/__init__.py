"""Models: the ChatModel protocol, ScriptedModel for tests, LiteLLMModel for providers."""
