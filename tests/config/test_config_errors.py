"""Invalid files: every problem names the file, the line and column, and the key path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from dialer.config import ComplianceProfile, load_campaign, load_compliance, load_yaml
from dialer.errors import ConfigError

VALID_LINES = """\
trunks:
  - name: a
    sip: sip:a.example.com
    channels: 10
    cps: 1
pools:
  main: [a]
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def campaign_error(folder: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_campaign(write(folder, "campaign.yaml", text))
    return str(info.value)


def test_wrong_enum_value(tmp_path: Path) -> None:
    message = campaign_error(
        tmp_path,
        """\
        name: demo
        compliance: cn-marketing
        dial:
          mode: predictiv
        """,
    )
    assert message == (
        f"{tmp_path}/campaign.yaml:4:9: dial.mode: expected one of 'preview', 'progressive',"
        " 'predictive', 'robocall', got 'predictiv'; did you mean 'predictive'?"
    )


def test_missing_required_field_points_at_the_parent_mapping(tmp_path: Path) -> None:
    message = campaign_error(
        tmp_path,
        """\
        # a campaign without a name
        description: nameless
        compliance: cn-marketing
        """,
    )
    assert message.endswith("campaign.yaml:2:1: name: field required")


def test_unknown_key_suggests_the_known_one(tmp_path: Path) -> None:
    message = campaign_error(
        tmp_path,
        """\
        name: demo
        compliance: cn-marketing
        dial:
          max_atempts: 3
        """,
    )
    assert "campaign.yaml:4:3: dial.max_atempts: unknown key 'max_atempts';" in message
    assert "did you mean 'max_attempts'?" in message


def test_wrong_type(tmp_path: Path) -> None:
    message = campaign_error(
        tmp_path,
        """\
        name: demo
        compliance: cn-marketing
        dial:
          max_attempts: many
        agents: 5
        """,
    )
    assert message.splitlines() == [
        f"{tmp_path}/campaign.yaml:4:17: dial.max_attempts: expected an integer, got 'many'",
        f"{tmp_path}/campaign.yaml:5:9: agents: expected a mapping, got 5",
    ]


def test_bad_duration(tmp_path: Path) -> None:
    message = campaign_error(
        tmp_path,
        """\
        name: demo
        compliance: cn-marketing
        dial: {ring_timeout: 25 seconds}
        """,
    )
    assert "campaign.yaml:3:22: dial.ring_timeout: expected a duration such as '90s'" in message
    assert "got '25seconds'" in message or "got '25 seconds'" in message


def test_bad_time_range(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "house.yaml",
        """\
        name: house
        source: our policy
        windows:
          weekdays: ["09:00-12:00", "18:00-14:00"]
          mon: ["10:00-11:00"]
          sat: ["9-5"]
          sun: ["10:00-13:00", "12:00-14:00"]
        """,
    )
    with pytest.raises(ConfigError) as info:
        load_compliance(path)
    assert str(info.value).splitlines() == [
        f"{path}:4:29: windows.weekdays[1]: the range must end after it starts, got '18:00-14:00'",
        f"{path}:6:9: windows.sat[0]: expected a time of day 'HH:MM' (00:00-23:59), got '9'",
    ]


def test_overlapping_windows_and_a_day_given_twice(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "house.yaml",
        """\
        name: house
        source: our policy
        windows:
          weekdays: ["09:00-12:00"]
          mon: ["10:00-11:00"]
          sun: ["10:00-13:00", "12:00-14:00"]
        """,
    )
    with pytest.raises(ConfigError) as info:
        load_compliance(path)
    assert str(info.value).splitlines() == [
        f"{path}:5:3: windows.mon: 'weekdays' already gives the hours of mon",
        f"{path}:6:24: windows.sun[1]: 12:00-14:00 overlaps 10:00-13:00",
    ]


def test_robocall_without_script_points_at_script(tmp_path: Path) -> None:
    message = campaign_error(
        tmp_path,
        """\
        name: demo
        compliance: cn-marketing
        dial:
          mode: robocall
          max_concurrent: 10
        """,
    )
    assert message == f"{tmp_path}/campaign.yaml:1:1: script: required when dial.mode is 'robocall'"


def test_every_problem_is_listed_one_per_line_in_file_order(tmp_path: Path) -> None:
    message = campaign_error(
        tmp_path,
        """\
        name: demo
        purpose: sales
        compliance: cn-marketing
        dial:
          mode: robocall
          max_attempts: 0
        retry:
          no_anser: {after: 1h}
          busy: {after: 1h, dead: true}
        """,
    )
    lines = message.splitlines()
    assert [line.split(": ")[1] for line in lines] == [
        "purpose",
        "dial.max_attempts",
        "retry.no_anser",
        "retry.busy",
    ]
    assert lines[2].endswith("did you mean 'no_answer'?")
    assert ":6:17: dial.max_attempts: expected a value greater than 0, got 0" in lines[1]


def test_yaml_syntax_error(tmp_path: Path) -> None:
    message = campaign_error(
        tmp_path,
        """\
        name: demo
        dial:
          mode: [progressive
        compliance: cn-marketing
        """,
    )
    assert message.startswith(f"{tmp_path}/campaign.yaml:4:11: YAML syntax error: ")


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    message = campaign_error(tmp_path, "# campaigns\n- name: a\n- name: b\n")
    assert message == (
        f"{tmp_path}/campaign.yaml:2:1: expected a mapping of settings at the top of the file"
    )
    assert "empty" in campaign_error(tmp_path, "# nothing here\n")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nowhere\.yaml: no such file"):
        load_campaign(tmp_path / "nowhere.yaml")


def test_an_invalid_referenced_file_fails_the_whole_campaign(tmp_path: Path) -> None:
    write(tmp_path, "lines.yaml", VALID_LINES.replace("channels: 10", "channels: lots"))
    message = campaign_error(
        tmp_path,
        """\
        name: demo
        compliance: cn-marketing
        lines: lines.yaml
        """,
    )
    assert message.splitlines() == [
        f"{tmp_path}/campaign.yaml:3:8: lines: 'lines.yaml' is invalid:",
        f"    {tmp_path}/lines.yaml:4:15: trunks[0].channels: expected an integer, got 'lots'",
    ]


def test_a_missing_referenced_file_fails_the_whole_campaign(tmp_path: Path) -> None:
    message = campaign_error(
        tmp_path,
        """\
        name: demo
        compliance: ./house.yaml
        script: scripts/robot.yaml
        """,
    )
    assert "campaign.yaml:2:13: compliance: './house.yaml' is invalid:\n" in message
    assert f"\n    {tmp_path}/house.yaml: no such file\n" in message
    assert "campaign.yaml:3:9: script: 'scripts/robot.yaml' is invalid:" in message


def test_valid_references_load(tmp_path: Path) -> None:
    write(tmp_path, "lines.yaml", VALID_LINES)
    path = write(tmp_path, "campaign.yaml", "name: demo\ncompliance: us-tcpa\nlines: lines.yaml\n")
    campaign = load_campaign(path)
    assert campaign.lines is not None
    assert campaign.lines.trunks[0].name == "a"


def test_generic_load_yaml_reports_the_same_way(tmp_path: Path) -> None:
    path = write(tmp_path, "profile.yaml", "name: p\nsource: s\ncaps: {per_day: -1}\n")
    with pytest.raises(
        ConfigError,
        match=r"profile\.yaml:3:17: caps\.per_day: expected a value greater than 0, got -1",
    ):
        load_yaml(path, ComplianceProfile)
