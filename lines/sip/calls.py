"""pjsua2 calls and accounts as a media worker holds them.

`SipCall` keeps what the worker must remember about one call and forwards pjsua2's
callbacks to a `CallListener` (the worker). pjsua2 calls these callbacks from
`libHandleEvents`, on the worker's main thread; an exception raised in one would unwind
through pjsip's C code, so the listener's `guard` catches it and re-raises it after
`libHandleEvents` returns.

`AccountPool` holds one account per call slot at most (pjsua2 allows 8 accounts per process
and asserts past that). An account carries the From URI and the digest credentials, so a
call takes an account with its From and credentials, and an idle account is modified to
fit when none matches.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Protocol

import pjsua2 as pj

from lines.sip.errors import SipError
from lines.sip.media import CallPort
from lines.sip.protocol import Auth

_QUOTED_COMMA = re.compile(r',(?=(?:[^"]*"[^"]*")*[^"]*$)')  # a comma outside quotes
_REASON_LINE = re.compile(r"^Reason[ \t]*:(.*)$", re.IGNORECASE | re.MULTILINE)
_USER = re.compile(r"sips?:([^@;>]+)@", re.IGNORECASE)


class CallListener(Protocol):
    def guard(self, callback: Callable[..., None], *args: Any) -> None: ...

    def on_state(self, call: SipCall, prm: Any) -> None: ...

    def on_media(self, call: SipCall) -> None: ...

    def on_dtmf(self, call: SipCall, digit: str) -> None: ...

    def on_incoming(self, account: Any, prm: Any) -> None: ...


class MediaWatch:
    """An answered call's wait for the far end's first RTP packet (a call placed with a
    `no_media_timeout`): `start` at the answer, then `check` until the packet came or the
    time is up. Packets are counted in the stream's statistics: the frames a port hears
    cannot tell, as the jitter buffer fills silence in when nothing comes."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.timed_out = False
        self._deadline = 0.0
        self._heard = 0

    def start(self, heard: int, now: float) -> None:
        """From the answer at `now` (monotonic), when `heard` packets had come (early media)."""
        self._deadline, self._heard = now + self.timeout, heard

    def check(self, heard: int, now: float) -> bool | None:
        """True: media came. False: none came in time. None: wait on."""
        if heard > self._heard:
            return True
        if now >= self._deadline:
            self.timed_out = True
            return False
        return None


class SipCall(pj.Call):  # type: ignore[misc]  # pjsua2 has no type hints
    """One call and the worker's notes about it. The worker holds a reference to it until
    it is disconnected: dropping a pjsua2 call hangs it up with 603."""

    def __init__(self, listener: CallListener, account: Any, call_id: str, *,
                 outgoing: bool, pj_call_id: int = pj.PJSUA_INVALID_ID) -> None:
        super().__init__(account, pj_call_id)
        self.listener = listener
        self.account = account
        self.call_id = call_id
        self.outgoing = outgoing
        self.port: CallPort | None = None
        self.responded = False  # the far end answered the INVITE at all (even 100)
        self.rang: set[int] = set()
        self.early_media = False
        self.answered = False
        self.media_connected = False
        self.audio_index: int | None = None  # of the active audio stream
        self.media_watch: MediaWatch | None = None  # set until the far end's RTP comes
        self.ending_note: str | None = None  # set when we hang up: why
        self.reported_end = False
        self.disconnected = False
        self.reservation: str | None = None  # a slot kept for a later leg

    def rtp_received(self) -> int:
        """RTP packets heard from the far end so far (0 before the call has audio)."""
        if self.audio_index is None:
            return 0
        try:
            return int(self.getStreamStat(self.audio_index).rtcp.rxStat.pkt)
        except pj.Error:
            return 0  # the stream is gone (or not there yet)

    def onCallState(self, prm: Any) -> None:  # pjsua2's names
        self.listener.guard(self.listener.on_state, self, prm)

    def onCallMediaState(self, prm: Any) -> None:
        self.listener.guard(self.listener.on_media, self)

    def onCallTsxState(self, prm: Any) -> None:
        if received_message(prm) is not None:
            self.responded = True

    def onDtmfDigit(self, prm: Any) -> None:
        self.listener.guard(self.listener.on_dtmf, self, prm.digit)


class WorkerAccount(pj.Account):  # type: ignore[misc]  # pjsua2 has no type hints
    """An account whose incoming calls go to the worker (answer mode or a refusal)."""

    def __init__(self, listener: CallListener) -> None:
        super().__init__()
        self.listener = listener
        self.key: tuple[str, Auth | None] | None = None
        self.calls = 0

    def onIncomingCall(self, prm: Any) -> None:  # pjsua2's name
        self.listener.guard(self.listener.on_incoming, self, prm)


class AccountPool:
    """Accounts by (From URI, credentials), at most `size` of them."""

    def __init__(self, listener: CallListener, size: int) -> None:
        self._listener = listener
        self._size = size
        self._accounts: list[WorkerAccount] = []

    def take(self, from_uri: str, auth: Auth | None) -> WorkerAccount:
        key = (from_uri, auth)
        account = next((a for a in self._accounts if a.key == key), None)
        if account is None:
            account = self._fit(key)
        account.calls += 1
        return account

    def give_back(self, account: WorkerAccount) -> None:
        account.calls -= 1

    def _fit(self, key: tuple[str, Auth | None]) -> WorkerAccount:
        if len(self._accounts) < self._size:
            account = WorkerAccount(self._listener)
            account.create(_account_config(*key))
            self._accounts.append(account)
        else:
            idle = next((a for a in self._accounts if a.calls == 0), None)
            if idle is None:
                raise SipError("every account is in use: more calls than the worker's cap")
            account = idle
            account.modify(_account_config(*key))
        account.key = key
        return account

    def close(self) -> None:
        for account in self._accounts:
            account.shutdown()
        self._accounts.clear()


#: RTP ports: each account starts at a random even port of this range. pjsua's default (4000
#: and up, the same in every process) lets the workers on one host race for the same ports.
RTP_PORTS = (10000, 50000)


def account_config(id_uri: str) -> Any:
    """An account's configuration, with its RTP ports drawn from `RTP_PORTS`."""
    config = pj.AccountConfig()
    config.idUri = id_uri
    rtp = config.mediaConfig.transportConfig
    rtp.port, rtp.portRange, rtp.randomizePort = RTP_PORTS[0], RTP_PORTS[1], True
    return config


def _account_config(from_uri: str, auth: Auth | None) -> Any:
    config = account_config(from_uri)
    if auth is not None:
        credentials = pj.AuthCredInfo("digest", "*", auth.username, 0, auth.password)
        config.sipConfig.authCreds.append(credentials)
    return config


def respond(status: int, call: SipCall) -> None:
    """Answer an incoming call with 180, 183 (with SDP: early media) or 200."""
    prm = pj.CallOpParam()
    prm.statusCode = status
    call.answer(prm)


def header_of(name: str, value: str) -> Any:
    header = pj.SipHeader()
    header.hName = name
    header.hValue = value
    return header


def invite_options(pai: str | None) -> Any:
    """The INVITE's options: the default call settings, and a P-Asserted-Identity."""
    prm = pj.CallOpParam(True)
    if pai:
        prm.txOption.headers.append(header_of("P-Asserted-Identity", pai))
    return prm


def received_message(prm: Any) -> str | None:
    """The SIP message (response, or request such as a BYE) behind a call callback."""
    event = prm.e
    if event.type != pj.PJSIP_EVENT_TSX_STATE:
        return None
    state = event.body.tsxState
    if state.type != pj.PJSIP_EVENT_RX_MSG:
        return None
    return str(state.src.rdata.wholeMsg)


def q850_cause(message: str | None) -> int | None:
    """The Q.850 cause of a message's Reason header (RFC 3326), if it carries one."""
    if not message:
        return None
    head = message.split("\r\n\r\n", 1)[0]
    for line in _REASON_LINE.finditer(head):
        for value in _QUOTED_COMMA.split(line.group(1)):
            protocol, _, params = value.partition(";")
            if protocol.strip().upper() != "Q.850":
                continue
            for param in params.split(";"):
                name, _, number = param.partition("=")
                if name.strip().lower() == "cause" and number.strip().isdigit():
                    return int(number.strip())
    return None


def user_of(uri: str) -> str:
    """The user part of a SIP URI ("" when it has none)."""
    match = _USER.search(uri)
    return match.group(1) if match else ""
