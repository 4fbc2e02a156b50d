"""The errors of the SIP backend: one tree, raised at its boundary.

`SipError` is what a caller sees: bad settings (a trunk URI that is no SIP URI, a prompt
that is no 8 kHz 16-bit mono audio), a media worker that cannot start (the SIP port is in
use, pjsua2 failed to initialise), a malformed message between the backend and a worker.
`retryable` says whether trying the same thing again may work (a port in use may be freed;
a bad URI stays bad).
"""

from __future__ import annotations


class SipError(Exception):
    """A problem of the SIP backend that its caller can act on."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class ProtocolError(SipError):
    """A message between the backend and a media worker was malformed or of another version."""
