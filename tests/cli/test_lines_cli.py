"""`dialer lines status` and `dialer lines import-marks` on a real store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from dialer.cli import app
from dialer.errors import DialerError

CAMPAIGN = """\
name: capped
purpose: service
region: CN
allowed_number_types: [mobile]
leads: {file: leads.csv}
dial: {mode: progressive, max_attempts: 1}
agents: {count: 5}
compliance: cn-collections
lines:
  trunks: [{name: t, sip: "sip:t.example", channels: 10, cps: 5}]
  pools: {all: [t]}
  caller_ids:
    - {number: "+861012345678", pool: service, kind: fixed_line, daily_cap: 6}
    - {number: "+862161234567", pool: service, kind: fixed_line, daily_cap: 6}
    - {number: "+862087654321", pool: service, kind: fixed_line, daily_cap: 6}
"""


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=True)
    if isinstance(result.exception, DialerError):
        return 2, f"error: {result.exception}"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout


def campaign(folder: Path, leads: int) -> str:
    """The campaign above in `folder`, with `leads` numbers; its store's URL."""
    (folder / "leads.csv").write_text(
        "phone\n" + "\n".join(f"138{i:08d}" for i in range(leads)) + "\n", encoding="utf-8")
    (folder / "campaign.yaml").write_text(CAMPAIGN, encoding="utf-8")
    return f"sqlite:///{folder / 'd.db'}"


def run_day(folder: Path, db: str, start: str) -> int:
    """Two hours of the campaign from `start`; the attempts it made."""
    code, out = invoke("run", str(folder / "campaign.yaml"), "--db", db, "--json",
                       "--hours", "2", "--start", start)
    assert code == 0, out
    return int(json.loads(out.splitlines()[-1])["attempts"])


def test_caller_id_caps_hold_across_runs_of_the_same_day(tmp_path: Path) -> None:
    db = campaign(tmp_path, 500)
    assert run_day(tmp_path, db, "2024-06-03T09:00:00+08:00") == 12  # 2 numbers in service
    assert run_day(tmp_path, db, "2024-06-03T13:00:00+08:00") == 0  # caps spent today
    assert run_day(tmp_path, db, "2024-06-04T09:00:00+08:00") == 12  # a new day


def test_status_shows_caller_ids_against_their_caps_and_imported_marks(tmp_path: Path) -> None:
    db = campaign(tmp_path, 200)
    run_day(tmp_path, db, "2024-06-03T09:00:00+08:00")
    code, out = invoke("lines", "status", "--campaign", "capped", "--db", db, "--json",
                       "--at", "2024-06-03T15:00")
    assert code == 0, out
    status = json.loads(out)
    assert status["trunks"][0]["trunk"] == "t"
    callers = {row["number"]: row for row in status["caller_ids"]}
    assert sorted(row["state"] for row in callers.values()) == ["active", "active", "reserve"]
    assert all(row["calls_today"] == 6 for row in callers.values() if row["state"] == "active")
    assert "+861012345678" not in out  # numbers are masked
    (tmp_path / "marks.csv").write_text("号码,标记次数\n010-12345678,8\n", encoding="utf-8")
    code, out = invoke("lines", "import-marks", str(tmp_path / "marks.csv"), "--db", db)
    assert code == 0, out
    assert "1 numbers, 8 marks" in out
    code, out = invoke("lines", "status", "--campaign", "capped", "--db", db, "--json")
    marked = [row for row in json.loads(out)["caller_ids"] if row["marks"] == 8]
    assert len(marked) == 1  # judged at the next day's review
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    code, out = invoke("lines", "status", "--campaign", "capped", "--db", db, "--json",
                       "--at", tomorrow)
    marked = [row for row in json.loads(out)["caller_ids"] if row["marks"] == 8]
    assert marked[0]["state"] == "resting"  # more than 5 marks: rested at the review
    (tmp_path / "bad.csv").write_text("号码,标记次数\nabc,2\n", encoding="utf-8")
    code, out = invoke("lines", "import-marks", str(tmp_path / "bad.csv"), "--db", db)
    assert code == 2
    assert "bad.csv" in out
