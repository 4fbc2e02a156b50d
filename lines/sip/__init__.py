"""The SIP telephony backend: pjsua2 media worker processes, supervised.

The engine side (`SipBackend`, its settings, the protocol) never imports pjsua2; only the
worker processes do (`lines.sip.worker`, `station`, `media`, `calls`, `endpoint`).
"""

from lines.sip.backend import Observer, SipBackend
from lines.sip.errors import ProtocolError, SipError
from lines.sip.process import WorkerOptions, WorkerProcess
from lines.sip.settings import SipSettings, SipTrunk
from lines.sip.supervisor import Timing

__all__ = [
    "Observer",
    "ProtocolError",
    "SipBackend",
    "SipError",
    "SipSettings",
    "SipTrunk",
    "Timing",
    "WorkerOptions",
    "WorkerProcess",
]
