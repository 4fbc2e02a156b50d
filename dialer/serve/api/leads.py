"""Leads from other systems: in bulk, one at a time, and made by events (`cart_abandoned`).

Each request is judged by the same pre-filter as a file (invalid, duplicate, suppressed
and known-dead numbers are rejected, each with its verdict), and written in one
transaction. An `Idempotency-Key` header makes a request safe to send again: the same key
with the same request replays the first answer; with another request it is a 422. Adding
one lead requires a key (a CRM's retry must not make a second call).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Request, status
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, Field

from dialer.intake.api import LeadIn, LeadsAdded, add_leads, trigger_lead
from dialer.serve.access import Principal, Scope
from dialer.serve.api.auth import ServiceDep, require
from dialer.serve.api.campaigns import CampaignName
from dialer.serve.api.errors import KeyReused
from dialer.serve.service import Service
from dialer.store import UnitOfWork
from dialer.store.idempotency import MAX_KEY_LENGTH, find, hold, remember, request_digest

router = APIRouter(prefix="/api/v1", tags=["leads"])
Writer = Annotated[Principal, Depends(require(Scope.LEADS_WRITE))]
KeyHeader = Annotated[str | None, Header(alias="Idempotency-Key", max_length=MAX_KEY_LENGTH,
                                         min_length=1)]
Source = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[\w.:-]+$")]


class LeadsIn(BaseModel):
    model_config = {"extra": "forbid"}

    source: Source = "api"  # the system that sends them (a list per source and day)
    leads: list[LeadIn] = Field(min_length=1, max_length=10_000)


class OneLeadIn(BaseModel):
    model_config = {"extra": "forbid"}

    source: Source = "api"
    lead: LeadIn


class TriggerIn(BaseModel):
    """The event's lead; `occurred_at` is when it happened (default: now)."""

    model_config = {"extra": "forbid"}

    source: Source = "events"
    lead: LeadIn
    occurred_at: AwareDatetime | None = None


Work = Callable[[UnitOfWork], LeadsAdded]


@router.post("/campaigns/{name}/leads", status_code=status.HTTP_201_CREATED)
def add_many(name: CampaignName, body: LeadsIn, request: Request, service: ServiceDep,
                   who: Writer, key: KeyHeader = None) -> JSONResponse:
    """Add leads in bulk (up to 10,000); per-lead verdicts in request order."""
    campaign = service.campaign(name).campaign

    def work(uow: UnitOfWork) -> LeadsAdded:
        return add_leads(uow, campaign, body.leads, source=body.source,
                         now=service.clock.now(), actor=who.actor)

    return _answer(request, body, service, who, key, work)


@router.post("/campaigns/{name}/lead", status_code=status.HTTP_201_CREATED)
def add_one(name: CampaignName, body: OneLeadIn, request: Request, service: ServiceDep,
                  who: Writer, key: KeyHeader = None) -> JSONResponse:
    """Add one lead; the `Idempotency-Key` header is required."""
    if key is None:
        raise HTTPException(status.HTTP_400_BAD_REQUEST,
                            "adding one lead needs an Idempotency-Key header")
    campaign = service.campaign(name).campaign

    def work(uow: UnitOfWork) -> LeadsAdded:
        return add_leads(uow, campaign, [body.lead], source=body.source,
                         now=service.clock.now(), actor=who.actor)

    return _answer(request, body, service, who, key, work)


@router.post("/campaigns/{name}/triggers/{event}", status_code=status.HTTP_201_CREATED)
def trigger(name: CampaignName,
                  event: Annotated[str, Path(pattern=r"^[\w-]{1,64}$")],
                  body: TriggerIn, request: Request, service: ServiceDep, who: Writer,
                  key: KeyHeader = None) -> JSONResponse:
    """An event made a lead (e.g. `cart_abandoned`): it is due the campaign's delay for
    the event after `occurred_at`; its attributes go to the script. 400 for an event the
    campaign has no trigger for."""
    campaign = service.campaign(name).campaign

    def work(uow: UnitOfWork) -> LeadsAdded:
        now = service.clock.now()
        occurred: datetime = body.occurred_at or now
        return trigger_lead(uow, campaign, event, body.lead, occurred_at=occurred, now=now,
                            actor=who.actor, source=body.source)

    return _answer(request, body, service, who, key, work)


def _answer(request: Request, body_in: BaseModel, service: Service, who: Principal,
            key: str | None, work: Work) -> JSONResponse:
    """Do `work` in one transaction; with a key, replay or keep the answer. The request
    is the method, the path and the body as validated (so formatting does not count)."""
    canonical = body_in.model_dump_json(fallback=_plain, warnings=False)  # read-only maps
    digest = request_digest(request.method, request.url.path, canonical.encode())
    with service.store.write() as uow:
        if key is not None:
            hold(uow, who.actor, key)
            stored = find(uow, who.actor, key)
            if stored is not None:
                if stored.request_sha256 != digest:
                    raise KeyReused("this Idempotency-Key was used for another request")
                return JSONResponse(json.loads(stored.body), status_code=stored.status_code,
                                    headers={"Idempotent-Replayed": "true"})
        body: dict[str, Any] = work(uow).to_dict()
        code = status.HTTP_201_CREATED
        if key is not None:
            remember(uow, who.actor, key, digest, code,
                     json.dumps(body, ensure_ascii=False), service.clock.now())
    return JSONResponse(body, status_code=code)


def _plain(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")
