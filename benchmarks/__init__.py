"""Benchmarks: `python -m benchmarks.quality` and `python -m benchmarks.perf`."""
