"""Applying tuning changes to a campaign file: round-trip, validated, backed up."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

import pytest

from dialer.config import load_campaign
from dialer.config.patch import apply_changes
from dialer.errors import ConfigError
from rules.tuning_hours import Change

CAMPAIGN = """\
# A campaign with comments everywhere.
name: c1   # the name
purpose: service
compliance: cn-marketing     # hours come from here
calling_hours:               # ours, within the profile's
  weekdays: ["09:00-12:00"]
stopped_sources: [old]       # stopped by hand
retry:
  busy: {after: 10m}
"""


def hours(**ranges: tuple[str, ...]) -> Change:
    return Change(field="calling_hours", op="set", value=MappingProxyType(ranges), why="w")


def test_set_and_add_keep_comments_order_and_quoting(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(CAMPAIGN, encoding="utf-8")
    backup = apply_changes(path, [
        hours(weekdays=("09:00-10:00", "11:00-12:00"), sat=("10:00-11:00",)),
        Change(field="stopped_sources", op="add", value=("old", "vendor-b"), why="w"),
        Change(field="retired_scripts", op="add", value=("loud",), why="w"),
    ])
    assert backup.read_text(encoding="utf-8") == CAMPAIGN
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[:5] == CAMPAIGN.splitlines()[:5]
    assert lines[5:8] == ['  weekdays: ["09:00-10:00", "11:00-12:00"]',
                          '  sat: ["10:00-11:00"]',
                          "stopped_sources: [old, vendor-b] # stopped by hand"]
    assert lines[-3:] == ["retry:", "  busy: {after: 10m}", "retired_scripts: [loud]"]
    campaign = load_campaign(path)
    assert campaign.stopped_sources == ("old", "vendor-b")
    assert campaign.retired_scripts == ("loud",)


def test_new_keys_go_beside_the_key_they_belong_with(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("name: c1\nscript:\n    name: s\n    language: zh\n    steps: [hangup]\n"
                    "compliance: cn-marketing\nretry: {}\n", encoding="utf-8")
    apply_changes(path, [hours(weekdays=("14:00-15:00",)),
                         Change(field="retired_scripts", op="add", value=("x",), why="w")])
    assert path.read_text(encoding="utf-8") == (
        "name: c1\nscript:\n    name: s\n    language: zh\n    steps: [hangup]\n"
        "retired_scripts: [x]\n"
        'compliance: cn-marketing\ncalling_hours:\n    weekdays: ["14:00-15:00"]\n'
        "retry: {}\n")


def test_an_invalid_result_leaves_the_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(CAMPAIGN, encoding="utf-8")
    with pytest.raises(ConfigError, match="calling_hours"):
        apply_changes(path, [hours(weekdays=("09:00-12:00", "10:00-11:00"))])
    assert path.read_text(encoding="utf-8") == CAMPAIGN
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]


def test_a_file_that_is_not_a_mapping_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("- just\n- a list\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="expected a mapping"):
        apply_changes(path, [hours(weekdays=("09:00-12:00",))])
    path.write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not readable as YAML"):
        apply_changes(path, [hours(weekdays=("09:00-12:00",))])
