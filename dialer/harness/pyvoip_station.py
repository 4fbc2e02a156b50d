"""The child process behind `dialer.harness.pyvoip_phones`: pyVoIP phones, reporting as
JSON lines. Run as `python -m dialer.harness.pyvoip_station`; not imported by the parent.

Input (stdin): one JSON line, the config `PyVoipPhones` writes (registrar, host, phones
with their audio as base64 8-bit unsigned PCM); then end of input, or any line, means stop.
Output (the original stdout; pyVoIP's prints go to stderr):
`{"type": "registered", "index": i}` per phone, `{"type": "ready"}`, one
`{"type": "call", ...}` per call (the fields of `PyVoipCall`) as each is over,
`{"type": "error", "message": ...}` if the phones cannot start, and `{"type": "stopped"}`.

Threads: pyVoIP runs each phone's SIP receiver, its re-registration timer, two RTP threads
per call, and calls `_Station._on_call` on a timer thread of its own per call (one second
after the INVITE). Stopping sets `_stopping` (every wait in `_on_call` watches it), joins
the call threads, stops the phones (hang up, deregister, close), then joins whatever pyVoIP
left running; the process ends at once if any thread outlives that.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import sys
import threading
import time
import traceback
import warnings
from typing import IO, Any, Final

from dialer.harness.ports import free_udp_ports

with warnings.catch_warnings():  # pyVoIP imports audioop, deprecated since Python 3.11
    warnings.simplefilter("ignore", DeprecationWarning)
    import pyVoIP.VoIP  # noqa: F401 - first: pyVoIP.SIP alone hits an import cycle
    from pyVoIP.SIP import SIPMessage, SIPMessageType
    from pyVoIP.VoIP import CallState, InvalidStateError, PhoneStatus, VoIPCall, VoIPPhone

_QUIET: Final = bytes(range(126, 131))  # 8-bit samples within 2 of 128 count as silence
_CHUNK: Final = 8000  # bytes read from a call at a time (pyVoIP pads with silence)
_LISTEN_EVERY_S: Final = 0.02
_REGISTER_TIMEOUT_S: Final = 3  # pyVoIP's wait for a REGISTER reply (its default: 30)
_RTP_PORTS: Final = 8  # per phone: up to 8 calls at once
_JOIN_S: Final = 3.0


class _Phone(VoIPPhone):
    """A VoIPPhone that notes when each INVITE arrived (pyVoIP calls back 1 s later) and
    which calls the caller cancelled (pyVoIP answers a CANCEL with 200, then forgets it)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.received: dict[str, float] = {}
        self.cancelled: set[str] = set()
        super().__init__(*args, **kwargs)

    def callback(self, request: SIPMessage) -> None:
        if request.type is SIPMessageType.MESSAGE and request.method == "CANCEL":
            self.cancelled.add(str(request.headers["Call-ID"]))
        super().callback(request)

    def _callback_MSG_Invite(self, request: SIPMessage) -> None:
        self.received.setdefault(str(request.headers["Call-ID"]), time.time())
        super()._callback_MSG_Invite(request)


def _refuse(call: VoIPCall, status: str) -> None:
    """End a ringing call with `status` ("486 Busy Here", "487 Request Terminated").

    pyVoIP's deny() sends only 486, and then stops the call's RTP clients, which a ringing
    call never started (an AttributeError after the 486 is out): there is nothing to stop.
    """
    call.RTPClients = []
    if status.startswith("486"):
        call.deny()
        return
    response = call.sip.gen_busy(call.request).replace("486 Busy Here", status, 1)
    call.sip.out.sendto(response.encode("utf8"), (call.phone.server, call.phone.port))
    call.state = CallState.ENDED
    call.phone.calls.pop(call.call_id, None)


class _Station:
    def __init__(self, config: dict[str, Any], out: IO[str]) -> None:
        host, port = config["server"]
        self._server = (str(host), int(port))
        self._host = str(config["host"])
        self._specs: list[dict[str, Any]] = list(config["phones"])
        self._out = out
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._phones: list[_Phone] = []

    def emit(self, report: dict[str, Any]) -> None:
        with self._lock:
            self._out.write(json.dumps(report) + "\n")
            self._out.flush()

    def start(self, timeout: float = 10.0) -> None:
        for index, spec in enumerate(self._specs):
            phone = self._start_phone(spec, time.monotonic() + timeout)
            if phone.get_status() is not PhoneStatus.REGISTERED:
                raise RuntimeError(f"phone {index} did not register: "
                                   f"{phone.get_status().value}")
            self.emit({"type": "registered", "index": index})
        self.emit({"type": "ready"})

    def _start_phone(self, spec: dict[str, Any], deadline: float) -> _Phone:
        rtp = free_udp_ports(_RTP_PORTS, self._host)
        phone = _Phone(self._server[0], self._server[1], str(spec["user"]), "-",
                       myIP=self._host, callCallback=functools.partial(self._on_call, spec),
                       sipPort=free_udp_ports(1, self._host), rtpPortLow=rtp,
                       rtpPortHigh=rtp + _RTP_PORTS - 1)
        phone.sip.register_timeout = _REGISTER_TIMEOUT_S
        self._phones.append(phone)
        phone.start()  # registers; on failure pyVoIP retries on a timer, up to 3 times
        while phone.get_status() is PhoneStatus.REGISTERING and time.monotonic() < deadline:
            time.sleep(0.05)
        return phone

    # one call, on pyVoIP's thread for it

    def _on_call(self, spec: dict[str, Any], call: VoIPCall) -> None:
        headers = call.request.headers
        phone = call.phone
        record: dict[str, Any] = {
            "user": spec["user"], "sip_call_id": call.call_id,
            "caller": str(headers["From"].get("number") or ""),
            "received_at": (phone.received.get(call.call_id, time.time())
                            if isinstance(phone, _Phone) else time.time()),
            "did": "error"}
        try:
            record.update(self._handle(spec, call))
        except Exception as exc:
            record["did"] = f"error: {type(exc).__name__}: {exc}"
            traceback.print_exc()
        record.setdefault("ended_at", time.time())
        self.emit({"type": "call", **record})

    def _handle(self, spec: dict[str, Any], call: VoIPCall) -> dict[str, Any]:
        rang = self._ring(call, float(spec["ring_s"]))
        if rang == "cancelled":
            _refuse(call, "487 Request Terminated")
            return {"did": "cancelled", "ended_by": "caller"}
        if rang == "stopping" or not spec["answer"]:
            _refuse(call, "486 Busy Here")
            return {"did": "486 Busy Here", "ended_by": "harness" if rang == "stopping"
                    else "phone"}
        call.answer()
        answered_at = time.time()
        play = base64.b64decode(spec["play"])
        if play:
            call.write_audio(play)
        heard = self._listen(call, spec["talk_s"])
        ended_by = "caller"
        if call.state is CallState.ANSWERED:
            try:
                call.hangup()
                ended_by = "harness" if self._stopping.is_set() else "phone"
            except InvalidStateError:
                pass  # the caller's BYE came first
        return {"did": "answered", "answered_at": answered_at, "ended_at": time.time(),
                "ended_by": ended_by, "bytes_played": len(play), "bytes_heard": heard}

    def _ring(self, call: VoIPCall, seconds: float) -> str:
        """"rang" after `seconds`, or at once "cancelled" or "stopping"."""
        until = time.monotonic() + seconds
        cancelled = call.phone.cancelled if isinstance(call.phone, _Phone) else set()
        while True:
            if call.call_id in cancelled:
                return "cancelled"
            if self._stopping.is_set():
                return "stopping"
            if (left := until - time.monotonic()) <= 0:
                return "rang"
            self._stopping.wait(min(left, _LISTEN_EVERY_S))

    def _listen(self, call: VoIPCall, talk_s: float | None) -> int:
        """Samples heard louder than silence, until the talk time is over, the caller
        hangs up or the station stops."""
        heard = 0
        until = time.monotonic() + talk_s if talk_s is not None else float("inf")
        while (call.state is CallState.ANSWERED and time.monotonic() < until
               and not self._stopping.is_set()):
            if len(call.RTPClients) == 1:
                heard += len(call.read_audio(_CHUNK, blocking=False).translate(None, _QUIET))
            self._stopping.wait(_LISTEN_EVERY_S)
        return heard

    # stopping

    def stop(self) -> None:
        self._stopping.set()
        deadline = time.monotonic() + _JOIN_S
        for phone in self._phones:
            for timer in list(phone.threads):  # the per-call threads running _on_call
                timer.join(max(0.0, deadline - time.monotonic()))
        for phone in self._phones:
            try:
                phone.stop()  # hangs up what is left, deregisters, closes its sockets
            except Exception:
                traceback.print_exc()
        deadline = time.monotonic() + _JOIN_S
        for thread in threading.enumerate():
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))


def main() -> None:
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # pyVoIP prints: keep them out of the reports
    sys.stdout = sys.stderr
    station = _Station(json.loads(sys.stdin.readline()), out)
    try:
        station.start()
        sys.stdin.readline()
    except Exception as exc:
        traceback.print_exc()
        station.emit({"type": "error", "message": f"{type(exc).__name__}: {exc}"})
    finally:
        station.stop()
    lingering = [t.name for t in threading.enumerate() if t is not threading.current_thread()]
    if lingering:
        print(f"threads still running at exit: {lingering}", file=sys.stderr)
    station.emit({"type": "stopped"})
    out.close()
    sys.stderr.flush()
    os._exit(0)  # pyVoIP's threads are not daemons: do not wait for any that linger


if __name__ == "__main__":
    main()
