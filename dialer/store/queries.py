"""Read-side operations of a unit of work: everything that only looks."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    String,
    and_,
    any_,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql

from dialer.store import dialing, rows
from dialer.store.crypto import DataKeys
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
    suppressions,
)
from rules.contact import Contact
from rules.number_status import DEAD_STATUSES, NumberStatusRecord

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
    - rows come back as frozen dataclasses, never as live database objects;
    - numbers go in and come out as plain E.164 text: they are found by their keyed hash
      and decrypted on the way out with the store's `DataKeys` (StoreError if a stored
      value does not decrypt).
    """

    def __init__(self, connection: Connection, keys: DataKeys) -> None:
        self._conn = connection
        self._keys = keys
        self._last_hashed: tuple[frozenset[str], dict[str, str]] = (frozenset(), {})

    def _hashed(self, e164s: Collection[str]) -> dict[str, str]:
        """lookup hash -> number for `e164s`; the last set is remembered, as an import
        asks about each chunk three times (leads, suppressions, number status)."""
        wanted = frozenset(e164s)
        if wanted != self._last_hashed[0]:
            self._last_hashed = (wanted, rows.hashed(self._keys, wanted))
        return self._last_hashed[1]

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
        return dialing.contact_history(self._conn, self._keys, list(numbers), since=since,
                                       forever=forever)

    def attempt_rows(self, campaign: str | None = None, *,
                     which: AttemptFilter | None = None) -> Iterator[AttemptRow]:
        """The outcome log (oldest first), streamed: every attempt of `campaign` (all
        campaigns if None), or those `which` picks."""
        return dialing.attempt_rows(self._conn, self._keys,
                                    which or AttemptFilter(campaign=campaign))

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
        return None if row is None else rows.lead_list(row)

    def lists(self, campaign_id: int) -> list[LeadList]:
        """The campaign's imported lists, oldest first."""
        stmt = select(lead_lists).where(lead_lists.c.campaign_id == campaign_id)
        return [rows.lead_list(row) for row in self._conn.execute(stmt.order_by(lead_lists.c.id))]

    # leads

    def existing_e164s(self, campaign_id: int, e164s: Collection[str]) -> set[str]:
        """Those of `e164s` that already are leads of the campaign."""
        by_hash = self._hashed(e164s)
        found: set[str] = set()
        for chunk in chunked(by_hash):
            stmt = select(leads.c.e164_hash).where(
                leads.c.campaign_id == campaign_id, self._one_of(leads.c.e164_hash, chunk)
            )
            found.update(by_hash[digest] for digest in self._conn.execute(stmt).scalars())
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
        return [rows.lead(row, self._keys) for row in self._conn.execute(stmt)]

    def find_lead(self, campaign_id: int, e164: str) -> Lead | None:
        """The campaign's lead for number `e164`, or None."""
        return self.find_leads(campaign_id, [e164]).get(e164)

    def find_leads(self, campaign_id: int, e164s: Collection[str], *,
                   lock: bool = False) -> dict[str, Lead]:
        """The campaign's leads for these numbers, by number. With `lock` (in a write
        unit), they stay locked until the transaction ends (PostgreSQL; SQLite's writer
        holds the whole database), taken in id order so two lockers cannot deadlock."""
        by_hash = self._hashed(e164s)
        found: dict[str, Lead] = {}
        for chunk in chunked(by_hash):
            stmt = select(leads).where(leads.c.campaign_id == campaign_id,
                                       self._one_of(leads.c.e164_hash, chunk))
            if lock and self._conn.dialect.name == "postgresql":
                stmt = stmt.order_by(leads.c.id).with_for_update()
            for row in self._conn.execute(stmt):
                found[by_hash[row.e164_hash]] = rows.lead(row, self._keys)
        return found

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
        by_hash = self._hashed(e164s)
        found: set[str] = set()
        for chunk in chunked(by_hash):
            stmt = select(suppressions.c.e164_hash).where(
                self._one_of(suppressions.c.e164_hash, chunk), scope
            )
            found.update(by_hash[digest] for digest in self._conn.execute(stmt).scalars())
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
            stmt = stmt.where(suppressions.c.e164_hash == self._keys.lookup_hash(e164))
        if scope is not None:
            stmt = stmt.where(suppressions.c.scope == SuppressionScope(scope).value)
        if campaign is not None:
            stmt = stmt.where(suppressions.c.campaign == campaign)
        found = [rows.suppression(row, self._keys) for row in self._conn.execute(stmt)]
        # Ordered here: the stored numbers are ciphertext.
        return sorted(found, key=lambda s: (s.e164, s.scope.value, s.campaign or ""))

    # number status

    def number_statuses(self, e164s: Collection[str]) -> dict[str, NumberStatusRecord]:
        """The stored status of each of `e164s` that has one."""
        by_hash = self._hashed(e164s)
        found: dict[str, NumberStatusRecord] = {}
        for chunk in chunked(by_hash):
            stmt = select(number_status).where(self._one_of(number_status.c.e164_hash, chunk))
            for row in self._conn.execute(stmt):
                e164 = by_hash[row.e164_hash]
                found[e164] = rows.status_record(row, e164)
        return found

    def get_number_status(self, e164: str) -> NumberStatusRecord | None:
        """The stored status of one number, or None."""
        return self.number_statuses([e164]).get(e164)

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
        by_hash = self._hashed(e164s)
        found: set[str] = set()
        for chunk in chunked(by_hash):
            stmt = select(number_status.c.e164_hash).where(
                self._one_of(number_status.c.e164_hash, chunk), blocking
            )
            found.update(by_hash[digest] for digest in self._conn.execute(stmt).scalars())
        return found

    # audit

    def audit_entries(self, *, subject: str | None = None, limit: int = 100) -> list[AuditEntry]:
        """The newest `limit` audit entries, newest first, optionally about one subject.

        Entries about a phone number have the subject `number:<lookup hash>`; asking for
        an E.164 number as `subject` finds them."""
        stmt = select(audit_log)
        if subject is not None:
            stmt = stmt.where(audit_log.c.subject == rows.audit_subject(self._keys, subject))
        stmt = stmt.order_by(audit_log.c.id.desc()).limit(limit)
        return [rows.audit_entry(row) for row in self._conn.execute(stmt)]

