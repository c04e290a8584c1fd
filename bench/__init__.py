"""Benchmarks run by `make bench` (bench/run.py); each prints one BENCH line of figures."""
