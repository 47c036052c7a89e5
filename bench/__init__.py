"""Benchmarks: ``python -m bench.<service>`` (not run in CI)."""
