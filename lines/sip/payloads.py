"""The values that travel inside protocol messages (`lines.sip.protocol`): credentials,
media statistics, answer plans and media findings."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

from rules.signals import Announcement, AnswerKind


@dataclass(frozen=True, slots=True, kw_only=True)
class Auth:
    """Digest credentials for a trunk."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaStats:
    """What a call's media handler saw and sent (20 ms frames of 8 kHz 16-bit PCM)."""

    frames_received: int = 0  # non-empty frames heard from the far end
    speech_frames: int = 0  # of those, the ones voice activity detection called speech
    frames_sent: int = 0  # frames played into the call
    late_frames: int = 0  # media clock ticks more than 40 ms after the previous one
    #: A handler's own measure, if it takes one: from its speech onset over the far end's
    #: audio until that audio went quiet (the softphone harness's barge-in latency).
    barge_in_ms: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AnswerPlan:
    """What a worker in answer mode does with one incoming call.

    Ring `ring_s` seconds (180, or 183 with `early_media` playing), then answer with 200
    or reject with `status` (and `reason_header`, e.g. `Q.850;cause=1`). Once answered:
    play `play`, send `dtmf` after `dtmf_delay_s`, hang up after `hang_up_after_s` (None:
    wait for the caller). Prompts are names loaded with `LoadPrompt`.
    """

    ring_s: float = 0.0
    early_media: str | None = None
    status: int = 200
    reason: str | None = None
    reason_header: str | None = None
    play: str | None = None
    dtmf: str = ""
    dtmf_delay_s: float = 0.5
    hang_up_after_s: float | None = None

    def __post_init__(self) -> None:
        if not 200 <= self.status <= 699 or 201 <= self.status <= 299:
            raise ValueError(f"an answer plan ends with 200 or a 3xx-6xx, not {self.status}")
        if self.ring_s < 0 or self.dtmf_delay_s < 0:
            raise ValueError("answer plan delays cannot be negative")


class FindingKind(enum.StrEnum):
    """When a finding was made."""

    EARLY_MEDIA = "early_media"  # before the answer: a carrier's tone or recording
    AFTER_ANSWER = "after_answer"  # in the first seconds after it (a carrier that answers,
    # then plays the tone)


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """What a call's media handler recognised in the far end's audio.

    `announcement` is what it says about the number (UNKNOWN: it failed without saying
    why); `network` True says the network, not the number, failed the call (a SIT
    no-circuit or reorder, a congestion tone); `confidence` in [0, 1] how clear the
    evidence was; `detail` the handler's own name for what it heard (e.g. "sit_intercept").
    """

    kind: FindingKind
    announcement: Announcement
    network: bool = False
    confidence: float
    detail: str = ""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.confidence) and 0.0 <= self.confidence <= 1.0):
            raise ValueError(f"a confidence is in [0, 1], not {self.confidence}")


@dataclass(frozen=True, slots=True, kw_only=True)
class CalleeIntent:
    """A media handler's note: a conversation on the call heard the callee mean something
    (an opt-out, a wish for an agent) or reached an end ("completed")."""

    intent: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AnswerVerdict:
    """A media handler's note: answering-machine detection decided who picked up."""

    kind: AnswerKind


@dataclass(frozen=True, slots=True, kw_only=True)
class EndCall:
    """A media handler's note: the conversation is over; the worker hangs up (by us)."""

    note: str


#: What a conversing media handler tells its worker (see `lines.sip.media`).
HandlerNote = CalleeIntent | AnswerVerdict | EndCall
