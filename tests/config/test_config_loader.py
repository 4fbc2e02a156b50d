"""Reading YAML: encodings, YAML dialect, positions, text and dict entry points."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from dialer.config import Campaign, ComplianceProfile, load_yaml, load_yaml_text, parse_campaign
from dialer.config.document import parse_yaml
from dialer.config.fields import STRICT_KEYS, Duration
from dialer.errors import ConfigError

PROFILE = "name: 测试\nsource: 公司规定\nwindows:\n  weekdays: [09:00-12:00, 14:00-18:00]\n"


def test_utf8_with_bom_and_gb18030_are_read(tmp_path: Path) -> None:
    for encoding in ("utf-8", "utf-8-sig", "gb18030"):
        path = tmp_path / f"{encoding}.yaml"
        path.write_bytes(PROFILE.encode(encoding))
        profile = load_yaml(path, ComplianceProfile)
        assert (profile.name, profile.source) == ("测试", "公司规定")


def test_undecodable_bytes_name_the_encodings_tried(tmp_path: Path) -> None:
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"name: \x81\x20\xff\xfe")
    with pytest.raises(
        ConfigError, match=r"binary\.yaml: not text in a supported encoding \(UTF-8 or GB18030\)"
    ):
        load_yaml(path, ComplianceProfile)


def test_a_folder_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a folder"):
        load_yaml(tmp_path, ComplianceProfile)


def test_yaml_dialect_keeps_region_codes_and_times_as_text() -> None:
    document = parse_yaml("a: NO\nb: no\nc: 14:00\nd: true\ne: 010\nf: 1.5\ng: 0x10\n", "t.yaml")
    assert document.data == {
        "a": "NO",
        "b": "no",
        "c": "14:00",
        "d": True,
        "e": "010",
        "f": 1.5,
        "g": 16,
    }


def test_positions_of_keys_and_values() -> None:
    document = parse_yaml("dial:\n  mode: x\nlist:\n  - a\n  - {b: 1}\n", "t.yaml")
    assert (document.values[("dial", "mode")].line, document.values[("dial", "mode")].column) == (
        2,
        9,
    )
    assert document.keys[("dial", "mode")].column == 3
    assert document.values[("list", 1, "b")].line == 5


def test_duplicate_keys_are_errors_but_merges_may_override() -> None:
    with pytest.raises(
        ConfigError, match=r"t\.yaml:3:3: dial\.mode: duplicate key \(first on line 2\)"
    ):
        parse_yaml("dial:\n  mode: a\n  mode: b\n", "t.yaml")
    document = parse_yaml("base: &b {x: 1, y: 2}\nover:\n  <<: *b\n  y: 3\n", "t.yaml")
    assert document.data["over"] == {"x": 1, "y": 3}


def test_unsafe_tags_are_refused() -> None:
    with pytest.raises(
        ConfigError, match=r"t\.yaml:1:4: YAML tag .*python/object:os.system. is not supported"
    ):
        parse_yaml("a: !!python/object:os.system {}\n", "t.yaml")


def test_recursive_alias_is_refused() -> None:
    with pytest.raises(ConfigError, match="refers to itself"):
        parse_yaml("a: &x [1, *x]\n", "t.yaml")


def test_text_entry_point_names_its_source_and_refuses_file_references() -> None:
    text = "name: api-campaign\ncompliance: us-tcpa\nlines: lines.yaml\n"
    with pytest.raises(ConfigError) as info:
        load_yaml_text(text, Campaign, "upload")
    assert str(info.value).startswith(
        "upload:3:8: lines: 'lines.yaml' refers to a file, but these settings did not come from"
    )
    campaign = load_yaml_text(
        "name: api\ncompliance: us-tcpa\ndial: {mode: predictive}\n", Campaign, "upload"
    )
    assert campaign.region == "CN"


def test_dict_entry_point_reports_key_paths_without_lines() -> None:
    with pytest.raises(ConfigError) as info:
        parse_campaign(
            {
                "name": "x",
                "compliance": "us-tcpa",
                "region": "XX",
                "allowed_number_types": ["mobile", "unknown"],
            },
            "api",
        )
    assert str(info.value).splitlines() == [
        "api: region: expected a region code phonenumbers knows, such as 'CN' or 'US', got 'XX'",
        "api: allowed_number_types: 'unknown' is not a type of number one may dial",
    ]
    assert parse_campaign({"name": "x", "compliance": "us-tcpa", "region": "us"}).region == "US"


def test_unsafe_scalar_tags_are_refused() -> None:
    with pytest.raises(
        ConfigError, match=r"t\.yaml:1:4: YAML syntax error: could not determine a constructor"
    ):
        parse_yaml("a: !!python/name:os.system ''\n", "t.yaml")


def test_values_under_secret_keys_are_masked_in_every_message() -> None:
    @dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
    class WithToken:
        __pydantic_config__ = STRICT_KEYS

        api_token: Duration
        password_hint: int

    with pytest.raises(ConfigError) as info:
        load_yaml_text("api_token: s3cr3t\npassword_hint: hunter2\n", WithToken, "t.yaml")
    assert str(info.value).splitlines() == [
        "t.yaml:1:12: api_token: expected a duration such as '90s', '10m', '2h', '7d' or"
        " '1h30m', or a number of seconds, got '***'",
        "t.yaml:2:16: password_hint: expected an integer, got '***'",
    ]
