"""Between rows and records: encrypted columns opened on the way out, numbers hashed on
the way in. The column names below are also the associated data of their values."""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from typing import Any

from sqlalchemy import Row

from dialer.store.crypto import DataKeys
from dialer.store.records import AuditEntry, Lead, LeadList, Suppression, SuppressionScope
from dialer.store.schema import split_timezones
from rules.number_status import NumberStatus, NumberStatusRecord

LEADS_E164 = "leads.e164"
LEADS_RAW = "leads.raw"
LEADS_ATTRIBUTES = "leads.attributes"
ATTEMPTS_E164 = "attempts.e164"
SUPPRESSIONS_E164 = "suppressions.e164"
NUMBER_STATUS_E164 = "number_status.e164"

#: An audit subject that is a phone number is kept as `number:<lookup hash>`.
NUMBER_SUBJECT = "number:"
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")


def hashed(keys: DataKeys, e164s: Collection[str]) -> dict[str, str]:
    """lookup hash -> number, for the distinct `e164s`."""
    lookup = keys.lookup_hash
    return {lookup(e164): e164 for e164 in dict.fromkeys(e164s)}


def number_subject(keys: DataKeys, e164: str) -> str:
    """The audit subject standing for a phone number."""
    return NUMBER_SUBJECT + keys.lookup_hash(e164)


def audit_subject(keys: DataKeys, subject: str) -> str:
    """`subject` as the audit log keeps it: an E.164 number becomes `number_subject`."""
    return number_subject(keys, subject) if _E164.fullmatch(subject) else subject


def lead_attributes(keys: DataKeys, stored: str) -> dict[str, str]:
    """A lead's attributes from their encrypted JSON."""
    document = json.loads(keys.decrypt(LEADS_ATTRIBUTES, stored))
    return document if isinstance(document, dict) else {}


def lead(row: Row[Any], keys: DataKeys) -> Lead:
    return Lead(
        id=row.id,
        campaign_id=row.campaign_id,
        list_id=row.list_id,
        row_number=row.row_number,
        e164=keys.decrypt(LEADS_E164, row.e164),
        raw=keys.decrypt(LEADS_RAW, row.raw),
        attributes=lead_attributes(keys, row.attributes),
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


def lead_list(row: Row[Any]) -> LeadList:
    return LeadList(
        id=row.id,
        campaign_id=row.campaign_id,
        source=row.source,
        file_name=row.file_name,
        sha256=row.content_sha256,
        imported_at=row.imported_at,
        summary=json.loads(row.summary),
    )


def suppression(row: Row[Any], keys: DataKeys) -> Suppression:
    return Suppression(
        e164=keys.decrypt(SUPPRESSIONS_E164, row.e164),
        scope=SuppressionScope(row.scope),
        campaign=row.campaign or None,
        reason=row.reason,
        created_at=row.created_at,
        created_by=row.created_by,
    )


def status_record(row: Row[Any], e164: str) -> NumberStatusRecord:
    """A number's status row; `e164` is the number it was looked up by (its hash's)."""
    return NumberStatusRecord(
        e164=e164,
        status=NumberStatus(row.status),
        observed_at=row.observed_at,
        source=row.source,
        recheck_at=row.recheck_at,
        detail=row.detail,
    )


def audit_entry(row: Row[Any]) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        at=row.at,
        actor=row.actor,
        action=row.action,
        subject=row.subject,
        detail=json.loads(row.detail),
    )
