"""`GET /metrics`: the service's figures for Prometheus, read at scrape time.

A `ServiceCollector` turns `Service.statuses()` (the snapshots the runners publish, the
same figures as the API and the dashboard) and the webhook outbox's delivery counts into
metric families, labelled by campaign. Each app keeps its own `CollectorRegistry`: nothing
is registered in prometheus_client's global registry, so two services in one process
(the tests) never see each other's figures.

Access: the `metrics:read` scope, by API key (`Authorization: Bearer`, as Prometheus'
`authorization` setting sends it, or `X-API-Key`) or HTTP Basic; no credentials in the
query string. The answer is OpenMetrics when the scraper asks for it, else the text format.

What the counters count: `dialer_dials_total` and its kin count one run of a campaign;
they start again from zero when the campaign is started again (a counter reset, which
`rate()` handles). No phone numbers: caller IDs are counted by state, never named.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from dialer.engine.staff import AgentState
from dialer.serve.access import Principal, Scope
from dialer.serve.api.auth import ServiceDep, require
from dialer.serve.service import Service
from dialer.serve.status import CampaignStatus, RunState
from dialer.serve.webhooks import delivery_counts
from lines.callerid_health import CallerIdState
from lines.health import TrunkState

router = APIRouter(tags=["service"])
Reader = Annotated[Principal, Depends(require(Scope.METRICS_READ))]

#: The stages a call in flight is in (`CampaignStatus.calls`).
STAGES = ("dialing", "waiting", "live")
_AGENT_STATES = tuple(s.value for s in AgentState if s is not AgentState.LOGGED_OUT)
_registries_lock = threading.Lock()


class ServiceCollector(Collector):
    """The service's figures as metric families, read afresh at every `collect`."""

    def __init__(self, service: Service) -> None:
        self._service = service

    def describe(self) -> list[Metric]:
        return []  # nothing to check at registration: the names are fixed here

    def collect(self) -> Iterator[Metric]:
        statuses = self._service.statuses()
        yield from campaign_families(statuses)
        yield from line_families(statuses)
        with self._service.store.read() as uow:
            counts = delivery_counts(uow)
        deliveries = GaugeMetricFamily("dialer_webhook_deliveries",
                                       "Webhook deliveries in the outbox, by state.",
                                       labels=["state"])
        for state, count in sorted(counts.items()):
            deliveries.add_metric([state], count)
        yield deliveries


def campaign_families(statuses: list[CampaignStatus]) -> Iterator[Metric]:
    """State, calls, agents, pacing and outcomes of each campaign."""
    state = GaugeMetricFamily("dialer_campaign_state", "1 for the campaign's current run "
                              "state, 0 for the others.", labels=["campaign", "state"])
    calls = GaugeMetricFamily("dialer_calls_in_flight", "Calls up, by stage.",
                              labels=["campaign", "stage"])
    level = GaugeMetricFamily("dialer_dial_level", "Calls up per working agent.",
                              labels=["campaign"])
    agents = GaugeMetricFamily("dialer_agents", "Logged-in agents, by state.",
                               labels=["campaign", "state"])
    dials = CounterMetricFamily("dialer_dials", "Calls placed in this run.",
                                labels=["campaign"])
    answers = CounterMetricFamily("dialer_answers", "Answered calls that needed an agent, "
                                  "in this run.", labels=["campaign"])
    abandoned = CounterMetricFamily("dialer_abandoned", "Answered calls no agent took in "
                                    "time, in this run.", labels=["campaign"])
    rate = GaugeMetricFamily("dialer_abandon_rate", "Abandoned over answered: this run, or "
                             "over the regulator's window.", labels=["campaign", "window"])
    target = GaugeMetricFamily("dialer_abandon_target", "The abandonment cap pacing keeps "
                               "under.", labels=["campaign"])
    dispositions = CounterMetricFamily("dialer_dispositions", "Attempts ended in this run, "
                                       "by disposition.", labels=["campaign", "disposition"])
    for status in statuses:
        name = status.campaign
        for run_state in RunState:
            state.add_metric([name, run_state.value], float(run_state is status.state))
        for stage in STAGES:
            calls.add_metric([name, stage], status.calls.get(stage, 0))
        level.add_metric([name], status.dial_level)
        for agent_state in _AGENT_STATES:
            agents.add_metric([name, agent_state], status.agents.get(agent_state, 0))
        dials.add_metric([name], status.dials)
        answers.add_metric([name], status.answers)
        abandoned.add_metric([name], status.abandoned)
        rate.add_metric([name, "run"], status.abandon_rate)
        rate.add_metric([name, "regulator"], status.window_abandon_rate)
        target.add_metric([name], status.abandon_target)
        for disposition, count in sorted(status.dispositions.items()):
            dispositions.add_metric([name, disposition], count)
    yield from (state, calls, level, agents, dials, answers, abandoned, rate, target,
                dispositions)


def line_families(statuses: list[CampaignStatus]) -> Iterator[Metric]:
    """Trunks by name, caller IDs counted by state (never by number)."""
    up = GaugeMetricFamily("dialer_trunk_up", "1 while the trunk carries calls "
                           f"({TrunkState.IN_SERVICE.value}), else 0; `state` is its "
                           "health state.", labels=["campaign", "trunk", "state"])
    failures = GaugeMetricFamily("dialer_trunk_failure_rate", "Failed share of the trunk's "
                                 "calls over its health window.", labels=["campaign", "trunk"])
    numbers = GaugeMetricFamily("dialer_caller_ids", "Caller IDs in the campaign's pool, "
                                "by state.", labels=["campaign", "state"])
    calls_today = GaugeMetricFamily("dialer_caller_id_calls_today", "Calls placed today from "
                                    "the pool's caller IDs, by the numbers' state.",
                                    labels=["campaign", "state"])
    for status in statuses:
        name = status.campaign
        for trunk in status.trunks:
            up.add_metric([name, trunk.trunk, trunk.state],
                          float(trunk.state == TrunkState.IN_SERVICE.value))
            failures.add_metric([name, trunk.trunk], trunk.failure_rate)
        if not status.caller_ids:
            continue
        held: Counter[str] = Counter(c.state for c in status.caller_ids)
        placed: Counter[str] = Counter()
        for caller_id in status.caller_ids:
            placed[caller_id.state] += caller_id.calls_today
        for pool_state in CallerIdState:
            numbers.add_metric([name, pool_state.value], held[pool_state.value])
            calls_today.add_metric([name, pool_state.value], placed[pool_state.value])
    yield from (up, failures, numbers, calls_today)


def registry_of(request: Request, service: Service) -> CollectorRegistry:
    """The app's own registry, made at its first scrape."""
    state = request.app.state
    with _registries_lock:
        registry: CollectorRegistry | None = getattr(state, "metrics_registry", None)
        if registry is None:
            registry = CollectorRegistry(auto_describe=False)
            registry.register(ServiceCollector(service))
            state.metrics_registry = registry
    return registry


@router.get("/metrics", response_class=Response, responses={200: {
    "description": "The figures in the Prometheus text format (or OpenMetrics, if asked).",
    "content": {"text/plain": {"schema": {"type": "string"}},
                "application/openmetrics-text": {"schema": {"type": "string"}}}}})
def metrics(request: Request, service: ServiceDep, who: Reader) -> Response:
    """Campaign, line and webhook figures for Prometheus (scope `metrics:read`)."""
    encode, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encode(registry_of(request, service)), media_type=content_type)
