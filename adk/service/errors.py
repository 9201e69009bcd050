"""Errors the service answers with: an HTTP status and a machine-readable body.

Every 4xx and 5xx body is ``{"error": {"type": ..., "message": ...}}``. The
HTTP layer turns a :class:`ServiceError` into that response; the commands
of :mod:`adk.service.runs` raise them without knowing about HTTP.
"""

from __future__ import annotations

from typing import Any

from adk.errors import AdkError


class ServiceError(AdkError):
    """A request the service refuses: ``status`` (HTTP), ``type`` (stable name), message."""

    status: int = 400
    type: str = "BadRequest"

    def __init__(self, message: str, *, type: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if type is not None:
            self.type = type
        if status is not None:
            self.status = status

    def body(self) -> dict[str, Any]:
        """The response body."""
        return error_body(self.type, self.message)


class NotFound(ServiceError):
    """No such run, session or route in the caller's workspace (foreign ids included)."""

    status = 404
    type = "NotFound"


class Conflict(ServiceError):
    """The request does not fit the resource's state (a signal to a finished run...)."""

    status = 409
    type = "Conflict"


class Unprocessable(ServiceError):
    """A well-formed request whose content cannot be used (unknown agent, bad input)."""

    status = 422
    type = "ValidationError"


class Unauthorized(ServiceError):
    """No API key, or one the service does not know."""

    status = 401
    type = "Unauthorized"


class PayloadTooLarge(ServiceError):
    """A request body over ``Service(max_input_bytes=...)``."""

    status = 413
    type = "PayloadTooLarge"


def error_body(type: str, message: str, **extra: Any) -> dict[str, Any]:
    """``{"error": {"type": ..., "message": ..., **extra}}``."""
    return {"error": {"type": type, "message": message, **extra}}
