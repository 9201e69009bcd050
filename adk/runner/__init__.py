"""Running agents: Runner, RunContext, RunResult."""
