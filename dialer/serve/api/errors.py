"""Errors as the API answers them: one JSON shape, the field and the reason.

    {"error": "<what went wrong>", "problems": [{"field": "leads.0.phone", "reason": "..."}]}

Bad bodies (FastAPI's validation, or our own config validation) are 400; an unknown
campaign 404; a request that does not fit the campaign's state 409; an idempotency key
reused for another request 422; an unreachable or busy database 503. Nothing is
half-written: every write runs in one transaction that an error rolls back.
"""

from __future__ import annotations

import logging
import re

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from dialer.errors import ConfigError, DialerError, StoreError
from dialer.serve.service import Conflict, NotFound
from dialer.store.idempotency import IdempotencyConflict

logger = logging.getLogger(__name__)


class KeyReused(DialerError):
    """An `Idempotency-Key` sent again with a different request."""


def problem(status_code: int, error: str,
            problems: list[dict[str, str]] | None = None) -> JSONResponse:
    body: dict[str, object] = {"error": error}
    if problems:
        body["problems"] = problems
    return JSONResponse(body, status_code=status_code)


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _invalid)  # type: ignore[arg-type]
    app.add_exception_handler(DialerError, _dialer_error)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    answer = problem(exc.status_code, str(exc.detail))
    answer.headers.update(exc.headers or {})
    return answer


async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = []
    for error in exc.errors():
        where = [str(part) for part in error.get("loc", ()) if part != "body"]
        problems.append({"field": ".".join(where) or "body",
                         "reason": str(error.get("msg", "invalid"))})
    return problem(status.HTTP_400_BAD_REQUEST, "invalid request", problems)


async def _dialer_error(request: Request, exc: DialerError) -> JSONResponse:
    if isinstance(exc, NotFound):
        return problem(status.HTTP_404_NOT_FOUND, str(exc))
    if isinstance(exc, Conflict | IdempotencyConflict):
        return problem(status.HTTP_409_CONFLICT, str(exc))
    if isinstance(exc, KeyReused):
        return problem(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc))
    if isinstance(exc, StoreError):
        logger.error("store error answering %s: %s", request.url.path, exc)
        code = status.HTTP_503_SERVICE_UNAVAILABLE if exc.retryable else \
            status.HTTP_500_INTERNAL_SERVER_ERROR
        return problem(code, "the database failed; nothing was changed")
    if isinstance(exc, ConfigError):
        return problem(status.HTTP_400_BAD_REQUEST, "invalid campaign",
                       [_config_problem(line) for line in str(exc).splitlines()])
    return problem(status.HTTP_400_BAD_REQUEST, str(exc))


_PLACE = re.compile(r"^[^:]*:(?P<line>\d+):\d+: (?P<rest>.*)$")
_FIELD = re.compile(r"^(?P<field>[\w.\[\]-]+): (?P<reason>.*)$")


def _config_problem(line: str) -> dict[str, str]:
    """`<campaign>:3:14: dial.mode: expected ...` as field, line and reason."""
    placed = _PLACE.match(line)
    rest = placed.group("rest") if placed else line
    named = _FIELD.match(rest)
    found = {"field": named.group("field") if named else "body",
             "reason": named.group("reason") if named else rest}
    if placed:
        found["line"] = placed.group("line")
    return found
