"""Reading lead files (CSV in UTF-8/UTF-16/GB18030, XLSX) as a stream of string rows.

`open_lead_table` looks at a file once up front (kind, encoding, delimiter, headers,
phone column) and returns a `LeadTable` whose `rows()` streams the data rows.

Row numbers: row 1 is the first record after the header row. Every record after the
header counts, including entirely empty ones, which `rows()` skips, so a reported row
number is the record's position below the header in the file (in a spreadsheet with
the header on line 1, data row N is on line N + 1). Records before the header are not
counted. A quoted CSV field spanning several lines is one record.

Errors are `IntakeError`s naming the file (basename) and a row or byte offset, never a
cell's content.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import os
import warnings
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Literal

from openpyxl import load_workbook
from openpyxl.utils.exceptions import InvalidFileException

from dialer.errors import BrokenFileError, IntakeError, NoPhoneColumnError
from dialer.intake.sniffing import (
    HEAD_SIZE,
    clean_headers,
    detect_encoding,
    detect_kind,
    find_phone_column,
    sniff_delimiter,
)

__all__ = [
    "LeadTable",
    "TableInfo",
    "cell_to_str",
    "find_phone_column",
    "open_lead_table",
    "sha256_of_file",
]

_SAMPLE_CHARS = 64 * 1024
_FIELD_SIZE_LIMIT = 1 << 20

# What openpyxl and the zip/XML layers raise on a truncated or corrupt workbook.
# SyntaxError covers xml.etree's ParseError (and lxml's XMLSyntaxError when installed).
_XLSX_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    InvalidFileException,
    KeyError,
    EOFError,
    SyntaxError,
    ValueError,
    TypeError,
    IndexError,
)


@dataclass(frozen=True, slots=True)
class TableInfo:
    path: Path
    kind: Literal["csv", "xlsx"]
    encoding: str | None  # codec name for CSV ("utf-8", "utf-16", "gb18030", ...); None for xlsx
    headers: tuple[str, ...]  # stripped; duplicates suffixed "_2", "_3"; blanks "column_N"
    phone_index: int
    size_bytes: int


class LeadTable:
    """An open lead file. Use as a context manager; `rows()` may be iterated once.

    - `rows()` yields `(row_number, cells)`; `cells` has exactly `len(info.headers)`
      strings (short rows padded with "", long rows truncated); empty rows are skipped.
    - `bytes_read()` is monotonic, at most `info.size_bytes`, for a progress bar
      (an estimate for XLSX).
    - `close()` is idempotent.
    """

    info: TableInfo

    def __init__(self, info: TableInfo) -> None:
        self.info = info
        self._started = False

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        if self._started:
            raise RuntimeError("LeadTable.rows() can be iterated only once")
        self._started = True
        return self._rows()

    def _rows(self) -> Iterator[tuple[int, list[str]]]:
        raise NotImplementedError

    def bytes_read(self) -> int:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> LeadTable:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_lead_table(
    path: Path, *, column: str | None = None, sheet: str | None = None
) -> LeadTable:
    """Open a CSV or XLSX lead file; `column` overrides phone-column detection."""
    path = Path(path)
    size, head = _stat_and_head(path)
    if detect_kind(path, head) == "xlsx":
        return _XlsxTable.open(path, size, column=column, sheet=sheet)
    return _CsvTable.open(path, size, head, column=column)


def sha256_of_file(path: Path) -> str:
    """Hex SHA-256 of the file's bytes, read in chunks."""
    try:
        with Path(path).open("rb") as file:
            return hashlib.file_digest(file, "sha256").hexdigest()
    except OSError as exc:
        raise IntakeError(f"{Path(path).name}: cannot be read ({exc.strerror})") from exc


def _stat_and_head(path: Path) -> tuple[int, bytes]:
    try:
        with path.open("rb") as file:
            size = os.fstat(file.fileno()).st_size
            head = file.read(HEAD_SIZE)
    except OSError as exc:
        raise IntakeError(f"{path.name}: cannot be read ({exc.strerror})") from exc
    if size == 0:
        raise IntakeError(f"{path.name}: is empty; export the leads again")
    return size, head


class _CsvTable(LeadTable):
    def __init__(self, info: TableInfo, binary: BinaryIO, reader: Iterator[list[str]]) -> None:
        super().__init__(info)
        self._binary = binary
        self._reader = reader

    @classmethod
    def open(cls, path: Path, size: int, head: bytes, *, column: str | None) -> _CsvTable:
        encoding = detect_encoding(path, head)
        with path.open(encoding=encoding, newline="") as sample:
            delimiter = sniff_delimiter(sample.read(_SAMPLE_CHARS))
        # Process-wide; raised to fit long notes, never lowered, never unbounded.
        csv.field_size_limit(max(csv.field_size_limit(), _FIELD_SIZE_LIMIT))
        binary = path.open("rb")
        try:
            text = io.TextIOWrapper(binary, encoding=encoding, newline="")
            reader = csv.reader(text, delimiter=delimiter)
            headers = clean_headers(_header_row(path, reader))
            phone_index = _phone_index(path, headers, column)
        except BaseException:
            binary.close()
            raise
        info = TableInfo(path, "csv", encoding, headers, phone_index, size)
        return cls(info, binary, reader)

    def _rows(self) -> Iterator[tuple[int, list[str]]]:
        width = len(self.info.headers)
        number = 0
        try:
            for row in self._reader:
                number += 1
                if not row or (not row[0].strip() and not "".join(row).strip()):
                    continue
                if len(row) != width:
                    row = (row + [""] * width)[:width]
                yield number, row
        except (csv.Error, UnicodeDecodeError) as exc:
            raise BrokenFileError(
                f"{self.info.path.name}: cannot read data row {number + 1} "
                f"({_reason(exc)}); fix or remove that row and try again"
            ) from exc

    def bytes_read(self) -> int:
        if self._binary.closed:
            return self.info.size_bytes
        return min(self._binary.tell(), self.info.size_bytes)

    def close(self) -> None:
        self._binary.close()


def _header_row(path: Path, reader: Iterator[list[str]]) -> list[str]:
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                return row
    except (csv.Error, UnicodeDecodeError) as exc:
        raise BrokenFileError(f"{path.name}: cannot read the header row ({_reason(exc)})") from exc
    raise IntakeError(f"{path.name}: is empty (no header row); export the leads again")


def _reason(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return f"undecodable {exc.encoding} bytes; the file changed while being read?"
    return str(exc)


def _phone_index(path: Path, headers: tuple[str, ...], column: str | None) -> int:
    """`find_phone_column`, with the file name in front of its message."""
    try:
        return find_phone_column(headers, column)
    except NoPhoneColumnError as exc:
        raise NoPhoneColumnError(f"{path.name}: {exc}") from None


class _XlsxTable(LeadTable):
    def __init__(
        self, info: TableInfo, file: BinaryIO, workbook: Any, worksheet: Any, values: Any
    ) -> None:
        super().__init__(info)
        self._file = file
        self._workbook = workbook
        self._values: Iterator[tuple[Any, ...]] = values
        self._total_rows = max(int(worksheet.max_row or 0), 1)  # from the sheet's dimension
        self._rows_read = 0
        self._done = False

    @classmethod
    def open(cls, path: Path, size: int, *, column: str | None, sheet: str | None) -> _XlsxTable:
        file = path.open("rb")
        workbook: Any = None
        try:
            workbook = _load_workbook(path, file)
            worksheet = _pick_sheet(path, workbook, sheet)
            values = _sheet_values(path, worksheet)
            headers = clean_headers(_xlsx_header_row(path, values))
            info = TableInfo(path, "xlsx", None, headers, _phone_index(path, headers, column), size)
        except BaseException:
            if workbook is not None:
                workbook.close()
            file.close()
            raise
        return cls(info, file, workbook, worksheet, values)

    def _rows(self) -> Iterator[tuple[int, list[str]]]:
        width = len(self.info.headers)
        for values in self._values:
            self._rows_read += 1
            row = [cell_to_str(v) for v in values[:width]]
            if not any(cell.strip() for cell in row):
                continue
            if len(row) < width:
                row += [""] * (width - len(row))
            yield self._rows_read, row
        self._done = True

    def bytes_read(self) -> int:
        if self._done:
            return self.info.size_bytes
        fraction = min((self._rows_read + 1) / self._total_rows, 1.0)  # + 1 for the header
        return int(fraction * self.info.size_bytes)

    def close(self) -> None:
        try:
            self._workbook.close()
        finally:
            self._file.close()


def _sheet_values(path: Path, worksheet: Any) -> Iterator[tuple[Any, ...]]:
    """The sheet's rows of cell values, with openpyxl's parse failures translated."""
    row = 0
    try:
        for row, values in enumerate(worksheet.iter_rows(values_only=True), 1):  # noqa: B007
            yield values
    except _XLSX_ERRORS as exc:
        raise BrokenFileError(
            f"{path.name}: is not a valid XLSX file (truncated or corrupt?): it breaks off "
            f"after spreadsheet row {row}; re-export it from Excel"
        ) from exc


def _xlsx_header_row(path: Path, values: Iterator[tuple[Any, ...]]) -> list[str]:
    for row in values:
        cells = [cell_to_str(v) for v in row]
        if any(cell.strip() for cell in cells):
            return cells
    raise IntakeError(f"{path.name}: is empty (no header row); add a header and the leads")


def _load_workbook(path: Path, file: BinaryIO) -> Any:
    try:
        with warnings.catch_warnings():
            # Style and extension notices from WPS/Excel files say nothing about the data.
            warnings.filterwarnings("ignore", category=UserWarning, module="openpyxl")
            return load_workbook(file, read_only=True, data_only=True)
    except _XLSX_ERRORS as exc:
        raise BrokenFileError(
            f"{path.name}: is not a valid XLSX file (truncated or corrupt?); "
            "re-export it from Excel, or save it as CSV and use that"
        ) from exc


def _pick_sheet(path: Path, workbook: Any, name: str | None) -> Any:
    sheets = list(workbook.worksheets)
    if not sheets:
        raise IntakeError(f"{path.name}: has no worksheets")
    if name is None:
        return sheets[0]
    for sheet in sheets:
        if sheet.title == name:
            return sheet
    for sheet in sheets:
        if sheet.title.casefold() == name.strip().casefold():
            return sheet
    titles = [sheet.title for sheet in sheets]
    raise IntakeError(f"{path.name}: has no sheet {name!r}; its sheets are {titles}")


def cell_to_str(value: object) -> str:
    """An XLSX cell as text; integral floats lose their ".0" (phone numbers stored as numbers)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return str(value)
