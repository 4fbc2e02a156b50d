"""Leads from JSON rows (the service's lead and trigger endpoints), into the store.

The same pre-filter as a file import, in process: each phone is cleaned and validated in
the campaign's region (`rules.prefilter.screen`), then judged in request order (`Judge`)
against the store (`StoreFactsSource`: the campaign's leads, suppressions, dead numbers).
All writes happen in the caller's transaction: raising anywhere leaves the store as it was.

- Accepted leads go into one lead list per source and UTC day, `api:<source>:<yyyy-mm-dd>`
  (its content hash is the name's, so the day's requests share it); its summary adds up
  the day's rows as a file import's does (`dialer leads` shows the source's dirty share).
- Each lead is placed in the campaign's segments and is due (`leads.next_attempt_at`) at
  the latest of: now, its `due_at`, its segment's `older_than` time and, for an event,
  the event's time plus the trigger's delay.
- One audit entry per call (`leads.api_add`, or `leads.trigger`), counts only. Results
  come back per item, in request order, numbers masked.

The parser is one per thread (`NumberParser` is not thread-safe, and the file pipeline's
in-process one is per process): the service may run requests in a thread pool.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from pydantic import AwareDatetime
from sqlalchemy import select

from dialer.config.campaign import Campaign
from dialer.config.fields import STRICT_KEYS, Problem, empty_map, raise_problems, show_value
from dialer.engine.build import segments_of
from dialer.errors import UsageError
from dialer.intake.service import StoreFactsSource, rows_read
from dialer.store import Lead, NewLead, UnitOfWork
from dialer.store.schema import lead_lists, require_aware
from dialer.store.unit_of_work import _dialect_insert
from rules.phone import NumberParser, PhoneInfo, mask
from rules.prefilter import REJECTIONS, Judge, StoreFacts, Verdict, screen
from rules.retry import LeadState
from rules.segments import Segment, place

MAX_ATTRIBUTES = 50
MAX_ATTRIBUTE_CHARS = 1000
MAX_SOURCE_CHARS = 100  # lead_lists.source


@dataclass(frozen=True, slots=True, kw_only=True)
class LeadIn:
    """One lead as a client sends it.

    - `phone`: as given, national (in the campaign's region) or +E.164; a phone that is
      not a number is not an error here, it gets its verdict (`invalid`, ...);
    - `attributes`: text the script may use (name, order id, cart value); at most 50,
      keys non-empty, values at most 1000 characters; read-only once made;
    - `due_at`: the earliest time to call (timezone-aware).

    Checked by pydantic as config dataclasses are, and when made directly (ValueError),
    naming the field, never echoing a value.
    """

    __pydantic_config__ = STRICT_KEYS

    phone: str
    attributes: Mapping[str, str] = field(default_factory=empty_map)
    due_at: AwareDatetime | None = None

    def __post_init__(self) -> None:
        problems = _attribute_problems(self.attributes)
        if self.due_at is not None and self.due_at.utcoffset() is None:
            problems.append((("due_at",), "needs a time zone, such as +08:00 or Z"))
        raise_problems(problems)
        object.__setattr__(self, "attributes", MappingProxyType(dict(self.attributes)))


def _attribute_problems(attributes: object) -> list[Problem]:
    if not isinstance(attributes, Mapping):
        return [(("attributes",), "expected a mapping of text to text")]
    problems: list[Problem] = []
    if len(attributes) > MAX_ATTRIBUTES:
        problems.append((("attributes",), f"at most {MAX_ATTRIBUTES} attributes, "
                                          f"got {len(attributes)}"))
    for key, value in attributes.items():
        if not isinstance(key, str) or not key:
            problems.append((("attributes",), "attribute names must be non-empty text"))
        elif not isinstance(value, str):
            problems.append((("attributes", key), "expected text"))
        elif len(value) > MAX_ATTRIBUTE_CHARS:
            problems.append((("attributes", key), f"at most {MAX_ATTRIBUTE_CHARS} "
                                                  f"characters, got {len(value)}"))
    return problems


@dataclass(frozen=True, slots=True, kw_only=True)
class LeadResult:
    """What became of one lead of a request.

    `lead_id` is the new lead's (accepted), the lead an event moved (accepted and
    `updated`), or the existing lead's (duplicate; None for a repeat of a number this
    request rejected). `due_at` is set when accepted.
    """

    index: int  # position in the request, from 0
    verdict: Verdict
    lead_id: int | None = None
    e164_masked: str | None = None  # None when the phone is not a valid number
    due_at: datetime | None = None
    updated: bool = False  # an event moved an existing lead's due time

    def to_dict(self) -> dict[str, object]:
        return {"index": self.index, "verdict": self.verdict.value, "lead_id": self.lead_id,
                "e164_masked": self.e164_masked, "updated": self.updated,
                "due_at": None if self.due_at is None else self.due_at.isoformat()}


@dataclass(frozen=True, slots=True, kw_only=True)
class LeadsAdded:
    """The results of `add_leads` or `trigger_lead`, in request order, with counts."""

    campaign: str
    list_id: int
    items: tuple[LeadResult, ...]

    @property
    def accepted(self) -> int:
        """New leads plus leads an event moved."""
        return sum(item.verdict is Verdict.ACCEPTED for item in self.items)

    @property
    def updated(self) -> int:  # existing leads an event moved
        return sum(item.updated for item in self.items)

    @property
    def rejected(self) -> dict[str, int]:
        """Rejected items by verdict (only verdicts that occurred, in check order)."""
        counts = Counter(item.verdict for item in self.items)
        return {v.value: counts[v] for v in REJECTIONS if counts[v]}

    def counts(self) -> dict[str, object]:
        """The numbers of the request, without any phone number: for audit and replies."""
        return {"received": len(self.items), "accepted": self.accepted,
                "updated": self.updated, "rejected": self.rejected}

    def to_dict(self) -> dict[str, object]:
        return {"campaign": self.campaign, "list_id": self.list_id, **self.counts(),
                "items": [item.to_dict() for item in self.items]}


def add_leads(
    uow: UnitOfWork, campaign: Campaign, leads: Sequence[LeadIn], *, source: str,
    now: datetime, actor: str, event: str | None = None, occurred_at: datetime | None = None,
) -> LeadsAdded:
    """Judge `leads` with the pre-filter and add the accepted ones to `campaign`.

    A number that already is a lead of the campaign is `duplicate`, with that lead's id.
    With `event` (one of `campaign.triggers`, else UsageError), the leads are the
    event's, which happened at `occurred_at` (default: `now`): each is due the trigger's
    delay after it, and a number that already is a lead is treated as `trigger_lead`
    says. Writes in the caller's transaction; `now` and `occurred_at` must be aware.
    """
    now = require_aware(now, "now")
    earliest = _event_due(campaign, event, occurred_at or now, now)
    if not 0 < len(source) <= MAX_SOURCE_CHARS:
        raise UsageError(f"a lead source must be 1-{MAX_SOURCE_CHARS} characters")
    campaign_id = uow.ensure_campaign(campaign.name, default_region=campaign.region, now=now)
    list_id, summary = _day_list(uow, campaign_id, source, now)
    facts = StoreFactsSource(uow, now=now, campaign=campaign.name,
                             # an event judges existing leads itself (they may be moved)
                             campaign_id=None if event is not None else campaign_id)
    batch = _Batch(campaign_id=campaign_id, list_id=list_id, first_row=rows_read(summary) + 1,
                   now=now,
                   earliest=earliest, segments=segments_of(campaign),
                   max_attempts=campaign.dial.max_attempts)
    judged = _judged(leads, campaign, facts)
    items = _store(uow, batch, leads, judged, move_existing=event is not None)
    added = LeadsAdded(campaign=campaign.name, list_id=list_id, items=tuple(items))
    uow.set_list_summary(list_id, _day_summary(summary, added))
    detail: dict[str, object] = {"source": source, "list_id": list_id, **added.counts()}
    if event is not None:
        detail["event"] = event
    action = "leads.api_add" if event is None else "leads.trigger"
    uow.audit(action, actor=actor, subject=f"campaign:{campaign.name}", detail=detail, now=now)
    return added


def trigger_lead(
    uow: UnitOfWork, campaign: Campaign, event: str, lead: LeadIn, *, occurred_at: datetime,
    now: datetime, actor: str, source: str,
) -> LeadsAdded:
    """Add the lead an event made (`cart_abandoned`): due the trigger's delay after
    `occurred_at`, not before `now` (nor its own `due_at`). UsageError, naming the known
    events, if `event` is not one of `campaign.triggers`.

    When the number already is a lead of the campaign:

    - a lead still waiting (state ready, attempts left) is moved to the EARLIER of its
      current due time and the new one, and takes the event's attributes (new values
      win, others kept): a second event never pushes back a call that was already due,
      and the script sees the latest cart. Its segment is kept. Verdict `accepted`,
      `updated`, with the lead's id;
    - a lead being dialed right now, or finished (done, dead, exhausted): `duplicate`
      with its id, unchanged. `rules.retry.LeadState` has no way back from a finished
      state (a finished lead never comes back), and a call in progress decides its own
      lead's next due time.

    A suppressed or known-dead number is rejected as such, lead or not.
    """
    return add_leads(uow, campaign, [lead], source=source, now=now, actor=actor, event=event,
                     occurred_at=occurred_at)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Batch:
    campaign_id: int
    list_id: int
    first_row: int  # the row number of the request's first lead in its list
    now: datetime
    earliest: datetime  # no lead of the request is due before this
    segments: Sequence[Segment]
    max_attempts: int


Judged = tuple[Verdict, PhoneInfo | None]


def _event_due(campaign: Campaign, event: str | None, occurred_at: datetime,
               now: datetime) -> datetime:
    """When an event's leads are due at the earliest (`now` without an event)."""
    if event is None:
        return now
    rule = campaign.triggers.get(event)
    if rule is None:
        known = ", ".join(sorted(campaign.triggers)) or "none; add `triggers:` to its file"
        raise UsageError(f"campaign {campaign.name!r} has no trigger {show_value(event)} "
                         f"(its triggers: {known})")
    return max(now, require_aware(occurred_at, "occurred_at") + rule.delay)


_local = threading.local()


def _parser(region: str) -> NumberParser:
    """This thread's parser for `region`."""
    parsers: dict[str, NumberParser] = _local.__dict__.setdefault("parsers", {})
    if region not in parsers:
        parsers[region] = NumberParser(region)
    return parsers[region]


def _judged(leads: Sequence[LeadIn], campaign: Campaign,
            facts: StoreFactsSource) -> list[Judged]:
    """Each lead's verdict and number, as `pipeline.screen_rows` judges a file's rows."""
    parser = _parser(campaign.region)
    screened = [screen(i + 1, lead.phone, parser) for i, lead in enumerate(leads)]
    judge = Judge(campaign.allowed_number_types)
    candidates = {s.info.e164 for s in screened
                  if s.info is not None and s.info.number_type in judge.allowed_types}
    known = facts.facts(candidates) if candidates else StoreFacts()
    return [(judge.verdict(s, known), s.info) for s in screened]


def _store(uow: UnitOfWork, batch: _Batch, leads: Sequence[LeadIn], judged: list[Judged],
           *, move_existing: bool) -> list[LeadResult]:
    """Insert the accepted leads (or move the existing ones); results with lead ids."""
    accepted = {info.e164 for verdict, info in judged
                if verdict is Verdict.ACCEPTED and info is not None}
    existing = (uow.find_leads(batch.campaign_id, accepted, lock=True) if move_existing
                else {})
    items: list[LeadResult] = []
    new: list[NewLead] = []
    for index, (lead, (verdict, info)) in enumerate(zip(leads, judged, strict=True)):
        item = LeadResult(index=index, verdict=verdict,
                          e164_masked=None if info is None else mask(info.e164))
        if verdict is Verdict.ACCEPTED and info is not None:
            placement = place(batch.segments, lead.attributes)
            due = _due(batch.earliest, lead.due_at, placement.due_from)
            found = existing.get(info.e164)
            if found is None:
                new.append(_new_lead(batch, index, lead, info, placement.name,
                                     placement.priority, due))
                item = replace(item, due_at=due)
            else:
                item = _moved(uow, item, found, due, lead.attributes, batch.max_attempts)
        items.append(item)
    if new:
        uow.insert_leads(new)
    return _with_ids(uow, batch.campaign_id, items, [info for _, info in judged])


def _due(earliest: datetime, *later: datetime | None) -> datetime:
    """The latest of `earliest` and the given times, in UTC."""
    return require_aware(max([earliest, *(t for t in later if t is not None)]))


def _new_lead(batch: _Batch, index: int, lead: LeadIn, info: PhoneInfo, segment: str,
              priority: int, due: datetime) -> NewLead:
    return NewLead(
        campaign_id=batch.campaign_id, list_id=batch.list_id, row_number=batch.first_row + index,
        e164=info.e164, raw=lead.phone, attributes=dict(lead.attributes),
        region=info.region or "", number_type=info.number_type.value,
        timezones=info.timezones, carrier=info.carrier, created_at=batch.now,
        priority=priority, segment=segment, due_at=due,
    )


def _moved(uow: UnitOfWork, item: LeadResult, found: Lead, due: datetime,
           attributes: Mapping[str, str], max_attempts: int) -> LeadResult:
    """An event for an existing lead: move it if it is waiting, else a duplicate."""
    if found.state != LeadState.READY.value or found.attempts_made >= max_attempts:
        return replace(item, verdict=Verdict.DUPLICATE)
    due = min(due, found.next_attempt_at or due)
    merged = {**found.attributes, **attributes}
    if not uow.update_waiting_lead(found.id, due=due, attributes=merged):
        return replace(item, verdict=Verdict.DUPLICATE)  # pragma: no cover - it is locked
    return replace(item, due_at=require_aware(due), updated=True)


def _with_ids(uow: UnitOfWork, campaign_id: int, items: list[LeadResult],
              infos: list[PhoneInfo | None]) -> list[LeadResult]:
    """`items` with the id of their number's lead (accepted and duplicate ones)."""
    wanted = {item.index: info.e164 for item, info in zip(items, infos, strict=True)
              if info is not None and item.verdict in (Verdict.ACCEPTED, Verdict.DUPLICATE)}
    found = uow.find_leads(campaign_id, set(wanted.values()))
    return [replace(item, lead_id=found[wanted[item.index]].id)
            if item.index in wanted and wanted[item.index] in found else item
            for item in items]


def _day_list(uow: UnitOfWork, campaign_id: int, source: str,
              now: datetime) -> tuple[int, dict[str, Any]]:
    """The source's lead list for today (UTC), made if needed, locked until commit: its
    id and summary.

    The lock (PostgreSQL) serialises requests of one source: the list's summary is
    added to without losing a count, and a number sent twice at once is judged a
    duplicate the second time instead of failing on the unique lead key.
    """
    name = f"api:{source}:{now.astimezone(UTC).date().isoformat()}"
    digest = hashlib.sha256(name.encode()).hexdigest()
    conn = uow._conn
    insert = _dialect_insert(conn.dialect.name, lead_lists).values(
        campaign_id=campaign_id, source=source, file_name=name, content_sha256=digest,
        imported_at=now, summary="{}")
    conn.execute(insert.on_conflict_do_nothing(index_elements=["campaign_id", "content_sha256"]))
    stmt = select(lead_lists.c.id, lead_lists.c.summary).where(
        lead_lists.c.campaign_id == campaign_id, lead_lists.c.content_sha256 == digest)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).one()
    summary = json.loads(row.summary or "{}")
    return int(row.id), summary if isinstance(summary, dict) else {}


def _day_summary(before: dict[str, Any], added: LeadsAdded) -> dict[str, object]:
    """The day list's summary with this request's rows added (a file import's keys)."""
    rejected = Counter(before.get("rejected") or {})
    rejected.update(added.rejected)
    return {
        **before,
        "kind": "api",
        "rows_read": rows_read(before) + len(added.items),
        "accepted": int(before.get("accepted", 0)) + added.accepted - added.updated,
        "rejected": dict(rejected),
    }
