"""The real-time loop: the engine's owner when calls are real (issue 7).

The backend here is a small threaded stand-in for our own seam (`TelephonyBackend`): the
loop under test must take events from other threads, tick, put calls through to
softphone agents, stop when the leads run out, and close what a broken backend never
ended. Real SIP runs of the same loop are in tests/lines/sip and tests/harness.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dialer.clock import OffsetClock
from dialer.config import parse_campaign
from dialer.config.campaign import Campaign
from dialer.engine.realtime import RealtimeOptions, run_realtime
from dialer.intake.service import IntakeOptions, import_file
from dialer.store import Store, open_store
from lines.telephony import (
    CallAnswered,
    CallEnded,
    CallEvent,
    CallRequest,
    CallRinging,
    EventSink,
    Party,
)

START = datetime(2024, 6, 4, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))  # a Tuesday morning


@dataclass
class ThreadedBackend:
    """Answers from timer threads: numbers ending 1 are busy, 9 never end (a broken
    backend), the rest answer and the callee hangs up `talk` later."""

    sink: EventSink
    clock: OffsetClock
    talk: float = 0.3
    placed: list[CallRequest] = field(default_factory=list)
    connected: dict[str, str] = field(default_factory=dict)
    hung_up: list[str] = field(default_factory=list)
    closed: bool = False
    _stopped: threading.Event = field(default_factory=threading.Event)

    def _play(self, steps: list[tuple[float, CallEvent]]) -> None:
        """Deliver a call's events at their times from the placing, in order, from one
        thread (as the backend contract asks: a call's events in the order they happened)."""
        def run() -> None:
            started = time.monotonic()
            for seconds, event in steps:
                if self._stopped.wait(max(0.0, started + seconds - time.monotonic())):
                    return
                self.sink(type(event)(**{**_fields(event), "at": self.clock.now()}))
        threading.Thread(target=run, daemon=True).start()

    def place(self, request: CallRequest) -> None:
        self.placed.append(request)
        call_id, now = request.call_id, self.clock.now()
        steps: list[tuple[float, CallEvent]] = [(0.05, CallRinging(call_id=call_id, at=now))]
        if request.e164.endswith("1"):
            steps.append((0.1, CallEnded(call_id=call_id, at=now, sip_status=486,
                                         reason="Busy Here", ended_by=Party.CALLEE)))
        elif not request.e164.endswith("9"):
            steps.append((0.1, CallAnswered(call_id=call_id, at=now)))
            steps.append((0.1 + self.talk, CallEnded(call_id=call_id, at=now, sip_status=200,
                                                     reason="Normal call clearing",
                                                     ended_by=Party.CALLEE)))
        self._play(steps)

    def hang_up(self, call_id: str) -> None:
        self.hung_up.append(call_id)

    def connect_agent(self, call_id: str, agent_id: str) -> None:
        self.connected[call_id] = agent_id

    def start_script(self, call_id: str, script: str,
                     variables: Mapping[str, str] | None = None) -> None:
        raise AssertionError("no script in an agent campaign")

    def play_abandon_message(self, call_id: str) -> None:
        pass

    def close(self) -> None:
        self.closed = True
        self._stopped.set()


def _fields(event: object) -> dict[str, object]:
    return {name: getattr(event, name) for name in event.__slots__}  # type: ignore[attr-defined]


def _campaign(tmp_path: Path, numbers: list[str]) -> tuple[Campaign, Store]:
    """The campaign, and a store with its leads imported."""
    leads = tmp_path / "leads.csv"
    leads.write_text("phone,consent_source,consent_at\n"
                     + "".join(f"{n},web,2024-05-01T00:00:00Z\n" for n in numbers),
                     encoding="utf-8")
    campaign = parse_campaign({
        "name": "rt", "region": "CN", "telephony": "sip",
        "dial": {"mode": "progressive", "max_attempts": 1},
        "agents": {"softphones": {"a1": "sip:a1@127.0.0.1:5999",
                                  "a2": "sip:a2@127.0.0.1:5999"}, "wrap_up": "0.2s"},
        "compliance": "cn-marketing",
        "lines": {"trunks": [{"name": "t1", "sip": "sip:127.0.0.1:5998", "channels": 4,
                              "cps": 10}], "pools": {"main": ["t1"]}},
    }, "<test>")
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    with store.write() as uow:
        import_file(uow, leads, campaign="rt", source="leads",
                    options=IntakeOptions(region="CN"), now=START, actor="test")
    return campaign, store


@pytest.mark.slow
def test_progressive_run_puts_every_answered_call_through_and_stops_when_out_of_leads(
        tmp_path: Path) -> None:
    numbers = [f"+8613800138{n:03d}" for n in (100, 101, 102, 103, 104, 105)]
    campaign, store = _campaign(tmp_path, numbers)
    clock = OffsetClock(START)
    backends: list[ThreadedBackend] = []

    def factory(sink: EventSink) -> ThreadedBackend:
        backends.append(ThreadedBackend(sink, clock))
        return backends[-1]

    report = run_realtime(store, campaign, factory, RealtimeOptions(), clock=clock)
    backend = backends[0]
    assert backend.closed
    assert sorted(r.e164 for r in backend.placed) == numbers  # each lead once
    busy = [r for r in backend.placed if r.e164.endswith("1")]
    assert report.dispositions == {"answered_human": 5, "busy": 1}
    assert set(backend.connected.values()) == {"a1", "a2"}
    assert len(backend.connected) == 5
    assert busy[0].call_id not in backend.connected
    assert report.ended_at - report.started_at < timedelta(seconds=20)



@pytest.mark.slow
def test_calls_the_backend_never_ends_are_hung_up_then_closed_as_failed(tmp_path: Path) -> None:
    numbers = ["+8613800138102", "+8613800138109"]  # the second never ends
    campaign, store = _campaign(tmp_path, numbers)
    clock = OffsetClock(START)
    backends: list[ThreadedBackend] = []

    def factory(sink: EventSink) -> ThreadedBackend:
        backends.append(ThreadedBackend(sink, clock))
        return backends[-1]

    options = RealtimeOptions(duration=timedelta(seconds=1), settle=timedelta(seconds=1),
                              hang_up_grace=timedelta(seconds=0.5))
    report = run_realtime(store, campaign, factory, options, clock=clock)
    lost = next(r.call_id for r in backends[0].placed if r.e164.endswith("9"))
    assert backends[0].hung_up == [lost]
    assert report.dispositions == {"answered_human": 1, "failed": 1}
    with store.read() as uow:
        rows = {row.e164: row for row in uow.attempt_rows("rt")}
    assert rows["+8613800138109"].disposition == "failed"
    assert rows["+8613800138109"].ended_at is not None


@pytest.mark.slow
def test_a_stop_ends_dialing_and_hurry_hangs_up_what_is_left(tmp_path: Path) -> None:
    numbers = [f"+8613800138{n:03d}" for n in range(100, 110)]
    campaign, store = _campaign(tmp_path, numbers)
    clock = OffsetClock(START)
    backends: list[ThreadedBackend] = []
    stop, hurry = threading.Event(), threading.Event()

    def factory(sink: EventSink) -> ThreadedBackend:
        backends.append(ThreadedBackend(sink, clock, talk=30))  # calls that last
        threading.Timer(0.5, stop.set).start()
        threading.Timer(1.0, hurry.set).start()
        return backends[-1]

    options = RealtimeOptions(settle=timedelta(minutes=5), hang_up_grace=timedelta(seconds=1))
    report = run_realtime(store, campaign, factory, options, clock=clock, stop=stop,
                          hurry=hurry)
    backend = backends[0]
    assert len(backend.placed) < len(numbers)  # dialing stopped
    assert set(backend.hung_up) >= {r.call_id for r in backend.placed
                                    if not r.e164.endswith("1")}  # hurried: hung up
    assert report.ended_at - report.started_at < timedelta(seconds=10)  # not the 5 min settle
    with store.read() as uow:
        rows = list(uow.attempt_rows("rt"))
    assert len(rows) == len(backend.placed)
    # every attempt closed (this stand-in never ends a call it hangs up: the loop fails them)
    assert all(row.ended_at is not None for row in rows)
