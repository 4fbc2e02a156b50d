"""`leads check` and `leads import`: a lead file through the pre-filter, into the store.

An import is one write transaction: a file that turns out to be broken halfway leaves the
store exactly as it was. Importing the same bytes again into the same campaign reuses its
list and adds no lead twice (every number is already a lead: `duplicate`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence, Set
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from dialer.intake import jsonl
from dialer.intake.pipeline import (
    PARALLEL_MIN_BYTES,
    FactsSource,
    RowVerdict,
    Screening,
    check_lines,
    default_workers,
    screen_rows,
)
from dialer.intake.readers import LeadTable, TableInfo, open_lead_table, sha256_of_file
from dialer.store import NewLead, ReadUnitOfWork, UnitOfWork
from rules.phone import DEFAULT_ALLOWED_TYPES, NumberType
from rules.prefilter import REJECTIONS, StoreFacts, Verdict
from rules.segments import Segment, place

Progress = Callable[[int, int], None]  # (bytes read, bytes in all)


@dataclass(frozen=True, slots=True, kw_only=True)
class IntakeOptions:
    """How to read and judge a lead file."""

    region: str = "CN"
    column: str | None = None
    sheet: str | None = None
    allowed_types: Set[NumberType] = DEFAULT_ALLOWED_TYPES
    workers: int | None = None  # None: one per core for large files, in process for small
    segments: Sequence[Segment] = ()  # each lead is placed in the first that takes it


@dataclass(slots=True, kw_only=True)
class IntakeSummary:
    """What happened to a file's rows."""

    file: str
    kind: str
    encoding: str | None
    source: str
    campaign: str | None = None
    list_id: int | None = None
    already_imported: bool = False
    rows_read: int = 0
    verdicts: Counter[Verdict] = field(default_factory=Counter)

    @property
    def accepted(self) -> int:
        return self.verdicts[Verdict.ACCEPTED]

    @property
    def rejected(self) -> dict[str, int]:
        return {v.value: self.verdicts[v] for v in REJECTIONS if self.verdicts[v]}

    def to_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "kind": self.kind,
            "encoding": self.encoding,
            "source": self.source,
            "campaign": self.campaign,
            "list_id": self.list_id,
            "already_imported": self.already_imported,
            "rows_read": self.rows_read,
            "accepted": self.accepted,
            "rejected": self.rejected,
        }


class StoreFactsSource:
    """Facts from an open unit of work: a campaign's leads, suppressions in scope, dead numbers."""

    def __init__(
        self, uow: ReadUnitOfWork, *, now: datetime, campaign: str | None, campaign_id: int | None
    ) -> None:
        self._uow = uow
        self._now = now
        self._campaign = campaign
        self._campaign_id = campaign_id

    def facts(self, e164s: Collection[str]) -> StoreFacts:
        existing: Set[str] = frozenset()
        if self._campaign_id is not None:
            existing = self._uow.existing_e164s(self._campaign_id, e164s)
        return StoreFacts(
            existing_leads=existing,
            suppressed=self._uow.suppressed_e164s(e164s, campaign=self._campaign),
            dead=self._uow.dead_e164s(e164s, now=self._now),
        )


@contextmanager
def checked_rows(
    path: Path,
    options: IntakeOptions,
    facts: FactsSource | None,
    progress: Progress | None = None,
) -> Iterator[tuple[TableInfo, Iterator[list[RowVerdict]]]]:
    """Open `path` and give its rows' verdicts, chunk by chunk, in file order."""
    with open_lead_table(path, column=options.column, sheet=options.sheet) as table:
        how = _screening(table.info, options)
        hook = _progress_hook(table, progress)
        yield table.info, screen_rows(table.rows(), table.info.phone_index, how, facts, hook)


@contextmanager
def checked_lines(
    path: Path,
    options: IntakeOptions,
    facts: FactsSource | None,
    progress: Progress | None = None,
) -> Iterator[tuple[TableInfo, Iterator[tuple[list[str], list[Verdict]]]]]:
    """Open `path` and give its rows' `leads check --json` lines, chunk by chunk."""
    with open_lead_table(path, column=options.column, sheet=options.sheet) as table:
        how = _screening(table.info, options)
        hook = _progress_hook(table, progress)
        yield table.info, check_lines(table.rows(), table.info.phone_index, how, facts, hook)


def _screening(info: TableInfo, options: IntakeOptions) -> Screening:
    return Screening(region=options.region, allowed_types=options.allowed_types,
                     workers=_workers_for(info, options.workers))


def _workers_for(info: TableInfo, requested: int | None) -> int:
    if requested is not None:
        return requested
    return default_workers() if info.size_bytes >= PARALLEL_MIN_BYTES else 1


def _progress_hook(table: LeadTable, progress: Progress | None) -> Callable[[], None] | None:
    if progress is None:
        return None
    total = table.info.size_bytes
    return lambda: progress(table.bytes_read(), total)


def verdict_json(item: RowVerdict) -> str:
    """One line of `leads check --json` output for a judged row."""
    return jsonl.join(jsonl.parts(item.row, item.raw, item.info), item.verdict)


def import_file(
    uow: UnitOfWork,
    path: Path,
    *,
    campaign: str,
    source: str,
    options: IntakeOptions,
    now: datetime,
    actor: str,
    progress: Progress | None = None,
) -> IntakeSummary:
    """Import `path` into `campaign` inside the caller's write transaction."""
    digest = sha256_of_file(path)
    campaign_id = uow.ensure_campaign(campaign, default_region=options.region, now=now)
    previous = uow.find_list(campaign_id, digest)
    if previous is not None:
        list_id = previous.id
    else:
        list_id = uow.create_list(
            campaign_id, source=source, file_name=path.name, sha256=digest, now=now
        )
    facts = StoreFactsSource(uow, now=now, campaign=campaign, campaign_id=campaign_id)
    with checked_rows(path, options, facts, progress) as (info, chunks):
        summary = IntakeSummary(
            file=path.name,
            kind=info.kind,
            encoding=info.encoding,
            source=previous.source if previous is not None else source,
            campaign=campaign,
            list_id=list_id,
            already_imported=previous is not None,
        )
        for chunk in chunks:
            summary.rows_read += len(chunk)
            summary.verdicts.update(item.verdict for item in chunk)
            leads = [
                _new_lead(item, info.headers, info.phone_index, campaign_id, list_id, now,
                          options.segments)
                for item in chunk
                if item.verdict is Verdict.ACCEPTED
            ]
            if leads:
                uow.insert_leads(leads)
    if previous is None:
        uow.set_list_summary(list_id, summary.to_dict())
    uow.audit(
        "leads.import",
        actor=actor,
        subject=f"campaign:{campaign}",
        detail=summary.to_dict(),
        now=now,
    )
    return summary


def _new_lead(
    item: RowVerdict,
    headers: tuple[str, ...],
    phone_index: int,
    campaign_id: int,
    list_id: int,
    now: datetime,
    segments: Sequence[Segment] = (),
) -> NewLead:
    assert item.info is not None
    attributes = _attributes(headers, item.cells, phone_index)
    placement = place(segments, attributes)
    due = placement.due_from
    return NewLead(
        campaign_id=campaign_id,
        list_id=list_id,
        row_number=item.row,
        e164=item.info.e164,
        raw=item.raw,
        attributes=attributes,
        region=item.info.region or "",
        number_type=item.info.number_type.value,
        timezones=item.info.timezones,
        carrier=item.info.carrier,
        created_at=now,
        priority=placement.priority,
        segment=placement.name,
        due_at=due if due is not None and due > now else None,
    )


def _attributes(headers: tuple[str, ...], cells: list[str], phone_index: int) -> dict[str, str]:
    return {h: c for i, (h, c) in enumerate(zip(headers, cells, strict=False)) if i != phone_index}


#: The verdicts that say a list is dirty (the number itself is junk), not merely redundant.
DIRTY_VERDICTS = (Verdict.EMPTY, Verdict.UNPARSEABLE, Verdict.INVALID)


def dirty_rows(summary: Mapping[str, object]) -> int:
    """Rows of a stored list summary rejected as empty, unparseable or invalid."""
    rejected = summary.get("rejected", {})
    if not isinstance(rejected, Mapping):
        return 0
    return sum(int(rejected.get(verdict.value, 0)) for verdict in DIRTY_VERDICTS)


def rows_read(summary: Mapping[str, object]) -> int:
    """Rows a stored list summary says were read."""
    value = summary.get("rows_read", 0)
    return value if isinstance(value, int) else 0
