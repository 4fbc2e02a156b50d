"""The live dashboard: its page and assets, the event stream and its tokens (test client),
and the page itself in headless Chromium against a real service under uvicorn."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from playwright.sync_api import Browser, Locator, Page, ViewportSize, expect, sync_playwright

from dialer.serve import dashboard
from dialer.serve.access import Principal, Role, create_api_key, create_user
from dialer.serve.api import create_app
from dialer.serve.dashboard import StreamSettings, StreamTokens
from dialer.serve.service import Service
from dialer.serve.status import RunState

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cart-recovery" / "campaign.yaml"
SPEED = 300.0  # five simulated minutes a second
FAST = StreamSettings(interval=0.1, lifetime=30.0, token_ttl=60.0)
CHROMIUM = "/usr/bin/chromium"
VIEWPORT = ViewportSize(width=1280, height=800)
WAIT_MS = 15_000  # the longest any browser expectation waits
QUIET = """\
name: 回访测试
region: CN
compliance: cn-marketing
dial: {mode: progressive, max_attempts: 1}
agents: {count: 2}
"""

Keys = Callable[[Role], str]


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """The dashboard reads the service, not the database: SQLite is enough here."""
    return f"sqlite:///{tmp_path / 'dialer.db'}"


@pytest.fixture
def key_of(service: Service) -> Keys:
    keys: dict[Role, str] = {}

    def key(role: Role) -> str:
        if role not in keys:
            with service.store.write() as uow:
                keys[role] = create_api_key(uow, name=f"test-{role}", role=role, actor="test",
                                            now=datetime.now(UTC))
        return keys[role]

    return key


@pytest.fixture
def app(service: Service) -> FastAPI:
    built = create_app(service)
    dashboard.configure(built, FAST)
    return built


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _until(check: Callable[[], bool], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def _events(body: str) -> list[tuple[str, str]]:
    """(event, data) of each event in a text/event-stream body."""
    found = []
    for block in body.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            found.append((fields["event"], fields.get("data", "")))
    return found


# --- the page -----------------------------------------------------------------------------


def test_the_page_and_its_assets_need_no_credentials(client: TestClient) -> None:
    moved = client.get("/", follow_redirects=False)
    assert moved.status_code == 307
    assert moved.headers["location"] == "/dashboard/"
    page = client.get("/dashboard/")
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert 'data-testid="signin-form"' in page.text
    assert client.get("/dashboard").url.path == "/dashboard/"
    script = client.get("/dashboard/static/dashboard.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert "EventSource" in script.text
    assert client.get("/dashboard/static/dashboard.css").headers["content-type"].startswith(
        "text/css")
    assert client.get("/dashboard/static/index.html").status_code == 404
    assert client.get("/dashboard/static/..%2F__init__.py").status_code == 404


def test_the_stream_and_its_token_need_credentials(client: TestClient) -> None:
    assert client.get("/api/v1/stream").status_code == 401
    assert client.post("/api/v1/stream/token").status_code == 401
    refused = client.get("/api/v1/stream", params={"token": "made-up"})
    assert refused.status_code == 401
    assert "token" in refused.json()["error"]


# --- the stream ---------------------------------------------------------------------------


def test_the_stream_sends_every_campaigns_status_then_says_bye(
        app: FastAPI, client: TestClient, service: Service, key_of: Keys) -> None:
    service.register(QUIET, actor="test")
    dashboard.configure(app, StreamSettings(interval=0.05, lifetime=0.3))
    started = time.monotonic()
    answer = client.get("/api/v1/stream", headers=_bearer(key_of(Role.AGENT)))
    assert time.monotonic() - started < 5
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/event-stream")
    assert answer.text.startswith("retry: ")
    events = _events(answer.text)
    assert len(events) >= 3
    assert events[-1] == ("bye", '{"reason": "lifetime"}')
    assert {name for name, _ in events[:-1]} == {"status"}
    statuses = json.loads(events[0][1])
    assert [s["campaign"] for s in statuses] == ["回访测试"]
    assert statuses[0]["state"] == "idle"
    assert "回访测试".encode() in answer.content  # UTF-8, not \\u escapes


def test_a_stream_token_stands_for_its_principal_until_it_expires(
        app: FastAPI, client: TestClient, key_of: Keys) -> None:
    dashboard.configure(app, StreamSettings(interval=0.05, lifetime=0.1, token_ttl=0.5))
    issued = client.post("/api/v1/stream/token", headers=_bearer(key_of(Role.QA)))
    assert issued.status_code == 200
    assert issued.headers["cache-control"] == "no-store"
    token, ttl = issued.json()["token"], issued.json()["expires_in"]
    assert ttl == 0.5
    assert len(token) >= 40
    deadline = time.monotonic() + ttl
    assert client.get("/api/v1/stream", params={"token": token}).status_code == 200
    time.sleep(max(0.0, deadline - time.monotonic()) + 0.1)
    assert client.get("/api/v1/stream", params={"token": token}).status_code == 401


def test_the_stream_ends_when_the_service_shuts_down(
        client: TestClient, service: Service, key_of: Keys) -> None:
    headers = _bearer(key_of(Role.ADMIN))
    before = dashboard.open_streams()

    def stop_once_streaming() -> None:
        _until(lambda: dashboard.open_streams() > before, 10)
        service.shutdown()

    stopper = threading.Thread(target=stop_once_streaming)
    started = time.monotonic()
    stopper.start()
    try:
        answer = client.get("/api/v1/stream", headers=headers)  # lifetime: 30 s
    finally:
        stopper.join(20)
    assert answer.status_code == 200
    assert time.monotonic() - started < 15
    events = _events(answer.text)
    assert events[0][0] == "status"
    assert events[-1] == ("bye", '{"reason": "shutdown"}')
    assert client.get("/api/v1/stream", headers=headers).status_code == 503


def test_tokens_expire_and_the_oldest_go_past_the_limit() -> None:
    tokens = StreamTokens(limit=3)
    who = Principal.of("key", "0123456789ab", Role.QA)
    first = tokens.issue(who, now=100.0, ttl=60.0)
    assert tokens.principal(first, now=159.9) == who
    assert tokens.principal(first, now=160.0) is None
    assert tokens.principal("never issued", now=100.0) is None
    later = [tokens.issue(who, now=101.0 + i, ttl=60.0) for i in range(3)]
    assert len(tokens) == 3
    assert tokens.principal(first, now=110.0) is None  # the oldest went
    assert all(tokens.principal(token, now=110.0) == who for token in later)
    tokens.issue(who, now=500.0, ttl=60.0)
    assert len(tokens) == 1  # the expired ones were dropped


# --- the real thing: uvicorn and a browser ------------------------------------------------


@pytest.fixture
def server(app: FastAPI) -> Iterator[str]:
    """The app under uvicorn on a free port of 127.0.0.1; its base URL."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    running = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off",
                                            timeout_graceful_shutdown=3))
    thread = threading.Thread(target=running.run, kwargs={"sockets": [listener]},
                              name="uvicorn", daemon=True)
    thread.start()
    try:
        _until(lambda: running.started, 10)
        yield f"http://127.0.0.1:{port}"
    finally:
        running.should_exit = True
        thread.join(15)
        listener.close()
        assert not thread.is_alive(), "uvicorn did not stop"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser, server: str) -> Iterator[Page]:
    """A fresh browser page (closed before the server stops, so its stream ends first)."""
    context = browser.new_context(viewport=VIEWPORT, base_url=server)
    context.set_default_timeout(WAIT_MS)
    expect.set_options(timeout=WAIT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def dialing(service: Service) -> str:
    """The example cart-recovery campaign (its window is always open: it starts at once),
    dialing for a little while, and an idle campaign with a Chinese name."""
    service.register(EXAMPLE.read_text(encoding="utf-8"), actor="test",
                     base_dir=EXAMPLE.parent)
    service.register(QUIET, actor="test")
    _until(lambda: sum(service.status("cart-recovery").dispositions.values()) >= 20)
    return "cart-recovery"


def test_a_stream_ends_when_its_client_goes_away(server: str, key_of: Keys) -> None:
    headers = _bearer(key_of(Role.QA))
    before = dashboard.open_streams()
    with httpx.Client(base_url=server, timeout=10) as http, \
            http.stream("GET", "/api/v1/stream", headers=headers) as answer:
        assert answer.status_code == 200
        lines = answer.iter_lines()
        assert any(line.startswith("event: status") for line in lines)
        assert dashboard.open_streams() == before + 1
    _until(lambda: dashboard.open_streams() == before, 10)  # long before its lifetime


def _sign_in(page: Page, key: str) -> None:
    page.goto("/")
    page.get_by_test_id("api-key").fill(key)
    page.get_by_test_id("signin-submit").click()


def _card(page: Page, campaign: str) -> Locator:
    return page.locator(f'[data-testid="campaign-card"][data-campaign="{campaign}"]')


def _number(locator: Locator) -> int:
    return int((locator.text_content() or "").replace(",", ""))


def test_the_dashboard_shows_live_figures_and_pauses_and_resumes(
        page: Page, service: Service, dialing: str, key_of: Keys, tmp_path: Path) -> None:
    _sign_in(page, key_of(Role.ADMIN))
    card = _card(page, dialing)
    expect(card.get_by_test_id("state")).to_have_text("running")
    expect(_card(page, "回访测试").get_by_test_id("campaign-name")).to_have_text("回访测试")
    expect(page.get_by_test_id("connection")).to_have_text("live")
    dials = card.get_by_test_id("dials")
    first = _number(dials)
    expect(dials).not_to_have_text(dials.text_content() or "")
    assert _number(dials) > first
    expect(card.locator('[data-testid="timeline-chart"] rect.bar').first).to_be_visible()
    expect(card.locator('[data-testid="hourly-chart"] rect.bar').first).to_be_visible()
    expect(card.locator('[data-testid="trunks"] tbody tr')).to_have_count(2)  # lines.yaml
    expect(card.get_by_test_id("trunks")).to_contain_text("carrier-a")
    expect(card.get_by_test_id("caller-ids")).to_be_visible()

    card.get_by_test_id("pause").click()
    expect(card.get_by_test_id("state")).to_have_text("paused")
    expect(card.get_by_test_id("reason")).to_have_text("paused from the dashboard")
    assert service.status(dialing).state is RunState.PAUSED
    card.get_by_test_id("resume").click()
    expect(card.get_by_test_id("state")).to_have_text("running")
    _until(lambda: service.status(dialing).state is RunState.RUNNING, 10)

    content = page.content()
    for caller_id in service.status(dialing).caller_ids:  # no phone number in the page
        assert caller_id.number.lstrip("+") not in content
    _check_screenshot(page, tmp_path / "dashboard.png")


def _check_screenshot(page: Page, path: Path) -> None:
    page.screenshot(path=str(path))
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 30_000  # text, tables and charts, not a blank page
    with Image.open(path) as image:
        assert image.size == (VIEWPORT["width"], VIEWPORT["height"])
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None
    assert len(colours) > 50


def test_the_dashboard_refuses_a_wrong_key_and_shows_why_a_pause_is_forbidden(
        page: Page, service: Service, dialing: str) -> None:
    _sign_in(page, "dk_000000000000_wrongwrongwrongwrongwrong")
    expect(page.get_by_test_id("signin-error")).to_contain_text("401")
    expect(page.get_by_test_id("signin-form")).to_be_visible()
    # an integration user reads campaigns and reports but may not pause them
    with service.store.write() as uow:
        create_user(uow, username="李雷", password="correct horse battery", actor="test",
                    role=Role.INTEGRATION, now=datetime.now(UTC))
    page.get_by_label("Username and password").check()
    page.get_by_test_id("username").fill("李雷")
    page.get_by_test_id("password").fill("correct horse battery")
    page.get_by_test_id("signin-submit").click()
    expect(page.get_by_test_id("who")).to_have_text("李雷")
    card = _card(page, dialing)
    expect(card.get_by_test_id("state")).to_have_text("running")
    card.get_by_test_id("pause").click()
    error = card.get_by_test_id("action-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("lacks the scope 'campaigns:write'")
    assert service.status(dialing).state is RunState.RUNNING
    page.get_by_test_id("sign-out").click()
    expect(page.get_by_test_id("signin-form")).to_be_visible()
    assert page.evaluate("() => sessionStorage.length") == 0
