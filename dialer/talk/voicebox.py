"""The media worker's one `Voicebox`: built from the campaign the dialer names, once.

The dialer starts its media workers with `DIALER_TALK` naming a `TalkSettings` file (see
`dialer.engine.sip`); `dialer.media` calls `warm_up` when the worker imports it, so the
scripts are loaded, the voice is loaded and every fixed prompt is synthesised (or read
from the disk cache) before the first call is answered. A worker without `DIALER_TALK`
holds no conversations (`voicebox()` is None).
"""

from __future__ import annotations

import logging
import os
import threading
from functools import partial
from pathlib import Path

from dialer.config import Campaign, load_campaign
from dialer.config.script import Script
from dialer.talk.ears import hearing_for
from dialer.talk.session import ENV, TalkSettings, Voicebox
from voice.tts import PromptCache, Tts

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_built: list[Voicebox | None] = []  # empty until built: [the box] (None without settings)


def default_cache_dir() -> Path:
    """Where synthesised prompts are kept between runs ($XDG_CACHE_HOME/dialer/prompts)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "dialer" / "prompts"


def campaign_scripts(campaign: Campaign) -> dict[str, Script]:
    """Every script a campaign's calls may run, by name (its own and its segments')."""
    scripts = [campaign.script] + [segment.then.script for segment in campaign.segments]
    return {script.name: script for script in scripts if script is not None}


def build(settings: TalkSettings, campaign: Campaign | None = None) -> Voicebox:
    """Load the campaign's scripts (from `settings.campaign_file`, unless the campaign is
    given, loaded already) and voices; synthesise every fixed prompt."""
    if campaign is None:
        campaign = load_campaign(settings.campaign_file)
    cache = PromptCache(settings.cache_dir) if settings.cache_dir else None
    box = Voicebox(campaign_scripts(campaign), Tts(cache=cache),
                   partial(hearing_for, model_dir=settings.asr_model))
    box.prerender()
    for script in box.scripts.values():
        box.hearing(script)  # load the recogniser now, not on a call
    return box


def voicebox() -> Voicebox | None:
    """This process's voicebox (built on first use, from `DIALER_TALK`)."""
    with _lock:
        if not _built:
            path = os.environ.get(ENV)
            _built.append(build(TalkSettings.read(path)) if path else None)
        return _built[0]


def warm_up() -> None:
    """Build the voicebox on a background thread (a worker calls this at start)."""
    if os.environ.get(ENV):
        threading.Thread(target=_build_logged, name="voicebox", daemon=True).start()


def _build_logged() -> None:
    try:
        box = voicebox()
    except Exception:  # the first conversation raises it again, and hangs its call up
        logger.exception("the voicebox could not be built")
        with _lock:
            _built.clear()
        return
    if box is not None:
        logger.info("voicebox ready: %d scripts", len(box.scripts))
