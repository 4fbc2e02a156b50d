#!/usr/bin/env python3
"""Generate a realistic, messy Chinese lead list (CSV) for demos, tests and benchmarks.

Mixed formats (plain, +86, 86-, spaced, dashed, full-width, Excel floats, carrier-select
prefixes, landlines), about 10% junk (empty, letters, too short, several numbers in one
cell, invalid prefixes) and about 5% duplicates of earlier rows.

    python scripts/gen_leads.py --rows 1000000 --out bench-data/leads-1m.csv
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from pathlib import Path
from typing import TextIO

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英"
CITIES = ["北京", "上海", "广州", "深圳", "杭州", "成都", "武汉", "南京", "西安", "重庆"]
MOBILE_PREFIXES = ["135", "136", "138", "139", "150", "151", "158", "186", "188", "133",
                   "153", "177", "180", "189", "199", "166", "147"]
LANDLINE_AREAS = ["10", "21", "20", "755", "571", "28", "27", "25", "29", "23"]
FULL_WIDTH = str.maketrans("0123456789+", "０１２３４５６７８９＋")


def mobile(rng: random.Random) -> str:
    return rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"


def formatted(rng: random.Random, number: str) -> str:
    """One of the ways a Chinese mobile number reaches a spreadsheet."""
    style = rng.random()
    if style < 0.55:
        return number
    if style < 0.63:
        return "+86" + number
    if style < 0.68:
        return "86-" + number
    if style < 0.74:
        return f"{number[:3]} {number[3:7]} {number[7:]}"
    if style < 0.79:
        return f"{number[:3]}-{number[3:7]}-{number[7:]}"
    if style < 0.83:
        return number.translate(FULL_WIDTH)
    if style < 0.88:
        return number + ".0"
    if style < 0.91:
        return f"{int(number) / 1e10:.10f}".rstrip("0") + "E+10"
    if style < 0.94:
        return "17951" + number
    if style < 0.97:
        return "\u3000" + number + " "
    return "tel:+86" + number


def landline(rng: random.Random) -> str:
    area = rng.choice(LANDLINE_AREAS)
    digits = 8 if len(area) == 2 else 7
    return f"0{area}-{rng.randrange(2 * 10 ** (digits - 1), 10**digits)}"


def junk(rng: random.Random) -> str:
    kind = rng.randrange(6)
    if kind == 0:
        return ""
    if kind == 1:
        return rng.choice(["N/A", "无", "暂无", "unknown", "-"])
    if kind == 2:
        return str(rng.randrange(10**5, 10**7))  # too short
    if kind == 3:
        return mobile(rng) + "/" + mobile(rng)  # several numbers
    if kind == 4:
        return "10" + f"{rng.randrange(10**9):09d}"  # no such mobile prefix
    return mobile(rng)[:-1] + "12"  # twelve digits


def generate(out: TextIO, count: int, seed: int, junk_share: float = 0.10) -> None:
    rng = random.Random(seed)
    writer = csv.writer(out)
    writer.writerow(["姓名", "手机号", "城市", "购物车金额", "意向"])
    earlier: list[str] = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.05 and earlier:
            cell = rng.choice(earlier)
        elif roll < 0.05 + junk_share:
            cell = junk(rng)
        elif roll < 0.10 + junk_share:
            cell = landline(rng)
        else:
            cell = formatted(rng, mobile(rng))
            if len(earlier) < 100_000:
                earlier.append(cell)
            else:
                earlier[rng.randrange(len(earlier))] = cell
        name = rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(["", *GIVEN])
        writer.writerow([name, cell, rng.choice(CITIES), f"{rng.randrange(20, 3000)}",
                         rng.choice(["高", "中", "低"])])


def write_xlsx(path: Path, count: int, seed: int, junk_share: float) -> None:
    """The same list as an Excel workbook, numbers stored as floats the way Excel does."""
    import io

    import openpyxl

    text = io.StringIO()
    generate(text, count, seed, junk_share)
    book = openpyxl.Workbook()
    sheet = book.active
    for row in csv.reader(io.StringIO(text.getvalue())):
        sheet.append([float(cell) if cell.isdigit() and cell.isascii() else cell
                      for cell in row])
    book.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--junk", type=float, default=0.10, help="share of junk rows")
    parser.add_argument("--out", type=Path, help="output file (default: stdout)")
    parser.add_argument("--encoding", default="utf-8",
                        help="utf-8, utf-8-sig, gbk, gb18030, utf-16 ...")
    args = parser.parse_args()
    if args.out is None:
        generate(sys.stdout, args.rows, args.seed, args.junk)
        return
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out.suffix == ".xlsx":
        write_xlsx(args.out, args.rows, args.seed, args.junk)
        return
    with args.out.open("w", encoding=args.encoding, newline="") as out:
        generate(out, args.rows, args.seed, args.junk)


if __name__ == "__main__":
    main()
