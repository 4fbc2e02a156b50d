"""Segments: which leads come first, and how each is called.

A campaign lists segments in order; a lead belongs to the first whose `when` holds over
its attributes and history (`attempts_made`, `last_disposition`), and gets that
segment's `then`: a priority (higher is dialed first, within what the contact rules
allow), and optionally a line tier, a script and a caller-ID sub-pool. A lead no segment
takes has priority 0 and the campaign's defaults.

Conditions compare one field each; all must hold:

- a scalar: equal (as text; numbers compare as numbers: `300` equals `"300.0"`);
- `in`: one of a list; `not`: anything but this value;
- `at_least`, `at_most`, `above`, `below`: numeric comparisons (a cell that is not a
  number does not match);
- `present`: the cell is (true) or is not (false) filled;
- `older_than`: the field is a time (ISO 8601; without a zone, UTC) and the lead is due
  no earlier than that time plus the span: "cart abandoned at least 2 h ago" makes the
  lead due two hours after the abandonment. It does not decide membership; a lead whose
  time cannot be read does not match.

Pure: `now` is never read; membership is decided on insert and again after each attempt.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

#: History fields a condition may name besides the lead's own columns.
HISTORY_FIELDS = ("attempts_made", "last_disposition")


class Op(enum.StrEnum):
    EQUALS = "equals"
    IN = "in"
    NOT = "not"
    AT_LEAST = "at_least"
    AT_MOST = "at_most"
    ABOVE = "above"
    BELOW = "below"
    PRESENT = "present"
    OLDER_THAN = "older_than"


@dataclass(frozen=True, slots=True, kw_only=True)
class Condition:
    field: str
    op: Op
    value: str | float | bool | timedelta | tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Segment:
    name: str
    when: tuple[Condition, ...] = ()
    priority: int = 0
    tier: str | None = None
    script: str | None = None
    caller_ids: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Placement:
    """Where a lead landed: its segment (None: none took it) and when it may be due."""

    segment: Segment | None
    due_from: datetime | None = None  # from `older_than` conditions

    @property
    def priority(self) -> int:
        return self.segment.priority if self.segment is not None else 0

    @property
    def name(self) -> str:
        return self.segment.name if self.segment is not None else ""


def place(segments: Sequence[Segment], attributes: Mapping[str, str], *,
          attempts_made: int = 0, last_disposition: str | None = None) -> Placement:
    """The first segment whose conditions hold for this lead."""
    facts = dict(attributes)
    facts["attempts_made"] = str(attempts_made)
    facts["last_disposition"] = last_disposition or ""
    for segment in segments:
        due: datetime | None = None
        for condition in segment.when:
            held = _holds(condition, facts.get(condition.field, "").strip())
            if held is False:
                break
            if isinstance(held, datetime):
                due = held if due is None else max(due, held)
        else:
            return Placement(segment=segment, due_from=due)
    return Placement(segment=None)


def _holds(condition: Condition, cell: str) -> bool | datetime:
    op, value = condition.op, condition.value
    if op is Op.PRESENT:
        return bool(cell) == value
    if op is Op.OLDER_THAN:
        moment = _time(cell)
        if moment is None or not isinstance(value, timedelta):
            return False
        return moment + value
    if op is Op.EQUALS:
        return _same(cell, value)
    if op is Op.NOT:
        return not _same(cell, value)
    if op is Op.IN:
        return isinstance(value, tuple) and any(_same(cell, v) for v in value)
    number, bound = _number(cell), value
    if number is None or not isinstance(bound, float | int) or isinstance(bound, bool):
        return False
    return {Op.AT_LEAST: number >= bound, Op.AT_MOST: number <= bound,
            Op.ABOVE: number > bound, Op.BELOW: number < bound}[op]


def _same(cell: str, value: object) -> bool:
    if isinstance(value, bool):
        return cell.lower() in (("true", "yes", "1", "是") if value else
                                ("false", "no", "0", "否"))
    left, right = _number(cell), _number(str(value))
    if left is not None and right is not None:
        return left == right
    return cell == str(value).strip()


def _number(text: str) -> float | None:
    try:
        number = float(text.replace(",", "").replace("，", ""))
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _time(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# From configuration: `when: {field: spec}` as written in the campaign YAML.

_SPAN = re.compile(r"(\d+)(min|d|h|m|s)")
_UNITS = {"d": 86400, "h": 3600, "m": 60, "min": 60, "s": 1}


def condition_of(name: str, spec: object) -> Condition:
    """One condition from its YAML form; ValueError says what is wrong."""
    if not isinstance(spec, Mapping):
        return Condition(field=name, op=Op.EQUALS, value=_scalar(spec))
    if len(spec) != 1:
        raise ValueError(f"give one test per field, such as {{at_least: 300}}, got {dict(spec)}")
    (key, value), = spec.items()
    try:
        op = Op(str(key))
    except ValueError:
        known = ", ".join(o.value for o in Op)
        raise ValueError(f"unknown test {key!r} (known: {known})") from None
    if op is Op.IN:
        if not isinstance(value, list | tuple) or not value:
            raise ValueError("'in' takes a non-empty list")
        return Condition(field=name, op=op, value=tuple(str(_scalar(v)) for v in value))
    if op is Op.PRESENT:
        if not isinstance(value, bool):
            raise ValueError("'present' takes true or false")
        return Condition(field=name, op=op, value=value)
    if op is Op.OLDER_THAN:
        return Condition(field=name, op=op, value=_span(value))
    if op in (Op.EQUALS, Op.NOT):
        return Condition(field=name, op=op, value=_scalar(value))
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"'{op.value}' takes a number, got {value!r}")
    return Condition(field=name, op=op, value=float(value))


def condition_problems(when: Mapping[str, object]) -> list[tuple[tuple[str | int, ...], str]]:
    """Each condition that cannot be read, with its path under `when`."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for name, spec in when.items():
        try:
            condition_of(name, spec)
        except ValueError as exc:
            problems.append((("when", name), str(exc)))
    return problems


def _scalar(value: object) -> str | float | bool:
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        return float(value)
    raise ValueError(f"expected a text, number or true/false, got {value!r}")


def _span(value: object) -> timedelta:
    text = str(value).strip().replace(" ", "")
    parts = _SPAN.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"'older_than' takes a span such as 2h, 90m or 1d2h, got {value!r}")
    return timedelta(seconds=sum(int(n) * _UNITS[u] for n, u in parts))
