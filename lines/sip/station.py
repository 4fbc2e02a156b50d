"""The inside of a media worker: its endpoint, calls, ports, accounts and timers.

`Station` carries out protocol commands with pjsua2 and turns pjsua2's callbacks into
protocol events. Everything here runs on the worker's main thread (the one calling
`libHandleEvents`); the clock thread only touches the ports.

Slots: pjsua2 carries `cap` calls at once. A call placed with `reserve_slot` also holds a
second slot until a leg is placed into it (`into_reservation_of`) or the call is released.
A place that would exceed the cap is refused (`Ended` with status None). pjsua2 lets a
call's slot go one event after the call's DISCONNECTED, so a place that comes in between
waits for it (a poll or two, at most `_DEFER_S`).

No media: a call placed with a `no_media_timeout` is watched from its answer (`MediaWatch`):
`MediaFlowing` when the far end's first RTP packet comes; without one in time, a hang-up.
Any end before that packet is an `Ended` with `no_media`.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import pjsua2 as pj

from lines.sip import answer, calls, endpoint
from lines.sip import protocol as p
from lines.sip.answer import IncomingCall, Planner, Step
from lines.sip.calls import MediaWatch, SipCall
from lines.sip.errors import ProtocolError, SipError
from lines.sip.media import HandlerFactory, PortPool, check_frame_access
from lines.sip.payloads import AnswerVerdict, CalleeIntent
from lines.sip.pcm import duration_s, read_pcm
from lines.sip.timers import CallTimers

logger = logging.getLogger(__name__)

_PLAYED_MARGIN_S = 0.3  # after a prompt's duration, before hanging up behind it
_DEFER_S = 1.0  # how long a place waits for pjsua2 to let go of a slot it still holds
_MEDIA_CHECK_S = 0.02  # how often an answered call is checked for the far end's RTP


class Station:
    """A worker's pjsua2 side. `start` once, then `handle` commands and `poll` in a loop,
    then `close`. Events go out through `emit` as they happen."""

    def __init__(self, emit: Callable[[p.Event], None], *, handlers: HandlerFactory,
                 planner: Planner | None = None) -> None:
        self.planner = planner
        self._emit = emit
        self._handlers = handlers
        self._endpoint: Any = None
        self._cap = 0
        self._calls: dict[str, SipCall] = {}
        self._reserved: set[str] = set()  # calls holding a slot for a later leg
        self._prompts: dict[str, bytes] = {}
        self._timers: CallTimers[SipCall] = CallTimers()
        self._deferred: list[tuple[float, p.Place]] = []  # places waiting for pjsua2's slot
        self._incoming_ids = itertools.count()
        self._failure: BaseException | None = None

    # life

    def start(self, settings: endpoint.EndpointSettings) -> p.Ready:
        self._endpoint, port = endpoint.open_endpoint(settings)
        try:
            check_frame_access()
        except SipError:
            self._endpoint.libDestroy(pj.PJSUA_DESTROY_NO_NETWORK)
            self._endpoint = None
            raise
        self._cap = endpoint.call_cap()
        self._ports = PortPool(self._cap)
        self._accounts = calls.AccountPool(self, min(self._cap, endpoint.MAX_ACCOUNTS - 1))
        self._incoming = calls.WorkerAccount(self)  # the default account: takes incoming calls
        self._incoming.create(calls.account_config(f"sip:worker@{settings.host}:{port}"))
        self._incoming.setDefault()
        logger.info("ready on %s:%d, %d calls at most", settings.host, port, self._cap)
        return p.Ready(t=time.time(), pid=os.getpid(), cap=self._cap, host=settings.host,
                       port=port)

    @property
    def busy(self) -> bool:
        return bool(self._calls)

    def poll(self, poll_ms: int) -> None:
        self._endpoint.libHandleEvents(poll_ms)
        if self._failure is not None:
            raise self._failure  # from a pjsua2 callback: crash loudly, the supervisor restarts
        self._fire_timers()
        self._retry_deferred()
        for live in list(self._calls.values()):
            self._tell_findings(live)
            self._tell_notes(live)
        for port in self._ports.failed():
            call = next((c for c in self._calls.values() if c.port is port), None)
            error, port.error = port.error, None
            if call is not None:
                self._hang_up(call, f"media handler failed: {error}")

    def hang_up_all(self, note: str) -> None:
        for call in list(self._calls.values()):
            self._hang_up(call, note)

    def close(self) -> None:
        """Tear down in pjsua2's order: ports, calls, accounts, then the library. Calls
        were hung up before; the library is destroyed without waiting on the network
        (which would take a second per worker)."""
        if self._endpoint is None:
            return
        self._endpoint.audDevManager().setNoDev()  # stops the clock thread: ports go quiet
        self._ports.close()
        self._calls.clear()
        self._accounts.close()
        self._incoming.shutdown()
        del self._incoming
        self._endpoint.libDestroy(pj.PJSUA_DESTROY_NO_NETWORK)
        self._endpoint = None

    # commands

    def handle(self, command: p.Command) -> None:
        if isinstance(command, p.Place):
            self._place(command)
        elif isinstance(command, p.HangUp):
            call = self._calls.get(command.call_id)
            if call is not None:
                self._hang_up(call, "hung up by us")
            elif any(c.call_id == command.call_id for _, c in self._deferred):
                self._deferred = [(at, c) for at, c in self._deferred
                                  if c.call_id != command.call_id]
                self._refuse(command.call_id, "hung up by us before the INVITE went out")
        elif isinstance(command, p.Converse):
            self._converse(command)
        elif isinstance(command, p.SendDtmf):
            self._with_call(command.call_id, lambda call: call.dialDtmf(command.digits))
        elif isinstance(command, p.LoadPrompt):
            self._load_prompt(command)
        elif isinstance(command, p.Play):
            self._play(command)
        elif isinstance(command, p.Bridge):
            self._bridge(command)
        elif isinstance(command, p.SetPlans):
            self.planner = answer.PlanTable(command.plans, command.default)
        elif isinstance(command, p.Ping):
            self._emit(p.Pong(t=time.time(), seq=command.seq))

    def _needed(self, command: p.Place) -> int:
        """The slots a place takes: its own (unless it has a reservation), and one more to
        reserve."""
        into = command.into_reservation_of
        return int(into is None or into not in self._reserved) + int(command.reserve_slot)

    def _place(self, command: p.Place, deadline: float | None = None) -> None:
        call_id = command.call_id
        if call_id in self._calls or any(c.call_id == call_id for _, c in self._deferred):
            raise ProtocolError(f"call id {call_id} is already in use")
        waiting = sum(self._needed(c) for _, c in self._deferred)
        if len(self._calls) + len(self._reserved) + waiting + self._needed(command) > self._cap:
            self._refuse(call_id, "media worker full")
            return
        if endpoint.calls_held() >= self._cap:  # free in our books, not yet in pjsua2's
            self._deferred.append((deadline or time.monotonic() + _DEFER_S, command))
            return
        if command.into_reservation_of in self._reserved:
            self._reserved.discard(command.into_reservation_of or "")
        if not endpoint.verify_uri(self._endpoint, command.uri):
            self._refuse(call_id, "invalid SIP URI")
            return
        if not endpoint.verify_uri(self._endpoint, command.from_uri):
            self._refuse(call_id, "invalid From URI")
            return
        try:
            account = self._accounts.take(command.from_uri, command.auth)
        except SipError as exc:  # more distinct From URIs at once than pjsua2 has accounts
            self._refuse(call_id, str(exc))
            return
        call = SipCall(self, account, call_id, outgoing=True)
        if command.no_media_timeout is not None:
            call.media_watch = MediaWatch(timeout=command.no_media_timeout)
        call.port = self._ports.acquire(self._handlers(call_id))
        self._calls[call_id] = call
        if command.reserve_slot:
            self._reserved.add(call_id)
        try:
            call.makeCall(command.uri, calls.invite_options(command.pai))
        except pj.Error as exc:
            self._release(call, p.Ended(t=time.time(), call_id=call_id, status=None,
                                        reason=f"INVITE not sent: {exc.reason}", by="us"))
            return
        self._emit(p.Trying(t=time.time(), call_id=call_id))
        self._after(command.setup_timeout, call_id,
                    partial(self._setup_timed_out, command.setup_timeout))
        self._after(command.ring_timeout, call_id, self._ring_timed_out)

    def _refuse(self, call_id: str, reason: str) -> None:
        logger.info("call %s refused: %s", call_id, reason)
        self._emit(p.Ended(t=time.time(), call_id=call_id, status=None, reason=reason, by="us"))

    def _setup_timed_out(self, seconds: float, call: SipCall) -> None:
        if call.responded or call.answered:
            return
        call.reported_end = True
        self._emit(p.Ended(t=time.time(), call_id=call.call_id, status=408,
                           reason=f"no response to INVITE within {seconds:g} s", by="network",
                           released=False))
        self._hang_up(call, "setup timeout")

    def _ring_timed_out(self, call: SipCall) -> None:
        if not call.answered:
            self._hang_up(call, "ring timeout")

    def _load_prompt(self, command: p.LoadPrompt) -> None:
        try:
            pcm = command.pcm if command.pcm is not None else read_pcm(command.path or "")
        except SipError as exc:
            raise ProtocolError(f"prompt {command.name}: {exc}") from exc
        self._prompts[command.name] = pcm

    def _prompt(self, name: str) -> bytes:
        try:
            return self._prompts[name]
        except KeyError:
            raise ProtocolError(f"no prompt loaded as {name!r}") from None

    def _play(self, command: p.Play) -> None:
        pcm = self._prompt(command.prompt)
        call = self._calls.get(command.call_id)
        if call is None or call.port is None or call.port.handler is None:
            return
        call.port.handler.play(pcm)
        if command.hang_up_after:
            self._after(duration_s(pcm) + _PLAYED_MARGIN_S, call.call_id,
                        partial(self._hang_up, note="prompt played"))

    def _converse(self, command: p.Converse) -> None:
        call = self._calls.get(command.call_id)
        if call is None or call.port is None:
            return
        if not call.port.converse(command.script, command.variables):
            logger.warning("call %s: its media handler holds no conversations; script %s "
                           "not run", call.call_id, command.script)

    def _bridge(self, command: p.Bridge) -> None:
        pair = [self._calls.get(command.call_id), self._calls.get(command.other_call_id)]
        if not all(call is not None and call.answered for call in pair):
            logger.info("bridge %s-%s skipped: a call is not up", command.call_id,
                        command.other_call_id)
            return
        first, second = (call.getAudioMedia(-1) for call in pair if call is not None)
        first.startTransmit(second)
        second.startTransmit(first)
        for call in pair:
            if call is not None and call.port is not None and call.port.handler is not None:
                call.port.handler.stop_playing()
                call.port.bridged()
        self._emit(p.Bridged(t=time.time(), call_id=command.call_id,
                             other_call_id=command.other_call_id))

    def _with_call(self, call_id: str, action: Callable[[SipCall], None]) -> None:
        call = self._calls.get(call_id)
        if call is None:
            return
        try:
            action(call)
        except pj.Error as exc:
            logger.info("call %s: %s refused (%s)", call_id, exc.title, exc.reason)

    def _hang_up(self, call: SipCall, note: str, status: int = 0, reason: str = "",
                 header: str | None = None) -> None:
        if call.ending_note is None:
            call.ending_note = note
        prm = pj.CallOpParam()
        prm.statusCode = status
        prm.reason = reason
        if header is not None:
            prm.txOption.headers.append(calls.header_of("Reason", header))
        self._with_call(call.call_id, lambda c: c.hangup(prm))

    def _retry_deferred(self) -> None:
        pending, self._deferred = self._deferred, []
        for deadline, command in pending:
            if time.monotonic() > deadline:
                self._refuse(command.call_id, "pjsua2 kept every call slot busy")
            else:
                self._place(command, deadline)

    # timers

    def _after(self, delay: float, call_id: str, action: Callable[[SipCall], None]) -> None:
        """Run `action` on the call `delay` seconds from now, if it is still up."""
        self._timers.at(time.monotonic() + delay, call_id, action)

    def _fire_timers(self) -> None:
        for call_id, action in self._timers.due(time.monotonic()):
            call = self._calls.get(call_id)
            if call is not None:
                action(call)

    # pjsua2 callbacks (through SipCall and WorkerAccount)

    def guard(self, callback: Callable[..., None], *args: Any) -> None:
        try:
            callback(*args)
        except BaseException as exc:  # re-raised by poll(): it must not unwind through pjsip
            self._failure = self._failure or exc

    def on_state(self, call: SipCall, prm: Any) -> None:
        info = call.getInfo()
        if info.state == pj.PJSIP_INV_STATE_EARLY and call.outgoing:
            call.responded = True
            status = info.lastStatusCode
            if 180 <= status <= 189 and status not in call.rang:
                call.rang.add(status)
                self._emit(p.Ringing(t=time.time(), call_id=call.call_id, status=status))
        elif info.state == pj.PJSIP_INV_STATE_CONFIRMED and not call.answered:
            call.answered = True
            if call.port is not None:
                call.port.answered()
            self._tell_findings(call)  # what early media said, before the answer
            self._emit(p.Answered(t=time.time(), call_id=call.call_id))
            if call.media_watch is not None:
                call.media_watch.start(call.rtp_received(), time.monotonic())
                self._check_media(call)
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self._disconnected(call, info, calls.received_message(prm))

    def _disconnected(self, call: SipCall, info: Any, message: str | None) -> None:
        watch = call.media_watch
        by = "us" if call.ending_note else "remote" if call.answered or not call.outgoing \
            else "network"
        if watch is not None and watch.timed_out:
            by = "network"  # answered, then silent: the trunk failed the call
        reason = info.lastReason
        if call.ending_note:
            reason = f"{call.ending_note}: {reason}"
        self._release(call, p.Ended(t=time.time(), call_id=call.call_id,
                                    status=info.lastStatusCode or None, reason=reason,
                                    q850=calls.q850_cause(message), by=by,
                                    no_media=call.answered and watch is not None))

    def _release(self, call: SipCall, ended: p.Ended) -> None:
        """Forget a call (dropping the last reference to it once the callback returns, as
        pjsua2 wants) and report its end, with what its media handler saw, or, when its
        end was reported already, that its slots are free."""
        if not call.reported_end:
            self._tell_findings(call)
        self._calls.pop(call.call_id, None)
        self._reserved.discard(call.call_id)
        stats = self._ports.release(call.port) if call.port is not None else None
        call.port = None
        if call.outgoing:
            self._accounts.give_back(call.account)
        if call.reported_end:
            self._emit(p.Released(t=time.time(), call_id=call.call_id))
        else:
            call.reported_end = True
            self._emit(dataclasses.replace(ended, media=stats))

    def _tell_findings(self, call: SipCall) -> None:
        for finding in call.port.findings() if call.port is not None else ():
            self._emit(p.Heard(t=time.time(), call_id=call.call_id, finding=finding))

    def _tell_notes(self, call: SipCall) -> None:
        for note in call.port.notes() if call.port is not None else ():
            if isinstance(note, CalleeIntent):
                self._emit(p.Acted(t=time.time(), call_id=call.call_id, intent=note.intent))
            elif isinstance(note, AnswerVerdict):
                self._emit(p.Classified(t=time.time(), call_id=call.call_id, kind=note.kind))
            else:
                self._hang_up(call, note.note)

    def _check_media(self, call: SipCall) -> None:
        """Whether the far end's RTP came since the answer; if not, check again shortly, or
        give up on the call once its watch is over."""
        watch = call.media_watch
        if watch is None or call.ending_note is not None:
            return
        came = watch.check(call.rtp_received(), time.monotonic())
        if came:
            call.media_watch = None
            self._emit(p.MediaFlowing(t=time.time(), call_id=call.call_id))
        elif came is None:
            self._after(_MEDIA_CHECK_S, call.call_id, self._check_media)
        else:
            self._hang_up(call, f"no media within {watch.timeout:g} s")

    def on_media(self, call: SipCall) -> None:
        info = call.getInfo()
        for index, media in enumerate(info.media):
            if media.type != pj.PJMEDIA_TYPE_AUDIO or media.status != pj.PJSUA_CALL_MEDIA_ACTIVE:
                continue
            call.audio_index = index
            if call.port is not None:
                audio = call.getAudioMedia(index)
                audio.startTransmit(call.port)  # connecting twice is harmless
                call.port.startTransmit(audio)
            if info.state == pj.PJSIP_INV_STATE_EARLY and call.outgoing and not call.early_media:
                call.early_media = True
                self._emit(p.EarlyMedia(t=time.time(), call_id=call.call_id))

    def on_dtmf(self, call: SipCall, digit: str) -> None:
        if call.port is not None:
            call.port.dtmf(digit)
        self._emit(p.Dtmf(t=time.time(), call_id=call.call_id, digit=digit))

    # answer mode

    def on_incoming(self, account: Any, prm: Any) -> None:
        call_id = f"in-{next(self._incoming_ids)}"
        call = SipCall(self, account, call_id, outgoing=False, pj_call_id=prm.callId)
        info = call.getInfo()
        self._calls[call_id] = call
        call.port = self._ports.acquire(self._handlers(call_id))
        self._emit(p.Incoming(t=time.time(), call_id=call_id, from_uri=info.remoteUri,
                              to_uri=info.localUri))
        if len(self._calls) + len(self._reserved) > self._cap:
            plan = p.AnswerPlan(status=486, reason="Busy Here")
        else:
            planner = self.planner or (lambda _: answer.REFUSE)
            plan = planner(IncomingCall(call_id=call_id, from_uri=info.remoteUri,
                                        to_uri=info.localUri, to_user=calls.user_of(info.localUri)))
        for delay, step in answer.timeline(plan):
            if delay == 0 and isinstance(step, answer.Alert | answer.Answer):
                self._step(step, call)  # at once, not at the next poll: callers time answers
            else:  # (a rejection from inside this callback would lose its Reason header)
                self._after(delay, call_id, partial(self._step, step))

    def _step(self, step: Step, call: SipCall) -> None:
        if isinstance(step, answer.Alert):
            self._with_call(call.call_id, partial(calls.respond, 183 if step.early_media else 180))
            if step.early_media is not None:
                self._play_into(call, step.early_media)
        elif isinstance(step, answer.Reject):
            self._hang_up(call, "rejected", step.status, step.reason or "", step.reason_header)
        elif isinstance(step, answer.Answer):
            self._with_call(call.call_id, partial(calls.respond, 200))
            if step.play is not None:
                self._play_into(call, step.play)
        elif isinstance(step, answer.SendDigits):
            self._with_call(call.call_id, lambda c: c.dialDtmf(step.digits))
        elif isinstance(step, answer.HangUpCall):
            self._hang_up(call, "hung up by plan")

    def _play_into(self, call: SipCall, prompt: str) -> None:
        pcm = self._prompt(prompt)
        if call.port is not None and call.port.handler is not None:
            call.port.handler.stop_playing()
            call.port.handler.play(pcm)

