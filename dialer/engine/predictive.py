"""The model-based predictive pacer: as many calls as keep agents talking, and no more
than keeps abandoned calls under the cap.

The model. Answers to come are binned by when they arrive (8 bins over the answer
delay's 95th percentile): answers of the calls in flight, by their ages, and of the new
calls, by the answer delay. An answer arriving in bin j finds no agent (is abandoned)
when, by the end of that bin,

    ready agents + busy agents free by then + grace  <  calls waiting + answers by then

Each busy agent and each ringing call contributes an independent Bernoulli, with a
probability from its age and the distributions learned online (no parametric shapes: a
ringing call of age a is answered within h with P = answered in [a, a+h) / unresolved at
a, from decayed histograms; an agent t seconds into a call is free by s with
P = (F(t + s - wrap) - F(t)) / (1 - F(t)) from the talk-time histogram, and an agent
talking past every call seen gets a memoryless tail). Sums of Bernoullis are taken as
normal (continuity corrected). The pacer adds calls one by one while each adds at most
`theta` expected abandoned calls per expected answer, counting the abandons it causes to
answers of calls already in flight, not only its own risk.

The outer loop. `theta` is set by stochastic approximation: each served answer moves it
up a little, each abandoned call down a lot, so it settles where the abandon rate is the
goal. The goal is worked out from the rate over the regulator's window (`_goal_for`): it
leaves a margin for chance, lets the answers to come use what earlier ones left unused,
and makes room for estimated machine-detection errors where the regulator counts them.

Cold start: progressive (one call per ready agent) until enough calls were seen. The
engine adds the interlocks (no agents, no calls; lines per agent; free lines).

Speed: the per-call and per-agent tables are rebuilt from the learned distributions every
`relearn`; the sums over the floor are rebuilt every `refresh` and, in between, updated
at each event by the row of the call or agent that came or went.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from math import erfc, sqrt

import numpy as np
import numpy.typing as npt

from dialer.engine.pacing import (
    Observation,
    PaceSnapshot,
    Placed,
    Resolved,
    Served,
    TalkEnded,
    WrapEnded,
)

Floats = npt.NDArray[np.float64]
#: The answers to come are binned by arrival over the answer delay's 95th percentile.
ANSWER_BINS = 8


@dataclass(frozen=True, slots=True, kw_only=True)
class PredictiveSettings:
    """The pacer's knobs; the defaults serve every team size and list (no tuning)."""

    cap: float = 0.03  # the abandon-rate cap over the regulator's window
    grace: float = 2.0  # seconds an answered call may wait for an agent
    confidence_z: float = 0.5  # margin for chance under the cap, in standard deviations
    horizon: float = 1.5  # the goal is for the window's rate once its answers grow this much
    theta_start: float = 0.005  # abandons one more call may add, per answer, at the start
    theta_bounds: tuple[float, float] = (0.002, 0.5)
    step: float = 0.15  # how far one abandoned call moves log(theta)
    memory: float = 400.0  # observations: the estimates' decay (older weigh 1/e less)
    warm_up: int = 60  # resolved dials and 10 talk ends before pacing predictively
    refresh: float = 1.0  # seconds between full evaluations
    relearn: float = 30.0  # seconds between rebuilding the tables from the estimates
    max_batch: int = 200  # calls placed by one decision at most


class _Histogram:
    """Decayed counts in fixed-width bins; the last bin holds everything beyond."""

    def __init__(self, width: float, bins: int, memory: float) -> None:
        self.width, self.bins = width, bins
        self.counts = [0.0] * bins
        self.weight = 1.0  # grows per observation: old counts weigh relatively less
        self.growth = math.exp(1.0 / memory)
        self.seen = 0
        self.value_sum = 0.0  # weighted, for an exact mean
        self.subsets: list[_Histogram] = []  # counted at this one's weight (see `add`)

    def add(self, value: float, *, also: _Histogram | None = None) -> None:
        """Count `value`; `also` (one of `subsets`: a subset of these observations kept
        beside them) counts it too, at this histogram's weight, so ratios stay right."""
        index = min(int(value / self.width), self.bins - 1) if value > 0 else 0
        weight = self.weight
        self.counts[index] += weight
        self.value_sum += weight * value
        if also is not None:
            also.counts[index] += weight
            also.value_sum += weight * value
            also.seen += 1
        self.weight *= self.growth
        self.seen += 1
        if self.weight > 1e100:  # renormalise this one and its subsets; only ratios matter
            for histogram in (self, *self.subsets):
                histogram.counts = [c / self.weight for c in histogram.counts]
                histogram.value_sum /= self.weight
            self.weight = 1.0

    def mass(self) -> Floats:
        return np.asarray(self.counts, dtype=np.float64)

    def mean(self) -> float:
        total = sum(self.counts)
        return self.value_sum / total if total else 0.0


@dataclass(slots=True)
class _Model:
    """What the learned distributions say, per age and answer instant (see `_learn`)."""

    at: datetime
    ring: Floats  # rows: ringing-call age (1 s); columns: P answered by h, then variances
    talk: Floats  # rows: talk age; columns: P the agent is free by h + grace, variances
    wrap: Floats  # rows: wrap-up age; the same
    answer_new: list[float]  # P(a new call is answered by h)


@dataclass(slots=True)
class _Plan:
    """Per answer bin j (then their variances): how many busy agents will be free by its
    end plus the grace, and how many calls in flight will have been answered by then.

    Rebuilt from the floor every `refresh`; in between, kept up to date at each event by
    adding or taking away the row of the call or agent that came or went (at its age
    now: the rows drift by at most `refresh` of ageing until the next rebuild)."""

    at: datetime
    model: _Model
    free: Floats  # 2J: sums over busy agents of P(free), then of P(1 - P)
    ringing: Floats  # 2J: sums over calls in flight of P(answered), then of P(1 - P)

    _base: _Base | None = None  # what the decisions share until the plan changes

    def agent(self, table: Floats, width: float, age: float, sign: float) -> None:
        """An agent came into (`sign` 1) or left (-1) the talk or wrap-up `table`'s state."""
        _shift(self.free, _row(table, width, age), sign)
        self._base = None

    def call(self, age: float, sign: float, count: int = 1) -> None:
        """Calls of `age` came into (`sign` 1) or left (-1) the calls in flight."""
        _shift(self.ringing, _row(self.model.ring, 1.0, age), sign * count)
        self._base = None

    def base(self, supply: int) -> _Base:
        """Per answer bin, without new calls: (answers arriving, agents less answers,
        its variance, P(a new call answered by then), P(answered in the bin)); and the
        expected abandons. `supply`: agents ready less calls waiting."""
        cached = self._base
        if cached is not None and cached.supply == supply:
            return cached
        free, ringing, new_by = self.free.tolist(), self.ringing.tolist(), self.model.answer_new
        count = len(new_by)
        bins, abandons, ring_before, new_before = [], 0.0, 0.0, 0.0
        for j in range(count):
            arriving = ringing[j] - ring_before
            mean = supply + free[j] - ringing[j]
            var = free[count + j] + ringing[count + j]
            bins.append((arriving, mean, var, new_by[j], new_by[j] - new_before))
            if arriving > 1e-9:
                abandons += arriving * _below(-0.5, mean, var)
            ring_before, new_before = ringing[j], new_by[j]
        self._base = _Base(supply=supply, bins=bins, abandons=abandons)
        return self._base


@dataclass(frozen=True, slots=True)
class _Base:
    supply: int
    bins: list[tuple[float, float, float, float, float]]
    abandons: float


def _row(table: Floats, width: float, age: float) -> Floats:
    row: Floats = table[min(max(int(age / width), 0), len(table) - 1)]
    return row


def _shift(total: Floats, row: Floats, amount: float) -> None:
    total += amount * row
    np.maximum(total, 0.0, out=total)


@dataclass(slots=True)
class PredictivePacer:
    settings: PredictiveSettings = field(default_factory=PredictiveSettings)
    name: str = "predictive"
    theta: float = 0.0
    _resolved: _Histogram = field(init=False)  # every dial's resolution delay (1 s bins)
    _answered: _Histogram = field(init=False)  # answered dials' delay
    _talk: _Histogram = field(init=False)  # talk time (5 s bins, to 2 h)
    _wrap: _Histogram = field(init=False)  # wrap-up time (1 s bins, to 10 min)
    _plan: _Plan | None = None
    _model: _Model | None = None
    goal: float = 0.0  # the abandon rate aimed at now (see `_goal_for`)

    def __post_init__(self) -> None:
        memory = self.settings.memory
        self._resolved = _Histogram(1.0, 180, memory)
        self._answered = _Histogram(1.0, 180, memory)
        self._resolved.subsets.append(self._answered)
        self._talk = _Histogram(5.0, 1440, memory)
        self._wrap = _Histogram(1.0, 600, memory)
        self.theta = self.theta or self.settings.theta_start
        self.goal = self._goal_for(0, 0.0, 0.0)

    # learning

    def observe(self, observation: Observation) -> None:
        plan = self._plan
        if isinstance(observation, Placed):
            if plan is not None:
                plan.call(0.0, 1.0, observation.count)
        elif isinstance(observation, Resolved):
            also = self._answered if observation.answered else None
            self._resolved.add(observation.after, also=also)
            if plan is not None:
                plan.call(observation.after, -1.0)
        elif isinstance(observation, Served):
            self._steer(observation.abandoned)
            if plan is not None and not observation.abandoned:
                plan.agent(plan.model.talk, self._talk.width, 0.0, 1.0)
        elif isinstance(observation, TalkEnded):
            self._talk.add(observation.seconds)
            if plan is not None:
                plan.agent(plan.model.talk, self._talk.width, observation.seconds, -1.0)
                if observation.wraps:
                    plan.agent(plan.model.wrap, self._wrap.width, 0.0, 1.0)
        elif isinstance(observation, WrapEnded):
            self._wrap.add(observation.seconds)
            if plan is not None:
                plan.agent(plan.model.wrap, self._wrap.width, observation.seconds, -1.0)

    def _steer(self, abandoned: bool) -> None:
        """Stochastic approximation: an abandoned call moves log(theta) down by `step`, a
        served one up by step * goal / (1 - goal), so theta settles where P(abandon) is
        the goal."""
        goal = self.goal
        move = -1.0 if abandoned else goal / (1 - goal)
        low, high = self.settings.theta_bounds
        self.theta = min(high, max(low, self.theta * math.exp(self.settings.step * move)))

    @property
    def ready(self) -> bool:
        """True once the estimates are good enough to pace predictively."""
        return (self._resolved.seen >= self.settings.warm_up and self._answered.seen >= 10
                and self._talk.seen >= 10)

    # deciding

    def calls_to_place(self, snapshot: PaceSnapshot) -> int:
        self.goal = self._goal_for(snapshot.window_answers, snapshot.window_rate,
                                   snapshot.window_false_positives)
        if not self.ready or snapshot.floor is None:
            want = snapshot.agents_ready - snapshot.calls_dialing - snapshot.calls_waiting
            return max(0, min(want, snapshot.free_lines))
        plan = self._plan
        if plan is None or (snapshot.at - plan.at).total_seconds() >= self.settings.refresh:
            plan = self._plan = self._evaluate(snapshot)
        limit = min(snapshot.free_lines, self.settings.max_batch)
        allowed = self.theta * plan.model.answer_new[-1]  # abandons one more call may add
        count, before = 0, self._expected_abandons(snapshot, plan, 0)
        while count < limit:
            after = self._expected_abandons(snapshot, plan, count + 1)
            if after - before > allowed:
                break
            count, before = count + 1, after
        return count

    def _goal_for(self, answers: float, rate: float, false_positives: float) -> float:
        """The abandon rate to aim at from now on, among the answers the pacer serves.

        By the time the window holds `horizon` times the answers it holds now, its rate should be
        under the cap by z standard deviations of a rate over that many answers; the
        answers to come may use what the ones so far left unused (or must make up for
        what they overspent). Where the regulator counts estimated machine-detection
        errors as abandoned (`false_positives` of the window's `answers`), they take
        their share first. Within [cap / 4, cap] before that share."""
        cap, z = self.settings.cap, self.settings.confidence_z
        later = max(self.settings.horizon * answers, 1.0)
        allowed = cap - z * math.sqrt(cap * (1 - cap) / later)
        goal = (allowed * later - rate * answers) / max(later - answers, 1.0)
        goal = min(cap, max(cap / 4, goal))
        errors = false_positives / answers if answers else 0.0
        if errors:  # their share of the answers to come is abandoned by definition
            goal = max(cap / 20, (goal - errors) / (1 - errors) if errors < 1 else 0.0)
        return goal

    def _expected_abandons(self, snapshot: PaceSnapshot, plan: _Plan, new: int) -> float:
        """Expected abandoned calls among the answers to come, if `new` more calls leave.

        The answers to come are binned by when they arrive (the calls in flight, by their
        ages; the new ones, by the answer delay); one arriving by h is abandoned when the
        answers before it (and the calls already waiting) outnumber the agents free by
        h + grace. A new call thus counts for the abandons it causes to later answers of
        calls already in flight, not only for its own risk.
        """
        base = plan.base(snapshot.agents_ready - snapshot.calls_waiting)
        if not new:
            return base.abandons
        total = 0.0
        for arriving, mean, var, new_j, new_arriving in base.bins:
            arriving += new * new_arriving
            if arriving > 1e-9:  # P(agents less answers < -0.5), inlined: the hot loop
                var += new * new_j * (1 - new_j)
                mean -= new * new_j
                if var > 1e-12:
                    total += arriving * 0.5 * erfc((mean + 0.5) / sqrt(2 * var))
                elif mean < -0.5:
                    total += arriving
        return total

    def _evaluate(self, snapshot: PaceSnapshot) -> _Plan:
        floor = snapshot.floor
        assert floor is not None
        at = snapshot.at
        model = self._model
        if model is None or (at - model.at).total_seconds() >= self.settings.relearn:
            model = self._model = self._learn(at)
        ages = floor.dialing_ages(at)
        ringing = _lookup(model.ring, 1.0, ages)
        unplaced = snapshot.calls_dialing - len(ages)  # claims in flight
        ringing += max(unplaced, 0) * model.ring[0]
        free = (_lookup(model.talk, self._talk.width, floor.talking_ages(at))
                + _lookup(model.wrap, self._wrap.width, floor.wrapping_ages(at)))
        return _Plan(at=at, model=model, free=free, ringing=ringing)

    def _learn(self, at: datetime) -> _Model:
        """Tables from the learned distributions: for an item of each age, per answer
        instant h, P(it resolves in time) and its variance."""
        resolved, answered = self._resolved.mass(), self._answered.mass()
        last = float(_quantiles(answered, (0.95,))[0]) + 0.5
        horizons: Floats = np.arange(1, ANSWER_BINS + 1, dtype=np.float64) * (last / ANSWER_BINS)
        grace = self.settings.grace
        # a ringing call of age a is answered within h: answered in [a, a+h) / unresolved at a
        unresolved = np.cumsum(resolved[::-1])[::-1]
        answered_before = np.concatenate(([0.0], np.cumsum(answered)))
        ages = np.arange(len(resolved))
        ends = np.minimum(ages[:, None] + np.round(horizons)[None, :].astype(np.int64),
                          len(resolved))
        with np.errstate(divide="ignore", invalid="ignore"):
            ring = (answered_before[ends] - answered_before[ages][:, None]) / unresolved[:, None]
        ring = np.clip(np.nan_to_num(ring), 0.0, 1.0)
        wrap_mean = self._wrap.mean() if self._wrap.seen else 0.0
        within: Floats = horizons + grace
        talk = _conditional(self._talk, within - wrap_mean)
        wrap = _conditional(self._wrap, within)
        p_answer = answered.sum() / max(resolved.sum(), 1e-12)
        g = answered_before[np.minimum(np.round(horizons).astype(np.int64), len(answered))]
        answer_new = [float(x) for x in p_answer * g / max(answered.sum(), 1e-12)]
        return _Model(at=at, ring=_with_variance(ring), talk=_with_variance(talk),
                      wrap=_with_variance(wrap), answer_new=answer_new)


def _with_variance(p: Floats) -> Floats:
    """[p, p(1-p)] side by side: one lookup sums means and variances."""
    return np.concatenate((p, p * (1 - p)), axis=1)


def _lookup(table: Floats, width: float, ages: list[float]) -> Floats:
    """Sum of the table's rows for items of these ages (in seconds)."""
    if not ages:
        return np.zeros(table.shape[1])
    index = np.minimum((np.asarray(ages) / width).astype(np.int64), len(table) - 1)
    return table[index].sum(axis=0)  # type: ignore[no-any-return]


def _quantiles(mass: Floats, qs: tuple[float, ...]) -> Floats:
    """Quantiles of a 1 s histogram, in seconds (bin centres)."""
    cdf = np.cumsum(mass) / mass.sum()
    return np.searchsorted(cdf, np.asarray(qs)).astype(np.float64) + 0.5


def _conditional(histogram: _Histogram, within: Floats) -> Floats:
    """Per age bin (rows) and per span (columns): P(done within the span | not done at
    the bin's start). Past what the data shows (under 1 % of it left), a memoryless tail
    with the distribution's mean: a call longer than any seen is not about to end."""
    mass = histogram.mass()
    total = mass.sum()
    cdf = np.concatenate(([0.0], np.cumsum(mass) / total)) if total else np.zeros(len(mass) + 1)
    edges = np.arange(len(cdf)) * histogram.width
    starts = edges[:-1]
    now = cdf[:-1]
    spans = np.maximum(within, 0.0)[None, :]
    later = np.interp(starts[:, None] + spans, edges, cdf)
    left = (1.0 - now)[:, None]
    tail = 1.0 - np.exp(-spans / max(histogram.mean(), histogram.width))
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(left > 0.01, (later - now[:, None]) / left, tail)
    return np.clip(p, 0.0, 1.0)


def _below(threshold: float, mean: float, var: float) -> float:
    """P(X < threshold) for X normal with `mean` and `var` (a step when var is 0)."""
    if var <= 1e-12:
        return 1.0 if mean < threshold else 0.0
    return 0.5 * math.erfc((mean - threshold) / math.sqrt(2 * var))
