"""Run state: what agents and tools see of a run, and where it is kept.

The run context, the journal that makes resume repeat nothing, replay
addresses, interrupts and approvals, checkpoint serialisation, run leases and
the stores. This layer sits below agents and tools and imports neither of
them: the Runner (``adk.runner``) orchestrates on top of it.
"""
