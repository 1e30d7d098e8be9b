"""Modules of the benchmark driver, bench/run_benchmarks.py."""
