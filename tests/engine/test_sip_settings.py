"""A SIP campaign's backend settings: trunks, credentials, agents and media workers."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest

from dialer.config import parse_campaign
from dialer.config.campaign import Campaign
from dialer.engine.sip import MEDIA_HANDLER, SipRunOptions, sip_settings
from dialer.errors import ConfigError


def campaign(**overrides: Any) -> Campaign:
    trunk = {"name": "carrier", "sip": "sip:gw.example.net:5070", "channels": 30, "cps": 5}
    trunk.update(overrides.pop("trunk", {}))
    data: dict[str, Any] = {
        "name": "sip", "region": "CN", "telephony": "sip", "compliance": "cn-marketing",
        "dial": {"mode": "predictive", "max_lines_per_agent": 2.5},
        "agents": {"softphones": {"a1": "sip:a1@10.0.0.5", "a2": "sip:a2@10.0.0.6:5062"}},
        "lines": {"trunks": [trunk, {"name": "backup", "sip": "sip:10.1.1.1", "channels": 2,
                                     "cps": 1}],
                  "pools": {"main": ["carrier"], "spare": ["backup"]}},
    }
    data.update(overrides)
    return parse_campaign(data, "<test>")


def test_trunks_dial_the_number_at_the_trunk_host() -> None:
    settings = sip_settings(campaign())
    carrier, backup = settings.trunks
    assert carrier.target("+8613800138000") == "sip:+8613800138000@gw.example.net:5070"
    assert carrier.identity("+861012345678") == "sip:+861012345678@gw.example.net"
    assert (carrier.channels, carrier.cps, carrier.auth) == (30, 5, None)
    assert backup.target("+8613800138000") == "sip:+8613800138000@10.1.1.1"


def test_the_workers_run_the_dialers_media_handler() -> None:
    settings = sip_settings(campaign())
    assert settings.worker.handler == MEDIA_HANDLER == "dialer.media:handler"
    assert all(options.handler == MEDIA_HANDLER for options in settings.worker_options())
    # named, not imported: the engine side never loads pjsua2 (dialer.media does)
    module, _, name = MEDIA_HANDLER.partition(":")
    assert callable(getattr(importlib.import_module(module), name))


def test_agents_get_their_softphones_and_a_slot_beside_each_call() -> None:
    settings = sip_settings(campaign())
    assert dict(settings.agents) == {"a1": "sip:a1@10.0.0.5", "a2": "sip:a2@10.0.0.6:5062"}
    assert settings.reserve_agent_slots
    # 2 agents at 2.5 lines each, plus 2 talking: 7 calls, each with its agent leg: 14 slots
    assert settings.workers == 4


def test_robocalls_need_no_agent_slots() -> None:
    robo = campaign(dial={"mode": "robocall", "max_concurrent": 10}, agents={},
                    script={"name": "hi", "language": "zh",
                                   "steps": [{"say": "您好"}, "hangup"]})
    settings = sip_settings(robo)
    assert not settings.reserve_agent_slots
    assert settings.workers == 3  # 10 calls, 4 per worker
    assert sip_settings(robo, SipRunOptions(workers=7)).workers == 7


def test_credentials_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARRIER_PASSWORD", "s3cret")
    settings = sip_settings(campaign(trunk={"username": "acme",
                                            "password_env": "CARRIER_PASSWORD"}))
    auth = settings.trunks[0].auth
    assert auth is not None
    assert (auth.username, auth.password) == ("acme", "s3cret")


def test_a_missing_password_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CARRIER_PASSWORD", raising=False)
    with pytest.raises(ConfigError, match="trunk carrier: username 'acme' but no password "
                       r"\(environment variable CARRIER_PASSWORD\)"):
        sip_settings(campaign(trunk={"username": "acme", "password_env": "CARRIER_PASSWORD"}))


def test_a_password_file_is_read(tmp_path: Path) -> None:
    secret = tmp_path / "carrier.secret"
    secret.write_text("filed\n", encoding="utf-8")
    settings = sip_settings(campaign(trunk={"username": "acme", "password_file": str(secret)}))
    assert settings.trunks[0].auth is not None
    assert settings.trunks[0].auth.password == "filed"


def test_tcp_trunks_are_refused_with_the_way_out() -> None:
    with pytest.raises(ConfigError, match="trunk carrier: the SIP backend sends over UDP only"):
        sip_settings(campaign(trunk={"transport": "tcp"}))


def test_a_simulated_campaign_has_no_sip_settings() -> None:
    with pytest.raises(ConfigError, match="telephony is simulated, not sip"):
        sip_settings(campaign(telephony="simulated"))
