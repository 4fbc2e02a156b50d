"""The disposition of an attempt, from what the network and the voice pipeline reported.

Two pure functions, one per way a call ends: `classify_unanswered` for calls that never
reached 200 OK, `classify_answered` for calls that did. Both are total: every input maps to
exactly one `Disposition`, and neither raises.

Unanswered calls: the first rule that decides wins, in this order.

1. Early media that said the network failed the call (`network`: a SIT no-circuit or
   reorder, the 450 Hz congestion tone): `network_error`, whatever the announcement, the
   cause or the status say. Such a tone is about the route, not the number, so it must
   neither mark the number (vacant, unreachable) nor burn the lead; it counts against the
   trunk, and a later attempt may well get through.

2. An early-media announcement classified with confidence. Chinese carriers play
   空号/停机/关机/无法接通/正在通话中 and then send an uninformative final code, so the
   recording is the better witness. `Announcement.UNKNOWN` is ignored (never a guess).

   | Announcement  | Disposition  |
   |---------------|--------------|
   | VACANT        | vacant       |
   | SUSPENDED     | suspended    |
   | POWERED_OFF   | powered_off  |
   | UNREACHABLE   | unreachable  |
   | BUSY          | busy         |

3. The Q.850 cause from the Reason header, when present and listed here. Causes 16 and 31
   (normal clearing) and every unlisted cause say nothing, and fall through to the status.

   | Q.850 cause                               | Disposition   |
   |-------------------------------------------|---------------|
   | 1 unallocated number, 22 number changed   | vacant        |
   | 17 user busy                              | busy          |
   | 18 no user responding                     | unreachable   |
   | 19 no answer from user (user alerted)     | no_answer     |
   | 20 subscriber absent                      | powered_off   |
   | 21 call rejected                          | rejected      |
   | 27, 34, 38, 41, 42, 47 (network trouble)  | network_error |

4. The final SIP status.

   | SIP status                                  | Disposition                         |
   |---------------------------------------------|-------------------------------------|
   | None (the call never left: no channel,      | failed                              |
   | worker crashed, command errored)            |                                     |
   | 404, 410, 484, 604                          | vacant                              |
   | 486, 600                                    | busy                                |
   | 480                                         | no_answer if it rang, else          |
   |                                             | unreachable                         |
   | 487 (our CANCEL at the ring timeout)        | no_answer                           |
   | 603 and every other 6xx                     | rejected                            |
   | 408, every 5xx                              | network_error                       |
   | 401, 403, 407 (our account or trunk refused)| network_error                       |
   | 415, 488, 606 (media negotiation)           | network_error                       |
   | every other 4xx                             | network_error                       |
   | 3xx (a redirect; we do not follow them)     | network_error                       |
   | 1xx, 2xx, anything outside 100-699          | failed                              |

   Why other 4xx are `network_error`: the unlisted 4xx codes (400, 405, 420, 482, 483,
   485, 491, ...) refuse the request itself, for reasons of routing or of our own
   signalling. They say nothing about the callee, so they must neither burn the lead
   nor mark the number; counting them against the trunk lets a misconfigured trunk fail
   over. A final 1xx/2xx on an unanswered call is an inconsistent report from our own
   backend, hence `failed`.

Answered calls: see `classify_answered`.

Trunk health: `TRUNK_FAILURES` is the set of dispositions that count against the trunk
that carried the call. Only `network_error` does; the callee's behaviour (busy, no answer,
rejected, vacant, ...) never does, and neither does `failed` (our side).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from rules.dispositions import Disposition
from rules.signals import Announcement, AnswerKind

D = Disposition

_BY_ANNOUNCEMENT: Mapping[Announcement, Disposition] = MappingProxyType(
    {
        Announcement.VACANT: D.VACANT,
        Announcement.SUSPENDED: D.SUSPENDED,
        Announcement.POWERED_OFF: D.POWERED_OFF,
        Announcement.UNREACHABLE: D.UNREACHABLE,
        Announcement.BUSY: D.BUSY,
    }
)

_BY_Q850: Mapping[int, Disposition] = MappingProxyType(
    {
        1: D.VACANT,
        22: D.VACANT,
        17: D.BUSY,
        18: D.UNREACHABLE,
        19: D.NO_ANSWER,
        20: D.POWERED_OFF,
        21: D.REJECTED,
        27: D.NETWORK_ERROR,
        34: D.NETWORK_ERROR,
        38: D.NETWORK_ERROR,
        41: D.NETWORK_ERROR,
        42: D.NETWORK_ERROR,
        47: D.NETWORK_ERROR,
    }
)

_BY_SIP_STATUS: Mapping[int, Disposition] = MappingProxyType(
    {
        404: D.VACANT,
        410: D.VACANT,
        484: D.VACANT,
        604: D.VACANT,
        486: D.BUSY,
        600: D.BUSY,
        487: D.NO_ANSWER,
        603: D.REJECTED,
        415: D.NETWORK_ERROR,  # media negotiation: listed because 606 would read as 6xx
        488: D.NETWORK_ERROR,
        606: D.NETWORK_ERROR,
    }
)

#: Dispositions that count against the health of the trunk that carried the call.
TRUNK_FAILURES: frozenset[Disposition] = frozenset({D.NETWORK_ERROR})

#: SIP statuses classified `network_error` that still say nothing about the trunk:
#: 606 is the callee's own device refusing every media offer, wherever it came from.
_CALLEE_SIDE_STATUSES: frozenset[int] = frozenset({606})


def classify_unanswered(
    *,
    sip_status: int | None,
    q850_cause: int | None,
    announcement: Announcement | None,
    rang: bool,
    network: bool = False,
) -> Disposition:
    """The disposition of a call that ended without being answered.

    `sip_status` is the final response code (None when the call never left us),
    `q850_cause` the cause from the Reason header if any, `announcement` what the
    early-media classifier heard, `rang` whether the callee was alerted (180 Ringing), and
    `network` whether early media said the network failed the call. The precedence and
    the tables are in the module docstring. Never raises.
    """
    if network:
        return D.NETWORK_ERROR
    if announcement is not None and announcement in _BY_ANNOUNCEMENT:
        return _BY_ANNOUNCEMENT[announcement]
    if q850_cause is not None and q850_cause in _BY_Q850:
        return _BY_Q850[q850_cause]
    return _by_sip_status(sip_status, rang=rang)


def _by_sip_status(sip_status: int | None, *, rang: bool) -> Disposition:
    """The SIP-status table of the module docstring."""
    if sip_status is None:
        return D.FAILED
    if sip_status in _BY_SIP_STATUS:
        return _BY_SIP_STATUS[sip_status]
    if sip_status == 480:  # temporarily unavailable: a phone that rang just went unanswered
        return D.NO_ANSWER if rang else D.UNREACHABLE
    if 600 <= sip_status <= 699:
        return D.REJECTED
    if 300 <= sip_status <= 599:
        return D.NETWORK_ERROR
    return D.FAILED


def classify_answered(
    *,
    answer: AnswerKind | None,
    abandoned: bool,
    opted_out: bool,
    transferred: bool,
    completed: bool,
    lost: bool = False,
) -> Disposition:
    """The disposition of a call that was answered (200 OK).

    The first true flag wins, in this order: `opted_out` (an opt-out must never be lost
    under another outcome), `abandoned` (nor an abandoned call), `lost` (our side lost the
    call: a media worker crashed, the backend never ended it; `failed`), `transferred`,
    `completed`. With none set, the
    call is `answered_machine` when `answer` is `AnswerKind.MACHINE`, and
    `answered_human` otherwise: an unsure or missing AMD verdict is treated as a person,
    the safe side for abandonment and opt-out rules. Never raises.
    """
    if opted_out:
        return D.OPTED_OUT
    if abandoned:
        return D.ABANDONED
    if lost:
        return D.FAILED
    if transferred:
        return D.TRANSFERRED
    if completed:
        return D.COMPLETED
    if answer is AnswerKind.MACHINE:
        return D.ANSWERED_MACHINE
    return D.ANSWERED_HUMAN


def is_trunk_failure(disposition: Disposition, sip_status: int | None) -> bool:
    """True if this outcome should count against the trunk that carried the call.

    Only dispositions in `TRUNK_FAILURES` count, and among those not a 606 (the callee's
    device refused every media offer: a fact about the callee, not the trunk).
    """
    if disposition not in TRUNK_FAILURES:
        return False
    return sip_status is None or sip_status not in _CALLEE_SIDE_STATUSES
