"""A simulated campaign over several days and countries keeps every contact rule, as the
exported attempt log shows (issue 5's acceptance, end to end through the CLI)."""

from __future__ import annotations

import itertools
import json
import random
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays
import pytest
from typer.testing import CliRunner

from dialer.cli import app
from dialer.store import SuppressionScope, open_store

pytestmark = pytest.mark.slow

PROFILE = """\
name: test-multi
source: a test profile with every kind of rule
windows:
  weekdays: ["09:00-12:00", "13:00-20:00"]
  sat: ["10:00-14:00"]
holidays: {country: CN, call_on_holidays: false}
caps: {per_day: 2, per_24_hours: 2, min_interval: 3h, per_30_days: 4, unanswered_per_day: 2}
cooldowns: {rejected: 7d, abandoned: 72h, opted_out: forever}
consent_required: true
"""
CAMPAIGN = """\
name: multi
purpose: marketing
region: CN
allowed_number_types: [mobile, fixed_line_or_mobile]
leads: {file: leads.csv, source: mixed}
dial: {mode: progressive, max_attempts: 8, ring_timeout: 25s}
agents: {count: 6}
compliance: profile.yaml
retry:
  no_answer: {after: 1h}
  busy: {after: 10m}
  powered_off: {after: 1h}
  unreachable: {after: 1h}
  rejected: {after: 1h}
"""
SCENARIO = """\
agents: {count: 6, shift_end: null, opt_out_share: 0.1}   # around the clock: the rules decide
"""
WEEKDAY_HOURS = ((time(9), time(12)), (time(13), time(20)))
WEEKLY = {**dict.fromkeys(range(5), WEEKDAY_HOURS), 5: ((time(10), time(14)),), 6: ()}
CN_HOLIDAYS = holidays.country_holidays("CN", years=2024)
DAYS = ["2024-06-03T00:00:00+08:00", "2024-06-04T00:00:00+08:00",  # Monday, Tuesday
        "2024-06-08T00:00:00+08:00", "2024-06-10T00:00:00+08:00"]  # Saturday; a holiday


def numbers(rng: random.Random) -> list[str]:
    cn = [f"+86138{rng.randrange(10**8):08d}" for _ in range(70)]
    us = [f"+1{area}555{rng.randrange(100, 200):04d}" for area in (212, 312, 303, 415)
          for _ in range(15)]
    uk = [f"+447911{rng.randrange(10**6):06d}" for _ in range(20)]
    return sorted(set(cn + us + uk))


def write_campaign(folder: Path, rng: random.Random) -> list[str]:
    rows = ["phone,consent_source,consent_at"]
    leads = numbers(rng)
    for number in leads:
        consent = rng.random() < 0.85
        rows.append(f"{number},{'web' if consent else ''},"
                    f"{'2024-05-01T00:00:00Z' if consent else ''}")
    (folder / "leads.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (folder / "profile.yaml").write_text(PROFILE, encoding="utf-8")
    (folder / "campaign.yaml").write_text(CAMPAIGN, encoding="utf-8")
    (folder / "scenario.yaml").write_text(SCENARIO, encoding="utf-8")
    return leads


def cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result.stdout


def in_window(at: datetime, zone: str) -> bool:
    local = at.astimezone(ZoneInfo(zone))
    if local.date() in CN_HOLIDAYS:
        return False
    moment = time(local.hour, local.minute, local.second, local.microsecond)
    return any(start <= moment < end for start, end in WEEKLY[local.weekday()])


def test_a_multi_day_campaign_across_countries_keeps_every_rule(tmp_path: Path) -> None:
    rng = random.Random(5)
    leads = write_campaign(tmp_path, rng)
    db = f"sqlite:///{tmp_path / 'dialer.db'}"
    campaign = str(tmp_path / "campaign.yaml")
    suppressed_at: dict[str, datetime] = {}
    for day, start in enumerate(DAYS):
        report = json.loads(cli("run", campaign, "--db", db, "--json", "--hours", "24",
                                "--start", start, "--seed", str(day + 1),
                                "--scenario", str(tmp_path / "scenario.yaml")))
        if day == 0:
            assert report["attempts"] > 50
            assert report["skipped_by_rule"]["consent"] > 0
            assert report["skipped_by_rule"]["window"] > 0
        store = open_store(db)
        try:  # between days, some callees opt out through another channel
            with store.write() as uow:
                for number in rng.sample(leads, 5):
                    at = datetime.fromisoformat(start) + timedelta(hours=24)
                    if uow.add_suppression(number, scope=SuppressionScope.GLOBAL, campaign=None,
                                           reason="complaint by phone", actor="test", now=at):
                        suppressed_at[number] = at
        finally:
            store.close()
    store = open_store(db)
    try:
        with store.read() as uow:
            told_agents = {s.e164: s.created_at for s in uow.list_suppressions()
                           if s.reason.startswith("opted out to agent")}
    finally:
        store.close()
    assert told_agents, "no callee opted out to an agent"
    for number, at in told_agents.items():
        suppressed_at[number] = min(at, suppressed_at.get(number, at))
    exported = cli("export", "attempts", "--db", db, "--format", "jsonl")
    attempts = [json.loads(line) for line in exported.splitlines()]
    consent = _consent(tmp_path / "leads.csv")
    by_number: dict[str, list[tuple[datetime, dict[str, object]]]] = defaultdict(list)
    for row in attempts:
        at = datetime.fromisoformat(str(row["placed_at"]).replace("Z", "+00:00"))
        by_number[str(row["e164"])].append((at, row))
        zones = row["callee_timezones"]
        assert isinstance(zones, list)
        assert zones
        assert all(in_window(at, zone) for zone in zones), (at, zones)
        assert consent[str(row["e164"])], "dialed without consent"
        assert row["purpose"] == "marketing"
        if row["e164"] in suppressed_at:
            assert at <= suppressed_at[str(row["e164"])], "dialed after an opt-out"
    assert {z for row in attempts for z in row["callee_timezones"]} >= {  # type: ignore[attr-defined]
        "Asia/Shanghai", "America/New_York", "America/Los_Angeles", "Europe/London"}
    for calls in by_number.values():
        _check_caps(sorted(calls, key=lambda c: c[0]))
    placed_days = {c[0].astimezone(ZoneInfo("Asia/Shanghai")).date() for c in
                   [x for calls in by_number.values() for x in calls]}
    assert date(2024, 6, 10) not in placed_days  # Dragon Boat Festival: no calls in China


def _check_caps(calls: list[tuple[datetime, dict[str, object]]]) -> None:
    times = [at for at, _ in calls]
    zone = ZoneInfo(str(calls[0][1]["callee_timezones"][0]))  # type: ignore[index]
    per_day: dict[date, int] = defaultdict(int)
    for at in times:
        per_day[at.astimezone(zone).date()] += 1
    assert max(per_day.values()) <= 2
    for earlier, later in itertools.pairwise(times):
        assert later - earlier >= timedelta(hours=3)
    for i, at in enumerate(times):
        assert sum(1 for t in times[: i + 1] if at - t < timedelta(days=30)) <= 4
        assert sum(1 for t in times[: i + 1] if at - t < timedelta(hours=24)) <= 2
    for at, row in calls:
        rest = {"rejected": timedelta(days=7), "abandoned": timedelta(hours=72)}.get(
            str(row["disposition"]))
        if row["disposition"] == "opted_out":
            assert at == times[-1], "called again after opting out"
        elif rest is not None:
            assert all(t >= at + rest for t in times if t > at), "called during a cooldown"


def _consent(path: Path) -> dict[str, bool]:
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    return {line.split(",")[0]: bool(line.split(",")[1]) for line in lines}
