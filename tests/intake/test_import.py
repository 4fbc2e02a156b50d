"""Importing lead files into a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import codecs
from datetime import UTC, datetime, timedelta
from pathlib import Path

import openpyxl
import pytest

from dialer.errors import EncodingError, IntakeError, NoPhoneColumnError
from dialer.intake.service import IntakeOptions, IntakeSummary, import_file
from dialer.store import Store, SuppressionScope
from rules.number_status import NumberStatus, RecheckPolicy

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)

ROWS = [
    ("王伟", "13512345678", "上海"),
    ("李娜", "+86 136 1234 5678", "北京"),
    ("张敏", "13512345678.0", "广州"),  # duplicate of row 1
    ("刘洋", "", "深圳"),  # empty
    ("陈静", "无", "杭州"),  # unparseable
    ("杨丽", "10512345678", "成都"),  # invalid
    ("黄强", "4001234567", "武汉"),  # type not allowed
    ("赵磊", "１３７１２３４５６７８", "南京"),  # full-width: accepted unless suppressed
]


def write_csv(path: Path, rows: list[tuple[str, str, str]], encoding: str = "utf-8") -> Path:
    lines = ["姓名,手机号,城市"] + [",".join(row) for row in rows]
    data = "\r\n".join(lines) + "\r\n"
    if encoding == "utf-16":
        path.write_bytes(codecs.BOM_UTF16_LE + data.encode("utf-16-le"))
    else:
        path.write_bytes(data.encode(encoding))
    return path


def run_import(
    store: Store, path: Path, campaign: str = "spring", **options: object
) -> IntakeSummary:
    with store.write() as uow:
        return import_file(uow, path, campaign=campaign, source="vendor-a",
                           options=IntakeOptions(**options), now=NOW, actor="test")  # type: ignore[arg-type]


def lead_numbers(store: Store, campaign: str = "spring") -> set[str]:
    with store.read() as uow:
        campaign_id = uow.campaign_id(campaign)
        assert campaign_id is not None
        return {lead.e164 for lead in uow.leads_sample(campaign_id, 10_000)}


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "gbk", "gb18030"])
def test_import_in_every_encoding(store: Store, tmp_path: Path, encoding: str) -> None:
    summary = run_import(store, write_csv(tmp_path / "leads.csv", ROWS, encoding))
    assert summary.rows_read == 8
    assert summary.accepted == 3
    assert summary.rejected == {"empty": 1, "unparseable": 1, "invalid": 1,
                                "type_not_allowed": 1, "duplicate": 1}
    assert lead_numbers(store) == {"+8613512345678", "+8613612345678", "+8613712345678"}


def test_lead_keeps_its_other_columns(store: Store, tmp_path: Path) -> None:
    run_import(store, write_csv(tmp_path / "leads.csv", ROWS[:1]))
    with store.read() as uow:
        campaign_id = uow.campaign_id("spring")
        assert campaign_id is not None
        (lead,) = uow.leads_sample(campaign_id, 10)
    assert lead.attributes == {"姓名": "王伟", "城市": "上海"}
    assert lead.number_type == "mobile"
    assert lead.timezones == ("Asia/Shanghai",)


def test_reimport_adds_nothing_twice(store: Store, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "leads.csv", ROWS)
    first = run_import(store, path)
    second = run_import(store, path)
    assert second.already_imported
    assert second.list_id == first.list_id
    assert second.accepted == 0
    assert second.verdicts["duplicate"] == 4  # the three leads and the in-file duplicate
    with store.read() as uow:
        campaign_id = uow.campaign_id("spring")
        assert campaign_id is not None
        assert uow.count_leads(campaign_id) == 3
        assert len(uow.lists(campaign_id)) == 1


def test_suppressed_and_dead_numbers_are_rejected(store: Store, tmp_path: Path) -> None:
    with store.write() as uow:
        uow.add_suppression("+8613712345678", scope=SuppressionScope.GLOBAL, campaign=None,
                            reason="opt-out", actor="test", now=NOW)
        uow.put_number_status(RecheckPolicy().record(
            "+8613612345678", NumberStatus.VACANT, NOW - timedelta(days=1), "carrier"),
            actor="test")
    summary = run_import(store, write_csv(tmp_path / "leads.csv", ROWS))
    assert summary.verdicts["suppressed"] == 1
    assert summary.verdicts["known_dead"] == 1
    assert lead_numbers(store) == {"+8613512345678"}


def test_campaign_scoped_suppression_applies_to_its_campaign_only(
    store: Store, tmp_path: Path
) -> None:
    with store.write() as uow:
        uow.add_suppression("+8613512345678", scope=SuppressionScope.CAMPAIGN,
                            campaign="spring", reason="complaint", actor="test", now=NOW)
    path = write_csv(tmp_path / "leads.csv", ROWS[:1])
    assert run_import(store, path, campaign="spring").verdicts["suppressed"] == 1
    assert run_import(store, path, campaign="autumn").accepted == 1


def test_xlsx_with_float_numbers(store: Store, tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["name", "mobile"])
    sheet.append(["a", 13512345678.0])
    sheet.append(["b", 1.5012345678e10])
    sheet.append(["c", "+86 188 1234 5678"])
    path = tmp_path / "leads.xlsx"
    book.save(path)
    summary = run_import(store, path)
    assert summary.accepted == 3
    assert lead_numbers(store) == {"+8613512345678", "+8615012345678", "+8618812345678"}


def broken_files(tmp_path: Path) -> dict[str, tuple[Path, type[IntakeError]]]:
    bad_encoding = tmp_path / "bad.csv"
    bad_encoding.write_bytes("手机号\n13512345678\n".encode() + b"\x80\x80\x80\n")
    no_phone = tmp_path / "nophone.csv"
    no_phone.write_text("name,city\n王伟,上海\n", encoding="utf-8")
    good = write_csv(tmp_path / "good.csv", ROWS)
    book = openpyxl.Workbook()
    book.active.append(["phone"])
    for i in range(2000):
        book.active.append([f"1351234{i:04d}"])
    whole = tmp_path / "whole.xlsx"
    book.save(whole)
    truncated = tmp_path / "truncated.xlsx"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    assert good.exists()
    return {
        "bad encoding": (bad_encoding, EncodingError),
        "no phone column": (no_phone, NoPhoneColumnError),
        "truncated xlsx": (truncated, IntakeError),
    }


@pytest.mark.parametrize("case", ["bad encoding", "no phone column", "truncated xlsx"])
def test_broken_file_leaves_the_store_unchanged(store: Store, tmp_path: Path, case: str) -> None:
    run_import(store, write_csv(tmp_path / "first.csv", ROWS))
    with store.read() as uow:
        before = (uow.count_leads(uow.campaign_id("spring") or 0), len(uow.audit_entries()))
    path, error = broken_files(tmp_path)[case]
    with pytest.raises(error) as raised:
        run_import(store, path)
    assert path.name in str(raised.value)
    assert "1351234" not in str(raised.value)  # no personal data in messages
    with store.read() as uow:
        campaign_id = uow.campaign_id("spring")
        assert campaign_id is not None
        assert (uow.count_leads(campaign_id), len(uow.audit_entries())) == before
        assert len(uow.lists(campaign_id)) == 1


def test_a_failure_midway_rolls_back_everything(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file that breaks after some chunks were inserted leaves nothing behind."""
    from dialer.intake import pipeline

    monkeypatch.setattr(pipeline, "CHUNK_ROWS", 2)
    path = tmp_path / "leads.csv"
    huge_field = "x" * 2_000_000  # over the reader's field size limit: csv.Error at row 5
    path.write_text(f"phone,note\n13512345678,a\n13612345678,b\n13712345678,c\n"
                    f"13812345678,d\n13912345678,{huge_field}\n", encoding="utf-8")
    with pytest.raises(IntakeError, match="row 5"):
        run_import(store, path)
    with store.read() as uow:
        assert uow.campaign_id("spring") is None
