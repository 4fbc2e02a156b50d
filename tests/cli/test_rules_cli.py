"""`dialer rules explain` on the shipped cart-recovery example, through the CLI."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dialer.cli import app
from dialer.errors import DialerError
from dialer.store import SuppressionScope, open_store

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cart-recovery"


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=True)
    if isinstance(result.exception, DialerError):  # what `main` prints, exit code 2
        return 2, f"error: {result.exception}"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout + result.stderr


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    folder = tmp_path_factory.mktemp("cart")
    shutil.copytree(EXAMPLE, folder / "cart-recovery")
    db = f"sqlite:///{folder / 'dialer.db'}"
    code, out = invoke("run", str(folder / "cart-recovery" / "campaign.yaml"), "--db", db,
                       "--json", "--hours", "1")
    assert code == 0, out
    return db, folder


def explain(db: str, *args: str) -> dict[str, object]:
    code, out = invoke("rules", "explain", *args, "--db", db, "--json")
    assert code == 0, out
    return json.loads(out.splitlines()[-1])  # type: ignore[no-any-return]


def test_explain_names_the_window_and_when_it_opens(demo: tuple[str, Path]) -> None:
    db, _ = demo
    found = explain(db, "199 6064 3907", "--campaign", "cart-recovery",
                    "--at", "2024-06-03T12:30")
    assert found["lead"] is True
    assert found["segment"] == "carts"  # a big cart, but low intent
    assert found["callable"] is False
    assert found["callable_from"] == "2024-06-03T06:00:00+00:00"  # 14:00 in Shanghai
    window = next(v for v in found["verdicts"] if v["rule"] == "window")  # type: ignore[attr-defined]
    assert "12:30" in window["reason"]
    assert "19960643907" not in json.dumps(found)  # numbers are masked in the output


def test_a_number_without_consent_and_a_suppressed_one(demo: tuple[str, Path]) -> None:
    db, folder = demo
    stranger = explain(db, "13800138000", "--campaign", "cart-recovery",
                       "--at", "2024-06-03T10:00")
    assert stranger["lead"] is False
    assert stranger["callable_from"] is None  # cn-marketing: no consent, no call
    store = open_store(db)
    try:
        with store.write() as uow:
            uow.add_suppression("+8619960643907", scope=SuppressionScope.GLOBAL, campaign=None,
                                reason="said stop", actor="t",
                                now=datetime.fromisoformat("2024-06-03T10:00:00+08:00"))
    finally:
        store.close()
    found = explain(db, "19960643907", "--campaign",
                    str(folder / "cart-recovery" / "campaign.yaml"), "--at", "2024-06-03T10:00")
    suppressed = next(v for v in found["verdicts"] if v["rule"] == "suppressed")  # type: ignore[attr-defined]
    assert suppressed["ok"] is False
    assert "said stop" in suppressed["reason"]
    code, out = invoke("rules", "explain", "19960643907", "--campaign", "cart-recovery",
                       "--db", db, "--at", "2024-06-03T10:00")
    assert code == 0
    assert "not callable until something changes" in out


@pytest.mark.parametrize(("args", "message"), [
    (("12345", "--campaign", "cart-recovery"), "not a valid phone number"),
    (("13800138000", "--campaign", "nope"), "no campaign called 'nope'"),
    (("13800138000", "--campaign", "cart-recovery", "--at", "noon"), "not an ISO 8601"),
])
def test_bad_input_gets_a_clear_message(demo: tuple[str, Path], args: tuple[str, ...],
                                        message: str) -> None:
    db, _ = demo
    code, out = invoke("rules", "explain", *args, "--db", db)
    assert code == 2
    assert message in out
