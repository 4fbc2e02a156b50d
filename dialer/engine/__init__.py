"""The engine: one pure decision core that runs a campaign in simulated or real time."""
