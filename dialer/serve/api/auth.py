"""Who is asking, and may they: the API's access dependencies.

Every endpoint but `/healthz` needs credentials (`Authorization: Bearer dk_...`,
`X-API-Key: dk_...` or `Authorization: Basic ...` for a user) and names the scope it
needs: no credentials or wrong ones are 401, a principal without the scope is 403.
A user's password check (scrypt) costs tens of milliseconds, so a good one is remembered
for `USER_CACHE` (a dashboard polls); a key check is one indexed read.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, status

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


def authenticated(
    service: ServiceDep,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> Principal:
    """The principal the request's credentials name; 401 if none or wrong."""
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
