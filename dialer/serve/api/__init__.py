"""The HTTP API of `dialer serve` (FastAPI; the OpenAPI document at /api/v1/openapi.json).

`create_app(service)` builds the app around a running `Service`; handlers are thin: they
check access, validate the body (400 with the field and the reason), and call the
service or the store in one transaction.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from dialer import __version__
from dialer.serve import dashboard, metrics
from dialer.serve.api import campaigns, errors, leads, records
from dialer.serve.service import Service


def create_app(service: Service) -> FastAPI:
    app = FastAPI(
        title="dialer", version=__version__,
        description="A predictive auto-dialer and robo-call engine: campaigns, leads, "
                    "suppressions, reports, agents and lines.",
        openapi_url="/api/v1/openapi.json", docs_url="/api/v1/docs", redoc_url=None)
    app.state.service = service
    errors.install(app)
    app.include_router(campaigns.router)
    app.include_router(leads.router)
    app.include_router(records.router)
    app.include_router(dashboard.router)
    app.include_router(metrics.router)

    @app.get("/healthz", tags=["service"])
    def health() -> dict[str, Any]:
        """Liveness: the service answers and its database does (no credentials)."""
        service.store.ping()
        return {"ok": True, "campaigns": len(service.campaigns())}

    return app
