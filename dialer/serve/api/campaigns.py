"""Campaigns (create from YAML, start, pause, resume, stop, status), their agents and lines."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, status
from pydantic import BaseModel, Field, field_validator
from yaml.reader import Reader as YamlReader

from dialer.engine.agents import (
    AgentLoggedIn,
    AgentLoggedOut,
    AgentPaused,
    AgentReady,
)
from dialer.serve.access import Principal, Scope
from dialer.serve.api.auth import ServiceDep, require

router = APIRouter(prefix="/api/v1", tags=["campaigns"])

CampaignName = Annotated[str, Path(pattern=r"^[\w-]{1,64}$", description="The campaign's name.")]
AgentId = Annotated[str, Path(pattern=r"^[\w.@-]{1,100}$", description="The agent's id.")]
Reader = Annotated[Principal, Depends(require(Scope.CAMPAIGNS_READ))]
Writer = Annotated[Principal, Depends(require(Scope.CAMPAIGNS_WRITE))]
AgentWriter = Annotated[Principal, Depends(require(Scope.AGENTS_WRITE))]
LinesReader = Annotated[Principal, Depends(require(Scope.LINES_READ))]


class CampaignIn(BaseModel):
    """A campaign as YAML text (the same document `dialer run` reads; files it refers to
    must be inline, except shipped compliance profiles by name)."""

    model_config = {"extra": "forbid"}

    yaml: str = Field(min_length=1, max_length=1_000_000)

    @field_validator("yaml")
    @classmethod
    def _yaml_characters(cls, text: str) -> str:
        # PyYAML refuses characters outside YAML's set when its reader is made, before the
        # config loader's translation of YAML errors: refuse them here, as a bad field.
        found = YamlReader.NON_PRINTABLE.search(text)
        if found is not None:
            raise ValueError(f"character U+{ord(found.group()):04X} at offset {found.start()} "
                             "is not allowed in YAML")
        return text


class PauseIn(BaseModel):
    model_config = {"extra": "forbid"}

    reason: str = Field(default="paused by a supervisor", max_length=200)


@router.post("/campaigns", status_code=status.HTTP_201_CREATED)
def create_campaign(body: CampaignIn, service: ServiceDep, who: Writer) -> dict[str, Any]:
    """Register (or replace) a campaign; its schedule's jobs are (re)placed."""
    campaign = service.register(body.yaml, actor=who.actor)
    return {"campaign": campaign.name, "mode": campaign.dial.mode.value,
            "scheduled": campaign.schedule is not None,
            "status": service.status(campaign.name).to_dict()}


@router.get("/campaigns")
def list_campaigns(service: ServiceDep, who: Reader) -> dict[str, Any]:
    return {"campaigns": [s.to_dict() for s in service.statuses()]}


@router.get("/campaigns/{name}")
def campaign_status(name: CampaignName, service: ServiceDep, who: Reader) -> dict[str, Any]:
    return service.status(name).to_dict()


@router.post("/campaigns/{name}/start")
def start_campaign(name: CampaignName, service: ServiceDep, who: Writer) -> dict[str, Any]:
    """Start the campaign now (or resume it if paused); 409 if it is running."""
    return service.start_campaign(name, actor=who.actor).to_dict()


@router.post("/campaigns/{name}/pause")
def pause_campaign(name: CampaignName, service: ServiceDep, who: Writer,
                   body: PauseIn | None = None) -> dict[str, Any]:
    """No new calls; the calls up finish. 409 if the campaign is not running."""
    reason = body.reason if body is not None else PauseIn().reason
    return service.pause(name, actor=who.actor, reason=reason).to_dict()


@router.post("/campaigns/{name}/resume")
def resume_campaign(name: CampaignName, service: ServiceDep, who: Writer) -> dict[str, Any]:
    return service.resume(name, actor=who.actor).to_dict()


@router.post("/campaigns/{name}/stop")
def stop_campaign(name: CampaignName, service: ServiceDep, who: Writer) -> dict[str, Any]:
    """No new calls; the run ends once the calls up have."""
    return service.stop(name, actor=who.actor).to_dict()


# --- agents -----------------------------------------------------------------------------

AgentAction = Literal["login", "ready", "pause", "logout", "wrap-up-done"]
_EVENTS: dict[str, type[AgentLoggedIn | AgentReady | AgentPaused | AgentLoggedOut]] = {
    "login": AgentLoggedIn, "ready": AgentReady, "pause": AgentPaused,
    "logout": AgentLoggedOut, "wrap-up-done": AgentReady,
}


@router.post("/campaigns/{name}/agents/{agent_id}/{action}", tags=["agents"],
             status_code=status.HTTP_202_ACCEPTED)
def agent_action(name: CampaignName, agent_id: AgentId, action: AgentAction,
                 service: ServiceDep, who: AgentWriter) -> dict[str, Any]:
    """An agent's change of state, from a CRM or softphone: `login` (then `ready`),
    `ready`, `pause`, `logout`, `wrap-up-done` (ready after a call's wrap-up). Taken by
    the running campaign at its next step (409 if it is not running)."""
    event_type = _EVENTS[action]
    service.agent_event(name, event_type(agent_id=agent_id, at=service.clock.now()))
    if action == "login":  # logged in means available: the softphone logs in ready
        service.agent_event(name, AgentReady(agent_id=agent_id, at=service.clock.now()))
    with service.store.write() as uow:
        uow.audit(f"agent.{action}", actor=who.actor, subject=f"campaign:{name}",
                  detail={"agent": agent_id}, now=service.clock.now())
    return {"campaign": name, "agent": agent_id, "action": action, "accepted": True}


# --- lines ------------------------------------------------------------------------------


@router.get("/campaigns/{name}/lines", tags=["lines"])
def lines_status(name: CampaignName, service: ServiceDep, who: LinesReader) -> dict[str, Any]:
    """The campaign's trunks (state, failure rate, channels) and caller IDs (state, calls
    today against the cap, answer rate), as of the run's latest step."""
    status_ = service.status(name).to_dict()
    return {"campaign": name, "at": status_["at"], "trunks": status_["trunks"],
            "caller_ids": status_["caller_ids"]}
