"""Guessing a lead file's shape: container kind, text encoding, delimiter, phone column.

Everything here reads files in bounded chunks; nothing loads a whole file into memory.
Errors name the file and byte offsets or line numbers, never the bytes' content.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from dialer.errors import BrokenFileError, EncodingError, NoPhoneColumnError

Kind = Literal["csv", "xlsx"]

HEAD_SIZE = 4096
CHUNK_SIZE = 1 << 20

ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .xls, and encrypted .xlsx

CSV_SUFFIXES = frozenset({".csv", ".txt", ".tsv"})
XLSX_SUFFIXES = frozenset({".xlsx", ".xlsm"})

DELIMITERS = ",\t;|"
_SNIFF_LINES = 50

# Normalised header names that certainly hold phone numbers, then ones that usually do.
_STRONG_NAMES = frozenset(
    (
        *("phone", "phonenumber", "phoneno", "mobile", "mobilephone", "mobileno"),
        *("mobilenumber", "cell", "cellphone", "tel", "telephone", "telno", "msisdn"),
        *("contactnumber", "手机", "手机号", "手机号码", "电话", "电话号码", "联系电话"),
        *("移动电话", "手机号码1", "客户电话", "客户手机"),
    )
)
_WEAK_NAMES = frozenset(("number", "contact", "号码", "联系方式"))
_PARTS = ("手机", "电话", "phone", "mobile")
_SEPARATORS = re.compile(r"[\s_\-.]+")
_ASCII_WORDS = re.compile(r"[a-z]+")
_DIGIT_RUN = re.compile(r"\d{7,}")
_INVISIBLE = str.maketrans("", "", "\ufeff\u200b")

# (byte-order mark, codec reading the file, codec of the bytes after the mark)
_BOMS: tuple[tuple[bytes, str, str], ...] = (
    (codecs.BOM_UTF8, "utf-8-sig", "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16", "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16", "utf-16-be"),
)


def detect_kind(path: Path, head: bytes) -> Kind:
    """Say whether `path` is read as CSV or XLSX, checking its name against its content."""
    name = path.name
    if head.startswith(OLE_MAGIC):
        raise BrokenFileError(
            f"{name}: is a legacy Excel (.xls) or password-protected workbook, which cannot "
            "be read; open it in Excel or WPS and save it as .xlsx or CSV UTF-8"
        )
    is_zip = head.startswith(ZIP_MAGIC)
    suffix = path.suffix.lower()
    if suffix in XLSX_SUFFIXES:
        if not is_zip:
            raise BrokenFileError(
                f"{name}: is not a valid XLSX file (truncated or corrupt?); "
                "re-export it from Excel, or save it as CSV and use that"
            )
        return "xlsx"
    if suffix in CSV_SUFFIXES:
        if is_zip:
            raise BrokenFileError(
                f"{name}: looks like an Excel (.xlsx) workbook despite its {suffix} name; "
                "rename it to .xlsx, or save it from Excel as CSV UTF-8"
            )
        return "csv"
    return "xlsx" if is_zip else "csv"


def detect_encoding(path: Path, head: bytes) -> str:
    """Return the codec name that decodes the whole of `path` strictly.

    Order: a byte-order mark; BOM-less UTF-16 recognised by its NUL bytes; UTF-8
    (pure ASCII reports "utf-8"); GB18030, a superset of GBK and GB2312.
    Raises EncodingError with the offset of the first undecodable byte, and
    BrokenFileError for a NUL character, which no text export contains.
    """
    for bom, encoding, body in _BOMS:
        if head.startswith(bom):
            bad, nul_line = scan(path, body, start=len(bom))
            if bad is not None:
                raise EncodingError(
                    f"{path.name}: starts with a {body[:6]} byte-order mark but the bytes at "
                    f"offset {bad} are not valid {body}; re-save the file as CSV UTF-8"
                )
            return _without_nul(path, encoding, nul_line)
    tried: list[str] = []
    utf16 = _utf16_by_nuls(head)
    for encoding in [utf16, "utf-8", "gb18030"] if utf16 else ["utf-8", "gb18030"]:
        bad, nul_line = scan(path, encoding)
        if bad is None:
            return _without_nul(path, encoding, nul_line)
        if not encoding.startswith("utf-16"):
            tried.append(f"{encoding} (invalid byte at offset {bad}, line {line_at(path, bad)})")
    raise EncodingError(
        f"{path.name}: cannot be decoded as {' or '.join(tried)}; "
        "open it in Excel or WPS and save it as CSV UTF-8"
    )


def _without_nul(path: Path, encoding: str, nul_line: int | None) -> str:
    if nul_line is not None:
        raise BrokenFileError(
            f"{path.name}: contains a NUL character on line {nul_line} (a binary or corrupt "
            "file?); remove it, or export the leads again"
        )
    return encoding


def _utf16_by_nuls(head: bytes) -> str | None:
    """Guess BOM-less UTF-16 from NUL bytes concentrated at odd (LE) or even (BE) offsets.

    Text in UTF-8 or GB18030 contains no NULs; UTF-16 of Latin text and digits has one
    in every other byte.
    """
    pairs = len(head) // 2
    if pairs == 0:
        return None
    even = head[0 : pairs * 2 : 2].count(0)
    odd = head[1 : pairs * 2 : 2].count(0)
    enough = max(1, pairs // 4)  # a stray NUL in a UTF-8 file is not UTF-16
    if odd >= enough and even * 4 <= odd:
        return "utf-16-le"
    if even >= enough and odd * 4 <= even:
        return "utf-16-be"
    return None


def scan(path: Path, encoding: str, start: int = 0) -> tuple[int | None, int | None]:
    """Decode `path` from `start` strictly, in 1 MiB chunks.

    Returns the byte offset of the first undecodable byte (None if all decode) and the
    1-based line of the first NUL character (None if there is none).
    """
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    position, lines, nul_line = start, 1, None
    with path.open("rb") as file:
        file.seek(start)
        while True:
            chunk = file.read(CHUNK_SIZE)
            pending = len(decoder.getstate()[0])
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                return max(0, position - pending + exc.start), nul_line
            if nul_line is None:
                nul = text.find("\x00")
                if nul >= 0:
                    nul_line = lines + text.count("\n", 0, nul)
                lines += text.count("\n")
            if not chunk:
                return None, nul_line
            position += len(chunk)


def line_at(path: Path, offset: int) -> int:
    """1-based line number of byte `offset`, counting b"\\n" (valid for UTF-8 and GB18030)."""
    newlines = 0
    remaining = offset
    with path.open("rb") as file:
        while remaining > 0:
            chunk = file.read(min(CHUNK_SIZE, remaining))
            if not chunk:
                break
            newlines += chunk.count(b"\n")
            remaining -= len(chunk)
    return newlines + 1


def sniff_delimiter(sample: str) -> str:
    """Pick the delimiter among `DELIMITERS` from the first lines of decoded text.

    csv.Sniffer's guess is kept when the first lines, parsed with it, all have the same
    number of fields (more than one); otherwise the candidate that splits the most lines
    into as many fields as the first line has. None of them: a single-column file (",").
    """
    head = sample[: _end_of_line(sample, _SNIFF_LINES)]
    try:
        guess = csv.Sniffer().sniff(head, delimiters=DELIMITERS).delimiter
    except csv.Error:
        guess = ""
    scores = {candidate: _consistency(head, candidate) for candidate in DELIMITERS}
    if guess in scores:
        agreeing, width, rows = scores[guess]
        if width > 1 and agreeing == rows:
            return guess
    best, best_score = ",", (0, 0)
    for candidate, (agreeing, width, _) in scores.items():
        if width > 1 and (agreeing, width) > best_score:
            best, best_score = candidate, (agreeing, width)
    return best


def _end_of_line(text: str, count: int) -> int:
    """Index just past the `count`-th newline of `text` (or its end)."""
    end = -1
    for _ in range(count):
        found = text.find("\n", end + 1)
        if found < 0:
            return len(text)
        end = found
    return end + 1


def _consistency(head: str, delimiter: str) -> tuple[int, int, int]:
    """(rows as wide as the first, the first row's width, rows) parsing `head` with `delimiter`."""
    rows: list[list[str]] = []
    try:
        for row in csv.reader(io.StringIO(head), delimiter=delimiter):
            if row:
                rows.append(row)
    except csv.Error:
        pass  # a field cut off at the end of the sample
    if not rows:
        return 0, 0, 0
    width = len(rows[0])
    return sum(len(row) == width for row in rows), width, len(rows)


def find_phone_column(headers: Sequence[str], column: str | None = None) -> int:
    """Index of the phone column in `headers`.

    With `column`: the header equal to it (stripped, case-insensitive), else a 1-based
    index given as digits. Without: the leftmost header whose normalised name is a known
    phone name; else the leftmost of the usual-but-vaguer names ("number", "联系方式");
    else the leftmost containing 手机, 电话, phone, mobile, or a word starting "tel".
    """
    if column is not None:
        return _explicit_column(headers, column)
    folded = [unicodedata.normalize("NFKC", h).casefold() for h in headers]
    squashed = [_SEPARATORS.sub("", name) for name in folded]
    tiers = (
        [name in _STRONG_NAMES for name in squashed],
        [name in _WEAK_NAMES for name in squashed],
        [_looks_like_phone(name) for name in folded],
    )
    for tier in tiers:
        if any(tier):
            return tier.index(True)
    raise NoPhoneColumnError(
        f"no phone column found among {_describe(headers)}; name it with --column"
    )


def _explicit_column(headers: Sequence[str], column: str) -> int:
    wanted = column.strip().casefold()
    for index, header in enumerate(headers):
        if header.strip().casefold() == wanted:
            return index
    if wanted.isdigit() and 1 <= int(wanted) <= len(headers):
        return int(wanted) - 1
    raise NoPhoneColumnError(
        f"no column {column!r} among {_describe(headers)}; "
        f"give --column a header name or a number from 1 to {len(headers)}"
    )


def _looks_like_phone(folded: str) -> bool:
    """手机/电话/phone/mobile anywhere; "tel" only starting a word ("hotel" is not a phone)."""
    if any(part in folded for part in _PARTS):
        return True
    return any(word.startswith("tel") for word in _ASCII_WORDS.findall(folded))


def _describe(headers: Sequence[str]) -> str:
    """Headers for an error message, unless they look like data (a file without a header)."""
    if any(_DIGIT_RUN.search(h.replace(" ", "").replace("-", "")) for h in headers):
        return (
            f"{len(headers)} columns whose first row looks like data, not a header row "
            "(add a header row)"
        )
    shown = [h if len(h) <= 40 else h[:37] + "..." for h in headers]
    return f"headers {shown}"


def clean_headers(cells: Sequence[str]) -> tuple[str, ...]:
    """Strip whitespace and stray BOMs; name blanks "column_N"; suffix duplicates "_2"."""
    stripped = [c.translate(_INVISIBLE).strip() or f"column_{i}" for i, c in enumerate(cells, 1)]
    taken = set(stripped)
    seen: set[str] = set()
    result: list[str] = []
    for name in stripped:
        unique, suffix = name, 1
        while unique in seen or (unique != name and unique in taken):
            suffix += 1
            unique = f"{name}_{suffix}"
        seen.add(unique)
        result.append(unique)
    return tuple(result)
