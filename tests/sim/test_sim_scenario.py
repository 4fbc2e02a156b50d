"""Scenario files: the shipped example, defaults, shorthands, and errors with file:line."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from dialer.errors import ConfigError
from dialer.sim import (
    DEFAULT_SIGNALS,
    Dist,
    DistKind,
    Scenario,
    default_scenario,
    flat_scenario,
    load_scenario,
    parse_scenario,
)
from rules.signals import Announcement

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "scenarios" / "cn-ecommerce.yaml"


def test_the_example_spells_out_the_defaults() -> None:
    example, default = load_scenario(EXAMPLE), default_scenario()
    for section in ("start", "population", "network", "amd", "talk_time", "script", "scripts"):
        assert getattr(example, section) == getattr(default, section), section
    assert [trunk.name for trunk in example.trunks] == ["ct-gz", "cu-gz"]
    assert example.agents.count == 20
    assert [b.reason for b in example.agents.breaks] == ["break", "lunch", "break"]


def test_defaults_describe_a_chinese_ecommerce_list() -> None:
    population = default_scenario().population
    assert population.vacant.share + population.suspended.share == pytest.approx(0.10)
    assert 0.03 <= population.busy.share <= 0.05
    assert population.answer.share == 0.25
    assert population.answer.machine_share == 0.10
    assert len(population.answer.by_local_hour or ()) == 24
    announced = {s.announcement for s in population.vacant.signals}
    assert announced == {Announcement.VACANT, None}


def test_shorthands() -> None:
    scenario = parse_scenario(
        {
            "population": {"vacant": 0.02, "busy": {"share": 0.05}},
            "talk_time": "2m",
            "agents": {"wrap_up": {"dist": "exponential", "mean": "20s", "max": "1m"}},
        }
    )
    assert scenario.population.vacant.share == 0.02
    assert scenario.population.vacant.signals == DEFAULT_SIGNALS["vacant"]
    assert scenario.population.busy.signals == DEFAULT_SIGNALS["busy"]
    assert scenario.talk_time == Dist.fixed(120)
    assert scenario.agents.wrap_up.dist is DistKind.EXPONENTIAL
    assert scenario.agents.wrap_up.max == timedelta(minutes=1)


def test_scripts_react_by_name() -> None:
    scenario = parse_scenario({"scripts": {"survey": {"completed": 0.2, "opt_out": 0.3}}})
    assert scenario.reactions("survey").opt_out == 0.3
    assert scenario.reactions("anything else") == scenario.script


def errors(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "scenario.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_scenario(path)
    return str(info.value).splitlines()


def test_errors_name_file_line_and_key(tmp_path: Path) -> None:
    lines = errors(
        tmp_path,
        """\
        population:
          busy:
            share: 0.1
            signals:
              - {sip: 486, after: {dist: uniform, min: 5s}}
          answer:
            delay: {dist: lognormal, mean: 5s}
        network:
          setup_dealy: 1s
        trunks:
          - {name: a, channels: 0}
          - {name: b, failure_windows: [{start: 1h, end: 30m}]}
        """,
    )
    assert lines == [
        f"{tmp_path / 'scenario.yaml'}:5:27: population.busy.signals[0].after.max:"
        " required for a uniform distribution",
        f"{tmp_path / 'scenario.yaml'}:7:12: population.answer.delay.sigma:"
        " required for a lognormal distribution",
        f"{tmp_path / 'scenario.yaml'}:9:3: network.setup_dealy: unknown key 'setup_dealy';"
        " did you mean 'setup_delay'?",
        f"{tmp_path / 'scenario.yaml'}:11:25: trunks[0].channels:"
        " expected a value greater than 0, got 0",
        f"{tmp_path / 'scenario.yaml'}:12:50: trunks[1].failure_windows[0].end:"
        " must be after start",
    ]


def test_shares_above_one_and_repeated_trunks_are_refused(tmp_path: Path) -> None:
    [line] = errors(tmp_path, "population:\n  vacant: 0.5\n  answer: {share: 0.5}\n")
    assert line.endswith(
        ":2:3: population: the shares and the top hourly answer share add up to 1.215 > 1"
    )  # 0.5 + 0.19 other failures + 0.5 x 1.05 at 19:00
    [line] = errors(tmp_path, "trunks: [{name: a}, {name: a}]\n")
    assert "trunks[1].name: trunk 'a' appears more than once" in line
    [line] = errors(tmp_path, "script: {completed: 0.9, opt_out: 0.2}\n")
    assert "script: the reaction shares add up to 1.25 > 1" in line


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"dist": "fixed"}, "value: required for a fixed distribution"),
        ({"dist": "fixed", "value": "1s", "sigma": 1}, "sigma: not used by a fixed distribution"),
        ({"dist": "uniform", "min": "9s", "max": "1s"}, "max: must not be less than min"),
        ({"dist": "exponential", "mean": "0s"}, "mean: must be more than 0s"),
        ({"dist": "gamma"}, "expected one of 'fixed', 'uniform', 'exponential', 'lognormal'"),
        ("soon", "expected a duration"),
    ],
)
def test_distribution_errors(value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_scenario({"talk_time": value})


def test_time_zones_and_start_are_checked() -> None:
    with pytest.raises(ConfigError, match="expected a time zone"):
        parse_scenario({"population": {"time_zones": {"+86": "Asia/Beijing"}}})
    with pytest.raises(ConfigError, match="time_zones"):
        parse_scenario({"population": {"time_zones": {"86": "Asia/Shanghai"}}})
    with pytest.raises(ConfigError, match="start"):
        parse_scenario({"start": "2024-06-03T09:00:00"})  # no offset


def test_the_flat_benchmark_model() -> None:
    scenario = flat_scenario(answer=0.3, fast_failure=0.1, talk_mean=90, wrap_up=8, agents=12)
    assert isinstance(scenario, Scenario)
    population = scenario.population
    assert population.answer.by_local_hour is None
    assert population.answer.machine_share == 0
    assert population.answer.delay == Dist.uniform(5, 20)
    assert [kind for kind, f in population.failures() if f.share] == ["busy"]
    assert population.busy.share == 0.1
    assert population.busy.signals[0].after == Dist.fixed(5)
    assert scenario.network.no_answer_timeout is None
    assert scenario.talk_time == Dist.exponential(90)
    assert (scenario.agents.count, scenario.agents.wrap_up) == (12, Dist.fixed(8))
