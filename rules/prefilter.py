"""The pre-filter: which rows of a lead list may become leads, and why the others may not.

Two stages, both pure:

1. `screen` looks at one cell alone (clean, parse, validate, type). It needs nothing
   but the cell and a `NumberParser`, so it runs in parallel over chunks of a file.
2. `Judge` gives the final verdict in file order, with what only the whole list and the
   store know: earlier rows of the same import, numbers already leads of the campaign,
   suppressions in scope, and known-dead numbers. The store look-ups are done by the
   caller (in batches) and handed in as sets.

Verdicts, in the order they are checked: empty, unparseable, invalid, type_not_allowed,
duplicate, suppressed, known_dead; everything else is accepted.
"""

from __future__ import annotations

import enum
from collections.abc import Set
from dataclasses import dataclass

from rules.phone import (
    DEFAULT_ALLOWED_TYPES,
    CleanFailure,
    NumberParser,
    NumberType,
    ParseFailure,
    PhoneInfo,
    clean_number,
)


class Verdict(enum.StrEnum):
    """What the pre-filter decided about one row."""

    ACCEPTED = "accepted"
    EMPTY = "empty"  # nothing left after cleaning
    UNPARSEABLE = "unparseable"  # phonenumbers cannot parse it, or it holds several numbers
    INVALID = "invalid"  # parsed, but not a valid number
    TYPE_NOT_ALLOWED = "type_not_allowed"  # valid, but a type the campaign does not call
    DUPLICATE = "duplicate"  # an earlier row of this import, or already a lead
    SUPPRESSED = "suppressed"  # on a suppression list in scope
    KNOWN_DEAD = "known_dead"  # vacant or suspended, and not yet due for a recheck


#: The rejection reasons, in the order they are checked.
REJECTIONS: tuple[Verdict, ...] = tuple(v for v in Verdict if v is not Verdict.ACCEPTED)


@dataclass(frozen=True, slots=True)
class Screened:
    """A row after the first stage: its number, or the verdict that already rejects it."""

    row: int
    raw: str
    info: PhoneInfo | None
    rejection: Verdict | None


def screen(row: int, raw: str, parser: NumberParser) -> Screened:
    """Clean and parse one cell; reject it if that alone decides."""
    cleaned = clean_number(raw)
    if cleaned is CleanFailure.EMPTY:
        return Screened(row, raw, None, Verdict.EMPTY)
    if cleaned is CleanFailure.MULTIPLE:
        return Screened(row, raw, None, Verdict.UNPARSEABLE)
    assert isinstance(cleaned, str)
    parsed = parser.parse(cleaned)
    if parsed is ParseFailure.UNPARSEABLE:
        return Screened(row, raw, None, Verdict.UNPARSEABLE)
    if parsed is ParseFailure.INVALID:
        return Screened(row, raw, None, Verdict.INVALID)
    assert isinstance(parsed, PhoneInfo)
    return Screened(row, raw, parsed, None)


@dataclass(frozen=True, slots=True)
class StoreFacts:
    """What the store knows about a batch of numbers (empty sets when there is no store)."""

    existing_leads: Set[str] = frozenset()
    suppressed: Set[str] = frozenset()
    dead: Set[str] = frozenset()


class Judge:
    """Gives final verdicts in file order; remembers the numbers it has seen."""

    def __init__(self, allowed_types: Set[NumberType] = DEFAULT_ALLOWED_TYPES) -> None:
        self.allowed_types = frozenset(allowed_types)
        self._seen: set[str] = set()

    def verdict(self, item: Screened, facts: StoreFacts) -> Verdict:
        """The verdict for `item`; call it in file order."""
        if item.rejection is not None:
            return item.rejection
        assert item.info is not None
        if item.info.number_type not in self.allowed_types:
            return Verdict.TYPE_NOT_ALLOWED
        return self.verdict_for_number(item.info.e164, facts)

    def verdict_for_number(self, e164: str, facts: StoreFacts) -> Verdict:
        """The verdict for a valid number of an allowed type; call it in file order."""
        if e164 in self._seen or e164 in facts.existing_leads:
            return Verdict.DUPLICATE
        self._seen.add(e164)
        if e164 in facts.suppressed:
            return Verdict.SUPPRESSED
        if e164 in facts.dead:
            return Verdict.KNOWN_DEAD
        return Verdict.ACCEPTED
