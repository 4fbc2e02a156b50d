"""The simulated telephone network: a `TelephonyBackend` that runs in simulated time.

`place` draws the call's fate from the callee population and schedules its events on the
`SimWorld`; the engine's commands (`hang_up`, `connect_agent`, `start_script`,
`play_abandon_message`) change what the callee does next. Events reach the sink only from
inside `SimWorld.run_until`, never from inside a command, so the engine is never
re-entered. Every placed call ends with exactly one `CallEnded`, its last event.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Final

from dialer.sim.population import CalleeProfile, Callees, Fate, Outcome, stable_seed
from dialer.sim.scenario import Scenario, ScriptReactions, SimTrunk
from dialer.sim.world import CallRandom, SimWorld, Timer
from lines.callerid_locality import Closeness, closeness, locality
from lines.telephony import (
    AnswerClassified,
    CallAnswered,
    CalleeActed,
    CallEnded,
    CallRequest,
    CallRinging,
    EarlyMediaHeard,
    EventSink,
    Party,
)
from rules.signals import Announcement, AnswerKind

_DAY: Final = timedelta(days=1)

NO_FREE_CHANNEL: Final = "no free channel"
UNKNOWN_TRUNK: Final = "unknown trunk"
NORMAL_CLEARING: Final = "normal clearing"
_NO_ANSWER_CAUSE: Final = 19  # Q.850: no answer from user (user alerted)
_PHRASES: Final = {
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    410: "Gone",
    480: "Temporarily Unavailable",
    484: "Address Incomplete",
    486: "Busy Here",
    487: "Request Terminated",
    500: "Server Internal Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
}


def reason_phrase(status: int) -> str:
    """The SIP reason phrase a carrier sends with `status`."""
    return _PHRASES.get(status, f"SIP {status}")


@dataclass(slots=True, eq=False)
class _Call:
    request: CallRequest
    placed_at: datetime
    fate: Fate | None = None
    trunk: str | None = None  # the trunk whose channel the call holds
    answered: bool = False
    timers: list[Timer] = field(default_factory=list)  # progress before answer, and AMD
    behaviour: Timer | None = None  # what the callee does next, once answered
    agent_id: str | None = None

    @property
    def rng(self) -> CallRandom:
        assert self.fate is not None
        return self.fate.rng

    @property
    def human(self) -> bool:
        return self.fate is not None and self.fate.outcome is Outcome.HUMAN

    def cancel_all(self) -> None:
        for timer in self.timers:
            timer.cancel()
        if self.behaviour is not None:
            self.behaviour.cancel()


class SimulatedNetwork:
    """A seeded population of callees behind simulated trunks.

    - `place` never emits at once; a call refused by its trunk ends at the current
      simulated time with 503 "no free channel" (None "unknown trunk" for a trunk the
      scenario does not list; a scenario without trunks accepts any name, unlimited).
    - Commands on a call that has ended (or was never placed) are no-ops; `connect_agent`,
      `start_script` and `play_abandon_message` on a call not yet answered raise
      `ValueError` (the engine has no business doing that).
    - The same seed, scenario and commands give the same events at the same times.
    """

    def __init__(self, world: SimWorld, scenario: Scenario, sink: EventSink, seed: int = 0) -> None:
        self._world = world
        self._scenario = scenario
        self._sink = sink
        self._callees = Callees(scenario, seed, world.start)
        self._trunks = {trunk.name: trunk for trunk in scenario.trunks}
        self._in_use: Counter[str] = Counter()
        self._calls: dict[str, _Call] = {}
        self._rng = random.Random(stable_seed(seed, "network"))
        #: The fates drawn so far: what the callees did, whatever the engine saw.
        self.outcomes: Counter[Outcome] = Counter()
        #: Spam marks callees gave each caller ID (`CallerIdEffects`), and the calls
        #: each placed per simulated day.
        self.marks: Counter[str] = Counter()
        self._used_today: Counter[tuple[str, int]] = Counter()

    # --- queries ----------------------------------------------------------------------

    def channels_in_use(self, trunk: str) -> int:
        return self._in_use[trunk]

    @property
    def active_calls(self) -> int:
        """Calls placed and not yet ended."""
        return len(self._calls)

    def profile(self, e164: str) -> CalleeProfile:
        """The callee profile behind a number (ground truth, for tests and reports)."""
        return self._callees.profile(e164)

    # --- TelephonyBackend -------------------------------------------------------------

    def place(self, request: CallRequest) -> None:
        if request.call_id in self._calls:
            raise ValueError(f"call {request.call_id} is already in progress")
        call = _Call(request, self._world.now)
        self._calls[request.call_id] = call
        refusal = self._take_channel(call)
        if refusal is not None:
            self.outcomes[Outcome.NO_CHANNEL] += 1
            self._end(call, refusal[0], refusal[1], Party.NETWORK, deferred=True)
            return
        trunk = self._trunks.get(request.trunk)
        elapsed = self._world.elapsed
        failure_rate = 0.0 if trunk is None else trunk.failure_rate_at(elapsed)
        if trunk is not None and failure_rate and self._rng.random() < failure_rate:
            self._fail_on_trunk(call, trunk)
            return
        silent_rate = 0.0 if trunk is None else trunk.silent_rate_at(elapsed)
        if silent_rate and self._rng.random() < silent_rate:
            self._silent(call)
            return
        fate = self._screened(request, self._callees.fate(request.e164, call.placed_at))
        call.fate = fate
        self.outcomes[fate.outcome] += 1
        self._follow(call, fate)

    def hang_up(self, call_id: str) -> None:
        call = self._calls.get(call_id)
        if call is None:
            return
        if call.answered:
            self._end(call, 200, NORMAL_CLEARING, Party.US, deferred=True)
        else:
            self._end(call, 487, reason_phrase(487), Party.US, deferred=True)

    def connect_agent(self, call_id: str, agent_id: str) -> None:
        call = self._answered(call_id, "connect_agent")
        if call is None:
            return
        call.agent_id = agent_id
        if call.human:  # a machine goes on recording until it hangs up by itself
            talk = self._scenario.talk_time.draw(call.rng)
            self._then(call, talk, partial(self._callee_hangs_up, call))

    def start_script(self, call_id: str, script: str,
                     variables: Mapping[str, str] | None = None) -> None:
        call = self._answered(call_id, "start_script")
        if call is None:
            return
        reactions = self._scenario.reactions(script)
        rng = call.rng
        length = reactions.length.draw(rng)
        if not call.human:
            self._then(call, length, partial(self._script_completed, call))
            return
        intent = _reaction(reactions, rng.random())
        if intent == "completed":
            self._then(call, length, partial(self._script_completed, call))
        elif intent == "hang_up":
            self._then(call, length * rng.uniform(0.1, 0.9), partial(self._callee_hangs_up, call))
        else:
            act = partial(self._callee_acts, call, intent, reactions)
            self._then(call, length * rng.uniform(0.1, 0.9), act)

    def play_abandon_message(self, call_id: str) -> None:
        call = self._answered(call_id, "play_abandon_message")
        if call is None:
            return
        length = self._scenario.network.abandon_message.draw(call.rng)
        self._then(call, length, partial(self._end, call, 200, NORMAL_CLEARING, Party.US))

    # --- placing ----------------------------------------------------------------------

    def _take_channel(self, call: _Call) -> tuple[int | None, str] | None:
        """Take a channel on the call's trunk, or say why the call cannot leave."""
        name = call.request.trunk
        if self._trunks:
            trunk = self._trunks.get(name)
            if trunk is None:
                return None, UNKNOWN_TRUNK
            if trunk.channels is not None and self._in_use[name] >= trunk.channels:
                return 503, NO_FREE_CHANNEL
        self._in_use[name] += 1
        call.trunk = name
        return None

    def _fail_on_trunk(self, call: _Call, trunk: SimTrunk) -> None:
        self.outcomes[Outcome.TRUNK_FAILURE] += 1
        code = trunk.failure_code
        fail = partial(self._end, call, code, reason_phrase(code), Party.NETWORK)
        call.timers.append(self._world.schedule_in(trunk.failure_delay.draw(self._rng), fail))

    def _silent(self, call: _Call) -> None:
        """The trunk "answers" but no audio ever comes; the media side gives up at once."""
        self.outcomes[Outcome.SILENT] += 1
        after = self._rng.uniform(3.0, 12.0)
        end = partial(self._end, call, 200, "answered with no media", Party.NETWORK,
                      no_media=True)
        call.timers.append(self._world.schedule_in(after, end))

    def _screened(self, request: CallRequest, fate: Fate) -> Fate:
        """The caller ID's part: over-used numbers get marked as spam, and callees who
        would have answered a marked number may let it ring."""
        effects = self._scenario.caller_ids
        caller = request.caller_id
        day = int(self._world.elapsed / _DAY)
        self._used_today[caller, day] += 1
        if (effects.mark_chance and self._used_today[caller, day] > effects.tolerated_per_day
                and self._rng.random() < effects.mark_chance):
            self.marks[caller] += 1
        if fate.answer_at is None:
            return fate
        keep = max(effects.floor, 1.0 - effects.loss_per_mark * self.marks[caller])
        if effects.nonlocal_factor < 1.0 and closeness(
                locality(request.e164), locality(caller)) is not Closeness.SAME_CITY:
            keep *= effects.nonlocal_factor
        if keep < 1.0 and fate.rng.random() >= keep:
            return replace(fate, outcome=Outcome.SCREENED, answer_at=None)
        return fate

    def _follow(self, call: _Call, fate: Fate) -> None:
        """Schedule what happens before anyone answers; what would come after the ring
        timeout (ours or the network's) gives way to it."""
        cut, at = self._cutoff_after(call), self._at
        if fate.ring_at is not None and fate.ring_at < cut:
            at(call, fate.ring_at, partial(self._emit_ringing, call))
        if fate.early_media_at is not None and fate.early_media_at < cut and fate.announcement:
            at(call, fate.early_media_at, partial(self._emit_early_media, call, fate.announcement))
        if fate.end_at is not None and fate.end_at < cut and fate.signal is not None:
            signal = fate.signal
            reason = signal.reason or reason_phrase(signal.sip)
            at(
                call,
                fate.end_at,
                partial(self._end, call, signal.sip, reason, Party.NETWORK, signal.q850),
            )
        elif fate.answer_at is not None and fate.answer_at < cut:
            at(call, fate.answer_at, partial(self._answer, call))
        else:
            at(call, cut, partial(self._cut_off, call))

    def _cutoff_after(self, call: _Call) -> float:
        """Seconds after the dial at which an unanswered call is cut off."""
        ring_timeout = call.request.ring_timeout.total_seconds()
        network_timeout = self._scenario.network.no_answer_timeout
        if network_timeout is not None:
            return min(ring_timeout, network_timeout.total_seconds())
        return ring_timeout

    def _cut_off(self, call: _Call) -> None:
        """Our ring timeout (487, we cancel) or the network's, if that comes first (480)."""
        network_timeout = self._scenario.network.no_answer_timeout
        if network_timeout is not None and network_timeout < call.request.ring_timeout:
            self._end(call, 480, reason_phrase(480), Party.NETWORK, _NO_ANSWER_CAUSE)
        else:
            self._end(call, 487, reason_phrase(487), Party.US)

    def _at(self, call: _Call, seconds: float, fn: Callable[[], None]) -> None:
        call.timers.append(self._world.schedule_in(seconds, fn))  # the call was placed now

    def _emit_ringing(self, call: _Call) -> None:
        self._sink(CallRinging(call_id=call.request.call_id, at=self._world.now))

    def _emit_early_media(self, call: _Call, announcement: Announcement) -> None:
        call_id = call.request.call_id
        self._sink(EarlyMediaHeard(call_id=call_id, at=self._world.now, announcement=announcement))

    # --- after the answer -------------------------------------------------------------

    def _answer(self, call: _Call) -> None:
        call.answered = True
        for timer in call.timers:  # whatever is still pending from before the answer
            timer.cancel()
        call.timers.clear()
        rng, amd, answer = call.rng, self._scenario.amd, self._scenario.population.answer
        kind = AnswerKind.HUMAN if call.human else AnswerKind.MACHINE
        if amd.unsure_share and rng.random() < amd.unsure_share:
            kind = AnswerKind.UNSURE
        decided = (amd.human_after if call.human else amd.machine_after).draw(rng)
        classified = partial(self._emit_classified, call, kind)
        call.timers.append(self._world.schedule_in(decided, classified))
        waits = (answer.patience if call.human else answer.machine_hangs_up).draw(rng)
        self._then(call, waits, partial(self._callee_hangs_up, call))
        self._sink(CallAnswered(call_id=call.request.call_id, at=self._world.now))

    def _emit_classified(self, call: _Call, kind: AnswerKind) -> None:
        call_id = call.request.call_id
        self._sink(AnswerClassified(call_id=call_id, at=self._world.now, kind=kind))

    def _answered(self, call_id: str, command: str) -> _Call | None:
        call = self._calls.get(call_id)
        if call is not None and not call.answered:
            raise ValueError(f"{command} on call {call_id}, which has not been answered")
        return call

    def _then(self, call: _Call, seconds: float, fn: Callable[[], None]) -> None:
        """Replace what the callee does next."""
        if call.behaviour is not None:
            call.behaviour.cancel()
        call.behaviour = self._world.schedule_in(seconds, fn)

    def _callee_hangs_up(self, call: _Call) -> None:
        self._end(call, 200, NORMAL_CLEARING, Party.CALLEE)

    def _callee_acts(self, call: _Call, intent: str, reactions: ScriptReactions) -> None:
        wait = reactions.wait_after_act.draw(call.rng)
        self._then(call, wait, partial(self._callee_hangs_up, call))
        self._sink(CalleeActed(call_id=call.request.call_id, at=self._world.now, intent=intent))

    def _script_completed(self, call: _Call) -> None:
        call_id = call.request.call_id
        self._sink(CalleeActed(call_id=call_id, at=self._world.now, intent="completed"))
        if self._calls.get(call_id) is call:  # the engine may have hung up already
            self._end(call, 200, NORMAL_CLEARING, Party.US)

    # --- the end ----------------------------------------------------------------------

    def _end(
        self,
        call: _Call,
        status: int | None,
        reason: str,
        by: Party,
        q850: int | None = None,
        *,
        deferred: bool = False,
        no_media: bool = False,
    ) -> None:
        """End the call: now (from a world callback), or at this instant but from the world
        loop (`deferred`, for commands). Later commands on it are no-ops either way."""
        call_id = call.request.call_id
        if self._calls.get(call_id) is not call:
            return
        del self._calls[call_id]
        call.cancel_all()

        def close() -> None:
            if call.trunk is not None:
                self._in_use[call.trunk] -= 1
            now = self._world.now
            self._sink(
                CallEnded(
                    call_id=call_id, at=now, sip_status=status, reason=reason,
                    q850_cause=q850, ended_by=by, no_media=no_media,
                )
            )  # fmt: skip

        if deferred:
            self._world.schedule(self._world.now, close)
        else:
            close()


def _reaction(reactions: ScriptReactions, draw: float) -> str:
    """The callee's reaction to a script, by the shares; the rest hang up."""
    for intent, share in (
        ("completed", reactions.completed),
        ("opt_out", reactions.opt_out),
        ("agent", reactions.agent),
        (reactions.digit, reactions.key),
    ):
        if draw < share:
            return intent
        draw -= share
    return "hang_up"
