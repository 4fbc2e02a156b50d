"""The `dialer` command line, end to end on real files and a real SQLite store."""

from __future__ import annotations

import codecs
import json
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest
from typer.testing import CliRunner

from dialer.cli import app
from dialer.errors import DialerError
from dialer.store import open_store

MESSY = [
    ("王伟", "135 1234 5678"),
    ("李娜", "＋８６１３６１２３４５６７８"),
    ("张敏", "tel:+86-137-1234-5678"),
    ("刘洋", "13512345678.0"),
    ("陈静", ""),
    ("杨丽", "暂无"),
    ("黄强", "10512345678"),
    ("赵磊", "4001234567"),
    ("周杰", "13812345678/13912345678"),
    ("吴芳", "\u3000１.５０１２３４５６７８E+10"),
    ("徐涛", "86-18612345678"),
    ("孙丽", "1795118812345678"),
]
EXPECTED = [
    ("accepted", "+8613512345678"),
    ("accepted", "+8613612345678"),
    ("accepted", "+8613712345678"),
    ("duplicate", "+8613512345678"),
    ("empty", None),
    ("unparseable", None),
    ("invalid", None),
    ("type_not_allowed", "+864001234567"),
    ("unparseable", None),
    ("accepted", "+8615012345678"),
    ("accepted", "+8618612345678"),
    ("accepted", "+8618812345678"),
]


def run(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result.stdout


def write_messy(path: Path, encoding: str) -> Path:
    text = "\r\n".join(["姓名,手机号"] + [f'{name},"{cell}"' for name, cell in MESSY]) + "\r\n"
    if encoding == "utf-16":
        path.write_bytes(codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    else:
        path.write_bytes(text.encode(encoding))
    return path


def check_json(*args: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in run("leads", "check", *args, "--json").splitlines()]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "gbk", "gb18030"])
def test_check_json_on_a_messy_list(tmp_path: Path, encoding: str) -> None:
    rows = check_json(str(write_messy(tmp_path / "messy.csv", encoding)), "--region", "CN")
    assert [(r["reason"] or r["status"], r["e164"]) for r in rows] == EXPECTED
    assert [r["row"] for r in rows] == list(range(1, len(MESSY) + 1))
    assert [r["raw"] for r in rows] == [cell for _, cell in MESSY]
    first = rows[0]
    assert first == {"row": 1, "raw": "135 1234 5678", "status": "accepted",
                     "e164": "+8613512345678", "reason": None, "type": "mobile",
                     "region": "CN", "timezones": ["Asia/Shanghai"], "carrier": "China Mobile"}


def test_check_json_on_xlsx(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    book.active.append(["客户", "联系电话"])
    book.active.append(["a", 13512345678.0])
    book.active.append(["b", 1.5012345678e10])
    book.active.append(["c", 13512345678])
    book.active.append(["d", None])
    path = tmp_path / "leads.xlsx"
    book.save(path)
    rows = check_json(str(path))
    assert [(r["reason"] or r["status"], r["e164"]) for r in rows] == [
        ("accepted", "+8613512345678"), ("accepted", "+8615012345678"),
        ("duplicate", "+8613512345678"), ("empty", None),
    ]


def test_check_in_parallel_gives_the_same_lines(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    subprocess.run([sys.executable, "scripts/gen_leads.py", "--rows", "25000", "--out",
                    str(path)], check=True)
    one = run("leads", "check", str(path), "--json", "--workers", "1")
    two = run("leads", "check", str(path), "--json", "--workers", "2")
    assert one == two
    assert len(one.splitlines()) == 25000


def test_check_with_db_applies_suppressions_and_status(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'd.db'}"
    run("suppress", "add", "13612345678", "--db", db, "--reason", "opt-out")
    run("numbers", "set", "+86 137 1234 5678", "vacant", "--db", db, "--source", "carrier")
    rows = check_json(str(write_messy(tmp_path / "m.csv", "utf-8")), "--db", db)
    reasons = [r["reason"] for r in rows[:3]]
    assert reasons == [None, "suppressed", "known_dead"]


def test_import_then_reimport_adds_nothing(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'd.db'}"
    path = write_messy(tmp_path / "m.csv", "gbk")
    first = json.loads(run("leads", "import", str(path), "--campaign", "c1", "--db", db,
                           "--source", "vendor-a", "--json"))
    assert first["accepted"] == 6
    assert first["rejected"] == {"empty": 1, "unparseable": 2, "invalid": 1,
                                 "type_not_allowed": 1, "duplicate": 1}
    assert first["encoding"] == "gb18030"
    assert first["sources"]["vendor-a"]["rows"] == 12
    second = json.loads(run("leads", "import", str(path), "--campaign", "c1", "--db", db,
                            "--json"))
    assert second["already_imported"] is True
    assert second["accepted"] == 0
    with open_store(db) as store, store.read() as uow:
        assert uow.count_leads(uow.campaign_id("c1") or 0) == 6


def test_broken_file_exits_2_with_a_clear_message(tmp_path: Path) -> None:
    db = tmp_path / "d.db"
    bad = tmp_path / "bad.csv"
    bad.write_text("name,city\nx,y\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "dialer", "leads", "import", str(bad), "--campaign", "c",
         "--db", f"sqlite:///{db}"], capture_output=True, text=True, check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: bad.csv: no phone column")
    assert "Traceback" not in result.stderr
    with open_store(f"sqlite:///{db}") as store, store.read() as uow:
        assert uow.campaign_names() == []


def test_suppress_add_list_remove_are_audited(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'd.db'}"
    numbers = tmp_path / "dnc.csv"
    numbers.write_text("phone\n13512345678\n+86 136-1234-5678\nnonsense\n", encoding="utf-8")
    out = run("suppress", "add", str(numbers), "--db", db, "--reason", "regulator", "--by", "qa")
    assert "suppressed 2 number(s)" in out
    assert "row 3" in out
    run("suppress", "add", "13712345678", "--scope", "campaign", "--campaign", "c1", "--db", db)
    listed = [json.loads(line) for line in run("suppress", "list", "--db", db, "--json")
              .splitlines()]
    assert {(r["e164"], r["scope"], r["campaign"]) for r in listed} == {
        ("+8613512345678", "global", None), ("+8613612345678", "global", None),
        ("+8613712345678", "campaign", "c1"),
    }
    assert "removed 1" in run("suppress", "remove", "135-1234-5678", "--db", db)
    with open_store(db) as store, store.read() as uow:
        actions = [entry.action for entry in uow.audit_entries(limit=100)]
    assert actions.count("suppression.added") == 3
    assert actions.count("suppression.removed") == 1


def test_scope_mistakes_are_usage_errors(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'd.db'}"
    with pytest.raises(DialerError, match="--scope campaign needs --campaign"):
        run("suppress", "add", "13512345678", "--scope", "campaign", "--db", db)


def test_numbers_status_and_import(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'd.db'}"
    export = tmp_path / "lookup.csv"
    export.write_text("手机号,号码状态,检测时间\n13512345678,空号,2026-11-20 10:00:00\n"
                      "13612345678,关机,\n13712345678,正常,\n13812345678,???,\n",
                      encoding="gbk")
    out = run("numbers", "import", str(export), "--db", db, "--source", "lookup-x")
    assert "stored 3 status(es)" in out
    assert "skipped 1 row(s)" in out
    vacant = json.loads(run("numbers", "status", "135 1234 5678", "--db", db, "--json"))
    assert vacant["status"] == "vacant"
    assert vacant["known_dead"] is True
    assert vacant["source"] == "lookup-x"
    assert vacant["observed_at"].startswith("2026-11-20T10:00:00")
    off = json.loads(run("numbers", "status", "13612345678", "--db", db, "--json"))
    assert off["status"] == "powered_off"
    assert off["known_dead"] is False
    assert off["recheck_at"] is not None


def test_config_check(tmp_path: Path) -> None:
    assert "valid campaign" in run("config", "check", "examples/cart-recovery/campaign.yaml")
    bad = tmp_path / "c.yaml"
    bad.write_text("name: x\ndial:\n  mode: predictiv\n", encoding="utf-8")
    with pytest.raises(DialerError, match=r"c\.yaml:3:\d+: dial\.mode"):
        run("config", "check", str(bad))


def test_a_sip_campaign_with_a_trunk_it_cannot_use_stores_nothing(tmp_path: Path) -> None:
    (tmp_path / "leads.csv").write_text("phone\n+8613800138000\n", encoding="utf-8")
    (tmp_path / "c.yaml").write_text(json.dumps({
        "name": "sip-tcp", "region": "CN", "telephony": "sip", "compliance": "cn-marketing",
        "leads": {"file": "leads.csv"}, "dial": {"mode": "progressive"},
        "agents": {"softphones": {"a1": "sip:a1@127.0.0.1:5999"}},
        "lines": {"trunks": [{"name": "t", "sip": "sip:127.0.0.1:5998", "transport": "tcp",
                              "channels": 2, "cps": 1}], "pools": {"main": ["t"]}},
    }), encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'd.db'}"
    with pytest.raises(DialerError, match="trunk t: the SIP backend sends over UDP only"):
        run("run", str(tmp_path / "c.yaml"), "--db", db)
    with open_store(db) as store, store.read() as uow:
        assert uow.campaign_id("sip-tcp") is None  # nothing imported, nothing remembered
