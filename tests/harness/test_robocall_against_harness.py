"""Acceptance (issue 8): a robocall campaign over SIP against the harness.

People who say "stop" or press the opt-out key are opted out and never called again;
people who talk over the robot are heard; machines get the machine treatment; a number
whose carrier plays the vacant announcement (with a final status that says nothing)
becomes `vacant`. All through the commands a QA team runs, as in the issue-7 test.
"""

from __future__ import annotations

import json
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dialer.harness.config import parse_harness
from dialer.harness.runtime import Harness
from tests.harness.test_campaign_against_harness import dialer
from tests.lines.sip.sipkit import free_udp_ports, serving
from voice.announcements import LIBRARY_DIR
from voice.tts import Tts

pytestmark = [pytest.mark.sip, pytest.mark.slow]

#: The carrier's recording: one of the library the dialer ships (voice.announcements).
VACANT_RECORDING = str(LIBRARY_DIR / "a-vacant.wav")
PHONES: dict[str, Any] = {
    "says-stop": {"kind": "person", "ring": 0.3, "talk": "12s"},  # + file: its words
    "presses-9": {"kind": "person", "ring": 0.3, "talk": "12s", "text": "Hello?",
                  "keys": "9", "keys_after": "2s"},
    "listens": {"kind": "person", "ring": 0.3, "talk": "40s", "text": "Hello?"},
    "machine": {"kind": "voicemail", "ring": 0.3,
                "text": "Hi, you have reached Sam. I can't take your call right now. "
                        "Please leave a message after the tone."},
    # a carrier that says "vacant" only in words: 480 with no cause says nothing
    "空号": {"kind": "announcement", "file": VACANT_RECORDING, "announcement": "vacant",
           "ring": 0.3, "status": 480, "q850": 0},
}
LEADS = {
    "+8613800138001": "says-stop", "+8613800138002": "presses-9",
    "+8613800138003": "listens", "+8613800138004": "machine", "+8613800138005": "空号",
}
SCRIPT: dict[str, Any] = {
    "name": "reminder", "language": "en", "opt_out_key": "9",
    "steps": [
        {"say": "Hello {name}. This is the shop, calling about the items in your cart. "
                "They are kept for you until tomorrow evening."},
        {"menu": {"prompt": "To talk to us, say agent. To stop these calls, say stop or "
                            "press nine.",
                  "keywords": {"agent": ["agent"]}, "timeout": "3s",
                  "then": {"agent": "bye"}, "no_input": "bye"}},
        {"say": "Thank you, goodbye.", "label": "bye"},
        "hangup",
        {"opt_out": "You will not be called again. Goodbye.", "label": "out"},
        "hangup",
    ],
}


def spoken(text: str, path: Path) -> str:
    """`text` in the piper voice, as a WAV file for a harness phone to say."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(Tts().render(text))
    return str(path)


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    port = free_udp_ports(2)
    phones = {**PHONES, "says-stop": {**PHONES["says-stop"],
                                      "file": spoken("Stop calling me.", tmp_path / "stop.wav")}}
    config = parse_harness({"listen": f"127.0.0.1:{port}", "workers": 2, "phones": phones,
                            "numbers": LEADS})
    with serving(config, tmp_path) as running:
        yield running


def campaign_file(folder: Path, ports: list[int], name: str) -> Path:
    (folder / "leads.csv").write_text(
        "phone,name,consent_source,consent_at\n"
        + "".join(f"{number},Sam,web,2024-05-01T00:00:00Z\n" for number in LEADS),
        encoding="utf-8")
    (folder / "script.yaml").write_text(json.dumps(SCRIPT), encoding="utf-8")
    trunks = [{"name": f"harness-{i}", "sip": f"sip:127.0.0.1:{port}", "channels": 3,
               "cps": 10} for i, port in enumerate(ports)]
    campaign = {
        "name": name, "region": "CN", "telephony": "sip", "compliance": "cn-marketing",
        "leads": {"file": "leads.csv", "source": "qa"},
        "dial": {"mode": "robocall", "max_attempts": 1, "ring_timeout": "10s",
                 "max_concurrent": 5},
        "script": "script.yaml",
        "lines": {"trunks": trunks, "pools": {"harness": [t["name"] for t in trunks]}},
    }
    path = folder / f"{name}.yaml"
    path.write_text(json.dumps(campaign, ensure_ascii=False), encoding="utf-8")
    return path


def calls_logged(log: Path, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 15  # a phone logs a call once it has ended on its side
    while True:
        lines = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
        if len(lines) >= count or time.monotonic() > deadline:
            return [json.loads(line) for line in lines]
        time.sleep(0.1)


def test_a_robocall_hears_stop_keys_machines_and_announcements(tmp_path: Path,
                                                               harness: Harness) -> None:
    db = f"sqlite:///{tmp_path / 'dialer.db'}"
    first = campaign_file(tmp_path, harness.ports, "reminder")
    run = json.loads(dialer("run", str(first), "--db", db, "--start", "2024-06-04T10:00",
                            "--json", timeout=240))
    assert run["attempts"] == len(LEADS)
    exported = dialer("export", "attempts", "--db", db, "--format", "jsonl")
    by_number = {row["e164"]: row["disposition"]
                 for row in map(json.loads, exported.splitlines())}
    assert by_number == {
        "+8613800138001": "opted_out", "+8613800138002": "opted_out",
        "+8613800138003": "completed", "+8613800138004": "answered_machine",
        "+8613800138005": "vacant",
    }, exported
    calls = calls_logged(tmp_path / "calls.jsonl", len(LEADS))
    listener = next(call for call in calls if call["dialed"].endswith("8613800138003"))
    assert listener["barge_in_ms"] is not None, listener  # it talked over the robot: it stopped

    # A second campaign on the same numbers: the opted-out are never called again (nor the
    # vacant number, known dead now).
    second = campaign_file(tmp_path, harness.ports, "reminder-again")
    dialer("run", str(second), "--db", db, "--start", "2024-06-05T10:00", "--json",
           timeout=240)
    again = calls_logged(tmp_path / "calls.jsonl", len(calls) + 2)
    called = sorted(call["dialed"][-11:] for call in again[len(calls):])
    assert called == ["13800138003", "13800138004"], again
