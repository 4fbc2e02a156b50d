"""What we know about whether a number can be reached, and when to look again.

A number's status comes from carriers' signalling (SIP codes, SIT tones, early-media
announcements), from lookup services, and from our own call outcomes. One record per
number, shared by every campaign. The recheck policy decides when a status stops
blocking the number: vacant and suspended numbers are not redialed until a recheck says
otherwise; powered-off and unreachable ones are looked at again after 2-4 hours.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta


class NumberStatus(enum.StrEnum):
    """The reachability of a number, as last observed."""

    VACANT = "vacant"  # 空号: the number does not exist
    SUSPENDED = "suspended"  # 停机: service suspended by the carrier
    POWERED_OFF = "powered_off"  # 关机
    UNREACHABLE = "unreachable"  # 不在服务区 / 无法接通
    BUSY = "busy"  # 正在通话中
    NORMAL = "normal"
    RISKY = "risky"  # silent, flagged as a complainer or a honeypot
    UNKNOWN = "unknown"


#: Statuses that keep a number out of the ready queue until their recheck is due.
DEAD_STATUSES: frozenset[NumberStatus] = frozenset({NumberStatus.VACANT, NumberStatus.SUSPENDED})


@dataclass(frozen=True, slots=True, kw_only=True)
class NumberStatusRecord:
    """One observation of a number's status.

    `recheck_at` is when the status should be verified again; None means never
    (a normal number needs no recheck).
    """

    e164: str
    status: NumberStatus
    observed_at: datetime
    source: str
    recheck_at: datetime | None = None
    detail: str = ""

    def blocks_dialing(self, now: datetime) -> bool:
        """True while this record keeps the number from being dialed (a known-dead number)."""
        if self.status not in DEAD_STATUSES:
            return False
        return self.recheck_at is None or now < self.recheck_at


@dataclass(frozen=True, slots=True, kw_only=True)
class RecheckPolicy:
    """How long each status holds before it is looked at again.

    Powered-off and unreachable numbers are rechecked somewhere between
    `powered_off_min` and `powered_off_max` later; the point inside that range is
    spread deterministically by number so that a batch of numbers observed together
    does not come due in one burst.
    """

    vacant: timedelta | None = timedelta(days=30)
    suspended: timedelta | None = timedelta(days=7)
    powered_off_min: timedelta = timedelta(hours=2)
    powered_off_max: timedelta = timedelta(hours=4)
    busy: timedelta = timedelta(minutes=10)
    risky: timedelta | None = timedelta(days=90)

    def recheck_at(self, e164: str, status: NumberStatus, observed_at: datetime) -> datetime | None:
        """When a number observed in `status` at `observed_at` is due for a recheck."""
        delay: timedelta | None
        if status is NumberStatus.VACANT:
            delay = self.vacant
        elif status is NumberStatus.SUSPENDED:
            delay = self.suspended
        elif status in (NumberStatus.POWERED_OFF, NumberStatus.UNREACHABLE):
            span = self.powered_off_max - self.powered_off_min
            delay = self.powered_off_min + span * _spread(e164)
        elif status is NumberStatus.BUSY:
            delay = self.busy
        elif status is NumberStatus.RISKY:
            delay = self.risky
        else:
            delay = None
        return None if delay is None else observed_at + delay

    def record(
        self, e164: str, status: NumberStatus, observed_at: datetime, source: str, detail: str = ""
    ) -> NumberStatusRecord:
        """A record for a new observation, with its recheck time filled in by this policy."""
        return NumberStatusRecord(
            e164=e164,
            status=status,
            observed_at=observed_at,
            source=source,
            recheck_at=self.recheck_at(e164, status, observed_at),
            detail=detail,
        )


def _spread(key: str) -> float:
    """A stable fraction in [0, 1) derived from `key` (not Python's salted hash)."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64
