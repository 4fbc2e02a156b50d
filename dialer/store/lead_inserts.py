"""Inserting leads in bulk: a million-row import's hot path.

The SQL is compiled once by Core and the rows go straight to the driver's executemany:
per-row parameter processing in Core costs more than the insert itself. The number, the
raw cell and the attributes are encrypted here (one AES-GCM object per column, reused),
and the number's lookup hash computed with one reused HMAC key.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Dialect
from sqlalchemy.types import TypeEngine

from dialer.errors import StoreError
from dialer.store.crypto import DataKeys
from dialer.store.records import NewLead
from dialer.store.rows import LEADS_ATTRIBUTES, LEADS_E164, LEADS_RAW
from dialer.store.schema import TIMEZONE_SEPARATOR, leads

#: Leads sent to the database in one executemany.
INSERT_BATCH = 10_000
_LEAD_COLUMNS = (
    "campaign_id",
    "list_id",
    "row_number",
    "e164",
    "e164_hash",
    "raw",
    "attributes",
    "region",
    "number_type",
    "timezones",
    "carrier",
    "next_attempt_at",  # the ready queue is ordered by priority, then this
    "created_at",
    "priority",
    "segment",
)
# One encoder for every lead: json.dumps with options builds a new one per call.
_LEAD_ATTRIBUTES_ENCODER = json.JSONEncoder(ensure_ascii=False)


def insert_leads(conn: Connection, keys: DataKeys, new: Sequence[NewLead]) -> int:
    """Insert `new` in batches of `INSERT_BATCH`; returns how many were inserted.

    A lead whose (campaign_id, number) already exists raises StoreError (from the
    unique constraint on the hash). A naive `created_at` raises ValueError.
    """
    dialect = conn.dialect
    compiled = leads.insert().inline().compile(dialect=dialect, column_keys=_LEAD_COLUMNS)
    if compiled.positional and tuple(compiled.positiontup or ()) != _LEAD_COLUMNS:
        raise StoreError("unexpected column order in the compiled lead INSERT")
    to_db = _DatetimeBinder(leads.c.created_at.type.dialect_impl(dialect), dialect)
    seal = _Sealer(keys)
    for start in range(0, len(new), INSERT_BATCH):
        rows = seal.rows(new[start : start + INSERT_BATCH], to_db)
        if compiled.positional:
            conn.exec_driver_sql(compiled.string, rows)
        else:
            named = [dict(zip(_LEAD_COLUMNS, row, strict=True)) for row in rows]
            conn.exec_driver_sql(compiled.string, named)
    return len(new)


class _DatetimeBinder:
    """A column type's bind processing for datetimes, done once per distinct value.

    Leads of one import share their `created_at`, so remembering the last value saves
    converting the same instant a million times.
    """

    def __init__(self, column_type: TypeEngine[Any], dialect: Dialect) -> None:
        processor = column_type.bind_processor(dialect)
        self._process: Callable[[Any], Any] = processor or _unchanged
        self._last: datetime | None = None
        self._last_bound: object = None

    def __call__(self, value: datetime) -> object:
        if value is not self._last:
            self._last_bound = self._process(value)
            self._last = value
        return self._last_bound


def _unchanged(value: Any) -> Any:
    return value


class _Sealer:
    """Leads as parameter tuples in `_LEAD_COLUMNS` order, their secrets sealed."""

    def __init__(self, keys: DataKeys) -> None:
        self._e164 = keys.encrypter(LEADS_E164)
        self._raw = keys.encrypter(LEADS_RAW)
        self._attributes = keys.encrypter(LEADS_ATTRIBUTES)
        self._hash = keys.lookup_hash

    def rows(self, batch: Sequence[NewLead], to_db: _DatetimeBinder) -> list[tuple[object, ...]]:
        encode = _LEAD_ATTRIBUTES_ENCODER.encode
        join = TIMEZONE_SEPARATOR.join
        e164, raw, attributes, lookup = self._e164, self._raw, self._attributes, self._hash
        return [
            (
                lead.campaign_id,
                lead.list_id,
                lead.row_number,
                e164(lead.e164),
                lookup(lead.e164),
                raw(lead.raw),
                attributes(encode(lead.attributes)),
                lead.region,
                lead.number_type,
                join(lead.timezones),
                lead.carrier,
                to_db(lead.due_at or lead.created_at),
                to_db(lead.created_at),
                lead.priority,
                lead.segment,
            )
            for lead in batch
        ]
