"""Reading real lead files, written by the tests in every supported encoding and format."""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import io
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

from dialer.errors import BrokenFileError, EncodingError, IntakeError, NoPhoneColumnError
from dialer.intake.readers import (
    LeadTable,
    cell_to_str,
    find_phone_column,
    open_lead_table,
    sha256_of_file,
)

CHINESE = "姓名,手机号码,城市\n张三,13512345678,北京\n李四,13612345678,上海\n"


def write_bytes(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def write_xlsx(tmp_path: Path, name: str, sheets: dict[str, Sequence[Sequence[object]]]) -> Path:
    workbook = Workbook()
    workbook.remove(workbook.active)
    for title, rows in sheets.items():
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(list(row))
    path = tmp_path / name
    workbook.save(path)
    return path


def read_all(path: Path, **kwargs: str) -> tuple[LeadTable, list[tuple[int, list[str]]]]:
    with open_lead_table(path, **kwargs) as table:
        return table, list(table.rows())


# --- encodings -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (CHINESE.encode("utf-8"), "utf-8"),
        (CHINESE.encode("utf-8-sig"), "utf-8-sig"),
        (CHINESE.encode("utf-16"), "utf-16"),
        (codecs.BOM_UTF16_BE + CHINESE.encode("utf-16-be"), "utf-16"),
        (CHINESE.encode("utf-16-le"), "utf-16-le"),
        (CHINESE.encode("utf-16-be"), "utf-16-be"),
        (CHINESE.encode("gbk"), "gb18030"),
    ],
    ids=["utf-8", "utf-8-sig", "utf-16", "utf-16-be-bom", "utf-16-le", "utf-16-be", "gbk"],
)
def test_each_encoding_reads_the_same_rows(tmp_path: Path, data: bytes, expected: str) -> None:
    table, rows = read_all(write_bytes(tmp_path, "leads.csv", data))
    assert table.info.encoding == expected
    assert table.info.kind == "csv"
    assert table.info.headers == ("姓名", "手机号码", "城市")
    assert table.info.phone_index == 1
    assert table.info.size_bytes == len(data)
    assert rows == [(1, ["张三", "13512345678", "北京"]), (2, ["李四", "13612345678", "上海"])]


@pytest.mark.parametrize("rare", ["𠀀", "€"])
def test_gb18030_with_characters_outside_gbk(tmp_path: Path, rare: str) -> None:
    text = f"name,phone\n王{rare},13512345678\n"
    with pytest.raises(UnicodeEncodeError):
        text.encode("gbk")
    table, rows = read_all(write_bytes(tmp_path, "leads.csv", text.encode("gb18030")))
    assert table.info.encoding == "gb18030"
    assert rows == [(1, [f"王{rare}", "13512345678"])]


def test_pure_ascii_is_reported_as_utf8(tmp_path: Path) -> None:
    table, _ = read_all(write_bytes(tmp_path, "leads.csv", b"phone\n13512345678\n"))
    assert table.info.encoding == "utf-8"


def test_bytes_invalid_in_utf8_and_gb18030(tmp_path: Path) -> None:
    data = b"phone\n\x80\x80\x80\n"
    with pytest.raises(UnicodeDecodeError):
        data.decode("gb18030")
    with pytest.raises(EncodingError) as caught:
        open_lead_table(write_bytes(tmp_path, "leads.csv", data))
    message = str(caught.value)
    assert message.startswith("leads.csv: ")
    assert "utf-8 (invalid byte at offset 6, line 2)" in message
    assert "gb18030 (invalid byte at offset 6, line 2)" in message
    assert "CSV UTF-8" in message


def test_bad_byte_offset_counts_across_chunks(tmp_path: Path) -> None:
    # A 3-byte UTF-8 character split by the 1 MiB chunk boundary, then a bad byte.
    data = b"phone\n" + b"1" * ((1 << 20) - 7) + "号".encode() + b"\n\xff\xff\n"
    with pytest.raises(EncodingError, match=rf"utf-8 \(invalid byte at offset {len(data) - 3},"):
        open_lead_table(write_bytes(tmp_path, "big.csv", data))


def test_bom_then_invalid_bytes(tmp_path: Path) -> None:
    data = codecs.BOM_UTF8 + b"phone\n135\xff\n"
    with pytest.raises(EncodingError, match=r"leads\.csv: .*offset 12"):
        open_lead_table(write_bytes(tmp_path, "leads.csv", data))


# --- CSV dialect and structure ---------------------------------------------------------


@pytest.mark.parametrize("delimiter", ["\t", ";", "|", ","])
def test_delimiters(tmp_path: Path, delimiter: str) -> None:
    text = delimiter.join(["Name", "Mobile", "City"]) + "\n"
    text += delimiter.join(["Ann, Jr", "13512345678", "Oslo"]) + "\n"
    if delimiter == ",":
        text = text.replace("Ann, Jr", '"Ann, Jr"')
    table, rows = read_all(write_bytes(tmp_path, "leads.txt", text.encode()))
    assert table.info.headers == ("Name", "Mobile", "City")
    assert rows == [(1, ["Ann, Jr", "13512345678", "Oslo"])]


def test_quoted_fields_with_commas_and_newlines(tmp_path: Path) -> None:
    text = 'name,phone,note\n"Li, Wei",13512345678,"line one\nline two"\nBo,13612345678,x\n'
    _, rows = read_all(write_bytes(tmp_path, "leads.csv", text.encode()))
    assert rows == [
        (1, ["Li, Wei", "13512345678", "line one\nline two"]),
        (2, ["Bo", "13612345678", "x"]),
    ]


def test_empty_rows_are_skipped_but_counted(tmp_path: Path) -> None:
    text = "\n  \nphone,name\r\n135,a\r\n\r\n,\r\n136,b\r\n"
    _, rows = read_all(write_bytes(tmp_path, "leads.csv", text.encode()))
    assert rows == [(1, ["135", "a"]), (4, ["136", "b"])]


def test_short_rows_are_padded_and_long_rows_truncated(tmp_path: Path) -> None:
    text = "phone,name,city\n135\n136,b,c,extra\n"
    _, rows = read_all(write_bytes(tmp_path, "leads.csv", text.encode()))
    assert rows == [(1, ["135", "", ""]), (2, ["136", "b", "c"])]


def test_single_column_file(tmp_path: Path) -> None:
    table, rows = read_all(write_bytes(tmp_path, "leads.csv", "手机\n135\n136\n".encode()))
    assert table.info.headers == ("手机",)
    assert rows == [(1, ["135"]), (2, ["136"])]


def test_headers_are_cleaned_and_deduplicated(tmp_path: Path) -> None:
    text = "\ufeff name ,\u3000电话\u3000,name,,name_2,name\n1,2,3,4,5,6\n"
    table, rows = read_all(write_bytes(tmp_path, "leads.csv", text.encode("utf-16")))
    assert table.info.headers == ("name", "电话", "name_3", "column_4", "name_2", "name_4")
    assert table.info.phone_index == 1
    assert rows == [(1, ["1", "2", "3", "4", "5", "6"])]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "gb18030"])
def test_nul_character_names_the_line(tmp_path: Path, encoding: str) -> None:
    text = "phone,name\n" + "135,张\n" * 40 + "136,b\x00c\n"
    with pytest.raises(BrokenFileError, match=r"leads\.csv: contains a NUL character on line 42"):
        read_all(write_bytes(tmp_path, "leads.csv", text.encode(encoding)))


def test_field_larger_than_the_limit(tmp_path: Path) -> None:
    data = b'phone,note\n135,"' + b"x" * (1 << 20) + b'y"\n'
    with pytest.raises(BrokenFileError, match=r"data row 1 \(field larger than field limit"):
        read_all(write_bytes(tmp_path, "leads.csv", data))


@pytest.mark.parametrize("data", [b"", b"  \n\r\n\t\n", b",,\n,,\n", "\n".encode("utf-16")])
def test_empty_files(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(IntakeError, match=r"leads\.csv: is empty"):
        open_lead_table(write_bytes(tmp_path, "leads.csv", data))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(IntakeError, match=r"nope\.csv: cannot be read"):
        open_lead_table(tmp_path / "nope.csv")


# --- phone column ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (["name", "Phone Number"], 1),
        (["Name", "Hotel", "Mobile_No"], 2),
        (["hotel", "Tel."], 1),
        (["hotel", "home tel"], 1),
        (["contact", "cell-phone"], 1),
        (["number", "contact"], 0),
        (["phone", "mobile"], 0),
        (["ＰＨＯＮＥ"], 0),
        (["客户姓名", "客户手机号", "备用电话"], 1),
        (["姓名", "联系方式"], 1),
        (["姓名", "号码", "手机号码1"], 2),
        (["id", "Customer Phone (home)"], 1),
    ],
)
def test_find_phone_column(headers: list[str], expected: int) -> None:
    assert find_phone_column(headers) == expected


@pytest.mark.parametrize("headers", [["name", "city"], ["hotel", "motel"], []])
def test_find_phone_column_none(headers: list[str]) -> None:
    with pytest.raises(NoPhoneColumnError, match="--column"):
        find_phone_column(headers)


def test_column_override_by_name_and_index(tmp_path: Path) -> None:
    path = write_bytes(tmp_path, "leads.csv", b"phone,Backup,other\n1,2,3\n")
    assert read_all(path, column=" backup ")[0].info.phone_index == 1
    assert read_all(path, column="3")[0].info.phone_index == 2
    with pytest.raises(NoPhoneColumnError, match=r"leads\.csv: no column 'fax'.*1 to 3"):
        open_lead_table(path, column="fax")
    with pytest.raises(NoPhoneColumnError):
        open_lead_table(path, column="4")


def test_no_phone_column_lists_headers(tmp_path: Path) -> None:
    path = write_bytes(tmp_path, "leads.csv", b"name,city\nAnn,Oslo\n")
    with pytest.raises(NoPhoneColumnError) as caught:
        open_lead_table(path)
    assert str(caught.value) == (
        "leads.csv: no phone column found among headers ['name', 'city']; name it with --column"
    )


def test_headerless_file_does_not_leak_the_first_row(tmp_path: Path) -> None:
    path = write_bytes(tmp_path, "leads.csv", "张三,135 1234 5678\n".encode())
    with pytest.raises(NoPhoneColumnError) as caught:
        open_lead_table(path)
    assert "looks like data" in str(caught.value)
    assert "张三" not in str(caught.value)
    assert "1234" not in str(caught.value)


# --- XLSX ------------------------------------------------------------------------------


def test_xlsx_numbers_as_floats_ints_and_strings(tmp_path: Path) -> None:
    when = dt.datetime(2024, 5, 1, 9, 30)
    rows: list[list[object]] = [
        ["姓名", "手机号码", "其他"],
        ["a", 13512345678.0, 1.5],
        ["b", 1.5012345678e10, True],
        ["c", 13712345678, when],
        ["d", "13812345678", None],
        [None, None, None],
        ["e"],
    ]
    path = write_xlsx(tmp_path, "leads.xlsx", {"Sheet1": rows})
    table, got = read_all(path)
    assert table.info.kind == "xlsx"
    assert table.info.encoding is None
    assert table.info.phone_index == 1
    assert got == [
        (1, ["a", "13512345678", "1.5"]),
        (2, ["b", "15012345678", "true"]),
        (3, ["c", "13712345678", "2024-05-01T09:30:00"]),
        (4, ["d", "13812345678", ""]),
        (6, ["e", "", ""]),
    ]
    assert table.bytes_read() == table.info.size_bytes


def test_xlsx_rows_are_numbered_below_the_header(tmp_path: Path) -> None:
    workbook = Workbook()
    sheet = workbook.active
    sheet["B3"] = "phone"
    sheet["B5"] = 13512345678.0
    sheet["A9"] = "x"
    path = tmp_path / "gaps.xlsx"
    workbook.save(path)
    table, rows = read_all(path)
    assert table.info.headers == ("column_1", "phone")
    assert rows == [(2, ["", "13512345678"]), (6, ["x", ""])]


def test_xlsx_sheet_selection(tmp_path: Path) -> None:
    sheets = {"Summary": [["total"], [2]], "名单": [["电话"], [13512345678.0]]}
    path = write_xlsx(tmp_path, "leads.xlsm", sheets)
    assert read_all(path, sheet="名单")[1] == [(1, ["13512345678"])]
    with pytest.raises(IntakeError, match=r"leads\.xlsm: has no sheet 'x'.*\['Summary', '名单'\]"):
        open_lead_table(path, sheet="x")
    with pytest.raises(NoPhoneColumnError, match=r"leads\.xlsm: no phone column"):
        open_lead_table(path)


def test_xlsx_header_only_and_empty(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path, "leads.xlsx", {"A": [["phone"]], "B": []})
    assert read_all(path)[1] == []
    with pytest.raises(IntakeError, match=r"leads\.xlsx: is empty"):
        open_lead_table(path, sheet="B")


def test_truncated_xlsx(tmp_path: Path) -> None:
    whole = write_xlsx(tmp_path, "whole.xlsx", {"S": [["phone"], *[[i] for i in range(500)]]})
    data = whole.read_bytes()
    path = write_bytes(tmp_path, "leads.xlsx", data[: len(data) // 2])
    with pytest.raises(BrokenFileError, match=r"leads\.xlsx: is not a valid XLSX file"):
        open_lead_table(path)


def test_xlsx_with_a_corrupt_sheet(tmp_path: Path) -> None:
    import zipfile

    whole = write_xlsx(tmp_path, "whole.xlsx", {"S": [["phone"], [1], [2]]})
    path = tmp_path / "leads.xlsx"
    with zipfile.ZipFile(whole) as source, zipfile.ZipFile(path, "w") as target:
        for item in source.infolist():
            content = source.read(item)
            if item.filename.endswith("sheet1.xml"):
                content = content[: len(content) - 40]
            target.writestr(item, content)
    with pytest.raises(BrokenFileError, match=r"leads\.xlsx: is not a valid XLSX"):
        read_all(path)


def test_csv_that_is_really_xlsx(tmp_path: Path) -> None:
    workbook = write_xlsx(tmp_path, "w.xlsx", {"S": [["phone"], [1]]})
    path = write_bytes(tmp_path, "leads.csv", workbook.read_bytes())
    with pytest.raises(BrokenFileError, match=r"leads\.csv: looks like an Excel \(\.xlsx\)"):
        open_lead_table(path)


def test_xlsx_that_is_really_text(tmp_path: Path) -> None:
    path = write_bytes(tmp_path, "leads.xlsx", b"phone\n135\n")
    with pytest.raises(BrokenFileError, match=r"leads\.xlsx: is not a valid XLSX file"):
        open_lead_table(path)


def test_legacy_xls_is_refused(tmp_path: Path) -> None:
    path = write_bytes(tmp_path, "leads.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600)
    with pytest.raises(BrokenFileError, match=r"leads\.xls: is a legacy Excel"):
        open_lead_table(path)


def test_unknown_extension_is_sniffed(tmp_path: Path) -> None:
    workbook = write_xlsx(tmp_path, "w.xlsx", {"S": [["phone"], [1]]})
    as_dat = write_bytes(tmp_path, "leads.dat", workbook.read_bytes())
    assert read_all(as_dat)[0].info.kind == "xlsx"
    assert read_all(write_bytes(tmp_path, "leads", b"phone\n1\n"))[0].info.kind == "csv"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        (0, "0"),
        (-0.0, "0"),
        (2.5, "2.5"),
        (1e20, "100000000000000000000"),
        (float("nan"), "nan"),
        (False, "false"),
        (dt.date(2024, 1, 2), "2024-01-02"),
        (dt.time(8, 0), "08:00:00"),
        ("x", "x"),
    ],
)
def test_cell_to_str(value: object, text: str) -> None:
    assert cell_to_str(value) == text


# --- table behaviour -------------------------------------------------------------------


def test_progress_and_close(tmp_path: Path) -> None:
    data = b"phone\n" + b"13512345678\n" * 20_000
    path = write_bytes(tmp_path, "leads.csv", data)
    with open_lead_table(path) as table:
        seen = [table.bytes_read() for _ in table.rows()]
        assert seen == sorted(seen)
        assert 0 < seen[0] < len(data)
        assert table.bytes_read() == len(data)
        with pytest.raises(RuntimeError):
            table.rows()
    table.close()
    assert table.bytes_read() == len(data)


def test_closing_early_releases_files(tmp_path: Path) -> None:
    csv_path = write_bytes(tmp_path, "leads.csv", b"phone\n1\n2\n")
    xlsx_path = write_xlsx(tmp_path, "leads.xlsx", {"S": [["phone"], [1], [2]]})
    for path in (csv_path, xlsx_path):
        with open_lead_table(path) as table:
            next(iter(table.rows()))


def test_sha256_is_stable(tmp_path: Path) -> None:
    data = CHINESE.encode("gbk") * 1000
    path = write_bytes(tmp_path, "leads.csv", data)
    assert sha256_of_file(path) == sha256_of_file(path) == hashlib.sha256(data).hexdigest()


_CELL = st.text(
    alphabet=st.sampled_from("abc XYZ 张三李 0123456789 ,;|\t\"'\n-"), min_size=1, max_size=12
).filter(lambda s: s.strip() != "")


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(st.lists(_CELL, min_size=3, max_size=3), min_size=1, max_size=8),
    delimiter=st.sampled_from(",\t;"),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "gb18030"]),
)
def test_round_trip(tmp_path: Path, rows: list[list[str]], delimiter: str, encoding: str) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerows([["name", "phone", "note"], *rows])
    path = write_bytes(tmp_path, "leads.csv", buffer.getvalue().encode(encoding))
    table, got = read_all(path)
    assert table.info.headers == ("name", "phone", "note")
    assert got == list(enumerate(rows, 1))
