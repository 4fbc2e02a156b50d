"""Why (not) call this number now? The contact rules on one number, from the store.

`explain` gathers what the claim would see for a number in a campaign (its time zones,
consent, suppressions, dead-number status and calls in every campaign) and returns every
rule's verdict and when the number becomes callable. `dialer rules explain` prints it;
the HTTP API will serve it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dialer.config.campaign import Campaign
from dialer.engine.build import contact_policy
from dialer.errors import UsageError
from dialer.store import Store
from dialer.store.dialing import consent_of
from rules.contact import Callee, Decision, decide
from rules.number_status import DEAD_STATUSES
from rules.phone import NumberParser, PhoneInfo, clean_number


@dataclass(frozen=True, slots=True, kw_only=True)
class Explanation:
    e164: str
    campaign: str
    at: datetime
    zones: tuple[str, ...]
    is_lead: bool  # the number is one of the campaign's leads
    lead_state: str | None
    segment: str | None  # the lead's segment ('' when none took it)
    priority: int | None
    decision: Decision


def explain(store: Store, campaign: Campaign, number: str, at: datetime) -> Explanation:
    """Every contact rule's verdict on calling `number` for `campaign` at `at`."""
    info = _parse(number, campaign.region)
    policy = contact_policy(campaign)
    with store.read() as uow:
        campaign_id = uow.campaign_id(campaign.name)
        lead = uow.find_lead(campaign_id, info.e164) if campaign_id is not None else None
        suppressions = [s for s in uow.list_suppressions(e164=info.e164)
                        if s.campaign in (None, campaign.name)]
        status = uow.get_number_status(info.e164)
        history = uow.contact_history([info.e164], since=at - policy.lookback,
                                      forever=policy.forever).get(info.e164, [])
    dead = None
    if status is not None and status.status in DEAD_STATUSES:
        dead = (status.status.value, status.recheck_at)
    callee = Callee(
        zones=lead.timezones if lead is not None else info.timezones, history=tuple(history),
        suppressed=suppressions[0].reason if suppressions else None, dead=dead,
        **consent_of(lead.attributes if lead is not None else {}),
    )
    return Explanation(e164=info.e164, campaign=campaign.name, at=at, zones=callee.zones,
                       is_lead=lead is not None, lead_state=lead.state if lead else None,
                       segment=lead.segment if lead else None,
                       priority=lead.priority if lead else None,
                       decision=decide(policy, callee, at))


def _parse(number: str, region: str) -> PhoneInfo:
    cleaned = clean_number(number)
    if isinstance(cleaned, str):
        parsed = NumberParser(region).parse(cleaned)
        if isinstance(parsed, PhoneInfo):
            return parsed
        why = parsed.name.lower().replace("_", " ")
    else:
        why = cleaned.name.lower().replace("_", " ")
    raise UsageError(f"{number!r} is not a valid phone number in region {region} ({why})")
