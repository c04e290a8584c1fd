"""Benchmarks run by `make bench` (bench/run.py); each section prints one `BENCH ...` line."""
