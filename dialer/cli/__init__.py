"""The `dialer` command line.

Every command translates `DialerError` into a one-line message on stderr and exit code 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys

import typer

from dialer.cli import config_cmd, leads, numbers, suppress
from dialer.errors import DialerError

app = typer.Typer(
    name="dialer",
    help="A predictive auto-dialer and robo-call engine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(leads.app, name="leads")
app.add_typer(suppress.app, name="suppress")
app.add_typer(numbers.app, name="numbers")
app.add_typer(config_cmd.app, name="config")


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except DialerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
