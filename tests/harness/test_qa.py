"""The QA report pairs each number's n-th phone call with the dialer's n-th attempt."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from dialer.harness.qa import Attempt, PhoneCall, build_report, read_attempts, read_calls

T0 = datetime(2024, 6, 4, 2, 0, tzinfo=UTC)


def call(number: str, phone: str, expected: tuple[str, ...], at: float) -> PhoneCall:
    return PhoneCall(call_id=f"h{at}", dialed=number, caller="+861088880000", phone=phone,
                     kind=phone, expected=expected, did="x", received_at=T0.timestamp() + at)


def attempt(number: str, disposition: str, at: float) -> Attempt:
    return Attempt(e164=number, placed_at=T0 + timedelta(seconds=at), disposition=disposition)


def test_matches_mismatches_and_calls_nobody_explains() -> None:
    calls = [call("+8613800000001", "busy", ("busy",), 1),
             call("+8613800000001", "busy", ("busy",), 60),
             call("+8613800000002", "vacant", ("vacant",), 2),
             call("+8613800000004", "busy", ("busy",), 3)]
    attempts = [attempt("+8613800000001", "busy", 0.9),
                attempt("+8613800000001", "no_answer", 59.9),  # the dialer got it wrong
                attempt("+8613800000002", "vacant", 1.9),
                attempt("+8613800000003", "failed", 2.0),  # never left: fine
                attempt("+8613800000005", "busy", 2.0)]  # said busy, but no phone saw it
    report = build_report(calls, attempts).to_dict()
    assert report["matches"] == 2
    assert [m["dialer_concluded"] for m in report["mismatches"]] == ["no_answer"]
    assert [m["number"] for m in report["unexplained"]] == ["+8613800000004"]
    assert [m["number"] for m in report["not_received"]] == ["+8613800000005"]


def test_agent_legs_are_counted_not_matched() -> None:
    calls = [call("+8613800000001", "busy", ("busy",), 1),
             call("9001", "agent", ("answered_human",), 5),
             call("9001", "agent", ("answered_human",), 9)]
    report = build_report(calls, [attempt("+8613800000001", "busy", 0.9)])
    assert (report.matches, report.agent_legs, report.unexplained) == (1, 2, [])


def test_logs_round_trip_through_files(tmp_path: Path) -> None:
    calls = [call("+8613800000001", "空号", ("vacant",), 1)]
    (tmp_path / "calls.jsonl").write_text("".join(c.to_json() + "\n" for c in calls),
                                          encoding="utf-8")
    assert read_calls(tmp_path / "calls.jsonl") == calls
    (tmp_path / "a.csv").write_text("attempt_id,e164,placed_at,disposition\n"
                                    "x1,+8613800000001,2024-06-04T02:00:00.5Z,vacant\n",
                                    encoding="utf-8")
    report = build_report(read_calls(tmp_path / "calls.jsonl"),
                          read_attempts(tmp_path / "a.csv"))
    assert report.matches == 1
    assert not report.mismatches
