"""Benchmarks: scripts that print tables (python -m benchmarks.bench_cpu); nothing here asserts."""
