"""pjsua2 on both ends: a worker placing calls to a worker in answer mode, over 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest
from sipkit import WorkerFactory, drain, events_until, of, over, released

from lines.sip import protocol as p
from lines.sip.process import WorkerProcess

pytestmark = pytest.mark.sip

CALLER = "+15550002222"
PLANS = {
    "talker": p.AnswerPlan(ring_s=0.2, play="speech"),
    "keys": p.AnswerPlan(dtmf="42#", dtmf_delay_s=0.3),
    "vacant": p.AnswerPlan(status=404, reason="Not Found",
                           reason_header='Q.850;cause=1;text="Unallocated number"'),
    "announcement": p.AnswerPlan(ring_s=1.5, early_media="speech", status=404),
    "agent": p.AnswerPlan(),
}


@pytest.fixture
def phones(workers: WorkerFactory, audio: Path) -> tuple[WorkerProcess, WorkerProcess]:
    """(caller, callee): a worker placing calls, and a worker answering by `PLANS`."""
    callee = workers()
    callee.send(p.LoadPrompt(name="speech", path=str(audio / "speech.wav")))
    callee.send(p.SetPlans(plans=PLANS))
    caller = workers()
    caller.send(p.LoadPrompt(name="speech", path=str(audio / "speech.wav")))
    return caller, callee


def dial(caller: WorkerProcess, callee: WorkerProcess, user: str, call_id: str = "c1",
         **options: object) -> None:
    assert callee.ready is not None
    caller.send(p.Place(call_id=call_id, uri=f"sip:{user}@127.0.0.1:{callee.ready.port}",
                        from_uri=f"sip:{CALLER}@127.0.0.1", **options))  # type: ignore[arg-type]


def until_released(worker: WorkerProcess, count: int = 1) -> list[p.Event]:
    seen: list[p.Event] = []
    while sum(map(over, seen)) < count:
        seen += events_until(worker, over)
    return seen


def test_speech_flows_both_ways(phones: tuple[WorkerProcess, WorkerProcess]) -> None:
    caller, callee = phones
    dial(caller, callee, "talker")
    placed = events_until(caller, lambda e: isinstance(e, p.Answered))
    caller.send(p.Play(call_id="c1", prompt="speech", hang_up_after=True))
    placed += events_until(caller, released("c1"))
    answered = until_released(callee)

    (incoming,) = of(answered, p.Incoming)
    assert CALLER in incoming.from_uri
    assert "talker@" in incoming.to_uri
    heard_by_caller = of(placed, p.Ended)[0].media
    heard_by_callee = of(answered, p.Ended)[0].media
    assert heard_by_caller is not None
    assert heard_by_callee is not None
    assert heard_by_caller.speech_frames >= 40  # the callee's prompt
    assert heard_by_callee.speech_frames >= 40  # the caller's prompt
    assert of(answered, p.Ended)[0].by == "remote"
    setup = of(placed, p.Answered)[0].t - of(placed, p.Trying)[0].t
    assert 0.2 <= setup < 1.0  # the plan rings 0.2 s


def test_dtmf_goes_both_ways_over_rfc2833(phones: tuple[WorkerProcess, WorkerProcess]) -> None:
    caller, callee = phones
    dial(caller, callee, "keys")
    placed = events_until(caller, lambda e: isinstance(e, p.Answered))
    caller.send(p.SendDtmf(call_id="c1", digits="7*"))
    placed += events_until(caller, lambda e: isinstance(e, p.Dtmf) and e.digit == "#")
    answered = events_until(callee, lambda e: isinstance(e, p.Dtmf) and e.digit == "*")
    caller.send(p.HangUp(call_id="c1"))
    events_until(caller, released("c1"))
    until_released(callee)

    assert [e.digit for e in of(placed, p.Dtmf)] == ["4", "2", "#"]
    assert [e.digit for e in of(answered, p.Dtmf)] == ["7", "*"]


def test_a_plan_rejects_with_a_q850_cause(phones: tuple[WorkerProcess, WorkerProcess]) -> None:
    caller, callee = phones
    dial(caller, callee, "vacant")
    end = of(events_until(caller, released("c1")), p.Ended)[0]
    assert (end.status, end.reason, end.q850, end.by) == (404, "Not Found", 1, "network")
    assert of(until_released(callee), p.Ended)[0].by == "us"


def test_a_plan_plays_early_media_then_fails(
        phones: tuple[WorkerProcess, WorkerProcess]) -> None:
    caller, callee = phones
    dial(caller, callee, "announcement")
    events = events_until(caller, released("c1"))
    until_released(callee)

    assert [type(e) for e in events] == [p.Trying, p.Ringing, p.EarlyMedia, p.Ended]
    end = of(events, p.Ended)[0]
    assert (end.status, end.q850) == (404, None)
    assert end.media is not None
    assert end.media.speech_frames >= 30  # 1.5 s of the prompt, before the 404


def test_a_bridge_joins_a_call_to_an_agent_leg(
        phones: tuple[WorkerProcess, WorkerProcess]) -> None:
    caller, callee = phones
    dial(caller, callee, "talker", "c1", reserve_slot=True)
    events_until(caller, lambda e: isinstance(e, p.Answered))
    dial(caller, callee, "agent", "c1/agent", into_reservation_of="c1")
    events_until(caller, lambda e: isinstance(e, p.Answered) and e.call_id == "c1/agent")
    caller.send(p.Bridge(call_id="c1", other_call_id="c1/agent"))
    events_until(caller, lambda e: isinstance(e, p.Bridged))
    drain(caller, 2.0)  # the talker talks to the agent
    caller.send(p.HangUp(call_id="c1"))
    caller.send(p.HangUp(call_id="c1/agent"))
    until_released(caller, 2)
    answered = until_released(callee, 2)

    agent_id = next(e.call_id for e in of(answered, p.Incoming) if "agent@" in e.to_uri)
    agent = next(e for e in of(answered, p.Ended) if e.call_id == agent_id)
    assert agent.media is not None
    assert agent.media.speech_frames >= 30  # the agent heard the talker through the bridge
