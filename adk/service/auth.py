"""Who is calling: the API key of a request, and the workspace it maps to.

A key comes as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. It
is compared with every configured key in constant time
(:meth:`Service.workspace_for_key`) and never logged or echoed. A service
without keys (dev mode) puts every request in the ``default`` workspace.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from adk.service.errors import Unauthorized

if TYPE_CHECKING:
    from adk.service.service import Service

_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="The API key")


def service_of(request: Request) -> Service:
    """The service the app serves."""
    service: Service = request.app.state.service
    return service


async def workspace(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header: Annotated[str | None, Depends(_header)],
) -> str:
    """The caller's workspace; 401 without a known key (when keys are configured)."""
    service = service_of(request)
    key: str | None = bearer.credentials if bearer is not None else header
    found = service.workspace_for_key(key)
    if found is None:
        raise Unauthorized("a valid API key is required (Authorization: Bearer <key> or X-API-Key)")
    return found
