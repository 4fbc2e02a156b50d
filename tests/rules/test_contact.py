"""Contact rules: caps, cooldowns, consent, and the earliest callable moment."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from types import MappingProxyType

from hypothesis import given, settings
from hypothesis import strategies as st

from rules.contact import (
    Callee,
    Caps,
    Consent,
    Contact,
    ContactPolicy,
    Rule,
    decide,
    verdicts,
)
from rules.windows import CallingWindows

T0 = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)  # 11:00 in Shanghai, a Tuesday
SHANGHAI = ("Asia/Shanghai",)
H = timedelta(hours=1)
CN_HOURS = ((time(9), time(12)), (time(14), time(18)))
CN_WINDOWS = CallingWindows(name="cn-marketing", weekly=(CN_HOURS,) * 5 + ((), ()),
                            holiday_country="CN")


def policy(**kwargs: object) -> ContactPolicy:
    base: dict[str, object] = {"name": "test", "purpose": "marketing"}
    base.update(kwargs)
    return ContactPolicy(**base)  # type: ignore[arg-type]


def calls(*hours_ago: float, disposition: str = "no_answer", purpose: str = "marketing",
          campaign: str = "a") -> tuple[Contact, ...]:
    return tuple(Contact(at=T0 - timedelta(hours=h), purpose=purpose, campaign=campaign,
                         disposition=disposition) for h in hours_ago)


def verdict(rules: ContactPolicy, callee: Callee, rule: Rule, at: datetime = T0):
    return next(v for v in verdicts(rules, callee, at) if v.rule is rule)


def test_a_callee_with_no_history_and_no_rules_is_callable() -> None:
    decision = decide(policy(), Callee(zones=SHANGHAI), T0)
    assert decision.ok
    assert decision.next_at == T0
    assert all(v.ok for v in decision.verdicts)


def test_per_day_counts_the_callees_calendar_day_and_reopens_at_their_midnight() -> None:
    rules = policy(caps=Caps(per_day=2))
    callee = Callee(zones=SHANGHAI, history=calls(1, 2))  # 10:00 and 09:00 local today
    v = verdict(rules, callee, Rule.PER_DAY)
    assert not v.ok
    assert v.until == datetime(2026, 11, 24, 16, 0, tzinfo=UTC)  # midnight in Shanghai
    assert "2 of at most 2" in v.reason
    yesterday = Callee(zones=SHANGHAI, history=calls(12, 13))  # 23:00 and 22:00 yesterday
    assert verdict(rules, yesterday, Rule.PER_DAY).ok


def test_caps_count_only_calls_of_the_same_purpose_across_campaigns() -> None:
    rules = policy(caps=Caps(per_24_hours=2))
    mixed = calls(1, campaign="a") + calls(2, campaign="b") + calls(3, purpose="service")
    assert not verdict(rules, Callee(zones=SHANGHAI, history=mixed), Rule.PER_24_HOURS).ok
    service_only = calls(1, 2, purpose="service")
    assert verdict(rules, Callee(zones=SHANGHAI, history=service_only), Rule.PER_24_HOURS).ok
    unknown = calls(1, 2, purpose="")  # from before purposes were recorded: counts
    assert not verdict(rules, Callee(zones=SHANGHAI, history=unknown), Rule.PER_24_HOURS).ok


def test_rolling_caps_reopen_when_the_oldest_counted_call_leaves_the_span() -> None:
    rules = policy(caps=Caps(per_24_hours=2, per_30_days=3))
    callee = Callee(zones=SHANGHAI, history=calls(20, 5, 24 * 10))
    v24 = verdict(rules, callee, Rule.PER_24_HOURS)
    assert v24.until == T0 - 20 * H + 24 * H
    v30 = verdict(rules, callee, Rule.PER_30_DAYS)
    assert v30.until == T0 - 24 * 10 * H + timedelta(days=30)


def test_min_interval_and_unanswered_per_day() -> None:
    rules = policy(caps=Caps(min_interval=6 * H, unanswered_per_day=2))
    callee = Callee(zones=SHANGHAI, history=calls(2) + calls(1, disposition="answered_human"))
    interval = verdict(rules, callee, Rule.MIN_INTERVAL)
    assert not interval.ok
    assert interval.until == T0 - H + 6 * H
    assert verdict(rules, callee, Rule.UNANSWERED_PER_DAY).ok  # one unanswered today
    missed = Callee(zones=SHANGHAI, history=calls(1.5, 1, disposition="busy"))
    assert not verdict(rules, missed, Rule.UNANSWERED_PER_DAY).ok


def test_cooldowns_rest_the_number_after_an_outcome_or_for_ever() -> None:
    rules = policy(cooldowns=MappingProxyType({"rejected": timedelta(days=7),
                                               "abandoned": timedelta(hours=72),
                                               "opted_out": None}))
    rejected = Callee(zones=SHANGHAI, history=calls(24, disposition="rejected"))
    v = verdict(rules, rejected, Rule.COOLDOWN)
    assert not v.ok
    assert v.until == T0 - 24 * H + timedelta(days=7)
    assert "rejected" in v.reason
    old = Callee(zones=SHANGHAI, history=calls(24 * 8, disposition="rejected"))
    assert verdict(rules, old, Rule.COOLDOWN).ok
    never = Callee(zones=SHANGHAI, history=calls(24 * 400, disposition="opted_out")
                   + calls(1, disposition="abandoned"))
    v = verdict(rules, never, Rule.COOLDOWN)
    assert not v.ok
    assert v.until is None
    assert decide(rules, never, T0).next_at is None


def test_consent_required_for_the_purpose() -> None:
    rules = policy(consent_required=True)
    assert not verdict(rules, Callee(zones=SHANGHAI), Rule.CONSENT).ok
    given_consent = Callee(zones=SHANGHAI, consent=Consent(source="app", at=T0 - H))
    assert verdict(rules, given_consent, Rule.CONSENT).ok
    later = Callee(zones=SHANGHAI, consent=Consent(source="app", at=T0 + H))
    v = verdict(rules, later, Rule.CONSENT)
    assert not v.ok
    assert v.until == T0 + H
    broken = Callee(zones=SHANGHAI, consent_problem="the lead's consent has no consent_at")
    assert "consent_at" in verdict(rules, broken, Rule.CONSENT).reason


def test_suppression_and_dead_numbers() -> None:
    suppressed = Callee(zones=SHANGHAI, suppressed="opted out by key press")
    assert decide(policy(), suppressed, T0).next_at is None
    vacant = Callee(zones=SHANGHAI, dead=("vacant", T0 + 48 * H))
    decision = decide(policy(), vacant, T0)
    assert not decision.ok
    assert decision.next_at == T0 + 48 * H


def test_decide_moves_past_every_rule_to_the_first_moment_all_allow() -> None:
    # Called at 10:00 local; 6 h apart lands at 16:00, inside the afternoon window.
    rules = policy(windows=(CN_WINDOWS,), caps=Caps(min_interval=6 * H))
    callee = Callee(zones=SHANGHAI, history=calls(1))
    decision = decide(rules, callee, T0)
    assert not decision.ok
    assert decision.next_at == T0 + 5 * H
    # Called at 10:00 and it is 12:30: the interval ends at 16:00, in the window.
    # With 8 h apart it ends at 18:00 local, when the window closes: next day 09:00.
    rules = policy(windows=(CN_WINDOWS,), caps=Caps(min_interval=8 * H))
    decision = decide(rules, callee, T0)
    assert decision.next_at == datetime(2026, 11, 25, 1, 0, tzinfo=UTC)


# Properties over random histories, caps and moments.

_DISPOSITIONS = st.sampled_from(["no_answer", "busy", "answered_human", "rejected",
                                 "abandoned", "opted_out", None])
_HISTORY = st.lists(st.tuples(st.floats(0, 24 * 40), _DISPOSITIONS,
                              st.sampled_from(["marketing", "service", ""])), max_size=12)
_CAPS = st.builds(Caps, per_day=st.none() | st.integers(1, 4),
                  per_24_hours=st.none() | st.integers(1, 4),
                  per_30_days=st.none() | st.integers(1, 8),
                  min_interval=st.none() | st.integers(1, 48).map(lambda h: h * H),
                  unanswered_per_day=st.none() | st.integers(1, 4))
_COOLDOWNS = st.dictionaries(st.sampled_from(["rejected", "abandoned", "opted_out"]),
                             st.none() | st.integers(1, 24 * 10).map(lambda h: h * H))
_ZONES = st.sampled_from([("Asia/Shanghai",), ("America/New_York", "America/Chicago"),
                          ("Europe/London",), ("Asia/Urumqi", "Asia/Shanghai")])


@st.composite
def _cases(draw: st.DrawFn) -> tuple[ContactPolicy, Callee, datetime]:
    at = T0 + timedelta(hours=draw(st.floats(-24 * 30, 24 * 30)))
    history = tuple(Contact(at=at - timedelta(hours=h), purpose=p, campaign="x", disposition=d)
                    for h, d, p in draw(_HISTORY))
    windows = (CN_WINDOWS,) if draw(st.booleans()) else ()
    rules = policy(caps=draw(_CAPS), cooldowns=MappingProxyType(draw(_COOLDOWNS)),
                   windows=windows)
    return rules, Callee(zones=draw(_ZONES), history=history), at


def _counted(rules: ContactPolicy, callee: Callee, at: datetime, span: timedelta) -> int:
    return sum(1 for c in callee.history if c.purpose in ("", rules.purpose)
               and at - span < c.at <= at)


@settings(max_examples=150, deadline=None)
@given(_cases())
def test_an_allowed_call_breaks_no_cap_or_cooldown(case: tuple[ContactPolicy, Callee,
                                                              datetime]) -> None:
    rules, callee, at = case
    if not decide(rules, callee, at).ok:
        return
    caps = rules.caps
    if caps.per_24_hours is not None:
        assert _counted(rules, callee, at, timedelta(hours=24)) < caps.per_24_hours
    if caps.per_30_days is not None:
        assert _counted(rules, callee, at, timedelta(days=30)) < caps.per_30_days
    if caps.min_interval is not None:
        assert _counted(rules, callee, at, caps.min_interval) == 0
    for contact in callee.history:
        if contact.at <= at and contact.purpose in ("", rules.purpose) and \
                contact.disposition in rules.cooldowns:
            rest = rules.cooldowns[contact.disposition]
            assert rest is not None
            assert contact.at + rest <= at


@settings(max_examples=150, deadline=None)
@given(_cases(), st.lists(st.floats(0, 1, exclude_min=True, exclude_max=True), max_size=4))
def test_next_at_is_the_first_moment_every_rule_allows(
    case: tuple[ContactPolicy, Callee, datetime], fractions: list[float]
) -> None:
    rules, callee, at = case
    decision = decide(rules, callee, at)
    if decision.ok or decision.next_at is None:
        return
    assert decision.next_at > at
    assert decide(rules, callee, decision.next_at).ok
    for fraction in fractions:
        between = at + (decision.next_at - at) * fraction
        if between < decision.next_at:  # a fraction near 1 may round onto it
            assert not decide(rules, callee, between).ok
