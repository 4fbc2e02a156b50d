"""The live dashboard: one page served by `dialer serve` itself, fed by an event stream.

- `GET /` redirects to `/dashboard/`, the page (plain HTML, a script and a style sheet
  under `/dashboard/static/`, no build step, nothing from other sites). The page needs no
  credentials; every figure on it comes from the API with the credentials its sign-in
  form keeps in the browser's `sessionStorage`.
- `GET /api/v1/stream` (scope `campaigns:read`) is Server-Sent Events: `event: status`
  with every campaign's status (a JSON list of `CampaignStatus.to_dict()`) each
  `interval`, then `event: bye` once the stream's `lifetime` is up or the service shuts
  down; the page then asks again. A stream also ends, at its next step, when the client
  goes away (Starlette cancels it): no loop here runs unbounded, and no thread is held
  between steps.
- A browser's `EventSource` cannot send headers, so `POST /api/v1/stream/token` (normal
  credentials) returns an opaque random token good for `token_ttl` seconds, accepted as
  `GET /api/v1/stream?token=...` with the scopes of the principal it was issued to.
  Tokens live in this process's memory only; a restarted service forgets them and the
  page asks for another.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.responses import FileResponse, RedirectResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from dialer.serve.access import Principal, Scope, principal_from_headers
from dialer.serve.api.auth import ServiceDep, require
from dialer.serve.service import Service

__all__ = ["StreamSettings", "StreamTokens", "configure", "open_streams", "router"]

STATIC = Path(__file__).resolve().parent / "static"
#: The files under /dashboard/static/ (nothing else is served from the folder).
ASSETS = {"dashboard.js": "text/javascript; charset=utf-8",
          "dashboard.css": "text/css; charset=utf-8"}
#: How long (milliseconds) a browser waits before reconnecting a broken stream.
RECONNECT_MS = 2000
_PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    # no inline script, nothing from elsewhere; a form that the script failed to take
    # over must not send the key anywhere
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

router = APIRouter()


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamSettings:
    """How the event stream paces itself (seconds)."""

    interval: float = 1.0  # between two status events
    # a stream ends after this and the page opens another; uvicorn's graceful shutdown
    # waits for open streams, so this also bounds how long an open page delays it
    lifetime: float = 30.0
    token_ttl: float = 60.0  # how long a stream token is accepted

    def __post_init__(self) -> None:
        if min(self.interval, self.lifetime, self.token_ttl) <= 0:
            raise ValueError("stream interval, lifetime and token_ttl must be above 0")


def configure(app: FastAPI, settings: StreamSettings) -> None:
    """Pace `app`'s event stream by `settings` (the defaults otherwise)."""
    app.state.dashboard_stream = settings


def stream_settings(app: FastAPI) -> StreamSettings:
    found = getattr(app.state, "dashboard_stream", None)
    return found if isinstance(found, StreamSettings) else StreamSettings()


class StreamTokens:
    """Short-lived stream tokens, in memory.

    - a token is 256 random bits; only its SHA-256 is kept, with its principal and expiry;
    - `principal(token, now=...)` is that principal until `now` reaches the expiry, and
      None afterwards (or for a token never issued);
    - a token may be presented again until it expires (EventSource reconnects with the
      same URL);
    - expired tokens are dropped when another is issued; past `limit` tokens, the oldest go.
    """

    def __init__(self, limit: int = 10_000) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[float, Principal]] = {}

    def issue(self, principal: Principal, *, now: float, ttl: float) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens = {key: kept for key, kept in self._tokens.items() if kept[0] > now}
            while len(self._tokens) >= self._limit:
                del self._tokens[next(iter(self._tokens))]
            self._tokens[_digest(token)] = (now + ttl, principal)
        return token

    def principal(self, token: str, *, now: float) -> Principal | None:
        with self._lock:
            found = self._tokens.get(_digest(token))
        if found is None or found[0] <= now:
            return None
        return found[1]

    def __len__(self) -> int:
        with self._lock:
            return len(self._tokens)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class _Gauge:
    """How many streams are open (read by tests and, later, metrics)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def __enter__(self) -> None:
        with self._lock:
            self.value += 1

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        with self._lock:
            self.value -= 1


_tokens = StreamTokens()
_streams = _Gauge()


def open_streams() -> int:
    """The number of event streams open now, in this process."""
    return _streams.value


# --- the page ---------------------------------------------------------------------------


@router.get("/", include_in_schema=False)
def root() -> RedirectResponse:
    return RedirectResponse("/dashboard/", status_code=status.HTTP_307_TEMPORARY_REDIRECT)


@router.get("/dashboard/", include_in_schema=False)
def page() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8",
                        headers=_PAGE_HEADERS)


@router.get("/dashboard/static/{name}", include_in_schema=False)
def asset(name: str) -> FileResponse:
    media_type = ASSETS.get(name)
    if media_type is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no dashboard file named {name!r}")
    return FileResponse(STATIC / name, media_type=media_type,
                        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})


# --- the stream ---------------------------------------------------------------------------


def stream_principal(
    request: Request,
    service: ServiceDep,
    token: Annotated[str | None, Query(max_length=200, description=(
        "A token from POST /api/v1/stream/token, for clients that cannot send headers."))]
    = None,
) -> Principal:
    """The principal of a stream token, or of the usual credentials; 401, or 403 without
    `campaigns:read`."""
    if token is not None:
        principal = _tokens.principal(token, now=time.monotonic())
        why = "the stream token is unknown or expired: ask POST /api/v1/stream/token " \
              "for another"
    else:  # a client that sends headers (once a stream: no cache of Basic checks needed)
        with service.store.read() as uow:
            principal = principal_from_headers(uow, request.headers.get("authorization"),
                                               request.headers.get("x-api-key"))
        why = "missing or invalid credentials: send 'Authorization: Bearer <API key>', " \
              "'X-API-Key: <API key>', HTTP Basic, or ?token= from POST /api/v1/stream/token"
    if principal is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, why,
                            headers={"WWW-Authenticate": 'Bearer, Basic realm="dialer"'})
    return require(Scope.CAMPAIGNS_READ)(principal)


Reader = Annotated[Principal, Depends(require(Scope.CAMPAIGNS_READ))]
StreamReader = Annotated[Principal, Depends(stream_principal)]


@router.post("/api/v1/stream/token", tags=["dashboard"])
def stream_token(request: Request, response: Response, who: Reader) -> dict[str, Any]:
    """A token for `GET /api/v1/stream?token=...`, good for `expires_in` seconds, with the
    scopes of whoever asked for it."""
    ttl = stream_settings(request.app).token_ttl
    response.headers["Cache-Control"] = "no-store"
    return {"token": _tokens.issue(who, now=time.monotonic(), ttl=ttl), "expires_in": ttl}


@router.get("/api/v1/stream", tags=["dashboard"], response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}, "description": (
                "`event: status` with `data:` the JSON list of every campaign's status, "
                "each interval; `event: bye` before the stream ends.")}})
def stream(request: Request, service: ServiceDep, who: StreamReader) -> StreamingResponse:
    """Every campaign's status, about once a second, as Server-Sent Events, for a while
    (then `bye`: open another). Credentials as everywhere, or `?token=` from
    `POST /api/v1/stream/token`; scope `campaigns:read`. 503 while the service shuts down."""
    if not _serving(service):
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the service is shutting down")
    return StreamingResponse(_events(service, stream_settings(request.app)),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def _events(service: Service, settings: StreamSettings) -> AsyncIterator[str]:
    """`status` events until the lifetime is up or the service stops, then `bye`."""
    with _streams:
        yield f"retry: {RECONNECT_MS}\n\n"
        ends = time.monotonic() + settings.lifetime
        reason = "shutdown"
        while _serving(service):
            # another thread: a campaign starting holds the service's lock for a while
            payload = await run_in_threadpool(_status_payload, service)
            yield f"event: status\ndata: {payload}\n\n"
            if time.monotonic() + settings.interval >= ends:
                reason = "lifetime"
                break
            await anyio.sleep(settings.interval)
        yield f"event: bye\ndata: {json.dumps({'reason': reason})}\n\n"


def _status_payload(service: Service) -> str:
    statuses = [status_.to_dict() for status_ in service.statuses()]
    return json.dumps(statuses, ensure_ascii=False, separators=(",", ":"))


def _serving(service: Service) -> bool:
    # `Service.shutdown` stops the scheduler first; the service has no other sign of it
    return bool(service.scheduling.scheduler.running)
