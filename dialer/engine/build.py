"""Building an engine for a campaign from its configuration."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import timedelta
from types import MappingProxyType
from typing import assert_never

from dialer.config.campaign import PACER_PATTERN, Campaign, DialMode, Purpose
from dialer.config.campaign import RetryRule as RetryConfig
from dialer.config.compliance import weekly_hours
from dialer.config.lines import CallerIdPool
from dialer.engine.baselines import RatioPacer, VicidialAdaptPacer
from dialer.engine.calls import Outcomes
from dialer.engine.core import Engine, EngineSettings
from dialer.engine.lines import LONG_AGO, LinePlan
from dialer.engine.pacing import Pacer, PreviewPacer, ProgressivePacer, RobocallPacer
from dialer.engine.predictive import PredictivePacer, PredictiveSettings
from dialer.errors import UsageError
from lines.callerid import NumberSpec
from lines.health import HealthSettings
from lines.trunks import TrunkSettings
from rules.abandonment import AbandonWindow
from rules.contact import Caps as ContactCaps
from rules.contact import ContactPolicy
from rules.dispositions import Disposition
from rules.retry import RetryPolicy, RetryRule
from rules.segments import Segment
from rules.windows import CallingWindows

#: Lines for a campaign that names none: the simulated network's default trunk.
DEFAULT_CHANNELS = {"sim-trunk": 30}
DEFAULT_CALLER_IDS = ("+862160000000",)


def build_engine(
    campaign: Campaign, campaign_id: int, new_id: Callable[[], str] | None = None
) -> Engine:
    """An engine for `campaign`; `new_id` makes call ids (default: random UUIDs)."""
    segments = segments_of(campaign)
    settings = EngineSettings(
        campaign_id=campaign_id,
        campaign=campaign.name,
        mode=campaign.dial.mode,
        max_attempts=campaign.dial.max_attempts,
        ring_timeout=campaign.dial.ring_timeout,
        abandon_after=campaign.dial.abandon_after,
        script=campaign.script.name if campaign.script is not None else None,
        max_lines_per_agent=campaign.dial.max_lines_per_agent,
        purpose=campaign.purpose.value,
        segments=MappingProxyType({segment.name: segment for segment in segments}),
    )
    return Engine(
        settings=settings,
        pacer=pacer_for(campaign),
        lines=line_plan(campaign),
        outcomes=Outcomes(retry=retry_policy(campaign), segments=segments),
        new_id=new_id or (lambda: uuid.uuid4().hex),
        abandonment=abandon_window(campaign),
    )


def pacer_for(campaign: Campaign) -> Pacer:
    mode = campaign.dial.mode
    if mode is DialMode.PROGRESSIVE:
        return ProgressivePacer()
    if mode is DialMode.ROBOCALL:
        return RobocallPacer(campaign.dial.max_concurrent or 1)
    if mode is DialMode.PREDICTIVE:
        return pacer_named(campaign.dial.pacer, campaign)
    if mode is DialMode.PREVIEW:
        return PreviewPacer()
    assert_never(mode)


#: The pacers `--pacer` and `dial.pacer` name (`ratio:<L>` takes a lines-per-agent level).
PACER_NAMES = ("predictive", "progressive", "ratio:<L>", "vicidial-adapt",
               "vicidial-adapt:average")


def pacer_named(name: str, campaign: Campaign) -> Pacer:
    """The pacer called `name` (see `PACER_NAMES`), set up for `campaign`; the names a
    campaign file accepts (`dial.pacer`), no others."""
    if name.startswith("ratio:") and not re.fullmatch(PACER_PATTERN, name):
        raise UsageError(f"pacer {name!r}: the ratio is a dial level of at least 1, written "
                         "as a plain number, for example ratio:1.5")
    if not re.fullmatch(PACER_PATTERN, name):
        raise UsageError(f"unknown pacer {name!r}; expected one of {', '.join(PACER_NAMES)}")
    if name == "predictive":
        return PredictivePacer(predictive_settings(campaign))
    if name == "progressive":
        return ProgressivePacer()
    if name.startswith("vicidial-adapt"):
        return VicidialAdaptPacer(variant="average" if name.endswith("average") else "hard")
    return RatioPacer(float(name.removeprefix("ratio:")))


def abandon_cap(campaign: Campaign) -> float:
    """The campaign's abandon-rate target, never above its profile's cap."""
    cap = campaign.dial.abandon_rate_target
    profile = campaign.compliance.abandon
    return min(cap, profile.cap) if profile is not None else cap


def abandon_window(campaign: Campaign) -> AbandonWindow:
    """Abandoned calls counted over the profile's window (30 days when it sets none)."""
    profile = campaign.compliance.abandon
    if profile is None:
        return AbandonWindow(window=timedelta(days=30))
    return AbandonWindow(window=profile.window,
                         false_positive_share=profile.amd_false_positives)


def predictive_settings(campaign: Campaign) -> PredictiveSettings:
    return PredictiveSettings(cap=abandon_cap(campaign),
                              grace=campaign.dial.abandon_after.total_seconds())


def contact_policy(campaign: Campaign) -> ContactPolicy:
    """The rules the claim applies to every lead: the profile's, with the campaign's own
    calling hours on top (a call must be inside both)."""
    profile = campaign.compliance
    holidays = profile.holidays
    windows = [CallingWindows(
        name=profile.name, weekly=weekly_hours(profile.windows),
        holiday_country=holidays.country if holidays else None,
        holiday_subdivision=holidays.subdivision if holidays else None,
        call_on_holidays=holidays.call_on_holidays if holidays else True,
        make_up_workdays_are_workdays=holidays.make_up_workdays_are_workdays if holidays
        else False,
    )]
    if campaign.calling_hours is not None:
        windows.append(CallingWindows(name=f"campaign {campaign.name}",
                                      weekly=weekly_hours(campaign.calling_hours)))
    caps = profile.caps
    return ContactPolicy(
        name=profile.name, purpose=campaign.purpose.value,
        windows=tuple(w for w in windows if w.weekly is not None or w.holiday_country),
        caps=ContactCaps(per_day=caps.per_day, per_24_hours=caps.per_24_hours,
                         per_30_days=caps.per_30_days, min_interval=caps.min_interval,
                         unanswered_per_day=caps.unanswered_per_day),
        cooldowns=MappingProxyType({d.value: rest for d, rest in profile.cooldowns.items()}),
        consent_required=profile.consent_required,
    )


def segments_of(campaign: Campaign) -> tuple[Segment, ...]:
    """The campaign's segments as `rules.segments` applies them; a retired script is
    replaced by the campaign's own."""
    retired = set(campaign.retired_scripts)
    segments = []
    for config in campaign.segments:
        then = config.then
        script = then.script.name if then.script is not None else None
        segments.append(Segment(
            name=config.name, when=config.conditions(), priority=then.priority,
            tier=then.tier.value if then.tier is not None else None,
            script=None if script in retired else script,
            caller_ids=then.caller_ids.value if then.caller_ids is not None else None,
        ))
    return tuple(segments)


def line_plan(campaign: Campaign) -> LinePlan:
    """The campaign's trunks as a failover chain of pools (each trunk's health judged by
    the `failover` settings), and its caller IDs."""
    if campaign.lines is None:
        name, channels = next(iter(DEFAULT_CHANNELS.items()))
        return LinePlan.single(name, channels, DEFAULT_CALLER_IDS)
    lines = campaign.lines
    failover = lines.failover
    # The engine reports a probe's success at its first sign of progress (ringing, early
    # media, an answer: seconds after the dial), so probes go one at a time and five must
    # pass: a round stops at its first failure (about one failed call per round on a sick
    # trunk), a 40%-failing trunk passes a round 8% of the time, and a healed trunk is
    # back within a cool-off and half a minute (scripts/bench_lines.py). A burst of more
    # than 20% of the last `min_calls` calls failing takes a trunk out at once (out within
    # 30 s or 25 calls of turning 40% bad on every benchmark seed; about one needless trip
    # in 20 trunk-hours of healthy traffic, which only moves calls to the next pool).
    health = HealthSettings(threshold=failover.failure_threshold, min_calls=failover.min_calls,
                            window_calls=failover.window_calls, window=failover.window,
                            cool_off=failover.cool_off, probe_calls=5, max_probes_in_flight=1,
                            burst_factor=2.0)
    trunks = [TrunkSettings(name=t.name, channels=t.channels, cps=t.cps, tier=t.tier.value,
                            weight=t.weight) for t in lines.trunks]
    wanted = CallerIdPool.SERVICE if campaign.purpose is not Purpose.MARKETING else \
        CallerIdPool.MARKETING
    allowed = (CallerIdPool.MARKETING,) if wanted is CallerIdPool.MARKETING else \
        tuple(CallerIdPool)  # a service number never calls for marketing
    numbers = [NumberSpec(number=c.number, sub_pool=c.pool, kind=c.kind,
                          added_on=c.added_on or LONG_AGO, daily_cap=c.daily_cap)
               for c in lines.caller_ids if c.pool in allowed]
    return LinePlan.chain(  # no numbers of its own: the default number, in turn
        trunks, {name: tuple(members) for name, members in lines.pools.items()},
        lines.failover_chain, health, DEFAULT_CALLER_IDS, numbers=numbers,
        sub_pool=wanted.value)


def retry_policy(campaign: Campaign) -> RetryPolicy:
    overrides: dict[Disposition | str, RetryRule] = {
        disposition: _rule(rule) for disposition, rule in campaign.retry.items()
    }
    return RetryPolicy.with_overrides(overrides, max_attempts=campaign.dial.max_attempts)


def _rule(config: RetryConfig) -> RetryRule:
    if config.dead:
        return RetryRule(dead=True)
    if config.after is not None:
        return RetryRule(after=config.after)
    return RetryRule(after_min=config.after_min, after_max=config.after_max)
