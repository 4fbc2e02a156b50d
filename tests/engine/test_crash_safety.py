"""`dialer run` killed with SIGKILL at random points and restarted on the same store."""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from dialer.store import open_store

ROOT = Path(__file__).resolve().parents[2]
CAMPAIGN = """\
name: crashy
region: CN
allowed_number_types: [mobile]
leads: {file: leads.csv, source: crash-list}
dial: {mode: robocall, max_attempts: 2, max_concurrent: 12}
compliance: cn-collections
script: {name: remind, language: zh, steps: [{say: "您好"}, hangup]}
retry:
  no_answer: {after: 1m}
  busy: {after: 1m}
"""


def dialer(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "dialer", *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def attempts_so_far(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return int(conn.execute("select count(*) from attempts").fetchone()[0])
    except sqlite3.Error:
        return 0


@pytest.mark.slow
def test_sigkill_at_random_points_keeps_every_promise(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "scripts/gen_leads.py"), "--rows", "800",
                    "--seed", "5", "--out", str(tmp_path / "leads.csv")], check=True)
    (tmp_path / "campaign.yaml").write_text(CAMPAIGN, encoding="utf-8")
    db = tmp_path / "crash.db"
    url = f"sqlite:///{db}"
    suppressed = ["+8613500000001"]
    with (tmp_path / "leads.csv").open("a", encoding="utf-8") as leads:
        leads.write("王伟,13500000001,上海,300,高\n")  # on the list, and suppressed
    added = dialer("suppress", "add", suppressed[0], "--db", url)
    added.communicate(timeout=60)
    assert added.returncode == 0

    rng = random.Random(20261124)
    kills = 0
    for _ in range(4):
        proc = dialer("run", str(tmp_path / "campaign.yaml"), "--db", url, "--json",
                      "--hours", "8")
        deadline = time.monotonic() + 60
        before = attempts_so_far(db)
        while attempts_so_far(db) <= before and proc.poll() is None:
            assert time.monotonic() < deadline, "the run never placed a call"
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 1.0))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate(timeout=60)
    assert kills >= 2

    final = dialer("run", str(tmp_path / "campaign.yaml"), "--db", url, "--json", "--hours", "1")
    out, err = final.communicate(timeout=300)
    assert final.returncode == 0, err
    report = json.loads(out)

    with open_store(url) as store, store.read() as uow:
        rows = list(uow.attempt_rows("crashy"))
        campaign_id = uow.campaign_id("crashy")
        assert campaign_id is not None
        assert uow.open_attempts(campaign_id) == 0
    per_lead = Counter(row.lead_id for row in rows)
    assert max(per_lead.values()) <= 2  # never dialed more often than the cap
    assert all(row.disposition is not None for row in rows)  # exactly one each
    interrupted = [row for row in rows if row.reason.startswith("interrupted")]
    assert interrupted, "no call was cut by a kill"
    assert {row.disposition for row in interrupted} == {"failed"}
    assert report["recovered"]["attempts_closed"] + kills >= 1
    assert not {row.e164 for row in rows} & set(suppressed)
