"""The lifecycle of one call: a state Enum, a trigger Enum and one transition table.

```
CLAIMED ─DIAL─► DIALING ─RING/EARLY_MEDIA (repeating, alternating)─► RINGING | EARLY_MEDIA
                   │                                                        │
                   └────────────────────────ANSWER──────────────────────────┴─► ANSWERED

ANSWERED ─QUEUE─► WAITING_FOR_AGENT ─CONNECT_AGENT─► CONNECTED
         ─CONNECT_AGENT─► CONNECTED
         ─START_SCRIPT─► SCRIPTED ─CONNECT_AGENT─► CONNECTED   (the script's transfer)
                                  ─QUEUE─► WAITING_FOR_AGENT    (transfer, no agent free)
         ─ABANDON─► ABANDONING                                  (also from WAITING_FOR_AGENT)
WAITING_FOR_AGENT ─START_SCRIPT─► SCRIPTED                      (a robot takes the call)

END leads from every state but ENDED to ENDED; nothing leaves ENDED.
```

`next_state` is the only way to move: anything not in `TRANSITIONS` raises
`IllegalTransition`. The table says nothing about *why* a call moves (that is the
engine's business) and holds no data about the call.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType


class CallState(enum.StrEnum):
    """Where one call is in its life."""

    CLAIMED = "claimed"  # the attempt is written, not yet dialed
    DIALING = "dialing"  # INVITE sent, nothing back yet
    RINGING = "ringing"  # 180: the callee is alerted
    EARLY_MEDIA = "early_media"  # 183: ringback, a tone or a carrier announcement plays
    ANSWERED = "answered"  # 200 OK, not yet handed to an agent or a script
    WAITING_FOR_AGENT = "waiting_for_agent"  # answered, no agent free yet
    CONNECTED = "connected"  # bridged to an agent
    SCRIPTED = "scripted"  # a robocall script runs
    ABANDONING = "abandoning"  # the abandon message plays before we hang up
    ENDED = "ended"


class Trigger(enum.StrEnum):
    """What moves a call from one state to the next."""

    DIAL = "dial"
    RING = "ring"
    EARLY_MEDIA = "early_media"
    ANSWER = "answer"
    QUEUE = "queue"  # answered (or transferred) with no agent free yet
    CONNECT_AGENT = "connect_agent"
    START_SCRIPT = "start_script"
    ABANDON = "abandon"
    END = "end"


class IllegalTransition(ValueError):
    """A trigger arrived in a state that has no transition for it."""

    def __init__(self, state: CallState, trigger: Trigger) -> None:
        super().__init__(f"no call transition from {state.value} on {trigger.value}")
        self.state = state
        self.trigger = trigger


S, T = CallState, Trigger

#: Every legal move: (state, trigger) -> the next state.
TRANSITIONS: dict[tuple[CallState, Trigger], CallState] = {
    (S.CLAIMED, T.DIAL): S.DIALING,
    (S.CLAIMED, T.END): S.ENDED,
    (S.DIALING, T.RING): S.RINGING,
    (S.DIALING, T.EARLY_MEDIA): S.EARLY_MEDIA,
    (S.DIALING, T.ANSWER): S.ANSWERED,
    (S.DIALING, T.END): S.ENDED,
    (S.RINGING, T.RING): S.RINGING,
    (S.RINGING, T.EARLY_MEDIA): S.EARLY_MEDIA,
    (S.RINGING, T.ANSWER): S.ANSWERED,
    (S.RINGING, T.END): S.ENDED,
    (S.EARLY_MEDIA, T.RING): S.RINGING,
    (S.EARLY_MEDIA, T.EARLY_MEDIA): S.EARLY_MEDIA,
    (S.EARLY_MEDIA, T.ANSWER): S.ANSWERED,
    (S.EARLY_MEDIA, T.END): S.ENDED,
    (S.ANSWERED, T.QUEUE): S.WAITING_FOR_AGENT,
    (S.ANSWERED, T.CONNECT_AGENT): S.CONNECTED,
    (S.ANSWERED, T.START_SCRIPT): S.SCRIPTED,
    (S.ANSWERED, T.ABANDON): S.ABANDONING,
    (S.ANSWERED, T.END): S.ENDED,
    (S.WAITING_FOR_AGENT, T.CONNECT_AGENT): S.CONNECTED,
    (S.WAITING_FOR_AGENT, T.START_SCRIPT): S.SCRIPTED,
    (S.WAITING_FOR_AGENT, T.ABANDON): S.ABANDONING,
    (S.WAITING_FOR_AGENT, T.END): S.ENDED,
    (S.CONNECTED, T.END): S.ENDED,
    (S.SCRIPTED, T.CONNECT_AGENT): S.CONNECTED,
    (S.SCRIPTED, T.QUEUE): S.WAITING_FOR_AGENT,
    (S.SCRIPTED, T.END): S.ENDED,
    (S.ABANDONING, T.END): S.ENDED,
}

#: For each state, the triggers it accepts (empty for ENDED).
ALLOWED_TRIGGERS: Mapping[CallState, frozenset[Trigger]] = MappingProxyType(
    {
        state: frozenset(trigger for (src, trigger) in TRANSITIONS if src is state)
        for state in CallState
    }
)


def next_state(state: CallState, trigger: Trigger) -> CallState:
    """The state a call in `state` moves to on `trigger`.

    Raises IllegalTransition (a ValueError) when `TRANSITIONS` has no such move.
    """
    try:
        return TRANSITIONS[state, trigger]
    except KeyError:
        raise IllegalTransition(state, trigger) from None
