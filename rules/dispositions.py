"""Dispositions: the classified outcome of one attempt, shared by every package."""

from __future__ import annotations

import enum


class Disposition(enum.StrEnum):
    """What became of an attempt, as the classifier decided it."""

    ANSWERED_HUMAN = "answered_human"  # a person answered and the call went on
    ANSWERED_MACHINE = "answered_machine"  # voicemail or an answering machine picked up
    NO_ANSWER = "no_answer"  # it rang until the ring timeout
    BUSY = "busy"  # the line was busy (SIP 486/600 or a busy tone)
    REJECTED = "rejected"  # the callee declined the call (SIP 603 or hung up while ringing)
    VACANT = "vacant"  # the number does not exist (空号)
    SUSPENDED = "suspended"  # the carrier has suspended the number (停机)
    POWERED_OFF = "powered_off"  # the phone is switched off (关机)
    UNREACHABLE = "unreachable"  # out of coverage or not reachable (不在服务区)
    NETWORK_ERROR = "network_error"  # the trunk or the network failed the call, not the callee
    ABANDONED = "abandoned"  # a person answered but no agent or script took the call in time
    OPTED_OUT = "opted_out"  # the callee asked never to be called again
    COMPLETED = "completed"  # the script ran to its end
    TRANSFERRED = "transferred"  # the call was handed to an agent or queue
    FAILED = "failed"  # our side failed (a worker crashed, a command errored)


#: Outcomes in which a person took the call (what answer rates count as answered).
PERSON_ANSWERED = frozenset({
    Disposition.ANSWERED_HUMAN, Disposition.COMPLETED, Disposition.TRANSFERRED,
    Disposition.OPTED_OUT, Disposition.ABANDONED,
})
