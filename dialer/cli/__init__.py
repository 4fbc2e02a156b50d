"""The `dialer` command line.

Every command translates `DialerError` into a one-line message on stderr and exit code 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys

import typer

from dialer.cli.access import app as access_app
from dialer.cli.config_cmd import app as config_app
from dialer.cli.export import app as export_app
from dialer.cli.harness import app as harness_app
from dialer.cli.keys import app as keys_app
from dialer.cli.leads import app as leads_app
from dialer.cli.lines import app as lines_app
from dialer.cli.numbers import app as numbers_app
from dialer.cli.rules import app as rules_app
from dialer.cli.run import run
from dialer.cli.serve import serve
from dialer.cli.simulate import simulate
from dialer.cli.suppress import app as suppress_app
from dialer.cli.tune import tune
from dialer.errors import DialerError

app = typer.Typer(
    name="dialer",
    help="A predictive auto-dialer and robo-call engine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(leads_app, name="leads")
app.add_typer(access_app, name="access")
app.add_typer(suppress_app, name="suppress")
app.add_typer(numbers_app, name="numbers")
app.add_typer(config_app, name="config")
app.add_typer(export_app, name="export")
app.add_typer(rules_app, name="rules")
app.add_typer(lines_app, name="lines")
app.add_typer(harness_app, name="harness")
app.add_typer(keys_app, name="keys")
app.command("run")(run)
app.command("serve")(serve)
app.command("simulate")(simulate)
app.command("tune")(tune)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except DialerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
