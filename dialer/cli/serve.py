"""`dialer serve`: the always-on service — campaigns on schedule, the HTTP API.

On the embedded defaults (`dialer serve` and nothing else) it opens the SQLite store,
registers the example cart-recovery campaign (whose schedule is open every day) and runs
it on the simulated network in real time at an accelerated clock (`--speed`, 10 by
default: a simulated hour every six minutes), starting from the scenario's morning (the
day after the store's latest call, so a restart goes on). The first start prints an admin
API key, once.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from dialer.cli.common import DbOption, stderr, store_at
from dialer.clock import ScaledClock
from dialer.errors import UsageError
from dialer.serve.access import ensure_admin_key
from dialer.serve.api import create_app
from dialer.serve.service import Service
from dialer.serve.settings import ServeSettings, load_serve_settings
from dialer.sim.scenario import Scenario, default_scenario, load_scenario
from dialer.store import Store

#: The campaign the embedded defaults run (in a source checkout).
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cart-recovery" / "campaign.yaml"


def serve(
    campaigns: Annotated[list[Path] | None, typer.Argument(
        help="Campaign YAML files to register (default: the example cart-recovery campaign "
             "when the store knows none).")] = None,
    db: DbOption = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8470,
    speed: Annotated[float, typer.Option("--speed", min=0.1, max=3600, help=(
        "How much faster than life the simulated network runs (1: real time)."))] = 10.0,
    scenario: Annotated[Path | None, typer.Option("--scenario", help=(
        "Simulated-network scenario YAML (default: built in)."))] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the simulated world.")] = 1,
    config: Annotated[Path | None, typer.Option("--config", help=(
        "Service settings YAML (webhook endpoints)."))] = None,
) -> None:
    """Run the service: the scheduler starts campaigns in their windows; the HTTP API
    (OpenAPI at /api/v1/docs) adds campaigns, leads and suppressions and reports."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: "
                        "%(message)s")
    world = load_scenario(scenario) if scenario is not None else default_scenario()
    settings = load_serve_settings(config) if config is not None else ServeSettings()
    with store_at(db) as store:
        clock = ScaledClock(_start(store, world), speed)
        service = Service(store, clock=clock, speed=speed, scenario=world, seed=seed,
                          settings=settings)
        key = ensure_admin_key(store, now=clock.now())
        if key is not None:
            stderr.print(f"[bold]admin API key (shown once, keep it):[/bold] {key}")
        service.start()
        try:
            for path in _campaign_files(campaigns, service):
                service.register(path.read_text(encoding="utf-8"), actor="cli:serve",
                                 base_dir=path.resolve().parent)
            stderr.print(f"dialer serve on http://{host}:{port}/ (API docs: /api/v1/docs); "
                         f"simulated clock at {speed:g}x from {clock.now():%Y-%m-%d %H:%M} UTC")
            uvicorn.run(create_app(service), host=host, port=port, log_level="warning",
                        timeout_graceful_shutdown=5)  # open dashboard streams end by then
        finally:
            service.shutdown()


def _campaign_files(given: list[Path] | None, service: Service) -> list[Path]:
    if given:
        missing = [str(path) for path in given if not path.is_file()]
        if missing:
            raise UsageError(f"no such campaign file: {', '.join(missing)}")
        return given
    if service.campaigns() or not EXAMPLE.is_file():
        return []
    return [EXAMPLE]


def _start(store: Store, world: Scenario) -> datetime:
    """The scenario's start, moved on to the day after the store's latest call."""
    with store.read() as uow:
        latest = uow.latest_attempt_at()
    if latest is None or latest < world.start:
        return world.start
    return world.start + timedelta(days=(latest - world.start).days + 1)
