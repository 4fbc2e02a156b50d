"""`GET /metrics`: scraped while the example cart-recovery campaign runs on a real service
(accelerated clock), parsed as Prometheus parses it, and checked against the service's
own status of the campaign; who may scrape; and no figures leak between services."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from dialer.serve.access import Role, create_user
from dialer.serve.api import create_app
from dialer.serve.service import Service
from dialer.serve.status import CampaignStatus, RunState
from dialer.serve.webhooks import (
    Outbox,
    WebhookEndpoint,
    WebhookEvent,
    WebhookSettings,
    delivery_counts,
)
from tests.serve.conftest import EXAMPLE, Headers

CAMPAIGN = "cart-recovery"
SPEED = 600.0

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _until(check: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def _scrape(client: TestClient, headers: dict[str, str]) -> Samples:
    answer = client.get("/metrics", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return _parse(answer.text)


def _parse(text: str) -> Samples:
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset({"campaign": CAMPAIGN, **labels}.items()))]


def _expected(status: CampaignStatus) -> Samples:
    """Every per-campaign sample the scrape should hold for `status`."""
    rows: list[tuple[str, dict[str, str], float]] = [
        *(("dialer_campaign_state", {"state": s.value}, float(s is status.state))
          for s in RunState),
        *(("dialer_calls_in_flight", {"stage": k}, v) for k, v in status.calls.items()),
        ("dialer_dial_level", {}, status.dial_level),
        *(("dialer_agents", {"state": k}, v) for k, v in status.agents.items()),
        ("dialer_dials_total", {}, status.dials),
        ("dialer_answers_total", {}, status.answers),
        ("dialer_abandoned_total", {}, status.abandoned),
        ("dialer_abandon_rate", {"window": "run"}, status.abandon_rate),
        ("dialer_abandon_rate", {"window": "regulator"}, status.window_abandon_rate),
        ("dialer_abandon_target", {}, status.abandon_target),
        *(("dialer_dispositions_total", {"disposition": k}, v)
          for k, v in status.dispositions.items()),
        *(("dialer_trunk_failure_rate", {"trunk": t.trunk}, t.failure_rate)
          for t in status.trunks),
        *(("dialer_trunk_up", {"trunk": t.trunk, "state": t.state},
           float(t.state == "in_service")) for t in status.trunks),
    ]
    for state in {c.state for c in status.caller_ids}:
        pool = [c for c in status.caller_ids if c.state == state]
        rows.append(("dialer_caller_ids", {"state": state}, len(pool)))
        rows.append(("dialer_caller_id_calls_today", {"state": state},
                     sum(c.calls_today for c in pool)))
    return {(name, frozenset({"campaign": CAMPAIGN, **labels}.items())): float(value)
            for name, labels, value in rows}


def test_a_scrape_while_the_campaign_runs_agrees_with_its_status(
        client: TestClient, as_role: Headers, service: Service) -> None:
    service.register(EXAMPLE.read_text(encoding="utf-8"), actor="test",
                     base_dir=EXAMPLE.parent)
    _until(lambda: service.status(CAMPAIGN).dials >= 30)
    headers = as_role(Role.INTEGRATION)
    before = service.status(CAMPAIGN)
    running = _scrape(client, headers)
    after = service.status(CAMPAIGN)
    assert _value(running, "dialer_campaign_state", state="running") == 1.0
    assert _value(running, "dialer_campaign_state", state="paused") == 0.0
    for name, field in (("dialer_dials_total", "dials"), ("dialer_answers_total", "answers"),
                        ("dialer_abandoned_total", "abandoned")):
        assert getattr(before, field) <= _value(running, name) <= getattr(after, field)
    assert sum(_value(running, "dialer_calls_in_flight", stage=s)
               for s in ("dialing", "waiting", "live")) >= 0
    assert _value(running, "dialer_abandon_target") == after.abandon_target > 0
    assert any(name == "dialer_trunk_up" for name, _ in running)

    service.stop(CAMPAIGN, actor="test")  # a finished run's figures hold still: compare all
    _until(lambda: service.status(CAMPAIGN).state is RunState.FINISHED)
    finished, status = _scrape(client, headers), service.status(CAMPAIGN)
    expected = _expected(status)
    assert {key: finished.get(key) for key in expected} == expected
    assert status.dials > 0
    assert not status.caller_ids  # a marketing campaign with service numbers: no pool
    assert finished[("dialer_webhook_deliveries", frozenset({("state", "pending")}))] == 0


def test_caller_ids_are_counted_by_state_and_never_named(
        client: TestClient, as_role: Headers, service: Service) -> None:
    # A marketing campaign may only show marketing numbers and the example's are service
    # numbers: as a service campaign, it calls from its managed caller-ID pool.
    yaml = EXAMPLE.read_text(encoding="utf-8").replace("purpose: marketing", "purpose: service")
    service.register(yaml, actor="test", base_dir=EXAMPLE.parent)
    _until(lambda: service.status(CAMPAIGN).dials >= 10)
    answer = client.get("/metrics", headers=as_role(Role.QA))
    status = service.status(CAMPAIGN)
    pool = Counter(c.state for c in status.caller_ids)
    scraped = {dict(labels)["state"]: value for (name, labels), value in _parse(answer.text)
               .items() if name == "dialer_caller_ids"}
    assert {state: n for state, n in scraped.items() if n} == pool
    assert sum(pool.values()) == 2
    numbers = [c.number for c in status.caller_ids]
    assert not [n for n in numbers if n in answer.text or n.lstrip("+") in answer.text]


def test_webhook_deliveries_are_counted_by_state(client: TestClient, as_role: Headers,
                                                 service: Service) -> None:
    settings = WebhookSettings(endpoints=(
        WebhookEndpoint(name="crm", url="http://127.0.0.1:9/hook", secret_env="HOOK"),
        WebhookEndpoint(name="bi", url="http://127.0.0.1:9/bi", secret_env="HOOK",
                        events=frozenset({WebhookEvent.CAMPAIGN_FINISHED}))))
    with service.store.write() as uow:
        for n in range(3):
            Outbox(settings).campaign_finished(uow, campaign=f"c{n}", summary={},
                                               now=datetime.now(UTC))
        counts = delivery_counts(uow)
    scraped = _scrape(client, as_role(Role.SUPERVISOR))
    found = {dict(labels)["state"]: value for (name, labels), value in scraped.items()
             if name == "dialer_webhook_deliveries"}
    assert found == counts
    assert found["pending"] == 6


def test_metrics_need_the_metrics_scope(client: TestClient, as_role: Headers,
                                        service: Service) -> None:
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer dk_nope"}
                      ).status_code == 401
    denied = client.get("/metrics", headers=as_role(Role.AGENT))
    assert denied.status_code == 403
    assert "metrics:read" in denied.json()["error"]
    key = as_role(Role.QA)["Authorization"].removeprefix("Bearer ")
    assert client.get("/metrics", headers={"X-API-Key": key}).status_code == 200
    with service.store.write() as uow:
        create_user(uow, username="prometheus", password="a long scrape password",
                    role=Role.QA, actor="test", now=datetime.now(UTC))
    assert client.get("/metrics", auth=("prometheus", "a long scrape password")
                      ).status_code == 200


def test_openmetrics_is_answered_when_asked_for(client: TestClient, as_role: Headers) -> None:
    answer = client.get("/metrics", headers={
        **as_role(Role.QA), "Accept": "application/openmetrics-text; version=1.0.0"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/openmetrics-text")
    assert answer.text.rstrip().endswith("# EOF")


def test_each_app_has_its_own_registry(client: TestClient, as_role: Headers,
                                       service: Service) -> None:
    service.register(EXAMPLE.read_text(encoding="utf-8"), actor="test",
                     base_dir=EXAMPLE.parent)
    assert "dialer_dials_total" in client.get("/metrics", headers=as_role(Role.QA)).text
    assert b"dialer_" not in generate_latest(REGISTRY)
    with TestClient(create_app(service)) as other:
        assert other.app.state is not client.app.state
        assert "dialer_dials_total" in other.get("/metrics", headers=as_role(Role.QA)).text
