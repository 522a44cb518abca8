"""Benchmarks: what each measures, how to run it and its current figures are in
docs/benchmarks.md."""
