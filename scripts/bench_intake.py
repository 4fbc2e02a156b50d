#!/usr/bin/env python3
"""Lead-intake benchmark: `dialer leads check` and `dialer leads import` on a million rows.

Method: generate a messy Chinese list with scripts/gen_leads.py (mixed formats, about 10%
junk, 5% duplicates, 5% landlines; UTF-8 CSV), then run the real CLI in a subprocess:
`leads check FILE --json` with its output discarded, and `leads import` into a fresh
SQLite file (optionally also a fresh PostgreSQL database). Wall time from process start
to exit; peak memory is the largest sum of resident memory over the process and its
workers, sampled every 50 ms from /proc. Numbers and names are encrypted as they are
stored: with no `DIALER_DATA_KEYS` in the environment, the runs use a throwaway key file.

    .venv/bin/python scripts/bench_intake.py [--rows 1000000] [--pg postgresql://...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from gen_leads import generate  # noqa: E402


def tree_rss(pid: int) -> int:
    """Resident bytes of `pid` and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
        stack.extend(children.get(current, []))
    return total


def measure(args: list[str]) -> tuple[float, int]:
    """Run a command; return (seconds, peak resident bytes of its process tree)."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss(proc.pid))
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = proc.communicate()
    elapsed = time.perf_counter() - start
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{err.decode(errors='replace')}")
    return elapsed, peak


def create_pg_database(admin_url: str) -> str:
    import sqlalchemy as sa

    name = f"dialer_bench_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(admin_url.replace("postgresql://", "postgresql+psycopg://", 1),
                              isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine.dispose()
    return admin_url.rsplit("/", 1)[0] + "/" + name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--pg", help="also import into a fresh database on this server")
    args = parser.parse_args()

    data = ROOT / "bench-data" / f"leads-{args.rows}.csv"
    if not data.exists():
        data.parent.mkdir(exist_ok=True)
        with data.open("w", encoding="utf-8", newline="") as out:
            generate(out, args.rows, seed=7)
    dialer = [sys.executable, "-m", "dialer"]
    keys_dir = tempfile.TemporaryDirectory()
    if not os.environ.get("DIALER_DATA_KEYS"):  # not the user's own key file
        os.environ["DIALER_KEY_FILE"] = f"{keys_dir.name}/keys.json"
    print(__doc__.split("\n\n")[1].replace("\n", " "))
    print(f"\nfile: {data.name}, {data.stat().st_size / 1e6:.1f} MB, {args.rows:,} rows, "
          f"{os.cpu_count()} cores\n")

    results = []
    seconds, peak = measure([*dialer, "leads", "check", str(data), "--json"])
    results.append(("leads check --json", seconds, peak))
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        seconds, peak = measure([*dialer, "leads", "import", str(data), "--campaign", "bench",
                                 "--db", url, "--json"])
        results.append(("leads import (SQLite)", seconds, peak))
    if args.pg:
        url = create_pg_database(args.pg)
        seconds, peak = measure([*dialer, "leads", "import", str(data), "--campaign", "bench",
                                 "--db", url, "--json"])
        results.append(("leads import (PostgreSQL)", seconds, peak))

    keys_dir.cleanup()
    print(f"{'what':28} {'seconds':>8} {'rows/s':>10} {'peak RSS':>10}")
    for what, seconds, peak in results:
        print(f"{what:28} {seconds:8.1f} {args.rows / seconds:10,.0f} {peak / 2**20:8.0f} MiB")


if __name__ == "__main__":
    main()
