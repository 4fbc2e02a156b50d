"""`dialer harness`: the SIP softphone test harness, and its QA report.

    dialer harness --config phones.yaml [--for 10m] [--log calls.jsonl] [--json]
    dialer harness report --log calls.jsonl [--compare attempts.csv] [--json]
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Annotated

import typer
from pydantic_core import PydanticCustomError
from rich.table import Table

from dialer.cli.common import JsonOption, stderr, stdout, stop_on_signals
from dialer.config.fields import parse_duration
from dialer.errors import UsageError
from dialer.harness.config import load_harness
from dialer.harness.qa import QaReport, build_report, read_attempts, read_calls
from dialer.harness.runtime import Harness, run_harness

app = typer.Typer()

LogOption = Annotated[Path, typer.Option("--log", help="The phones' call log (JSON lines; "
                                         "a run appends to it).")]


@app.callback(invoke_without_command=True)
def harness(
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Option(
        "--config", help="The harness YAML: where it listens, its phones, who answers "
        "which number.")] = None,
    for_: Annotated[str | None, typer.Option(
        "--for", help="How long to run (90s, 10m, 1h); default: until Ctrl-C or SIGTERM.")
    ] = None,
    log: LogOption = Path("harness-calls.jsonl"),
    json_out: JsonOption = False,
) -> None:
    """The SIP softphone test harness: virtual phones for a dialer's QA run.

    `dialer harness --config FILE` runs the phones until Ctrl-C, SIGTERM or --for has
    passed, then prints what they did (calls per phone, barge-in latency). They listen on
    the config's `listen` port and the `workers - 1` UDP ports after it, 4 calls at once
    each: point the dialer at them with one trunk per port and `channels: 4` (printed at
    start). Each call is appended to --log as it ends.

    `dialer harness report --log FILE --compare ATTEMPTS` compares that log with the
    dialer's attempts.
    """
    if ctx.invoked_subcommand is not None:
        return
    if config is None:
        raise UsageError("give --config FILE to run the phones (or `dialer harness report "
                         "--log FILE` for the report of a past run)")
    seconds = _duration(for_)
    settings = load_harness(config)
    stop = threading.Event()
    with stop_on_signals(stop):
        calls = run_harness(settings, log_path=log, duration=seconds, stop_event=stop,
                            on_ready=_announce)
    stderr.print(f"{len(calls)} calls appended to {log}")
    _show(build_report(calls, None), json_out)


@app.command("report")
def report(
    log: LogOption = Path("harness-calls.jsonl"),
    compare: Annotated[Path | None, typer.Option(
        "--compare", help="The dialer's attempt log (`dialer export attempts`, CSV or JSON "
        "lines): match its attempts with the phones' calls.")] = None,
    json_out: JsonOption = False,
) -> None:
    """The QA report of a call log: calls per phone, barge-in latency and, with --compare,
    which attempts the dialer classified as the phone meant (matches), which not
    (mismatches), attempts no phone received, and calls no attempt explains."""
    calls = read_calls(log)
    attempts = read_attempts(compare) if compare is not None else None
    _show(build_report(calls, attempts), json_out)


def _duration(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return parse_duration(text).total_seconds()
    except PydanticCustomError:
        raise UsageError(f"--for: {text!r} is not a duration (such as 90s, 10m or 1h)") from None


def _announce(harness: Harness) -> None:
    host, _ = harness.config.listen
    ports = harness.ports
    stderr.print(f"{len(ports)} phone workers listening on {host}, UDP ports {ports[0]}-"
                 f"{ports[-1]} ({harness.cap} calls at once each); Ctrl-C to stop. For the "
                 "dialer's lines:")
    stderr.print(harness.trunk_lines().rstrip(), markup=False, highlight=False)


def _show(report: QaReport, json_out: bool) -> None:
    data = report.to_dict()
    if json_out:
        print(json.dumps(data, ensure_ascii=False))
        return
    phones = Table(title=f"Calls the phones took: {report.calls}")
    phones.add_column("phone")
    phones.add_column("calls", justify="right")
    for name, count in report.by_phone.most_common():
        phones.add_row(name, str(count))
    stdout.print(phones)
    if report.compared:
        summary = Table(title="Dialer against phones", show_header=False)
        for key, value in (("matches", report.matches), ("mismatches", len(report.mismatches)),
                           ("not received by a phone", len(report.not_received)),
                           ("unexplained phone calls", len(report.unexplained)),
                           ("agent legs (not attempts)", report.agent_legs)):
            summary.add_row(key, str(value))
        stdout.print(summary)
        for title, key in (("Mismatches", "mismatches"), ("Not received", "not_received"),
                           ("Unexplained", "unexplained")):
            _rows(title, data[key])
    latency = data["barge_in_ms"]
    if isinstance(latency, dict):
        stdout.print(f"barge-in latency as the phones heard it: median {latency['median']:g} "
                     f"ms, max {latency['max']:g} ms over {latency['count']} interruptions")


def _rows(title: str, rows: object) -> None:
    if not isinstance(rows, list) or not rows:
        return
    table = Table(title=title)
    columns = ("number", "phone", "phone_did", "expected", "dialer_concluded")
    for column in columns:
        table.add_column(column.replace("_", " "))
    for row in rows:
        cells = [row.get(column) for column in columns]
        table.add_row(*("-" if cell is None else ", ".join(cell) if isinstance(cell, list)
                        else str(cell) for cell in cells))
    stdout.print(table)
