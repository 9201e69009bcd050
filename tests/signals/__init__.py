"""Tests of adk.state.signals: the signal log and its listeners, on every store."""
