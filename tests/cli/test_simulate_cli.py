"""`dialer simulate`: the planner's command line (issue 4)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from dialer.cli import app
from dialer.engine.planning import COMPARED

BENCH = str(Path(__file__).parents[2] / "examples" / "scenarios" / "pacing-benchmark.yaml")


def simulate(*args: str) -> dict[str, object]:
    result = CliRunner().invoke(app, ["simulate", BENCH, "--json", "--workers", "1", *args])
    assert result.exit_code == 0, result.output
    data: dict[str, object] = json.loads(result.stdout)
    return data


def test_json_gives_every_figure_with_confidence_intervals() -> None:
    data = simulate("--seeds", "3", "--agents", "4", "--hours", "0.5")
    assert (data["agents"], data["seeds"], data["hours"]) == (4, 3, 0.5)
    (row,) = data["results"]  # type: ignore[misc]
    assert row["pacer"] == "predictive"
    for key in ("occupancy", "abandon_rate", "talk_minutes_per_agent_hour",
                "dials_per_agent_hour"):
        assert set(row[key]) == {"mean", "ci95", "min", "max"}
        assert row[key]["min"] <= row[key]["mean"] <= row[key]["max"]
    assert 0 < row["occupancy"]["mean"] < 1
    assert row["dials_per_agent_hour"]["mean"] > 10


def test_compare_runs_every_pacer_on_the_same_seeds() -> None:
    data = simulate("--seeds", "2", "--agents", "3", "--hours", "0.25", "--compare")
    rows = data["results"]
    assert [r["pacer"] for r in rows] == list(COMPARED)  # type: ignore[union-attr]
    progressive = next(r for r in rows if r["pacer"] == "progressive")  # type: ignore[union-attr]
    assert progressive["abandon_rate"]["max"] == 0


def test_an_unknown_pacer_is_refused_before_anything_runs() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).with_name("dialer")), "simulate", BENCH, "--pacer",
         "ratio:fast"],
        capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert "pacer 'ratio:fast': the ratio is a dial level of at least 1" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_table_names_the_pacers() -> None:
    result = CliRunner().invoke(app, ["simulate", BENCH, "--seeds", "2", "--agents", "2",
                                      "--hours", "0.2", "--workers", "2", "--pacer",
                                      "vicidial-adapt"])
    assert result.exit_code == 0, result.output
    assert "vicidial-adapt" in result.stdout
    assert "2 agents" in result.stdout


def test_a_campaign_file_keeps_its_own_mode_and_pacer(tmp_path: Path) -> None:
    campaign = tmp_path / "c.yaml"
    campaign.write_text("name: c\nregion: CN\ncompliance: cn-collections\nagents: {count: 3}\n"
                        "dial: {mode: predictive, pacer: 'ratio:1.2'}\n", encoding="utf-8")
    data = simulate("--seeds", "2", "--hours", "0.2", "--campaign", str(campaign))
    (row,) = data["results"]  # type: ignore[misc]
    assert (row["pacer"], row["agents"]) == ("ratio:1.2", 3)


def test_pacers_are_for_agent_campaigns() -> None:
    robocall = Path(__file__).parents[2] / "examples" / "cart-recovery" / "campaign.yaml"
    result = subprocess.run([str(Path(sys.executable).with_name("dialer")), "simulate", BENCH,
                             "--campaign", str(robocall), "--compare"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert "dials in robocall mode; --pacer and --compare are for" in result.stderr


def test_a_campaign_with_no_agents_is_refused(tmp_path: Path) -> None:
    world = tmp_path / "w.yaml"
    world.write_text("agents: {count: 0}\n", encoding="utf-8")
    result = subprocess.run([str(Path(sys.executable).with_name("dialer")), "simulate",
                             str(world)], capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert "no agents" in result.stderr
