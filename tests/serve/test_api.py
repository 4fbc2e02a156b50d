"""The HTTP API of `dialer serve`, end to end: a real service (store, scheduler, runners on
the simulated network at an accelerated clock) behind FastAPI's test client."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dialer.serve.access import Role
from dialer.serve.service import Service
from dialer.store.records import ATTEMPT_FIELDS
from tests.serve.conftest import EXAMPLE, Headers, until

SPEED = 600.0  # ten simulated minutes a second
CAMPAIGN = """\
name: api-test
region: CN
compliance: cn-marketing
dial: {mode: progressive, max_attempts: 1}
agents: {count: 3}
triggers:
  cart_abandoned: {delay: 2h}
"""



def _create(client: TestClient, as_role: Headers, yaml: str = CAMPAIGN) -> Any:
    answer = client.post("/api/v1/campaigns", json={"yaml": yaml},
                         headers=as_role(Role.SUPERVISOR))
    assert answer.status_code == 201, answer.text
    return answer.json()


# --- access -------------------------------------------------------------------------------


def test_health_needs_no_credentials(client: TestClient) -> None:
    assert client.get("/healthz").json()["ok"] is True


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer dk_000000000000_wrongwrongwrongwrongwrong"},
    {"X-API-Key": "not a key"}, {"Authorization": "Basic !!!"}, {"Authorization": "Token x"},
])
def test_missing_or_wrong_credentials_are_401(client: TestClient,
                                              headers: dict[str, str]) -> None:
    answer = client.get("/api/v1/campaigns", headers=headers)
    assert answer.status_code == 401
    assert "Bearer" in answer.headers["WWW-Authenticate"]
    assert "credentials" in answer.json()["error"]


@pytest.mark.parametrize(("role", "method", "path"), [
    (Role.QA, "post", "/api/v1/campaigns/api-test/leads"),
    (Role.AGENT, "get", "/api/v1/attempts"),
    (Role.INTEGRATION, "get", "/api/v1/attempts.csv"),
    (Role.SUPERVISOR, "get", "/api/v1/audit"),
    (Role.QA, "post", "/api/v1/suppressions"),
])
def test_a_role_without_the_scope_is_403(client: TestClient, as_role: Headers, role: Role,
                                         method: str, path: str) -> None:
    answer = client.request(method, path, headers=as_role(role), json={})
    assert answer.status_code == 403
    assert role.value in answer.json()["error"]


def test_a_user_logs_in_with_http_basic(client: TestClient, service: Service) -> None:
    from dialer.serve.access import create_user

    with service.store.write() as uow:
        create_user(uow, username="alice", password="correct horse battery",
                    role=Role.SUPERVISOR, actor="test", now=datetime.now(UTC))
    assert client.get("/api/v1/campaigns", auth=("alice", "correct horse battery")
                      ).status_code == 200
    assert client.get("/api/v1/campaigns", auth=("alice", "wrong password!!")
                      ).status_code == 401


# --- campaigns ----------------------------------------------------------------------------


def test_a_campaign_is_created_from_yaml_and_runs_paused_resumed_stopped(
        client: TestClient, as_role: Headers) -> None:
    created = _create(client, as_role)
    assert (created["campaign"], created["status"]["state"]) == ("api-test", "idle")
    headers = as_role(Role.SUPERVISOR)
    assert client.post("/api/v1/campaigns/api-test/start", headers=headers).status_code == 200
    status = client.get("/api/v1/campaigns/api-test", headers=as_role(Role.QA))
    assert status.json()["mode"] == "progressive"
    assert client.post("/api/v1/campaigns/api-test/start", headers=headers).status_code == 409
    paused = client.post("/api/v1/campaigns/api-test/pause", headers=headers,
                         json={"reason": "team meeting"})
    assert paused.status_code == 200
    until(lambda: client.get("/api/v1/campaigns/api-test", headers=headers
                              ).json()["state"] == "paused")
    assert client.get("/api/v1/campaigns/api-test", headers=headers).json()["reason"] == \
        "team meeting"
    assert client.post("/api/v1/campaigns/api-test/resume", headers=headers).status_code == 200
    until(lambda: client.get("/api/v1/campaigns/api-test", headers=headers
                              ).json()["state"] == "running")
    assert client.post("/api/v1/campaigns/api-test/stop", headers=headers).status_code == 200
    until(lambda: client.get("/api/v1/campaigns/api-test", headers=headers
                              ).json()["state"] == "finished")
    assert client.post("/api/v1/campaigns/api-test/pause", headers=headers).status_code == 409
    listed = client.get("/api/v1/campaigns", headers=headers).json()["campaigns"]
    assert [c["campaign"] for c in listed] == ["api-test"]


def test_a_bad_campaign_is_a_400_naming_the_fields_and_nothing_is_kept(
        client: TestClient, as_role: Headers) -> None:
    answer = client.post("/api/v1/campaigns", headers=as_role(Role.ADMIN), json={
        "yaml": "name: broken\ncompliance: cn-marketing\ndial: {mode: bogus, max_attempts: 0}\n"})
    assert answer.status_code == 400
    fields = {p["field"]: p for p in answer.json()["problems"]}
    assert set(fields) == {"dial.mode", "dial.max_attempts"}
    assert fields["dial.mode"]["line"] == "3"
    assert client.get("/api/v1/campaigns/broken", headers=as_role(Role.ADMIN)
                      ).status_code == 404


@pytest.mark.parametrize("body", [{}, {"yaml": ""}, {"yaml": "x", "extra": 1}, {"yaml": 5}])
def test_a_malformed_body_is_a_400_with_the_field(client: TestClient, as_role: Headers,
                                                  body: dict[str, object]) -> None:
    answer = client.post("/api/v1/campaigns", headers=as_role(Role.ADMIN), json=body)
    assert answer.status_code == 400
    problems = answer.json()["problems"]
    assert problems
    assert all(p["field"] and p["reason"] for p in problems)


def test_unknown_campaigns_are_404(client: TestClient, as_role: Headers) -> None:
    headers = as_role(Role.ADMIN)
    for method, path in [("get", "/api/v1/campaigns/nope"),
                         ("post", "/api/v1/campaigns/nope/start"),
                         ("get", "/api/v1/campaigns/nope/report"),
                         ("get", "/api/v1/campaigns/nope/lines")]:
        assert client.request(method, path, headers=headers).status_code == 404, path


# --- leads ----------------------------------------------------------------------------------


def test_leads_in_bulk_get_a_verdict_each(client: TestClient, as_role: Headers) -> None:
    _create(client, as_role)
    answer = client.post("/api/v1/campaigns/api-test/leads", headers=as_role(Role.INTEGRATION),
                         json={"source": "crm", "leads": [
                             {"phone": "13800138000", "attributes": {"姓名": "张三"}},
                             {"phone": "+8613800138000"},
                             {"phone": "12345"},
                             {"phone": "+8613900139000", "due_at": "2030-01-01T09:00:00+08:00"},
                         ]})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert [item["verdict"] for item in body["items"]] == \
        ["accepted", "duplicate", "invalid", "accepted"]
    assert body["items"][0]["e164_masked"].startswith("+86")
    assert "13800138000" not in answer.text
    assert body["accepted"] == 2


@pytest.mark.parametrize(("body", "field"), [
    ({"leads": []}, "leads"),
    ({"leads": [{"phone": "13800138000", "due_at": "2030-01-01T09:00:00"}]}, "leads.0.due_at"),
    ({"leads": [{"number": "13800138000"}]}, "leads.0"),
    ({"source": "bad source!", "leads": [{"phone": "1"}]}, "source"),
])
def test_bad_lead_bodies_are_400_with_the_field(client: TestClient, as_role: Headers,
                                                body: dict[str, object], field: str) -> None:
    _create(client, as_role)
    answer = client.post("/api/v1/campaigns/api-test/leads", headers=as_role(Role.INTEGRATION),
                         json=body)
    assert answer.status_code == 400, answer.text
    assert any(p["field"].startswith(field) for p in answer.json()["problems"]), answer.json()


def test_one_lead_needs_an_idempotency_key_and_replays_its_answer(
        client: TestClient, as_role: Headers, service: Service) -> None:
    _create(client, as_role)
    headers = as_role(Role.INTEGRATION)
    body = {"lead": {"phone": "13800138000", "attributes": {"order": "A1"}}}
    path = "/api/v1/campaigns/api-test/lead"
    assert client.post(path, headers=headers, json=body).status_code == 400
    first = client.post(path, headers={**headers, "Idempotency-Key": "k-1"}, json=body)
    again = client.post(path, headers={**headers, "Idempotency-Key": "k-1"}, json=body)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert first.json()["items"][0]["verdict"] == "accepted"
    other = {"lead": {"phone": "13900139000"}}
    reused = client.post(path, headers={**headers, "Idempotency-Key": "k-1"}, json=other)
    assert reused.status_code == 422
    with service.store.read() as uow:
        campaign_id = uow.campaign_id("api-test")
        assert campaign_id is not None
        assert uow.count_leads(campaign_id) == 1


def test_a_trigger_makes_a_lead_due_after_the_campaigns_delay(
        client: TestClient, as_role: Headers) -> None:
    _create(client, as_role)
    headers = as_role(Role.INTEGRATION)
    occurred = datetime(2030, 5, 1, 10, 0, tzinfo=UTC)
    answer = client.post("/api/v1/campaigns/api-test/triggers/cart_abandoned", headers=headers,
                         json={"lead": {"phone": "13800138000", "attributes": {"cart": "299"}},
                               "occurred_at": occurred.isoformat()})
    assert answer.status_code == 201, answer.text
    due = datetime.fromisoformat(answer.json()["items"][0]["due_at"])
    assert due == occurred + timedelta(hours=2)
    unknown = client.post("/api/v1/campaigns/api-test/triggers/order_paid", headers=headers,
                          json={"lead": {"phone": "13800138000"}})
    assert unknown.status_code == 400
    assert "cart_abandoned" in unknown.json()["error"]


# --- suppressions ---------------------------------------------------------------------------


def test_suppressions_are_added_checked_and_removed(client: TestClient,
                                                    as_role: Headers) -> None:
    writer, reader = as_role(Role.INTEGRATION), as_role(Role.QA)
    added = client.post("/api/v1/suppressions", headers=writer,
                        json={"phone": "13800138000", "reason": "complaint"})
    assert added.status_code == 201
    assert added.json()["added"] is True
    assert "13800138000" not in added.text
    check = client.post("/api/v1/suppressions/check", headers=reader,
                        json={"phones": ["+8613800138000", "13900139000"]})
    assert [r["suppressed"] for r in check.json()["results"]] == [True, False]
    removed = client.post("/api/v1/suppressions/remove", headers=writer,
                          json={"phone": "13800138000"})
    assert removed.json()["removed"] is True
    check = client.post("/api/v1/suppressions/check", headers=reader,
                        json={"phones": ["13800138000"]})
    assert check.json()["results"][0]["suppressed"] is False


@pytest.mark.parametrize("body", [
    {"phone": "not a number"},
    {"phone": "13800138000", "scope": "campaign"},
    {"phone": "13800138000", "scope": "global", "campaign": "x"},
    {"phone": "13800138000", "scope": "everywhere"},
])
def test_bad_suppressions_are_400(client: TestClient, as_role: Headers,
                                  body: dict[str, object]) -> None:
    answer = client.post("/api/v1/suppressions", headers=as_role(Role.ADMIN), json=body)
    assert answer.status_code == 400, answer.text


# --- a running campaign: reports, the attempt log, agents, lines, audit ---------------------


@pytest.fixture
def ran(client: TestClient, as_role: Headers, service: Service) -> str:
    """The example cart-recovery campaign, registered (its window is always open, so it
    starts at once) and left to dial for a while."""
    service.register(EXAMPLE.read_text(encoding="utf-8"), actor="test",
                     base_dir=EXAMPLE.parent)
    until(lambda: service.status("cart-recovery").dials >= 60)
    until(lambda: sum(service.status("cart-recovery").dispositions.values()) >= 30)
    return "cart-recovery"


def test_the_report_counts_dispositions_and_answers_by_hour(
        client: TestClient, as_role: Headers, ran: str) -> None:
    report = client.get(f"/api/v1/campaigns/{ran}/report", headers=as_role(Role.QA)).json()
    assert report["attempts"] >= 30
    assert report["dispositions"]
    assert report["answer_rate_by_hour"]
    assert report["live"]["state"] == "running"
    assert all(0 <= h["rate"] <= 1 for h in report["answer_rate_by_hour"])


def test_the_attempt_log_pages_and_masks_numbers(client: TestClient, as_role: Headers,
                                                 ran: str) -> None:
    headers = as_role(Role.INTEGRATION)
    first = client.get("/api/v1/attempts", headers=headers,
                       params={"campaign": ran, "limit": 5}).json()
    assert len(first["attempts"]) == 5
    assert first["next_cursor"]
    assert all("*" in a["e164"] for a in first["attempts"])
    second = client.get("/api/v1/attempts", headers=headers, params={
        "campaign": ran, "limit": 5, "cursor": first["next_cursor"]}).json()
    ids = [a["attempt_id"] for a in first["attempts"] + second["attempts"]]
    assert len(set(ids)) == 10
    unmasked = client.get("/api/v1/attempts", headers=as_role(Role.ADMIN),
                          params={"campaign": ran, "limit": 1}).json()
    assert "*" not in unmasked["attempts"][0]["e164"]
    bad = client.get("/api/v1/attempts", headers=headers, params={"cursor": "nonsense"})
    assert bad.status_code == 400
    assert client.get("/api/v1/attempts", headers=headers, params={"limit": 0}
                      ).status_code == 400


def test_the_csv_export_needs_the_export_scope_and_is_audited(
        client: TestClient, as_role: Headers, ran: str) -> None:
    answer = client.get("/api/v1/attempts.csv", headers=as_role(Role.ADMIN),
                        params={"campaign": ran})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert rows
    assert tuple(rows[0]) == ATTEMPT_FIELDS
    audit = client.get("/api/v1/audit", headers=as_role(Role.ADMIN)).json()["entries"]
    assert any(e["action"] == "attempts.export" and e["actor"].startswith("key:")
               for e in audit)


def test_agents_log_in_through_the_api_and_take_calls(
        client: TestClient, as_role: Headers, ran: str, service: Service) -> None:
    headers = as_role(Role.AGENT)
    answer = client.post(f"/api/v1/campaigns/{ran}/agents/crm-7/login", headers=headers)
    assert answer.status_code == 202
    until(lambda: service.status(ran).agents.get("ready", 0)
           + service.status(ran).agents.get("on_call", 0) >= 1)
    assert client.post(f"/api/v1/campaigns/{ran}/agents/crm-7/fly", headers=headers
                       ).status_code == 400
    _create(client, as_role)  # not running
    assert client.post("/api/v1/campaigns/api-test/agents/crm-7/ready", headers=headers
                       ).status_code == 409


def test_lines_show_trunks_and_caller_ids(client: TestClient, as_role: Headers,
                                          ran: str) -> None:
    lines = client.get(f"/api/v1/campaigns/{ran}/lines", headers=as_role(Role.QA)).json()
    assert lines["trunks"]
    assert {"trunk", "state", "failure_rate"} <= set(lines["trunks"][0])


def test_every_write_is_audited_with_who(client: TestClient, as_role: Headers) -> None:
    _create(client, as_role)
    client.post("/api/v1/campaigns/api-test/start", headers=as_role(Role.SUPERVISOR))
    client.post("/api/v1/suppressions", headers=as_role(Role.INTEGRATION),
                json={"phone": "13800138000"})
    entries = client.get("/api/v1/audit", headers=as_role(Role.ADMIN)).json()["entries"]
    actions = {e["action"]: e["actor"] for e in entries}
    assert actions["campaign.register"].startswith("key:")
    assert actions["campaign.start"] == actions["campaign.register"]
    assert "suppression.add" in actions or any(a.startswith("suppress") for a in actions)


def test_the_openapi_document_lists_every_endpoint(client: TestClient) -> None:
    spec = client.get("/api/v1/openapi.json").json()
    paths = set(spec["paths"])
    assert {"/api/v1/campaigns", "/api/v1/campaigns/{name}/leads",
            "/api/v1/campaigns/{name}/triggers/{event}", "/api/v1/suppressions/check",
            "/api/v1/attempts", "/api/v1/attempts.csv",
            "/api/v1/campaigns/{name}/agents/{agent_id}/{action}"} <= paths
