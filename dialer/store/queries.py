"""Read-side operations of a unit of work: everything that only looks."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    String,
    and_,
    any_,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql

from dialer.store import dialing
from dialer.store.records import (
    AttemptFilter,
    AttemptRow,
    AuditEntry,
    Lead,
    LeadList,
    Suppression,
    SuppressionScope,
)
from dialer.store.schema import (
    attempts,
    audit_log,
    caller_id_marks,
    campaigns,
    lead_lists,
    leads,
    line_events,
    number_status,
    require_aware,
    split_timezones,
    suppressions,
)
from rules.contact import Contact
from rules.number_status import DEAD_STATUSES, NumberStatus, NumberStatusRecord

#: Largest IN list sent in one statement; well under SQLite's and psycopg's bind limits.
IN_CHUNK = 5_000


def one_of(dialect: str, column: ColumnElement[str], values: list[str]) -> ColumnElement[bool]:
    """`column` is one of `values`, sent as ONE parameter.

    PostgreSQL: `= ANY(array)`. SQLite: `IN (SELECT value FROM json_each(?))` with the
    values as one JSON array. A plain `IN (...)` of thousands of scalar parameters costs
    SQLAlchemy and the driver several microseconds per value, which a million-row import
    pays three times over.
    """
    if dialect == "postgresql":
        return column == any_(literal(values, type_=postgresql.ARRAY(String())))
    if dialect == "sqlite":
        members = func.json_each(literal(json.dumps(values), type_=String())).table_valued("value")
        return column.in_(select(members.c.value))
    return column.in_(values)


def chunked(values: Collection[str], size: int = IN_CHUNK) -> Iterator[list[str]]:
    """The distinct `values` in lists of at most `size`."""
    distinct = list(dict.fromkeys(values))
    for start in range(0, len(distinct), size):
        yield distinct[start : start + size]


class ReadUnitOfWork:
    """Queries inside one read transaction (`Store.read()`); a write unit has them too.

    - all queries of one unit see a single snapshot (SQLite deferred BEGIN in WAL mode,
      PostgreSQL REPEATABLE READ), so counts and samples agree with each other;
    - lookups taking a `Collection[str]` accept any number of values: they are
      de-duplicated and sent in IN lists of at most `IN_CHUNK`;
    - every datetime returned is timezone-aware UTC; every datetime passed in must be
      aware, or ValueError is raised;
    - rows come back as frozen dataclasses, never as live database objects.
    """

    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    def _one_of(self, column: ColumnElement[str], values: list[str]) -> ColumnElement[bool]:
        return one_of(self._conn.dialect.name, column, values)

    # campaigns and lists

    def campaign_id(self, name: str) -> int | None:
        """The id of the campaign called `name`, or None."""
        stmt = select(campaigns.c.id).where(campaigns.c.name == name)
        return cast("int | None", self._conn.execute(stmt).scalar_one_or_none())

    def line_events(self, campaign: str | None = None, *, since: datetime | None = None,
                    until: datetime | None = None, kind: str | None = None
                    ) -> list[dict[str, Any]]:
        """Trunks' and caller IDs' changes of state in [since, until], oldest first (all
        campaigns if None; `kind` 'trunk' or 'caller_id' for one kind)."""
        stmt = select(line_events).order_by(line_events.c.at, line_events.c.id)
        if campaign is not None:
            stmt = stmt.where(line_events.c.campaign == campaign)
        if since is not None:
            stmt = stmt.where(line_events.c.at >= require_aware(since, "since"))
        if until is not None:
            stmt = stmt.where(line_events.c.at <= require_aware(until, "until"))
        if kind is not None:
            stmt = stmt.where(line_events.c.kind == kind)
        return [dict(row._mapping) for row in self._conn.execute(stmt)]

    def caller_id_history(self, numbers: Collection[str], *, since: datetime
                          ) -> list[tuple[str, datetime, str | None]]:
        """Calls that showed any of `numbers` since `since`, in every campaign, oldest
        first: (caller ID, placed at, disposition)."""
        if not numbers:
            return []
        stmt = (select(attempts.c.caller_id, attempts.c.placed_at, attempts.c.disposition)
                .where(attempts.c.caller_id.in_(sorted(numbers)),
                       attempts.c.placed_at >= require_aware(since, "since"))
                .order_by(attempts.c.placed_at, attempts.c.attempt_id))
        return [(row.caller_id, row.placed_at, row.disposition)
                for row in self._conn.execute(stmt)]

    def caller_id_marks(self, numbers: Collection[str]) -> list[tuple[str, int, datetime]]:
        """Marks reported for any of `numbers`, oldest first: (number, marks, reported at)."""
        if not numbers:
            return []
        stmt = (select(caller_id_marks).where(caller_id_marks.c.number.in_(sorted(numbers)))
                .order_by(caller_id_marks.c.reported_at, caller_id_marks.c.id))
        return [(row.number, row.marks, row.reported_at) for row in self._conn.execute(stmt)]

    def campaign_settings(self, name: str) -> dict[str, Any] | None:
        """What the dialer remembers of campaign `name` (such as its file), or None."""
        stmt = select(campaigns.c.settings).where(campaigns.c.name == name)
        text = self._conn.execute(stmt).scalar_one_or_none()
        return None if text is None else cast("dict[str, Any]", json.loads(text or "{}"))

    def contact_history(self, numbers: Collection[str], *, since: datetime,
                        forever: frozenset[str] = frozenset()) -> dict[str, list[Contact]]:
        """Each number's calls in every campaign since `since` (see `dialing`)."""
        return dialing.contact_history(self._conn, list(numbers), since=since, forever=forever)

    def attempt_rows(self, campaign: str | None = None, *,
                     which: AttemptFilter | None = None) -> Iterator[AttemptRow]:
        """The outcome log (oldest first), streamed: every attempt of `campaign` (all
        campaigns if None), or those `which` picks."""
        return dialing.attempt_rows(self._conn, which or AttemptFilter(campaign=campaign))

    def last_attempt_at(self, campaign_id: int) -> datetime | None:
        """When the campaign's latest attempt was placed, or None if it has none."""
        stmt = select(func.max(attempts.c.placed_at)).where(attempts.c.campaign_id == campaign_id)
        value = self._conn.execute(stmt).scalar_one_or_none()
        return None if value is None else require_aware(value)

    def latest_attempt_at(self) -> datetime | None:
        """When the store's latest attempt (of any campaign) was placed."""
        value = self._conn.execute(select(func.max(attempts.c.placed_at))).scalar_one()
        return None if value is None else require_aware(value)

    def open_attempts(self, campaign_id: int) -> int:
        """How many of the campaign's attempts have no disposition yet."""
        stmt = select(func.count()).select_from(attempts).where(
            attempts.c.campaign_id == campaign_id, attempts.c.disposition.is_(None))
        return int(self._conn.execute(stmt).scalar_one())

    def campaign_region(self, name: str) -> str | None:
        """The default region of the campaign called `name`, or None if there is none."""
        stmt = select(campaigns.c.default_region).where(campaigns.c.name == name)
        return cast("str | None", self._conn.execute(stmt).scalar_one_or_none())

    def campaign_names(self) -> list[str]:
        """Every campaign's name, sorted."""
        stmt = select(campaigns.c.name).order_by(campaigns.c.name)
        return list(self._conn.execute(stmt).scalars())

    def find_list(self, campaign_id: int, sha256: str) -> LeadList | None:
        """The list of this campaign whose file content has this SHA-256, or None."""
        stmt = select(lead_lists).where(
            lead_lists.c.campaign_id == campaign_id, lead_lists.c.content_sha256 == sha256
        )
        row = self._conn.execute(stmt).one_or_none()
        return None if row is None else _lead_list(row)

    def lists(self, campaign_id: int) -> list[LeadList]:
        """The campaign's imported lists, oldest first."""
        stmt = select(lead_lists).where(lead_lists.c.campaign_id == campaign_id)
        return [_lead_list(row) for row in self._conn.execute(stmt.order_by(lead_lists.c.id))]

    # leads

    def existing_e164s(self, campaign_id: int, e164s: Collection[str]) -> set[str]:
        """Those of `e164s` that already are leads of the campaign."""
        found: set[str] = set()
        for chunk in chunked(e164s):
            stmt = select(leads.c.e164).where(
                leads.c.campaign_id == campaign_id, self._one_of(leads.c.e164, chunk)
            )
            found.update(self._conn.execute(stmt).scalars())
        return found

    def count_leads(self, campaign_id: int) -> int:
        """How many leads the campaign has."""
        stmt = select(func.count()).select_from(leads).where(leads.c.campaign_id == campaign_id)
        return int(self._conn.execute(stmt).scalar_one())

    def pending_leads(self, campaign_id: int) -> int:
        """The campaign's leads still to be called (ready now or later)."""
        stmt = select(func.count()).select_from(leads).where(
            leads.c.campaign_id == campaign_id, leads.c.state == "ready")
        return int(self._conn.execute(stmt).scalar_one())

    def leads_sample(self, campaign_id: int, limit: int) -> list[Lead]:
        """The campaign's first `limit` leads, in insertion order."""
        stmt = (
            select(leads)
            .where(leads.c.campaign_id == campaign_id)
            .order_by(leads.c.id)
            .limit(limit)
        )
        return [_lead(row) for row in self._conn.execute(stmt)]

    def find_lead(self, campaign_id: int, e164: str) -> Lead | None:
        """The campaign's lead for number `e164`, or None."""
        stmt = select(leads).where(leads.c.campaign_id == campaign_id, leads.c.e164 == e164)
        row = self._conn.execute(stmt).one_or_none()
        return None if row is None else _lead(row)

    # suppressions

    def suppressed_e164s(self, e164s: Collection[str], *, campaign: str | None) -> set[str]:
        """Those of `e164s` suppressed globally or, if `campaign` is given, for that campaign."""
        scope = suppressions.c.scope == SuppressionScope.GLOBAL.value
        if campaign:
            scope = or_(
                scope,
                and_(
                    suppressions.c.scope == SuppressionScope.CAMPAIGN.value,
                    suppressions.c.campaign == campaign,
                ),
            )
        found: set[str] = set()
        for chunk in chunked(e164s):
            stmt = select(suppressions.c.e164).where(
                self._one_of(suppressions.c.e164, chunk), scope
            )
            found.update(self._conn.execute(stmt).scalars())
        return found

    def list_suppressions(
        self,
        *,
        scope: SuppressionScope | None = None,
        campaign: str | None = None,
        e164: str | None = None,
    ) -> list[Suppression]:
        """Suppressions, optionally only of one scope, campaign and/or number, by number."""
        stmt = select(suppressions)
        if e164 is not None:
            stmt = stmt.where(suppressions.c.e164 == e164)
        if scope is not None:
            stmt = stmt.where(suppressions.c.scope == SuppressionScope(scope).value)
        if campaign is not None:
            stmt = stmt.where(suppressions.c.campaign == campaign)
        stmt = stmt.order_by(suppressions.c.e164, suppressions.c.scope, suppressions.c.campaign)
        return [_suppression(row) for row in self._conn.execute(stmt)]

    # number status

    def number_statuses(self, e164s: Collection[str]) -> dict[str, NumberStatusRecord]:
        """The stored status of each of `e164s` that has one."""
        found: dict[str, NumberStatusRecord] = {}
        for chunk in chunked(e164s):
            stmt = select(number_status).where(self._one_of(number_status.c.e164, chunk))
            for row in self._conn.execute(stmt):
                found[row.e164] = _status_record(row)
        return found

    def get_number_status(self, e164: str) -> NumberStatusRecord | None:
        """The stored status of one number, or None."""
        stmt = select(number_status).where(number_status.c.e164 == e164)
        row = self._conn.execute(stmt).one_or_none()
        return None if row is None else _status_record(row)

    def dead_e164s(self, e164s: Collection[str], *, now: datetime) -> set[str]:
        """Those of `e164s` whose stored status blocks dialing at `now`.

        The same rule as `NumberStatusRecord.blocks_dialing`: a dead status whose recheck
        is not yet due (no recheck time, or `now` strictly before it).
        """
        now = require_aware(now, "now")
        dead = sorted(status.value for status in DEAD_STATUSES)
        blocking = and_(
            number_status.c.status.in_(dead),
            or_(number_status.c.recheck_at.is_(None), number_status.c.recheck_at > now),
        )
        found: set[str] = set()
        for chunk in chunked(e164s):
            stmt = select(number_status.c.e164).where(
                self._one_of(number_status.c.e164, chunk), blocking
            )
            found.update(self._conn.execute(stmt).scalars())
        return found

    # audit

    def audit_entries(self, *, subject: str | None = None, limit: int = 100) -> list[AuditEntry]:
        """The newest `limit` audit entries, newest first, optionally about one subject."""
        stmt = select(audit_log)
        if subject is not None:
            stmt = stmt.where(audit_log.c.subject == subject)
        stmt = stmt.order_by(audit_log.c.id.desc()).limit(limit)
        return [_audit_entry(row) for row in self._conn.execute(stmt)]


def _lead_list(row: Row[Any]) -> LeadList:
    return LeadList(
        id=row.id,
        campaign_id=row.campaign_id,
        source=row.source,
        file_name=row.file_name,
        sha256=row.content_sha256,
        imported_at=row.imported_at,
        summary=json.loads(row.summary),
    )


def _lead(row: Row[Any]) -> Lead:
    return Lead(
        id=row.id,
        campaign_id=row.campaign_id,
        list_id=row.list_id,
        row_number=row.row_number,
        e164=row.e164,
        raw=row.raw,
        attributes=json.loads(row.attributes),
        region=row.region,
        number_type=row.number_type,
        timezones=split_timezones(row.timezones),
        carrier=row.carrier,
        state=row.state,
        attempts_made=row.attempts_made,
        next_attempt_at=row.next_attempt_at,
        created_at=row.created_at,
        priority=row.priority,
        segment=row.segment,
    )


def _suppression(row: Row[Any]) -> Suppression:
    return Suppression(
        e164=row.e164,
        scope=SuppressionScope(row.scope),
        campaign=row.campaign or None,
        reason=row.reason,
        created_at=row.created_at,
        created_by=row.created_by,
    )


def _status_record(row: Row[Any]) -> NumberStatusRecord:
    return NumberStatusRecord(
        e164=row.e164,
        status=NumberStatus(row.status),
        observed_at=row.observed_at,
        source=row.source,
        recheck_at=row.recheck_at,
        detail=row.detail,
    )


def _audit_entry(row: Row[Any]) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        at=row.at,
        actor=row.actor,
        action=row.action,
        subject=row.subject,
        detail=json.loads(row.detail),
    )
