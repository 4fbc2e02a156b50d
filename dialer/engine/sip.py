"""A campaign's calls over real SIP: the pjsua2 backend set up from the campaign's lines.

Each trunk of the campaign's line pools becomes a `SipTrunk` (INVITEs to
`sip:<E.164>@<trunk host:port>`, digest credentials from `username` and the trunk's
password, caller ID in From and P-Asserted-Identity); each agent's softphone URI comes
from `agents.softphones`. Media workers carry at most a few calls each (the pjsua2 wheel's
cap), so their number follows from the calls the campaign can have up at once, counting
the agent leg bridged beside each customer call in agent modes. The workers run the
dialer's media handler (`dialer.media`, named here, not imported: it needs pjsua2), which
hears carrier tones in early media and, in a robocall campaign, runs the scripts
(`dialer.talk`): checked here first, their prompts synthesised into the cache, and named to
the workers by a `TalkSettings` file.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

from dialer.config.campaign import Campaign, DialMode, Telephony
from dialer.config.lines import Transport, Trunk
from dialer.errors import ConfigError, TelephonyError
from dialer.talk.session import ENV, TalkSettings
from dialer.talk.voicebox import build as build_voicebox
from dialer.talk.voicebox import campaign_scripts, default_cache_dir
from lines.sip import SipBackend, SipError, SipSettings, SipTrunk, WorkerOptions
from lines.telephony import EventSink
from voice.errors import VoiceError

#: Concurrent calls one pjsua2 process carries: the wheel's cap, read again by each worker.
CALLS_PER_WORKER: Final = 4
MAX_WORKERS: Final = 64
MEDIA_HANDLER: Final = "dialer.media:handler"  # each call's handler in the media workers


@dataclass(frozen=True, slots=True, kw_only=True)
class SipRunOptions:
    workers: int | None = None  # None: enough for the calls the campaign can have up
    campaign_file: Path | None = None  # robocall: the workers load its scripts from it
    asr_model: Path | None = None  # a vosk model directory for the scripts' keywords
    script_prompt: Path | None = None  # 8 kHz 16-bit WAV played when a script takes a call
    abandon_prompt: Path | None = None  # played to a caller nobody is free for


def sip_trunk(trunk: Trunk) -> SipTrunk:
    """The backend's view of a configured trunk (ConfigError when it cannot carry calls)."""
    if trunk.transport is not Transport.UDP:
        raise ConfigError(f"trunk {trunk.name}: the SIP backend sends over UDP only, not "
                          f"{trunk.transport.value}; put a proxy such as Kamailio in front "
                          "of a TCP or TLS carrier")
    scheme, _, rest = trunk.sip.partition(":")
    host = rest.rpartition("@")[2]
    password = trunk.password()
    if trunk.username is not None and password is None:
        source = (f"environment variable {trunk.password_env}" if trunk.password_env
                  else "no password_env or password_file")
        raise ConfigError(f"trunk {trunk.name}: username {trunk.username!r} but no password "
                          f"({source})")
    try:
        return SipTrunk(name=trunk.name, uri=f"{scheme}:{{number}}@{host}",
                        from_domain=host.rpartition(":")[0] if host.count(":") == 1 else host,
                        username=trunk.username,
                        password=password if trunk.username is not None else None,
                        channels=trunk.channels, cps=trunk.cps)
    except SipError as exc:
        raise ConfigError(str(exc)) from None


def calls_at_once(campaign: Campaign) -> int:
    """The most customer calls the campaign can have up at once."""
    assert campaign.lines is not None
    channels = sum(trunk.channels for trunk in campaign.lines.trunks)
    dial = campaign.dial
    if dial.mode is DialMode.ROBOCALL:
        bound = dial.max_concurrent or channels
    else:
        team = campaign.agents.team_size
        bound = math.ceil(team * dial.max_lines_per_agent) + team  # dialing, plus talking
    return max(1, min(channels, bound))


def sip_settings(campaign: Campaign, options: SipRunOptions | None = None,
                 talk: Path | None = None) -> SipSettings:
    """The SIP backend's settings for `campaign` (ConfigError when it is not a SIP one);
    with `talk` (from `talk_settings`), the workers run the campaign's scripts."""
    options = options or SipRunOptions()
    if campaign.telephony is not Telephony.SIP or campaign.lines is None:
        raise ConfigError(f"campaign {campaign.name}: telephony is "
                          f"{campaign.telephony.value}, not sip")
    agents = dict(campaign.agents.softphones)
    legs = 2 if agents and campaign.dial.mode is not DialMode.ROBOCALL else 1
    workers = options.workers or min(
        MAX_WORKERS, math.ceil(calls_at_once(campaign) * legs / CALLS_PER_WORKER))
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, not {workers}")
    env = {ENV: str(talk)} if talk is not None else {}
    return SipSettings(trunks=tuple(sip_trunk(trunk) for trunk in campaign.lines.trunks),
                       workers=workers, worker=WorkerOptions(handler=MEDIA_HANDLER, env=env),
                       agents=agents, reserve_agent_slots=legs == 2,
                       conversations=talk is not None,
                       script_prompt=options.script_prompt,
                       abandon_prompt=options.abandon_prompt)


def talk_settings(campaign: Campaign, options: SipRunOptions) -> Path | None:
    """For a campaign whose calls run scripts: check them (the voices, the recognisers,
    every fixed prompt synthesised into the cache) and write the workers' `TalkSettings`.
    None when no script is run (a script prompt, if any, is played instead)."""
    if campaign.dial.mode is not DialMode.ROBOCALL or not campaign_scripts(campaign):
        return None
    if options.campaign_file is None:
        raise ConfigError(f"campaign {campaign.name}: its media workers load the scripts "
                          "from the campaign file; none was given")
    cache = default_cache_dir()
    settings = TalkSettings(campaign_file=str(options.campaign_file.resolve()),
                            cache_dir=str(cache),
                            asr_model=str(options.asr_model) if options.asr_model else None)
    try:
        build_voicebox(settings, campaign).close()
    except (VoiceError, OSError) as exc:
        raise ConfigError(f"campaign {campaign.name}: its scripts cannot be spoken or "
                          f"heard: {exc}") from exc
    cache.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f"talk-{os.getpid()}-", suffix=".json",
                                    dir=cache.parent)
    os.close(handle)
    settings.write(Path(name))
    return Path(name)


def sip_backend_factory(campaign: Campaign, clock: Callable[[], datetime],
                        options: SipRunOptions | None = None) -> Callable[[EventSink],
                                                                          SipBackend]:
    """What `run_realtime` needs: builds the backend (and starts its workers) when called.
    The settings are checked now, before anything is dialed."""
    options = options or SipRunOptions()
    settings = sip_settings(campaign, options)  # checks the lines first
    talk = talk_settings(campaign, options)
    if talk is not None:
        settings = sip_settings(campaign, options, talk)

    def build(sink: EventSink) -> SipBackend:
        try:
            return SipBackend(sink, settings, clock=clock)
        except SipError as exc:
            raise TelephonyError(f"the SIP backend could not start: {exc}",
                                 retryable=exc.retryable) from exc

    return build
