"""What the SIP backend needs to know: its trunks, agents, prompts and workers.

Checked when built: a trunk whose URI is no SIP URI template, or half a set of
credentials, is a `SipError` before any worker starts.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType

from lines.sip.errors import SipError
from lines.sip.process import WorkerOptions
from lines.sip.protocol import Auth
from lines.sip.supervisor import Timing

NUMBER = "{number}"


@dataclass(frozen=True, slots=True, kw_only=True)
class SipTrunk:
    """A trunk the backend places calls on.

    `uri` is a template: `{number}` becomes the dialed E.164 number, e.g.
    `sip:{number}@carrier.example.net:5060`. The caller ID goes in the From and the
    P-Asserted-Identity as `sip:<caller id>@<from_domain>`. `channels` and `cps` are a
    safety net only: the engine's line plan already keeps within them.
    """

    name: str
    uri: str
    from_domain: str = "127.0.0.1"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    channels: int = 30
    cps: float = 10.0
    send_pai: bool = True

    def __post_init__(self) -> None:
        scheme = self.uri.split(":", 1)[0].lower()
        if scheme not in ("sip", "sips") or NUMBER not in self.uri or "@" not in self.uri:
            raise SipError(f"trunk {self.name}: uri must look like sip:{NUMBER}@host[:port], "
                           f"not {self.uri!r}")
        if (self.username is None) != (self.password is None):
            raise SipError(f"trunk {self.name}: give both username and password, or neither")
        if self.channels < 1 or not (math.isfinite(self.cps) and self.cps > 0):
            raise SipError(f"trunk {self.name}: channels and cps must be positive")

    def target(self, number: str) -> str:
        return self.uri.replace(NUMBER, number)

    def identity(self, caller_id: str) -> str:
        return f"sip:{caller_id}@{self.from_domain}"

    @property
    def auth(self) -> Auth | None:
        if self.username is None or self.password is None:
            return None
        return Auth(username=self.username, password=self.password)


@dataclass(frozen=True, slots=True, kw_only=True)
class SipSettings:
    """The backend's settings.

    `conversations`: the workers' media handler (`worker.handler`) runs scripts by name, so
    `start_script` sends it `Converse`. Without it, `start_script` plays `script_prompt`
    whatever the script. `script_prompt` and `abandon_prompt` are 8 kHz 16-bit mono WAV
    (or raw) files; `play_abandon_message` plays the second and hangs up.

    `no_media_timeout`: an answered call is handed on as answered once the far end's first
    RTP packet comes; with none within this time, it is hung up and ends as `no_media`
    (see `SipBackend`). None: every 200 is an answer at once, audio or not.

    `min_confidence`: the least confidence of a media handler's early-media finding (a
    carrier tone, say) for it to reach the engine as an `EarlyMediaHeard`.
    """

    trunks: tuple[SipTrunk, ...]
    workers: int = 2
    worker: WorkerOptions = field(default_factory=WorkerOptions)  # port: the first worker's
    agents: Mapping[str, str] = field(default_factory=dict)  # agent id: softphone SIP URI
    reserve_agent_slots: bool = False  # keep a slot beside each call for its agent leg
    agent_ring_timeout: timedelta = timedelta(seconds=15)
    setup_timeout: timedelta = timedelta(seconds=8)  # no answer at all to the INVITE
    no_media_timeout: timedelta | None = timedelta(seconds=3)
    min_confidence: float = 0.5
    conversations: bool = False  # the workers' media handler runs scripts (`Converse`)
    script_prompt: Path | None = None
    abandon_prompt: Path | None = None
    timing: Timing = field(default_factory=Timing)

    def __post_init__(self) -> None:
        if not self.trunks:
            raise SipError("the SIP backend needs at least one trunk")
        names = [trunk.name for trunk in self.trunks]
        if len(set(names)) != len(names):
            raise SipError(f"trunk names repeat: {sorted(names)}")
        if self.workers < 1:
            raise SipError("the SIP backend needs at least one media worker")
        if self.no_media_timeout is not None and self.no_media_timeout <= timedelta(0):
            raise SipError("no_media_timeout must be positive (None: no watch)")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise SipError(f"min_confidence is in [0, 1], not {self.min_confidence}")
        for agent_id, uri in self.agents.items():
            if not uri.lower().startswith(("sip:", "sips:")):
                raise SipError(f"agent {agent_id}: {uri!r} is not a SIP URI")
        object.__setattr__(self, "agents", MappingProxyType(dict(self.agents)))

    def worker_options(self) -> list[WorkerOptions]:
        """One per worker; with a fixed first port, the others take the ports after it."""
        base = self.worker.port
        return [dataclasses.replace(self.worker, port=base + i if base else 0)
                for i in range(self.workers)]
