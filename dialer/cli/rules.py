"""`dialer rules explain NUMBER --campaign NAME`: why a number may (not) be called now."""

from __future__ import annotations

import json
from datetime import UTC
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from dialer.cli.common import (
    DbOption,
    JsonOption,
    at_option,
    region_zone,
    resolve_campaign,
    stdout,
    store_at,
)
from dialer.contact import Explanation, explain
from rules.phone import mask

app = typer.Typer(help="The contact rules: calling hours, caps, cooldowns, consent.",
                  no_args_is_help=True)


@app.command("explain")
def explain_command(
    number: Annotated[str, typer.Argument(help="The phone number, as written anywhere.")],
    campaign: Annotated[str, typer.Option(
        "--campaign", help="A campaign the store knows (by name) or a campaign YAML file.")],
    at: Annotated[str | None, typer.Option(
        "--at", help="When, ISO 8601 (default: now); without a zone, in the campaign "
        "region's time.")] = None,
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """Print every rule's verdict on calling NUMBER, and when it becomes callable."""
    with store_at(db) as store:
        config = resolve_campaign(store, campaign)
        moment = at_option(at, region_zone(config.region))
        result = explain(store, config, number, moment)
    if json_out:
        print(json.dumps(_json(result), ensure_ascii=False))
    else:
        _print(result)


def _json(result: Explanation) -> dict[str, object]:
    decision = result.decision
    return {
        "number": mask(result.e164), "campaign": result.campaign,
        "at": result.at.astimezone(UTC).isoformat(), "zones": list(result.zones),
        "lead": result.is_lead, "lead_state": result.lead_state,
        "segment": result.segment, "priority": result.priority,
        "callable": decision.ok,
        "callable_from": decision.next_at.astimezone(UTC).isoformat()
        if decision.next_at else None,
        "verdicts": [{"rule": v.rule.value, "ok": v.ok, "reason": v.reason,
                      "allowed_from": v.until.astimezone(UTC).isoformat() if v.until else None}
                     for v in decision.verdicts],
    }


def _print(result: Explanation) -> None:
    zone = ZoneInfo(result.zones[0]) if result.zones and result.zones[0] != "Etc/Unknown" \
        else UTC
    table = Table(title=f"{mask(result.e164)} for campaign {result.campaign} at "
                  f"{result.at.astimezone(zone):%Y-%m-%d %H:%M %Z} (callee's time)")
    for name in ("rule", "verdict", "why", "allowed from"):
        table.add_column(name)
    for v in result.decision.verdicts:
        until = "-" if v.ok else (f"{v.until.astimezone(zone):%Y-%m-%d %H:%M}" if v.until
                                  else "not by itself")
        table.add_row(v.rule.value, "[green]ok[/]" if v.ok else "[red]no[/]", v.reason, until)
    stdout.print(table)
    if not result.is_lead:
        stdout.print("(the number is not one of this campaign's leads: consent unknown)")
    else:
        segment = f"segment {result.segment}" if result.segment else "no segment"
        stdout.print(f"lead {result.lead_state}, {segment}, priority {result.priority}")
    decision = result.decision
    if decision.ok:
        stdout.print("callable now")
    elif decision.next_at is not None:
        stdout.print(f"callable from {decision.next_at.astimezone(zone):%Y-%m-%d %H:%M %Z}")
    else:
        stdout.print("not callable until something changes (consent given, a suppression "
                      "lifted, a recheck)")
