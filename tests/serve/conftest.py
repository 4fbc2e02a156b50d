"""What the service's tests share: a running `Service` on a fresh store at an accelerated
clock (a module sets `SPEED` to choose it), its app behind FastAPI's test client, API keys
by role, and a bounded wait."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dialer.clock import ScaledClock
from dialer.serve.access import Role, create_api_key
from dialer.serve.api import create_app
from dialer.serve.service import Service
from dialer.sim.scenario import default_scenario
from dialer.store import Store

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cart-recovery" / "campaign.yaml"
DEFAULT_SPEED = 600.0  # ten simulated minutes a second

Headers = Callable[[Role], dict[str, str]]


@pytest.fixture
def service(store: Store, request: pytest.FixtureRequest) -> Iterator[Service]:
    speed = float(getattr(request.module, "SPEED", DEFAULT_SPEED))
    world = default_scenario()
    running = Service(store, clock=ScaledClock(world.start, speed), speed=speed,
                      scenario=world)
    running.start()
    try:
        yield running
    finally:
        running.shutdown()


@pytest.fixture
def client(service: Service) -> Iterator[TestClient]:
    with TestClient(create_app(service)) as test_client:
        yield test_client


@pytest.fixture
def as_role(service: Service) -> Headers:
    """Bearer headers of an API key of each role (one key per role)."""
    keys: dict[Role, str] = {}

    def headers(role: Role) -> dict[str, str]:
        if role not in keys:
            with service.store.write() as uow:
                keys[role] = create_api_key(uow, name=f"test-{role}", role=role, actor="test",
                                            now=datetime.now(UTC))
        return {"Authorization": f"Bearer {keys[role]}"}

    return headers


def until(check: Callable[[], bool], seconds: float = 20.0) -> None:
    """Wait for `check` to hold, at most `seconds`."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)
