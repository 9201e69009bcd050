"""The default, pass-through serving layer.

ChatModelAgent never calls a model itself: it hands a complete
:class:`~adk.models.base.ModelRequest` to the serving layer on the run
context. This default forwards the call unchanged, so a user who never
configures serving loses nothing; a cache-aware layer replaces it without
touching agents.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from adk.models.base import ChatModel, ModelChunk, ModelRequest, ModelResponse


class ServingLayer:
    """Forwards each model call to the model; a model given by name becomes a LiteLLMModel.

    Subclass and override :meth:`generate` and :meth:`stream` to route, cache,
    schedule or measure calls.
    """

    def __init__(self) -> None:
        self._named: dict[str, ChatModel] = {}

    def resolve(self, model: ChatModel | str) -> ChatModel:
        """The model object for ``model``; a string is a litellm model id, built once."""
        if not isinstance(model, str):
            return model
        found = self._named.get(model)
        if found is None:
            from adk.models.litellm_model import LiteLLMModel

            found = self._named[model] = LiteLLMModel(model)
        return found

    async def generate(self, model: ChatModel | str, request: ModelRequest) -> ModelResponse:
        """Return the complete answer of ``model`` to ``request``."""
        return await self.resolve(model).generate(request)

    def stream(self, model: ChatModel | str, request: ModelRequest) -> AsyncIterator[ModelChunk]:
        """Stream the answer of ``model`` to ``request``."""
        return self.resolve(model).stream(request)
