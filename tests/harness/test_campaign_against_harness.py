"""Acceptance (issue 7): a real-time campaign over SIP against the harness, every
disposition matching what the harness phone did.

All through the commands a QA team runs: the harness serves its phones, `dialer run` runs a
`telephony: sip` campaign whose trunks point at the harness ports and whose agents'
softphones are harness agent phones, `dialer export attempts` writes the attempt log, and
`dialer harness report --compare` must show zero mismatches.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dialer.harness.config import parse_harness
from dialer.harness.runtime import Harness
from tests.lines.sip.sipkit import free_udp_ports, serving

pytestmark = [pytest.mark.sip, pytest.mark.slow]

PHONES = {
    "customer": {"kind": "person", "ring": 0.5, "talk": "2s-3s", "text": "hello?"},
    "关机": {"kind": "announcement", "text": "您拨打的电话已关机", "announcement": "powered_off",
           "ring": 0.3},
    "空号": {"kind": "sit", "text": "您拨打的号码是空号", "announcement": "vacant", "ring": 0},
    "declines": {"kind": "reject", "ring": 0.5},
    "desk": {"kind": "agent", "talk": "1s-2s"},
}
LEADS = {
    "+8613800138001": "customer", "+8613800138002": "customer", "+8613800138003": "customer",
    "+8613800138004": "busy", "+8613800138005": "vacant", "+8613800138006": "关机",
    "+8613800138007": "空号", "+8613800138008": "declines", "+8613800138009": "ring_forever",
}
AGENTS = {"a1": "9001", "a2": "9002"}


def dialer(*args: str, timeout: float = 120) -> str:
    done = subprocess.run([sys.executable, "-m", "dialer", *args], capture_output=True,
                          text=True, timeout=timeout, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    port = free_udp_ports(2)
    config = parse_harness({"listen": f"127.0.0.1:{port}", "workers": 2, "phones": PHONES,
                            "numbers": {**LEADS, **dict.fromkeys(AGENTS.values(), "desk")}})
    with serving(config, tmp_path) as running:
        yield running


def campaign_file(folder: Path, ports: list[int]) -> Path:
    (folder / "leads.csv").write_text(
        "phone,consent_source,consent_at\n"
        + "".join(f"{number},web,2024-05-01T00:00:00Z\n" for number in LEADS),
        encoding="utf-8")
    trunks = [{"name": f"harness-{i}", "sip": f"sip:127.0.0.1:{port}", "channels": 2,
               "cps": 10} for i, port in enumerate(ports)]
    campaign = {
        "name": "qa-progressive", "region": "CN", "telephony": "sip",
        "compliance": "cn-marketing",
        "leads": {"file": "leads.csv", "source": "qa"},
        "dial": {"mode": "progressive", "max_attempts": 1, "ring_timeout": "10s"},
        # one agent on each harness worker, so an agent leg always finds a free slot
        "agents": {"softphones": {agent: f"sip:{user}@127.0.0.1:{ports[i]}"
                                  for i, (agent, user) in enumerate(AGENTS.items())},
                   "wrap_up": "0.5s"},
        "lines": {"trunks": trunks, "pools": {"harness": [t["name"] for t in trunks]}},
    }
    path = folder / "campaign.yaml"
    path.write_text(json.dumps(campaign, ensure_ascii=False), encoding="utf-8")  # JSON is YAML
    return path


def test_a_sip_campaign_against_the_harness_matches_every_phone(tmp_path: Path,
                                                               harness: Harness) -> None:
    db = f"sqlite:///{tmp_path / 'dialer.db'}"
    campaign = campaign_file(tmp_path, harness.ports)
    run = json.loads(dialer("run", str(campaign), "--db", db, "--start", "2024-06-04T10:00",
                            "--json"))
    assert run["attempts"] == len(LEADS)
    assert run["dispositions"] == {"answered_human": 3, "busy": 1, "vacant": 2,
                                   "powered_off": 1, "rejected": 1, "no_answer": 1}

    (tmp_path / "attempts.jsonl").write_text(
        dialer("export", "attempts", "--db", db, "--format", "jsonl"), encoding="utf-8")
    log = tmp_path / "calls.jsonl"
    deadline = time.monotonic() + 10  # the phones log a call once it has ended on their side
    while len(log.read_text(encoding="utf-8").splitlines()) < len(LEADS) + 3:
        assert time.monotonic() < deadline, log.read_text(encoding="utf-8")
        time.sleep(0.1)
    report = json.loads(dialer("harness", "report", "--log", str(tmp_path / "calls.jsonl"),
                               "--compare", str(tmp_path / "attempts.jsonl"), "--json"))
    assert report["mismatches"] == []
    assert report["not_received"] == []
    assert report["unexplained"] == []
    assert report["matches"] == len(LEADS)
    assert report["agent_legs"] == 3  # each answered customer went through to an agent
