"""Building an engine for a campaign from its configuration."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from dialer.config.campaign import Campaign, DialMode, Purpose
from dialer.config.campaign import RetryRule as RetryConfig
from dialer.config.lines import CallerIdPool
from dialer.engine.calls import Outcomes
from dialer.engine.core import Engine, EngineSettings
from dialer.engine.lines import LinePlan
from dialer.engine.pacing import Pacer, ProgressivePacer, RobocallPacer
from dialer.errors import UsageError
from rules.dispositions import Disposition
from rules.retry import RetryPolicy, RetryRule

#: Lines for a campaign that names none: the simulated network's default trunk.
DEFAULT_CHANNELS = {"sim-trunk": 30}
DEFAULT_CALLER_IDS = ("+862160000000",)


def build_engine(
    campaign: Campaign, campaign_id: int, new_id: Callable[[], str] | None = None
) -> Engine:
    """An engine for `campaign`; `new_id` makes call ids (default: random UUIDs)."""
    settings = EngineSettings(
        campaign_id=campaign_id,
        campaign=campaign.name,
        mode=campaign.dial.mode,
        max_attempts=campaign.dial.max_attempts,
        ring_timeout=campaign.dial.ring_timeout,
        abandon_after=campaign.dial.abandon_after,
        script=campaign.script.name if campaign.script is not None else None,
    )
    return Engine(
        settings=settings,
        pacer=pacer_for(campaign),
        lines=line_plan(campaign),
        outcomes=Outcomes(retry=retry_policy(campaign)),
        new_id=new_id or (lambda: uuid.uuid4().hex),
    )


def pacer_for(campaign: Campaign) -> Pacer:
    mode = campaign.dial.mode
    if mode is DialMode.PROGRESSIVE:
        return ProgressivePacer()
    if mode is DialMode.ROBOCALL:
        return RobocallPacer(campaign.dial.max_concurrent or 1)
    raise UsageError(f"dial mode {mode.value!r} is not available yet; "
                     "use 'progressive' or 'robocall'")


def line_plan(campaign: Campaign) -> LinePlan:
    if campaign.lines is None:
        return LinePlan(channels=dict(DEFAULT_CHANNELS), caller_ids=DEFAULT_CALLER_IDS)
    channels = {trunk.name: trunk.channels for trunk in campaign.lines.trunks}
    wanted = CallerIdPool.SERVICE if campaign.purpose is not Purpose.MARKETING else \
        CallerIdPool.MARKETING
    numbers = tuple(c.number for c in campaign.lines.caller_ids if c.pool is wanted)
    return LinePlan(channels=channels, caller_ids=numbers or DEFAULT_CALLER_IDS)


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
