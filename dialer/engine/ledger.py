"""Where the engine's leads come from and its attempts go: the ledger seam.

The executor batches the engine's writes and hands them over together with the next
claim, so they share one transaction. `StoreLedger` is the real one (SQLite or
PostgreSQL through `Store`); `MemoryLedger` (below) is its in-memory twin for
what-if planning and the pacing benchmark, where a store would cost more than the engine.
"""

from __future__ import annotations

import heapq
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Protocol

from dialer.engine.commands import (
    CloseAttempt,
    LineStateChanged,
    RecordAttempts,
    ReleaseLeads,
    SuppressNumber,
)
from dialer.errors import StoreError
from dialer.store import (
    AttemptOutcome,
    ClaimedLead,
    NewAttempt,
    Store,
    SuppressionScope,
    UnitOfWork,
)
from lines.callerid import CallerIdChanged
from lines.health import HealthChanged
from rules.contact import ContactPolicy
from rules.retry import LeadState

logger = logging.getLogger(__name__)

Write = RecordAttempts | ReleaseLeads | CloseAttempt | SuppressNumber | LineStateChanged


@dataclass(frozen=True, slots=True, kw_only=True)
class Claim:
    """Take up to `limit` due leads of a campaign for dialing."""

    campaign_id: int
    campaign: str
    limit: int
    now: datetime
    max_attempts: int


class Ledger(Protocol):
    """Commits writes (in order, atomically), then claims leads in the same transaction.

    - a `RecordAttempts` is committed before `commit` returns: the caller dials after;
    - a `CloseAttempt` is applied exactly once; a `SuppressNumber` is idempotent;
    - `claim` returns at most `claim.limit` leads, none suppressed or known dead.
    """

    def commit(self, writes: Sequence[Write], claim: Claim | None = None) -> list[ClaimedLead]:
        ...


#: The webhook events the ledger writes (`dialer.serve.webhooks.WebhookEvent` values).
ATTEMPT_ENDED: Final = "attempt.ended"
LEAD_OPTED_OUT: Final = "lead.opted_out"


class OutboxWriter(Protocol):
    """Where the ledger puts webhook events (`dialer.serve.webhooks.Outbox`).

    - `add` writes in the caller's unit of work: an event exists iff its write committed;
    - it returns the event's id, or None when nobody wants events of that type;
    - payloads carry ids (attempt, lead), never a phone number.
    """

    def add(self, uow: UnitOfWork, event_type: str, *, campaign: str,
            payload: Mapping[str, object], now: datetime) -> str | None:
        ...


class StoreLedger:
    """The ledger on the dialer's store.

    With an `outbox`, a closed attempt also adds an `attempt.ended` event and an opt-out
    that suppresses a number adds a `lead.opted_out` event, in the write's transaction.
    """

    def __init__(self, store: Store, *, campaign: str,
                 opt_out_scope: SuppressionScope = SuppressionScope.GLOBAL,
                 policy: ContactPolicy | None = None,
                 stopped_sources: Sequence[str] = (),
                 outbox: OutboxWriter | None = None) -> None:
        self._store = store
        self._stopped_sources = tuple(stopped_sources)
        self._campaign = campaign
        self._opt_out_scope = opt_out_scope
        self._policy = policy
        self._outbox = outbox
        #: With an outbox: the attempts recorded here and not yet closed, by attempt id
        #: (their lead and start, for `attempt.ended`).
        self._open: dict[str, NewAttempt] = {}
        #: Leads the contact rules held back at claim time, by the first rule that did.
        self.deferred: Counter[str] = Counter()

    def commit(self, writes: Sequence[Write], claim: Claim | None = None) -> list[ClaimedLead]:
        deferred: Counter[str] = Counter()
        with self._store.write() as uow:
            for write in writes:
                self._apply(uow, write)
            claimed = [] if claim is None else self._claim(uow, claim, deferred)
        self.deferred.update(deferred)  # counted once the transaction is in
        for write in writes:
            if isinstance(write, CloseAttempt):
                self._open.pop(write.outcome.attempt_id, None)
        return claimed

    def _claim(self, uow: UnitOfWork, claim: Claim, deferred: Counter[str]) -> list[ClaimedLead]:
        return uow.claim_leads(campaign_id=claim.campaign_id, campaign=claim.campaign,
                               limit=claim.limit, now=claim.now,
                               max_attempts=claim.max_attempts, policy=self._policy,
                               deferred=deferred, stopped_sources=self._stopped_sources)

    def _apply(self, uow: UnitOfWork, write: Write) -> None:
        if isinstance(write, RecordAttempts):
            uow.record_attempts(write.attempts)
            if self._outbox is not None:
                self._open.update((attempt.attempt_id, attempt) for attempt in write.attempts)
        elif isinstance(write, ReleaseLeads):
            uow.release_leads(write.lead_ids)
        elif isinstance(write, SuppressNumber):
            self._suppress(uow, write.e164, write.reason, write.at)
        elif isinstance(write, LineStateChanged):
            change = write.change
            uow.add_line_event(campaign=self._campaign, kind=write.kind, subject=write.subject,
                               before=change.before.value, after=change.after.value,
                               reason=change.reason, at=write.at)
        else:
            uow.close_attempt(write.outcome)
            if write.number_status is not None:
                uow.put_number_status(write.number_status, actor="engine")
            if self._outbox is not None:
                self._attempt_ended(uow, write, self._outbox)
            if write.suppress_reason is not None:  # already done by SuppressNumber: idempotent
                self._suppress(uow, write.e164, write.suppress_reason, write.outcome.ended_at)

    def _suppress(self, uow: UnitOfWork, e164: str, reason: str, at: datetime) -> None:
        campaign = self._campaign if self._opt_out_scope is SuppressionScope.CAMPAIGN else None
        if uow.add_suppression(e164, scope=self._opt_out_scope, campaign=campaign,
                               reason=reason, actor="engine", now=at):
            logger.info("campaign %s: a callee opted out; number suppressed", self._campaign)
            if self._outbox is not None:
                payload = {"campaign": self._campaign, "lead_id": self._lead_id(uow, e164),
                           "at": at, "reason": reason}
                self._outbox.add(uow, LEAD_OPTED_OUT, campaign=self._campaign,
                                 payload=payload, now=at)

    def _attempt_ended(self, uow: UnitOfWork, close: CloseAttempt, outbox: OutboxWriter) -> None:
        outcome = close.outcome
        recorded = self._open.get(outcome.attempt_id)
        lead_id = recorded.lead_id if recorded is not None else self._lead_id(uow, close.e164)
        payload = _attempt_ended_payload(self._campaign, outcome, lead_id,
                                         None if recorded is None else recorded.placed_at)
        outbox.add(uow, ATTEMPT_ENDED, campaign=self._campaign, payload=payload,
                   now=outcome.ended_at)

    def _lead_id(self, uow: UnitOfWork, e164: str) -> int | None:
        """The campaign's lead for `e164`: one with an attempt open here (an opt-out is
        heard during a call), else looked up; None if the campaign has no such lead."""
        if not e164:
            return None
        lead_id = next((a.lead_id for a in self._open.values() if a.e164 == e164), None)
        if lead_id is None and (campaign_id := uow.campaign_id(self._campaign)) is not None:
            lead = uow.find_lead(campaign_id, e164)
            lead_id = None if lead is None else lead.id
        return lead_id


def _attempt_ended_payload(campaign: str, outcome: AttemptOutcome, lead_id: int | None,
                           placed_at: datetime | None) -> dict[str, object]:
    """The `attempt.ended` payload: no phone number (a receiver maps `lead_id` back);
    `placed_at` is None when another ledger recorded the attempt."""
    return {"attempt_id": outcome.attempt_id, "campaign": campaign, "lead_id": lead_id,
            "disposition": outcome.disposition, "placed_at": placed_at,
            "answered_at": outcome.answered_at, "ended_at": outcome.ended_at,
            "abandoned": outcome.abandoned, "agent_id": outcome.agent_id,
            "sip_status": outcome.sip_status}


def interrupted_payload(campaign: str, attempt_id: str, lead_id: int, placed_at: datetime,
                        ended_at: datetime) -> dict[str, object]:
    """The `attempt.ended` payload of an attempt a crash left open, closed as `failed`
    when the campaign started again."""
    return {"attempt_id": attempt_id, "campaign": campaign, "lead_id": lead_id,
            "disposition": "failed", "placed_at": placed_at, "answered_at": None,
            "ended_at": ended_at, "abandoned": False, "agent_id": None, "sip_status": None}


class MemoryLedger:
    """The store's in-memory twin: a numbered supply of fresh leads, retries, opt-outs.

    For what-if runs and the pacing benchmark, where the question is pacing and a store
    would cost more than the engine. Lead `i` is the number `prefix` + `i` (zero-padded to
    `digits`); `size` leads in all (None: as many as asked for). Honours the same contract
    as the store: attempts recorded before dialing and counted against `max_attempts`,
    each closed once, retries due at their time, suppressed and dead numbers never claimed.
    """

    def __init__(self, *, prefix: str = "+86135", digits: int = 8,
                 size: int | None = None) -> None:
        self._prefix, self._digits, self._size = prefix, digits, size
        self._fresh = 0  # leads handed out so far
        self._attempts: dict[int, int] = {}  # lead id -> attempts made
        self._due: list[tuple[datetime, int]] = []  # (next attempt at, lead id), a heap
        self._open: dict[str, int] = {}  # attempt id -> lead id
        self._blocked: set[str] = set()  # suppressed or known dead
        self.recorded = 0
        self.closed = 0
        self.line_changes: list[HealthChanged] = []
        self.caller_id_changes: list[CallerIdChanged] = []

    def e164(self, lead_id: int) -> str:
        return f"{self._prefix}{lead_id:0{self._digits}d}"

    def commit(self, writes: Sequence[Write], claim: Claim | None = None) -> list[ClaimedLead]:
        self._check(writes)  # all or nothing, like the store's transaction
        for write in writes:
            self._apply(write)
        return [] if claim is None else self._claim(claim)

    def _check(self, writes: Sequence[Write]) -> None:
        opened: set[str] = set()
        closed: set[str] = set()
        for write in writes:
            if isinstance(write, RecordAttempts):
                opened.update(attempt.attempt_id for attempt in write.attempts)
            elif isinstance(write, CloseAttempt):
                attempt_id = write.outcome.attempt_id
                if attempt_id in closed or (attempt_id not in self._open
                                            and attempt_id not in opened):
                    raise StoreError(f"attempt {attempt_id} is not open (closed twice?)")
                closed.add(attempt_id)

    def _apply(self, write: Write) -> None:
        if isinstance(write, RecordAttempts):
            for attempt in write.attempts:
                self._open[attempt.attempt_id] = attempt.lead_id
                self._attempts[attempt.lead_id] = self._attempts.get(attempt.lead_id, 0) + 1
            self.recorded += len(write.attempts)
        elif isinstance(write, ReleaseLeads):
            for lead_id in write.lead_ids:
                heapq.heappush(self._due, (datetime.min.replace(tzinfo=UTC), lead_id))
        elif isinstance(write, SuppressNumber):
            self._blocked.add(write.e164)
        elif isinstance(write, LineStateChanged):
            if isinstance(write.change, HealthChanged):
                self.line_changes.append(write.change)
            else:
                self.caller_id_changes.append(write.change)
        else:
            self._close(write)

    def _close(self, close: CloseAttempt) -> None:
        outcome = close.outcome
        lead_id = self._open.pop(outcome.attempt_id, None)
        if lead_id is None:
            raise StoreError(f"attempt {outcome.attempt_id} is not open (closed twice?)")
        self.closed += 1
        if close.suppress_reason is not None:
            self._blocked.add(close.e164)
        status = close.number_status
        if status is not None and status.blocks_dialing(outcome.ended_at):
            self._blocked.add(close.e164)
        if outcome.lead_state == LeadState.READY and outcome.next_attempt_at is not None:
            heapq.heappush(self._due, (outcome.next_attempt_at, lead_id))

    def _claim(self, claim: Claim) -> list[ClaimedLead]:
        leads: list[ClaimedLead] = []
        due = self._due
        while due and len(leads) < claim.limit and due[0][0] <= claim.now:
            _, lead_id = heapq.heappop(due)
            self._take(lead_id, claim, leads)
        while len(leads) < claim.limit and (self._size is None or self._fresh < self._size):
            self._fresh += 1
            self._take(self._fresh, claim, leads)
        return leads

    def _take(self, lead_id: int, claim: Claim, leads: list[ClaimedLead]) -> None:
        e164, made = self.e164(lead_id), self._attempts.get(lead_id, 0)
        if made < claim.max_attempts and e164 not in self._blocked:
            leads.append(ClaimedLead(id=lead_id, e164=e164, attempts_made=made,
                                     timezones=(), attributes={}))
