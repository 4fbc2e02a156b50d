"""A campaign over real SIP (pjsua2 on 127.0.0.1): the real-time loop, the SIP backend built
from the campaign, and a media worker killed in the middle of calls.

The far end is a media worker in answer mode with a plan for every number.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dialer.clock import OffsetClock
from dialer.config import parse_campaign
from dialer.config.campaign import Campaign
from dialer.engine.realtime import RealtimeOptions, run_realtime
from dialer.engine.sip import SipRunOptions, sip_settings
from dialer.intake.service import IntakeOptions, import_file
from dialer.store import Store, open_store
from lines.sip import SipBackend, WorkerOptions, WorkerProcess
from lines.sip import protocol as p
from lines.telephony import EventSink
from rules.dispositions import PERSON_ANSWERED

pytestmark = [pytest.mark.sip, pytest.mark.slow]

START = datetime(2024, 6, 4, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))  # a Tuesday morning
NUMBERS = [f"+86138001381{n:02d}" for n in range(10)]


@pytest.fixture
def far_end() -> Iterator[int]:
    """A worker answering every number after 0.3 s ringing; the callee hangs up after 3 s.
    Its events are never read: they are few enough for the pipe."""
    worker = WorkerProcess(WorkerOptions())
    try:
        ready = worker.wait_ready(15)
        worker.send(p.SetPlans(default=p.AnswerPlan(ring_s=0.3, hang_up_after_s=3.0)))
        yield ready.port
    finally:
        worker.stop(timeout=5)
        worker.close()


def robocall(tmp_path: Path, port: int) -> tuple[Campaign, Store]:
    leads = tmp_path / "leads.csv"
    leads.write_text("phone,consent_source,consent_at\n"
                     + "".join(f"{n},web,2024-05-01T00:00:00Z\n" for n in NUMBERS),
                     encoding="utf-8")
    campaign = parse_campaign({
        "name": "sip-robo", "region": "CN", "telephony": "sip", "compliance": "cn-marketing",
        "dial": {"mode": "robocall", "max_concurrent": 2, "max_attempts": 1},
        "script": {"name": "hi", "language": "zh", "steps": [{"say": "您好"}, "hangup"]},
        "lines": {"trunks": [{"name": "loop", "sip": f"sip:127.0.0.1:{port}", "channels": 2,
                              "cps": 20}], "pools": {"main": ["loop"]}},
    }, "<test>")
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    with store.write() as uow:
        import_file(uow, leads, campaign="sip-robo", source="leads",
                    options=IntakeOptions(region="CN"), now=START, actor="test")
    return campaign, store


def test_a_killed_worker_fails_its_calls_and_the_campaign_goes_on(tmp_path: Path,
                                                                  far_end: int) -> None:
    campaign, store = robocall(tmp_path, far_end)
    # Two calls at once on two workers, so that one survives the kill. (The far end takes 4
    # at once: the killed calls stay up there until their callee hangs up.)
    settings = sip_settings(campaign, SipRunOptions(workers=2))
    clock = OffsetClock(START)
    backends: list[SipBackend] = []
    answered_on: dict[str, int] = {}  # call id: worker index
    first_answer = threading.Event()

    def observe(worker: int, event: p.Event) -> None:
        if isinstance(event, p.Answered):
            answered_on[event.call_id] = worker
            first_answer.set()

    def factory(sink: EventSink) -> SipBackend:
        backends.append(SipBackend(sink, settings, clock=clock.now, observer=observe))
        return backends[-1]

    killed: list[int] = []
    restarted: list[int] = []

    def kill_one_worker() -> None:
        assert first_answer.wait(20), "no call was answered"
        worker = next(iter(answered_on.values()))
        pid = backends[0].worker_pids()[worker]
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        killed.append(worker)
        deadline = time.monotonic() + 15
        while backends[0].worker_pids()[worker] in (pid, None):  # started again
            assert time.monotonic() < deadline, "the killed worker was not started again"
            time.sleep(0.05)
        restarted.append(worker)

    killer = threading.Thread(target=kill_one_worker, daemon=True)
    killer.start()
    report = run_realtime(store, campaign, factory, RealtimeOptions(), clock=clock)
    killer.join(1)

    assert killed, "the test never killed a worker"
    assert restarted == killed
    with store.read() as uow:
        rows = {row.e164: row for row in uow.attempt_rows("sip-robo")}
    assert sorted(rows) == NUMBERS  # every lead dialed once: the campaign went on
    failed = {e164 for e164, row in rows.items() if row.disposition == "failed"}
    assert failed, {e: (r.disposition, r.sip_status) for e, r in rows.items()}
    assert all(row.ended_at is not None for row in rows.values())
    others = {row.disposition for e164, row in rows.items() if e164 not in failed}
    assert others <= {d.value for d in PERSON_ANSWERED}, {
        e: (r.disposition, r.sip_status, r.reason) for e, r in rows.items()}
    assert sum(report.dispositions.values()) == len(NUMBERS)
