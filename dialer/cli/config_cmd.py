"""`dialer config check`: validate a configuration file before anything uses it."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer
import yaml

from dialer.cli.common import stdout
from dialer.config import load_campaign, load_compliance, load_lines, load_script

app = typer.Typer(help="Configuration files.", no_args_is_help=True)


class Kind(enum.StrEnum):
    AUTO = "auto"
    CAMPAIGN = "campaign"
    LINES = "lines"
    COMPLIANCE = "compliance"
    SCRIPT = "script"


LOADERS = {
    Kind.CAMPAIGN: load_campaign,
    Kind.LINES: load_lines,
    Kind.COMPLIANCE: load_compliance,
    Kind.SCRIPT: load_script,
}


def guess_kind(path: Path) -> Kind:
    """What kind of file this is, from its top-level keys (the loader reports errors)."""
    try:
        data = yaml.safe_load(path.read_bytes())
    except (OSError, yaml.YAMLError):
        return Kind.CAMPAIGN  # let the loader produce the precise error
    keys = set(data) if isinstance(data, dict) else set()
    if "steps" in keys:
        return Kind.SCRIPT
    if keys & {"trunks", "pools", "caller_ids"}:
        return Kind.LINES
    if keys & {"windows", "caps", "cooldowns"}:
        return Kind.COMPLIANCE
    return Kind.CAMPAIGN


@app.command("check")
def check(
    file: Annotated[Path, typer.Argument(help="A campaign, lines, compliance or script YAML.")],
    kind: Annotated[Kind, typer.Option("--kind")] = Kind.AUTO,
) -> None:
    """Validate a YAML file (and, for a campaign, every file it references)."""
    chosen = guess_kind(file) if kind is Kind.AUTO else kind
    LOADERS[chosen](file)
    stdout.print(f"{file}: valid {chosen.value} file")
