"""Answer mode: what a media worker does with an incoming call, decided per call.

A `Planner` looks at the incoming call and returns an `AnswerPlan` (data, see
`lines.sip.protocol`). `timeline` turns the plan into timed steps, which the worker carries
out with pjsua2. The SIP softphone harness builds its virtual phones on this seam: its own
planner, or a `PlanTable` sent over the protocol (`SetPlans`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from lines.sip.protocol import AnswerPlan


@dataclass(frozen=True, slots=True, kw_only=True)
class IncomingCall:
    call_id: str  # the worker's name for it
    from_uri: str
    to_uri: str
    to_user: str  # the dialed number, as the user part of the To URI


Planner = Callable[[IncomingCall], AnswerPlan]

#: What a worker without plans does with an incoming call.
REFUSE = AnswerPlan(status=480, reason="Temporarily Unavailable")
#: What a `PlanTable` does with a number it has no plan for.
UNKNOWN_NUMBER = AnswerPlan(status=404, reason="Not Found")


class PlanTable:
    """Plans by dialed number, and one for every other number."""

    def __init__(self, plans: Mapping[str, AnswerPlan], default: AnswerPlan | None = None) -> None:
        self._plans = dict(plans)
        self._default = default or UNKNOWN_NUMBER

    def __call__(self, call: IncomingCall) -> AnswerPlan:
        return self._plans.get(call.to_user, self._default)


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """Send 180, or 183 with SDP and the prompt playing as early media."""

    early_media: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Reject:
    status: int
    reason: str | None
    reason_header: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    play: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SendDigits:
    digits: str


@dataclass(frozen=True, slots=True, kw_only=True)
class HangUpCall:
    pass


Step = Alert | Reject | Answer | SendDigits | HangUpCall


def timeline(plan: AnswerPlan) -> list[tuple[float, Step]]:
    """The plan's steps with their delays in seconds from the call's arrival, in order."""
    steps: list[tuple[float, Step]] = []
    if plan.ring_s > 0 or plan.early_media is not None:
        steps.append((0.0, Alert(early_media=plan.early_media)))
    if plan.status != 200:
        steps.append((plan.ring_s, Reject(status=plan.status, reason=plan.reason,
                                          reason_header=plan.reason_header)))
        return steps
    steps.append((plan.ring_s, Answer(play=plan.play)))
    if plan.dtmf:
        steps.append((plan.ring_s + plan.dtmf_delay_s, SendDigits(digits=plan.dtmf)))
    if plan.hang_up_after_s is not None:
        steps.append((plan.ring_s + plan.hang_up_after_s, HangUpCall()))
    return sorted(steps, key=lambda step: step[0])
