"""The simulated world: a telephone network, callees and agents in simulated time.

    world = SimWorld(scenario.start)
    network = SimulatedNetwork(world, scenario, on_call_event, seed=7)
    agents = SimulatedAgents(world, scenario, on_agent_event, seed=7)
    network.place(request)
    world.run_until(scenario.start + timedelta(hours=8))

The network is a `lines.telephony.TelephonyBackend`; events reach the sinks from inside
`SimWorld.run_until`, in simulated-time order. The same seed, scenario and engine commands
give the same events.
"""

from dialer.sim.agents import AgentSink, AgentState, SimulatedAgents
from dialer.sim.network import NO_FREE_CHANNEL, SimulatedNetwork, reason_phrase
from dialer.sim.population import (
    DEFAULT_SIGNALS,
    CalleeProfile,
    Callees,
    Failure,
    Fate,
    Outcome,
    Signal,
    stable_seed,
)
from dialer.sim.scenario import (
    AgentTeam,
    Amd,
    Answer,
    Break,
    FailureWindow,
    Network,
    Population,
    Scenario,
    ScriptReactions,
    SimTrunk,
    default_scenario,
    flat_scenario,
    load_scenario,
    parse_scenario,
)
from dialer.sim.world import Dist, DistKind, SimWorld, Timer

__all__ = [
    "DEFAULT_SIGNALS",
    "NO_FREE_CHANNEL",
    "AgentSink",
    "AgentState",
    "AgentTeam",
    "Amd",
    "Answer",
    "Break",
    "CalleeProfile",
    "Callees",
    "Dist",
    "DistKind",
    "Failure",
    "FailureWindow",
    "Fate",
    "Network",
    "Outcome",
    "Population",
    "Scenario",
    "ScriptReactions",
    "Signal",
    "SimTrunk",
    "SimWorld",
    "SimulatedAgents",
    "SimulatedNetwork",
    "Timer",
    "default_scenario",
    "flat_scenario",
    "load_scenario",
    "parse_scenario",
    "reason_phrase",
    "stable_seed",
]
