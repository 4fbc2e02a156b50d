"""Idempotent requests: a request's `Idempotency-Key`, and the answer it got, given again.

The service keeps, per principal (the API key or user that asked) and key, the digest of
the request and the response it sent. How a write handler uses it, inside ONE write
transaction (`store.write()`) that also holds the write itself::

    with store.write() as uow:
        hold(uow, principal, key)               # a concurrent twin waits here
        digest = request_digest(method, path, body)
        stored = find(uow, principal, key)
        if stored is not None:                  # asked before
            if stored.request_sha256 != digest:
                ...                             # 422: the key was reused for another request
            ...                                 # replay stored.status_code, stored.body
        ...                                     # do the write, build the response
        remember(uow, principal, key, digest, status, body, now)

Invariants:

- keys are per principal: two principals using the same key never meet;
- `remember` writes in the caller's transaction, so the answer is kept exactly when the
  write it describes is committed (a crash leaves both or neither);
- a second `remember` of the same (principal, key) raises `IdempotencyConflict`, never a
  database IntegrityError; the caller's transaction is then to be rolled back (leaving
  the `with` block by that exception does it), so the loser's write is undone;
- `hold` makes a concurrent duplicate wait for the first request's transaction on
  PostgreSQL (an advisory lock on the key), so it then finds the stored answer instead
  of failing; SQLite writers are serialised already (BEGIN IMMEDIATE);
- `purge` forgets answers older than a cut-off; a key used again after that is new.

Nothing here logs or puts a principal, a key or a body in an exception message.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text

from dialer.errors import UsageError
from dialer.store.queries import ReadUnitOfWork
from dialer.store.schema import idempotency_keys, require_aware
from dialer.store.unit_of_work import UnitOfWork, _dialect_insert

#: The longest principal and key the table holds (both columns are String(200)).
MAX_KEY_LENGTH = 200


class IdempotencyConflict(UsageError):
    """Another request with the same principal and key stored its answer first.

    Raised by `remember`; the caller's transaction must roll back. Asking again is
    worthwhile (`retryable`): the winner has committed, so `find` now gives its answer.
    """

    retryable = True


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredResponse:
    """The answer a request got: replayed as is for a request with the same digest."""

    request_sha256: str
    status_code: int
    body: str
    created_at: datetime


def request_digest(method: str, path: str, body: bytes) -> str:
    """The SHA-256 (hex) of a request: method (any case), path and body bytes.

    Pass the path with its query string when the query changes what the request does.
    """
    head = f"{method.upper()} {path}\n".encode()
    return hashlib.sha256(head + body).hexdigest()


def hold(uow: UnitOfWork, principal: str, key: str) -> None:
    """Wait until no other open transaction holds (principal, key); hold it until ours ends.

    On PostgreSQL a transaction-scoped advisory lock on a 64-bit hash of the pair (two
    pairs sharing a hash only wait for each other needlessly). Call it before `find`:
    write transactions read committed rows, so `find` then sees the winner's answer.
    On SQLite it does nothing: one writer at a time already.
    """
    _check(principal, key)
    if uow._conn.dialect.name != "postgresql":
        return
    pair = hashlib.sha256(f"{principal}\0{key}".encode()).digest()
    lock_id = int.from_bytes(pair[:8], "big", signed=True)
    uow._conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": lock_id})


def find(uow: ReadUnitOfWork, principal: str, key: str) -> StoredResponse | None:
    """The answer stored for this principal's key, or None if it has none."""
    _check(principal, key)
    stmt = select(idempotency_keys).where(
        idempotency_keys.c.principal == principal, idempotency_keys.c.key == key
    )
    row = uow._conn.execute(stmt).one_or_none()
    if row is None:
        return None
    return StoredResponse(request_sha256=row.request_sha256, status_code=row.status_code,
                          body=row.response, created_at=row.created_at)


def remember(
    uow: UnitOfWork,
    principal: str,
    key: str,
    request_sha256: str,
    status_code: int,
    body: str,
    now: datetime,
) -> None:
    """Keep the answer to this principal's request with `key`, in the caller's transaction.

    Raises IdempotencyConflict if the key already has an answer (one committed by a
    concurrent request, or stored earlier in this one).
    """
    _check(principal, key)
    stmt = _dialect_insert(uow._conn.dialect.name, idempotency_keys).values(
        principal=principal, key=key, request_sha256=request_sha256,
        status_code=status_code, response=body, created_at=require_aware(now, "now"),
    )
    # ON CONFLICT DO NOTHING, not a caught IntegrityError: on PostgreSQL a failed
    # statement aborts the whole transaction; this way the caller decides.
    stmt = stmt.on_conflict_do_nothing(index_elements=["principal", "key"])
    inserted = uow._conn.execute(stmt.returning(idempotency_keys.c.key)).first()
    if inserted is None:
        raise IdempotencyConflict(
            "this idempotency key already has an answer from another request; "
            "ask again to have it replayed"
        )


def purge(uow: UnitOfWork, older_than: datetime) -> int:
    """Forget the answers stored before `older_than`; returns how many."""
    cutoff = require_aware(older_than, "older_than")
    stmt = idempotency_keys.delete().where(idempotency_keys.c.created_at < cutoff)
    return int(uow._conn.execute(stmt).rowcount)


def _check(principal: str, key: str) -> None:
    if not 0 < len(principal) <= MAX_KEY_LENGTH:
        raise UsageError(f"a principal must be 1-{MAX_KEY_LENGTH} characters")
    if not 0 < len(key) <= MAX_KEY_LENGTH:
        raise UsageError(f"an idempotency key must be 1-{MAX_KEY_LENGTH} characters")
