"""The HTTP API against its own OpenAPI document: schemathesis generates requests for every
operation (valid and invalid ones) and no answer may be a server error; and the document
says how to authenticate.

The app under test is a real service on a fresh SQLite store with the example
cart-recovery campaign registered (its window is always open, so it dials while the
requests come), called with an admin API key through the document's `bearer` scheme.
Generation is deterministic and bounded per operation.

schemathesis' own pytest integration (`schemathesis.pytest.from_fixture`) does not run
under pytest 9 (it sets a node attribute pytest no longer has), so each operation is a
subtest driving the operation's strategies (`APIOperation.as_strategy`) with Hypothesis."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.schemas import OpenApiSchema

from dialer.clock import ScaledClock
from dialer.serve.access import Role, create_api_key
from dialer.serve.api import create_app
from dialer.serve.service import Service
from dialer.sim.scenario import default_scenario
from dialer.store import open_store

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cart-recovery" / "campaign.yaml"
SPEED = 600.0
MAX_EXAMPLES = 25
CAMPAIGN = "cart-recovery"
ANY_CREDENTIALS = [{"bearer": []}, {"basic": []}, {"apiKey": []}]


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenApiSchema]:
    folder = tmp_path_factory.mktemp("schemathesis")
    store = open_store(f"sqlite:///{folder / 'dialer.db'}")
    world = default_scenario()
    service = Service(store, clock=ScaledClock(world.start, SPEED), speed=SPEED,
                      scenario=world)
    service.start()
    try:
        service.register(EXAMPLE.read_text(encoding="utf-8"), actor="test",
                         base_dir=EXAMPLE.parent)
        with store.write() as uow:
            key = create_api_key(uow, name="schemathesis", role=Role.ADMIN, actor="test",
                                 now=datetime.now(UTC))
        config = schemathesis.Config.from_dict(_config(key))
        yield schemathesis.openapi.from_asgi("/api/v1/openapi.json", create_app(service),
                                             config=config)
    finally:
        service.shutdown()
        store.close()


def _config(key: str) -> dict[str, Any]:
    return {
        "auth": {"openapi": {"bearer": {"bearer": key}}, "auto-signup": False},
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True,
                       "database": "none"},
    }


def test_the_document_says_how_to_authenticate(api_schema: OpenApiSchema) -> None:
    document = api_schema.raw_schema
    schemes = document["components"]["securitySchemes"]
    assert {name: (s["type"], s.get("scheme") or s.get("name")) for name, s in
            schemes.items()} == {"bearer": ("http", "bearer"), "basic": ("http", "basic"),
                                 "apiKey": ("apiKey", "X-API-Key")}
    security = {f"{method.upper()} {path}": operation.get("security", [])
                for path, item in document["paths"].items()
                for method, operation in item.items()}
    assert security.pop("GET /healthz") == []
    assert {label for label, declared in security.items() if declared == ANY_CREDENTIALS} >= {
        "GET /metrics", "GET /api/v1/campaigns", "POST /api/v1/campaigns/{name}/leads",
        "POST /api/v1/suppressions/check", "GET /api/v1/attempts.csv", "GET /api/v1/audit",
        "POST /api/v1/campaigns/{name}/agents/{agent_id}/{action}"}
    assert all(declared in ([], ANY_CREDENTIALS) for declared in security.values())
    headers = {parameter["name"].lower() for item in document["paths"].values()
               for operation in item.values() for parameter in operation.get("parameters", [])
               if parameter["in"] == "header"}
    assert not headers & {"authorization", "x-api-key"}  # schemes, not parameters


@pytest.mark.slow
def test_no_operation_answers_with_a_server_error(api_schema: OpenApiSchema,
                                                 subtests: pytest.Subtests) -> None:
    loaded = list(api_schema.get_all_operations())
    assert [result.err() for result in loaded if not isinstance(result, Ok)] == []
    operations = [result.ok() for result in loaded if isinstance(result, Ok)]
    assert {"GET /metrics", "POST /api/v1/campaigns/{name}/leads"} <= \
        {operation.label for operation in operations}
    answered: Counter[int] = Counter()
    for operation in operations:
        if _streams(operation):
            continue  # answers until its lifetime is up: not a request and its answer
        with subtests.test(operation=operation.label):
            _fuzz(operation, answered)
    # the key worked and the campaign was found often enough for the handlers to be reached
    assert sum(n for code, n in answered.items() if code < 300) >= 100, answered


def _streams(operation: APIOperation) -> bool:
    ok = operation.definition.raw.get("responses", {}).get("200", {})
    return "text/event-stream" in ok.get("content", {})


def _fuzz(operation: APIOperation, answered: Counter[int]) -> None:
    """Valid and invalid requests; where the path names a campaign, also valid ones
    naming the running one (random names would mostly meet a 404)."""
    strategies = [operation.as_strategy(generation_mode=mode) for mode in GenerationMode]
    if "{name}" in operation.path:
        strategies.append(operation.as_strategy(path_parameters={"name": CAMPAIGN}))

    @settings(max_examples=MAX_EXAMPLES, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(case=st.one_of(strategies))
    def check(case: Case) -> None:
        answered[case.call_and_validate(checks=[not_a_server_error]).status_code] += 1

    check()
