"""Webhooks: outcome events delivered to configured URLs through an outbox.

An event is written to the outbox (`webhook_events`, plus one `webhook_deliveries` row per
endpoint that wants its type) in the transaction of the write that caused it, so an event
exists iff that write committed. A `Deliverer` then POSTs it to each endpoint:

- at least once, with the same event id on every try: receivers dedup by
  `X-Dialer-Event-Id` (also the body's `id`);
- the body is the JSON stored, byte for byte: ``{"id", "type", "created_at", "data"}``,
  UTF-8, datetimes ISO 8601 UTC with `Z`, never a phone number (a lead is its `lead_id`);
- signed: `X-Dialer-Signature: sha256=<hex HMAC-SHA256(secret, b"<timestamp>." + body)>`,
  `X-Dialer-Timestamp` in unix seconds (`verify_signature` checks one);
- a claim is a lease, taken in one short transaction; the request runs outside any
  transaction, its result is recorded in another; after a crash the lease runs out and
  the delivery is tried again (PostgreSQL: workers claim with `FOR UPDATE SKIP LOCKED`);
- a non-2xx answer, a timeout or a connection error is retried after `retry_delay`
  until `max_attempts`; then the delivery is `failed`, kept for `requeue_failed`.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import logging
import math
import os
import random
import threading
import uuid
from collections.abc import Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Annotated, Any, Final

import httpx
from pydantic import Field, PositiveInt
from sqlalchemy import Connection, func, select, update

from dialer.clock import Clock
from dialer.config.fields import STRICT_KEYS, Duration, Name, raise_problems, unique_problems
from dialer.errors import StoreError
from dialer.store import ReadUnitOfWork, Store, UnitOfWork
from dialer.store.schema import require_aware, webhook_deliveries, webhook_events

logger = logging.getLogger(__name__)

#: Retry delays are scaled by a random factor in [1 - JITTER, 1 + JITTER].
JITTER: Final = 0.2
_MAX_ERROR = 200  # characters of `last_error` kept


class WebhookEvent(enum.StrEnum):
    """The event types, and what their `data` holds (a public contract)."""

    #: attempt_id, campaign, lead_id, disposition, placed_at, answered_at, ended_at,
    #: abandoned, agent_id, sip_status
    ATTEMPT_ENDED = "attempt.ended"
    #: campaign, lead_id (null when unknown), at, reason
    LEAD_OPTED_OUT = "lead.opted_out"
    #: campaign, at, summary (an object)
    CAMPAIGN_FINISHED = "campaign.finished"


class DeliveryState(enum.StrEnum):
    """Where a delivery is: `pending` (due at `next_try_at`), `delivered` or `failed`."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookEndpoint:
    """A receiver: its URL, the events it wants, and the environment variable that holds
    its HMAC secret (the secret itself is never in a file, a log or an error)."""

    __pydantic_config__ = STRICT_KEYS

    name: Name
    url: Annotated[str, Field(pattern=r"^https?://\S+$")]
    secret_env: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
    events: Annotated[frozenset[WebhookEvent], Field(min_length=1)] = frozenset(WebhookEvent)


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookSettings:
    """Where events go and how hard delivery tries."""

    __pydantic_config__ = STRICT_KEYS

    endpoints: tuple[WebhookEndpoint, ...] = ()
    max_attempts: PositiveInt = 12
    first_retry: Duration = timedelta(seconds=10)
    max_backoff: Duration = timedelta(hours=1)
    timeout: Duration = timedelta(seconds=10)  # per request
    concurrency: PositiveInt = 4  # requests in flight per deliverer

    def __post_init__(self) -> None:
        problems = unique_problems(("endpoints",), [e.name for e in self.endpoints], "endpoint")
        problems += [((key,), "must be longer than 0s") for key in ("first_retry", "timeout")
                     if getattr(self, key) <= timedelta(0)]
        if self.max_backoff < self.first_retry:
            problems.append((("max_backoff",), "must not be shorter than first_retry"))
        raise_problems(problems)


# --- pure parts: backoff, signatures, the event body -------------------------------------

def retry_delay(attempts: int, settings: WebhookSettings, jitter: float = 0.0) -> timedelta:
    """How long after its `attempts`-th failed try a delivery is tried again: `first_retry`,
    doubled for each earlier failure, at most `max_backoff`; then scaled by 1 + `jitter`."""
    doublings = min(max(attempts - 1, 0), 64)
    seconds = min(settings.max_backoff.total_seconds(),
                  settings.first_retry.total_seconds() * 2.0**doublings)
    return timedelta(seconds=seconds * (1.0 + jitter))


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The `X-Dialer-Signature` of `body` sent at `timestamp` (unix seconds)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify_signature(secret: str, timestamp: int | str, body: bytes, header: str) -> bool:
    """Whether `header` signs `body` sent at `timestamp` with `secret`. Receivers should
    also refuse a timestamp far from their own clock (a replay)."""
    return hmac.compare_digest(sign(secret, timestamp, body).encode(), header.strip().encode())


def iso_utc(value: datetime) -> str:
    """`value` (aware) as ISO 8601 UTC with `Z`, e.g. `2026-11-24T10:00:00Z`."""
    return require_aware(value).isoformat().replace("+00:00", "Z")


def encode_event(event_id: str, event_type: WebhookEvent, *, created_at: datetime,
                 payload: Mapping[str, object]) -> str:
    """The body of an event, as stored and sent."""
    envelope = {"id": event_id, "type": event_type.value, "created_at": iso_utc(created_at),
                "data": dict(payload)}
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":"), default=_json_value)


def _json_value(value: object) -> object:
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, enum.Enum):
        return value.value
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# --- the outbox ----------------------------------------------------------------------

class Outbox:
    """Puts events in the outbox, inside the caller's unit of work.

    - `add` inserts the event and one pending delivery, due at `now`, per endpoint that
      wants its type, and returns the event id; when no endpoint wants it, it writes
      nothing and returns None;
    - nothing is visible before the caller's unit commits, and a rollback drops it all;
    - an unknown event type raises ValueError, a naive `now` ValueError.
    """

    def __init__(self, settings: WebhookSettings) -> None:
        self._settings = settings

    def add(self, uow: UnitOfWork, event_type: str, *, campaign: str,
            payload: Mapping[str, object], now: datetime) -> str | None:
        kind = WebhookEvent(event_type)
        names = [e.name for e in self._settings.endpoints if kind in e.events]
        if not names:
            return None
        now = require_aware(now, "now")
        event_id = uuid.uuid4().hex
        conn = _connection(uow)
        conn.execute(webhook_events.insert().values(
            event_id=event_id, type=kind.value, campaign=campaign, created_at=now,
            payload=encode_event(event_id, kind, created_at=now, payload=payload)))
        conn.execute(webhook_deliveries.insert(), [
            {"event_id": event_id, "endpoint": name, "state": DeliveryState.PENDING.value,
             "attempts": 0, "next_try_at": now, "last_error": ""} for name in names])
        return event_id

    def campaign_finished(self, uow: UnitOfWork, *, campaign: str,
                          summary: Mapping[str, object], now: datetime) -> str | None:
        """Add a `campaign.finished` event."""
        payload = {"campaign": campaign, "at": now, "summary": dict(summary)}
        return self.add(uow, WebhookEvent.CAMPAIGN_FINISHED, campaign=campaign,
                        payload=payload, now=now)


def requeue_failed(uow: UnitOfWork, *, now: datetime, endpoint: str | None = None,
                   event_ids: Collection[str] | None = None) -> int:
    """Give failed deliveries (all, one endpoint's, or those of `event_ids`) a fresh set of
    attempts, due at `now`; returns how many. Their `last_error` stays until the next try."""
    d = webhook_deliveries.c
    stmt = update(webhook_deliveries).where(d.state == DeliveryState.FAILED.value)
    if endpoint is not None:
        stmt = stmt.where(d.endpoint == endpoint)
    if event_ids is not None:
        stmt = stmt.where(d.event_id.in_(sorted(event_ids)))
    stmt = stmt.values(state=DeliveryState.PENDING.value, attempts=0,
                       next_try_at=require_aware(now, "now"))
    return _connection(uow).execute(stmt).rowcount


def delivery_counts(uow: ReadUnitOfWork) -> dict[str, int]:
    """How many deliveries are in each state (every state present, zero or not)."""
    d = webhook_deliveries.c
    stmt = select(d.state, func.count()).group_by(d.state)
    counts = {state.value: 0 for state in DeliveryState}
    counts.update({str(state): int(n) for state, n in _connection(uow).execute(stmt)})
    return counts


def _connection(uow: ReadUnitOfWork) -> Connection:
    # The outbox must write in the caller's transaction, and the unit of work has no
    # outbox methods, so its tables are reached through the unit's connection.
    return uow._conn


# --- delivery ------------------------------------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class _Claimed:  # a delivery leased for one try
    id: int
    event_id: str
    event_type: str
    endpoint: str
    body: bytes
    attempts: int  # counting this try: also the lease's fencing token


class Deliverer:
    """Sends the outbox's due deliveries.

    - `deliver_due` claims (leases) up to `limit` due deliveries in one short transaction,
      sends them (up to `settings.concurrency` at a time) with no transaction open, and
      records each result in its own transaction; it returns how many it tried;
    - a failure is recorded only while its lease is current (the attempt count is the
      fence), so a try that outlived its lease cannot undo a newer one; a success is
      always recorded;
    - a delivery whose endpoint is not configured here, or whose secret's environment
      variable is unset, fails like a refused request (with a warning logged once);
    - time comes from `clock`, jitter from `rng`; the secrets from `secrets` (default:
      `os.environ`), read at each send.
    """

    def __init__(self, store: Store, settings: WebhookSettings, clock: Clock, *,
                 client: httpx.Client | None = None, secrets: Mapping[str, str] | None = None,
                 rng: random.Random | None = None) -> None:
        self._store, self._settings, self._clock = store, settings, clock
        self._owns_client = client is None
        self._client = httpx.Client(follow_redirects=False) if client is None else client
        self._secrets: Mapping[str, str] = os.environ if secrets is None else secrets
        self._rng = random.Random() if rng is None else rng
        self._endpoints = {endpoint.name: endpoint for endpoint in settings.endpoints}
        self._warned: set[str] = set()

    def deliver_due(self, limit: int = 50) -> int:
        """Try the due deliveries, at most `limit`; how many were tried."""
        batch = self._claim(limit)
        workers = min(self._settings.concurrency, len(batch))
        if workers <= 1:
            for item in batch:
                self._deliver(item)
        else:
            with ThreadPoolExecutor(workers, thread_name_prefix="webhooks") as pool:
                list(pool.map(self._deliver, batch))  # re-raises a worker's error
        return len(batch)

    def run(self, stop: threading.Event, interval: float = 1.0, *, limit: int = 50) -> None:
        """Deliver until `stop` is set: straight on while a full batch was due, else every
        `interval` seconds. A retryable store error is logged and tried again later."""
        while not stop.is_set():
            try:
                tried = self.deliver_due(limit)
            except StoreError as exc:
                if not exc.retryable:
                    raise
                logger.warning("webhooks: store unavailable, trying again in %.1fs: %s",
                               interval, exc)
                tried = 0
            if tried < limit:
                stop.wait(interval)

    def close(self) -> None:
        """Close the HTTP client, if this deliverer made it."""
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> Deliverer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def _claim(self, limit: int) -> list[_Claimed]:
        if limit <= 0:
            return []
        now = self._clock.now()
        d, e = webhook_deliveries.c, webhook_events.c
        pick = (select(d.id, d.endpoint, d.attempts, e.event_id, e.type, e.payload)
                .join_from(webhook_deliveries, webhook_events, d.event_id == e.event_id)
                .where(d.state == DeliveryState.PENDING.value, d.next_try_at <= now)
                .order_by(d.next_try_at, d.id).limit(limit))
        with self._store.write() as uow:
            conn = _connection(uow)
            if conn.dialect.name == "postgresql":
                pick = pick.with_for_update(skip_locked=True, of=webhook_deliveries)
            rows = conn.execute(pick).all()
            # A try cut short (a crash) on the last attempt: give up, as after a failure.
            spent = [row.id for row in rows if row.attempts >= self._settings.max_attempts]
            batch = [_claimed(row) for row in rows if row.id not in spent]
            if spent:
                conn.execute(update(webhook_deliveries).where(d.id.in_(spent)).values(
                    state=DeliveryState.FAILED.value, last_error="interrupted on the last try"))
            if batch:
                conn.execute(update(webhook_deliveries)
                             .where(d.id.in_([item.id for item in batch]))
                             .values(attempts=d.attempts + 1, next_try_at=self._lease(now, batch)))
        return batch

    def _lease(self, now: datetime, batch: list[_Claimed]) -> datetime:
        """Until when a batch is ours: each worker sends its share one after the other."""
        rounds = math.ceil(len(batch) / self._settings.concurrency)
        return now + self._settings.timeout * (rounds + 1)

    def _deliver(self, item: _Claimed) -> None:
        error = self._send(item)
        now = self._clock.now()
        d = webhook_deliveries.c
        change = update(webhook_deliveries).where(d.id == item.id,
                                                  d.state == DeliveryState.PENDING.value)
        if error is None:  # recorded even after the lease ran out: it did arrive
            change = change.values(state=DeliveryState.DELIVERED.value, delivered_at=now,
                                   last_error="")
        else:  # recorded only while the lease is ours
            change = change.where(d.attempts == item.attempts).values(
                last_error=error[:_MAX_ERROR], **self._after_failure(item, now))
        with self._store.write() as uow:
            _connection(uow).execute(change)
        if error is None:
            logger.debug("webhook event %s delivered to %s", item.event_id, item.endpoint)
        else:
            gave_up = item.attempts >= self._settings.max_attempts
            (logger.warning if gave_up else logger.info)(
                "webhook event %s to %s: try %d failed (%s)%s", item.event_id, item.endpoint,
                item.attempts, error, "; giving up" if gave_up else "")

    def _after_failure(self, item: _Claimed, now: datetime) -> dict[str, Any]:
        if item.attempts >= self._settings.max_attempts:
            return {"state": DeliveryState.FAILED.value}
        jitter = self._rng.uniform(-JITTER, JITTER)
        return {"next_try_at": now + retry_delay(item.attempts, self._settings, jitter)}

    def _send(self, item: _Claimed) -> str | None:
        """POST one delivery; None if the receiver took it, else a short reason."""
        endpoint = self._endpoints.get(item.endpoint)
        if endpoint is None:
            return self._misconfigured(item.endpoint, "endpoint not configured")
        secret = self._secrets.get(endpoint.secret_env)
        if not secret:
            variable = endpoint.secret_env
            return self._misconfigured(item.endpoint, f"secret missing: environment variable "
                                       f"{variable} is not set")
        timestamp = int(self._clock.now().timestamp())
        headers = {"Content-Type": "application/json", "X-Dialer-Event": item.event_type,
                   "X-Dialer-Event-Id": item.event_id, "X-Dialer-Timestamp": str(timestamp),
                   "X-Dialer-Signature": sign(secret, timestamp, item.body)}
        try:
            response = self._client.post(endpoint.url, content=item.body, headers=headers,
                                         timeout=self._settings.timeout.total_seconds())
        except httpx.TimeoutException as exc:
            return f"timeout ({type(exc).__name__})"
        except httpx.TransportError as exc:
            return f"connection error ({type(exc).__name__})"
        except httpx.HTTPError as exc:  # the message may hold the URL: not kept
            return f"request error ({type(exc).__name__})"
        return None if response.is_success else f"HTTP {response.status_code}"

    def _misconfigured(self, endpoint: str, problem: str) -> str:
        if endpoint not in self._warned:
            self._warned.add(endpoint)
            logger.warning("webhook endpoint %s: %s; its deliveries fail until it is fixed",
                           endpoint, problem)
        return problem


def _claimed(row: Any) -> _Claimed:
    return _Claimed(id=int(row.id), event_id=row.event_id, event_type=row.type,
                    endpoint=row.endpoint, body=row.payload.encode(), attempts=row.attempts + 1)
