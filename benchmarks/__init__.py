"""Benchmarks (run as modules: ``python -m benchmarks.bench_detection``); results in ``results/``."""
