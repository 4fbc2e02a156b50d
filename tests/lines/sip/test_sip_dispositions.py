"""Dispositions from real signalling: sipp plays a far end per case, `SipBackend` places the
call, and its events become a disposition the way the engine makes one.

The engine keeps `rang` (a `CallRinging` came) and `announcement` (from `EarlyMediaHeard`)
on its `Call`, and `Outcomes.disposition_of` turns the `CallEnded` into a disposition with
`rules.classify`; `engine_disposition` does the same with the engine's own classes. The
worker here runs the default media handler, which recognises nothing, so early media is
reported as `Announcement.UNKNOWN` only, which the classifier ignores: the 183 +
announcement + 404 case rests on the status and cause. (Tones heard by the dialer's own
handler are in test_sip_findings.)
A 200 with no RTP after it is never reported as answered: the call ends with `no_media`,
the trunk's `network_error` (the backend's watch is shortened to 1 s here).

One backend and one sipp per case, all started once for the module: each case has its own
trunk pointing at its own sipp.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sipkit import SCENARIOS, Sipp, engine_disposition

from lines.sip import SipBackend, SipSettings, SipTrunk
from lines.telephony import (
    CallAnswered,
    CallEnded,
    CallEvent,
    CallRequest,
    CallRinging,
    EarlyMediaHeard,
    Party,
)
from rules.dispositions import Disposition as D
from rules.signals import Announcement

pytestmark = pytest.mark.sip

NUMBER = "+15550001234"
Q850 = "Reason: Q.850;cause={};text=\"{}\""


@dataclass(frozen=True, slots=True, kw_only=True)
class Case:
    """One far end, and what the engine should conclude from calling it."""

    name: str
    scenario: str  # a file in scenarios/, or "builtin:uas" for one of sipp's own
    keys: dict[str, str] = field(default_factory=dict)
    args: tuple[str, ...] = ()
    ring_timeout_s: float = 10.0
    disposition: D
    status: int
    q850: int | None = None
    rang: bool = False
    early_media: bool = False
    ended_by: Party = Party.NETWORK
    no_media: bool = False


def reject(name: str, code: int, phrase: str, disposition: D, *,
           cause: tuple[int, str] | None = None, ring: bool = False) -> Case:
    """A far end that answers the INVITE with `code` (after a 180 if `ring`), with a
    Q.850 Reason header if `cause` is given."""
    keys = {"CODE": str(code), "REASON": phrase,
            "EXTRA_HEADERS": Q850.format(*cause) if cause else ""}
    return Case(name=name, scenario="ring_then_reject.xml" if ring else "reject.xml",
                keys=keys, disposition=disposition, status=code,
                q850=cause[0] if cause else None, rang=ring)


def announcement(name: str, code: int, phrase: str, cause: tuple[int, str],
                 disposition: D) -> Case:
    """A far end that plays a recording as early media (183) for a second, then fails."""
    keys = {"CODE": str(code), "REASON": phrase, "CAUSE": str(cause[0]),
            "CAUSE_TEXT": cause[1]}
    return Case(name=name, scenario="early_media.xml", keys=keys, args=("-d", "1000"),
                disposition=disposition, status=code, q850=cause[0], rang=True,
                early_media=True)


CASES = [
    reject("404", 404, "Not Found", D.VACANT),
    reject("404-cause-1", 404, "Not Found", D.VACANT, cause=(1, "Unallocated number")),
    reject("410", 410, "Gone", D.VACANT),
    reject("480-not-rung", 480, "Temporarily Unavailable", D.UNREACHABLE),
    reject("480-rang", 480, "Temporarily Unavailable", D.NO_ANSWER, ring=True),
    reject("480-cause-20", 480, "Temporarily Unavailable", D.POWERED_OFF,
           cause=(20, "Subscriber absent")),
    reject("484", 484, "Address Incomplete", D.VACANT),
    reject("486", 486, "Busy Here", D.BUSY),
    reject("486-cause-17", 486, "Busy Here", D.BUSY, cause=(17, "User busy")),
    reject("503", 503, "Service Unavailable", D.NETWORK_ERROR),
    # normal clearing says nothing about the callee: the status decides
    reject("503-cause-16", 503, "Service Unavailable", D.NETWORK_ERROR,
           cause=(16, "Normal call clearing")),
    reject("603", 603, "Decline", D.REJECTED),
    reject("603-rang-cause-21", 603, "Decline", D.REJECTED, cause=(21, "Call rejected"),
           ring=True),
    Case(name="487-our-ring-timeout", scenario="ring_forever.xml", ring_timeout_s=1.0,
         disposition=D.NO_ANSWER, status=487, rang=True, ended_by=Party.US),
    announcement("183-announcement-404", 404, "Not Found", (1, "Unallocated number"),
                 D.VACANT),
    # the announcement itself is not classified (UNKNOWN): the cause decides
    announcement("183-announcement-480-cause-20", 480, "Temporarily Unavailable",
                 (20, "Subscriber absent"), D.POWERED_OFF),
    # sipp's uas answers and sends no RTP: our worker hangs up, for the trunk's failure
    Case(name="200-no-media", scenario="builtin:uas", disposition=D.NETWORK_ERROR,
         status=200, rang=True, no_media=True),
]


class Recorder:
    """The backend's sink: every event, and a bounded wait for a call's end."""

    def __init__(self) -> None:
        self.events: list[CallEvent] = []
        self._changed = threading.Condition()

    def __call__(self, event: CallEvent) -> None:
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def until_ended(self, call_id: str, timeout: float = 15) -> list[CallEvent]:
        def mine() -> list[CallEvent]:
            return [event for event in self.events if event.call_id == call_id]

        with self._changed:
            done = self._changed.wait_for(
                lambda: any(isinstance(event, CallEnded) for event in mine()), timeout)
            assert done, f"call {call_id} did not end in {timeout} s: {mine()}"
            return mine()


def render(scenario: str, keys: dict[str, str], target: Path) -> Path:
    """The scenario with its @KEYS@ filled (an empty @EXTRA_HEADERS@ line goes away)."""
    text = (SCENARIOS / scenario).read_text()
    headers = keys.get("EXTRA_HEADERS", "")
    text = re.sub(r"^[ \t]*@EXTRA_HEADERS@\n", headers + "\n" if headers else "", text,
                  flags=re.MULTILINE)
    for key, value in keys.items():
        text = text.replace(f"@{key}@", value)
    assert not re.search(r"@[A-Z_]+@", text), f"{scenario}: a key was not given"
    target.write_text(text)
    return target


@pytest.fixture(scope="module")
def far_ends(tmp_path_factory: pytest.TempPathFactory, audio: Path) -> Iterator[dict[str, Sipp]]:
    """A sipp per case (sipp gives up after its -timeout, well past this module's run)."""
    folder = tmp_path_factory.mktemp("dispositions")
    started: dict[str, Sipp] = {}
    try:
        for each in CASES:
            if each.scenario.startswith("builtin:"):
                chosen = ["-sn", each.scenario.removeprefix("builtin:")]
            else:
                chosen = ["-sf", str(render(each.scenario, each.keys,
                                            folder / f"{each.name}.xml"))]
            started[each.name] = Sipp([*chosen, "-timeout", "300s", *each.args], audio,
                                      folder / f"{each.name}.log")
        yield started
    finally:
        for far in started.values():
            far.kill()


@pytest.fixture(scope="module")
def dial(far_ends: dict[str, Sipp]) -> Iterator[Callable[[Case], list[CallEvent]]]:
    """Place a call on the case's trunk; its events, up to its `CallEnded`."""
    trunks = tuple(SipTrunk(name=name, uri=f"sip:{{number}}@127.0.0.1:{far.port}")
                   for name, far in far_ends.items())
    recorder = Recorder()
    backend = SipBackend(recorder, SipSettings(trunks=trunks, workers=1,
                                               no_media_timeout=timedelta(seconds=1)),
                         clock=lambda: datetime.now(UTC))

    def place(each: Case) -> list[CallEvent]:
        call_id = f"call-{each.name}"
        backend.place(CallRequest(call_id=call_id, e164=NUMBER, caller_id="+15559990000",
                                  trunk=each.name,
                                  ring_timeout=timedelta(seconds=each.ring_timeout_s)))
        return recorder.until_ended(call_id)

    try:
        yield place
    finally:
        backend.close()


@pytest.mark.parametrize("each", CASES, ids=[each.name for each in CASES])
def test_signalling_maps_to_a_disposition(each: Case,
                                          dial: Callable[[Case], list[CallEvent]]) -> None:
    events = dial(each)
    end = events[-1]
    assert isinstance(end, CallEnded)
    assert (end.sip_status, end.q850_cause, end.ended_by) == (each.status, each.q850,
                                                              each.ended_by)
    assert end.no_media is each.no_media
    if each.no_media:
        assert end.reason == "no media within 1 s: OK"
    assert not any(isinstance(event, CallAnswered) for event in events)
    assert any(isinstance(event, CallRinging) for event in events) is each.rang
    heard = [event.announcement for event in events if isinstance(event, EarlyMediaHeard)]
    assert heard == ([Announcement.UNKNOWN] if each.early_media else [])
    assert engine_disposition(events, NUMBER) is each.disposition
