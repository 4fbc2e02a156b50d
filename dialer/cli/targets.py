"""Turning a CLI argument that is a number or a file of numbers into E.164 numbers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dialer.intake.phone import parse_one
from dialer.intake.readers import open_lead_table
from rules.phone import CleanFailure, NumberParser, PhoneInfo, clean_number

__all__ = ["Rejected", "numbers_in", "parse_one"]


@dataclass(frozen=True, slots=True)
class Rejected:
    row: int
    reason: str


def numbers_in(target: str, region: str, column: str | None) -> Iterator[str | Rejected]:
    """E.164 numbers from a number or a file; a `Rejected` for each unusable file row."""
    path = Path(target)
    if not path.is_file():
        yield parse_one(target, region).e164
        return
    parser = NumberParser(region)
    with open_lead_table(path, column=column) as table:
        for row, cells in table.rows():
            cleaned = clean_number(cells[table.info.phone_index])
            if isinstance(cleaned, CleanFailure):
                yield Rejected(row, cleaned.value)
                continue
            info = parser.parse(cleaned)
            yield info.e164 if isinstance(info, PhoneInfo) else Rejected(row, info.value)
