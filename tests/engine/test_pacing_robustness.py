"""The predictive pacer keeps the abandon rate under the cap when the world changes under
it (issue 4): the answer rate halves mid-shift (0.25 to 0.12) and half the agents log
out for an hour's lunch. It learns everything online; nothing is tuned for this."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from dialer.engine.planning import planning_campaign, simulate_shift
from dialer.sim.scenario import Break, Scenario, ShareChange, flat_scenario


def changing_world(agents: int) -> Scenario:
    world = flat_scenario(answer=0.25, fast_failure=0.20, talk_mean=120, wrap_up=10,
                          agents=agents)
    answer = replace(world.population.answer,
                     changes=(ShareChange(after=timedelta(hours=4), share=0.12),))
    lunch = Break(at=timedelta(hours=3, minutes=30), length=timedelta(hours=1), share=0.5,
                  log_out=True, reason="lunch", spread=timedelta(minutes=10))
    return replace(world, population=replace(world.population, answer=answer),
                   agents=replace(world.agents, breaks=(lunch,)))


@pytest.mark.parametrize(("agents", "seed"), [(10, 1), (20, 2), (40, 3)])
def test_abandon_rate_stays_under_the_cap_when_the_world_changes(agents: int,
                                                                  seed: int) -> None:
    shift = simulate_shift(planning_campaign(agents), changing_world(agents),
                           pacer="predictive", seed=seed, hours=8)
    assert shift.answers > 60 * agents  # it did dial through the shift
    assert shift.abandon_rate <= 0.03
    assert shift.occupancy > 0.70  # and still kept the agents busy


def test_the_lunch_and_the_answer_drop_happen() -> None:
    """The world really changes: fewer answers per dial after the drop, fewer agent-hours."""
    world = changing_world(10)
    steady = flat_scenario(answer=0.25, fast_failure=0.20, talk_mean=120, wrap_up=10,
                           agents=10)
    changed = simulate_shift(planning_campaign(10), world, pacer="progressive", seed=1,
                             hours=8)
    same = simulate_shift(planning_campaign(10), steady, pacer="progressive", seed=1, hours=8)
    assert changed.agent_hours == pytest.approx(same.agent_hours - 5, abs=0.1)
    assert same.agent_hours == pytest.approx(80, abs=0.01)
    assert changed.answers / changed.dials < same.answers / same.dials - 0.04
