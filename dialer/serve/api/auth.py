"""Who is asking, and may they: the API's access dependencies.

Every endpoint but `/healthz` needs credentials (`Authorization: Bearer dk_...`,
`X-API-Key: dk_...` or `Authorization: Basic ...` for a user) and names the scope it
needs: no credentials or wrong ones are 401, a principal without the scope is 403.
A user's password check (scrypt) costs tens of milliseconds, so a good one is remembered
for `USER_CACHE` (a dashboard polls); a key check is one indexed read.

The OpenAPI document declares the three ways (`bearer`, `basic`, `apiKey`) as security
schemes, any one of which will do; `authenticated` reads the headers itself, so the
declaration documents the checks without changing them.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.openapi import models as openapi
from fastapi.security.base import SecurityBase

from dialer.serve.access import Principal, Scope, principal_from_headers
from dialer.serve.service import Service

#: How long (seconds) a user's checked credentials are trusted without checking again.
USER_CACHE = 60.0


def service_of(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(service_of)]


class _Remembered:
    """Good Basic credentials, by a hash of the header, for a short while."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[float, Principal]] = {}

    def get(self, header: str) -> Principal | None:
        key = hashlib.sha256(header.encode()).hexdigest()
        with self._lock:
            found = self._seen.get(key)
            if found is None or found[0] < time.monotonic():
                self._seen.pop(key, None)
                return None
            return found[1]

    def put(self, header: str, principal: Principal) -> None:
        key = hashlib.sha256(header.encode()).hexdigest()
        with self._lock:
            if len(self._seen) > 1000:
                self._seen.clear()
            self._seen[key] = (time.monotonic() + USER_CACHE, principal)


_users = _Remembered()


class _Declared(SecurityBase):
    """A security scheme as the OpenAPI document shows it; it checks nothing (FastAPI's
    own HTTPBasic answers a malformed header with its own 401: `authenticated` decides)."""

    def __init__(self, name: str, model: openapi.SecurityBase) -> None:
        self.scheme_name, self.model = name, model

    def __call__(self) -> None:
        return None


#: The three ways to authenticate, for `Security(...)` in the signature of a dependency
#: that reads the credentials itself (as `authenticated` does).
BEARER = _Declared("bearer", openapi.HTTPBearer(
    bearerFormat="dk_<key_id>_<secret>", description="An API key."))
BASIC = _Declared("basic", openapi.HTTPBase(scheme="basic", description="A user's "
                                             "username and password."))
API_KEY = _Declared("apiKey", openapi.APIKey.model_validate(
    {"in": "header", "name": "X-API-Key", "description": "An API key."}))


def authenticated(
    service: ServiceDep,
    request: Request,
    _bearer: Annotated[None, Security(BEARER)],
    _basic: Annotated[None, Security(BASIC)],
    _api_key: Annotated[None, Security(API_KEY)],
) -> Principal:
    """The principal the request's credentials name; 401 if none or wrong."""
    authorization = request.headers.get("authorization")
    x_api_key = request.headers.get("x-api-key")
    basic = authorization is not None and authorization.lower().startswith("basic ")
    if basic and x_api_key is None and (known := _users.get(authorization or "")):
        return known
    with service.store.read() as uow:
        principal = principal_from_headers(uow, authorization, x_api_key)
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "missing or invalid credentials: send "
            "'Authorization: Bearer <API key>', 'X-API-Key: <API key>' or HTTP Basic",
            headers={"WWW-Authenticate": 'Bearer, Basic realm="dialer"'})
    if basic and authorization is not None:
        _users.put(authorization, principal)
    return principal


def require(scope: Scope) -> Callable[[Principal], Principal]:
    """A dependency: the authenticated principal, if it has `scope` (else 403)."""

    def check(principal: Annotated[Principal, Depends(authenticated)]) -> Principal:
        if not principal.allows(scope):
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                f"the {principal.role.value} role lacks the scope "
                                f"{scope.value!r}")
        return principal

    return check
