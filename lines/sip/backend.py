"""`SipBackend`: the telephony backend over real SIP, through pjsua2 media workers.

The backend starts `SipSettings.workers` worker processes (each carries as many calls as
its pjsua2 build allows, read from its `Ready`) and spreads calls over them by free slots.
It maps worker events to `lines.telephony` events:

| worker event | telephony event                                         |
|--------------|---------------------------------------------------------|
| Ringing      | CallRinging (the first 18x only)                         |
| EarlyMedia   | EarlyMediaHeard(Announcement.UNKNOWN): early media began  |
| Heard        | EarlyMediaHeard(announcement, network[, after_answer]), for some (below) |
| Answered     | CallAnswered; held until MediaFlowing with a `no_media_timeout` |
| MediaFlowing | the held CallAnswered, then the CalleeActed held with it |
| Dtmf         | CalleeActed(intent=<the digit>); held while the answer is |
| Acted        | CalleeActed(intent) from the call's conversation; held so too |
| Classified   | AnswerClassified(kind) from answering-machine detection; held so too |
| Ended        | CallEnded (status, reason, Q.850 cause, who ended it, no media) |

Findings (`Heard`, from a media handler that reports them, such as the dialer's tone
detector): an early-media finding with a known announcement and a confidence of at least
`SipSettings.min_confidence`, before the answer, becomes an `EarlyMediaHeard` after the
UNKNOWN one of the 183; the engine keeps the latest, so the finding overrides it. One made
in the seconds after the answer (a carrier that answers, then plays its recording) becomes
an `EarlyMediaHeard(after_answer=True)` under the same conditions. Others are logged, no
more: an unsure or UNKNOWN one says no more than the 183 did.

Threads: the sink (and the optional observer) are called from the backend's I/O thread,
never from the caller's; the caller marshals events to its own loop (and never calls
`close()` from inside the sink). Only `close()` calls the sink from the caller's thread,
for calls no worker ended. If the sink raises, the I/O thread goes on and the next `place`
or `close` raises a `SipError` from it.

Contract, beyond `TelephonyBackend`'s:
- every placed call gets exactly one `CallEnded`: a call that cannot be placed (unknown
  trunk, a cap of the safety net, no free worker slot) ends with `sip_status` None; a call
  on a worker that dies ends with `sip_status` None and a reason saying the media worker
  crashed, and the worker is started again;
- an agent leg (`connect_agent`) is placed from the customer call's worker to the agent's
  softphone and bridged when it answers; if the leg fails or ends, the customer call is
  hung up, and the other way round. Agent legs never reach the sink;
- no media (`SipSettings.no_media_timeout`, 3 s by default; None turns it off): a call is
  handed on as answered only once the far end's audio flows, so `CallAnswered` waits for
  the first RTP packet after the 200 (tens of milliseconds on a working trunk). A call
  with no RTP by the timeout is hung up by its worker and ends with
  `CallEnded(sip_status=200, no_media=True, ended_by=NETWORK)` and no `CallAnswered`
  before it: how the simulated network reports a silent trunk, and what the engine counts
  as the trunk's `network_error`. A call that ends otherwise before its first packet also
  carries `no_media` (so does every 200 not reported as answered). Digits that come
  before the packet are delivered after the `CallAnswered`, or dropped with the call.
  Why hold the answer rather than report it and then the silence: dead air never reaches
  an agent or a script, never waits in the queue (to count as abandoned when it drops),
  and never enters the pacer's answer statistics. Agent legs are not watched.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from lines.sip import protocol as p
from lines.sip.errors import SipError
from lines.sip.pcm import read_pcm
from lines.sip.settings import SipSettings, SipTrunk
from lines.sip.supervisor import Supervisor
from lines.telephony import (
    AnswerClassified,
    CallAnswered,
    CalleeActed,
    CallEnded,
    CallEvent,
    CallRequest,
    CallRinging,
    EarlyMediaHeard,
    EventSink,
    Party,
)
from rules.signals import Announcement

logger = logging.getLogger(__name__)

Observer = Callable[[int, p.Event], None]  # (worker index, raw worker event)
_PARTY = {"us": Party.US, "remote": Party.CALLEE, "network": Party.NETWORK}
_SCRIPT, _ABANDON = "script", "abandon"


@dataclass(slots=True, kw_only=True)
class _Call:
    call_id: str
    worker: int
    claimed: int  # worker slots counted for it
    trunk: SipTrunk
    e164: str
    customer: str | None = None  # set on an agent leg: the call it serves
    leg: str | None = None  # set on a customer call: its agent leg
    reserved: bool = False  # holds an unused slot for its agent leg
    rang: bool = False
    early_media: bool = False
    answered: bool = False
    held: list[CallEvent] | None = None  # answered, no media yet: what waits for it
    ended: bool = False
    slots_freed: bool = False


class _Bucket:
    """The calls-per-second safety net: a token bucket on the injected clock."""

    def __init__(self, cps: float) -> None:
        self._cps, self._burst = cps, max(1.0, cps)
        self._tokens = self._burst
        self._at: datetime | None = None

    def take(self, now: datetime) -> bool:
        if self._at is not None:
            elapsed = max(0.0, (now - self._at).total_seconds())
            self._tokens = min(self._burst, self._tokens + elapsed * self._cps)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class SipBackend:
    """Places calls over SIP through media worker processes (see the module docstring)."""

    def __init__(self, sink: EventSink, settings: SipSettings, clock: Callable[[], datetime],
                 observer: Observer | None = None) -> None:
        self._sink, self._settings, self._clock = sink, settings, clock
        self._observer = observer
        self._trunks = {trunk.name: trunk for trunk in settings.trunks}
        self._buckets = {trunk.name: _Bucket(trunk.cps) for trunk in settings.trunks}
        self._channels = dict.fromkeys(self._trunks, 0)
        self._prompts = {name: read_pcm(path) for name, path in
                         ((_SCRIPT, settings.script_prompt), (_ABANDON, settings.abandon_prompt))
                         if path is not None}
        self._lock = threading.Lock()
        self._all_ended = threading.Condition(self._lock)
        self._calls: dict[str, _Call] = {}
        self._caps = [0] * settings.workers
        self._used = [0] * settings.workers
        self._ready = [False] * settings.workers
        self._closed = False
        self._callback_error: Exception | None = None
        self._supervisor = Supervisor(settings.worker_options(), self, settings.timing)
        self._supervisor.start()

    # TelephonyBackend

    def place(self, request: CallRequest) -> None:
        self._raise_callback_error()
        with self._lock:
            if self._closed:
                raise SipError("the SIP backend is closed")
            if request.call_id in self._calls:
                raise SipError(f"call {request.call_id} was placed already")
            trunk = self._trunks.get(request.trunk)
            worker, failure = self._seat(request, trunk)
            if trunk is None or worker is None:
                ended = CallEnded(call_id=request.call_id, at=self._clock(), sip_status=None,
                                  reason=failure, ended_by=Party.US)
                self._supervisor.call_soon(lambda: self._deliver([ended]))
                return
            reserve = self._settings.reserve_agent_slots
            no_media = self._settings.no_media_timeout
            call = _Call(call_id=request.call_id, worker=worker, claimed=1 + reserve,
                         trunk=trunk, e164=request.e164, reserved=reserve)
            self._calls[call.call_id] = call
            self._used[worker] += call.claimed
            self._channels[trunk.name] += 1
            self._supervisor.send(worker, p.Place(
                call_id=call.call_id, uri=trunk.target(request.e164),
                from_uri=trunk.identity(request.caller_id),
                pai=f"<{trunk.identity(request.caller_id)}>" if trunk.send_pai else None,
                ring_timeout=request.ring_timeout.total_seconds(),
                setup_timeout=self._settings.setup_timeout.total_seconds(),
                auth=trunk.auth, reserve_slot=reserve,
                no_media_timeout=None if no_media is None else no_media.total_seconds()))

    def _seat(self, request: CallRequest, trunk: SipTrunk | None) -> tuple[int | None, str]:
        """The worker to carry the call, or why there is none."""
        if trunk is None:
            return None, f"no SIP trunk named {request.trunk!r}"
        if self._channels[trunk.name] >= trunk.channels:
            return None, f"trunk {trunk.name}: all {trunk.channels} channels busy (safety net)"
        needed = 1 + self._settings.reserve_agent_slots
        free = [(self._caps[i] - self._used[i], i) for i in range(len(self._caps))
                if self._ready[i] and self._caps[i] - self._used[i] >= needed]
        if not free:
            return None, "no media worker has a free slot"
        if not self._buckets[trunk.name].take(self._clock()):
            return None, f"trunk {trunk.name}: over {trunk.cps:g} calls per second (safety net)"
        return max(free)[1], ""

    def hang_up(self, call_id: str) -> None:
        with self._lock:
            self._send_to(call_id, p.HangUp(call_id=call_id))

    def connect_agent(self, call_id: str, agent_id: str) -> None:
        """Place a call to the agent's softphone from the call's worker and bridge the two
        when the agent answers."""
        uri = self._settings.agents.get(agent_id)
        if uri is None:
            raise SipError(f"no softphone SIP URI for agent {agent_id}")
        with self._lock:
            call = self._calls.get(call_id)
            if call is None or call.ended or call.customer is not None or call.leg is not None:
                return
            leg = _Call(call_id=f"{call_id}/agent", worker=call.worker, claimed=1,
                        trunk=call.trunk, e164=call.e164, customer=call_id)
            from_reservation = call.reserved
            if from_reservation:
                call.reserved, call.claimed = False, call.claimed - 1  # the leg takes it over
            elif self._caps[call.worker] - self._used[call.worker] < 1:
                logger.warning("call %s: no slot for agent %s's leg; hanging up", call_id,
                               agent_id)
                self._send_to(call_id, p.HangUp(call_id=call_id))
                return
            else:
                self._used[call.worker] += 1
            call.leg = leg.call_id
            self._calls[leg.call_id] = leg
            self._supervisor.send(call.worker, p.Place(
                call_id=leg.call_id, uri=uri, from_uri=call.trunk.identity(call.e164),
                ring_timeout=self._settings.agent_ring_timeout.total_seconds(),
                setup_timeout=self._settings.setup_timeout.total_seconds(),
                into_reservation_of=call_id if from_reservation else None))

    def start_script(self, call_id: str, script: str,
                     variables: Mapping[str, str] | None = None) -> None:
        """With `SipSettings.conversations`, have the call's media handler run `script`
        (`Converse`); else play `SipSettings.script_prompt` whatever `script` names (and
        without one, nothing)."""
        with self._lock:
            if self._settings.conversations:
                self._send_to(call_id, p.Converse(call_id=call_id, script=script,
                                                  variables=dict(variables or {})))
            elif _SCRIPT in self._prompts:
                self._send_to(call_id, p.Play(call_id=call_id, prompt=_SCRIPT))

    def play_abandon_message(self, call_id: str) -> None:
        """Play `SipSettings.abandon_prompt` and hang up once it has played (at once
        without one)."""
        with self._lock:
            if _ABANDON in self._prompts:
                self._send_to(call_id, p.Play(call_id=call_id, prompt=_ABANDON,
                                              hang_up_after=True))
            else:
                self._send_to(call_id, p.HangUp(call_id=call_id))

    def send_dtmf(self, call_id: str, digits: str) -> None:
        """Send digits into a call (RFC 2833)."""
        with self._lock:
            self._send_to(call_id, p.SendDtmf(call_id=call_id, digits=digits))

    def _send_to(self, call_id: str, command: p.Command) -> None:
        call = self._calls.get(call_id)
        if call is not None and not call.ended and not self._closed:
            self._supervisor.send(call.worker, command)

    # life

    def close(self) -> None:
        """Hang up every call, wait (bounded) for them to end, stop the workers; calls no
        worker ended get their `CallEnded` here."""
        with self._lock:
            if self._closed:
                return
            for call in self._calls.values():
                if not call.ended:
                    self._supervisor.send(call.worker, p.HangUp(call_id=call.call_id))
            self._all_ended.wait_for(lambda: all(c.ended for c in self._calls.values()),
                                     timeout=self._settings.timing.stop_timeout_s)
            self._closed = True
        self._supervisor.stop()
        with self._lock:
            leftovers = [self._end(call, None, "the backend closed before the call ended",
                                   Party.US) for call in list(self._calls.values())]
            self._calls.clear()
        self._deliver([event for event in leftovers if event is not None])
        self._raise_callback_error()

    def worker_pids(self) -> list[int | None]:
        """The workers' process ids (None while one is being started again)."""
        return self._supervisor.pids()

    # WorkerListener: on the I/O thread

    def worker_ready(self, index: int, ready: p.Ready) -> None:
        for name, pcm in self._prompts.items():
            self._supervisor.send(index, p.LoadPrompt(name=name, pcm=pcm))
        with self._lock:
            self._caps[index], self._used[index], self._ready[index] = ready.cap, 0, True
        logger.info("media worker %d ready: pid %d, %d calls", index, ready.pid, ready.cap)

    def worker_lost(self, index: int, reason: str) -> None:
        with self._lock:
            self._ready[index], self._used[index] = False, 0
            lost = [call for call in self._calls.values() if call.worker == index]
            events = [self._end(call, None, f"media worker crashed ({reason})", Party.NETWORK)
                      for call in lost]
            for call in lost:
                self._free_slots(call)
        self._deliver([event for event in events if event is not None])

    def worker_event(self, index: int, event: p.Event) -> None:
        if self._observer is not None:
            self._guarded(self._observer, index, event)
        call_id = getattr(event, "call_id", None)
        with self._lock:
            call = self._calls.get(call_id) if isinstance(call_id, str) else None
            if call is None or call.worker != index:
                return  # a late event, or an incoming call this backend does not take
            events = self._translate(call, event)
        self._deliver(events)

    def _translate(self, call: _Call, event: p.Event) -> list[CallEvent]:
        if call.customer is not None:
            self._on_leg_event(call, event)
            return []
        at = self._clock()
        if isinstance(event, p.Ringing) and not call.rang:
            call.rang = True
            return [CallRinging(call_id=call.call_id, at=at)]
        if isinstance(event, p.EarlyMedia) and not call.early_media:
            call.early_media = True
            return [EarlyMediaHeard(call_id=call.call_id, at=at,
                                    announcement=Announcement.UNKNOWN)]
        if isinstance(event, p.Heard):
            return self._heard(call, event.finding, at)
        if isinstance(event, p.Answered):
            call.answered = True
            if self._settings.no_media_timeout is not None:
                call.held = []  # until the far end's media comes
                return []
            return [CallAnswered(call_id=call.call_id, at=at)]
        if isinstance(event, p.MediaFlowing) and call.held is not None:
            held, call.held = call.held, None
            return [CallAnswered(call_id=call.call_id, at=at), *held]
        if isinstance(event, p.Dtmf | p.Acted | p.Classified):
            acted = _callee_event(call.call_id, at, event)
            if call.held is not None:
                call.held.append(acted)
                return []
            return [acted]
        if isinstance(event, p.Ended):
            ended = self._end(call, event.status, event.reason, _PARTY.get(event.by, Party.US),
                              event.q850, no_media=event.no_media)
            if event.released:
                self._free_slots(call)
            if call.leg is not None:
                self._send_to(call.leg, p.HangUp(call_id=call.leg))
            return [ended] if ended is not None else []
        if isinstance(event, p.Released):
            self._free_slots(call)
        return []

    def _heard(self, call: _Call, finding: p.Finding, at: datetime) -> list[CallEvent]:
        """A finding as an `EarlyMediaHeard`, when it is one the engine should weigh: early
        media before the answer, or the carrier's recording just after it."""
        weighty = (finding.announcement is not Announcement.UNKNOWN
                   and finding.confidence >= self._settings.min_confidence)
        if weighty and finding.kind is p.FindingKind.EARLY_MEDIA and not call.answered:
            call.early_media = True  # a 183 reported after this must not undo it
            return [EarlyMediaHeard(call_id=call.call_id, at=at,
                                    announcement=finding.announcement, network=finding.network)]
        if weighty and finding.kind is p.FindingKind.AFTER_ANSWER and call.answered:
            heard = EarlyMediaHeard(call_id=call.call_id, at=at, after_answer=True,
                                    announcement=finding.announcement, network=finding.network)
            if call.held is not None:  # the answer itself waits for media
                call.held.append(heard)
                return []
            return [heard]
        logger.info("call %s: %s heard (%s, %s%s, confidence %.2f); not passed on",
                    call.call_id, finding.detail or "something", finding.kind.value,
                    finding.announcement.value, ", network" if finding.network else "",
                    finding.confidence)
        return []

    def _on_leg_event(self, leg: _Call, event: p.Event) -> None:
        customer = leg.customer or ""
        if isinstance(event, p.Answered):
            self._supervisor.send(leg.worker, p.Bridge(call_id=customer, other_call_id=leg.call_id))
        elif isinstance(event, p.Ended):
            self._end(leg, event.status, event.reason, Party.US)
            logger.info("agent leg of %s ended: %s %s", customer, event.status, event.reason)
            self._send_to(customer, p.HangUp(call_id=customer))
            if event.released:
                self._free_slots(leg)
        elif isinstance(event, p.Released):
            self._free_slots(leg)

    def _end(self, call: _Call, status: int | None, reason: str, by: Party,
             q850: int | None = None, *, no_media: bool = False) -> CallEnded | None:
        """The call's one CallEnded (None for an agent leg or a call already ended). Its
        trunk channel is free from here: the engine counts it free on CallEnded."""
        if call.ended:
            return None
        call.ended = True
        self._all_ended.notify_all()
        if call.customer is not None:
            return None
        self._channels[call.trunk.name] -= 1
        if call.slots_freed:
            del self._calls[call.call_id]
        if call.held:
            logger.info("call %s: %d digits dropped with its answer (no media)",
                        call.call_id, len(call.held))
        return CallEnded(call_id=call.call_id, at=self._clock(), sip_status=status,
                         reason=reason, q850_cause=q850, ended_by=by, no_media=no_media)

    def _free_slots(self, call: _Call) -> None:
        """The worker slots the call held are free again; an ended call is forgotten."""
        if not call.slots_freed:
            call.slots_freed = True
            if self._ready[call.worker]:
                self._used[call.worker] -= call.claimed
        if call.ended:
            self._calls.pop(call.call_id, None)

    def _deliver(self, events: list[CallEvent]) -> None:
        for event in events:
            self._guarded(self._sink, event)

    def _guarded(self, callback: Callable[..., None], *args: object) -> None:
        """Call the sink or observer; if it raises, keep the first error for `place` and
        `close` to raise in the caller's thread (the I/O thread must live on)."""
        try:
            callback(*args)
        except Exception as exc:
            logger.exception("the SIP backend's event sink raised")
            self._callback_error = self._callback_error or exc

    def _raise_callback_error(self) -> None:
        error, self._callback_error = self._callback_error, None
        if error is not None:
            raise SipError(f"the event sink raised: {error!r}") from error


def _callee_event(call_id: str, at: datetime,
                  event: p.Dtmf | p.Acted | p.Classified) -> CalleeActed | AnswerClassified:
    """What the callee did, or who answered, as the engine's event."""
    if isinstance(event, p.Classified):
        return AnswerClassified(call_id=call_id, at=at, kind=event.kind)
    intent = event.digit if isinstance(event, p.Dtmf) else event.intent
    return CalleeActed(call_id=call_id, at=at, intent=intent)
