"""Write-side operations of a unit of work: everything that changes the database."""

from __future__ import annotations

import enum
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.dialects import postgresql, sqlite

from dialer.errors import StoreError
from dialer.store import dialing, lead_inserts, rows
from dialer.store.queries import ReadUnitOfWork
from dialer.store.records import (
    AttemptOutcome,
    ClaimedLead,
    NewAttempt,
    NewLead,
    Recovery,
    SuppressionScope,
)
from dialer.store.schema import (
    audit_log,
    caller_id_marks,
    campaigns,
    lead_lists,
    leads,
    line_events,
    number_status,
    require_aware,
    suppressions,
)
from rules.contact import ContactPolicy
from rules.number_status import NumberStatusRecord


class UnitOfWork(ReadUnitOfWork):
    """Queries and changes inside one write transaction (`Store.write()`).

    - nothing is visible to others until the `with` block ends without an exception;
      then everything is committed at once, otherwise nothing is;
    - on SQLite the transaction holds the database's write lock from its start
      (BEGIN IMMEDIATE), so two writers queue instead of deadlocking;
    - the store never reads the clock: each change takes its time as `now` (aware);
    - a constraint violation (a duplicate lead, a second list with the same content)
      raises StoreError and the whole unit is rolled back;
    - suppression and number-status changes write an audit entry in the same
      transaction; adding an existing suppression or removing a missing one returns
      False and writes none; every `put_number_status` is audited;
    - numbers, raw cells and attributes are encrypted under the current data key as
      they are written, their lookup hash beside them; an audit subject that is an E.164
      number is written as `number:<lookup hash>`.
    """

    # dialing (see dialer.store.dialing for the invariants)

    def claim_leads(
        self, *, campaign_id: int, campaign: str, limit: int, now: datetime, max_attempts: int,
        policy: ContactPolicy | None = None, deferred: Counter[str] | None = None,
        stopped_sources: Sequence[str] = (),
    ) -> list[ClaimedLead]:
        """Take up to `limit` due, callable leads from the ready queue (state `dialing`);
        with a contact `policy`, only leads its rules allow now (see `dialing.claim_leads`)."""
        return dialing.claim_leads(self._conn, self._keys, campaign_id=campaign_id,
                                   campaign=campaign, limit=limit, now=now,
                                   max_attempts=max_attempts, policy=policy,
                                   deferred=deferred, stopped_sources=stopped_sources)

    def record_attempts(self, new: Sequence[NewAttempt]) -> None:
        """Write attempts before they are dialed; each counts against its lead's cap."""
        dialing.record_attempts(self._conn, self._keys, new)

    def release_leads(self, lead_ids: Sequence[int]) -> None:
        """Put claimed, undialed leads back in the queue."""
        dialing.release_leads(self._conn, lead_ids)

    def close_attempt(self, outcome: AttemptOutcome) -> None:
        """Give an attempt its one disposition and move its lead on (StoreError if twice)."""
        dialing.close_attempt(self._conn, outcome)

    def recover(
        self, *, campaign_id: int, now: datetime, retry_at: datetime, max_attempts: int
    ) -> Recovery:
        """Close attempts left open by a stop or crash as `failed`; requeue their leads."""
        return dialing.recover(self._conn, campaign_id=campaign_id, now=now, retry_at=retry_at,
                               max_attempts=max_attempts)

    # campaigns and lists

    def remember_campaign(self, campaign_id: int, **settings: object) -> None:
        """Keep facts about a campaign (such as the file it was run from) beside it."""
        stmt = select(campaigns.c.settings).where(campaigns.c.id == campaign_id)
        current = json.loads(self._conn.execute(stmt).scalar_one_or_none() or "{}")
        current.update(settings)
        self._conn.execute(update(campaigns).where(campaigns.c.id == campaign_id)
                           .values(settings=json.dumps(current, ensure_ascii=False)))

    def ensure_campaign(self, name: str, *, default_region: str, now: datetime) -> int:
        """The id of the campaign called `name`, created if it does not exist yet.

        An existing campaign is returned as it is (its region is not changed).
        """
        now = require_aware(now, "now")
        existing = self.campaign_id(name)
        if existing is not None:
            return existing
        stmt = _dialect_insert(self._conn.dialect.name, campaigns).values(
            name=name, default_region=default_region, created_at=now, settings="{}"
        )
        self._conn.execute(stmt.on_conflict_do_nothing(index_elements=["name"]))
        created = self.campaign_id(name)
        if created is None:  # pragma: no cover - the insert or a concurrent one made it
            raise StoreError("campaign could not be created")
        return created

    def create_list(
        self, campaign_id: int, *, source: str, file_name: str, sha256: str, now: datetime
    ) -> int:
        """Record an imported file; StoreError if the campaign already has this content."""
        now = require_aware(now, "now")
        stmt = lead_lists.insert().values(
            campaign_id=campaign_id,
            source=source,
            file_name=file_name,
            content_sha256=sha256,
            imported_at=now,
            summary="{}",
        )
        key = self._conn.execute(stmt).inserted_primary_key
        if key is None:  # pragma: no cover - every supported database reports it
            raise StoreError("lead list id was not returned")
        return int(key[0])

    def set_list_summary(self, list_id: int, summary: Mapping[str, object]) -> None:
        """Replace the import summary (a JSON document) of a list."""
        stmt = update(lead_lists).where(lead_lists.c.id == list_id).values(summary=_json(summary))
        if self._conn.execute(stmt).rowcount != 1:
            raise StoreError(f"no lead list with id {list_id}")

    # leads

    def insert_leads(self, new: Sequence[NewLead]) -> int:
        """Insert leads in batches of `lead_inserts.INSERT_BATCH`; returns how many.

        A lead whose (campaign_id, e164) already exists is not skipped: it raises
        StoreError and the unit rolls back. Callers filter with `existing_e164s` first.
        A naive `created_at` raises ValueError.
        """
        return lead_inserts.insert_leads(self._conn, self._keys, new)

    def update_waiting_lead(self, lead_id: int, *, due: datetime,
                            attributes: Mapping[str, str]) -> bool:
        """Give a lead still waiting in the queue (state `ready`) a new due time and
        attributes; False, changing nothing, if it is not waiting."""
        encrypted = self._keys.encrypt(
            rows.LEADS_ATTRIBUTES, json.dumps(dict(attributes), ensure_ascii=False))
        stmt = (update(leads).where(leads.c.id == lead_id, leads.c.state == "ready")
                .values(next_attempt_at=require_aware(due, "due"), attributes=encrypted))
        return bool(self._conn.execute(stmt).rowcount == 1)

    # suppressions

    def add_suppression(
        self,
        e164: str,
        *,
        scope: SuppressionScope,
        campaign: str | None,
        reason: str,
        actor: str,
        now: datetime,
    ) -> bool:
        """Suppress a number; False (and no audit entry) if exactly this one existed."""
        now = require_aware(now, "now")
        scope, campaign_key = _scope_key(scope, campaign)
        stmt = _dialect_insert(self._conn.dialect.name, suppressions).values(
            e164=self._keys.encrypt(rows.SUPPRESSIONS_E164, e164),
            e164_hash=self._keys.lookup_hash(e164),
            scope=scope.value,
            campaign=campaign_key,
            reason=reason,
            created_at=now,
            created_by=actor,
        )
        stmt = stmt.on_conflict_do_nothing(index_elements=["e164_hash", "scope", "campaign"])
        # RETURNING, not rowcount: PostgreSQL reports 1 from an implicit RETURNING id.
        if self._conn.execute(stmt.returning(suppressions.c.id)).first() is None:
            return False
        detail = {"scope": scope.value, "campaign": campaign_key, "reason": reason}
        self.audit("suppression.added", actor=actor, subject=e164, detail=detail, now=now)
        return True

    def remove_suppression(
        self,
        e164: str,
        *,
        scope: SuppressionScope,
        campaign: str | None,
        actor: str,
        now: datetime,
    ) -> bool:
        """Lift a suppression; False (and no audit entry) if there was none."""
        now = require_aware(now, "now")
        scope, campaign_key = _scope_key(scope, campaign)
        stmt = (
            suppressions.delete()
            .where(
                suppressions.c.e164_hash == self._keys.lookup_hash(e164),
                suppressions.c.scope == scope.value,
                suppressions.c.campaign == campaign_key,
            )
            .returning(suppressions.c.reason)
        )
        removed = self._conn.execute(stmt).scalars().all()
        if not removed:
            return False
        detail = {"scope": scope.value, "campaign": campaign_key, "reason": removed[0]}
        self.audit("suppression.removed", actor=actor, subject=e164, detail=detail, now=now)
        return True

    # number status

    def put_number_status(self, record: NumberStatusRecord, *, actor: str) -> bool:
        """Store a number's status (one row per number, shared by all campaigns).

        The newest observation wins: a record observed before the stored one is ignored
        (returns False), so a late-loaded export cannot undo a fresher call outcome. The
        audit entry is stamped with `record.observed_at` and carries the old and the new
        status.
        """
        observed_at = require_aware(record.observed_at, "observed_at")
        recheck_at = None
        if record.recheck_at is not None:
            recheck_at = require_aware(record.recheck_at, "recheck_at")
        digest = self._keys.lookup_hash(record.e164)
        current = self._conn.execute(
            select(number_status.c.status, number_status.c.observed_at)
            .where(number_status.c.e164_hash == digest)
            .with_for_update()
        ).one_or_none()
        if current is not None and current.observed_at > observed_at:
            return False
        old = None if current is None else current.status
        values: dict[str, Any] = {
            "e164": self._keys.encrypt(rows.NUMBER_STATUS_E164, record.e164),
            "status": record.status.value,
            "observed_at": observed_at,
            "source": record.source,
            "recheck_at": recheck_at,
            "detail": record.detail,
        }
        stmt = _dialect_insert(self._conn.dialect.name, number_status).values(
            e164_hash=digest, **values
        )
        self._conn.execute(stmt.on_conflict_do_update(index_elements=["e164_hash"], set_=values))
        detail = {
            "old_status": old,
            "new_status": record.status.value,
            "source": record.source,
            "recheck_at": None if recheck_at is None else recheck_at.isoformat(),
        }
        self.audit(
            "number_status.put", actor=actor, subject=record.e164, detail=detail, now=observed_at
        )
        return True

    # lines

    def add_line_event(self, *, campaign: str, kind: str, subject: str, before: str,
                       after: str, reason: str, at: datetime) -> None:
        """Keep a trunk's change of state (out of service, probing, back in service)."""
        self._conn.execute(line_events.insert().values(
            at=require_aware(at, "at"), campaign=campaign, kind=kind, subject=subject,
            before=before, after=after, reason=reason))

    def add_caller_id_marks(self, marks: Mapping[str, int], *, source: str, actor: str,
                            now: datetime) -> None:
        """Spam marks reported for caller IDs (tallies, as the marking service shows them),
        with an audit entry."""
        now = require_aware(now, "now")
        if marks:
            self._conn.execute(caller_id_marks.insert(), [
                {"number": number, "marks": count, "reported_at": now, "source": source}
                for number, count in sorted(marks.items())])
        self.audit("caller_ids.marks", actor=actor, subject=f"marks:{source}",
                   detail={"numbers": len(marks), "marks": sum(marks.values())}, now=now)

    # audit

    def audit(
        self, action: str, *, actor: str, subject: str, detail: Mapping[str, object], now: datetime
    ) -> None:
        """Append an entry to the audit log (datetimes and enums in `detail` become text;
        an E.164 `subject` is kept as `number:<lookup hash>`)."""
        now = require_aware(now, "now")
        self._conn.execute(
            audit_log.insert().values(
                at=now, actor=actor, action=action,
                subject=rows.audit_subject(self._keys, subject), detail=_json(detail)
            )
        )


def _dialect_insert(dialect: str, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that supports ON CONFLICT on this database."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise StoreError(f"unsupported database: {dialect}")


def _scope_key(scope: SuppressionScope, campaign: str | None) -> tuple[SuppressionScope, str]:
    """The scope and the stored campaign key ('' for global); ValueError if they disagree."""
    scope = SuppressionScope(scope)
    if scope is SuppressionScope.GLOBAL:
        if campaign:
            raise ValueError("a global suppression takes no campaign")
        return scope, ""
    if not campaign:
        raise ValueError("a campaign suppression needs a campaign name")
    return scope, campaign


def _json(document: Mapping[str, object]) -> str:
    return json.dumps(dict(document), ensure_ascii=False, sort_keys=True, default=_json_default)


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        return require_aware(value).isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
