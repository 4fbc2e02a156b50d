"""Contact rules: may this callee be called now, and if not, why not and from when?

Pure: the policy, the callee's facts (time zones, consent, suppression, number status)
and their contact history across campaigns come in with `at`; verdicts come out. The
store applies `decide` inside the claim (a lead is dialed only when every rule says yes)
and `dialer rules explain` prints `verdicts`.

The rules, in the order they are reported:

- `suppressed`: the number is on a do-not-call or opt-out list (never, until removed);
- `number_status`: the number is known dead (vacant, suspended) until its recheck;
- `consent`: the policy needs consent for its purpose and the lead carries none (China's
  marketing rules treat silence as refusal);
- `window`: outside the calling hours in one of the callee's zones (`rules.windows`);
- `per_day`, `per_24_hours`, `per_30_days`, `min_interval`, `unanswered_per_day`:
  frequency caps over the callee's calls for the same purpose, across campaigns (a
  "day" is the calendar day in the callee's first zone);
- `cooldown`: the callee's last outcome rests the number (after a refusal, 7 days or
  forever; after an abandoned call, 72 h).

Every verdict says when its rule next allows a call (`until`; None: not by itself).
`decide` finds the earliest moment every rule allows, by moving to the latest `until`
and asking again (caps and windows interact), a bounded number of times.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from zoneinfo import ZoneInfo

from rules.dispositions import PERSON_ANSWERED, Disposition
from rules.windows import CallingWindows, check_windows

DAY = timedelta(days=1)
#: Outcomes in which no person took the call (for `unanswered_per_day`).
UNANSWERED = frozenset(Disposition) - PERSON_ANSWERED
_ROUNDS = 12  # `decide`: at most this many moves to a later moment


class Rule(enum.StrEnum):
    SUPPRESSED = "suppressed"
    NUMBER_STATUS = "number_status"
    CONSENT = "consent"
    WINDOW = "window"
    PER_DAY = "per_day"
    PER_24_HOURS = "per_24_hours"
    PER_30_DAYS = "per_30_days"
    MIN_INTERVAL = "min_interval"
    UNANSWERED_PER_DAY = "unanswered_per_day"
    COOLDOWN = "cooldown"


@dataclass(frozen=True, slots=True, kw_only=True)
class Caps:
    """Calls allowed per callee and purpose; None is no cap."""

    per_day: int | None = None
    per_24_hours: int | None = None
    per_30_days: int | None = None
    min_interval: timedelta | None = None
    unanswered_per_day: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactPolicy:
    """A campaign's contact rules: its profile's, narrowed by the campaign's own."""

    name: str  # the compliance profile, for reasons
    purpose: str  # marketing, service, collections: caps count calls of the same purpose
    windows: tuple[CallingWindows, ...] = ()  # all must be open
    caps: Caps = field(default_factory=Caps)
    #: Disposition -> rest after it (None: for ever).
    cooldowns: Mapping[str, timedelta | None] = field(
        default_factory=lambda: MappingProxyType({}))
    consent_required: bool = False

    @property
    def lookback(self) -> timedelta:
        """How far back the history matters (besides outcomes that rest a number for ever)."""
        spans = [DAY, self.caps.min_interval or timedelta(0)]
        if self.caps.per_30_days is not None:
            spans.append(timedelta(days=30))
        spans += [rest for rest in self.cooldowns.values() if rest is not None]
        return max(spans) + DAY  # a calendar day in any zone fits inside

    @property
    def forever(self) -> frozenset[str]:
        """Outcomes after which the number rests for ever."""
        return frozenset(d for d, rest in self.cooldowns.items() if rest is None)


@dataclass(frozen=True, slots=True, kw_only=True)
class Contact:
    """One earlier call to the callee (any campaign)."""

    at: datetime
    purpose: str  # '' when unknown: then it counts for every purpose
    campaign: str
    disposition: str | None  # None while the call is up


@dataclass(frozen=True, slots=True, kw_only=True)
class Consent:
    source: str
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Callee:
    """What the rules know of one number. Reasons never contain the number itself."""

    zones: tuple[str, ...]
    history: tuple[Contact, ...] = ()
    consent: Consent | None = None
    consent_problem: str | None = None  # why the lead's consent fields could not be read
    suppressed: str | None = None  # the suppression's reason
    dead: tuple[str, datetime | None] | None = None  # (status, recheck at)


@dataclass(frozen=True, slots=True)
class Verdict:
    rule: Rule
    ok: bool
    reason: str
    until: datetime | None  # when this rule allows a call (`at` when ok; None: not by itself)


@dataclass(frozen=True, slots=True)
class Decision:
    ok: bool
    verdicts: tuple[Verdict, ...]  # at `at`
    next_at: datetime | None  # the earliest moment every rule allows (None: never found)

    @property
    def blocking(self) -> tuple[Verdict, ...]:
        return tuple(v for v in self.verdicts if not v.ok)


def decide(policy: ContactPolicy, callee: Callee, at: datetime) -> Decision:
    """The verdicts at `at`, and when the callee next becomes callable."""
    first = verdicts(policy, callee, at)
    now, current = at, first
    for _ in range(_ROUNDS):
        failing = [v for v in current if not v.ok]
        if not failing:
            return Decision(ok=now == at, verdicts=tuple(first), next_at=now)
        if any(v.until is None for v in failing):
            break
        now = max(v.until for v in failing if v.until is not None)
        current = verdicts(policy, callee, now)
    return Decision(ok=False, verdicts=tuple(first), next_at=None)


def verdicts(policy: ContactPolicy, callee: Callee, at: datetime) -> list[Verdict]:
    """Every rule's verdict on calling `callee` at `at`."""
    if at.tzinfo is None:
        raise ValueError("at must be timezone-aware")
    history = sorted((c for c in callee.history
                      if c.purpose in ("", policy.purpose) and c.at <= at),
                     key=lambda c: c.at)
    return [
        _suppression(callee, at), _status(callee, at), _consent(policy, callee, at),
        _window(policy, callee, at), *_caps(policy, callee, history, at),
        _cooldown(policy, history, at),
    ]


def _suppression(callee: Callee, at: datetime) -> Verdict:
    if callee.suppressed is None:
        return Verdict(Rule.SUPPRESSED, True, "not on any do-not-call list", at)
    return Verdict(Rule.SUPPRESSED, False, f"suppressed: {callee.suppressed}", None)


def _status(callee: Callee, at: datetime) -> Verdict:
    if callee.dead is None:
        return Verdict(Rule.NUMBER_STATUS, True, "no dead-number status on record", at)
    status, recheck = callee.dead
    if recheck is not None and recheck <= at:
        return Verdict(Rule.NUMBER_STATUS, True, f"{status}, but due for a recheck", at)
    when = f"until its recheck at {recheck:%Y-%m-%d %H:%M} UTC" if recheck else "for good"
    return Verdict(Rule.NUMBER_STATUS, False, f"the number is {status} {when}", recheck)


def _consent(policy: ContactPolicy, callee: Callee, at: datetime) -> Verdict:
    consent = callee.consent
    if not policy.consent_required:
        return Verdict(Rule.CONSENT, True, f"{policy.name} needs no consent for "
                       f"{policy.purpose} calls", at)
    if consent is None:
        why = callee.consent_problem or "no consent on record"
        return Verdict(Rule.CONSENT, False, f"{why}; {policy.name} requires consent for "
                       f"{policy.purpose} calls", None)
    if consent.at > at:
        return Verdict(Rule.CONSENT, False, f"consent ({consent.source}) is dated "
                       f"{consent.at:%Y-%m-%d %H:%M} UTC, later than the call", consent.at)
    return Verdict(Rule.CONSENT, True, f"consent from {consent.source} on "
                   f"{consent.at:%Y-%m-%d}", at)


def _window(policy: ContactPolicy, callee: Callee, at: datetime) -> Verdict:
    if not policy.windows:
        return Verdict(Rule.WINDOW, True, "no calling hours set", at)
    check = check_windows(policy.windows, callee.zones, at)
    return Verdict(Rule.WINDOW, check.open, check.reason, at if check.open else check.next_open)


def _caps(policy: ContactPolicy, callee: Callee, history: Sequence[Contact],
          at: datetime) -> list[Verdict]:
    caps, out = policy.caps, []
    purpose = policy.purpose
    if caps.per_day is not None or caps.unanswered_per_day is not None:
        start, end = _local_day(callee.zones, at)
        today = [c for c in history if c.at >= start]
        if caps.per_day is not None:
            out.append(_count(Rule.PER_DAY, len(today), caps.per_day,
                              f"{purpose} calls today (callee's time)", end, at))
        if caps.unanswered_per_day is not None:
            missed = sum(c.disposition in UNANSWERED for c in today)
            out.append(_count(Rule.UNANSWERED_PER_DAY, missed, caps.unanswered_per_day,
                              f"unanswered {purpose} calls today (callee's time)", end, at))
    for rule, cap, span, label in ((Rule.PER_24_HOURS, caps.per_24_hours, DAY, "24 hours"),
                                   (Rule.PER_30_DAYS, caps.per_30_days, timedelta(days=30),
                                    "30 days")):
        if cap is not None:
            recent = [c.at for c in history if c.at > at - span]
            until = recent[-cap] + span if len(recent) >= cap else at
            out.append(_count(rule, len(recent), cap, f"{purpose} calls in the last {label}",
                              until, at))
    if caps.min_interval is not None:
        out.append(_interval(caps.min_interval, history, at))
    return out


def _count(rule: Rule, used: int, cap: int, what: str, until: datetime,
           at: datetime) -> Verdict:
    if used < cap:
        return Verdict(rule, True, f"{used} of at most {cap} {what}", at)
    return Verdict(rule, False, f"{used} of at most {cap} {what}; allowed again from "
                   f"{until:%Y-%m-%d %H:%M} UTC", until)


def _interval(gap: timedelta, history: Sequence[Contact], at: datetime) -> Verdict:
    if not history or history[-1].at + gap <= at:
        return Verdict(Rule.MIN_INTERVAL, True, f"no call in the last {_span(gap)}", at)
    until = history[-1].at + gap
    return Verdict(Rule.MIN_INTERVAL, False, f"called {_span(at - history[-1].at)} ago; at "
                   f"least {_span(gap)} between calls", until)


def _cooldown(policy: ContactPolicy, history: Sequence[Contact], at: datetime) -> Verdict:
    worst: tuple[datetime | None, Contact] | None = None
    for contact in history:
        if contact.disposition is None or contact.disposition not in policy.cooldowns:
            continue
        rest = policy.cooldowns[contact.disposition]
        until = None if rest is None else contact.at + rest
        if until is not None and until <= at:
            continue
        if worst is None or until is None or (worst[0] is not None and until > worst[0]):
            worst = (until, contact)
    if worst is None:
        return Verdict(Rule.COOLDOWN, True, "no outcome that rests the number", at)
    until, contact = worst
    after = f"after a {contact.disposition} call on {contact.at:%Y-%m-%d %H:%M} UTC"
    if until is None:
        return Verdict(Rule.COOLDOWN, False, f"never called again {after}", None)
    return Verdict(Rule.COOLDOWN, False, f"resting until {until:%Y-%m-%d %H:%M} UTC {after}",
                   until)


def _local_day(zones: Sequence[str], at: datetime) -> tuple[datetime, datetime]:
    """The callee's calendar day around `at` (in their first zone; UTC when unknown)."""
    zone = _zone(zones[0]) if zones and zones[0] != "Etc/Unknown" else ZoneInfo("UTC")
    local = at.astimezone(zone)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + DAY  # aware arithmetic in one zone is wall-clock: next midnight


def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)  # zoneinfo caches instances itself


def _span(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    if minutes >= 48 * 60 and minutes % (24 * 60) == 0:
        return f"{minutes // (24 * 60)} d"
    if minutes >= 60:
        return f"{minutes // 60} h {minutes % 60:02d} min" if minutes % 60 else \
            f"{minutes // 60} h"
    return f"{minutes} min"
