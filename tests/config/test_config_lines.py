"""Line pools: trunks, pools, failover and caller IDs."""

from __future__ import annotations

import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from dialer.config import Tier, Transport, load_lines, parse_lines
from dialer.errors import ConfigError


def lines_error(folder: Path, text: str) -> str:
    path = folder / "lines.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_lines(path)
    return str(info.value)


def test_defaults_and_values() -> None:
    lines = parse_lines(
        {
            "trunks": [
                {
                    "name": "a",
                    "sip": "sips:gw.example.com:5061;transport=tls",
                    "transport": "tls",
                    "channels": 4,
                    "cps": 0.5,
                    "cost_per_minute": 0.012,
                }
            ],
            "pools": {"main": ["a"]},
        }
    )
    trunk = lines.trunks[0]
    assert trunk.codecs == ("PCMA", "PCMU")
    assert (trunk.tier, trunk.transport) == (Tier.STANDARD, Transport.TLS)
    assert trunk.cost_per_minute == Decimal("0.012")
    assert lines.failover.failure_threshold == 0.10
    assert lines.failover_chain == ("main",)


def test_unknown_trunk_in_pool(tmp_path: Path) -> None:
    message = lines_error(
        tmp_path,
        """\
        trunks:
          - {name: carrier-a, sip: "sip:a.example.com", channels: 10, cps: 1}
        pools:
          main: [carrier-a, carrier-b]
        failover:
          chain: [main, spare]
        """,
    )
    assert message.splitlines() == [
        f"{tmp_path}/lines.yaml:4:21: pools.main[1]: unknown trunk 'carrier-b';"
        " did you mean 'carrier-a'?",
        f"{tmp_path}/lines.yaml:6:17: failover.chain[1]: unknown pool 'spare'; defined: 'main'",
    ]


def test_password_key_is_refused_and_its_value_never_shown(tmp_path: Path) -> None:
    message = lines_error(
        tmp_path,
        """\
        trunks:
          - name: a
            sip: sip:a.example.com
            username: dialer
            password: hunter2-secret
            channels: 10
            cps: 1
        pools: {main: [a]}
        """,
    )
    assert message == (
        f"{tmp_path}/lines.yaml:5:5: trunks[0].password: secrets are never kept in config files;"
        " put the password in an environment variable and give its name as 'password_env'"
    )
    assert "hunter2" not in message


def test_secret_values_are_masked(tmp_path: Path) -> None:
    message = lines_error(
        tmp_path,
        """\
        trunks:
          - {name: a, sip: "sip:a.example.com", password_env: 12345, channels: 1, cps: 1}
        pools: {main: [a]}
        """,
    )
    assert "trunks[0].password_env: expected a string, got '***'" in message
    assert "12345" not in message


def test_bad_trunk_fields(tmp_path: Path) -> None:
    message = lines_error(
        tmp_path,
        """\
        trunks:
          - {name: a, sip: "http://a.example.com", channels: 0, cps: 1, transport: sctp}
          - {name: a, sip: "sip:b.example.com:70000", channels: 1, cps: 1}
        pools: {main: [a]}
        """,
    )
    lines = message.splitlines()
    assert "lines.yaml:2:20: trunks[0].sip: expected a SIP URI 'sip:host[:port]'" in lines[0]
    assert "lines.yaml:2:54: trunks[0].channels: expected a value greater than 0" in lines[1]
    assert "trunks[0].transport: expected one of 'udp', 'tcp', 'tls', got 'sctp'" in lines[2]
    assert "lines.yaml:3:20: trunks[1].sip: expected a SIP URI" in lines[3]


def test_duplicate_trunks_and_caller_ids(tmp_path: Path) -> None:
    message = lines_error(
        tmp_path,
        """\
        trunks:
          - {name: a, sip: "sip:a.example.com", channels: 1, cps: 1}
          - {name: a, sip: "sip:b.example.com", channels: 1, cps: 1}
        pools: {main: [a]}
        caller_ids:
          - {number: "+861012345678", pool: service, kind: fixed_line}
          - {number: "+86 10 1234 5678", pool: marketing, kind: fixed_line}
        """,
    )
    assert message.splitlines() == [
        f"{tmp_path}/lines.yaml:3:12: trunks[1].name: trunk name 'a' appears more than once",
        f"{tmp_path}/lines.yaml:7:14: caller_ids[1].number: this number appears more than once",
    ]


def test_caller_ids_are_e164_and_never_echoed(tmp_path: Path) -> None:
    message = lines_error(
        tmp_path,
        """\
        trunks:
          - {name: a, sip: "sip:a.example.com", channels: 1, cps: 1}
        pools: {main: [a]}
        caller_ids:
          - {number: +8613800138000, pool: service, kind: mobile}
          - {number: "13800138000", pool: service, kind: mobile}
          - {number: "+861", pool: service, kind: mobile, daily_cap: 0}
        """,
    )
    lines = message.splitlines()
    assert len(lines) == 4
    assert (
        "lines.yaml:5:14: caller_ids[0].number: expected a valid phone number in E.164" in lines[0]
    )
    assert "caller_ids[1].number" in lines[1]
    assert "caller_ids[2].number" in lines[2]
    assert "caller_ids[2].daily_cap" in lines[3]
    assert "138" not in message


def test_failover_min_calls_within_window(tmp_path: Path) -> None:
    message = lines_error(
        tmp_path,
        """\
        trunks:
          - {name: a, sip: "sip:a.example.com", channels: 1, cps: 1}
        pools: {main: [a]}
        failover: {min_calls: 200, window_calls: 100, failure_threshold: 1.5}
        """,
    )
    assert "lines.yaml:4:66: failover.failure_threshold: expected a value of at most 1" in message
    fixed = message  # the cross-field check runs once the fields are valid
    assert "failover.min_calls" not in fixed
    with pytest.raises(ConfigError, match=r"failover\.min_calls: must not exceed window_calls"):
        parse_lines(
            {
                "trunks": [{"name": "a", "sip": "sip:a", "channels": 1, "cps": 1}],
                "pools": {"main": ["a"]},
                "failover": {"min_calls": 200},
            }
        )


def test_a_password_can_come_from_a_secrets_file_beside_the_lines_file(tmp_path: Path) -> None:
    (tmp_path / "carrier-a.secret").write_text("s3cret\n", encoding="utf-8")
    (tmp_path / "lines.yaml").write_text(textwrap.dedent("""\
        trunks:
          - {name: a, sip: "sip:a.example.com", password_file: carrier-a.secret,
             channels: 1, cps: 1}
          - {name: b, sip: "sip:b.example.com", password_file: missing.secret,
             channels: 1, cps: 1}
        pools: {main: [a, b]}
        """), encoding="utf-8")
    lines = load_lines(tmp_path / "lines.yaml")
    assert lines.trunk("a").password() == "s3cret"
    assert "s3cret" not in repr(lines)
    with pytest.raises(ConfigError, match="trunk b: cannot read its password file"):
        lines.trunk("b").password()


def test_a_password_env_and_file_together_are_refused(tmp_path: Path) -> None:
    message = lines_error(
        tmp_path,
        """\
        trunks:
          - {name: a, sip: "sip:a.example.com", password_env: A_PASS, password_file: a.secret,
             channels: 1, cps: 1}
        pools: {main: [a]}
        """,
    )
    assert "not both" in message
