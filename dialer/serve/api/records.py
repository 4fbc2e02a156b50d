"""Suppressions (add, remove, check), reports, the attempt log (filter, page, CSV) and
the audit log.

Phone numbers travel in bodies, never in URLs (URLs end up in access logs). The attempt
log and reports show numbers masked unless the principal has `leads:export`; the CSV
export needs it.
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import phonenumbers
from fastapi import APIRouter, Depends, Query, status
from fastapi.responses import StreamingResponse
from pydantic import AfterValidator, AwareDatetime, BaseModel, Field

from dialer.errors import UsageError
from dialer.intake.phone import parse_one
from dialer.serve.access import Principal, Scope
from dialer.serve.api.auth import ServiceDep, require
from dialer.serve.api.campaigns import CampaignName
from dialer.store import AttemptFilter, AttemptRow, SuppressionScope
from dialer.store.records import ATTEMPT_FIELDS
from rules.dispositions import PERSON_ANSWERED
from rules.phone import mask

router = APIRouter(prefix="/api/v1")
SuppressWriter = Annotated[Principal, Depends(require(Scope.SUPPRESSIONS_WRITE))]
SuppressReader = Annotated[Principal, Depends(require(Scope.SUPPRESSIONS_READ))]
ReportReader = Annotated[Principal, Depends(require(Scope.REPORTS_READ))]
Exporter = Annotated[Principal, Depends(require(Scope.LEADS_EXPORT))]
Admin = Annotated[Principal, Depends(require(Scope.ACCESS_ADMIN))]
Phone = Annotated[str, Field(min_length=1, max_length=64)]


def _known_region(code: str) -> str:
    # two capitals are not enough: the number parser cannot work in a region it lacks
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError("not a region code phonenumbers knows, such as 'CN' or 'US'")
    return code


Region = Annotated[str, Field(pattern=r"^[A-Z]{2}$"), AfterValidator(_known_region)]
_ANSWERED = frozenset(d.value for d in PERSON_ANSWERED)


class SuppressionIn(BaseModel):
    model_config = {"extra": "forbid"}

    phone: Phone
    scope: SuppressionScope = SuppressionScope.GLOBAL
    campaign: str | None = Field(default=None, max_length=200)
    reason: str = Field(default="api", min_length=1, max_length=500)
    region: Region = "CN"  # for a number written without its country code


class CheckIn(BaseModel):
    model_config = {"extra": "forbid"}

    phones: list[Phone] = Field(min_length=1, max_length=1000)
    campaign: str | None = Field(default=None, max_length=200)
    region: Region = "CN"


def _e164(phone: str, region: str) -> str:
    return parse_one(phone, region).e164  # UsageError (400) saying why not


def _check_scope(body: SuppressionIn) -> None:
    if (body.scope is SuppressionScope.CAMPAIGN) != bool(body.campaign):
        raise UsageError("scope 'campaign' goes with a campaign name, and only it")


@router.post("/suppressions", tags=["suppressions"], status_code=status.HTTP_201_CREATED)
def add_suppression(body: SuppressionIn, service: ServiceDep,
                    who: SuppressWriter) -> dict[str, Any]:
    _check_scope(body)
    e164 = _e164(body.phone, body.region)
    with service.store.write() as uow:
        added = uow.add_suppression(e164, scope=body.scope, campaign=body.campaign,
                                    reason=body.reason, actor=who.actor,
                                    now=service.clock.now())
    return {"phone": mask(e164), "scope": body.scope.value, "added": added}


@router.post("/suppressions/remove", tags=["suppressions"])
def remove_suppression(body: SuppressionIn, service: ServiceDep,
                       who: SuppressWriter) -> dict[str, Any]:
    _check_scope(body)
    e164 = _e164(body.phone, body.region)
    with service.store.write() as uow:
        removed = uow.remove_suppression(e164, scope=body.scope, campaign=body.campaign,
                                         actor=who.actor, now=service.clock.now())
    return {"phone": mask(e164), "scope": body.scope.value, "removed": removed}


@router.post("/suppressions/check", tags=["suppressions"])
def check_suppressions(body: CheckIn, service: ServiceDep,
                       who: SuppressReader) -> dict[str, Any]:
    """Whether each number may be called (globally, or by `campaign`), in request order."""
    numbers = [_e164(phone, body.region) for phone in body.phones]
    with service.store.read() as uow:
        suppressed = uow.suppressed_e164s(numbers, campaign=body.campaign)
    return {"results": [{"index": i, "phone": mask(e164), "suppressed": e164 in suppressed}
                        for i, e164 in enumerate(numbers)]}


# --- reports and the attempt log ------------------------------------------------------------


@router.get("/campaigns/{name}/report", tags=["reports"])
def campaign_report(name: CampaignName, service: ServiceDep,
                    who: ReportReader) -> dict[str, Any]:
    """Attempts, contacts and dispositions from the store, and the answer rate by hour
    of the day in the callee's time (the best hours to call)."""
    service.campaign(name)  # 404
    dispositions: Counter[str] = Counter()
    by_hour: defaultdict[int, list[int]] = defaultdict(lambda: [0, 0])
    with service.store.read() as uow:
        for row in uow.attempt_rows(name):
            dispositions[row.disposition or "open"] += 1
            hour = _callee_hour(row)
            by_hour[hour][0] += 1
            by_hour[hour][1] += row.disposition in _ANSWERED
    attempts = sum(dispositions.values())
    contacts = sum(n for d, n in dispositions.items() if d in _ANSWERED)
    abandoned = dispositions.get("abandoned", 0)
    return {
        "campaign": name, "attempts": attempts, "contacts": contacts,
        "contact_rate": round(contacts / attempts, 4) if attempts else 0.0,
        "abandoned": abandoned,
        "abandon_rate": round(abandoned / contacts, 5) if contacts else 0.0,
        "dispositions": dict(dispositions.most_common()),
        "answer_rate_by_hour": [{"hour": hour, "attempts": n, "answered": answered,
                                 "rate": round(answered / n, 4)}
                                for hour, (n, answered) in sorted(by_hour.items())],
        "live": service.status(name).to_dict(),
    }


def _callee_hour(row: AttemptRow) -> int:
    zone = row.callee_timezones[0] if row.callee_timezones else "UTC"
    try:
        return row.placed_at.astimezone(ZoneInfo(zone)).hour
    except (KeyError, ValueError):
        return row.placed_at.hour


Limit = Annotated[int, Query(ge=1, le=1000)]


@router.get("/attempts", tags=["reports"])
def attempt_log(service: ServiceDep, who: ReportReader, campaign: str | None = None,
                disposition: str | None = None, since: AwareDatetime | None = None,
                until: AwareDatetime | None = None,
                cursor: Annotated[str | None, Query(max_length=200)] = None,
                limit: Limit = 100) -> dict[str, Any]:
    """The outcome log, oldest first, a page at a time: give the answer's `next_cursor`
    as `cursor` for the next page (null: no more). Numbers are masked unless the
    principal may export lead data (`leads:export`)."""
    which = AttemptFilter(campaign=campaign, disposition=disposition, since=since,
                          until=until, after=_cursor(cursor), limit=limit)
    with service.store.read() as uow:
        rows = list(uow.attempt_rows(which=which))
    unmasked = who.allows(Scope.LEADS_EXPORT)
    last = rows[-1] if len(rows) == limit else None
    return {"attempts": [_record(row, unmasked) for row in rows],
            "next_cursor": f"{last.placed_at.isoformat()}|{last.attempt_id}" if last else None}


@router.get("/attempts.csv", tags=["reports"], response_class=StreamingResponse)
def attempt_csv(service: ServiceDep, who: Exporter, campaign: str | None = None,
                disposition: str | None = None, since: AwareDatetime | None = None,
                until: AwareDatetime | None = None) -> StreamingResponse:
    """The outcome log as CSV (`dialer export attempts` columns), numbers unmasked: needs
    `leads:export`. The export itself is in the audit log."""
    which = AttemptFilter(campaign=campaign, disposition=disposition, since=since,
                          until=until)
    with service.store.write() as uow:
        uow.audit("attempts.export", actor=who.actor, subject=f"campaign:{campaign or '*'}",
                  detail={"disposition": disposition, "since": since, "until": until},
                  now=service.clock.now())
    with service.store.read() as uow:
        rows = list(uow.attempt_rows(which=which))
    return StreamingResponse(_csv(rows), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": "attachment; filename=attempts.csv"})


def _csv(rows: list[AttemptRow]) -> Iterator[str]:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=ATTEMPT_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        record = row.to_record()
        record["callee_timezones"] = " ".join(row.callee_timezones)
        writer.writerow(record)
        if out.tell() > 65536:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


def _record(row: AttemptRow, unmasked: bool) -> dict[str, object]:
    record = row.to_record()
    if not unmasked:
        record["e164"] = mask(row.e164)
    return record


def _cursor(text: str | None) -> tuple[datetime, str] | None:
    if text is None:
        return None
    placed, bar, attempt_id = text.partition("|")
    try:
        at = datetime.fromisoformat(placed)
    except ValueError:
        at = None
    if not bar or not attempt_id or at is None or at.tzinfo is None:
        raise UsageError("cursor: not a cursor this API gave (use next_cursor as it is)")
    return at, attempt_id


@router.get("/audit", tags=["access"])
def audit_log(service: ServiceDep, who: Admin, subject: str | None = None,
              limit: Limit = 100) -> dict[str, Any]:
    """The latest audit entries (who did what, when), newest first."""
    with service.store.read() as uow:
        entries = uow.audit_entries(subject=subject, limit=limit)
    return {"entries": [{"at": e.at.isoformat(), "actor": e.actor, "action": e.action,
                         "subject": e.subject, "detail": e.detail} for e in entries]}
