"""Benchmarks (issues 3 and 4); results are recorded in docs/benchmarks.md."""
