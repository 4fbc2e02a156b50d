"""The store's side of dialing: claim leads, write attempts before they are dialed, close
each attempt exactly once, and put things right after a crash.

The invariants these functions keep, whatever the engine does and wherever it crashes:

- a lead is claimed by one statement that also re-checks suppressions (global and the
  campaign's) and number status, so a number suppressed or found dead after import is
  never claimed;
- every attempt row is written, and counted against its lead's cap, before its dial
  command leaves; a lead is never claimed once it has `max_attempts` attempts;
- an attempt gets its disposition once: closing it twice raises `StoreError`;
- `recover` closes the attempts a crash left open as `failed` and puts their leads back.

Numbers are matched by their keyed hash (`e164_hash`) in SQL and decrypted only for what
is handed back (a claimed lead, a row of the outcome log).
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, exists, insert, or_, select, update

from dialer.errors import StoreError
from dialer.store import rows as sealed
from dialer.store.crypto import DataKeys
from dialer.store.records import (
    AttemptFilter,
    AttemptOutcome,
    AttemptRow,
    ClaimedLead,
    NewAttempt,
    Recovery,
    SuppressionScope,
)
from dialer.store.schema import (
    attempts,
    campaigns,
    lead_lists,
    leads,
    number_status,
    require_aware,
    split_timezones,
    suppressions,
)
from rules.contact import Callee, Consent, Contact, ContactPolicy, decide
from rules.number_status import DEAD_STATUSES

INTERRUPTED = "interrupted: the engine stopped before the call ended"


def claim_leads(
    conn: Connection,
    keys: DataKeys,
    *,
    campaign_id: int,
    campaign: str,
    limit: int,
    now: datetime,
    max_attempts: int,
    policy: ContactPolicy | None = None,
    deferred: Counter[str] | None = None,
    stopped_sources: Sequence[str] = (),
) -> list[ClaimedLead]:
    """Take up to `limit` due leads from the ready queue: highest priority first, then in
    due order. Leads from lists of a `stopped_sources` source are not taken.

    With a contact `policy`, each candidate is judged by `rules.contact.decide` in this
    same transaction: a lead the rules allow is claimed; one they do not is not, and its
    due time moves to when they next allow it (a day later when they never do by
    themselves, such as missing consent), counted in `deferred` by its first blocking rule.
    """
    now = require_aware(now, "now")
    if limit <= 0:
        return []
    candidates = functools.partial(_candidates, campaign_id, campaign, now, max_attempts,
                                   stopped_sources=stopped_sources)
    if policy is None:
        return _take(conn, keys, candidates(limit))
    claimed: list[ClaimedLead] = []
    for round_ in range(_CLAIM_ROUNDS):
        wanted = limit - len(claimed)
        # Most due leads are callable: look a little past the need at first, further once
        # the rules have held some back (those leave the due set, so rounds move on).
        batch = wanted + 2 if round_ == 0 else 2 * wanted + 8
        rows = list(conn.execute(_locked(conn, candidates(batch))))
        if not rows:
            break
        history = _history(conn, [row.e164_hash for row in rows],
                           since=now - policy.lookback, forever=policy.forever)
        take: list[int] = []
        for row in rows:
            callee = Callee(zones=split_timezones(str(row.timezones)),
                            history=tuple(history.get(row.e164_hash, ())),
                            **consent_of(sealed.lead_attributes(keys, row.attributes)))
            decision = decide(policy, callee, now)
            if decision.ok:
                if len(take) < wanted:
                    take.append(int(row.id))
                continue
            rule = decision.blocking[0].rule
            if deferred is not None:
                deferred[rule.value] += 1
            later = decision.next_at if decision.next_at is not None else now + NEVER_RECHECK
            conn.execute(update(leads).where(leads.c.id == row.id)
                         .values(next_attempt_at=max(later, now + _MIN_DEFER)))
        claimed += _take(conn, keys, select(leads.c.id).where(leads.c.id.in_(take)))
        if len(claimed) >= limit:
            break
    return claimed


_CLAIM_ROUNDS = 6  # candidate batches one claim looks at, at most
#: A lead no rule will allow by itself (no consent, rested for ever) is looked at again
#: this much later: consent may arrive, a suppression may be lifted.
NEVER_RECHECK = timedelta(days=1)
_MIN_DEFER = timedelta(seconds=1)  # a deferred lead always leaves the due set


def _candidates(campaign_id: int, campaign: str, now: datetime, max_attempts: int,
                limit: int, *, stopped_sources: Sequence[str] = ()) -> Any:
    # Every lead has a due time from insert on (`next_attempt_at`), so the ready queue is
    # read in the order of the (campaign_id, state, priority, next_attempt_at) index.
    pick = (
        select(leads.c.id, leads.c.e164_hash, leads.c.timezones, leads.c.attributes)
        .where(
            leads.c.campaign_id == campaign_id,
            leads.c.state == "ready",
            leads.c.next_attempt_at <= now,
            leads.c.attempts_made < max_attempts,
            ~_suppressed(campaign),
            ~_known_dead(now),
        )
        .order_by(leads.c.priority.desc(), leads.c.next_attempt_at, leads.c.id)
        .limit(limit)
    )
    if stopped_sources:
        stopped = select(lead_lists.c.id).where(lead_lists.c.campaign_id == campaign_id,
                                                lead_lists.c.source.in_(list(stopped_sources)))
        pick = pick.where(leads.c.list_id.not_in(stopped))
    return pick


def _take(conn: Connection, keys: DataKeys, pick: Any) -> list[ClaimedLead]:
    """Move the picked leads to `dialing`, returning them in due order."""
    pick = _locked(conn, pick.with_only_columns(leads.c.id))
    due = leads.c.next_attempt_at
    stmt = (
        update(leads)
        .where(leads.c.id.in_(pick.scalar_subquery()))
        .values(state="dialing")
        .returning(leads.c.id, leads.c.e164, leads.c.attempts_made, leads.c.timezones,
                   leads.c.attributes, leads.c.segment, leads.c.priority, due.label("due"))
    )
    rows = sorted(conn.execute(stmt), key=lambda row: (-row.priority, row.due, row.id))
    return [_claimed(row, keys) for row in rows]


def _locked(conn: Connection, pick: Any) -> Any:
    """Rows another worker holds are skipped, not waited for (PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        return pick.with_for_update(skip_locked=True)
    return pick


def contact_history(conn: Connection, keys: DataKeys, numbers: Sequence[str], *,
                    since: datetime, forever: frozenset[str] = frozenset()
                    ) -> dict[str, list[Contact]]:
    """Each number's calls since `since` (and, older, those whose outcome rests the number
    for ever), in every campaign, oldest first."""
    by_hash = sealed.hashed(keys, numbers)
    history = _history(conn, list(by_hash), since=since, forever=forever)
    return {by_hash[digest]: contacts for digest, contacts in history.items()}


def _history(conn: Connection, hashes: Sequence[str], *, since: datetime,
             forever: frozenset[str]) -> dict[str, list[Contact]]:
    """`contact_history` by lookup hash."""
    if not hashes:
        return {}
    recent = attempts.c.placed_at >= require_aware(since, "since")
    if forever:
        recent = or_(recent, attempts.c.disposition.in_(sorted(forever)))
    stmt = (
        select(attempts.c.e164_hash, attempts.c.placed_at, attempts.c.purpose,
               attempts.c.disposition, campaigns.c.name)
        .join(campaigns, campaigns.c.id == attempts.c.campaign_id)
        .where(attempts.c.e164_hash.in_(sorted(set(hashes))), recent)
        .order_by(attempts.c.placed_at)
    )
    history: dict[str, list[Contact]] = {}
    for row in conn.execute(stmt):
        history.setdefault(row.e164_hash, []).append(Contact(
            at=row.placed_at, purpose=row.purpose, campaign=row.name,
            disposition=row.disposition))
    return history


#: The lead columns that carry consent (English or Chinese headers).
CONSENT_SOURCE = ("consent_source", "同意来源")
CONSENT_AT = ("consent_at", "同意时间")


def consent_of(attributes: dict[str, str]) -> dict[str, Any]:
    """A lead's consent from its `consent_source` and `consent_at` columns (or 同意来源 and
    同意时间; ISO 8601, a time without a zone is UTC), as `Callee` fields."""
    source = next((attributes[k].strip() for k in CONSENT_SOURCE if attributes.get(k)), "")
    when = next((attributes[k].strip() for k in CONSENT_AT if attributes.get(k)), "")
    if not source and not when:
        return {}
    if not source or not when:
        missing = "consent_source" if not source else "consent_at"
        return {"consent_problem": f"the lead's consent has no {missing}"}
    try:
        at = datetime.fromisoformat(when)
    except ValueError:
        return {"consent_problem": f"the lead's consent_at {when!r} is not an ISO 8601 time"}
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return {"consent": Consent(source=source, at=at)}


def _suppressed(campaign: str) -> Any:
    return exists().where(
        suppressions.c.e164_hash == leads.c.e164_hash,
        or_(
            suppressions.c.scope == SuppressionScope.GLOBAL.value,
            and_(suppressions.c.scope == SuppressionScope.CAMPAIGN.value,
                 suppressions.c.campaign == campaign),
        ),
    )


def _known_dead(now: datetime) -> Any:
    return exists().where(
        number_status.c.e164_hash == leads.c.e164_hash,
        number_status.c.status.in_(sorted(s.value for s in DEAD_STATUSES)),
        or_(number_status.c.recheck_at.is_(None), number_status.c.recheck_at > now),
    )


def _claimed(row: Any, keys: DataKeys) -> ClaimedLead:
    zones = split_timezones(str(row.timezones))
    return ClaimedLead(id=int(row.id), e164=keys.decrypt(sealed.LEADS_E164, row.e164),
                       attempts_made=int(row.attempts_made), timezones=zones,
                       attributes=sealed.lead_attributes(keys, row.attributes),
                       segment=str(row.segment))


def record_attempts(conn: Connection, keys: DataKeys, new: Sequence[NewAttempt]) -> None:
    """Write attempts (before dialing them) and count each against its lead's cap."""
    if not new:
        return
    encrypt = keys.encrypter(sealed.ATTEMPTS_E164)
    conn.execute(insert(attempts), [
        {"attempt_id": a.attempt_id, "campaign_id": a.campaign_id, "lead_id": a.lead_id,
         "e164": encrypt(a.e164), "e164_hash": keys.lookup_hash(a.e164),
         "trunk": a.trunk, "caller_id": a.caller_id,
         "placed_at": require_aware(a.placed_at, "placed_at"), "created_at": a.placed_at,
         "purpose": a.purpose, "script": a.script}
        for a in new
    ])
    conn.execute(
        update(leads)
        .where(leads.c.id.in_([a.lead_id for a in new]))
        .values(attempts_made=leads.c.attempts_made + 1)
    )


def release_leads(conn: Connection, lead_ids: Sequence[int]) -> None:
    """Put claimed leads that were not dialed back in the queue, as they were."""
    if lead_ids:
        conn.execute(update(leads).where(leads.c.id.in_(list(lead_ids)),
                                         leads.c.state == "dialing").values(state="ready"))


def close_attempt(conn: Connection, outcome: AttemptOutcome) -> None:
    """Give an attempt its one disposition and move its lead on; twice is an error."""
    stmt = (
        update(attempts)
        .where(attempts.c.attempt_id == outcome.attempt_id, attempts.c.disposition.is_(None))
        .values(
            disposition=outcome.disposition,
            ended_at=require_aware(outcome.ended_at, "ended_at"),
            answered_at=outcome.answered_at,
            sip_status=outcome.sip_status,
            q850_cause=outcome.q850_cause,
            agent_id=outcome.agent_id,
            abandoned=outcome.abandoned,
            reason=outcome.reason,
        )
        .returning(attempts.c.lead_id)
    )
    lead_id = conn.execute(stmt).scalar_one_or_none()
    if lead_id is None:
        raise StoreError(f"attempt {outcome.attempt_id} is unknown or already has a disposition")
    due = outcome.next_attempt_at
    if outcome.lead_state == "ready" and due is None:
        due = outcome.ended_at  # a ready lead always has a due time (the queue's order)
    values: dict[str, object] = {"state": outcome.lead_state, "next_attempt_at": due}
    if outcome.placement is not None:
        values["segment"], values["priority"] = outcome.placement
    conn.execute(update(leads).where(leads.c.id == lead_id).values(**values))


def recover(
    conn: Connection, *, campaign_id: int, now: datetime, retry_at: datetime, max_attempts: int
) -> Recovery:
    """Close attempts a stop left open as `failed`; put `dialing` leads back in the queue."""
    now = require_aware(now, "now")
    open_ = and_(attempts.c.campaign_id == campaign_id, attempts.c.disposition.is_(None))
    left = [(row.attempt_id, row.lead_id, row.placed_at) for row in conn.execute(
        select(attempts.c.attempt_id, attempts.c.lead_id, attempts.c.placed_at)
        .where(open_).order_by(attempts.c.placed_at))]
    closed = conn.execute(
        update(attempts).where(open_)
        .values(disposition="failed", ended_at=now, reason=INTERRUPTED)
    ).rowcount
    stuck = and_(leads.c.campaign_id == campaign_id, leads.c.state == "dialing")
    released = conn.execute(
        update(leads).where(stuck, leads.c.attempts_made < max_attempts)
        .values(state="ready", next_attempt_at=require_aware(retry_at, "retry_at"))
    ).rowcount
    released += conn.execute(
        update(leads).where(stuck).values(state="exhausted", next_attempt_at=None)
    ).rowcount
    return Recovery(attempts_closed=int(closed), leads_released=int(released),
                    closed=tuple(left))


def attempt_rows(conn: Connection, keys: DataKeys, which: AttemptFilter
                 ) -> Iterator[AttemptRow]:
    """The outcome log, oldest first, streamed."""
    stmt = (
        select(attempts, campaigns.c.name.label("campaign"), lead_lists.c.source,
               leads.c.timezones)
        .join(campaigns, campaigns.c.id == attempts.c.campaign_id)
        .join(leads, leads.c.id == attempts.c.lead_id)
        .join(lead_lists, lead_lists.c.id == leads.c.list_id)
        .order_by(attempts.c.placed_at, attempts.c.attempt_id)
    )
    stmt = _filtered(stmt, which)
    decrypt = keys.decrypt
    for row in conn.execution_options(yield_per=1000).execute(stmt):
        yield AttemptRow(
            attempt_id=row.attempt_id, campaign=row.campaign, lead_id=row.lead_id,
            e164=decrypt(sealed.ATTEMPTS_E164, row.e164), list_source=row.source,
            trunk=row.trunk, caller_id=row.caller_id,
            placed_at=row.placed_at, answered_at=row.answered_at, ended_at=row.ended_at,
            sip_status=row.sip_status, disposition=row.disposition, agent_id=row.agent_id,
            abandoned=bool(row.abandoned),
            callee_timezones=split_timezones(row.timezones),
            reason=row.reason, purpose=row.purpose, script=row.script,
        )


def _filtered(stmt: Any, which: AttemptFilter) -> Any:
    if which.campaign is not None:
        stmt = stmt.where(campaigns.c.name == which.campaign)
    if which.disposition is not None:
        stmt = stmt.where(attempts.c.disposition == which.disposition)
    if which.since is not None:
        stmt = stmt.where(attempts.c.placed_at >= require_aware(which.since, "since"))
    if which.until is not None:
        stmt = stmt.where(attempts.c.placed_at < require_aware(which.until, "until"))
    if which.after is not None:
        placed, attempt_id = which.after
        placed = require_aware(placed, "after")
        stmt = stmt.where(or_(attempts.c.placed_at > placed,
                              and_(attempts.c.placed_at == placed,
                                   attempts.c.attempt_id > attempt_id)))
    if which.limit is not None:
        stmt = stmt.limit(which.limit)
    return stmt
