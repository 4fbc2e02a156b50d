"""Number-status providers: where a deployment's carrier look-ups come in.

A provider answers "what is the status of these numbers?" A deployment can plug in a live
carrier look-up service; we ship `CsvStatusProvider`, which reads the CSV such services
export (one row per number: the number, a status in English or Chinese, optionally when
it was observed).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from dialer.errors import IntakeError
from dialer.intake.readers import open_lead_table
from rules.number_status import NumberStatus, NumberStatusRecord, RecheckPolicy
from rules.phone import CleanFailure, NumberParser, PhoneInfo, clean_number


class NumberStatusProvider(Protocol):
    """A source of number statuses.

    - `statuses` yields at most one record per number it knows, each with the provider's
      `name` as its source and a recheck time set by the given policy.
    - It never yields a record for a number it was not asked about (`numbers` None means
      "everything you have", for file-based providers).
    - It raises `DialerError` subclasses only; an unreachable service is `retryable`.
    """

    name: str

    def statuses(
        self, numbers: set[str] | None, *, now: datetime, policy: RecheckPolicy
    ) -> Iterator[NumberStatusRecord]: ...


# Labels seen in look-up services' exports, mapped to our statuses.
STATUS_LABELS: dict[str, NumberStatus] = {
    **{s.value: s for s in NumberStatus},
    "空号": NumberStatus.VACANT,
    "停机": NumberStatus.SUSPENDED,
    "关机": NumberStatus.POWERED_OFF,
    "不在服务区": NumberStatus.UNREACHABLE,
    "无法接通": NumberStatus.UNREACHABLE,
    "忙": NumberStatus.BUSY,
    "占线": NumberStatus.BUSY,
    "通话中": NumberStatus.BUSY,
    "正在通话中": NumberStatus.BUSY,
    "正常": NumberStatus.NORMAL,
    "实号": NumberStatus.NORMAL,
    "风险号": NumberStatus.RISKY,
    "沉默号": NumberStatus.RISKY,
    "危险号": NumberStatus.RISKY,
    "未知": NumberStatus.UNKNOWN,
    "poweredoff": NumberStatus.POWERED_OFF,
    "powered off": NumberStatus.POWERED_OFF,
    "switched off": NumberStatus.POWERED_OFF,
    "not in service": NumberStatus.VACANT,
}

_STATUS_HEADERS = ("status", "state", "result", "状态", "号码状态", "检测结果", "结果")
_TIME_HEADERS = ("observed_at", "checked_at", "time", "检测时间", "时间")


@dataclass(frozen=True, slots=True)
class SkippedRow:
    row: int
    reason: str


class CsvStatusProvider:
    """Statuses from a CSV/XLSX export of a number look-up service."""

    def __init__(self, path: Path, *, name: str, region: str = "CN") -> None:
        self.path = path
        self.name = name
        self._parser = NumberParser(region)
        self.skipped: list[SkippedRow] = []

    def statuses(
        self, numbers: set[str] | None, *, now: datetime, policy: RecheckPolicy
    ) -> Iterator[NumberStatusRecord]:
        with open_lead_table(self.path) as table:
            status_index = _find_column(table.info.headers, _STATUS_HEADERS, self.path)
            time_index = _find_optional(table.info.headers, _TIME_HEADERS)
            columns = _Columns(table.info.phone_index, status_index, time_index)
            for row, cells in table.rows():
                record = self._record(row, cells, columns, now, policy)
                if record is not None and (numbers is None or record.e164 in numbers):
                    yield record

    def _record(
        self,
        row: int,
        cells: list[str],
        columns: _Columns,
        now: datetime,
        policy: RecheckPolicy,
    ) -> NumberStatusRecord | None:
        cleaned = clean_number(cells[columns.phone])
        info = self._parser.parse(cleaned) if not isinstance(cleaned, CleanFailure) else None
        if not isinstance(info, PhoneInfo):
            self.skipped.append(SkippedRow(row, "not a valid number"))
            return None
        label = cells[columns.status].strip()
        status = STATUS_LABELS.get(label.lower())
        if status is None:
            self.skipped.append(SkippedRow(row, f"unknown status label {label!r}"))
            return None
        observed = _observed_at(cells[columns.time]) if columns.time is not None else None
        return policy.record(info.e164, status, observed or now, self.name)


@dataclass(frozen=True, slots=True)
class _Columns:
    phone: int
    status: int
    time: int | None


def _find_column(headers: tuple[str, ...], names: tuple[str, ...], path: Path) -> int:
    index = _find_optional(headers, names)
    if index is None:
        raise IntakeError(
            f"{path.name}: no status column found among headers {list(headers)}; "
            f"expected one of {list(names)}"
        )
    return index


def _find_optional(headers: tuple[str, ...], names: tuple[str, ...]) -> int | None:
    normalised = [h.strip().lower() for h in headers]
    for name in names:
        if name in normalised:
            return normalised.index(name)
    return None


def _observed_at(text: str) -> datetime | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("/", "-"))
    except ValueError:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
