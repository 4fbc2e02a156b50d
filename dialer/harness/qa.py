"""The harness's QA report: what each virtual phone did, and whether the dialer agreed.

The phones log one `PhoneCall` per call they received (JSON lines). A dialer's attempt log
(`dialer export attempts`, CSV or JSON lines; any dialer that writes `e164`, `placed_at`
and `disposition` will do) is matched to those calls number by number in time order: the
n-th attempt at a number is the n-th call its phone received. Attempts that never reached
a phone (failed on our side, no line) are listed apart, as are phone calls no attempt
explains. Calls to `agent` phones are the legs a dialer bridges to its agents, not
attempts: they are counted (`agent_legs`), never matched.
"""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from dialer.errors import UsageError
from dialer.harness.config import PhoneKind

#: Dispositions of attempts that never reached the far end (nothing for a phone to log).
_NEVER_LEFT = frozenset({"failed", "network_error"})
_AGENT = PhoneKind.AGENT.value


@dataclass(frozen=True, slots=True, kw_only=True)
class PhoneCall:
    """One call a virtual phone received, and what it did with it."""

    call_id: str  # the harness's own id
    dialed: str  # the number in the request URI
    caller: str  # the From user part (the caller ID shown)
    phone: str  # the behaviour's name
    kind: str  # its PhoneKind
    expected: tuple[str, ...]  # the dispositions a dialer may rightly conclude
    did: str  # what the phone did, in words ("answered", "486 Busy Here", ...)
    received_at: float  # epoch seconds
    answered_at: float | None = None
    ended_at: float | None = None
    ended_by: str = ""  # "phone", "caller" or "network"
    keys_sent: str = ""
    keys_heard: str = ""
    speech_heard_ms: int = 0  # speech the phone heard from the dialer
    #: From the phone starting to speak over a prompt to the prompt going quiet, as the
    #: phone heard it (None: it did not interrupt, or the prompt never stopped).
    barge_in_ms: float | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str) -> PhoneCall:
        body = json.loads(line)
        body["expected"] = tuple(body.get("expected", ()))
        return cls(**body)


@dataclass(frozen=True, slots=True, kw_only=True)
class Attempt:
    """One attempt from the dialer's log."""

    e164: str
    placed_at: datetime
    disposition: str
    attempt_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Row:
    call: PhoneCall | None
    attempt: Attempt | None

    @property
    def verdict(self) -> str:
        if self.call is None:
            assert self.attempt is not None
            return "not_received" if self.attempt.disposition not in _NEVER_LEFT else "ok"
        if self.attempt is None:
            return "unexplained"
        return "ok" if self.attempt.disposition in self.call.expected else "mismatch"


@dataclass(slots=True, kw_only=True)
class QaReport:
    calls: int = 0
    by_phone: Counter[str] = field(default_factory=Counter)
    compared: bool = False
    matches: int = 0
    mismatches: list[Row] = field(default_factory=list)
    not_received: list[Row] = field(default_factory=list)  # attempts no phone saw
    unexplained: list[Row] = field(default_factory=list)  # calls no attempt explains
    agent_legs: int = 0  # calls to agent phones: a dialer's agent legs, not attempts
    barge_in_ms: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        def row(r: Row) -> dict[str, object]:
            return {
                "number": (r.call.dialed if r.call else r.attempt.e164 if r.attempt else ""),
                "phone": r.call.phone if r.call else None,
                "phone_did": r.call.did if r.call else None,
                "expected": list(r.call.expected) if r.call else None,
                "dialer_concluded": r.attempt.disposition if r.attempt else None,
                "attempt_id": r.attempt.attempt_id if r.attempt else None,
            }

        latencies = sorted(self.barge_in_ms)
        return {
            "calls": self.calls, "by_phone": dict(self.by_phone), "compared": self.compared,
            "matches": self.matches, "mismatches": [row(r) for r in self.mismatches],
            "not_received": [row(r) for r in self.not_received],
            "unexplained": [row(r) for r in self.unexplained],
            "agent_legs": self.agent_legs,
            "barge_in_ms": ({"count": len(latencies), "median": latencies[len(latencies) // 2],
                             "max": latencies[-1]} if latencies else None),
        }


def build_report(calls: Sequence[PhoneCall], attempts: Sequence[Attempt] | None) -> QaReport:
    report = QaReport(calls=len(calls), by_phone=Counter(call.phone for call in calls),
                      barge_in_ms=[c.barge_in_ms for c in calls if c.barge_in_ms is not None])
    if attempts is None:
        return report
    report.compared = True
    report.agent_legs = sum(call.kind == _AGENT for call in calls)
    for row in match([call for call in calls if call.kind != _AGENT], attempts):
        verdict = row.verdict
        if verdict == "ok":
            report.matches += row.call is not None
        elif verdict == "mismatch":
            report.mismatches.append(row)
        elif verdict == "not_received":
            report.not_received.append(row)
        else:
            report.unexplained.append(row)
    return report


def match(calls: Iterable[PhoneCall], attempts: Iterable[Attempt]) -> list[Row]:
    """Pair the n-th call a number's phone received with the n-th attempt at it."""
    received: dict[str, list[PhoneCall]] = defaultdict(list)
    for call in sorted(calls, key=lambda c: c.received_at):
        received[_digits(call.dialed)].append(call)
    made: dict[str, list[Attempt]] = defaultdict(list)
    for attempt in sorted(attempts, key=lambda a: a.placed_at):
        if attempt.disposition not in _NEVER_LEFT:
            made[_digits(attempt.e164)].append(attempt)
        else:
            made.setdefault(_digits(attempt.e164), [])
    rows: list[Row] = []
    for number in sorted(set(received) | set(made)):
        phone_calls, number_attempts = received.get(number, []), made.get(number, [])
        for index in range(max(len(phone_calls), len(number_attempts))):
            rows.append(Row(call=phone_calls[index] if index < len(phone_calls) else None,
                            attempt=(number_attempts[index] if index < len(number_attempts)
                                     else None)))
    return rows


def _digits(number: str) -> str:
    return number.lstrip("+")


def read_calls(path: Path) -> list[PhoneCall]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UsageError(f"cannot read the harness call log {path}: {exc.strerror}") from None
    calls = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            calls.append(PhoneCall.from_json(line))
        except (ValueError, TypeError) as exc:
            raise UsageError(f"{path}:{number}: not a harness call record ({exc})") from None
    return calls


def read_attempts(path: Path) -> list[Attempt]:
    """An attempt log as `dialer export attempts` writes it (CSV or JSON lines)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise UsageError(f"cannot read the attempt log {path}: {exc.strerror}") from None
    first = text.lstrip()[:1]
    rows: Iterable[dict[str, object]]
    if first == "{":
        try:
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError as exc:
            raise UsageError(f"{path}: not JSON lines ({exc})") from None
    else:
        rows = list(csv.DictReader(text.splitlines()))
    attempts = []
    for number, row in enumerate(rows, 1):
        try:
            placed = str(row["placed_at"]).replace("Z", "+00:00")
            attempts.append(Attempt(e164=str(row["e164"]), placed_at=datetime.fromisoformat(placed),
                                    disposition=str(row["disposition"] or ""),
                                    attempt_id=str(row.get("attempt_id") or "")))
        except (KeyError, ValueError) as exc:
            raise UsageError(f"{path}: attempt {number}: needs e164, placed_at and disposition "
                             f"({exc})") from None
    return attempts
