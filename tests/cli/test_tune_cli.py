"""`dialer tune`: learn from a real simulated run, write the report, apply the patch."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dialer.cli import app
from dialer.cli.tune_files import plot_rates
from dialer.config import load_campaign
from dialer.errors import UsageError
from dialer.store import open_store
from rules.tuning_hours import Rate

EXAMPLE = Path(__file__).parents[2] / "examples" / "cart-recovery"
REPORT_FIELDS = {
    "campaign", "file", "generated_at", "data_from", "data_until", "settings", "attempts",
    "attempts_without_verdict", "answer_rate", "answer_rate_by_hour",
    "answer_rate_by_weekday", "scripts", "sources", "changes", "notes", "files",
}
RATE_FIELDS = {"answered", "attempts", "rate", "low", "high"}
STOP_VENDOR_B = {"field": "stopped_sources", "op": "add", "value": ["vendor-b"]}


@dataclass(frozen=True)
class World:
    folder: Path
    campaign_file: Path
    db_file: Path
    run_report: dict[str, object]

    @property
    def db(self) -> str:
        return f"sqlite:///{self.db_file}"


def run(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """The cart-recovery example run for 8 simulated hours, a second (dirty) list source
    imported, and one called number suppressed after a complaint."""
    folder = tmp_path_factory.mktemp("tune")
    shutil.copytree(EXAMPLE, folder / "cart-recovery")
    campaign = folder / "cart-recovery" / "campaign.yaml"
    db_file = folder / "dialer.db"
    db = f"sqlite:///{db_file}"
    report = json.loads(run("run", str(campaign), "--db", db, "--json", "--hours", "8"))
    run("leads", "import", str(folder / "cart-recovery" / "leads-vendor-b.csv"),
        "--campaign", "cart-recovery", "--source", "vendor-b", "--db", db)
    with open_store(db) as store, store.read() as uow:
        called = next(row.e164 for row in uow.attempt_rows("cart-recovery")
                      if row.disposition == "completed")
    run("suppress", "add", called, "--reason", "Customer complaint to the regulator",
        "--db", db)
    return World(folder=folder, campaign_file=campaign, db_file=db_file, run_report=report)


def is_png(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 5000
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk
    return width, height


def test_tune_writes_the_report_the_patch_and_the_plots(world: World, tmp_path: Path) -> None:
    out = tmp_path / "out"
    printed = run("tune", "--campaign", "cart-recovery", "--db", world.db, "--out", str(out))
    assert "Answer rate by callee local hour" in printed
    assert "proposed: add stopped_sources" in printed
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert set(report) == REPORT_FIELDS
    assert report["campaign"] == "cart-recovery"
    assert report["file"] == str(world.campaign_file.resolve())
    assert report["attempts"] == world.run_report["attempts"]
    hours, days = report["answer_rate_by_hour"], report["answer_rate_by_weekday"]
    assert [h["hour"] for h in hours] == list(range(24))
    assert [d["weekday"] for d in days] == ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    assert all(set(h) == RATE_FIELDS | {"hour"} for h in hours)
    # the run is a Monday, 09:00-17:00 in Shanghai, inside cn-marketing's hours
    assert {h["hour"] for h in hours if h["attempts"]} <= {9, 10, 11, 14, 15, 16}
    assert {d["weekday"] for d in days if d["attempts"]} == {"mon"}
    overall = report["answer_rate"]
    assert sum(h["attempts"] for h in hours) == overall["attempts"]
    assert overall["attempts"] + report["attempts_without_verdict"] == report["attempts"]
    assert overall["answered"] == world.run_report["contacts"]
    assert overall["low"] < overall["rate"] < overall["high"]
    (script,) = report["scripts"]
    assert (script["script"], script["complaints"], script["flagged"]) == (
        "cart-reminder", 1, True)
    assert script["opt_outs"] == world.run_report["dispositions"]["opted_out"]  # type: ignore[index]
    sources = {s["source"]: s for s in report["sources"]}
    assert sources["vendor-b"]["flagged"]
    assert sources["vendor-b"]["share"] > sources["shop-events"]["share"]
    assert [{k: c[k] for k in ("field", "op", "value")} for c in report["changes"]] == [
        STOP_VENDOR_B]
    assert any("campaign's own script" in note for note in report["notes"])
    patch = yaml.safe_load((out / "patch.yaml").read_text(encoding="utf-8"))
    assert set(patch) == {"campaign", "file", "generated_at", "data_until", "changes"}
    assert patch["changes"] == report["changes"]
    assert datetime.fromisoformat(patch["generated_at"]).tzinfo is not None
    assert (out / "patch.yaml").read_text(encoding="utf-8").startswith("# Changes")
    hour_plot, day_plot = is_png(out / "answer-rate-by-hour.png"), is_png(
        out / "answer-rate-by-day.png")
    assert hour_plot[0] > day_plot[0] > 300


def test_json_prints_the_report(world: World, tmp_path: Path) -> None:
    printed = run("tune", "--campaign", "cart-recovery", "--db", world.db, "--out",
                  str(tmp_path), "--json", "--max-invalid-share", "0.5",
                  "--max-optout-rate", "0.5", "--min-attempts", "10")
    report = json.loads(printed)
    assert report == json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert report["settings"] == {"min_attempts": 10, "max_optout_rate": 0.5,
                                  "max_invalid_share": 0.5, "confidence": 0.95}
    assert not any(s["flagged"] for s in report["sources"] + report["scripts"])


def test_apply_edits_the_campaign_file_keeps_its_comments_and_audits(
        world: World, tmp_path: Path) -> None:
    shutil.copytree(world.campaign_file.parent, tmp_path / "cart-recovery")
    shutil.copy(world.db_file, tmp_path / "dialer.db")
    campaign, db = tmp_path / "cart-recovery" / "campaign.yaml", f"sqlite:///{tmp_path}/dialer.db"
    original = campaign.read_text(encoding="utf-8")
    printed = run("tune", "--campaign", str(campaign), "--db", db, "--out",
                  str(tmp_path / "out"), "--apply")
    assert "applied stopped_sources" in printed
    edited = campaign.read_text(encoding="utf-8")
    assert edited.splitlines() == [*original.splitlines()[:10], "stopped_sources: [vendor-b]",
                                   *original.splitlines()[10:]]  # after `leads`
    assert (tmp_path / "cart-recovery" / "campaign.yaml.bak").read_text(
        encoding="utf-8") == original
    assert load_campaign(campaign).stopped_sources == ("vendor-b",)
    with open_store(db) as store, store.read() as uow:
        (entry,) = [e for e in uow.audit_entries(subject="cart-recovery")
                    if e.action == "campaign.tune"]
    assert entry.detail["file"] == str(campaign.resolve())
    assert [{k: c[k] for k in ("field", "op", "value")}
            for c in entry.detail["changes"]] == [STOP_VENDOR_B]  # type: ignore[attr-defined]
    again = run("tune", "--campaign", str(campaign), "--db", db, "--out",
                str(tmp_path / "out"), "--apply")
    assert "nothing to apply" in again
    assert campaign.read_text(encoding="utf-8") == edited


def test_unknown_campaigns_and_empty_logs_are_clear_errors(world: World,
                                                          tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no campaign called 'nope' in the store"):
        run("tune", "--campaign", "nope", "--db", world.db, "--out", str(tmp_path))
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    with pytest.raises(UsageError, match="'cart-recovery' has no attempts in this store yet"):
        run("tune", "--campaign", str(world.campaign_file), "--db", empty, "--out",
            str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-c", "from dialer.cli import main; main()", "tune", "--campaign",
         "nope", "--db", world.db], capture_output=True, text=True, check=False,
        cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: no campaign called 'nope'")
    assert "Traceback" not in result.stderr


def test_a_plot_titled_in_chinese_is_written_without_warnings(tmp_path: Path) -> None:
    path = tmp_path / "p.png"
    plot_rates(path, ["一", "二"], [Rate(3, 10), Rate(0, 0)], title="购物车挽回", xlabel="时")
    is_png(path)
