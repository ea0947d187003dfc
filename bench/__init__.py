"""Benchmarks: run side by side against a baseline in one process; see docs/benchmarks.md."""
