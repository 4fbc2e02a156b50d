"""Turning a CLI argument that is a number or a file of numbers into E.164 numbers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dialer.errors import UsageError
from dialer.intake.readers import open_lead_table
from rules.phone import CleanFailure, NumberParser, PhoneInfo, clean_number


@dataclass(frozen=True, slots=True)
class Rejected:
    row: int
    reason: str


def parse_one(text: str, region: str) -> PhoneInfo:
    """A single number typed on the command line, or a UsageError saying why not."""
    cleaned = clean_number(text)
    if isinstance(cleaned, CleanFailure):
        raise UsageError(f"not a single phone number ({cleaned.value})")
    info = NumberParser(region).parse(cleaned)
    if not isinstance(info, PhoneInfo):
        raise UsageError(f"not a valid phone number in region {region} ({info.value}); "
                         "give it as +<country code><number> if it is from another region")
    return info


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
