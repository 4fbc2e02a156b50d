"""Webhooks: the outbox, signed delivery with retries, the ledger's events, and a deliverer
SIGKILLed mid-delivery that still delivers every event (at least once, same id).

Every test posts to a real HTTP receiver on 127.0.0.1 through a real httpx client.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import random
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select, update

from dialer.clock import ManualClock, SystemClock
from dialer.engine import ledger as ledger_module
from dialer.engine.commands import CloseAttempt, RecordAttempts, SuppressNumber
from dialer.engine.ledger import Claim, StoreLedger
from dialer.errors import StoreError
from dialer.serve.webhooks import (
    Deliverer,
    Outbox,
    WebhookEndpoint,
    WebhookEvent,
    WebhookSettings,
    delivery_counts,
    requeue_failed,
    retry_delay,
    sign,
    verify_signature,
)
from dialer.store import AttemptOutcome, NewAttempt, NewLead, Store
from dialer.store.schema import webhook_deliveries, webhook_events

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
SECRET = "s3cret-不要告诉别人"
SECRETS = {"HOOK_A": SECRET, "HOOK_B": SECRET}
ENDED = WebhookEvent.ATTEMPT_ENDED
DRIVER = Path(__file__).with_name("webhook_driver.py")
ROOT = Path(__file__).resolve().parents[2]


# --- a receiver on 127.0.0.1 ---------------------------------------------------------

@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    signed: bool  # the signature verified with SECRET


class Receiver:
    """An HTTP server on 127.0.0.1 that checks and records every POST, waits `delay`, and
    answers with the next of `statuses` (200 once they are used up)."""

    def __init__(self, statuses: Sequence[int] = (), delay: float = 0.0) -> None:
        self.received: list[Received] = []
        self._statuses = list(statuses)
        self._lock = threading.Lock()
        self._delay = delay
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def ids(self) -> list[str]:
        with self._lock:
            return [r.headers["X-Dialer-Event-Id"] for r in self.received]

    def respond(self, *statuses: int) -> None:
        with self._lock:
            self._statuses[:] = statuses

    def _take(self, received: Received) -> int:
        with self._lock:
            self.received.append(received)
            return self._statuses.pop(0) if self._statuses else 200

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = dict(self.headers.items())
                signed = verify_signature(SECRET, headers["X-Dialer-Timestamp"], body,
                                          headers["X-Dialer-Signature"])
                status = receiver._take(Received(self.path, headers, body, signed))
                time.sleep(receiver._delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the deliverer went away (killed, or timed out)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def endpoint(name: str, url: str, *events: WebhookEvent, secret_env: str = "HOOK_A"
             ) -> WebhookEndpoint:
    return WebhookEndpoint(name=name, url=url, secret_env=secret_env,
                           events=frozenset(events or WebhookEvent))


def settings(*endpoints: WebhookEndpoint, **overrides: Any) -> WebhookSettings:
    values: dict[str, Any] = {"first_retry": timedelta(seconds=10),
                              "max_backoff": timedelta(hours=1),
                              "timeout": timedelta(seconds=2)} | overrides
    return WebhookSettings(endpoints=endpoints, **values)


def deliverer(store: Store, config: WebhookSettings, clock: ManualClock,
              secrets: dict[str, str] | None = None) -> Deliverer:
    return Deliverer(store, config, clock, secrets=SECRETS if secrets is None else secrets,
                     rng=random.Random(7))


def add(store: Store, config: WebhookSettings, event_type: str = ENDED, *,
        payload: dict[str, object] | None = None, now: datetime = T0) -> str | None:
    with store.write() as uow:
        return Outbox(config).add(uow, event_type, campaign="春季", now=now,
                                  payload={"attempt_id": "a1"} if payload is None else payload)


def add_many(store: Store, config: WebhookSettings, count: int, now: datetime = T0
             ) -> set[str]:
    with store.write() as uow:
        ids = [Outbox(config).add(uow, ENDED, campaign="c", payload={"n": n}, now=now)
               for n in range(count)]
    return {event_id for event_id in ids if event_id is not None}


def deliveries(store: Store) -> list[Any]:
    with store.read() as uow:
        return list(uow._conn.execute(select(webhook_deliveries)
                                      .order_by(webhook_deliveries.c.id)))


def events(store: Store) -> list[Any]:
    with store.read() as uow:
        return list(uow._conn.execute(select(webhook_events).order_by(webhook_events.c.id)))


# --- the pure parts ------------------------------------------------------------------

def test_signature_covers_secret_timestamp_and_body() -> None:
    header = sign(SECRET, 1764000000, b'{"id":"e1"}')
    assert header.startswith("sha256=")
    assert len(header) == 7 + 64
    assert verify_signature(SECRET, "1764000000", b'{"id":"e1"}', header)
    assert not verify_signature("other", 1764000000, b'{"id":"e1"}', header)
    assert not verify_signature(SECRET, 1764000001, b'{"id":"e1"}', header)
    assert not verify_signature(SECRET, 1764000000, b'{"id":"e2"}', header)
    assert not verify_signature(SECRET, 1764000000, b'{"id":"e1"}', "sha256=00ff")
    assert not verify_signature(SECRET, 1764000000, b'{"id":"e1"}', "签名")


def test_retry_delay_doubles_up_to_the_cap() -> None:
    config = settings()
    assert [retry_delay(n, config).total_seconds() for n in (1, 2, 3, 4)] == [10, 20, 40, 80]
    assert retry_delay(9, config) == timedelta(seconds=2560)
    assert retry_delay(10, config) == timedelta(hours=1)
    assert retry_delay(10_000, config) == timedelta(hours=1)
    assert retry_delay(1, config, 0.2) == timedelta(seconds=12)


@given(st.integers(1, 10_000), st.floats(-0.2, 0.2))
def test_retry_delay_stays_within_its_bounds(attempts: int, jitter: float) -> None:
    config = settings()
    delay = retry_delay(attempts, config, jitter)
    assert timedelta(seconds=8) <= delay <= timedelta(hours=1.2)
    assert retry_delay(attempts + 1, config, jitter) >= delay


def test_settings_validate_from_config_values() -> None:
    adapter = TypeAdapter(WebhookSettings)
    loaded = adapter.validate_python({
        "endpoints": [{"name": "crm", "url": "https://crm.example/hooks",
                       "secret_env": "CRM_SECRET", "events": ["lead.opted_out"]}],
        "first_retry": "30s", "max_backoff": "2h", "timeout": 5, "max_attempts": 3})
    assert loaded.endpoints[0].events == {WebhookEvent.LEAD_OPTED_OUT}
    assert (loaded.first_retry, loaded.max_backoff) == (timedelta(seconds=30), timedelta(hours=2))
    assert adapter.validate_python({}).endpoints == ()
    hook = {"name": "crm", "url": "https://crm.example/", "secret_env": "CRM_SECRET"}
    for bad in ({"endpoints": [hook | {"events": ["call.ended"]}]},
                {"endpoints": [hook | {"url": "ftp://crm.example/"}]},
                {"endpoints": [hook | {"secret_env": "not a name"}]},
                {"endpoints": [hook, hook]},
                {"first_retry": "1h", "max_backoff": "1m"},
                {"timeout": 0},
                {"retries": 3}):
        with pytest.raises(ValidationError):
            adapter.validate_python(bad)


# --- the outbox and delivery ---------------------------------------------------------

def test_an_event_is_delivered_signed_with_its_stored_bytes(store: Store,
                                                            receiver: Receiver) -> None:
    config = settings(endpoint("crm", receiver.url + "/hooks"))
    payload = {"attempt_id": "a1", "campaign": "春季", "lead_id": 7, "ended_at": T0,
               "answered_at": None, "abandoned": False}
    event_id = add(store, config, payload=payload)
    clock = ManualClock(T0 + timedelta(seconds=3))
    with deliverer(store, config, clock) as sender:
        assert sender.deliver_due() == 1
        assert sender.deliver_due() == 0
    [got] = receiver.received
    assert got.signed
    assert got.path == "/hooks"
    assert got.body == events(store)[0].payload.encode()  # the exact bytes stored
    assert "春季".encode() in got.body  # not \\u-escaped
    assert got.headers["X-Dialer-Event"] == "attempt.ended"
    assert got.headers["X-Dialer-Event-Id"] == event_id
    assert got.headers["X-Dialer-Timestamp"] == str(int(clock.now().timestamp()))
    assert got.headers["Content-Type"] == "application/json"
    assert json.loads(got.body) == {
        "id": event_id, "type": "attempt.ended", "created_at": "2026-11-24T10:00:00Z",
        "data": {"attempt_id": "a1", "campaign": "春季", "lead_id": 7, "abandoned": False,
                 "ended_at": "2026-11-24T10:00:00Z", "answered_at": None}}
    [row] = deliveries(store)
    assert (row.state, row.attempts, row.delivered_at) == ("delivered", 1, clock.now())


def test_a_refused_delivery_backs_off_then_succeeds_with_the_same_id(
        store: Store, receiver: Receiver) -> None:
    config = settings(endpoint("crm", receiver.url))
    event_id = add(store, config)
    receiver.respond(500, 503)
    clock = ManualClock(T0)
    with deliverer(store, config, clock) as sender:
        for attempt, base in ((1, 10), (2, 20)):
            assert sender.deliver_due() == 1
            [row] = deliveries(store)
            assert (row.state, row.attempts) == ("pending", attempt)
            assert row.last_error == f"HTTP {500 if attempt == 1 else 503}"
            wait = row.next_try_at - clock.now()
            assert timedelta(seconds=0.8 * base) <= wait <= timedelta(seconds=1.2 * base)
            clock.advance(wait - timedelta(seconds=1))
            assert sender.deliver_due() == 0  # not due yet
            clock.advance(timedelta(seconds=1))
        assert sender.deliver_due() == 1
    assert receiver.ids() == [event_id] * 3
    assert all(got.signed for got in receiver.received)
    [row] = deliveries(store)
    assert (row.state, row.attempts, row.last_error) == ("delivered", 3, "")


def test_after_max_attempts_a_delivery_fails_and_can_be_requeued(
        store: Store, receiver: Receiver) -> None:
    config = settings(endpoint("crm", receiver.url), max_attempts=3,
                      first_retry=timedelta(seconds=1), max_backoff=timedelta(seconds=1))
    add(store, config)
    receiver.respond(500, 500, 500, 500)
    clock = ManualClock(T0)
    with deliverer(store, config, clock) as sender:
        for _ in range(5):
            sender.deliver_due()
            clock.advance(timedelta(seconds=2))
        [row] = deliveries(store)
        assert (row.state, row.attempts, row.last_error) == ("failed", 3, "HTTP 500")
        assert len(receiver.received) == 3
        receiver.respond()
        with store.write() as uow:
            assert requeue_failed(uow, now=clock.now(), endpoint="other") == 0
            assert requeue_failed(uow, now=clock.now(), endpoint="crm") == 1
        assert sender.deliver_due() == 1
    [row] = deliveries(store)
    assert (row.state, row.attempts) == ("delivered", 1)
    with store.read() as uow:
        assert delivery_counts(uow) == {"pending": 0, "delivered": 1, "failed": 0}


def test_timeouts_and_connection_errors_are_retried(store: Store) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    with Receiver(delay=1.0) as slow:
        config = settings(endpoint("slow", slow.url), endpoint("down", f"http://127.0.0.1:{closed}"),
                          timeout=timedelta(seconds=0.2))
        add(store, config)
        with deliverer(store, config, ManualClock(T0)) as sender:
            assert sender.deliver_due() == 2
    errors = {row.endpoint: (row.state, row.attempts, row.last_error) for row in deliveries(store)}
    assert errors == {"slow": ("pending", 1, "timeout (ReadTimeout)"),
                      "down": ("pending", 1, "connection error (ConnectError)")}


def test_endpoints_get_only_the_events_they_want(store: Store, receiver: Receiver) -> None:
    config = settings(endpoint("all", receiver.url + "/all"),
                      endpoint("optouts", receiver.url + "/optouts", WebhookEvent.LEAD_OPTED_OUT))
    ended = add(store, config)
    opted = add(store, config, WebhookEvent.LEAD_OPTED_OUT, payload={"lead_id": 1})
    assert add(store, settings(endpoint("optouts", receiver.url,
                                        WebhookEvent.LEAD_OPTED_OUT))) is None
    assert len(events(store)) == 2  # nothing written for an event nobody wants
    with deliverer(store, config, ManualClock(T0)) as sender:
        assert sender.deliver_due() == 3
    got = sorted((r.path, r.headers["X-Dialer-Event-Id"]) for r in receiver.received)
    assert got == sorted([("/all", ended), ("/all", opted), ("/optouts", opted)])
    with pytest.raises(ValueError, match=r"call\.ended"), store.write() as uow:
        Outbox(config).add(uow, "call.ended", campaign="c", payload={}, now=T0)


def test_a_missing_secret_fails_that_endpoint_only_with_a_clear_error(
        store: Store, receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    config = settings(endpoint("crm", receiver.url + "/crm", secret_env="HOOK_UNSET"),
                      endpoint("ok", receiver.url + "/ok"))
    add(store, config)
    add(store, config)
    with caplog.at_level(logging.WARNING), deliverer(store, config, ManualClock(T0)) as sender:
        assert sender.deliver_due() == 4
    assert [r.path for r in receiver.received] == ["/ok", "/ok"]
    failed = [row for row in deliveries(store) if row.endpoint == "crm"]
    assert [(row.state, row.attempts) for row in failed] == [("pending", 1)] * 2
    assert failed[0].last_error == "secret missing: environment variable HOOK_UNSET is not set"
    warnings = [r.getMessage() for r in caplog.records if "HOOK_UNSET" in r.getMessage()]
    assert len(warnings) == 1  # once per endpoint, not per delivery
    assert SECRET not in caplog.text


def test_a_try_cut_short_on_the_last_attempt_gives_up(store: Store, receiver: Receiver) -> None:
    config = settings(endpoint("crm", receiver.url), max_attempts=2)
    add(store, config)
    with store.write() as uow:  # as if a deliverer died during its second try
        uow._conn.execute(update(webhook_deliveries).values(attempts=2))
    with deliverer(store, config, ManualClock(T0)) as sender:
        assert sender.deliver_due() == 0
    [row] = deliveries(store)
    assert (row.state, row.last_error) == ("failed", "interrupted on the last try")
    assert receiver.received == []


def test_no_event_when_the_write_rolls_back(store: Store, receiver: Receiver) -> None:
    config = settings(endpoint("crm", receiver.url))

    def add_then_fail() -> None:
        with store.write() as uow:
            Outbox(config).add(uow, ENDED, campaign="c", payload={}, now=T0)
            raise RuntimeError("the write failed")

    with pytest.raises(RuntimeError):
        add_then_fail()
    assert events(store) == []
    assert deliveries(store) == []


def test_deliverers_share_the_work_without_sending_twice(store: Store,
                                                         receiver: Receiver) -> None:
    config = settings(endpoint("crm", receiver.url))
    ids = add_many(store, config, 60)
    clock = ManualClock(T0)
    start = threading.Barrier(2)

    def work(sender: Deliverer) -> None:
        start.wait(timeout=5)
        deadline = time.monotonic() + 20
        while sender.deliver_due(limit=7) and time.monotonic() < deadline:
            pass

    senders = [deliverer(store, config, clock) for _ in range(2)]
    threads = [threading.Thread(target=work, args=(sender,)) for sender in senders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    for sender in senders:
        sender.close()
    assert sorted(receiver.ids()) == sorted(ids)  # each once: nothing claimed twice
    assert {row.state for row in deliveries(store)} == {"delivered"}


def test_run_delivers_until_stopped(store: Store, receiver: Receiver) -> None:
    config = settings(endpoint("crm", receiver.url))
    stop = threading.Event()
    with deliverer(store, config, ManualClock(T0)) as sender:
        loop = threading.Thread(target=sender.run, args=(stop,), kwargs={"interval": 0.01})
        loop.start()
        event_id = add(store, config)
        deadline = time.monotonic() + 10
        while not receiver.ids() and time.monotonic() < deadline:
            time.sleep(0.01)
        stop.set()
        loop.join(timeout=5)
    assert not loop.is_alive()
    assert receiver.ids() == [event_id]


# --- the ledger's events -------------------------------------------------------------

def seed(store: Store, count: int) -> int:
    with store.write() as uow:
        campaign_id = uow.ensure_campaign("c", default_region="CN", now=T0)
        list_id = uow.create_list(campaign_id, source="v", file_name="f.csv",
                                  sha256=uuid.uuid4().hex, now=T0)
        uow.insert_leads([
            NewLead(campaign_id=campaign_id, list_id=list_id, row_number=i,
                    e164=f"+86135000000{i:02d}", raw="", attributes={}, region="CN",
                    number_type="mobile", timezones=("Asia/Shanghai",), carrier="",
                    created_at=T0 - timedelta(seconds=count - i))
            for i in range(count)])
    return campaign_id


def dial(ledger: StoreLedger, campaign_id: int, count: int) -> list[NewAttempt]:
    leads = ledger.commit([], Claim(campaign_id=campaign_id, campaign="c", limit=count, now=T0,
                                    max_attempts=3))
    attempts = tuple(NewAttempt(attempt_id=uuid.uuid4().hex, campaign_id=campaign_id,
                                lead_id=lead.id, e164=lead.e164, trunk="t1",
                                caller_id="+862100000000", placed_at=T0) for lead in leads)
    ledger.commit([RecordAttempts(attempts=attempts)])
    return list(attempts)


def close(attempt: NewAttempt, *, suppress: str | None = None) -> CloseAttempt:
    outcome = AttemptOutcome(attempt_id=attempt.attempt_id, disposition="human",
                             answered_at=T0 + timedelta(seconds=5), agent_id="agent-1",
                             ended_at=T0 + timedelta(seconds=40), sip_status=200,
                             lead_state="done")
    return CloseAttempt(outcome=outcome, suppress_reason=suppress, e164=attempt.e164)


def ended(attempt: NewAttempt) -> dict[str, object]:
    """The `attempt.ended` data of `close(attempt)`."""
    return {"attempt_id": attempt.attempt_id, "campaign": "c", "lead_id": attempt.lead_id,
            "disposition": "human", "placed_at": "2026-11-24T10:00:00Z",
            "answered_at": "2026-11-24T10:00:05Z", "ended_at": "2026-11-24T10:00:40Z",
            "abandoned": False, "agent_id": "agent-1", "sip_status": 200}


def stored(store: Store) -> list[tuple[str, dict[str, Any]]]:
    return [(row.type, json.loads(row.payload)["data"]) for row in events(store)]


def test_the_ledger_writes_attempt_ended_and_lead_opted_out(store: Store) -> None:
    campaign_id = seed(store, 3)
    ledger = StoreLedger(store, campaign="c", outbox=Outbox(settings(endpoint("crm", "http://x"))))
    first, second = dial(ledger, campaign_id, 2)
    ledger.commit([close(first)])
    ledger.commit([SuppressNumber(e164=second.e164, reason="opt_out", at=T0)])
    ledger.commit([close(second, suppress="opt_out")])  # suppressed already: one opt-out event
    assert stored(store) == [
        ("attempt.ended", ended(first)),
        ("lead.opted_out", {"campaign": "c", "lead_id": second.lead_id,
                            "at": "2026-11-24T10:00:00Z", "reason": "opt_out"}),
        ("attempt.ended", ended(second)),
    ]
    assert all("+86" not in row.payload for row in events(store))  # no phone numbers
    assert len(deliveries(store)) == 3


def test_a_ledger_that_did_not_dial_finds_the_lead_in_the_store(store: Store) -> None:
    campaign_id = seed(store, 2)
    [attempt] = dial(StoreLedger(store, campaign="c"), campaign_id, 1)
    outbox = Outbox(settings(endpoint("crm", "http://x")))
    ledger = StoreLedger(store, campaign="c", outbox=outbox)  # not the one that dialed
    ledger.commit([close(attempt)])
    ledger.commit([SuppressNumber(e164=attempt.e164, reason="opted out to agent-1", at=T0)])
    assert stored(store) == [
        ("attempt.ended", ended(attempt) | {"placed_at": None}),  # only the dialer knew it
        ("lead.opted_out", {"campaign": "c", "lead_id": attempt.lead_id,
                            "at": "2026-11-24T10:00:00Z", "reason": "opted out to agent-1"})]


def test_ledger_events_commit_or_roll_back_with_their_write(store: Store) -> None:
    campaign_id = seed(store, 2)
    ledger = StoreLedger(store, campaign="c", outbox=Outbox(settings(endpoint("crm", "http://x"))))
    [attempt] = dial(ledger, campaign_id, 1)
    with pytest.raises(StoreError):  # closed twice in one batch: the whole batch rolls back
        ledger.commit([close(attempt, suppress="opt_out"), close(attempt)])
    assert events(store) == []
    assert deliveries(store) == []
    with store.read() as uow:
        assert uow.suppressed_e164s([attempt.e164], campaign="c") == set()
    ledger.commit([close(attempt)])  # still open: it closes now, with its event
    assert [kind for kind, _ in stored(store)] == ["attempt.ended"]


def test_a_ledger_without_an_outbox_writes_no_events(store: Store) -> None:
    campaign_id = seed(store, 1)
    ledger = StoreLedger(store, campaign="c")
    [attempt] = dial(ledger, campaign_id, 1)
    ledger.commit([close(attempt, suppress="opt_out")])
    assert events(store) == []


def test_the_ledger_event_names_are_the_public_ones() -> None:
    ledger_names = (ledger_module.ATTEMPT_ENDED, ledger_module.LEAD_OPTED_OUT)
    assert ledger_names == (WebhookEvent.ATTEMPT_ENDED.value, WebhookEvent.LEAD_OPTED_OUT.value)


# --- the crash test ------------------------------------------------------------------

CRASH_EVENTS = 200
KILL_AT = (30, 70, 110, 150)  # distinct events received when each SIGKILL lands


def start_driver(store_url: str, url: str, log: Path) -> subprocess.Popen[bytes]:
    env = os.environ | {"HOOK_A": SECRET, "PYTHONPATH": str(ROOT)}
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, str(DRIVER), "--db", store_url, "--url", url,
                                 "--secret-env", "HOOK_A", "--limit", "8", "--concurrency", "4",
                                 "--timeout", "1"], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT)


def wait_for(condition: Any, deadline: float, what: str, log: Path) -> None:
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}; driver log:\n{log.read_text()[-3000:]}")
        time.sleep(0.01)


def reached(receiver: Receiver, count: int) -> bool:
    return len(set(receiver.ids())) >= count


def all_delivered(store: Store) -> bool:
    return all(row.state == "delivered" for row in deliveries(store))


def in_flight(store: Store) -> int:
    """Deliveries leased and not recorded: what a kill cut short."""
    return sum(row.state == "pending" and row.attempts > 0 for row in deliveries(store))


def run_driver(store: Store, store_url: str, receiver: Receiver, kill_at: int | None,
               deadline: float, log: Path) -> int:
    """Start a deliverer process; SIGKILL it once `kill_at` distinct events have arrived,
    or (None) stop it with SIGTERM once every delivery is done; its exit code."""
    driver = start_driver(store_url, receiver.url, log)
    try:
        if kill_at is None:
            wait_for(functools.partial(all_delivered, store), deadline, "every delivery", log)
            driver.terminate()
        else:
            wait_for(functools.partial(reached, receiver, kill_at), deadline,
                     f"{kill_at} events", log)
            driver.kill()
        return driver.wait(timeout=10)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait(timeout=10)


@pytest.mark.slow
def test_sigkilled_deliverers_still_deliver_every_event(store: Store, store_url: str,
                                                        tmp_path: Path) -> None:
    deadline = time.monotonic() + 50
    log = tmp_path / "driver.log"
    with Receiver(delay=0.02) as receiver:
        config = settings(endpoint("receiver", receiver.url))
        now = SystemClock().now()  # the driver runs on the real clock
        ids = add_many(store, config, CRASH_EVENTS, now)
        interrupted = 0
        for kill_at in KILL_AT:
            assert run_driver(store, store_url, receiver, kill_at, deadline, log) == -9
            interrupted += in_flight(store)
        assert run_driver(store, store_url, receiver, None, deadline, log) == 0, log.read_text()
        received = receiver.ids()
    assert set(received) == ids  # every event, and only ours
    assert len(set(received)) == CRASH_EVENTS  # the receiver's dedup by id
    assert all(got.signed for got in receiver.received)
    assert Counter(row.state for row in deliveries(store)) == {"delivered": CRASH_EVENTS}
    assert interrupted > 0  # the kills landed mid-delivery
